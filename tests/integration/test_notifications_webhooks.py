"""Webhooks from a real notifications container to a real HTTP receiver on loopback.

Time is a FrozenClock the test moves; the dispatch timer polls every 50 ms of real time, so a
retry goes out as soon as the test has moved the clock past its due time.
"""
import datetime as dt
import random

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import create_engine, text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.common.errors import IdempotencyKeyReused, InvalidInput, NotFound
from services.notifications import webhooks
from services.notifications.dependencies import WebhookDispatcher
from services.notifications.service import NotificationsService
from tests.integration.test_notifications_kit import (
    Receiver,
    contract_ended,
    envelope,
    freeze,
    new_merchant_id,
    publish,
)
from tests.support.cluster import wait_until
from tests.support.services import dependency

FAST = {"WEBHOOKS_POLL_SECONDS": 0.05, "MAIL_POLL_SECONDS": 0.05,
        "WEBHOOKS_ALLOW_LOOPBACK": "true", "WEBHOOKS_TIMEOUT_SECONDS": 2}


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def notifications(start_service):
    return start_service(NotificationsService, "notifications", **FAST)


@pytest.fixture
def rpc(rabbit_config):
    with ServiceRpcProxy("notifications", rabbit_config, timeout=20) as proxy:
        yield proxy


def db_rows(start_service, sql: str, **params) -> list:
    engine = create_engine(start_service.db_url("notifications"))
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    finally:
        engine.dispose()


def wait_for_rounds(container, rounds: int = 2) -> None:
    """Let the dispatcher look at least ``rounds`` more times (instead of sleeping)."""
    dispatcher = dependency(container, WebhookDispatcher)
    start = dispatcher.rounds
    wait_until(lambda: dispatcher.rounds >= start + rounds, timeout=5, what="dispatch rounds")


def test_delivery_is_signed_per_standard_webhooks(notifications, rpc, receiver, rabbit_config):
    merchant = new_merchant_id()
    endpoint = rpc.create_webhook_endpoint(merchant, {"url": receiver.url + "/hook"})
    assert endpoint["secret"].startswith("whsec_") and endpoint["enabled"] is True
    event = contract_ended(merchant)

    publish(rabbit_config["AMQP_URI"], event)

    request = wait_until(lambda: receiver.on("/hook") and receiver.on("/hook")[0], timeout=10,
                         what="the webhook")
    verified = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert verified["event_id"] == event.event_id == request.headers["webhook-id"]
    assert verified["type"] == "ContractEnded" and verified["merchant_id"] == merchant
    assert verified["aggregate_id"] == event.aggregate_id and verified["sequence"] is None
    assert verified["payload"] == {"contract_id": event.aggregate_id, "ended_on": "2027-06-30"}

    # what a receiver must reject
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(request.body.replace(b"2027", b"2028"),
                                           request.headers)
    other = rpc.create_webhook_endpoint(merchant, {"url": receiver.url + "/other",
                                                   "event_types": ["InvoiceIssued"]})
    with pytest.raises(WebhookVerificationError):
        Webhook(other["secret"]).verify(request.body, request.headers)
    for shift in (-301, +301):
        moved = {**request.headers,
                 "webhook-timestamp": str(int(request.headers["webhook-timestamp"]) + shift)}
        with pytest.raises(WebhookVerificationError):
            Webhook(endpoint["secret"]).verify(request.body, moved)
    for missing in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        with pytest.raises(WebhookVerificationError):
            Webhook(endpoint["secret"]).verify(
                request.body, {k: v for k, v in request.headers.items()
                               if k.lower() != missing})
    # the endpoint filtered to InvoiceIssued got nothing
    assert receiver.on("/other") == []


def test_failing_receiver_is_retried_on_schedule_until_it_succeeds(
        notifications, rpc, receiver, rabbit_config, start_service):
    receiver.script = lambda n, path: (500, {}) if n <= 3 else (204, {})
    clock = freeze(notifications)
    merchant = new_merchant_id()
    endpoint = rpc.create_webhook_endpoint(merchant, {"url": receiver.url + "/hook"})
    event = contract_ended(merchant)
    publish(rabbit_config["AMQP_URI"], event)
    wait_until(lambda: len(receiver.requests) == 1, timeout=10, what="the first attempt")

    for attempt, delay in enumerate(webhooks.SCHEDULE[:3], start=1):
        delivery = wait_until(lambda a=attempt: _only_delivery(rpc, merchant, attempts=a),
                              timeout=5, what=f"attempt {attempt} recorded")
        due = dt.datetime.fromisoformat(delivery["next_attempt_at"])
        assert delay * 0.9 <= due - clock.now() <= delay * 1.1  # the schedule, with jitter
        clock.set(due - dt.timedelta(seconds=1))
        wait_for_rounds(notifications)
        assert len(receiver.requests) == attempt  # not before it is due
        clock.set(due)
        wait_until(lambda a=attempt: len(receiver.requests) == a + 1, timeout=5,
                   what=f"retry {attempt}")

    delivery = wait_until(lambda: _only_delivery(rpc, merchant, status="succeeded"),
                          timeout=5, what="success recorded")
    assert delivery["attempts"] == 4
    detail = rpc.get_webhook_delivery(merchant, delivery["id"])
    assert [a["status_code"] for a in detail["attempt_log"]] == [500, 500, 500, 204]
    assert all(a["latency_ms"] >= 0 for a in detail["attempt_log"])
    # the same webhook-id every time: the receiver processes the event once
    assert {r.headers["webhook-id"] for r in receiver.requests} == {event.event_id}
    processed = {Webhook(endpoint["secret"]).verify(r.body, r.headers)["event_id"]
                 for r in receiver.requests}
    assert processed == {event.event_id}
    assert rpc.get_webhook_endpoint(merchant, endpoint["id"])["failing_since"] is None


