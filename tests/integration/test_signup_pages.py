"""The hosted signup page through the real gateway and signup containers (one RabbitMQ vhost,
migrated SQLite; the signup clock is frozen at 2026-03-02 10:00 UTC).

Covers: field modes, languages and merchant translations, money formats, components and usage
prices, coupons, VAT (reverse charge), terms with links and checkboxes, prefill, the preview
without and with JavaScript, success redirects, CSRF/cross-site refusals, rate limiting, the
invalid-input corpus (4xx with messages, nothing stored), escaping of merchant-authored text,
CSP and embedding headers, logos and self-service availability.
"""
from __future__ import annotations

import html
import io
import json
import re
import sqlite3
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from PIL import Image

from tests.support.signup_stack import CSRF, CUSTOMER, start_signup_stack

SEATS = {"key": "seats", "name": {"en": "Seats", "de": "Plätze"}, "kind": "quantity",
         "unit_price": "5.00", "min_quantity": 1, "max_quantity": 10}
SUPPORT = {"key": "support", "name": {"en": "Priority support"}, "kind": "onoff",
           "unit_price": "15.00"}
CALLS = {"key": "calls", "name": {"en": "API calls"}, "kind": "metered",
         "unit_price": "0.02"}
HIDDEN_FEE = {"key": "base", "name": {"en": "Base fee"}, "kind": "quantity",
              "unit_price": "1.00", "min_quantity": 1, "show_in_signup": False}


@pytest.fixture
def stack(start_service, container_factory, rabbit_config, tmp_path):
    return start_signup_stack(start_service, container_factory, rabbit_config, tmp_path,
                              SIGNUP_RATE_LIMIT="10000/60", SIGNUP_PREVIEW_RATE_LIMIT="10000/60")


def errors_of(page: str) -> dict[str, list[str]]:
    """Field name → its messages, as the page shows them."""
    found: dict[str, list[str]] = {}
    for name, text in re.findall(r'<p class="error" id="e-([^"]+)">(.*?)</p>', page):
        found.setdefault(name, []).append(html.unescape(text))
    return found


def value_of(page: str, name: str) -> str | None:
    match = re.search(rf'<input id="f-{re.escape(name)}" name="[^"]+"[^>]*? value="([^"]*)"',
                      page)
    return html.unescape(match.group(1)) if match else None


def preview_text(page: str) -> str:
    section = page.split('id="preview">', 1)[1].split("</div>", 1)[0]
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section)))


def contract_id_from(response) -> str:
    return parse_qs(urlparse(response.headers["Location"]).query)["contractId"][0]


# -- rendering ------------------------------------------------------------------------------------


def test_page_renders_plan_prices_fields_and_security_headers(stack):
    shop = stack.merchant(components=[SEATS, SUPPORT, CALLS, HIDDEN_FEE])
    page = stack.page(shop)
    assert page.status_code == 200
    text = page.text
    assert "Pro monthly" in text and "Everything you need" in text
    assert "€29.00 per month" in text and "€9.90" in text
    assert 'name="component.' + shop.components["seats"] + '"' in text
    assert 'name="component.' + shop.components["support"] + '"' in text
    assert 'name="component.' + shop.components["base"] + '"' not in text
    assert "API calls" in text and "€0.02 per unit" in text
    assert 'name="coupon_code"' not in text  # not asked by default
    # default modes: email, names, country required; the rest optional
    assert re.search(r'id="f-email" name="email" type="email"[^>]* required', text)
    assert re.search(r'id="f-phone" name="phone" type="tel"', text)
    assert '<option value="DE" selected>Germany</option>' in text
    # the preview: base fee included at its minimum, seats at theirs, VAT 19 %
    preview = preview_text(text)
    assert "Base fee × 1 €1.00" in preview and "Seats × 1 €5.00" in preview
    assert "VAT 19 %" in preview and "Total €53.43" in preview
    csp = page.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert "frame-ancestors 'self'" in csp and "default-src 'none'" in csp
    assert page.headers["Referrer-Policy"] == "no-referrer"
    scripts = re.findall(r"<script([^>]*)>", text)
    assert scripts and all(f'nonce="{nonce}"' in attrs for attrs in scripts)
    assert not re.search(r"\son[a-z]+=", text)  # no inline event handlers


