"""The portal over HTTP: the gateway, the portal and tokens services are real containers on
one RabbitMQ vhost with migrated SQLite databases; only signup (settings, API keys) and documents
(the PDF) are replaced by small fakes answering their RPCs.

Covers: token minting over the API and its validity edges, the exchange and redirect, cookie
attributes (local and behind HTTPS, for iframes), expiry with the tokens service's frozen clock,
revocation on the next request, refusal pages that reveal nothing, rate limiting, CSRF, the
cross-contract access matrix, customer changes, payment method, cancellation, sections, styling,
languages, documents and the customer/contract REST endpoints.
"""
from __future__ import annotations

import base64
import copy
import datetime as dt
import re
import secrets
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import kombu
import pytest
import requests
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from gateway.service import GatewayService
from services.common import events
from services.common.clock import Clock, FrozenClock
from services.common.errors import NotFound, Unauthorized
from services.portal.service import PortalService
from services.tokens.service import TokensService
from tests.support.cluster import free_port, wait_until
from tests.support.services import dependency

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGES = ("/portal", "/portal/customer", "/portal/payment", "/portal/contract/cancel",
         "/portal/documents")
POSTS = ("/portal/customer", "/portal/payment", "/portal/contract/cancel",
         "/portal/contract/withdraw-cancellation", "/portal/logout")


# -- the replaced services ------------------------------------------------------------------------


class Fakes:
    """What the fake signup and documents services answer; reset for every test."""

    def __init__(self):
        self.keys: dict[str, dict] = {}
        self.settings: dict[str, dict] = {}
        self.documents: list[dict] = []


FAKE = Fakes()


class FakeSignup:
    name = "signup"

    @rpc
    def authenticate(self, secret_key):
        if secret_key not in FAKE.keys:
            raise Unauthorized("unknown key")
        return FAKE.keys[secret_key]

    @rpc
    def get_settings(self, merchant_id):
        return copy.deepcopy(FAKE.settings.get(merchant_id, {}))

    @rpc
    def update_self_service_settings(self, merchant_id, body):
        FAKE.settings[merchant_id].update(body)
        return copy.deepcopy(FAKE.settings[merchant_id])


class FakeDocuments:
    name = "documents"

    @rpc
    def get_pdf(self, merchant_id, document_id, contract_id=None):
        for d in FAKE.documents:
            if d["id"] == document_id and d["merchant_id"] == merchant_id \
                    and contract_id in (None, d["contract_id"]):
                return {"filename": f"{d['number']}.pdf", "sha256": "",
                        "content_b64": base64.b64encode(d["pdf"]).decode()}
        raise NotFound("document not found")


# -- the stack ------------------------------------------------------------------------------------


@dataclass
class Merchant:
    id: str
    key: str