def test_exhausted_delivery_emits_webhook_delivery_failed(
        notifications, rpc, receiver, rabbit_config, start_service):
    receiver.script = lambda n, path: (500, {}) if path == "/down" else (200, {})
    clock = freeze(notifications)
    merchant = new_merchant_id()
    down = rpc.create_webhook_endpoint(merchant, {"url": receiver.url + "/down"})
    watcher = rpc.create_webhook_endpoint(merchant, {
        "url": receiver.url + "/watch", "event_types": ["WebhookDeliveryFailed"]})
    event = contract_ended(merchant)
    publish(rabbit_config["AMQP_URI"], event)

    for attempt in range(1, webhooks.MAX_ATTEMPTS):
        delivery = wait_until(lambda a=attempt: _only_delivery(rpc, merchant, attempts=a,
                                                               endpoint_id=down["id"]),
                              timeout=5, what=f"attempt {attempt}")
        clock.set(dt.datetime.fromisoformat(delivery["next_attempt_at"]))
    failed = wait_until(lambda: _only_delivery(rpc, merchant, status="failed",
                                               endpoint_id=down["id"]), timeout=5,
                        what="the delivery exhausted")
    assert failed["attempts"] == webhooks.MAX_ATTEMPTS == 10
    assert len(receiver.on("/down")) == 10

    notice = wait_until(lambda: receiver.on("/watch") and receiver.on("/watch")[0], timeout=10,
                        what="WebhookDeliveryFailed at the other endpoint")
    body = Webhook(watcher["secret"]).verify(notice.body, notice.headers)
    assert body["type"] == "WebhookDeliveryFailed"
    assert body["payload"]["delivery_id"] == failed["id"]
    assert body["payload"]["event_id"] == event.event_id
    assert body["payload"]["attempts"] == 10
    assert body["payload"]["last_error"] == "HTTP 500"
    # the failing endpoint is not told about its own failure
    assert all(envelope(r)["type"] == "ContractEnded" for r in receiver.on("/down"))
    # about 3 days of failing: still enabled; one more failure after day 5 disables it
    endpoint = rpc.get_webhook_endpoint(merchant, down["id"])
    assert endpoint["enabled"] is True
    # the retry delays carry random jitter, so "3 days + 2" may fall short of 5: go to the day
    clock.set(dt.datetime.fromisoformat(endpoint["failing_since"])
              + webhooks.DISABLE_AFTER_FAILING)
    publish(rabbit_config["AMQP_URI"], contract_ended(merchant))
    wait_until(lambda: len(receiver.on("/down")) == 11, timeout=10, what="the next event")
    wait_until(lambda: not rpc.get_webhook_endpoint(merchant, down["id"])["enabled"],
               timeout=5, what="the endpoint disabled after 5 days of failures")
    assert "5 days" in rpc.get_webhook_endpoint(merchant, down["id"])["disabled_reason"]


def test_410_disables_the_endpoint(notifications, rpc, receiver, rabbit_config):
    receiver.script = lambda n, path: (410, {})
    merchant = new_merchant_id()
    endpoint = rpc.create_webhook_endpoint(merchant, {"url": receiver.url + "/gone"})
    publish(rabbit_config["AMQP_URI"], contract_ended(merchant))

    wait_until(lambda: not rpc.get_webhook_endpoint(merchant, endpoint["id"])["enabled"],
               timeout=10, what="the endpoint disabled")
    assert "410" in rpc.get_webhook_endpoint(merchant, endpoint["id"])["disabled_reason"]
    assert _only_delivery(rpc, merchant)["status"] == "cancelled"

    publish(rabbit_config["AMQP_URI"], contract_ended(merchant))
    wait_for_rounds(notifications, 3)
    assert len(receiver.requests) == 1
    assert rpc.list_webhook_deliveries(merchant)["total"] == 1  # nothing for a disabled one


