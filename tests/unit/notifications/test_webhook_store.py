"""Webhook endpoints and deliveries in an in-memory SQLite database."""
import datetime as dt
import json

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from services.common import events, topology
from services.common.errors import Conflict, NotFound
from services.notifications import webhook_store, webhooks
from services.notifications.delivery import Result
from services.notifications.models import Base, WebhookAttempt
from services.notifications.service import NotificationsService

NOW = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session


def endpoint(session, merchant="m_1", **data):
    return webhook_store.create_endpoint(session, merchant, {"url": "https://h.example/",
                                                             **data}, NOW)


def event(merchant="m_1", type_name="ContractEnded"):
    payload = {"contract_id": "ct_1", "ended_on": dt.date(2027, 6, 30)}
    if type_name == "ContractChanged":
        payload = {"contract_id": "ct_1", "changes": {}}
    return events.new_event(type_name, merchant_id=merchant, aggregate_id="ct_1",
                            payload=payload)


def deliver(session, e):
    return webhook_store.create_deliveries(session, e, webhook_store.envelope_json(e), NOW)


def test_deliveries_only_for_the_merchants_enabled_interested_endpoints(session):
    everything = endpoint(session)
    only_changes = endpoint(session, event_types=["ContractChanged"])
    off = endpoint(session)
    webhook_store.disable(session, off, "test", NOW)
    endpoint(session, merchant="m_2")

    assert deliver(session, event()) == 1
    assert deliver(session, event(type_name="ContractChanged")) == 2
    claims = webhook_store.claim_due(session, NOW, 10)
    assert sorted(c.endpoint_id for c in claims) == sorted(
        [everything.id, everything.id, only_changes.id])
    body = json.loads(claims[0].body)
    assert body["merchant_id"] == "m_1" and body["event_id"] == claims[0].event_id


def test_claims_are_leased_and_exclusions_respected(session):
    endpoint(session)
    deliver(session, event())
    deliver(session, event())
    [first] = webhook_store.claim_due(session, NOW, 1)
    [second] = webhook_store.claim_due(session, NOW, 5)
    assert first.delivery_id != second.delivery_id
    assert webhook_store.claim_due(session, NOW, 5) == []
    later = NOW + webhook_store.LEASE + dt.timedelta(seconds=1)  # a sender died mid-flight
    assert len(webhook_store.claim_due(session, later, 5, exclude={first.delivery_id})) == 1


def test_recording_follows_the_rules_and_keeps_every_attempt(session):
    ep = endpoint(session)
    deliver(session, event())
    [claim] = webhook_store.claim_due(session, NOW, 1)
    assert webhook_store.record(session, claim, Result(500, 12, "HTTP 500"), NOW) == []
    view = webhook_store.delivery_view(webhook_store.list_deliveries(session, "m_1")[0][0],
                                       webhook_store.attempts_of(session, claim.delivery_id))
    assert view["status"] == "pending" and view["attempts"] == 1
    assert view["attempt_log"] == [{"number": 1, "attempted_at": NOW.isoformat(),
                                    "status_code": 500, "latency_ms": 12, "error": "HTTP 500"}]
    assert webhook_store.aware(ep.failing_since) == NOW

    later = NOW + dt.timedelta(seconds=6)
    [claim] = webhook_store.claim_due(session, later, 1)
    assert claim.attempt == 2
    webhook_store.record(session, claim, Result(200, 3), later)
    assert webhook_store.list_deliveries(session, "m_1")[0][0].status == "succeeded"
    assert ep.failing_since is None
    assert session.query(WebhookAttempt).count() == 2


def test_exhaustion_produces_webhook_delivery_failed(session):
    endpoint(session)
    deliver(session, event())
    now = NOW
    produced = []
    for _ in range(webhooks.MAX_ATTEMPTS):
        [claim] = webhook_store.claim_due(session, now, 1)
        produced = webhook_store.record(session, claim, Result(None, 15000, "timed out"), now)
        delivery = webhook_store.get_delivery(session, "m_1", claim.delivery_id)
        now = webhook_store.aware(delivery.next_attempt_at) or now
    [failed] = produced
    assert failed.type == "WebhookDeliveryFailed" and failed.merchant_id == "m_1"
    assert failed.payload["attempts"] == 10 and failed.payload["last_error"] == "timed out"


def test_410_and_disabling_cancel_what_is_pending(session):
    ep = endpoint(session)
    deliver(session, event())
    deliver(session, event())
    [claim, _] = webhook_store.claim_due(session, NOW, 2)
    webhook_store.record(session, claim, Result(410, 3, "HTTP 410"), NOW)
    assert not ep.enabled and "410" in ep.disabled_reason
    statuses = {d.status for d in webhook_store.list_deliveries(session, "m_1")[0]}
    assert statuses == {"cancelled"}
    assert deliver(session, event()) == 0


def test_replay_and_scoping(session):
    ep = endpoint(session)
    deliver(session, event())
    [claim] = webhook_store.claim_due(session, NOW, 1)
    webhook_store.record(session, claim, Result(200, 3), NOW)
    one = webhook_store.replay(session, "m_1", claim.delivery_id, NOW)
    two = webhook_store.replay(session, "m_1", claim.delivery_id, NOW)
    assert (one.replay, two.replay) == (1, 2) and one.event_id == two.event_id == claim.event_id
    with pytest.raises(NotFound):
        webhook_store.replay(session, "m_2", claim.delivery_id, NOW)
    with pytest.raises(NotFound):
        webhook_store.get_endpoint(session, "m_2", ep.id)
    webhook_store.update_endpoint(session, ep, {"enabled": False}, NOW)
    with pytest.raises(Conflict):
        webhook_store.replay(session, "m_1", claim.delivery_id, NOW)


def test_rotation_keeps_the_old_secret_for_a_day(session):
    ep = endpoint(session)
    old = ep.secret
    new = webhook_store.rotate_secret(ep, NOW)
    assert webhook_store.signing_secrets(ep, NOW) == [new, old]
    assert webhook_store.signing_secrets(ep, NOW + dt.timedelta(hours=24)) == [new]
    view = webhook_store.endpoint_view(ep, NOW)
    assert "secret" not in view and view["previous_secret_expires_at"] is not None


def test_one_subscription_per_handler_covering_every_merchant_visible_event():
    handlers = {name for name in dir(NotificationsService) if name.startswith("handle_")}
    subscribed = {(method, type_) for service, method, type_ in topology.SUBSCRIPTIONS
                  if service == "notifications"}
    assert {method for method, _ in subscribed} == handlers
    # the service's own events are fanned out where they are recorded, not heard back
    own = {name for name in webhooks.MERCHANT_VISIBLE
           if events.CATALOGUE[name].source == "notifications"}
    assert own == {"EmailSent", "WebhookDeliveryFailed"}
    assert sorted(type_ for _, type_ in subscribed) == sorted(
        set(webhooks.MERCHANT_VISIBLE) - own)