@dataclass
class Stack:
    base_url: str
    amqp_uri: str
    tokens: object
    portal: object
    clock: FrozenClock
    merchants: list = field(default_factory=list)

    def merchant(self, **settings) -> Merchant:
        merchant = Merchant(f"m_{uuid.uuid4().hex[:10]}", f"sk_{secrets.token_urlsafe(24)}")
        FAKE.keys[merchant.key] = {"id": merchant.id, "slug": merchant.id}
        FAKE.settings[merchant.id] = {
            "default_language": "en", "token_validity_minutes": 30,
            "merchant": {"id": merchant.id, "slug": merchant.id, "name": "Acme Fitness"},
            **settings}
        return merchant

    def contract(self, merchant: Merchant, **order) -> str:
        """An order as the signup service would announce it → the contract id, once stored."""
        payload = order_payload(**order)
        event = events.new_event("OrderSubmitted", merchant_id=merchant.id,
                                 aggregate_id=payload["order_id"], payload=payload)
        event_dispatcher({"AMQP_URI": self.amqp_uri})("signup", "OrderSubmitted", event.body())
        wait_until(lambda: self.api("GET", f"/api/v1/contracts/{payload['contract_id']}",
                                    merchant).status_code == 200, 10, what="the contract")
        return payload["contract_id"]

    def announce_invoice(self, document: dict) -> None:
        """``InvoiceIssued`` for a fake document, as the documents service would publish it."""
        event = events.new_event(
            "InvoiceIssued", merchant_id=document["merchant_id"], aggregate_id=document["id"],
            payload={"document_id": document["id"], "number": document["number"],
                     "contract_id": document["contract_id"], "customer_id": "cus_1",
                     "issue_date": dt.date(2026, 1, 1), "currency": "EUR",
                     "net_total": Decimal("29.00"), "tax_total": Decimal("5.51"),
                     "gross_total": Decimal("34.51")})
        event_dispatcher({"AMQP_URI": self.amqp_uri})("documents", "InvoiceIssued",
                                                      event.body())

    def api(self, method, path, merchant: Merchant, **kwargs) -> requests.Response:
        return requests.request(method, self.base_url + path, timeout=10,
                                headers={"Authorization": f"Bearer {merchant.key}"}, **kwargs)

    def mint(self, merchant, contract_id, minutes=60) -> dict:
        reply = self.api("POST", f"/api/v1/contracts/{contract_id}/self-service-token",
                         merchant, json={"validity_minutes": minutes})
        assert reply.status_code == 201, reply.text
        return reply.json()

    def browser(self) -> Browser:
        return Browser(self.base_url)

    def signed_in(self, merchant, contract_id) -> Browser:
        browser = self.browser()
        response = browser.open_link(self.mint(merchant, contract_id)["url"])
        assert response.status_code == 303, response.text
        return browser

    def rpc(self):
        return ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=10)


class Browser:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()

    def get(self, path, **kwargs) -> requests.Response:
        url = path if path.startswith("http") else self.base_url + path
        return self.http.get(url, allow_redirects=False, timeout=10, **kwargs)

    def post(self, path, data=None, **kwargs) -> requests.Response:
        return self.http.post(self.base_url + path, data=data, allow_redirects=False,
                              timeout=10, **kwargs)

    def open_link(self, url) -> requests.Response:
        return self.get(url)

    def csrf(self, path="/portal") -> str:
        page = self.get(path)
        assert page.status_code == 200, page.text
        return _CSRF.search(page.text).group(1)

    def submit(self, path, contract_id, language=None, **fields) -> requests.Response:
        data = {"csrf_token": self.csrf(), "contract_id": contract_id, **fields}
        if language:
            data["language"] = language
        return self.post(path, data=data)


def order_payload(*, trial_days=0, notice=None, minimum_term=None, language="en",
                  submitted_at=None, customer=None) -> dict:
    return {
        "order_id": f"ord_{uuid.uuid4().hex[:12]}", "contract_id": f"ct_{uuid.uuid4().hex[:12]}",
        "customer_id": f"cus_{uuid.uuid4().hex[:12]}", "plan_id": "pl_1",
        "plan_variant_id": "pv_1", "plan_name": "Gold Membership", "currency": "EUR",
        "customer": customer or {"email": "ann@example.com", "first_name": "Ann",
                                 "last_name": "Lee", "country": "DE", "street": "Hauptstr.",
                                 "house_number": "1", "postal_code": "10115", "city": "Berlin"},
        "components": [], "coupon": None,
        "terms": {"setup_fee": Decimal("0"), "recurring_fee": Decimal("29.00"),
                  "billing_period_months": 1, "trial_days": trial_days,
                  "notice_period": notice or {"value": 1, "unit": "month"},
                  "minimum_term": minimum_term},
        "tax": {"rate": Decimal("19"), "category": "S", "reverse_charge": False,
                "country": "DE"},
        "totals": {"net_total": Decimal("29.00"), "tax_total": Decimal("5.51"),
                   "gross_total": Decimal("34.51"), "recurring_gross": Decimal("34.51")},
        "payment_method": None, "external_id": None, "language": language,
        "submitted_at": submitted_at or dt.datetime.now(dt.UTC),
    }