def test_redirect_is_not_followed_and_retry_after_is_honoured(
        notifications, rpc, receiver, rabbit_config):
    def script(n, path):
        if path == "/moved":
            return 302, {"Location": receiver.url + "/target"}
        return 429, {"Retry-After": "120"}
    receiver.script = script
    clock = freeze(notifications)
    merchant = new_merchant_id()
    moved = rpc.create_webhook_endpoint(merchant, {"url": receiver.url + "/moved"})
    busy = rpc.create_webhook_endpoint(merchant, {"url": receiver.url + "/busy"})
    publish(rabbit_config["AMQP_URI"], contract_ended(merchant))

    redirected = wait_until(lambda: _only_delivery(rpc, merchant, attempts=1,
                                                   endpoint_id=moved["id"]), timeout=10,
                            what="the redirected attempt")
    assert redirected["status"] == "pending" and redirected["last_status_code"] == 302
    assert "redirect" in redirected["last_error"]
    assert receiver.on("/target") == []
    limited = wait_until(lambda: _only_delivery(rpc, merchant, attempts=1,
                                                endpoint_id=busy["id"]), timeout=10,
                         what="the rate-limited attempt")
    assert dt.datetime.fromisoformat(limited["next_attempt_at"]) - clock.now() == \
        dt.timedelta(seconds=120)


def test_replay_resends_the_same_event(notifications, rpc, receiver, rabbit_config):
    merchant = new_merchant_id()
    endpoint = rpc.create_webhook_endpoint(merchant, {"url": receiver.url + "/hook"})
    event = contract_ended(merchant)
    publish(rabbit_config["AMQP_URI"], event)
    first = wait_until(lambda: _only_delivery(rpc, merchant, status="succeeded"), timeout=10,
                       what="the first delivery")

    replay = rpc.replay_webhook_delivery(merchant, first["id"])

    assert replay["id"] != first["id"] and replay["replay"] == 1
    wait_until(lambda: len(receiver.requests) == 2, timeout=10, what="the replay")
    one, two = receiver.requests
    assert one.body == two.body
    assert one.headers["webhook-id"] == two.headers["webhook-id"] == event.event_id
    Webhook(endpoint["secret"]).verify(two.body, two.headers)
    with pytest.raises(NotFound):
        rpc.replay_webhook_delivery(new_merchant_id(), first["id"])


def test_secret_rotation_signs_with_both_secrets_for_a_day(
        notifications, rpc, receiver, rabbit_config):
    clock = freeze(notifications)
    merchant = new_merchant_id()
    endpoint = rpc.create_webhook_endpoint(merchant, {"url": receiver.url + "/hook"})
    rotated = rpc.rotate_webhook_secret(merchant, endpoint["id"])
    assert rotated["secret"] != endpoint["secret"]
    assert rpc.get_webhook_secret(merchant, endpoint["id"])["secret"] == rotated["secret"]

    publish(rabbit_config["AMQP_URI"], contract_ended(merchant))
    first = wait_until(lambda: receiver.requests and receiver.requests[0], timeout=10,
                       what="a delivery during the rotation")
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    Webhook(endpoint["secret"]).verify(first.body, first.headers)
    Webhook(rotated["secret"]).verify(first.body, first.headers)

    clock.advance(hours=24, seconds=1)
    publish(rabbit_config["AMQP_URI"], contract_ended(merchant))
    second = wait_until(lambda: len(receiver.requests) == 2 and receiver.requests[1],
                        timeout=10, what="a delivery after the rotation")
    assert len(second.headers["webhook-signature"].split(" ")) == 1
    Webhook(rotated["secret"]).verify(second.body, second.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(second.body, second.headers)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "https://127.0.0.1/hook", "https://localhost/hook",
    "https://[::1]/hook", "https://10.1.2.3/hook", "https://192.168.0.10/hook",
    "https://172.16.5.4/hook", "https://169.254.169.254/latest/meta-data",
    "https://[fd00:ec2::254]/", "https://100.100.100.200/", "https://0.0.0.0/",
    "https://[::ffff:127.0.0.1]/", "https://2130706433/", "https://0x7f.1/",
    "http://example.com/hook", "ftp://example.com/", "https://user:pw@example.com/",
])
def test_ssrf_guard_refuses_at_registration(start_service, rabbit_config, url):
    start_service(NotificationsService, "notifications", WEBHOOKS_ALLOW_LOOPBACK="false",
                  PUBLIC_URL="https://portico.example")
    with ServiceRpcProxy("notifications", rabbit_config, timeout=20) as rpc:
        with pytest.raises(InvalidInput) as refused:
            rpc.create_webhook_endpoint(new_merchant_id(), {"url": url})
    assert "url" in refused.value.fields


