"""A customer signs up on the hosted page; the contract and the welcome e-mail follow."""
import email
import json
import sqlite3
import uuid
from email import policy
from urllib.parse import parse_qs, urlparse

from tests.support.cluster import wait_until


def contract_id_from(response) -> str:
    return parse_qs(urlparse(response.headers["Location"]).query)["contractId"][0]


def orders_stored(cluster, merchant_id: str) -> int:
    with sqlite3.connect(cluster.var / "signup.sqlite3") as db:
        return db.execute("SELECT count(*) FROM orders WHERE merchant_id = ?",
                          (merchant_id,)).fetchone()[0]


def test_signup_creates_contract_and_sends_welcome_mail(cluster, client, merchant):
    slug, variant = merchant["slug"], merchant["plan_variant_id"]

    page = client.open_signup(slug, variant)
    assert page.status_code == 200
    assert "Pro monthly" in page.text and 'name="email"' in page.text

    response = client.sign_up(slug, variant, email="ann@example.com", first_name="Ann",
                              last_name="Lee", country="DE")
    assert response.status_code == 303
    contract_id = contract_id_from(response)
    assert contract_id.startswith("ct_")

    def contract():
        reply = client.api("GET", f"/api/v1/contracts/{contract_id}", merchant["secret_key"])
        return reply.json() if reply.status_code == 200 else None

    found = wait_until(contract, timeout=15, what="the contract in the portal service")
    assert found["customer"]["email"] == "ann@example.com"
    assert found["plan_name"] == "Pro monthly"

    def welcome_mail():
        for path in (cluster.var / "mail").glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if message["To"] == "ann@example.com":
                return message
        return None

    message = wait_until(welcome_mail, timeout=15, what="the welcome e-mail")
    assert message["Subject"] == "Welcome to Pro monthly"
    assert "Ann Lee" in message.get_body(("plain",)).get_content()


def test_invalid_signup_shows_field_messages_and_stores_nothing(cluster, client, merchant):
    slug, variant = merchant["slug"], merchant["plan_variant_id"]

    response = client.sign_up(slug, variant, email="not-an-e-mail", first_name="Ann",
                              last_name="", country="DE")

    assert response.status_code == 400
    assert 'id="f-email"' in response.text and 'value="not-an-e-mail"' in response.text
    assert 'aria-describedby="e-email"' in response.text
    assert 'aria-describedby="e-last_name"' in response.text
    assert orders_stored(cluster, merchant["merchant_id"]) == 0


def test_another_merchants_contract_is_not_found(cluster, client, merchant):
    other = cluster.make_merchant()
    response = client.sign_up(merchant["slug"], merchant["plan_variant_id"],
                              email="bo@example.com", first_name="Bo", last_name="Ek",
                              country="DE")
    contract_id = contract_id_from(response)
    wait_until(lambda: client.api("GET", f"/api/v1/contracts/{contract_id}",
                                  merchant["secret_key"]).status_code == 200, timeout=15,
               what="the contract")

    reply = client.api("GET", f"/api/v1/contracts/{contract_id}", other["secret_key"])

    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "not_found"


def test_a_request_id_follows_the_order_through_rpc_and_events(cluster, client, merchant):
    request_id = f"e2e-{uuid.uuid4().hex}"
    page = client.open_signup(merchant["slug"], merchant["plan_variant_id"])
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]

    response = client.post(f"/signup/{merchant['slug']}/{merchant['plan_variant_id']}",
                           headers={"X-Request-Id": request_id},
                           data={"csrf_token": token, "email": "cy@example.com",
                                 "first_name": "Cy", "last_name": "Do", "country": "DE"})

    assert response.status_code == 303
    assert response.headers["X-Request-Id"] == request_id

    def handled_with_the_id():
        handled = set()
        for name in ("portal", "notifications"):
            for line in cluster.log(name).splitlines():
                if request_id in line:
                    entry = json.loads(line)
                    if entry.get("correlation_id") == request_id and "event_type" in entry:
                        handled.add((name, entry["event_type"]))
        return {("portal", "OrderSubmitted"), ("notifications", "ContractCreated")} <= handled

    wait_until(handled_with_the_id, timeout=15,
               what="the request id on the handled OrderSubmitted and ContractCreated")


def test_ops_endpoints_report_every_service_and_the_outbox(cluster, client):
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json()["services"]) == {"signup", "portal", "tokens", "notifications",
                                             "documents"}

    metrics = client.get("/metrics").text
    assert 'portico_service_up{service="portal"} 1.0' in metrics
    assert 'portico_outbox_pending{service="signup"}' in metrics
    assert "portico_http_request_seconds_bucket" in metrics