@pytest.fixture
def make_stack(start_service, container_factory, rabbit_config):
    FAKE.__init__()

    def make(public_url: str | None = None, gateway_config: dict | None = None,
             **tokens_config) -> Stack:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        public_url = public_url or base_url
        portal = start_service(PortalService, "portal")
        tokens = start_service(TokensService, "tokens", PUBLIC_URL=public_url, **tokens_config)
        clock = FrozenClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
        dependency(tokens, Clock).clock = clock
        dependency(portal, Clock).clock = clock  # sessions expire by the portal's clock
        for fake in (FakeSignup, FakeDocuments):
            container_factory(fake, rabbit_config).start()
        container_factory(GatewayService, {
            **rabbit_config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
            "SECRET_KEY": "integration-secret", "PUBLIC_URL": public_url,
            # the fakes' settings change under the gateway's feet: no cache unless a test asks
            "SETTINGS_CACHE_SECONDS": 0, **(gateway_config or {})}).start()
        return Stack(base_url, rabbit_config["AMQP_URI"], tokens, portal, clock)

    return make


@pytest.fixture
def stack(make_stack) -> Stack:
    return make_stack()


def portal_events(amqp_uri: str, *types: str):
    """A queue bound to the portal's exchange, as a merchant's consumer would bind it."""
    connection = kombu.Connection(amqp_uri)
    exchange = kombu.Exchange("portal.events", type="topic", durable=True)
    queue = kombu.Queue(f"test-{uuid.uuid4().hex[:8]}", exchange=exchange,
                        bindings=[kombu.binding(exchange, routing_key=t) for t in types],
                        exclusive=True)(connection.channel())
    queue.declare()
    received = []

    def until(event_type, timeout=10):
        def arrived():
            while (message := queue.get(no_ack=True)) is not None:
                received.append(message.payload)
            return [e for e in received if e["type"] == event_type]
        return wait_until(arrived, timeout, what=event_type)

    return until


# -- tokens and sessions --------------------------------------------------------------------------


def test_a_token_link_opens_the_portal_and_leaves_the_address_bar(stack):
    merchant = stack.merchant()
    contract_id = stack.contract(merchant)

    minted = stack.mint(merchant, contract_id, 60)
    assert set(minted) == {"token", "expires_at", "url"}
    assert minted["url"] == f"{stack.base_url}/portal?token={minted['token']}"
    browser = stack.browser()
    response = browser.open_link(minted["url"])

    assert response.status_code == 303
    assert response.headers["Location"] == "/portal"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("portico_portal=ps_")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain-HTTP local development
    assert minted["token"] not in cookie

    page = browser.get("/portal")
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'self'" in page.headers["Content-Security-Policy"]
    assert "Gold Membership" in page.text and "Hauptstr." in page.text
    assert 'id="balance"' in page.text and "No documents yet." in page.text


def test_behind_https_the_cookie_works_in_an_iframe_and_ends_with_the_token(make_stack):
    stack = make_stack("https://portal.example.test")
    merchant = stack.merchant(embedding={"frame_ancestors": ["https://shop.example.com"],
                                         "redirect_hosts": []})
    contract_id = stack.contract(merchant)
    minted = stack.mint(merchant, contract_id, 30)
    assert minted["url"].startswith("https://portal.example.test/portal?token=pt_")

    browser = stack.browser()
    response = browser.get(f"/portal?token={minted['token']}")

    cookie = response.headers["Set-Cookie"]
    name, _, rest = cookie.partition("=")
    attributes = {part.strip().split("=")[0] for part in rest.split(";")[1:]}
    assert name == "__Host-portico_portal"
    assert {"Secure", "HttpOnly", "Partitioned", "Path", "Max-Age", "Expires"} <= attributes
    assert "SameSite=None" in cookie and "Domain" not in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))
    assert 0 < max_age <= 30 * 60
    # over the test's plain HTTP the client will not send a Secure cookie; a browser would
    session_id = rest.split(";")[0]
    page = browser.get("/portal", headers={"Cookie": f"__Host-portico_portal={session_id}"})
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"].endswith(
        "frame-ancestors https://shop.example.com")


