"""The outbox relay: pending outbox rows → RabbitMQ, marked sent only after the broker confirms.

Rows go out in id order, which is commit order per aggregate (``next_sequence`` row-locks the
aggregate's counter before the row gets its id), in batches whose confirms are awaited together.
When a publish fails the batch stops at the first unconfirmed row and the rest wait: a later
event of an aggregate never overtakes an earlier one. While the broker is away rows simply stay
``pending``; the relay backs off and tries again, and everything goes out when it returns.

On PostgreSQL one replica of a service publishes at a time (a transaction-scoped advisory lock);
the other replicas' relays skip the round. Consumers deduplicate on ``event_id`` anyway (inbox),
so a crash between confirm and "mark sent" costs a duplicate, never a loss.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import zlib

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.schema import MetaData

from .amqp import CONFIRMED, RETURNED, BrokerUnavailable, ConfirmingPublisher, Outgoing
from .database import utcnow

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, engine: Engine, metadata: MetaData, config: dict, *, name: str,
                 publisher: ConfirmingPublisher | None = None):
        self.engine = engine
        self.outbox = metadata.tables["outbox"]
        self.name = name
        self.batch_size = int(config.get("OUTBOX_BATCH_SIZE", 200))
        self.poll_seconds = float(config.get("OUTBOX_POLL_SECONDS", 1.0))
        # woken by a commit, wait this long for the commits right behind it, so that under
        # load one round (two short transactions, one confirm wait) carries several events
        self.linger_seconds = float(config.get("OUTBOX_LINGER_SECONDS", 0.003))
        self.publisher = publisher or ConfirmingPublisher(config["AMQP_URI"])
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self.published = 0
        self.unroutable = 0
        self._lock_key = zlib.crc32(f"portico-outbox:{name}".encode()) & 0x7FFFFFFF
        o = self.outbox.c
        self._select_pending = (
            select(o.id, o.event_id, o.type, o.exchange, o.merchant_id, o.body, o.headers)
            .where(o.status == "pending").order_by(o.id).limit(bindparam("limit")))

    def wake(self):
        self._wake.set()

    def stop(self):
        self._stopped.set()
        self._wake.set()

    def run(self):
        """Loop until stopped: publish everything pending, then sleep until woken or polled."""
        backoff = 0.2
        outage_since = None
        while not self._stopped.is_set():
            try:
                while self.relay_once() == self.batch_size and not self._stopped.is_set():
                    pass
            except BrokerUnavailable as exc:
                if outage_since is None:
                    outage_since = time.monotonic()
                    log.warning("outbox: broker unavailable (%s); events stay pending", exc)
                self._wake.wait(backoff)
                self._wake.clear()
                backoff = min(backoff * 2, 5.0)
                continue
            except Exception:
                log.exception("outbox: relay round failed; retrying")
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            if outage_since is not None:
                log.info("outbox: broker back after %.1f s", time.monotonic() - outage_since)
                outage_since = None
            backoff = 0.2
            if self._wake.wait(self.poll_seconds) and self.linger_seconds > 0:
                self._stopped.wait(self.linger_seconds)
            self._wake.clear()
        self.publisher.close()

    def relay_once(self) -> int:
        """Publish one batch of pending rows; return how many rows were settled.

        PostgreSQL: one transaction holds the advisory lock from reading the rows to marking
        them, so replicas never publish the same rows (it is a pooled connection of its own).
        SQLite: one process owns the file and it has one connection, shared with every
        worker, so the rows are read, the connection is given back while the broker confirms,
        and the outcome is written in a second short transaction (one relay per process: no
        one else publishes these rows meanwhile)."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                got = conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                   {"k": self._lock_key}).scalar()
                if not got:
                    return 0
                rows = self._pending(conn)
                return self._settle(conn, rows, self._publish(rows)) if rows else 0
        with self.engine.begin() as conn:
            rows = self._pending(conn)
        if not rows:
            return 0
        results = self._publish(rows)
        with self.engine.begin() as conn:
            return self._settle(conn, rows, results)

    def _pending(self, conn) -> list:
        return conn.execute(self._select_pending, {"limit": self.batch_size}).all()

    def _publish(self, rows) -> list:
        return self.publisher.publish_batch([Outgoing(
            exchange=row.exchange, routing_key=row.type, body=row.body.encode(),
            message_id=row.event_id, headers=json.loads(row.headers or "{}"))
            for row in rows])

    def _settle(self, conn, rows, results) -> int:
        sent_ids, unroutable_ids = [], []
        for row, result in zip(rows, results, strict=True):
            if result == CONFIRMED:
                sent_ids.append(row.id)
            elif result == RETURNED:
                unroutable_ids.append(row.id)
            else:  # nacked: stop here so later rows keep their order
                break
        now = utcnow()
        if sent_ids:
            conn.execute(update(self.outbox).where(self.outbox.c.id.in_(sent_ids))
                         .values(status="sent", sent_at=now))
        if unroutable_ids:
            # No queue is bound for this type: nobody subscribed. Kept, marked, counted.
            log.warning("outbox: %d event(s) had no bound queue", len(unroutable_ids))
            conn.execute(update(self.outbox).where(self.outbox.c.id.in_(unroutable_ids))
                         .values(status="unroutable", sent_at=now))
        self.published += len(sent_ids)
        self.unroutable += len(unroutable_ids)
        return len(sent_ids) + len(unroutable_ids)
