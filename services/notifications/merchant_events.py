"""Merchant-visible events republished for merchants' own AMQP consumers.

Exchange ``portico.merchant-events`` (topic), routing key ``<merchant_id>.<EventType>``, body the
same event envelope the webhooks carry. A row goes into ``merchant_outbox`` in the transaction
that handles the event (with its inbox row), and this relay publishes it with publisher
confirms, exactly like the shared outbox relay does for the service's own events: nothing is
lost when the broker is away, and a merchant's consumer deduplicates on ``event_id``. The
relay is the shared one (``services/common/outbox.py``) over another table: on SQLite it gives
the process's one connection back while the broker confirms, on PostgreSQL it keeps its
advisory lock for the round.

Merchants get an AMQP user whose topic permissions only let it bind to its own prefix
(``portico amqp-user create --merchant m_…``, see ``ops/amqp_users.py``).
"""
from __future__ import annotations

import json

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common import events
from services.common.amqp import CONFIRMED, RETURNED, Outgoing
from services.common.database import utcnow
from services.common.outbox import OutboxRelay
from services.common.telemetry import current_correlation_id
from services.common.topology import MERCHANT_EVENTS_EXCHANGE

from .models import MerchantOutbox


def routing_key(event: events.Event) -> str:
    return f"{event.merchant_id}.{event.type}"


def stage(session: Session, event: events.Event, body: str) -> None:
    correlation_id = current_correlation_id()
    headers = {"nameko.correlation_id": correlation_id} if correlation_id else {}
    # a plain INSERT built once: every event handled costs one, and the ORM's unit of work
    # (or building the statement each time) costs more than running it
    session.execute(_INSERT, {
        "event_id": event.event_id, "merchant_id": event.merchant_id,
        "routing_key": routing_key(event), "body": body, "headers": json.dumps(headers),
        "status": "pending", "attempts": 0, "created_at": utcnow()})


_INSERT = MerchantOutbox.__table__.insert()


class MerchantEventsRelay(OutboxRelay):
    """The shared relay's loop (backoff, wake-ups, batching, the SQLite/PostgreSQL rounds) over
    ``merchant_outbox``."""

    def __init__(self, engine, metadata, config: dict, *, name: str):
        super().__init__(engine, metadata, config, name=f"{name}-merchant-events")
        self.table = metadata.tables[MerchantOutbox.__tablename__]
        # merchants' own consumers wait longer than the services do: 20 ms more per event
        # lets a busy relay carry several events per round (one read, one confirm wait, one
        # update) instead of one
        self.linger_seconds = float(config.get("MERCHANT_EVENTS_LINGER_SECONDS", 0.02))

    def _pending(self, conn) -> list:
        t = self.table
        return conn.execute(select(t.c.id, t.c.event_id, t.c.routing_key, t.c.body, t.c.headers)
                            .where(t.c.status == "pending").order_by(t.c.id)
                            .limit(self.batch_size)).all()

    def _publish(self, rows) -> list:
        # not mandatory: most merchants bind no queue, and a returned message is only traffic
        return self.publisher.publish_batch([
            Outgoing(exchange=MERCHANT_EVENTS_EXCHANGE, routing_key=row.routing_key,
                     body=row.body.encode(), message_id=row.event_id,
                     headers=json.loads(row.headers or "{}"))
            for row in rows], mandatory=False)

    def _settle(self, conn, rows, results) -> int:
        settled = []
        for row, result in zip(rows, results, strict=True):
            # RETURNED: no merchant consumer is bound right now; that is normal here
            if result not in (CONFIRMED, RETURNED):
                break  # nacked: later rows wait, in order
            settled.append(row.id)
        if settled:
            conn.execute(update(self.table).where(self.table.c.id.in_(settled))
                         .values(status="sent", sent_at=utcnow()))
        self.published += len(settled)
        return len(settled)
