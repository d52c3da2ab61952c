"""Webhook endpoints, deliveries and attempts in the database.

Every lookup is scoped to the merchant: another merchant's endpoint or delivery is ``NotFound``,
exactly like a missing one. Deliveries are durable rows: the dispatcher claims the due ones
(a short lease, so replicas and restarts never send the same attempt twice at once), commits,
sends, and records the result in a new transaction.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import uuid

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from services.common import events
from services.common.errors import Conflict, NotFound

from . import signing, webhooks
from .delivery import Result
from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

LEASE = dt.timedelta(seconds=90)  # longer than the 15 s timeout plus recording


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """UTC-aware. (The shared ``UTCDateTime`` comes back naive from SQLite: the dialect's
    own DATETIME type replaces its result processor.)"""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _iso(value: dt.datetime | None) -> str | None:
    return aware(value).isoformat() if value else None


# -- endpoints ---------------------------------------------------------------------------------
def endpoint_view(endpoint: WebhookEndpoint, now: dt.datetime) -> dict:
    rotating = (endpoint.previous_secret is not None and endpoint.previous_secret_expires_at
                is not None and aware(endpoint.previous_secret_expires_at) > now)
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": json.loads(endpoint.event_types) if endpoint.event_types else None,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": _iso(endpoint.disabled_at),
        "failing_since": _iso(endpoint.failing_since),
        "previous_secret_expires_at": _iso(endpoint.previous_secret_expires_at)
        if rotating else None,
        "created_at": _iso(endpoint.created_at),
        "updated_at": _iso(endpoint.updated_at),
    }


def create_endpoint(session: Session, merchant_id: str, data: dict,
                    now: dt.datetime) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        id=new_id("we"), merchant_id=merchant_id, url=data["url"],
        description=data.get("description") or "",
        event_types=json.dumps(data["event_types"]) if data.get("event_types") else None,
        enabled=True, secret=signing.new_secret(), created_at=now, updated_at=now)
    session.add(endpoint)
    session.flush()
    return endpoint


def get_endpoint(session: Session, merchant_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.merchant_id != merchant_id:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def list_endpoints(session: Session, merchant_id: str) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint)
                                .where(WebhookEndpoint.merchant_id == merchant_id)
                                .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)))


def update_endpoint(session: Session, endpoint: WebhookEndpoint, data: dict,
                    now: dt.datetime) -> WebhookEndpoint:
    if "url" in data:
        endpoint.url = data["url"]
    if "description" in data:
        endpoint.description = data["description"] or ""
    if "event_types" in data:
        endpoint.event_types = json.dumps(data["event_types"]) if data["event_types"] else None
    if "enabled" in data:
        if data["enabled"] and not endpoint.enabled:
            endpoint.enabled = True
            endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None
        elif not data["enabled"] and endpoint.enabled:
            disable(session, endpoint, "Disabled through the API.", now)
    endpoint.updated_at = now
    return endpoint


def disable(session: Session, endpoint: WebhookEndpoint, reason: str, now: dt.datetime) -> None:
    """Disable the endpoint and cancel what it still had to receive (replayable later)."""
    endpoint.enabled = False
    endpoint.disabled_reason = reason[:300]
    endpoint.disabled_at = now
    endpoint.updated_at = now
    session.execute(update(WebhookDelivery)
                    .where(WebhookDelivery.endpoint_id == endpoint.id,
                           WebhookDelivery.status == "pending")
                    .values(status="cancelled", completed_at=now, next_attempt_at=None,
                            last_error=f"endpoint disabled: {reason}"[:1000]))


def delete_endpoint(session: Session, endpoint: WebhookEndpoint, now: dt.datetime) -> None:
    disable(session, endpoint, "The endpoint was deleted.", now)
    session.delete(endpoint)


def rotate_secret(endpoint: WebhookEndpoint, now: dt.datetime) -> str:
    """A new secret; the old one keeps signing too (a second signature) for 24 hours."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + webhooks.ROTATION_OVERLAP
    endpoint.secret = signing.new_secret()
    endpoint.updated_at = now
    return endpoint.secret