@pytest.mark.parametrize(("language", "label", "money", "heading"), [
    ("en", "E-mail", "€29.00", "Your details"),
    ("de", "E-Mail", "29,00\xa0€", "Ihre Angaben"),
    ("fr", "E-mail", "29,00\xa0€", "Vos coordonnées"),
])
def test_each_language(stack, language, label, money, heading):
    shop = stack.merchant()
    page = stack.page(shop, language=language)
    text = html.unescape(page.text)
    assert f'<html lang="{language}">' in text
    assert f">{label} <span" in text and money in text and heading in text
    invalid = stack.submit(shop, {**CUSTOMER, "email": "nope"}, language=language)
    message = {"en": "Enter a valid e-mail address.",
               "de": "Bitte geben Sie eine gültige E-Mail-Adresse ein.",
               "fr": "Saisissez une adresse e-mail valide."}[language]
    assert errors_of(invalid.text) == {"email": [message]}


def test_language_falls_back_to_the_browser_then_the_merchants_default(stack):
    shop = stack.merchant(language="fr")
    assert '<html lang="fr">' in stack.page(shop).text
    browser = requests.get(f"{stack.base_url}/signup/{shop.slug}/{shop.variant_id}",
                           headers={"Accept-Language": "de-DE,de;q=0.9"}, timeout=10)
    assert '<html lang="de">' in browser.text
    assert '<html lang="en">' in stack.page(shop, language="en").text
    assert '<html lang="fr">' in stack.page(shop, language="xx").text


def test_merchant_texts_override_with_fallback_to_its_default_language(stack):
    shop = stack.merchant(language="de", settings={"texts": {
        "title": {"de": "Jetzt Mitglied werden", "en": "Become a member"},
        "page_title": {"de": "Mitgliedschaft"},
        "order_heading": {"fr": "Votre abonnement"},
        "usage_prices_heading": {"en": "Pay as you go"}}},
        components=[CALLS])
    english = html.unescape(stack.page(shop, language="en").text)
    assert "<h1>Become a member</h1>" in english
    assert "<title>Mitgliedschaft</title>" in english  # the default language's text
    assert "Your order" in english  # built-in: no English or German text given
    assert "Pay as you go" in english
    french = html.unescape(stack.page(shop, language="fr").text)
    assert "Votre abonnement" in french and "<h1>Jetzt Mitglied werden</h1>" in french


def test_field_modes(stack, subtests):
    shop = stack.merchant(settings={"fields": {
        "company_name": "required", "phone": "hidden", "vat_id": "hidden",
        "birth_date": "required", "street": "hidden", "first_name": "optional"}})
    page = stack.page(shop).text
    assert 'name="phone"' not in page and 'name="vat_id"' not in page
    assert re.search(r'id="f-company_name"[^>]* required', page)
    assert not re.search(r'id="f-first_name"[^>]* required', page)
    # only e-mail is possible for dispatch while the street is hidden
    dispatch = page.split('id="f-dispatch_type"', 1)[1].split("</select>", 1)[0]
    assert 'value="email"' in dispatch and 'value="post"' not in dispatch

    with subtests.test("required fields left empty"):
        reply = stack.submit(shop, {"email": "ann@example.com", "last_name": "Lee",
                                    "country": "DE"})
        assert reply.status_code == 400
        assert set(errors_of(reply.text)) == {"company_name", "birth_date"}
    with subtests.test("hidden fields sent anyway are ignored"):
        reply = stack.submit(shop, {**CUSTOMER, "company_name": "Lee Ltd",
                                    "birth_date": "1990-05-17", "phone": "not a phone",
                                    "vat_id": "bogus"})
        assert reply.status_code == 303, errors_of(reply.text)
        stored = stack_order_customer(stack, shop)
        assert "phone" not in stored and "vat_id" not in stored
        assert stored["birth_date"] == "1990-05-17" and stored["company_name"] == "Lee Ltd"
    with subtests.test("optional field may stay empty"):
        reply = stack.submit(shop, {**CUSTOMER, "first_name": "", "company_name": "X",
                                    "birth_date": "1990-05-17"})
        assert reply.status_code == 303


