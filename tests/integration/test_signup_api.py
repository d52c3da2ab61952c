"""The merchant REST API of the signup area, through the real gateway and signup containers on
one RabbitMQ vhost with a migrated SQLite database (nothing replaced).

Covers: catalog list/get/create/update for plans, variants, components and coupons; merchant
scoping (another merchant's id is 404 like a missing one); the self-service settings document
(validation, sections, cross-section rules, get_settings contract); logos; orders over the API
with Idempotency-Key; the OpenAPI document; the catalog import and key rotation over the CLI.
"""
from __future__ import annotations

import base64
import io
import json
import sqlite3

import pytest
from PIL import Image

from services.common import events
from tests.support.signup_stack import CUSTOMER, start_signup_stack


@pytest.fixture
def stack(start_service, container_factory, rabbit_config, tmp_path):
    return start_signup_stack(start_service, container_factory, rabbit_config, tmp_path,
                              SIGNUP_RATE_LIMIT="10000/60", SIGNUP_PREVIEW_RATE_LIMIT="10000/60")


def png(width=40, height=20, colour=(200, 30, 30, 255)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


# -- catalog ----------------------------------------------------------------------------------


def test_catalog_objects_can_be_created_listed_fetched_and_updated(stack):
    shop = stack.merchant()
    seats = stack.ok(stack.api("POST", "/api/v1/components", shop, json={
        "name": {"en": "Seats"}, "kind": "quantity", "currency": "EUR", "unit_price": "5.00",
        "min_quantity": 1, "max_quantity": 50, "ref": "seats"}), 201)
    assert seats["unit_price"] == "5.00" and seats["ref"] == "seats"

    changed = stack.ok(stack.api("PATCH", f"/api/v1/components/{seats['id']}", shop,
                                 json={"unit_price": "6.50", "max_quantity": 10}))
    assert (changed["unit_price"], changed["max_quantity"], changed["min_quantity"]) == \
        ("6.50", 10, 1)

    variant = stack.ok(stack.api("PATCH", f"/api/v1/plan-variants/{shop.variant_id}", shop,
                                 json={"billing_period": "yearly", "trial_days": 14,
                                       "component_ids": [seats["id"]]}))
    assert variant["billing_period_months"] == 12 and variant["component_ids"] == [seats["id"]]
    assert stack.ok(stack.api("GET", f"/api/v1/plan-variants/{shop.variant_id}",
                              shop))["trial_days"] == 14

    plan = stack.ok(stack.api("PATCH", f"/api/v1/plans/{shop.plan_id}", shop,
                              json={"name": {"en": "Pro+", "de": "Profi+"}}))
    assert plan["name"] == {"en": "Pro+", "de": "Profi+"}

    coupon = stack.ok(stack.api("POST", "/api/v1/coupons", shop, json={
        "code": "welcome10", "kind": "percent", "value": "10", "periods": 3}), 201)
    assert coupon["code"] == "WELCOME10" and coupon["value"] == "10"
    coupon = stack.ok(stack.api("PATCH", f"/api/v1/coupons/{coupon['id']}", shop,
                                json={"max_redemptions": 100}))
    assert coupon["max_redemptions"] == 100

    for kind, count in (("plans", 1), ("plan-variants", 1), ("components", 1), ("coupons", 1)):
        listed = stack.ok(stack.api("GET", f"/api/v1/{kind}", shop))
        assert len(listed["data"]) == count and listed["has_more"] is False


def test_lists_page_with_limit_and_offset(stack):
    shop = stack.merchant()
    for n in range(3):
        stack.ok(stack.api("POST", "/api/v1/coupons", shop, json={
            "code": f"C{n}", "kind": "percent", "value": "5"}), 201)
    first = stack.ok(stack.api("GET", "/api/v1/coupons?limit=2", shop))
    rest = stack.ok(stack.api("GET", "/api/v1/coupons?limit=2&offset=2", shop))
    assert [c["code"] for c in first["data"]] == ["C0", "C1"] and first["has_more"]
    assert [c["code"] for c in rest["data"]] == ["C2"] and not rest["has_more"]
    bad = stack.api("GET", "/api/v1/coupons?limit=0", shop)
    assert bad.status_code == 400 and "limit" in bad.json()["error"]["fields"]


@pytest.mark.parametrize("kind", ["plans", "plan-variants", "components", "coupons"])
def test_another_merchants_object_is_not_found_like_a_missing_one(stack, kind):
    owner = stack.merchant(components=[{"key": "seats", "name": {"en": "Seats"},
                                        "kind": "quantity", "unit_price": "1.00"}])
    stack.ok(stack.api("POST", "/api/v1/coupons", owner, json={
        "code": "MINE", "kind": "percent", "value": "5"}), 201)
    other = stack.merchant()
    object_id = stack.ok(stack.api("GET", f"/api/v1/{kind}", owner))["data"][0]["id"]

    foreign = stack.api("GET", f"/api/v1/{kind}/{object_id}", other)
    missing = stack.api("GET", f"/api/v1/{kind}/{object_id[:-4]}0000", owner)
    patched = stack.api("PATCH", f"/api/v1/{kind}/{object_id}", other, json={})

    assert foreign.status_code == missing.status_code == patched.status_code == 404
    assert foreign.json() == {"error": {"code": "not_found", "message": foreign.json()[
        "error"]["message"], "fields": {}}}
    assert foreign.json()["error"]["message"] == missing.json()["error"]["message"]
    listed = stack.ok(stack.api("GET", f"/api/v1/{kind}", other))["data"]
    assert object_id not in {item["id"] for item in listed}


INVALID_CATALOG = [
    ("/api/v1/plan-variants", {"recurring_fee": "29.999"}, "recurring_fee", "too_many_decimals"),
    ("/api/v1/plan-variants", {"recurring_fee": -1}, "recurring_fee", "not_an_amount"),
    ("/api/v1/plan-variants", {"recurring_fee": True}, "recurring_fee", "not_an_amount"),
    ("/api/v1/plan-variants", {"currency": "XXY"}, "currency", "unknown_currency"),
    ("/api/v1/plan-variants", {"billing_period": "weekly"}, "billing_period", "invalid_choice"),
    ("/api/v1/plan-variants", {"billing_period": "yearly", "billing_period_months": 3},
     "billing_period_months", "conflict"),
    ("/api/v1/plan-variants", {"component_ids": ["comp_nope"]}, "component_ids",
     "unknown_component"),
    ("/api/v1/plan-variants", {"trial_days": "14"}, "trial_days", "not_an_integer"),
    ("/api/v1/plan-variants", {"price": "0.00"}, "price", "unknown_field"),
    ("/api/v1/plan-variants", {"name": {"xx": "?"}}, "name.xx", "unknown_language"),
    ("/api/v1/components", {"kind": "onoff", "min_quantity": 2}, "min_quantity",
     "out_of_range"),
    ("/api/v1/components", {"kind": "quantity", "min_quantity": 5, "max_quantity": 2},
     "max_quantity", "below_minimum"),
    ("/api/v1/coupons", {"code": "X", "kind": "percent", "value": "150"}, "value",
     "out_of_range"),
    ("/api/v1/coupons", {"code": "X", "kind": "fixed", "value": "5"}, "currency", "required"),
    ("/api/v1/coupons", {"code": "X", "kind": "percent", "value": "5",
                         "valid_from": "2026-05-01T00:00:00Z",
                         "valid_to": "2026-04-01T00:00:00Z"}, "valid_to", "before_valid_from"),
    ("/api/v1/coupons", {"code": "no spaces", "kind": "percent", "value": "5"}, "code",
     "invalid_code"),
]


def test_invalid_catalog_input_is_refused_per_field_and_nothing_is_stored(stack, subtests):
    shop = stack.merchant()
    bases = {"/api/v1/plan-variants": {"plan_id": shop.plan_id, "name": {"en": "X"},
                                       "currency": "EUR", "recurring_fee": "1.00"},
             "/api/v1/components": {"name": {"en": "X"}, "kind": "quantity",
                                    "currency": "EUR", "unit_price": "1.00"},
             "/api/v1/coupons": {}}
    tables = {"/api/v1/plan-variants": "plan_variants", "/api/v1/components": "components",
              "/api/v1/coupons": "coupons"}
    before = {table: stack.count(table, shop.id) for table in tables.values()}
    for path, body, field, code in INVALID_CATALOG:
        with subtests.test(f"{path} {body}"):
            reply = stack.api("POST", path, shop, json={**bases[path], **body})
            assert reply.status_code == 400, reply.text
            error = reply.json()["error"]
            assert error["code"] == "invalid_input"
            assert [e["code"] for e in error["fields"][field]] == [code], error["fields"]
    assert {table: stack.count(table, shop.id) for table in tables.values()} == before


def test_create_with_idempotency_key_happens_once(stack):
    shop = stack.merchant()
    body = {"code": "ONCE", "kind": "percent", "value": "5"}
    headers = {"Idempotency-Key": "coupon-once-1"}
    first = stack.api("POST", "/api/v1/coupons", shop, json=body, headers=headers)
    again = stack.api("POST", "/api/v1/coupons", shop, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert stack.count("coupons", shop.id) == 1


# -- self-service settings --------------------------------------------------------------------


def test_settings_have_defaults_and_round_trip(stack):
    shop = stack.merchant()
    settings = stack.ok(stack.api("GET", "/api/v1/settings/self-service", shop))
    assert settings["token_validity_minutes"] == 1440
    assert settings["fields"]["email"] == "required" and settings["fields"]["phone"] == \
        "optional"
    assert settings["embedding"] == {"frame_ancestors": ["'self'"], "redirect_hosts": []}
    assert settings["styling"]["logo_url"] is None and settings["terms"] == []

    again = stack.ok(stack.api("PUT", "/api/v1/settings/self-service", shop, json=settings))
    assert again == settings


def test_settings_update_replaces_the_sections_sent(stack):
    shop = stack.merchant()
    body = {
        "token_validity_minutes": 60, "ask_coupon": True, "show_external_id": True,
        "default_language": "de",
        "fields": {"phone": "required", "birth_date": "hidden"},
        "texts": {"title": {"en": "Join us", "de": "Mach mit"}},
        "urls": {"success": "https://shop.example.com/thanks?x=1",
                 "tac": "https://shop.example.com/agb"},
        "embedding": {"frame_ancestors": ["https://shop.example.com"],
                      "redirect_hosts": ["shop.example.com"]},
        "terms": [{"text": {"en": "I accept the {tac}.", "de": "Ich akzeptiere die {tac}."},
                   "confirmation": True}],
        "styling": {"button": "#112233", "border_radius": 0},
    }
    saved = stack.ok(stack.api("PUT", "/api/v1/settings/self-service", shop, json=body))
    assert saved["token_validity_minutes"] == 60 and saved["default_language"] == "de"
    assert saved["fields"]["phone"] == "required" and saved["fields"]["email"] == "required"
    assert saved["styling"]["button"] == "#112233" and saved["styling"]["border_radius"] == 0
    assert saved["styling"]["action_button"] == "#1F6FEB"  # a default

    partial = stack.ok(stack.api("PUT", "/api/v1/settings/self-service", shop,
                                 json={"styling": {"border_width": 2}}))
    assert partial["styling"]["button"] == "#57606A"  # the section was replaced
    assert partial["token_validity_minutes"] == 60  # other sections stay
    reset = stack.ok(stack.api("PUT", "/api/v1/settings/self-service", shop,
                               json={"token_validity_minutes": None}))
    assert reset["token_validity_minutes"] == 1440


INVALID_SETTINGS = [
    ({"token_validity_minutes": 0}, "token_validity_minutes", "out_of_range", "1 and 10080"),
    ({"token_validity_minutes": 10081}, "token_validity_minutes", "out_of_range",
     "1 and 10080"),
    ({"token_validity_minutes": "60"}, "token_validity_minutes", "not_an_integer", ""),
    ({"fields": {"email": "sometimes"}}, "fields.email", "invalid_choice", ""),
    ({"fields": {"shoe_size": "optional"}}, "fields.shoe_size.key", "invalid_choice", ""),
    ({"ask_coupon": "yes"}, "ask_coupon", "not_a_boolean", ""),
    ({"styling": {"button": "red"}}, "styling.button", "invalid_colour", "#RRGGBB"),
    ({"styling": {"button": "#fff"}}, "styling.button", "invalid_colour", ""),
    ({"styling": {"button": "#123456;}</style><script>"}}, "styling.button",
     "invalid_colour", ""),
    ({"styling": {"border_width": 9}}, "styling.border_width", "out_of_range", "0 and 8"),
    ({"styling": {"border_radius": -1}}, "styling.border_radius", "out_of_range", "0 and 24"),
    ({"terms": [{"text": {"en": f"line {n}"}} for n in range(6)]}, "terms", "too_many", "5"),
    ({"terms": [{"text": {"en": "I accept {agb}"}}]}, "terms.0.text.en",
     "unknown_placeholder", "{agb}"),
    ({"terms": [{"text": {"en": "I accept {tac"}}]}, "terms.0.text.en", "invalid_braces", ""),
    ({"terms": [{"text": {}}]}, "terms.0.text", "required", ""),
    ({"urls": {"tac": "javascript:alert(1)"}}, "urls.tac", "invalid_url", "https://"),
    ({"urls": {"tac": "http://shop.example.com/agb"}}, "urls.tac", "invalid_url", ""),
    ({"urls": {"success": "https://evil.example.net/"}}, "urls.success", "host_not_allowed",
     "evil.example.net"),
    ({"urls": {"success": "https://user@shop.example.com/"}}, "urls.success", "invalid_url",
     ""),
    ({"embedding": {"redirect_hosts": ["*.example.com"]}}, "embedding.redirect_hosts.0",
     "invalid_host", ""),
    ({"embedding": {"redirect_hosts": ["https://shop.example.com"]}},
     "embedding.redirect_hosts.0", "invalid_host", ""),
    ({"embedding": {"frame_ancestors": ["https://shop.example.com/path"]}},
     "embedding.frame_ancestors.0", "invalid_origin", ""),
    ({"embedding": {"frame_ancestors": ["*"]}}, "embedding.frame_ancestors.0",
     "invalid_origin", ""),
    ({"texts": {"title": {"en": "x" * 201}}}, "texts.title.en", "too_long", "200"),
    ({"texts": {"subtitle": {"en": "x"}}}, "texts.subtitle", "unknown_field", ""),
    ({"portal": {"sections": {"contract": {"cancellable": 1}}}},
     "portal.sections.contract.cancellable", "not_a_boolean", ""),
    ({"colour": "#000000"}, "colour", "unknown_field", ""),
]


def test_invalid_settings_are_refused_with_field_messages_and_nothing_changes(stack, subtests):
    shop = stack.merchant()
    before = stack.ok(stack.api("GET", "/api/v1/settings/self-service", shop))
    for body, field, code, needle in INVALID_SETTINGS:
        with subtests.test(f"{body}"[:80]):
            reply = stack.api("PUT", "/api/v1/settings/self-service", shop,
                              json={"token_validity_minutes": 77, **body})
            assert reply.status_code == 400, reply.text
            errors = reply.json()["error"]["fields"]
            assert [e["code"] for e in errors[field]] == [code], errors
            assert needle in errors[field][0]["message"]
    assert stack.ok(stack.api("GET", "/api/v1/settings/self-service", shop)) == before


def test_removing_an_allowed_host_that_a_url_uses_is_refused(stack):
    shop = stack.merchant(settings={
        "urls": {"success": "https://shop.example.com/ok"},
        "embedding": {"redirect_hosts": ["shop.example.com"]}})
    reply = stack.api("PUT", "/api/v1/settings/self-service", shop,
                      json={"embedding": {"redirect_hosts": []}})
    assert reply.status_code == 400
    assert reply.json()["error"]["fields"]["urls.success"][0]["code"] == "host_not_allowed"


def test_get_settings_contract_for_other_areas(stack):
    shop = stack.merchant(language="de", settings={
        "texts": {"customer_heading": {"de": "Ihre Daten bitte"}},
        "terms": [{"text": {"de": "Ich akzeptiere die {tac}."}, "confirmation": True}],
        "portal": {"sections": {"contract": {"cancellable": False,
                                             "heading": {"en": "Membership"}},
                                "additional_data": {"visible": True, "fields": [
                                    {"key": "member_no", "label": {"en": "Member number"}}]}}},
        "embedding": {"frame_ancestors": ["https://shop.example.com"]}})
    with stack.rpc() as rpc:
        settings = rpc.signup.get_settings(shop.id)
        by_slug = rpc.signup.get_settings_by_slug(shop.slug)
    assert settings == by_slug
    assert set(settings) >= {"default_language", "token_validity_minutes", "fields", "texts",
                             "styling", "urls", "embedding", "portal", "merchant"}
    assert settings["merchant"] == {"id": shop.id, "slug": shop.slug, "name": f"Shop {shop.slug}",
                                    "country": "DE"}
    assert settings["urls"] == dict.fromkeys(("success", "error", "tac", "dpp", "withdrawal"))
    # the merchant's text in its default language stands in for missing languages
    assert settings["texts"]["customer_heading"] == {"en": "Ihre Daten bitte",
                                                     "de": "Ihre Daten bitte",
                                                     "fr": "Ihre Daten bitte"}
    assert settings["texts"]["order_heading"]["fr"] == "Votre commande"  # built-in
    assert settings["terms"][0]["text"]["en"] == "Ich akzeptiere die {tac}."
    sections = settings["portal"]["sections"]
    assert set(sections) == {"customer", "payment", "contract", "account", "documents",
                             "additional_data"}
    assert sections["contract"]["cancellable"] is False and sections["contract"]["visible"]
    assert sections["contract"]["heading"]["en"] == "Membership"
    assert sections["contract"]["heading"]["de"] == "Ihr Vertrag"
    assert sections["customer"] == {"visible": True, "editable": True, "heading": {
        "en": "Your details", "de": "Ihre Daten", "fr": "Vos coordonnées"}}
    assert sections["additional_data"]["fields"] == [
        {"key": "member_no", "label": {"en": "Member number", "de": "Member number",
                                       "fr": "Member number"}}]
    assert settings["embedding"]["frame_ancestors"] == ["https://shop.example.com"]
    assert all(settings["styling"][k].startswith("#") for k in ("button", "border"))


# -- logo ---------------------------------------------------------------------------------------


def test_logo_is_reencoded_served_at_a_stable_url_and_removable(stack):
    shop = stack.merchant()
    big = png(2000, 1000)
    reply = stack.api("PUT", "/api/v1/settings/self-service/logo", shop, data=big,
                      headers={"Content-Type": "image/png"})
    logo_url = stack.ok(reply)["logo_url"]
    assert logo_url.startswith(f"{stack.base_url}/assets/logos/{shop.id}/")

    served = stack.api("GET", logo_url[len(stack.base_url):], shop)
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/png"
    assert "immutable" in served.headers["Cache-Control"]
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    image = Image.open(io.BytesIO(served.content))
    assert image.size == (800, 400)  # scaled down, aspect kept
    assert stack.ok(stack.api("GET", "/api/v1/settings/self-service",
                              shop))["styling"]["logo_url"] == logo_url

    assert stack.ok(stack.api("DELETE", "/api/v1/settings/self-service/logo", shop)) == {
        "logo_url": None}
    assert stack.api("GET", logo_url[len(stack.base_url):], shop).status_code in (200, 404)
    assert stack.ok(stack.api("GET", "/api/v1/settings/self-service",
                              shop))["styling"]["logo_url"] is None


BAD_LOGOS = [
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "image/svg+xml", "svg_not_allowed"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "image/png",
     "svg_not_allowed"),
    (b"GIF89a" + b"\x00" * 64, "image/gif", "unsupported_format"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png", "unreadable"),
    (b"", "image/png", "empty"),
    (b"\xff" * (2 * 1024 * 1024 + 1), "image/jpeg", "too_large"),
]


def test_bad_logos_are_refused(stack, subtests):
    shop = stack.merchant()
    for data, content_type, code in BAD_LOGOS:
        with subtests.test(code):
            reply = stack.api("PUT", "/api/v1/settings/self-service/logo", shop, data=data,
                              headers={"Content-Type": content_type})
            assert reply.status_code == 400, reply.text
            assert reply.json()["error"]["fields"]["logo"][0]["code"] == code
    assert stack.count("merchant_logos", shop.id) == 0


def test_jpeg_logo_stays_jpeg_and_its_metadata_is_dropped(stack):
    shop = stack.merchant()
    out = io.BytesIO()
    image = Image.new("RGB", (100, 50), (10, 20, 30))
    exif = Image.Exif()
    exif[0x010E] = "secret description"
    image.save(out, format="JPEG", exif=exif.tobytes())
    url = stack.ok(stack.api("PUT", "/api/v1/settings/self-service/logo", shop,
                             data=out.getvalue(),
                             headers={"Content-Type": "image/jpeg"}))["logo_url"]
    served = stack.api("GET", url[len(stack.base_url):], shop)
    assert served.headers["Content-Type"] == "image/jpeg"
    assert b"secret description" not in served.content


# -- orders over the API ------------------------------------------------------------------------


def order_body(shop, **overrides):
    return {"plan_variant_id": shop.variant_id, "customer": dict(CUSTOMER), **overrides}


def test_preview_prices_without_storing(stack):
    shop = stack.merchant()
    reply = stack.ok(stack.api("POST", "/api/v1/orders/preview", shop, json=order_body(shop)))
    price = reply["price"]
    assert (price["setup_net"], price["recurring_net"], price["tax"]["rate"],
            price["gross_total"]) == ("9.90", "29.00", "19", "46.29")
    assert reply["errors"] == {}
    assert stack.count("orders", shop.id) == 0


def test_order_is_stored_with_its_event_and_idempotency_key_replays_it(stack):
    shop = stack.merchant()
    key = {"Idempotency-Key": "order-7f3a"}
    first = stack.api("POST", "/api/v1/orders", shop, json=order_body(shop), headers=key)
    again = stack.api("POST", "/api/v1/orders", shop, json=order_body(shop), headers=key)

    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert stack.count("orders", shop.id) == 1 and stack.outbox(shop.id) == 1

    order = first.json()
    with sqlite3.connect(stack.db_path) as db:
        body, = db.execute("SELECT body FROM outbox WHERE merchant_id = ?", (shop.id,)).fetchone()
    event = events.load_envelope(json.loads(body), "OrderSubmitted")
    assert event.payload["contract_id"] == order["contract_id"]
    assert str(event.payload["totals"]["gross_total"]) == order["price"]["gross_total"]
    fetched = stack.ok(stack.api("GET", f"/api/v1/orders/{order['order_id']}", shop))
    assert fetched["contract_id"] == order["contract_id"]


def test_idempotency_key_with_another_body_is_422_and_keys_are_per_merchant(stack):
    shop, other = stack.merchant(), stack.merchant()
    key = {"Idempotency-Key": "same-key"}
    assert stack.api("POST", "/api/v1/orders", shop, json=order_body(shop),
                     headers=key).status_code == 201
    changed = stack.api("POST", "/api/v1/orders", shop,
                        json=order_body(shop, external_id="X-2"), headers=key)
    assert changed.status_code == 422
    assert changed.json()["error"]["code"] == "idempotency_key_reused"
    # the same key is another merchant's own key
    assert stack.api("POST", "/api/v1/orders", other, json=order_body(other),
                     headers=key).status_code == 201
    assert stack.count("orders", shop.id) == stack.count("orders", other.id) == 1


def test_idempotency_keys_expire_after_24_hours(stack):
    shop = stack.merchant()
    key = {"Idempotency-Key": "daily"}
    first = stack.api("POST", "/api/v1/orders", shop, json=order_body(shop), headers=key)
    stack.clock.advance(hours=24, seconds=1)
    again = stack.api("POST", "/api/v1/orders", shop, json=order_body(shop), headers=key)
    assert again.status_code == 201
    assert again.json()["order_id"] != first.json()["order_id"]


INVALID_ORDERS = [
    ({"customer": {**CUSTOMER, "email": "not-an-e-mail"}}, "email"),
    ({"customer": {**CUSTOMER, "email": 42}}, "email"),
    ({"customer": {**CUSTOMER, "first_name": "A" * 10_000}}, "first_name"),
    ({"customer": {**CUSTOMER, "vat_id": "DE000000000"}}, "vat_id"),
    ({"customer": {**CUSTOMER, "country": "FR", "vat_id": "DE136695976"}}, "vat_id"),
    ({"customer": {**CUSTOMER, "postal_code": "1234"}}, "postal_code"),
    ({"customer": {**CUSTOMER, "phone": "12"}}, "phone"),
    ({"customer": {**CUSTOMER, "favourite": "x"}}, "customer.favourite"),
    ({"customer": "ann@example.com"}, "customer"),
    ({"components": {"comp_unknown": 1}}, "components.comp_unknown"),
    ({"components": {"x": -1}}, "components.x"),
    ({"components": []}, "components"),
    ({"coupon_code": "NOPE"}, "coupon_code"),
    ({"coupon_code": 5}, "coupon_code"),
    ({"external_id": "x" * 201}, "external_id"),
    ({"language": "xx"}, "language"),
    ({"price": {"gross_total": "0.00"}}, "price"),
    ({"plan_variant_id": None}, "plan_variant_id"),
]


def test_invalid_orders_are_400_with_messages_and_store_nothing(stack, subtests):
    shop = stack.merchant()
    for body, field in INVALID_ORDERS:
        with subtests.test(field):
            reply = stack.api("POST", "/api/v1/orders", shop,
                              json={**order_body(shop), **body},
                              headers={"Idempotency-Key": f"bad-{field}"})
            assert reply.status_code == 400, reply.text
            errors = reply.json()["error"]["fields"]
            assert field in errors, errors
            assert all(e["message"] for e in errors[field])
    assert stack.count("orders", shop.id) == 0 and stack.outbox(shop.id) == 0
    assert stack.count("idempotency_keys", shop.id) == 0


def test_non_json_and_non_object_bodies_are_400(stack):
    shop = stack.merchant()
    broken = stack.api("POST", "/api/v1/orders", shop, data="{not json",
                       headers={"Content-Type": "application/json"})
    listed = stack.api("POST", "/api/v1/orders", shop, json=[1, 2])
    assert broken.status_code == listed.status_code == 400
    assert broken.json()["error"]["code"] == "invalid_json"


def test_a_variant_of_another_merchant_cannot_be_ordered(stack):
    shop, other = stack.merchant(), stack.merchant()
    reply = stack.api("POST", "/api/v1/orders", other,
                      json={**order_body(shop), "plan_variant_id": shop.variant_id})
    assert reply.status_code == 404


# -- OpenAPI --------------------------------------------------------------------------------------


def test_openapi_document_describes_the_endpoints_from_the_schemas(stack):
    reply = stack.api("GET", "/api/v1/openapi.json", "no-key")
    assert reply.status_code == 200
    spec = reply.json()
    assert spec["openapi"].startswith("3.1")
    for path in ("/api/v1/plans", "/api/v1/plan-variants/{id}", "/api/v1/coupons",
                 "/api/v1/components", "/api/v1/settings/self-service", "/api/v1/orders"):
        assert path in spec["paths"], path
    variant = spec["components"]["schemas"]["PlanVariantCreate"]
    assert "recurring_fee" in variant["properties"] and "plan_id" in variant["required"]
    settings = spec["components"]["schemas"]["SelfServiceSettings"]
    assert "token_validity_minutes" in settings["properties"]
    order = spec["paths"]["/api/v1/orders"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in order["parameters"])
    assert "bearerAuth" in spec["components"]["securitySchemes"]


# -- ops CLI --------------------------------------------------------------------------------------


CATALOG_YAML = """
components:
  - ref: seats
    name: {en: Seats, de: Plätze}
    kind: quantity
    currency: EUR
    unit_price: "5.00"
    max_quantity: 20
  - ref: api-calls
    name: {en: API calls}
    kind: metered
    currency: EUR
    unit_price: "0.01"
plans:
  - ref: team
    name: {en: Team}
    variants:
      - ref: team-monthly
        name: {en: Team monthly}
        currency: EUR
        recurring_fee: 49.00
        billing_period: monthly
        components: [seats, api-calls]
      - ref: team-yearly
        name: {en: Team yearly}
        currency: EUR
        recurring_fee: "490.00"
        billing_period: yearly
        trial_days: 14
coupons:
  - code: LAUNCH
    kind: fixed
    value: "10.00"
    currency: EUR
    periods: 1
    valid_to: 2026-12-31T23:59:59Z
"""


def test_cli_imports_a_catalog_idempotently_and_rotates_keys(stack, tmp_path, monkeypatch,
                                                             capsys):
    from ops import cli
    monkeypatch.setenv("AMQP_URI", stack.amqp_uri)
    shop = stack.merchant()
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG_YAML)

    assert cli.main(["catalog", "import", str(path), "--slug", shop.slug]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["summary"]["plan_variants"]["created"] == 2
    assert first["summary"]["components"]["created"] == 2
    assert cli.main(["catalog", "import", str(path), "--slug", shop.slug]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["summary"]["plan_variants"] == {"created": 0, "updated": 0, "unchanged": 2}
    assert second["ids"] == first["ids"]
    monthly = stack.ok(stack.api("GET", f"/api/v1/plan-variants/"
                                        f"{first['ids']['plan_variants']['team-monthly']}", shop))
    assert monthly["recurring_fee"] == "49.00"
    assert monthly["component_ids"] == [first["ids"]["components"]["seats"],
                                        first["ids"]["components"]["api-calls"]]

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"plans": [{"ref": "x", "name": {"en": "X"}, "variants": [
        {"ref": "x-m", "name": {"en": "X"}, "currency": "EUR", "recurring_fee": "1.001",
         "components": ["nope"]}]}], "coupons": [{"code": "Z", "kind": "bogus"}]}))
    assert cli.main(["catalog", "import", str(broken), "--slug", shop.slug]) == 1
    err = capsys.readouterr().err
    assert "plans.0.variants.0.components" in err and "coupons.0.kind" in err
    assert stack.count("plans", shop.id) == 2  # the first plan and "team": nothing more

    assert cli.main(["merchant", "rotate-public-key", "--slug", shop.slug]) == 0
    rotated = json.loads(capsys.readouterr().out)["public_key"]
    assert rotated.startswith("pk_") and rotated != shop.public_key
    assert stack.page(shop, ref=shop.public_key).status_code == 404
    assert stack.page(shop, ref=rotated).status_code == 200

    assert cli.main(["merchant", "rotate-key", "--slug", shop.slug]) == 0
    new_key = json.loads(capsys.readouterr().out)["secret_key"]
    assert stack.api("GET", "/api/v1/plans", new_key).status_code == 200
    with sqlite3.connect(stack.db_path) as db:
        stored = db.execute("SELECT secret_key_hash FROM merchants WHERE id = ?",
                            (shop.id,)).fetchone()[0]
    assert new_key not in stored and len(stored) == 64


def test_logo_upload_response_is_not_base64_in_the_api(stack):
    """The API never echoes image bytes: only the URL."""
    shop = stack.merchant()
    reply = stack.ok(stack.api("PUT", "/api/v1/settings/self-service/logo", shop, data=png(),
                               headers={"Content-Type": "image/png"}))
    assert set(reply) == {"logo_url"}
    assert base64.b64encode(png())[:20].decode() not in json.dumps(reply)
