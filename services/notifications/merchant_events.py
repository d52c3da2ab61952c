"""Merchant-visible events republished for merchants' own AMQP consumers.

Exchange ``portico.merchant-events`` (topic), routing key ``<merchant_id>.<EventType>``, body the
same event envelope the webhooks carry. A row goes into ``merchant_outbox`` in the transaction
that handles the event (with its inbox row), and this relay publishes it with publisher
confirms, exactly like the shared outbox relay does for the service's own events: nothing is
lost when the broker is away, and a merchant's consumer deduplicates on ``event_id``.

Merchants get an AMQP user whose topic permissions only let it bind to its own prefix
(``portico amqp-user create --merchant m_…``, see ``ops/amqp_users.py``).
"""
from __future__ import annotations

import json
import logging

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from services.common import events
from services.common.amqp import CONFIRMED, RETURNED, Outgoing
from services.common.database import utcnow
from services.common.outbox import OutboxRelay
from services.common.telemetry import current_correlation_id
from services.common.topology import MERCHANT_EVENTS_EXCHANGE

from .models import MerchantOutbox

log = logging.getLogger(__name__)


def routing_key(event: events.Event) -> str:
    return f"{event.merchant_id}.{event.type}"


def stage(session: Session, event: events.Event, body: str) -> None:
    headers = {"nameko.correlation_id": current_correlation_id()} \
        if current_correlation_id() else {}
    session.add(MerchantOutbox(event_id=event.event_id, merchant_id=event.merchant_id,
                               routing_key=routing_key(event), body=body,
                               headers=json.dumps(headers), status="pending", attempts=0,
                               created_at=utcnow()))


class MerchantEventsRelay(OutboxRelay):
    """The shared relay's loop (backoff, wake-ups, batching) over ``merchant_outbox``."""

    def __init__(self, engine, metadata, config: dict, *, name: str):
        super().__init__(engine, metadata, config, name=f"{name}-merchant-events")
        self.table = metadata.tables[MerchantOutbox.__tablename__]

    def relay_once(self) -> int:
        table = self.table
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                    {"k": self._lock_key}).scalar():
                    return 0
            rows = conn.execute(
                select(table.c.id, table.c.event_id, table.c.routing_key, table.c.body,
                       table.c.headers)
                .where(table.c.status == "pending").order_by(table.c.id).limit(self.batch_size)
            ).all()
            if not rows:
                return 0
            results = self.publisher.publish_batch([
                Outgoing(exchange=MERCHANT_EVENTS_EXCHANGE, routing_key=row.routing_key,
                         body=row.body.encode(), message_id=row.event_id,
                         headers=json.loads(row.headers or "{}"))
                for row in rows])
            settled = []
            for row, result in zip(rows, results, strict=True):
                # RETURNED: no merchant consumer is bound right now; that is normal here
                if result not in (CONFIRMED, RETURNED):
                    break
                settled.append(row.id)
            if settled:
                conn.execute(update(table).where(table.c.id.in_(settled))
                             .values(status="sent", sent_at=utcnow()))
            self.published += len(settled)
            return len(settled)
