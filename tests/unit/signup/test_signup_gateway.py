"""The gateway's side of signup as plain functions and single workers (``worker_factory``):
rate limits, embedding and styling guards, terms links, translated messages, the price rows,
the OpenAPI document, and what happens when the signup service fails."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from nameko.exceptions import RemoteError
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway import i18n, openapi, web
from gateway.routes import signup_pages as pages
from gateway.service import GatewayService
from services.common import customer_fields
from services.common.errors import NotFound

ROOT = Path(__file__).resolve().parents[3]


# -- rate limits ----------------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_token_bucket_allows_bursts_then_refills():
    clock = FakeClock()
    limiter = web.RateLimiter(3, 60, clock=clock)
    assert [limiter.allow("1.2.3.4")[0] for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("1.2.3.4")[1] == 20  # one token every 20 s
    assert limiter.allow("5.6.7.8")[0]  # per client
    clock.now += 20
    assert limiter.allow("1.2.3.4")[0] and not limiter.allow("1.2.3.4")[0]


def test_rate_limiter_keeps_a_bounded_number_of_clients():
    limiter = web.RateLimiter(1, 60, max_keys=100, clock=FakeClock())
    for n in range(1000):
        limiter.allow(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter._buckets) == 100


@pytest.mark.parametrize(("spec", "capacity"), [("20/60", 20), ("5", 5), ("0", None),
                                                ("off", None)])
def test_rate_limit_specs(spec, capacity):
    limiter = web.RateLimiter.parse(spec)
    assert (limiter.capacity if limiter else None) == capacity


def request(path="/", method="GET", **kwargs) -> Request:
    return Request(EnvironBuilder(path=path, method=method, **kwargs).get_environ())


def test_client_ip_trusts_forwarded_for_only_as_configured():
    forwarded = request(headers={"X-Forwarded-For": "6.6.6.6, 1.2.3.4"},
                        environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert web.client_ip(forwarded) == "10.0.0.1"
    assert web.client_ip(forwarded, trusted_proxies=1) == "1.2.3.4"
    assert web.client_ip(forwarded, trusted_proxies=2) == "6.6.6.6"
    assert web.client_ip(forwarded, trusted_proxies=3) == "10.0.0.1"


# -- embedding and styling guards ---------------------------------------------------------------

@pytest.mark.parametrize(("origins", "csp"), [
    (None, "'self'"), ([], "'self'"),
    (["https://shop.example.com"], "https://shop.example.com"),
    (["'self'", "https://a.example:8443", "https://a.example:8443"],
     "'self' https://a.example:8443"),
    (["https://a.example; script-src *", "*", "http://b.example", "'none'", 7],
     "'self'"),
])
def test_frame_ancestors(origins, csp):
    settings = {"embedding": {"frame_ancestors": origins}} if origins is not None else {}
    assert web.frame_ancestors(settings) == csp


def test_colours_and_sizes_only_pass_when_well_formed():
    styling = {"button": "#A1B2C3", "border": "red;}body{x", "border_width": 99,
               "border_radius": True}
    assert web.colour(styling, "button", "#000000") == "#A1B2C3"
    assert web.colour(styling, "border", "#000000") == "#000000"
    assert web.colour(None, "button", "#000000") == "#000000"
    assert web.pixels(styling, "border_width", 1, 0, 8) == 8
    assert web.pixels(styling, "border_radius", 4) == 4


@pytest.mark.parametrize(("url", "safe"), [
    ("https://cdn.example/logo.png", True), ("http://127.0.0.1:8000/assets/x.png", True),
    ("/assets/logos/m/abc.png", True), ("//evil.example/x.png", False),
    ("javascript:alert(1)", False), ("data:image/svg+xml,<svg/>", False),
    ('https://a.example/"onerror="x', False), ("https://a.example/x y", False),
])
def test_safe_url(url, safe):
    assert (web.safe_url(url) == url) is safe


def test_terms_placeholders_become_links_only_for_https_urls():
    t = i18n.translator("en")
    urls = {"tac": "https://shop.example.com/agb", "dpp": None,
            "withdrawal": "javascript:alert(1)"}
    segments = pages.term_segments("Accept {tac}, read {dpp} and {withdrawal}.", urls, t)
    assert segments == [
        {"text": "Accept "}, {"text": "terms and conditions",
                              "url": "https://shop.example.com/agb"},
        {"text": ", read "}, {"text": "privacy policy", "url": None},
        {"text": " and "}, {"text": "withdrawal instructions", "url": None}, {"text": "."}]


# -- translations ---------------------------------------------------------------------------------

def used_msgids() -> set[str]:
    """Every built-in string the signup pages translate."""
    ids: set[str] = set()
    for path in [*ROOT.glob("gateway/templates/signup*.html"),
                 ROOT / "gateway/routes/signup_pages.py"]:
        ids.update(m.group(2) for m in re.finditer(r"\bt\(\s*(['\"])(.*?)(?<!\\)\1",
                                                   path.read_text()))
    for table in (pages.FIELD_LABELS, pages.DISPATCH_LABELS, pages.PLACEHOLDER_LABELS,
                  pages.COUPON_MESSAGES, pages.QUANTITY_MESSAGES, pages.FORM_MESSAGES,
                  pages.OTHER_MESSAGES, pages.PERIODS, customer_fields.MESSAGES):
        ids.update(table.values())
    return ids


@pytest.mark.parametrize("language", ["de", "fr"])
def test_every_signup_string_is_translated(language):
    catalog = i18n.catalog(language)
    missing = sorted(m for m in used_msgids() if m not in catalog)
    assert missing == []
    # placeholders survive translation
    for msgid in used_msgids():
        assert set(re.findall(r"\{(\w+)\}", catalog[msgid])) == set(
            re.findall(r"\{(\w+)\}", msgid)), msgid


@pytest.mark.parametrize("code", sorted(customer_fields.MESSAGES))
def test_customer_field_errors_are_localized(code):
    params = {"max": 5, "country": "DE", "years": 130, "choices": "email, post"}
    error = {"code": code, "message": "ignored", "params": params}
    english = pages.error_message("email", error, i18n.translator("en"))
    german = pages.error_message("email", error, i18n.translator("de"))
    french = pages.error_message("email", error, i18n.translator("fr"))
    assert english == customer_fields.FieldError(code, params).message()
    assert len({english, german, french}) == 3


def test_errors_are_looked_up_by_field_and_code():
    de = i18n.translator("de")
    assert pages.error_message("coupon_code", {"code": "expired"}, de) == \
        "Dieser Gutscheincode ist abgelaufen."
    assert pages.error_message("components.x", {"code": "above_maximum",
                                                "params": {"max": 3}}, de) == "Höchstens 3."
    assert pages.error_message("terms.0", {"code": "must_accept"}, de) == \
        "Bitte bestätigen Sie dies."
    # an unknown code falls back to the service's message, a missing parameter never crashes
    assert pages.error_message("x", {"code": "new", "message": "New rule."}, de) == "New rule."
    assert pages.error_message("email", {"code": "too_long", "params": {}}, de) == \
        "Höchstens {max} Zeichen."


# -- the price rows -------------------------------------------------------------------------------

def page_with(price: dict, **settings) -> dict:
    return {"preview": {"price": price}, "plan_name": "Pro",
            "settings": {"show_external_id": True, **settings},
            "form": {"external_id": "CRM-1"}}


PRICE = {"currency": "EUR", "billing_period_months": 3, "trial_days": 0,
         "lines": [{"kind": "recurring", "description": "recurring_fee", "quantity": 1,
                    "unit_price": "30.00", "net": "30.00"},
                   {"kind": "discount", "description": "TEN", "quantity": 1,
                    "unit_price": "-3.00", "net": "-3.00"}],
         "net_total": "27.00", "tax": {"rate": "0", "category": "AE", "reverse_charge": True,
                                       "amount": "0.00"},
         "gross_total": "27.00", "due_now": "27.00", "due_at_trial_end": "0.00",
         "discount": "3.00", "discount_periods": 2, "discounted_recurring_gross": "27.00",
         "recurring_gross": "30.00", "fingerprint": "abc"}


def test_price_rows_in_german():
    view = pages.preview_view(page_with(PRICE), "de", i18n.translator("de"))
    assert [line["label"] for line in view["lines"]] == ["Pro, erster Zeitraum",
                                                         "Rabatt (TEN)"]
    assert view["lines"][1]["amount"] == "-3,00\xa0€"
    assert view["tax_label"].startswith("USt.: Reverse Charge") and view["reverse_charge"]
    assert view["recurring"] == [
        {"label": "Wiederkehrender Betrag in den ersten 2 Zeiträumen",
         "amount": "27,00\xa0€ pro Quartal"},
        {"label": "Wiederkehrender Betrag danach", "amount": "30,00\xa0€ pro Quartal"}]
    assert view["external_id"] == "CRM-1"


def test_price_rows_with_a_trial_and_a_coupon_for_ever():
    price = {**PRICE, "trial_days": 30, "due_now": "0.00", "due_at_trial_end": "27.00",
             "discount_periods": None, "billing_period_months": 5,
             "tax": {"rate": "19", "category": "S", "reverse_charge": False, "amount": "0"}}
    view = pages.preview_view(page_with(price, show_external_id=False), "en",
                              i18n.translator("en"))
    assert view["due"] == [{"label": "Free trial", "amount": "30 days"},
                           {"label": "Due today", "amount": "€0.00"},
                           {"label": "Due at the end of the trial", "amount": "€27.00"}]
    assert view["recurring"] == [{"label": "Recurring amount with discount",
                                  "amount": "€27.00 every 5 months"}]
    assert view["tax_label"] == "VAT 19 %" and view["external_id"] is None


def test_no_price_while_the_options_are_invalid():
    assert pages.preview_view(page_with(None), "en", i18n.translator("en")) is None


# -- OpenAPI ----------------------------------------------------------------------------------

def test_openapi_document_is_complete_and_its_references_resolve():
    spec = openapi.spec()
    schemas = spec["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(spec):
        assert ref.split("/")[-1] in schemas, ref
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation["summary"] and operation["responses"], (path, method)
    assert spec["paths"]["/api/v1/openapi.json"]["get"]["security"] == []
    coupon = schemas["CouponCreate"]["properties"]
    assert coupon["kind"]["enum"] == ["percent", "fixed"]


def test_register_adds_and_replaces_operations():
    from marshmallow import Schema, fields

    class SignupProbeThing(Schema):
        name = fields.String(required=True)

    openapi.register("/api/v1/probe/{thing_id}", "get", "A probe",
                     response_schema=SignupProbeThing, tags=["test"])
    openapi.register("/api/v1/probe/{thing_id}", "get", "The probe", response_schema=None,
                     response_content_type="application/pdf")
    try:
        operation = openapi.spec()["paths"]["/api/v1/probe/{thing_id}"]["get"]
        assert operation["summary"] == "The probe"
        assert operation["parameters"][0]["name"] == "thing_id"
        assert "application/pdf" in operation["responses"]["200"]["content"]
    finally:
        openapi._operations.pop(("/api/v1/probe/{thing_id}", "get"))
        openapi._cached = None


# -- when the signup service fails ----------------------------------------------------------------

def gateway(**config):
    worker = worker_factory(GatewayService, config={"SECRET_KEY": "unit-secret",
                                                    "SIGNUP_RATE_LIMIT": "1000/1",
                                                    "SIGNUP_PREVIEW_RATE_LIMIT": "1000/1",
                                                    **config})
    return worker


def signup_post(**form) -> Request:
    token = web.form_token("unit-secret", "signup|shop|pv_1")
    return request("/signup/shop/pv_1", "POST", data={"csrf_token": token, **form},
                   headers={"Sec-Fetch-Site": "same-origin"})


def test_a_failing_signup_service_sends_the_customer_to_the_error_url():
    worker = gateway()
    worker.signup_rpc.submit_signup.side_effect = RemoteError("OperationalError", "db gone")
    worker.signup_rpc.get_settings_by_slug.return_value = {
        "urls": {"error": "https://shop.example.com/sorry?x=1"}}
    response = worker.signup_submit(signup_post(email="a@example.com"), "shop", "pv_1")
    assert response.status_code == 303
    assert response.headers["Location"] == "https://shop.example.com/sorry?x=1&error=order_failed"


def test_without_an_error_url_the_customer_sees_a_localized_page():
    worker = gateway()
    worker.signup_rpc.submit_signup.side_effect = RemoteError("OperationalError", "db gone")
    worker.signup_rpc.get_settings_by_slug.side_effect = NotFound("gone")
    response = worker.signup_submit(signup_post(language="fr"), "shop", "pv_1")
    assert response.status_code == 503
    assert "Une erreur s&#39;est produite" in response.get_data(as_text=True)


def test_a_success_url_that_is_not_https_is_never_followed():
    worker = gateway()
    worker.signup_rpc.submit_signup.return_value = {
        "status": "ok", "contract_id": "ct_1", "order_id": "ord_1", "language": "en",
        "success_url": "javascript:alert(1)"}
    response = worker.signup_submit(signup_post(), "shop", "pv_1")
    assert response.status_code == 303
    assert response.headers["Location"] == "/signup/shop/pv_1/done?language=en&contractId=ct_1"