@pytest.mark.parametrize("path", PAGES)
def test_deep_links_exchange_the_token_first_then_land_on_their_page(stack, path):
    merchant = stack.merchant()
    contract_id = stack.contract(merchant)
    token = stack.mint(merchant, contract_id)["token"]
    browser = stack.browser()

    response = browser.get(f"{path}?token={token}&language=de")

    assert response.status_code == 303
    assert response.headers["Location"] == f"{path}?language=de"
    page = browser.get(response.headers["Location"])
    assert page.status_code == 200
    assert '<html lang="de">' in page.text
    assert f'action="{path}"' in page.text or path in ("/portal", "/portal/documents")


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_session(stack, path):
    response = stack.browser().get(path, headers={"Accept-Language": "fr"})
    assert response.status_code == 401
    assert "Votre session a pris fin" in response.text
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(("body", "status"), [
    ({"validity_minutes": 0}, 400), ({"validity_minutes": 10081}, 400),
    ({"validity_minutes": "60"}, 400), ({"validity_minutes": 1.5}, 400),
    ({"validity_minutes": 1}, 201), ({"validity_minutes": 10080}, 201), ({}, 201),
    ([1], 400)])
def test_validity_over_the_api(stack, body, status):
    merchant = stack.merchant()  # its settings default to 30 minutes
    contract_id = stack.contract(merchant)

    reply = stack.api("POST", f"/api/v1/contracts/{contract_id}/self-service-token", merchant,
                      json=body)

    assert reply.status_code == status, reply.text
    if status == 400:
        assert reply.json()["error"]["code"] == "invalid_input"
        if isinstance(body, dict):
            assert reply.json()["error"]["fields"]["validity_minutes"][0]["params"] == \
                {"min": 1, "max": 10080}
    else:
        minutes = body.get("validity_minutes", 30)
        expires = dt.datetime.fromisoformat(reply.json()["expires_at"])
        assert expires == stack.clock.now() + dt.timedelta(minutes=minutes)


def test_an_expired_token_gets_a_friendly_page_that_reveals_nothing(stack):
    merchant = stack.merchant()
    contract_id = stack.contract(merchant)
    token = stack.mint(merchant, contract_id, 1)["token"]

    stack.clock.advance(seconds=59)
    assert stack.browser().get(f"/portal?token={token}").status_code == 303
    stack.clock.advance(seconds=2)  # the expiry + 1 s
    page = stack.browser().get(f"/portal?token={token}&language=de")

    assert page.status_code == 410
    assert "Dieser Link ist nicht mehr gültig" in page.text
    for secret in (contract_id, "Gold Membership", "Acme", "Ann", merchant.id):
        assert secret not in page.text
    assert "Set-Cookie" not in page.headers


def test_a_session_ends_with_its_token(stack):
    merchant = stack.merchant()
    contract_id = stack.contract(merchant)
    browser = stack.browser()
    browser.open_link(stack.mint(merchant, contract_id, 5)["url"])
    assert browser.get("/portal").status_code == 200

    stack.clock.advance(minutes=5, seconds=1)

    assert browser.get("/portal").status_code == 410


@pytest.mark.parametrize("token", ["", "garbage", "pt_" + "A" * 43, "pt_" + "A" * 20 + "%00"])
def test_unknown_and_malformed_tokens_get_the_same_refusal(stack, token):
    page = stack.browser().get(f"/portal?token={token}")
    assert page.status_code == 401
    assert "This link is not valid" in page.text


def test_a_tampered_token_is_refused(stack):
    merchant = stack.merchant()
    token = stack.mint(merchant, stack.contract(merchant))["token"]
    tampered = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert stack.browser().get(f"/portal?token={tampered}").status_code == 401


def test_tokens_are_bound_to_their_merchant(stack):
    one, other = stack.merchant(), stack.merchant()
    mine = stack.contract(one)

    # another merchant cannot mint, revoke or read for this contract: 404 like a missing one
    for method, path in (("POST", f"/api/v1/contracts/{mine}/self-service-token"),
                         ("DELETE", f"/api/v1/contracts/{mine}/self-service-tokens"),
                         ("GET", f"/api/v1/contracts/{mine}")):
        reply = stack.api(method, path, other, json={})
        assert reply.status_code == 404, (method, path)
        assert reply.json()["error"]["code"] == "not_found"
    # and the other merchant's token opens only its own contract
    theirs = stack.contract(other)
    browser = stack.signed_in(other, theirs)
    page = browser.get("/portal")
    assert f'value="{theirs}"' in page.text and mine not in page.text