def signing_secrets(endpoint, now: dt.datetime) -> list[str]:
    """``endpoint``: a ``WebhookEndpoint`` or a row with its secret columns."""
    secrets = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and \
            aware(endpoint.previous_secret_expires_at) > now:
        secrets.append(endpoint.previous_secret)
    return secrets


# -- deliveries --------------------------------------------------------------------------------
def envelope_json(event: events.Event) -> str:
    return json.dumps(event.body(), separators=(",", ":"), sort_keys=True)


def create_deliveries(session: Session, event: events.Event, body: str,
                      now: dt.datetime, endpoints: dict | None = None) -> int:
    """One pending delivery per enabled endpoint of the event's merchant that wants it;
    ``body`` is the envelope as sent (``envelope_json``). ``endpoints``: a merchant →
    endpoints memo for one transaction (a batch of events of one merchant reads them once)."""
    # plain statements built once: this runs for every event, and most merchants have no
    # endpoint
    if endpoints is None:
        endpoints = {}
    found = endpoints.get(event.merchant_id)
    if found is None:
        found = endpoints[event.merchant_id] = session.execute(
            _ENABLED_ENDPOINTS, {"merchant_id": event.merchant_id}).all()
    rows = []
    for endpoint_id, event_types in found:
        types = json.loads(event_types) if event_types else None
        if webhooks.wants(types, event, endpoint_id):
            rows.append({"id": new_id("wd"), "merchant_id": event.merchant_id,
                         "endpoint_id": endpoint_id, "event_id": event.event_id,
                         "event_type": event.type, "body": body, "replay": 0,
                         "status": "pending", "attempts": 0, "next_attempt_at": now,
                         "created_at": now})
    if rows:
        session.execute(_INSERT_DELIVERY, rows)
    return len(rows)


_ENABLED_ENDPOINTS = select(WebhookEndpoint.__table__.c.id,
                            WebhookEndpoint.__table__.c.event_types).where(
    WebhookEndpoint.__table__.c.merchant_id == bindparam("merchant_id"),
    WebhookEndpoint.__table__.c.enabled.is_(True))
_INSERT_DELIVERY = WebhookDelivery.__table__.insert()


@dataclasses.dataclass(frozen=True)
class Claim:
    """What a sender needs, read before the transaction ends (no DB access while sending)."""

    delivery_id: str
    endpoint_id: str
    merchant_id: str
    event_id: str
    url: str
    body: bytes
    secrets: tuple[str, ...]
    attempt: int  # the number of the attempt about to be made


def claim_due(session: Session, now: dt.datetime, limit: int,
              exclude: set[str] | frozenset = frozenset()) -> list[Claim]:
    if limit <= 0:
        return []
    d, e = WebhookDelivery.__table__, WebhookEndpoint.__table__  # plain statements: hot path
    query = (select(d.c.id, d.c.merchant_id, d.c.event_id, d.c.body, d.c.attempts,
                    e.c.id.label("endpoint_id"), e.c.url, e.c.secret, e.c.previous_secret,
                    e.c.previous_secret_expires_at)
             .join(e, e.c.id == d.c.endpoint_id)
             .where(d.c.status == "pending", d.c.next_attempt_at <= now,
                    or_(d.c.lease_until.is_(None), d.c.lease_until <= now),
                    e.c.enabled.is_(True))
             .order_by(d.c.next_attempt_at, d.c.id)
             .limit(limit + len(exclude)))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=d)
    claims = []
    for row in session.execute(query):
        if row.id in exclude or len(claims) >= limit:
            continue
        claims.append(Claim(row.id, row.endpoint_id, row.merchant_id, row.event_id, row.url,
                            row.body.encode(), tuple(signing_secrets(row, now)),
                            row.attempts + 1))
    if claims:
        session.execute(d.update().where(d.c.id.in_([c.delivery_id for c in claims]))
                        .values(lease_until=now + LEASE))
    return claims


