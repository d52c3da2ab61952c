"""A merchant-visible event, fanned out to the merchant: queued for its AMQP subscribers
(``merchant_outbox``) and one webhook delivery per endpoint that wants it, in the caller's
transaction. Events from other services arrive through the service's handlers; this service's
own (``EmailSent``, ``WebhookDeliveryFailed``) are fanned out where they are recorded."""
from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from services.common import events

from . import merchant_events, webhook_store


def to_merchant(session: Session, event: events.Event, now: dt.datetime,
                endpoints: dict | None = None) -> int:
    """Stage ``event`` for the merchant; the number of webhook deliveries created.
    ``endpoints``: the transaction's memo of each merchant's webhook endpoints."""
    body = webhook_store.envelope_json(event)
    merchant_events.stage(session, event, body)
    return webhook_store.create_deliveries(session, event, body, now, endpoints)
