"""The notifications service's two outbox relays, which never hold SQLite across a broker wait.

The shared ``OutboxRelay`` reads a batch, publishes it, waits for the broker's confirms and
marks the rows sent, all inside one transaction. On PostgreSQL that is what keeps one replica
publishing at a time (a transaction-scoped advisory lock) and costs one pooled connection. On
SQLite a process has exactly one connection, so every handler, claim and result recording
waited for each confirm round trip; with three merchant events and one ``EmailSent`` per
e-mail that wait was the service's bottleneck. Here, on SQLite, the batch is read in one short
transaction, published with no transaction open, and marked in a second short one. Nothing
else changes: rows go out in id order, a batch stops at its first unconfirmed row (later rows
keep their order and wait), only confirmed (or, for the service's own outbox, returned) rows are
marked, and a crash between confirm and mark costs a duplicate that consumers drop by
``event_id``. (SQLite serves one process, so no second relay reads the same rows meanwhile.)

``services/common/outbox.py`` would be the place for this; until it moves there, this module
keeps the shared relay's behaviour and adds only the split.
"""
from __future__ import annotations

import json
import logging

from sqlalchemy import select, text, update

from services.common.amqp import CONFIRMED, RETURNED, Outgoing
from services.common.database import utcnow
from services.common.outbox import OutboxRelay
from services.common.topology import MERCHANT_EVENTS_EXCHANGE

from .models import MerchantOutbox

log = logging.getLogger(__name__)


class ShortTransactionRelay(OutboxRelay):
    """``OutboxRelay`` with its batch read, publish and mark split apart on SQLite.
    Subclasses say which table, how a row becomes a message and which results settle it."""

    table = None

    def columns(self):
        raise NotImplementedError

    def message(self, row) -> Outgoing:
        raise NotImplementedError

    def settle(self, rows, results) -> dict[str, list[int]]:
        """``{status: [row ids]}`` for the rows to mark, stopping at the first unsettled one."""
        raise NotImplementedError

    def relay_once(self) -> int:
        """Publish one batch of pending rows; return how many rows were settled."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                    {"k": self._lock_key}).scalar():
                    return 0
            rows = conn.execute(select(*self.columns()).where(self.table.c.status == "pending")
                                .order_by(self.table.c.id).limit(self.batch_size)).all()
            if not rows:
                return 0
            if conn.dialect.name != "sqlite":  # the lock lives as long as the transaction
                return self._mark(conn, self._publish(rows))
        marks = self._publish(rows)  # SQLite: no transaction, the connection is free meanwhile
        with self.engine.begin() as conn:
            return self._mark(conn, marks)

    def _publish(self, rows) -> dict[str, list[int]]:
        return self.settle(rows, self.publisher.publish_batch([self.message(r) for r in rows]))

    def _mark(self, conn, marks: dict[str, list[int]]) -> int:
        now = utcnow()
        for status, ids in marks.items():
            if ids:
                conn.execute(update(self.table).where(self.table.c.id.in_(ids))
                             .values(status=status, sent_at=now))
        return sum(len(ids) for ids in marks.values())


class ServiceEventsRelay(ShortTransactionRelay):
    """The service's own outbox (``EmailSent``, ``WebhookDeliveryFailed``), exactly as the
    shared relay publishes it."""

    def __init__(self, engine, metadata, config: dict, *, name: str):
        super().__init__(engine, metadata, config, name=name)
        self.table = self.outbox

    def columns(self):
        c = self.table.c
        return c.id, c.event_id, c.type, c.exchange, c.body, c.headers

    def message(self, row) -> Outgoing:
        return Outgoing(exchange=row.exchange, routing_key=row.type, body=row.body.encode(),
                        message_id=row.event_id, headers=json.loads(row.headers or "{}"))

    def settle(self, rows, results) -> dict[str, list[int]]:
        sent, unroutable = [], []
        for row, result in zip(rows, results, strict=True):
            if result == CONFIRMED:
                sent.append(row.id)
            elif result == RETURNED:
                unroutable.append(row.id)
            else:  # nacked: stop here so later rows keep their order
                break
        if unroutable:
            # No queue is bound for this type: nobody subscribed. Kept, marked, counted.
            log.warning("outbox: %d event(s) had no bound queue", len(unroutable))
        self.published += len(sent)
        self.unroutable += len(unroutable)
        return {"sent": sent, "unroutable": unroutable}


class MerchantEventsRelay(ShortTransactionRelay):
    """``merchant_outbox`` → exchange ``portico.merchant-events``."""

    def __init__(self, engine, metadata, config: dict, *, name: str):
        super().__init__(engine, metadata, config, name=f"{name}-merchant-events")
        self.table = metadata.tables[MerchantOutbox.__tablename__]

    def columns(self):
        c = self.table.c
        return c.id, c.event_id, c.routing_key, c.body, c.headers

    def message(self, row) -> Outgoing:
        return Outgoing(exchange=MERCHANT_EVENTS_EXCHANGE, routing_key=row.routing_key,
                        body=row.body.encode(), message_id=row.event_id,
                        headers=json.loads(row.headers or "{}"))

    def settle(self, rows, results) -> dict[str, list[int]]:
        settled = []
        for row, result in zip(rows, results, strict=True):
            # RETURNED: no merchant consumer is bound right now; that is normal here
            if result not in (CONFIRMED, RETURNED):
                break
            settled.append(row.id)
        self.published += len(settled)
        return {"sent": settled}
