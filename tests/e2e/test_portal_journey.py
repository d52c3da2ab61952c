"""A customer signs up, the merchant mints a portal link over the API, the customer opens it,
changes the address and cancels; the merchant's own consumer hears both facts."""
import re
import uuid
from urllib.parse import urlparse

import kombu

from tests.support.cluster import wait_until

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_END = re.compile(r'name="expected_end_date" value="([0-9-]+)"')


def bind_consumer(amqp_uri: str, *event_types: str):
    """A queue on the cluster's vhost bound to ``portal.events``, as a merchant would bind it."""
    connection = kombu.Connection(amqp_uri)
    exchange = kombu.Exchange("portal.events", type="topic", durable=True)
    queue = kombu.Queue(f"merchant-{uuid.uuid4().hex[:8]}", exchange=exchange, exclusive=True,
                        bindings=[kombu.binding(exchange, routing_key=t) for t in event_types]
                        )(connection.channel())
    queue.declare()
    received: list[dict] = []

    def arrived(event_type: str) -> dict:
        def find():
            while (message := queue.get(no_ack=True)) is not None:
                received.append(message.payload)
            return next((e for e in received if e["type"] == event_type), None)
        return wait_until(find, 20, what=f"{event_type} at the merchant's consumer")

    return arrived


def test_customer_changes_address_and_cancels_through_a_minted_portal_link(
        cluster, client, merchant):
    arrived = bind_consumer(cluster.amqp_uri, "CustomerChanged", "ContractCancelled")
    signed_up = client.sign_up(merchant["slug"], merchant["plan_variant_id"],
                               email="cleo@example.com", first_name="Cleo", last_name="Park",
                               country="DE", street="Altweg", house_number="1",
                               postal_code="10115", city="Berlin")
    assert signed_up.status_code == 303
    contract_id = re.search(r"contractId=([A-Za-z0-9_]+)", signed_up.headers["Location"]).group(1)
    key = merchant["secret_key"]
    wait_until(lambda: client.api("GET", f"/api/v1/contracts/{contract_id}", key)
               .status_code == 200, 15, what="the contract")

    # the merchant mints a link for its customer
    minted = client.api("POST", f"/api/v1/contracts/{contract_id}/self-service-token", key,
                        json={"validity_minutes": 60})
    assert minted.status_code == 201, minted.text
    link = minted.json()["url"]
    assert link.startswith(f"{cluster.base_url}/portal?token=pt_")

    # the customer opens it: a session, and the token leaves the address bar
    opened = client.get(urlparse(link).path + "?" + urlparse(link).query)
    assert opened.status_code == 303 and opened.headers["Location"] == "/portal"
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    home = client.get("/portal")
    assert home.status_code == 200 and "Altweg" in home.text

    # ... changes the address
    form = client.get("/portal/customer")
    saved = client.post("/portal/customer", data={
        "csrf_token": _CSRF.search(form.text).group(1), "contract_id": contract_id,
        "email": "cleo@example.com", "first_name": "Cleo", "last_name": "Park", "country": "DE",
        "street": "Neuer Weg", "house_number": "7", "postal_code": "20095", "city": "Hamburg"})
    assert saved.status_code == 303, saved.text

    # ... and cancels, confirming the end date the page states
    confirm = client.get("/portal/contract/cancel")
    end_date = _END.search(confirm.text).group(1)
    cancelled = client.post("/portal/contract/cancel", data={
        "csrf_token": _CSRF.search(confirm.text).group(1), "contract_id": contract_id,
        "expected_end_date": end_date})
    assert cancelled.status_code == 303, cancelled.text
    assert 'data-state="cancelled"' in client.get(cancelled.headers["Location"]).text

    changed = arrived("CustomerChanged")
    assert changed["payload"]["contract_id"] == contract_id
    assert changed["payload"]["before"]["street"] == "Altweg"
    assert changed["payload"]["after"]["street"] == "Neuer Weg"
    assert changed["payload"]["after"]["city"] == "Hamburg"
    ended = arrived("ContractCancelled")
    assert ended["aggregate_id"] == contract_id
    assert ended["payload"]["end_date"] == end_date
    assert ended["merchant_id"] == merchant["merchant_id"]