def record(session: Session, claim: Claim, result: Result, now: dt.datetime, *,
           jitter: float = webhooks.DEFAULT_JITTER,
           rng: random.Random | None = None) -> list[events.Event]:
    """Store the attempt and decide what follows; return events to stage (exhaustion)."""
    delivery = session.get(WebhookDelivery, claim.delivery_id)
    if delivery is None:
        return []
    session.add(WebhookAttempt(delivery_id=delivery.id, number=claim.attempt, attempted_at=now,
                               status_code=result.status_code, latency_ms=result.latency_ms,
                               error=(result.error or None) and result.error[:1000]))
    delivery.attempts = claim.attempt
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error[:1000] if result.error else None
    delivery.lease_until = None
    if delivery.status != "pending":  # cancelled while in flight: keep the attempt, nothing else
        return []
    endpoint = session.get(WebhookEndpoint, claim.endpoint_id)
    failing_since = aware(endpoint.failing_since) if endpoint else None
    decision = webhooks.decide(result, claim.attempt, now, failing_since, jitter=jitter, rng=rng)
    delivery.status = decision.status
    delivery.next_attempt_at = decision.next_attempt_at
    if decision.status != "pending":
        delivery.completed_at = now
    if endpoint is not None:
        endpoint.failing_since = decision.failing_since
        if decision.disable_reason and endpoint.enabled:
            disable(session, endpoint, decision.disable_reason, now)
    if not decision.exhausted:
        return []
    return [events.new_event(
        "WebhookDeliveryFailed", merchant_id=delivery.merchant_id,
        aggregate_id=delivery.endpoint_id,
        payload={"delivery_id": delivery.id, "endpoint_id": delivery.endpoint_id,
                 "event_id": delivery.event_id, "event_type": delivery.event_type,
                 "attempts": delivery.attempts, "last_error": delivery.last_error},
        occurred_at=now)]


def get_delivery(session: Session, merchant_id: str, delivery_id: str) -> WebhookDelivery:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.merchant_id != merchant_id:
        raise NotFound("No such webhook delivery.")
    return delivery


def replay(session: Session, merchant_id: str, delivery_id: str,
           now: dt.datetime) -> WebhookDelivery:
    """Send the same event (same ``webhook-id`` and body) to the same endpoint again."""
    original = get_delivery(session, merchant_id, delivery_id)
    endpoint = session.get(WebhookEndpoint, original.endpoint_id)
    if endpoint is None:
        raise Conflict("The endpoint of this delivery was deleted.")
    if not endpoint.enabled:
        raise Conflict("The endpoint of this delivery is disabled; enable it first.")
    last = session.scalar(select(func.max(WebhookDelivery.replay)).where(
        WebhookDelivery.endpoint_id == original.endpoint_id,
        WebhookDelivery.event_id == original.event_id)) or 0
    copy = WebhookDelivery(
        id=new_id("wd"), merchant_id=merchant_id, endpoint_id=original.endpoint_id,
        event_id=original.event_id, event_type=original.event_type, body=original.body,
        replay=last + 1, status="pending", attempts=0, next_attempt_at=now, created_at=now)
    session.add(copy)
    session.flush()
    return copy


def list_deliveries(session: Session, merchant_id: str, *, endpoint_id: str | None = None,
                    event_id: str | None = None, status: str | None = None, page: int = 1,
                    per_page: int = 50) -> tuple[list[WebhookDelivery], int]:
    query = select(WebhookDelivery).where(WebhookDelivery.merchant_id == merchant_id)
    if endpoint_id:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if event_id:
        query = query.where(WebhookDelivery.event_id == event_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(WebhookDelivery.created_at.desc(),
                                          WebhookDelivery.id.desc())
                           .offset((page - 1) * per_page).limit(per_page))
    return list(rows), total


def attempts_of(session: Session, delivery_id: str) -> list[WebhookAttempt]:
    return list(session.scalars(select(WebhookAttempt)
                                .where(WebhookAttempt.delivery_id == delivery_id)
                                .order_by(WebhookAttempt.number, WebhookAttempt.id)))


def delivery_view(delivery: WebhookDelivery, attempts: list[WebhookAttempt] | None = None
                  ) -> dict:
    view = {
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "replay": delivery.replay,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": _iso(delivery.next_attempt_at) if delivery.status == "pending"
        else None,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": _iso(delivery.created_at),
        "completed_at": _iso(delivery.completed_at),
    }
    if attempts is not None:
        view["attempt_log"] = [{"number": a.number, "attempted_at": _iso(a.attempted_at),
                                "status_code": a.status_code, "latency_ms": a.latency_ms,
                                "error": a.error} for a in attempts]
    return view
