"""Orders on the service's own tables: validation, pricing, storage, the event, idempotency,
and the catalog's merchant scoping and import."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from services.common.errors import Conflict, IdempotencyKeyReused, InvalidInput, NotFound
from services.signup import catalog, idempotency, models, orders, pages, schemas
from services.signup.models import Coupon, IdempotencyKey, Order

from .conftest import NOW

CUSTOMER = {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee",
            "country": "DE"}
SEATS = {"name": {"en": "Seats"}, "kind": "quantity", "unit_price": "5.00",
         "max_quantity": 10}


def form(**overrides):
    return orders.parse_form({"customer": dict(CUSTOMER), **overrides})


def stored_orders(session) -> int:
    return session.scalar(select(func.count()).select_from(Order))


def test_an_order_is_stored_with_the_price_it_was_shown_and_its_event(db, make_merchant):
    merchant, variant = make_merchant(components=[SEATS])
    seats = variant.component_ids[0]
    preview = orders.preview(db.session, merchant, variant, form(components={seats: 2}), NOW,
                             self_service=True)
    result = orders.submit(db, merchant, variant,
                           form(components={seats: 2},
                                quoted_price=preview["price"]["fingerprint"],
                                customer={**CUSTOMER, "birth_date": "1990-02-03"}),
                           NOW, self_service=False)
    assert result["price"] == preview["price"]
    order = db.session.get(Order, result["order_id"])
    assert order.lines == preview["price"] and order.contract_id == result["contract_id"]
    event, = db.events
    assert event.type == "OrderSubmitted" and event.aggregate_id == result["contract_id"]
    assert event.payload["customer"]["birth_date"] == dt.date(1990, 2, 3)
    assert event.payload["components"] == [
        {"component_id": seats, "name": "Seats", "kind": "quantity", "quantity": 2,
         "unit_price": Decimal("5.00")}]
    assert event.payload["totals"]["gross_total"] == Decimal(preview["price"]["gross_total"])


def test_nothing_is_stored_when_anything_is_wrong(db, make_merchant):
    merchant, variant = make_merchant()
    with pytest.raises(InvalidInput) as caught:
        orders.submit(db, merchant, variant, form(customer={**CUSTOMER, "email": "x"},
                                                  coupon_code="NOPE"), NOW, self_service=False)
    assert set(caught.value.fields) == {"email", "coupon_code"}
    assert stored_orders(db.session) == 0 and db.events == []


def test_a_changed_price_is_refused_instead_of_charged(db, make_merchant):
    merchant, variant = make_merchant()
    seen = orders.preview(db.session, merchant, variant, form(), NOW, self_service=True)
    catalog.update_variant(db.session, merchant.id, variant.id,
                           {"recurring_fee": Decimal("35.00")})
    with pytest.raises(InvalidInput) as caught:
        orders.submit(db, merchant, variant, form(quoted_price=seen["price"]["fingerprint"]),
                      NOW, self_service=True)
    assert caught.value.fields["_form"][0]["code"] == "price_changed"


def test_self_service_hides_what_the_page_does_not_offer(db, make_merchant):
    merchant, variant = make_merchant(components=[
        {**SEATS, "show_in_signup": False, "min_quantity": 1}])
    hidden = variant.component_ids[0]
    with pytest.raises(InvalidInput) as caught:
        orders.submit(db, merchant, variant, form(components={hidden: 0}), NOW,
                      self_service=True)
    assert caught.value.fields[f"components.{hidden}"][0]["code"] == "unknown_component"
    # the merchant's own API may set it
    result = orders.submit(db, merchant, variant, form(components={hidden: 3}), NOW,
                           self_service=False)
    assert result["price"]["recurring_net"] == "44.00"


def test_required_terms_apply_to_the_page_not_the_api(db, make_merchant):
    merchant, variant = make_merchant(settings={"terms": [
        {"text": {"en": "I accept the {tac}."}, "confirmation": True},
        {"text": {"en": "Info"}, "confirmation": False}]})
    with pytest.raises(InvalidInput) as caught:
        orders.submit(db, merchant, variant, form(), NOW, self_service=True)
    assert list(caught.value.fields) == ["terms.0"]
    orders.submit(db, merchant, variant, form(accepted_terms=[0]), NOW, self_service=True)
    orders.submit(db, merchant, variant, form(), NOW, self_service=False)
    assert stored_orders(db.session) == 2


def test_the_last_coupon_redemption_cannot_be_taken_twice(db, make_merchant):
    merchant, variant = make_merchant()
    catalog.create_coupon(db.session, merchant.id, schemas.load(schemas.CouponCreate(), {
        "code": "LAST", "kind": "percent", "value": "10", "max_redemptions": 1}))
    orders.submit(db, merchant, variant, form(coupon_code="last"), NOW, self_service=False)
    with pytest.raises(InvalidInput) as caught:
        orders.submit(db, merchant, variant, form(coupon_code="LAST"), NOW, self_service=False)
    assert caught.value.fields["coupon_code"][0]["code"] == "used_up"
    assert db.session.scalar(select(Coupon.redemptions)) == 1


def test_a_merchant_outside_the_eu_gets_no_vat_instead_of_an_error(db, make_merchant):
    merchant, variant = make_merchant()
    merchant.country = "US"
    price = orders.preview(db.session, merchant, variant, form(), NOW,
                           self_service=True)["price"]
    assert price["tax"]["category"] == "O" and price["gross_total"] == "38.90"


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["customer", "components", "coupon_code",
                                        "accepted_terms", "external_id", "language",
                                        "quoted_price", "junk"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30),
                                 st.lists(st.text(max_size=5), max_size=3),
                                 st.dictionaries(st.text(max_size=8),
                                                 st.one_of(st.text(max_size=8),
                                                           st.integers()), max_size=3))))
def test_any_page_form_renders_a_page_and_never_raises(session, make_merchant, raw):
    merchant, variant = make_merchant(components=[SEATS])
    parsed, errors = pages.parse_page_form(raw)
    page = pages.signup_page(session, merchant, variant, "en", parsed, NOW, errors)
    assert page["plan_name"] == "Pro monthly"
    assert isinstance(page["preview"]["errors"], dict)


# -- idempotency ----------------------------------------------------------------------------------

def test_idempotent_action_runs_once_per_key_and_body(session):
    calls = []

    def action():
        calls.append(1)
        return {"n": len(calls)}

    first = idempotency.run(session, "m_1", "k1", "orders", {"a": 1}, NOW, action)
    again = idempotency.run(session, "m_1", "k1", "orders", {"a": 1}, NOW, action)
    other = idempotency.run(session, "m_2", "k1", "orders", {"a": 1}, NOW, action)
    assert first == ({"n": 1}, False) and again == ({"n": 1}, True)
    assert other == ({"n": 2}, False)
    with pytest.raises(IdempotencyKeyReused):
        idempotency.run(session, "m_1", "k1", "orders", {"a": 2}, NOW, action)
    with pytest.raises(IdempotencyKeyReused):  # the endpoint is part of the request
        idempotency.run(session, "m_1", "k1", "coupons", {"a": 1}, NOW, action)


def test_idempotency_keys_are_kept_24_hours_then_purged(session):
    idempotency.run(session, "m_1", "k", "orders", {}, NOW, lambda: {"x": 1})
    later = NOW + idempotency.TTL
    assert idempotency.run(session, "m_1", "k", "orders", {"other": 1}, later,
                           lambda: {"x": 2}) == ({"x": 2}, False)
    assert idempotency.purge(session, later + idempotency.TTL) == 1
    assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_a_racing_request_with_the_same_key_is_a_conflict(session):
    idempotency.remember(session, "m_1", "k", "h", 201, {}, NOW)
    with pytest.raises(Conflict):
        idempotency.remember(session, "m_1", "k", "h", 201, {}, NOW)


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "ümlaut", "tab\t"])
def test_bad_idempotency_keys_are_refused(session, key):
    with pytest.raises(InvalidInput):
        idempotency.run(session, "m_1", key, "orders", {}, NOW, dict)


# -- catalog ----------------------------------------------------------------------------------

def test_lookups_are_scoped_to_the_merchant(session, make_merchant):
    mine, variant = make_merchant()
    other, _ = make_merchant()
    with pytest.raises(NotFound) as foreign:
        catalog.get_variant(session, other.id, variant.id)
    with pytest.raises(NotFound) as missing:
        catalog.get_variant(session, mine.id, "pv_missing")
    assert str(foreign.value) == str(missing.value)
    with pytest.raises(NotFound):
        catalog.update_plan(session, other.id, variant.plan_id, {"name": {"en": "Mine now"}})
    with pytest.raises(InvalidInput):  # nor can another merchant's component be attached
        comp = catalog.create_component(session, mine.id, schemas.load(
            schemas.ComponentCreate(), {"currency": "EUR", **SEATS}))
        catalog.update_variant(session, other.id, _.id, {"component_ids": [comp.id]})


def test_the_page_reads_merchant_variant_and_plan_as_stored(session, make_merchant):
    merchant, variant = make_merchant(components=[SEATS], settings={"ask_coupon": True},
                                      trial_days=14)
    for ref in (merchant.slug, merchant.public_key):
        found = catalog.page_target(session, ref, variant.id)
        for row, model in zip(found, (merchant, variant, session.get(
                models.Plan, variant.plan_id)), strict=True):
            for name, value in vars(row).items():
                assert value == getattr(model, name), name
    assert vars(found[0])["settings"] == {"ask_coupon": True}
    assert "secret_key_hash" not in vars(found[0])
    other, _ = make_merchant()
    with pytest.raises(NotFound):
        catalog.page_target(session, other.slug, variant.id)  # not its variant
    variant.allow_self_service = False
    session.flush()
    with pytest.raises(NotFound):
        catalog.page_target(session, merchant.slug, variant.id)


def test_components_must_share_the_variants_currency(session, make_merchant):
    merchant, variant = make_merchant()
    usd = catalog.create_component(session, merchant.id, schemas.load(
        schemas.ComponentCreate(), {**SEATS, "currency": "USD"}))
    with pytest.raises(InvalidInput) as caught:
        catalog.update_variant(session, merchant.id, variant.id, {"component_ids": [usd.id]})
    assert caught.value.fields["component_ids"][0]["code"] == "currency_mismatch"
    assert catalog.get_variant(session, merchant.id, variant.id).component_ids == []


def test_rotating_keys(session, make_merchant):
    merchant, _ = make_merchant()
    old_public = merchant.public_key
    secret = catalog.rotate_secret_key(session, merchant.id)
    assert catalog.authenticate(session, secret).id == merchant.id
    new_public = catalog.rotate_public_key(session, merchant.id)
    assert new_public != old_public
    assert catalog.merchant_by_ref(session, new_public).id == merchant.id
    with pytest.raises(NotFound):
        catalog.merchant_by_ref(session, old_public)
    assert catalog.merchant_by_ref(session, merchant.slug).id == merchant.id


def test_import_is_all_or_nothing_and_idempotent(session, make_merchant):
    merchant, _ = make_merchant()
    document = {
        "components": [{"ref": "seats", **SEATS, "currency": "EUR"}],
        "plans": [{"ref": "team", "name": {"en": "Team"}, "variants": [
            {"ref": "team-m", "name": {"en": "Team monthly"}, "currency": "EUR",
             "recurring_fee": "49.00", "components": ["seats"]}]}],
        "coupons": [{"code": "HI", "kind": "percent", "value": "10"}]}
    first = catalog.import_catalog(session, merchant.id, document)
    assert first["summary"]["plans"]["created"] == 1
    document["plans"][0]["variants"][0]["recurring_fee"] = "59.00"
    second = catalog.import_catalog(session, merchant.id, document)
    assert second["summary"]["plan_variants"] == {"created": 0, "updated": 1, "unchanged": 0}
    assert second["summary"]["components"] == {"created": 0, "updated": 0, "unchanged": 1}
    assert second["ids"] == first["ids"]

    document["components"][0]["kind"] = "onoff"
    document["plans"].append({"ref": "bad", "name": {"en": "Bad"}, "variants": [
        {"ref": "bad-m", "name": {"en": "B"}, "currency": "EUR", "recurring_fee": "x"}]})
    with pytest.raises(InvalidInput) as caught:
        catalog.import_catalog(session, merchant.id, document)
    assert set(caught.value.fields) == {"components.0.kind",
                                        "plans.1.variants.0.recurring_fee"}