def test_revocation_takes_effect_on_the_next_request(stack):
    merchant = stack.merchant()
    contract_id = stack.contract(merchant)
    minted = stack.mint(merchant, contract_id)
    browser = stack.browser()
    browser.open_link(minted["url"])
    assert browser.get("/portal/customer").status_code == 200

    reply = stack.api("DELETE", f"/api/v1/contracts/{contract_id}/self-service-tokens",
                      merchant)

    assert reply.status_code == 200 and reply.json() == {"revoked": 1}
    ended = browser.get("/portal/customer")
    assert ended.status_code == 410
    assert "Your session has ended" in ended.text
    assert stack.browser().get(minted["url"]).status_code == 410
    # a new token works again
    assert stack.signed_in(merchant, contract_id).get("/portal").status_code == 200


def test_failed_attempts_are_rate_limited_per_client(make_stack):
    stack = make_stack(TOKEN_FAILURE_LIMIT=3)
    merchant = stack.merchant()
    good = stack.mint(merchant, stack.contract(merchant))["url"]
    browser = stack.browser()
    for _ in range(3):
        assert browser.get(f"/portal?token=pt_{'x' * 43}").status_code == 401

    blocked = browser.get(good)  # even a good token, from this client, for now

    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.text


def test_signing_out_ends_the_session(stack):
    merchant = stack.merchant()
    contract_id = stack.contract(merchant)
    browser = stack.signed_in(merchant, contract_id)
    response = browser.submit("/portal/logout", contract_id)
    assert response.status_code == 200 and "You are signed out" in response.text
    assert browser.get("/portal").status_code in (401, 410)


# -- forms ---------------------------------------------------------------------------------------


def test_every_post_needs_the_sessions_csrf_token(stack):
    merchant = stack.merchant()
    contract_id = stack.contract(merchant)
    browser = stack.signed_in(merchant, contract_id)
    someone_else = stack.signed_in(merchant, contract_id)
    foreign_token = someone_else.csrf()

    for path in POSTS:
        for token in (None, "", foreign_token):
            data = {"contract_id": contract_id, "city": "Hacked"}
            if token is not None:
                data["csrf_token"] = token
            response = browser.post(path, data=data)
            assert response.status_code == 400, (path, token)
        cross_site = browser.post(path, data={"contract_id": contract_id,
                                              "csrf_token": browser.csrf()},
                                  headers={"Sec-Fetch-Site": "cross-site"})
        assert cross_site.status_code == 400
    assert "Hacked" not in browser.get("/portal").text
    assert browser.get("/portal").status_code == 200  # still signed in


def test_cross_contract_access_matrix(stack):
    """Every portal route, given another contract's ids (same merchant or not), is 404."""
    merchant, other_merchant = stack.merchant(), stack.merchant()
    mine, sibling = stack.contract(merchant), stack.contract(merchant)
    foreign = stack.contract(other_merchant)
    FAKE.documents = [
        {"id": f"doc_{c}", "merchant_id": m.id, "contract_id": c, "kind": "invoice",
         "number": f"RE-{i}", "issue_date": "2026-01-01", "gross_total": "34.51",
         "currency": "EUR", "pdf": b"%PDF-1.7 " + c.encode()}
        for i, (m, c) in enumerate([(merchant, mine), (merchant, sibling),
                                    (other_merchant, foreign)])]
    for document in FAKE.documents:
        stack.announce_invoice(document)
    browser = stack.signed_in(merchant, mine)
    wait_until(lambda: f"doc_{mine}" in browser.get("/portal/documents").text, 10,
               what="the invoice in the list")

    assert browser.get(f"/portal/documents/doc_{mine}/pdf").status_code == 200
    for other in (sibling, foreign):
        assert browser.get(f"/portal/documents/doc_{other}/pdf").status_code == 404
        for path in POSTS:
            response = browser.submit(path, other, city="Elsewhere", iban="DE89370400440532013000",
                                      account_holder="Eve", mandate_accepted="yes",
                                      expected_end_date="2030-01-01")
            assert response.status_code == 404, (path, other)
    assert browser.get("/portal/documents/doc_unknown/pdf").status_code == 404
    assert browser.get("/portal/documents/..%2F..%2Fetc/pdf").status_code == 404
    listing = browser.get("/portal/documents").text
    assert f"doc_{mine}" in listing and f"doc_{sibling}" not in listing
    # nothing happened to the others
    for owner, other in ((merchant, sibling), (other_merchant, foreign)):
        view = stack.api("GET", f"/api/v1/contracts/{other}", owner).json()
        assert view["state"] == "active" and view["customer"]["city"] == "Berlin"
        assert view["payment_method"] is None
    assert browser.get("/portal").status_code == 200