def stack_order_customer(stack, shop) -> dict:
    with sqlite3.connect(stack.db_path) as db:
        row = db.execute("SELECT customer FROM orders WHERE merchant_id = ? ORDER BY created_at "
                         "DESC LIMIT 1", (shop.id,)).fetchone()
    return json.loads(row[0])


# -- prefill, preview, components, VAT -----------------------------------------------------------


def test_prefill_from_query_parameters(stack):
    shop = stack.merchant(settings={"show_external_id": True, "ask_coupon": True},
                          coupons=[{"code": "HELLO", "kind": "percent", "value": "10"}])
    page = stack.page(shop, email="ann@example.com", first_name="Ann", last_name="Lee",
                      company="Lee & Co <b>", vat_id="DE136695976", external_id="CRM-42",
                      coupon_code="hello", language="de").text
    assert value_of(page, "email") == "ann@example.com"
    assert value_of(page, "company_name") == "Lee & Co <b>"
    assert "Lee &amp; Co &lt;b&gt;" in page  # escaped, not markup
    assert value_of(page, "vat_id") == "DE136695976"
    assert value_of(page, "coupon_code") == "hello"
    assert '<input type="hidden" name="external_id" value="CRM-42">' in page
    preview = preview_text(page)
    assert "Ihre Referenz CRM-42" in preview and "Rabatt (HELLO)" in preview
    assert errors_of(page) == {}  # a prefill shows no errors


def test_preview_without_javascript_reprices_and_stores_nothing(stack):
    shop = stack.merchant(components=[SEATS, SUPPORT])
    seats, support = (f"component.{shop.components[k]}" for k in ("seats", "support"))
    reply = stack.submit(shop, {"action": "preview", seats: "3", support: "1",
                                "email": "not-yet-finished"})
    assert reply.status_code == 200
    preview = preview_text(reply.text)
    assert "Seats × 3 €15.00" in preview and "Priority support × 1 €15.00" in preview
    assert "Total €81.99" in preview  # (9.90 + 29 + 15 + 15) * 1.19
    assert value_of(reply.text, seats) == "3" and 'value="1" checked' in reply.text
    errors = errors_of(reply.text)
    assert "email" in errors and "last_name" not in errors  # typed mistakes only
    assert stack.count("orders", shop.id) == 0


