"""A merchant registers a webhook and a customer signs up: the signed webhook arrives, the
welcome e-mail appears on the local mail page, and its portal link opens the portal."""
import re

import pytest
from standardwebhooks.webhooks import Webhook

from tests.integration.test_notifications_kit import Receiver
from tests.support.cluster import wait_until


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def sign_up(client, merchant, email):
    response = client.sign_up(merchant["slug"], merchant["plan_variant_id"], email=email,
                              first_name="Ann", last_name="Lee", country="DE")
    assert response.status_code == 303, response.text
    return re.search(r"contractId=([A-Za-z0-9_]+)", response.headers["Location"]).group(1)


def test_signup_sends_a_signed_webhook_and_a_mail_whose_link_opens_the_portal(
        client, merchant, receiver):
    key = merchant["secret_key"]
    created = client.api("POST", "/api/v1/webhook-endpoints", key,
                         json={"url": receiver.url + "/portico",
                               "event_types": ["ContractCreated", "EmailSent"]})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]

    contract_id = sign_up(client, merchant, "ann.e2e@example.com")

    def received(event_type, **payload):
        for request in receiver.requests:
            event = Webhook(secret).verify(request.body, request.headers)
            if event["type"] == event_type and payload.items() <= event["payload"].items():
                return event
        return None

    contract_created = wait_until(lambda: received("ContractCreated"), timeout=20,
                                  what="the ContractCreated webhook")
    assert contract_created["payload"]["contract_id"] == contract_id
    assert contract_created["merchant_id"] == merchant["merchant_id"]
    email_sent = wait_until(lambda: received("EmailSent", kind="welcome"), timeout=20,
                            what="the EmailSent webhook")
    assert email_sent["payload"]["contract_id"] == contract_id

    deliveries = client.api("GET", "/api/v1/webhook-deliveries", key).json()
    assert {d["status"] for d in deliveries["items"]} == {"succeeded"}
    mails = client.api("GET", f"/api/v1/emails?contract_id={contract_id}&kind=welcome",
                       key).json()
    [welcome] = mails["items"]
    assert (welcome["kind"], welcome["status"], welcome["recipient"]) == (
        "welcome", "sent", "ann.e2e@example.com")

    page = client.get("/dev/mail")
    assert page.status_code == 200
    assert "Welcome to Pro monthly" in page.text and "ann.e2e@example.com" in page.text
    section = page.text[page.text.index(f'id="{welcome["id"]}"'):]
    link = re.search(r'<a href="(http://[^"]+/portal\?token=[^"]+)"', section).group(1)
    opened = client.get(link.replace("&amp;", "&").removeprefix(client.base_url))
    assert opened.status_code == 303 and opened.headers["Location"] == "/portal"
    home = client.get("/portal")
    assert home.status_code == 200 and "Pro monthly" in home.text

    html = client.get(f"/dev/mail/{welcome['id']}/html")
    assert html.status_code == 200 and "sandbox" in html.headers["Content-Security-Policy"]


def test_templates_and_endpoints_through_the_api(cluster, client, merchant):
    key, other = merchant["secret_key"], cluster.make_merchant()["secret_key"]
    bad = client.api("PUT", "/api/v1/email-templates/welcome/en", key, json={
        "subject": "Welcome", "text": "Hello\n{customer.nickname}", "html": "<p>Hi</p>"})
    assert bad.status_code == 400
    [problem] = bad.json()["error"]["fields"]["text"]
    assert problem["params"] == {"line": 2} and "nickname" in problem["message"]

    good = client.api("PUT", "/api/v1/email-templates/welcome/en", key, json={
        "subject": "Hi {customer.first_name}", "text": "{SelfServicePortalUrl}?language=en",
        "html": '<a href="{SelfServicePortalUrl}">portal</a>'})
    assert good.status_code == 200, good.text
    contract_id = sign_up(client, merchant, "bo.e2e@example.com")
    mail = wait_until(lambda: [m for m in client.api(
        "GET", f"/api/v1/emails?contract_id={contract_id}&kind=welcome&status=sent",
        key).json()["items"]],
        timeout=20, what="the mail from the merchant's template")
    assert mail[0]["subject"] == "Hi Ann"

    refused = client.api("POST", "/api/v1/webhook-endpoints", key,
                         json={"url": "https://169.254.169.254/latest"})
    assert refused.status_code == 400 and "url" in refused.json()["error"]["fields"]
    endpoint = client.api("POST", "/api/v1/webhook-endpoints", key, json={  # no DNS in tests
        "url": "https://93.184.216.34/hooks", "event_types": ["ContractEnded"]}).json()
    assert client.api("GET", f"/api/v1/webhook-endpoints/{endpoint['id']}",
                      other).status_code == 404
    assert client.api("GET", "/api/v1/webhook-endpoints", "sk_wrong").status_code == 401
    assert client.api("DELETE", f"/api/v1/webhook-endpoints/{endpoint['id']}",
                      key).status_code == 204
    assert client.api("GET", "/api/v1/webhook-endpoints", key).json() == {"items": []}