def test_a_customer_change_is_validated_in_the_page_language(stack):
    merchant = stack.merchant()
    contract_id = stack.contract(merchant, language="de")
    until = portal_events(stack.amqp_uri, "CustomerChanged")
    browser = stack.signed_in(merchant, contract_id)
    form = {"first_name": "Ann", "last_name": "Lee", "email": "kein-email", "country": "DE",
            "street": "Ring", "house_number": "2", "postal_code": "1234", "city": "Köln"}

    invalid = browser.submit("/portal/customer", contract_id, **form)

    assert invalid.status_code == 400
    assert "Bitte geben Sie eine gültige E-Mail-Adresse ein." in invalid.text
    assert "Bitte geben Sie eine gültige Postleitzahl für DE ein." in invalid.text
    assert 'value="Köln"' in invalid.text  # what was typed stays
    assert stack.api("GET", f"/api/v1/contracts/{contract_id}", merchant).json()[
        "customer"]["city"] == "Berlin"

    saved = browser.submit("/portal/customer", contract_id,
                           **{**form, "email": "ann@example.org", "postal_code": "50667"})

    assert saved.status_code == 303 and saved.headers["Location"].startswith("/portal?")
    assert "Ihre Daten wurden gespeichert." in browser.get(saved.headers["Location"]).text
    [changed] = until("CustomerChanged")
    assert changed["payload"]["before"]["city"] == "Berlin"
    assert changed["payload"]["after"]["city"] == "Köln"
    assert changed["payload"]["contract_id"] == contract_id


def test_a_new_sepa_mandate_shows_masked(stack):
    merchant = stack.merchant()
    contract_id = stack.contract(merchant)
    browser = stack.signed_in(merchant, contract_id)

    invalid = browser.submit("/portal/payment", contract_id, account_holder="Ann Lee",
                             iban="DE89 3704 0044 0532 0130 01", mandate_accepted="yes")
    assert invalid.status_code == 400 and "Enter a valid IBAN." in invalid.text
    assert "0532 0130 01" not in invalid.text  # never echoed back

    saved = browser.submit("/portal/payment", contract_id, account_holder="Ann Lee",
                           iban="DE89 3704 0044 0532 0130 00", mandate_accepted="yes")
    assert saved.status_code == 303
    page = browser.get("/portal/payment").text
    assert "DE89 **** **** **** **30 00" in page and "0532" not in page


def test_cancelling_states_the_exact_end_date_and_can_be_withdrawn(stack):
    merchant = stack.merchant()
    start = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)
    contract_id = stack.contract(merchant, submitted_at=start,
                                 minimum_term={"value": 24, "unit": "month"})
    until = portal_events(stack.amqp_uri, "ContractCancelled")
    browser = stack.signed_in(merchant, contract_id)
    confirm = browser.get("/portal/contract/cancel?language=en")
    end = re.search(r'data-end-date="([0-9-]+)"', confirm.text).group(1)
    assert end == "2028-01-01"  # the 24-month term, whatever day the test runs (before 2027-12)
    assert "December 31, 2027" in confirm.text

    done = browser.submit("/portal/contract/cancel", contract_id, expected_end_date=end)

    assert done.status_code == 303
    page = browser.get(done.headers["Location"]).text
    assert 'data-state="cancelled"' in page and "December 31, 2027" in page
    [cancelled] = until("ContractCancelled")
    assert cancelled["payload"]["end_date"] == "2028-01-01"
    assert cancelled["payload"]["last_day"] == "2027-12-31"

    withdrawn = browser.submit("/portal/contract/withdraw-cancellation", contract_id)
    assert withdrawn.status_code == 303
    assert stack.api("GET", f"/api/v1/contracts/{contract_id}", merchant).json()[
        "state"] == "active"