def test_live_preview_endpoint_answers_the_price_fragment(stack):
    shop = stack.merchant(components=[SEATS])
    page = stack.page(shop).text
    token = CSRF.search(page).group(1)
    url = f"{stack.base_url}/signup/{shop.slug}/{shop.variant_id}/preview"
    seats = f"component.{shop.components['seats']}"
    reply = requests.post(url, data={"csrf_token": token, seats: "4", "country": "FR"},
                          timeout=10)
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/html")
    text = html.unescape(re.sub(r"<[^>]+>", " ", reply.text))
    assert "Seats × 4" in text and "VAT 20 %" in text
    assert 'name="quoted_price"' in reply.text
    expired = requests.post(url, data={"csrf_token": token, "coupon_code": "NOPE"}, timeout=10)
    assert "Coupon codes are not accepted here." in html.unescape(expired.text)
    assert requests.post(url, data={seats: "4"}, timeout=10).status_code == 403
    assert requests.post(url, data={"csrf_token": token}, timeout=10,
                         headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403


@pytest.mark.parametrize(("customer", "expected"), [
    ({"country": "FR", "vat_id": "FR40303265045"}, "VAT: reverse charge"),
    ({"country": "FR"}, "VAT 20 %"),
    ({"country": "US"}, "VAT: not applicable"),
    ({"country": "DE", "vat_id": "DE136695976"}, "VAT 19 %"),
])
def test_vat_by_the_customers_country(stack, customer, expected):
    shop = stack.merchant()
    reply = stack.submit(shop, {"action": "preview", **customer})
    preview = preview_text(reply.text)
    assert expected in preview
    if "reverse charge" in expected:
        assert "Total €38.90" in preview and 'id="reverse-charge"' in reply.text


def test_trial_and_coupon_periods_show_what_is_due_when(stack):
    shop = stack.merchant(trial_days=14, settings={"ask_coupon": True}, coupons=[
        {"code": "HALF", "kind": "percent", "value": "50", "periods": 3}])
    reply = stack.submit(shop, {"action": "preview", "coupon_code": "half"})
    preview = preview_text(reply.text)
    assert "Free trial 14 days, until March 16, 2026" in preview  # the frozen clock's day
    assert "Due today €0.00" in preview
    assert "Due at the end of the trial €29.04" in preview  # 24.40 + 4.64 VAT
    assert "Recurring amount for the first 3 periods €17.26 per month" in preview
    assert "Recurring amount after that €34.51 per month" in preview


@pytest.mark.parametrize(("coupon", "code", "message"), [
    ({"code": "OLD", "kind": "percent", "value": "10", "valid_to": "2026-03-01T00:00:00Z"},
     "OLD", "This coupon code has expired."),
    ({"code": "SOON", "kind": "percent", "value": "10", "valid_from": "2026-04-01T00:00:00Z"},
     "SOON", "This coupon code is not valid yet."),
    ({"code": "USD5", "kind": "fixed", "value": "5.00", "currency": "USD"}, "USD5",
     "This coupon code does not apply to this plan."),
    ({"code": "REAL", "kind": "percent", "value": "10"}, "FAKE",
     "This coupon code is not valid."),
])
def test_coupon_problems_are_field_errors_never_a_silent_zero(stack, coupon, code, message):
    shop = stack.merchant(settings={"ask_coupon": True}, coupons=[coupon])
    reply = stack.submit(shop, {**CUSTOMER, "coupon_code": code})
    assert reply.status_code == 400
    assert errors_of(reply.text) == {"coupon_code": [message]}
    assert "Discount" not in preview_text(reply.text)
    assert stack.count("orders", shop.id) == 0


def test_coupon_is_redeemed_until_used_up(stack):
    shop = stack.merchant(settings={"ask_coupon": True}, coupons=[
        {"code": "ONCE", "kind": "fixed", "value": "10.00", "currency": "EUR",
         "max_redemptions": 1}])
    first = stack.submit(shop, {**CUSTOMER, "coupon_code": "once"})
    assert first.status_code == 303
    second = stack.submit(shop, {**CUSTOMER, "coupon_code": "ONCE"}, language="de")
    assert second.status_code == 400
    assert errors_of(second.text) == {"coupon_code": ["Dieser Gutscheincode ist aufgebraucht."]}
    coupons = stack.ok(stack.api("GET", "/api/v1/coupons", shop))["data"]
    assert coupons[0]["redemptions"] == 1


def test_coupon_field_is_refused_when_the_merchant_does_not_ask(stack):
    shop = stack.merchant(coupons=[{"code": "SECRET", "kind": "percent", "value": "90"}])
    reply = stack.submit(shop, {**CUSTOMER, "coupon_code": "SECRET"})
    assert reply.status_code == 400 and stack.count("orders", shop.id) == 0


# -- terms ------------------------------------------------------------------------------------


def test_terms_render_links_and_require_their_checkboxes(stack):
    shop = stack.merchant(language="de", settings={
        "urls": {"tac": "https://shop.example.com/agb"},
        "terms": [
            {"text": {"de": "Ich akzeptiere die {tac}.", "en": "I accept the {tac}."},
             "confirmation": True},
            {"text": {"en": "See the {dpp}."}},
            {"text": {"en": "Read the {withdrawal} <b>now</b>."}, "confirmation": True}]})
    page = stack.page(shop, language="en").text
    assert ('I accept the <a href="https://shop.example.com/agb" target="_blank" '
            'rel="noopener noreferrer">terms and conditions</a>.') in page
    assert "See the privacy policy." in page  # no URL: plain text, no link
    assert "Read the withdrawal instructions &lt;b&gt;now&lt;/b&gt;." in page

    missing = stack.submit(shop, {**CUSTOMER, "accepted_terms": "2"}, language="de")
    assert missing.status_code == 400
    assert errors_of(missing.text) == {"terms-0": ["Bitte bestätigen Sie dies."]}
    assert 'value="2" checked' in missing.text  # what was ticked stays ticked
    tampered = stack.submit(shop, {**CUSTOMER, "accepted_terms": ["0", "2", "7", "x"]})
    assert tampered.status_code == 400  # an unknown line is refused, not ignored
    accepted = stack.submit(shop, {**CUSTOMER, "accepted_terms": ["0", "2"]})
    assert accepted.status_code == 303


# -- submission -------------------------------------------------------------------------------


def test_success_redirects_to_the_merchants_url_with_the_contract_id(stack):
    shop = stack.merchant(settings={
        "urls": {"success": "https://shop.example.com/welcome?plan=pro#top"},
        "embedding": {"redirect_hosts": ["shop.example.com"]}})
    reply = stack.submit(shop, CUSTOMER)
    assert reply.status_code == 303
    location = urlparse(reply.headers["Location"])
    assert (location.scheme, location.netloc, location.path, location.fragment) == \
        ("https", "shop.example.com", "/welcome", "top")
    query = parse_qs(location.query)
    assert query["plan"] == ["pro"] and query["contractId"][0].startswith("ct_")
    assert stack.count("orders", shop.id) == 1 and stack.outbox(shop.id) == 1


def test_without_a_success_url_portico_confirms_with_the_contract_id(stack):
    shop = stack.merchant()
    reply = stack.submit(shop, CUSTOMER, language="fr")
    assert reply.status_code == 303
    location = reply.headers["Location"]
    assert location.startswith(f"/signup/{shop.slug}/{shop.variant_id}/done?")
    contract_id = contract_id_from(reply)
    done = requests.get(stack.base_url + location, timeout=10)
    assert done.status_code == 200
    assert f'<code id="contract-id">{contract_id}</code>' in done.text
    assert "Merci pour votre commande" in done.text
    forged = requests.get(f"{stack.base_url}/signup/{shop.slug}/{shop.variant_id}/done",
                          params={"contractId": "<script>"}, timeout=10)
    assert "<script>" not in forged.text.split("</style>", 1)[1]


def test_price_changed_since_the_preview_is_refused_then_accepted(stack):
    shop = stack.merchant()
    page = stack.page(shop).text
    quoted = re.search(r'name="quoted_price" value="([0-9a-f]+)"', page).group(1)
    stack.ok(stack.api("PATCH", f"/api/v1/plan-variants/{shop.variant_id}", shop,
                       json={"recurring_fee": "39.00"}))
    reply = stack.submit(shop, {**CUSTOMER, "quoted_price": quoted})
    assert reply.status_code == 400
    assert "The price has changed" in html.unescape(reply.text)
    assert "€58.19" in preview_text(reply.text)  # (9.90 + 39) * 1.19
    assert stack.count("orders", shop.id) == 0
    fresh = re.search(r'name="quoted_price" value="([0-9a-f]+)"', reply.text).group(1)
    assert stack.submit(shop, {**CUSTOMER, "quoted_price": fresh}).status_code == 303


def test_invalid_input_corpus_gives_messages_keeps_input_and_stores_nothing(stack, subtests):
    shop = stack.merchant(components=[SEATS, SUPPORT, CALLS, HIDDEN_FEE],
                          settings={"ask_coupon": True})
    seats = f"component.{shop.components['seats']}"
    support = f"component.{shop.components['support']}"
    cases = {  # name: (fields sent, where the message shows, the message)
        "huge name": ({"first_name": "A" * 100_000}, "first_name", "At most 100 characters."),
        "bad e-mail": ({"email": "ann@@example"}, "email", "Enter a valid e-mail address."),
        "header injection": ({"email": "ann@example.com\nBcc: x@y.z"}, "email",
                             "This field contains characters that are not allowed."),
        "bad VAT ID": ({"vat_id": "DE123"}, "vat_id", "Enter a valid EU VAT ID"),
        "VAT ID of another country": ({"vat_id": "FR40303265045"}, "vat_id",
                                      "This VAT ID is not from the selected country (DE)."),
        "postal code": ({"postal_code": "ABCDE"}, "postal_code",
                        "Enter a valid postal code for DE."),
        "country": ({"country": "XX"}, "country", "Select a country."),
        "phone": ({"phone": "call me"}, "phone", "Enter a valid phone number"),
        "birth date": ({"birth_date": "31.12.1990"}, "birth_date", "Enter a date as YYYY-MM-DD."),
        "future birth date": ({"birth_date": "2030-01-01"}, "birth_date",
                              "The date of birth cannot be in the future."),
        "bidi override": ({"last_name": "Lee\u202e"}, "last_name",
                          "This field contains characters that are not allowed."),
        "dispatch choice": ({"dispatch_type": "pigeon"}, "dispatch_type",
                            "Select one of: email, post."),
        "negative quantity": ({seats: "-2"}, seats, "The quantity cannot be negative."),
        "not a number": ({seats: "two"}, seats, "Enter a whole number."),
        "above maximum": ({seats: "11"}, seats, "At most 10."),
        "on/off set to 5": ({support: "5"}, support, "Choose on or off."),
        "unknown component": ({"component.comp_nope": "1"}, "pricing",
                              "This option is not available."),
        "metered chosen": ({f"component.{shop.components['calls']}": "3"}, "pricing",
                           "This option is not available."),
        "hidden component tampered": ({f"component.{shop.components['base']}": "0"},
                                      "pricing", "This option is not available."),
        "coupon too long": ({"coupon_code": "X" * 65}, "coupon_code", "At most 64 characters."),
        "external id too long": ({"external_id": "x" * 201}, "summary",
                                 "At most 200 characters."),
    }
    for name, (fields, where, message) in cases.items():
        with subtests.test(name):
            reply = stack.submit(shop, {**CUSTOMER, **fields})
            assert reply.status_code == 400
            assert 'role="alert"' in reply.text
            if where == "pricing":
                shown = [html.unescape(m) for m in
                         re.findall(r'<p class="error pricing-error">(.*?)</p>', reply.text)]
            elif where == "summary":
                summary = reply.text.split('role="alert"', 1)[1].split("</div>", 1)[0]
                shown = [html.unescape(m) for m in re.findall(r"<p>(.*?)</p>", summary)]
            else:
                shown = errors_of(reply.text).get(where, [])
            assert any(m.startswith(message) for m in shown), shown
            typed = next(iter(fields.values()))
            if where in customer_field_names() and "\n" not in typed:
                assert value_of(reply.text, where) == typed  # what was typed stays
    assert stack.count("orders", shop.id) == 0 and stack.outbox(shop.id) == 0


def customer_field_names() -> set[str]:
    from services.common.customer_fields import FIELDS
    return set(FIELDS) - {"country", "dispatch_type"}


def test_forms_without_a_valid_token_or_from_another_site_are_refused(stack, subtests):
    shop = stack.merchant()
    url = f"{stack.base_url}/signup/{shop.slug}/{shop.variant_id}"
    with subtests.test("no token"):
        reply = requests.post(url, data=CUSTOMER, timeout=10)
        assert reply.status_code == 400
        assert "The form has expired" in html.unescape(reply.text)
        assert value_of(reply.text, "email") == "ann@example.com"
    with subtests.test("tampered token"):
        token = CSRF.search(stack.page(shop).text).group(1)
        reply = requests.post(url, data={**CUSTOMER, "csrf_token": token[:-2] + "xx"},
                              timeout=10)
        assert reply.status_code == 400
    with subtests.test("token of another page"):
        other = stack.merchant()
        token = CSRF.search(stack.page(other).text).group(1)
        assert requests.post(url, data={**CUSTOMER, "csrf_token": token},
                             timeout=10).status_code == 400
    with subtests.test("cross-site"):
        reply = stack.submit(shop, CUSTOMER, headers={"Sec-Fetch-Site": "cross-site"})
        assert reply.status_code == 400
    with subtests.test("foreign origin"):
        reply = stack.submit(shop, CUSTOMER, headers={"Origin": "https://evil.example"})
        assert reply.status_code == 400
    assert stack.count("orders", shop.id) == 0


def test_signup_posts_are_rate_limited_per_ip(start_service, container_factory, rabbit_config,
                                              tmp_path):
    stack = start_signup_stack(start_service, container_factory, rabbit_config, tmp_path,
                               SIGNUP_RATE_LIMIT="2/3600")
    shop = stack.merchant()
    assert stack.submit(shop, CUSTOMER).status_code == 303
    assert stack.submit(shop, {"email": "x"}).status_code == 400
    limited = stack.submit(shop, CUSTOMER, language="de")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert "Zu viele Anfragen" in limited.text
    assert stack.count("orders", shop.id) == 1
    # another client (behind no proxy, another address) is not affected: same IP here, so
    # the page itself (GET) still works
    assert stack.page(shop).status_code == 200


# -- the merchant's look, embedding, availability --------------------------------------------------


def test_merchant_styling_logo_and_embedding_reach_the_page_safely(stack):
    shop = stack.merchant(settings={
        "styling": {"button": "#112233", "action_button": "#AA0000", "border_radius": 0},
        "texts": {"title": {"en": "<script>alert(1)</script>"}},
        "embedding": {"frame_ancestors": ["https://shop.example.com", "'self'"]}})
    out = io.BytesIO()
    Image.new("RGB", (30, 10), (0, 0, 255)).save(out, format="PNG")
    logo_url = stack.ok(stack.api("PUT", "/api/v1/settings/self-service/logo", shop,
                                  data=out.getvalue(),
                                  headers={"Content-Type": "image/png"}))["logo_url"]
    page = stack.page(shop)
    assert "--button: #112233;" in page.text and "--action: #AA0000;" in page.text
    assert "--radius: 0px;" in page.text
    assert f'<img src="{logo_url}"' in page.text
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>" in page.text
    assert "<script>alert" not in page.text
    assert page.headers["Content-Security-Policy"].endswith(
        "frame-ancestors https://shop.example.com 'self'")


def test_pages_by_public_key_and_unavailable_variants(stack):
    shop = stack.merchant()
    assert stack.page(shop, ref=shop.public_key).status_code == 200
    submitted = stack.submit(shop, CUSTOMER, ref=shop.public_key)
    assert submitted.status_code == 303
    assert submitted.headers["Location"].startswith(f"/signup/{shop.public_key}/")

    stack.ok(stack.api("PATCH", f"/api/v1/plan-variants/{shop.variant_id}", shop,
                       json={"allow_self_service": False}))
    hidden = stack.page(shop)
    assert hidden.status_code == 404 and "Page not found" in hidden.text
    posted = requests.post(f"{stack.base_url}/signup/{shop.slug}/{shop.variant_id}",
                           data=CUSTOMER, timeout=10)
    assert posted.status_code == 404

    other = stack.merchant()
    assert stack.page(other, shop.variant_id).status_code == 404  # not its variant
    assert requests.get(f"{stack.base_url}/signup/nobody/{shop.variant_id}",
                        timeout=10).status_code == 404
    assert stack.count("orders", shop.id) == 1
