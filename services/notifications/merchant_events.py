"""Merchant-visible events republished for merchants' own AMQP consumers.

Exchange ``portico.merchant-events`` (topic), routing key ``<merchant_id>.<EventType>``, body the
same event envelope the webhooks carry. A row goes into ``merchant_outbox`` in the transaction
that handles the event (with its inbox row), and this relay publishes it with publisher
confirms, exactly like the shared outbox relay does for the service's own events: nothing is
lost when the broker is away, and a merchant's consumer deduplicates on ``event_id``. The relay
is ``relays.MerchantEventsRelay``.

Merchants get an AMQP user whose topic permissions only let it bind to its own prefix
(``portico amqp-user create --merchant m_…``, see ``ops/amqp_users.py``).
"""
from __future__ import annotations

import json

from sqlalchemy.orm import Session

from services.common import events
from services.common.database import utcnow
from services.common.telemetry import current_correlation_id

from .models import MerchantOutbox


def routing_key(event: events.Event) -> str:
    return f"{event.merchant_id}.{event.type}"


def stage(session: Session, event: events.Event, body: str) -> None:
    correlation_id = current_correlation_id()
    headers = {"nameko.correlation_id": correlation_id} if correlation_id else {}
    # a plain INSERT: every event handled costs one, and the ORM's unit of work is slower
    session.execute(MerchantOutbox.__table__.insert().values(
        event_id=event.event_id, merchant_id=event.merchant_id,
        routing_key=routing_key(event), body=body, headers=json.dumps(headers),
        status="pending", attempts=0, created_at=utcnow()))