def test_a_confirmation_whose_date_moved_on_asks_again(stack):
    merchant = stack.merchant()
    contract_id = stack.contract(merchant)
    browser = stack.signed_in(merchant, contract_id)
    response = browser.submit("/portal/contract/cancel", contract_id,
                              expected_end_date="2000-01-01")
    assert response.status_code == 409
    assert "The end date has changed" in response.text
    assert stack.api("GET", f"/api/v1/contracts/{contract_id}", merchant).json()[
        "state"] == "active"


# -- settings, styling, languages ----------------------------------------------------------------


def test_sections_follow_the_merchants_settings(stack):
    merchant = stack.merchant(portal={"sections": {
        "customer": {"visible": False},
        "payment": {"visible": True, "editable": False},
        "contract": {"visible": True, "cancellable": False,
                     "heading": {"de": "Ihre Mitgliedschaft"}},
        "additional_data": {"visible": True, "fields": [
            {"key": "member_no", "label": {"en": "Member number", "de": "Mitgliedsnummer"}}]},
    }})
    contract_id = stack.contract(merchant, language="de")
    browser = stack.signed_in(merchant, contract_id)

    home = browser.get("/portal").text
    assert 'id="customer"' not in home and "Hauptstr." not in home
    assert "Ihre Mitgliedschaft" in home and "Vertrag kündigen" not in home
    assert "Mitgliedsnummer" in home
    assert browser.get("/portal/customer").status_code == 404
    assert browser.get("/portal/contract/cancel").status_code == 404
    assert 'name="iban"' not in browser.get("/portal/payment").text
    assert browser.submit("/portal/customer", contract_id, city="X").status_code == 404
    assert browser.submit("/portal/contract/cancel", contract_id).status_code == 404
    assert browser.submit("/portal/payment", contract_id).status_code == 403


def test_merchant_styling_cannot_inject(stack):
    merchant = stack.merchant(styling={
        "button": "#ff0000", "page_background": "red;}</style><script>alert(1)</script>",
        "logo_url": "https://cdn.example.com/logo.png"},
        merchant={"name": "<script>alert(2)</script>"})
    contract_id = stack.contract(merchant)
    page = stack.signed_in(merchant, contract_id).get("/portal")

    assert "--button: #ff0000" in page.text and "--page-bg: #F6F7F9" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(2)" in page.text
    assert 'src="https://cdn.example.com/logo.png"' in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://cdn.example.com;" in csp
    assert "script-src 'nonce-" in csp

    FAKE.settings[merchant.id]["styling"] = {"logo_url": "javascript:alert(3)"}
    page = stack.signed_in(merchant, contract_id).get("/portal")
    assert "javascript:" not in page.text


def test_language_switching(stack):
    merchant = stack.merchant(default_language="en")
    contract_id = stack.contract(merchant, language="fr")
    browser = stack.signed_in(merchant, contract_id)

    assert "Votre espace client" in browser.get("/portal").text  # the contract's language
    german = browser.get("/portal?language=de").text
    assert "Ihr Kundenportal" in german and '<html lang="de">' in german
    assert 'href="/portal/customer?language=de"' in german  # the choice sticks in links
    assert "Your customer portal" in browser.get("/portal?language=en").text
    assert "Votre espace client" in browser.get("/portal?language=xx").text