def test_ssrf_guard_checks_again_at_send_time(notifications, rpc, receiver, rabbit_config):
    merchant = new_merchant_id()
    endpoint = rpc.create_webhook_endpoint(merchant, {"url": receiver.url + "/hook"})
    # the address is no longer acceptable when sending (as after a DNS change)
    dependency(notifications, WebhookDispatcher).allow_loopback = False
    publish(rabbit_config["AMQP_URI"], contract_ended(merchant))

    delivery = wait_until(lambda: _only_delivery(rpc, merchant, attempts=1), timeout=10,
                          what="the refused attempt")
    assert delivery["last_error"].startswith("refused:")
    assert delivery["last_status_code"] is None
    assert receiver.requests == []
    assert rpc.get_webhook_endpoint(merchant, endpoint["id"])["enabled"] is True


def test_each_merchant_receives_only_its_own_events(notifications, rpc, receiver,
                                                    rabbit_config):
    rng = random.Random(6)
    merchants = [new_merchant_id() for _ in range(6)]
    with_endpoint = merchants[:4]
    for merchant in with_endpoint:
        rpc.create_webhook_endpoint(merchant, {"url": f"{receiver.url}/{merchant}"})
    sent = [contract_ended(rng.choice(merchants)) for _ in range(60)]

    publish(rabbit_config["AMQP_URI"], *sent)

    expected = {m: {e.event_id for e in sent if e.merchant_id == m} for m in with_endpoint}
    wait_until(lambda: len(receiver.requests) == sum(map(len, expected.values())), timeout=20,
               what="every delivery")
    for merchant in with_endpoint:
        got = [envelope(r) for r in receiver.on(f"/{merchant}")]
        assert {b["event_id"] for b in got} == expected[merchant]
        assert {b["merchant_id"] for b in got} <= {merchant}
    for merchant in merchants[4:]:
        assert rpc.list_webhook_deliveries(merchant)["total"] == 0


def test_endpoints_are_scoped_to_their_merchant(notifications, rpc, receiver):
    merchant, other = new_merchant_id(), new_merchant_id()
    endpoint = rpc.create_webhook_endpoint(merchant, {"url": receiver.url + "/hook"})
    for call in (lambda: rpc.get_webhook_endpoint(other, endpoint["id"]),
                 lambda: rpc.update_webhook_endpoint(other, endpoint["id"], {"enabled": False}),
                 lambda: rpc.rotate_webhook_secret(other, endpoint["id"]),
                 lambda: rpc.get_webhook_secret(other, endpoint["id"]),
                 lambda: rpc.delete_webhook_endpoint(other, endpoint["id"])):
        with pytest.raises(NotFound):
            call()
    assert rpc.list_webhook_endpoints(other) == []
    assert [e["id"] for e in rpc.list_webhook_endpoints(merchant)] == [endpoint["id"]]

    with pytest.raises(InvalidInput) as bad:
        rpc.create_webhook_endpoint(merchant, {"url": receiver.url, "event_types": ["Nope"],
                                               "colour": "red"})
    assert set(bad.value.fields) == {"event_types.0", "colour"}
    updated = rpc.update_webhook_endpoint(merchant, endpoint["id"], {
        "enabled": False, "event_types": ["InvoiceIssued"], "description": "ERP"})
    assert updated["enabled"] is False and updated["event_types"] == ["InvoiceIssued"]
    assert updated["disabled_reason"] == "Disabled through the API."
    rpc.delete_webhook_endpoint(merchant, endpoint["id"])
    assert rpc.list_webhook_endpoints(merchant) == []


def test_idempotency_key_creates_one_endpoint(notifications, rpc, receiver):
    merchant = new_merchant_id()
    body = {"url": receiver.url + "/hook"}
    first = rpc.create_webhook_endpoint(merchant, body, "key-1")
    again = rpc.create_webhook_endpoint(merchant, body, "key-1")
    assert again == first
    assert len(rpc.list_webhook_endpoints(merchant)) == 1
    with pytest.raises(IdempotencyKeyReused):
        rpc.create_webhook_endpoint(merchant, {"url": receiver.url + "/other"}, "key-1")
    assert rpc.create_webhook_endpoint(new_merchant_id(), body, "key-1")["id"] != first["id"]


def _only_delivery(rpc, merchant, *, attempts=None, status=None, endpoint_id=None):
    items = rpc.list_webhook_deliveries(merchant, {"endpoint_id": endpoint_id}
                                        if endpoint_id else {})["items"]
    if len(items) != 1:
        return None
    item = items[0]
    if attempts is not None and item["attempts"] != attempts:
        return None
    if status is not None and item["status"] != status:
        return None
    return item
