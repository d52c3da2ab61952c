"""Webhook rules: signatures, the retry schedule, what follows an attempt, who gets what."""
import base64
import datetime as dt
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from services.common import events
from services.notifications import delivery, signing, webhooks
from services.notifications.delivery import Result

NOW = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.UTC)


def test_secret_format_is_standard_webhooks():
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret[6:])) <= 64
    assert signing.new_secret() != secret


def test_signature_verifies_with_the_standardwebhooks_package():
    secret, body = signing.new_secret(), b'{"type":"ContractEnded","payload":{}}'
    now = int(dt.datetime.now(dt.UTC).timestamp())
    headers = signing.headers([secret], "evt-1", now, body)
    assert Webhook(secret).verify(body, headers) == {"type": "ContractEnded", "payload": {}}
    assert headers["webhook-signature"].startswith("v1,")


def test_two_signatures_during_rotation_each_verify():
    old, new = signing.new_secret(), signing.new_secret()
    now = int(dt.datetime.now(dt.UTC).timestamp())
    headers = signing.headers([new, old], "evt-1", now, b"{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(b"{}", headers)
    Webhook(new).verify(b"{}", headers)


def test_schedule_is_the_documented_one_about_three_days():
    assert [int(d.total_seconds()) for d in webhooks.SCHEDULE] == [
        5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    assert dt.timedelta(days=3) < sum(webhooks.SCHEDULE, dt.timedelta()) < dt.timedelta(days=3.3)
    assert webhooks.MAX_ATTEMPTS == 10
    assert webhooks.retry_delay(10) is None and webhooks.retry_delay(0) is None


@given(st.integers(min_value=1, max_value=9), st.floats(min_value=0, max_value=0.5),
       st.integers())
def test_jitter_stays_within_its_bounds(failed, jitter, seed):
    delay = webhooks.retry_delay(failed, jitter=jitter, rng=random.Random(seed))
    base = webhooks.SCHEDULE[failed - 1]
    assert base * (1 - jitter) <= delay <= base * (1 + jitter)


def test_jitter_spreads_retries():
    rng = random.Random(1)
    delays = {webhooks.retry_delay(3, rng=rng) for _ in range(20)}
    assert len(delays) > 10


@pytest.mark.parametrize("code", [200, 201, 202, 204, 299])
def test_2xx_is_success(code):
    assert webhooks.decide(Result(code, 5), 1, NOW, NOW).status == "succeeded"


@pytest.mark.parametrize(("result", "status"), [
    (Result(301, 3, "HTTP 301: redirects are not followed"), "pending"),
    (Result(302, 3), "pending"), (Result(400, 3), "pending"), (Result(404, 3), "pending"),
    (Result(500, 3), "pending"), (Result(None, 15000, "timed out after 15 s"), "pending"),
    (Result(None, 1, "refused: private address"), "pending"),
])
def test_everything_else_is_a_failure_to_retry(result, status):
    decision = webhooks.decide(result, 1, NOW, None, jitter=0)
    assert decision.status == status
    assert decision.next_attempt_at == NOW + dt.timedelta(seconds=5)
    assert decision.failing_since == NOW and decision.disable_reason is None


def test_410_disables_the_endpoint():
    decision = webhooks.decide(Result(410, 3), 1, NOW, None)
    assert decision.status == "cancelled" and "410" in decision.disable_reason


@pytest.mark.parametrize("code", [429, 503])
def test_retry_after_is_honoured(code):
    decision = webhooks.decide(Result(code, 3, retry_after=3600), 1, NOW, None)
    assert decision.next_attempt_at == NOW + dt.timedelta(hours=1)
    without = webhooks.decide(Result(code, 3), 2, NOW, None, jitter=0)
    assert without.next_attempt_at == NOW + dt.timedelta(minutes=5)


def test_the_tenth_failure_exhausts_the_delivery():
    assert webhooks.decide(Result(500, 3), 9, NOW, NOW, jitter=0).status == "pending"
    last = webhooks.decide(Result(500, 3), 10, NOW, NOW)
    assert last.status == "failed" and last.exhausted and last.next_attempt_at is None


def test_five_days_without_success_disables():
    since = NOW - dt.timedelta(days=5)
    decision = webhooks.decide(Result(500, 3), 2, NOW, since)
    assert decision.status == "cancelled" and "5 days" in decision.disable_reason
    almost = webhooks.decide(Result(500, 3), 2, NOW, since + dt.timedelta(seconds=1))
    assert almost.status == "pending" and almost.disable_reason is None


def _event(type_name="ContractEnded", **payload):
    payload = payload or {"contract_id": "ct_1", "ended_on": dt.date(2027, 1, 1)}
    return events.new_event(type_name, merchant_id="m_1", aggregate_id="a1", payload=payload)


def test_which_endpoints_want_an_event():
    event = _event()
    assert webhooks.wants(None, event, "we_1")
    assert webhooks.wants(["ContractEnded", "InvoiceIssued"], event, "we_1")
    assert not webhooks.wants(["InvoiceIssued"], event, "we_1")
    hidden = _event("BillingDue", contract_id="ct_1", period_start=dt.date(2027, 1, 1),
                    period_end=dt.date(2027, 1, 31))
    assert not webhooks.wants(None, hidden, "we_1")  # not merchant-visible
    failed = _event("WebhookDeliveryFailed", delivery_id="wd_1", endpoint_id="we_1",
                    event_id="e", event_type="ContractEnded", attempts=10, last_error="x")
    assert not webhooks.wants(None, failed, "we_1")  # not told about its own failure
    assert webhooks.wants(None, failed, "we_2")


def test_merchant_visible_types_come_from_the_catalogue():
    assert "BillingDue" not in webhooks.MERCHANT_VISIBLE
    assert {"ContractCreated", "InvoiceIssued", "EmailSent",
            "WebhookDeliveryFailed"} <= set(webhooks.MERCHANT_VISIBLE)


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0), ("0", 0.0), ("999999999", 86400.0), (None, None), ("soon", None),
    ("Fri, 15 Jan 2027 09:01:00 GMT", 60.0), ("Fri, 15 Jan 2027 08:00:00 GMT", 0.0),
])
def test_retry_after_parsing(value, seconds):
    now = NOW.timestamp()
    assert delivery.parse_retry_after(value, now) == seconds