def test_documents_list_and_download_through_the_session(stack):
    merchant = stack.merchant()
    contract_id = stack.contract(merchant)
    browser = stack.signed_in(merchant, contract_id)
    assert "No documents yet." in browser.get("/portal/documents").text

    # the portal lists what the documents service announced; the PDF comes from there
    FAKE.documents = [{"id": "doc_1", "merchant_id": merchant.id, "contract_id": contract_id,
                       "number": "RE-2026-0001", "pdf": b"%PDF-1.7 hello"}]
    stack.announce_invoice(FAKE.documents[0])
    wait_until(lambda: "RE-2026-0001" in browser.get("/portal").text, 10, what="the invoice")

    listing = browser.get("/portal/documents?language=de").text
    assert "RE-2026-0001" in listing and "34,51" in listing
    assert 'href="/portal/documents/doc_1/pdf"' in listing
    pdf = browser.get("/portal/documents/doc_1/pdf")
    assert pdf.status_code == 200 and pdf.content == b"%PDF-1.7 hello"
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.headers["Content-Disposition"] == 'attachment; filename="RE-2026-0001.pdf"'
    assert pdf.headers["Referrer-Policy"] == "no-referrer"
    # another contract's session sees neither the entry nor the file
    other = stack.signed_in(merchant, stack.contract(merchant))
    assert "RE-2026-0001" not in other.get("/portal/documents").text
    assert other.get("/portal/documents/doc_1/pdf").status_code == 404


def test_settings_are_cached_briefly_and_a_change_through_the_api_is_seen_at_once(make_stack):
    stack = make_stack(gateway_config={"SETTINGS_CACHE_SECONDS": 60})
    merchant = stack.merchant(styling={"button": "#111111"})
    browser = stack.signed_in(merchant, stack.contract(merchant))
    assert "--button: #111111" in browser.get("/portal").text

    FAKE.settings[merchant.id]["styling"] = {"button": "#222222"}  # changed elsewhere
    assert "--button: #111111" in browser.get("/portal").text  # within the cache's time

    reply = stack.api("PUT", "/api/v1/settings/self-service", merchant,
                      json={"styling": {"button": "#333333"}})
    assert reply.status_code == 200
    assert "--button: #333333" in browser.get("/portal").text


# -- REST API ------------------------------------------------------------------------------------


def test_customers_and_cancellation_over_the_api(stack):
    merchant, other = stack.merchant(), stack.merchant()
    contract_id = stack.contract(merchant)
    customer_id = stack.api("GET", f"/api/v1/contracts/{contract_id}", merchant).json()[
        "customer_id"]

    customer = stack.api("GET", f"/api/v1/customers/{customer_id}", merchant)
    assert customer.status_code == 200 and customer.json()["data"]["email"] == "ann@example.com"
    assert stack.api("GET", f"/api/v1/customers/{customer_id}", other).status_code == 404

    bad = stack.api("PATCH", f"/api/v1/customers/{customer_id}", merchant,
                    json={"email": "nope"})
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"]["email"][0]["code"] == "invalid_email"
    good = stack.api("PATCH", f"/api/v1/customers/{customer_id}", merchant,
                     json={"city": "Hamburg", "postal_code": "20095"})
    assert good.status_code == 200 and good.json()["data"]["city"] == "Hamburg"

    cancelled = stack.api("POST", f"/api/v1/contracts/{contract_id}/cancellation", merchant,
                          json={})
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancellation_requested"
    assert cancelled.json()["cancellation"]["end_date"]
    assert stack.api("DELETE", f"/api/v1/contracts/{contract_id}/cancellation",
                     other).status_code == 404
    withdrawn = stack.api("DELETE", f"/api/v1/contracts/{contract_id}/cancellation", merchant)
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "active"
    again = stack.api("DELETE", f"/api/v1/contracts/{contract_id}/cancellation", merchant)
    assert again.status_code == 409


def test_the_token_in_a_link_is_gone_from_the_address_after_the_redirect(stack):
    merchant = stack.merchant()
    contract_id = stack.contract(merchant)
    browser = stack.browser()
    response = browser.http.get(stack.mint(merchant, contract_id)["url"], timeout=10)
    assert response.status_code == 200
    assert "token" not in parse_qs(urlparse(response.url).query)
    assert urlparse(response.url).path == "/portal"
