"""Order pricing: coupons, component quantities, the first invoice and later periods."""
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.money import MoneyError, from_minor, to_minor
from services.common.tax import EU_VAT_RATES, TaxTreatment, tax_treatment
from services.signup.pricing import (
    ComponentPrice,
    ComponentQuantityError,
    Coupon,
    CouponError,
    OrderPrice,
    PriceLine,
    QuantityError,
    VariantPrice,
    check_component_quantities,
    check_coupon,
    price_order,
    price_period,
    select_components,
    trial_end,
)

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
DOMESTIC = tax_treatment("DE", "DE")  # 19 %
REVERSE_CHARGE = tax_treatment("DE", "FR", vat_id="FR40303265045")
OUTSIDE = tax_treatment("DE", "US")
D = Decimal


def variant(**overrides):
    values = {"currency": "EUR", "recurring_fee": "29.90", "setup_fee": "0",
              "billing_period_months": 1, "trial_days": 0}
    values.update(overrides)
    return VariantPrice(**values)


def coupon(**overrides):
    values = {"code": "WELCOME", "kind": "percent", "value": "10"}
    values.update(overrides)
    return Coupon(**values)


SEATS = ComponentPrice("seats", "Seats", "quantity", D("4.99"), 1, 10)
SUPPORT = ComponentPrice("support", "Priority support", "onoff", D("10.00"))
API_CALLS = ComponentPrice("api", "API calls", "metered", D("0.0015"))
STORAGE = ComponentPrice("storage", "Storage (GB)", "quantity", D("0.333"))
COMPONENTS = [SEATS, SUPPORT, API_CALLS, STORAGE]


# --- catalog values ---------------------------------------------------------------------------


def test_prices_accept_strings_and_normalise():
    price = variant(currency="eur", recurring_fee="29.9", setup_fee="9.90")
    assert price.currency == "EUR"
    assert price.recurring_fee == D("29.9") and price.setup_fee == D("9.90")


@pytest.mark.parametrize(
    "overrides",
    [{"currency": "EURO"}, {"recurring_fee": "-1"}, {"setup_fee": 9.9},
     {"recurring_fee": "29.999"}, {"recurring_fee": "abc"}, {"billing_period_months": 0},
     {"trial_days": -1}, {"trial_days": 1.5}, {"billing_period_months": True},
     {"currency": "JPY", "recurring_fee": "100.5"}],
)
def test_invalid_variant_prices_are_refused(overrides):
    with pytest.raises((ValueError, MoneyError)):
        variant(**overrides)


@pytest.mark.parametrize(
    "args",
    [("c", "C", "bundle", "1"), ("c", "C", "quantity", "-1"), ("c", "C", "quantity", "1", -1),
     ("c", "C", "quantity", "1", 5, 4), ("c", "C", "onoff", "1", 2),
     ("c", "C", "quantity", 1.5)],
)
def test_invalid_components_are_refused(args):
    with pytest.raises((ValueError, MoneyError)):
        ComponentPrice(*args)


def test_onoff_component_is_capped_at_one():
    assert ComponentPrice("c", "C", "onoff", "1", 0, None).max_quantity == 1


@pytest.mark.parametrize(
    "overrides",
    [{"kind": "gift"}, {"value": "0"}, {"value": "100.01"}, {"value": "-5"},
     {"kind": "fixed", "value": "5"}, {"kind": "fixed", "value": "5.001", "currency": "EUR"},
     {"kind": "fixed", "value": "5", "currency": "EURO"}, {"periods": 0},
     {"valid_from": datetime(2026, 1, 1)}, {"valid_to": "2026-12-31"},
     {"max_redemptions": -1}, {"redemptions": -1}],
)
def test_invalid_coupons_are_refused(overrides):
    with pytest.raises((ValueError, MoneyError)):
        coupon(**overrides)


# --- check_coupon -----------------------------------------------------------------------------


def test_valid_coupon_is_returned():
    welcome = coupon(valid_from=NOW - timedelta(days=1), valid_to=NOW + timedelta(days=1),
                     max_redemptions=10, redemptions=9)
    assert check_coupon(welcome, "WELCOME", NOW) is welcome


@pytest.mark.parametrize("typed", ["welcome", " Welcome ", "WELCOME"])
def test_coupon_codes_match_case_insensitively(typed):
    assert check_coupon(coupon(), typed, NOW).code == "WELCOME"


@pytest.mark.parametrize(
    ("found", "typed"),
    [(None, "WELCOME"), (coupon(), "WELCOME2"), (coupon(), ""), (coupon(), None)],
)
def test_unknown_coupon(found, typed):
    with pytest.raises(CouponError) as raised:
        check_coupon(found, typed, NOW)
    assert raised.value.code == "unknown"


def test_coupon_not_yet_valid_and_from_is_inclusive():
    starts = coupon(valid_from=NOW)
    assert check_coupon(starts, "WELCOME", NOW) is starts
    with pytest.raises(CouponError) as raised:
        check_coupon(starts, "WELCOME", NOW - timedelta(microseconds=1))
    assert raised.value.code == "not_yet_valid"


def test_coupon_expired_and_to_is_exclusive():
    ends = coupon(valid_to=NOW)
    assert check_coupon(ends, "WELCOME", NOW - timedelta(seconds=1)) is ends
    with pytest.raises(CouponError) as raised:
        check_coupon(ends, "WELCOME", NOW)
    assert raised.value.code == "expired"


def test_coupon_validity_compares_instants_across_time_zones():
    berlin = datetime(2026, 1, 15, 11, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # 10:00 UTC
    with pytest.raises(CouponError, match="expired"):
        check_coupon(coupon(valid_to=berlin), "WELCOME", NOW + timedelta(hours=1))


@pytest.mark.parametrize(("limit", "used"), [(1, 1), (5, 7), (0, 0)])
def test_coupon_used_up(limit, used):
    with pytest.raises(CouponError) as raised:
        check_coupon(coupon(max_redemptions=limit, redemptions=used), "WELCOME", NOW)
    assert raised.value.code == "used_up"


def test_coupon_currency_mismatch():
    fixed_usd = coupon(kind="fixed", value="5", currency="USD")
    with pytest.raises(CouponError) as raised:
        check_coupon(fixed_usd, "WELCOME", NOW, currency="EUR")
    assert raised.value.code == "currency_mismatch"
    assert check_coupon(fixed_usd, "WELCOME", NOW, currency="usd") is fixed_usd
    assert check_coupon(coupon(), "WELCOME", NOW, currency="CHF").kind == "percent"


def test_check_coupon_needs_an_aware_now():
    with pytest.raises(ValueError):
        check_coupon(coupon(), "WELCOME", datetime(2026, 1, 15))


# --- component quantities ---------------------------------------------------------------------


def test_valid_quantities_have_no_errors():
    assert check_component_quantities(COMPONENTS, {"seats": 3, "support": 1, "storage": 0}) == {}
    assert check_component_quantities(COMPONENTS, {}) == {}


@pytest.mark.parametrize(
    ("quantities", "expected"),
    [({"nope": 1}, {"nope": QuantityError("unknown_component")}),
     ({"seats": "3"}, {"seats": QuantityError("not_an_integer")}),
     ({"seats": 2.0}, {"seats": QuantityError("not_an_integer")}),
     ({"seats": None}, {"seats": QuantityError("not_an_integer")}),
     ({"seats": [3]}, {"seats": QuantityError("not_an_integer")}),
     ({"support": True}, {"support": QuantityError("not_an_integer")}),
     ({"storage": -1}, {"storage": QuantityError("negative")}),
     ({"seats": 0}, {"seats": QuantityError("below_minimum", {"min": 1})}),
     ({"seats": 11}, {"seats": QuantityError("above_maximum", {"max": 10})}),
     ({"support": 2}, {"support": QuantityError("invalid_onoff")}),
     ({"api": 100}, {"api": QuantityError("metered_not_selectable")}),
     ({"api": 0}, {"api": QuantityError("metered_not_selectable")})],
)
def test_invalid_quantities(quantities, expected):
    assert check_component_quantities(COMPONENTS, quantities) == expected
    with pytest.raises(ComponentQuantityError) as raised:
        select_components(COMPONENTS, quantities)
    assert raised.value.errors == expected


def test_all_errors_are_reported_together():
    errors = check_component_quantities(COMPONENTS, {"seats": 99, "support": 3, "x": 1})
    assert {key: error.code for key, error in errors.items()} == {
        "seats": "above_maximum", "support": "invalid_onoff", "x": "unknown_component",
    }


def test_select_components_fills_in_minimums_and_metered():
    selected = select_components(COMPONENTS, {"support": 1})
    assert selected == [(SEATS, 1), (SUPPORT, 1), (API_CALLS, 0), (STORAGE, 0)]


# --- the first invoice ------------------------------------------------------------------------


def test_plain_monthly_plan():
    price = price_order(variant(), [], None, DOMESTIC)
    assert price.lines == (PriceLine("recurring", "recurring_fee", 1, D("29.90"), D("29.90")),)
    assert (price.net_total, price.tax.amount, price.gross_total) == (
        D("29.90"), D("5.68"), D("35.58"))
    assert price.due_now == D("35.58") and price.due_at_trial_end == D("0.00")
    assert price.first_invoice_at == "signup"
    assert price.recurring_gross == D("35.58") == price.discounted_recurring_gross
    assert price.discount_periods == 0


def test_setup_fee_components_and_metered():
    selected = select_components(COMPONENTS, {"seats": 3, "support": 1, "storage": 7})
    price = price_order(variant(setup_fee="9.90"), selected, None, DOMESTIC)
    assert [(line.kind, line.description, line.quantity, line.net) for line in price.lines] == [
        ("setup", "setup_fee", 1, D("9.90")),
        ("recurring", "recurring_fee", 1, D("29.90")),
        ("component", "Seats", 3, D("14.97")),
        ("component", "Priority support", 1, D("10.00")),
        ("component", "Storage (GB)", 7, D("2.33")),  # 7 × 0.333 = 2.331
    ]
    assert price.setup_net == D("9.90")
    assert price.recurring_net == D("57.20")
    assert price.net_total == D("67.10")
    assert price.tax.amount == D("12.75")  # 19 % of 67.10 = 12.749
    assert price.gross_total == D("79.85")
    assert [(m.component_id, m.unit_price) for m in price.metered] == [("api", D("0.0015"))]
    assert all(line.component_id != "api" for line in price.lines)


def test_percent_coupon_discounts_recurring_charges_not_the_setup_fee():
    selected = [(SEATS, 2)]
    price = price_order(variant(setup_fee="50.00"), selected, coupon(value="50"), DOMESTIC)
    assert price.recurring_net == D("39.88")
    assert price.discount == D("19.94")
    assert price.lines[-1] == PriceLine("discount", "WELCOME", 1, D("-19.94"), D("-19.94"))
    assert price.net_total == D("50.00") + D("39.88") - D("19.94")


def test_percent_discount_rounds_half_up_to_the_cent():
    price = price_order(variant(recurring_fee="0.05"), [], coupon(value="50"), OUTSIDE)
    assert price.discount == D("0.03")  # 0.025 → 0.03
    assert price.net_total == D("0.02")


def test_hundred_percent_coupon_leaves_only_the_setup_fee():
    price = price_order(variant(setup_fee="19.00"), [(SEATS, 10)], coupon(value="100"),
                        DOMESTIC)
    assert price.discount == price.recurring_net == D("79.80")
    assert price.net_total == D("19.00")
    assert price.gross_total == D("22.61")
    assert price.discounted_recurring_gross == D("0.00")
    assert price.recurring_gross == D("94.96")


def test_fixed_coupon_larger_than_the_price_is_capped():
    big = coupon(kind="fixed", value="500.00", currency="EUR", periods=2)
    price = price_order(variant(setup_fee="9.90"), [], big, DOMESTIC)
    assert price.discount == D("29.90")
    assert price.net_total == D("9.90")
    assert price.gross_total == D("11.78")
    assert price.discounted_recurring_gross == D("0.00")
    assert all(amount >= 0 for amount in (price.net_total, price.tax.amount, price.gross_total))


def test_fixed_coupon():
    price = price_order(variant(), [], coupon(kind="fixed", value="5", currency="EUR"),
                        DOMESTIC)
    assert price.discount == D("5.00")
    assert price.net_total == D("24.90")


def test_fixed_coupon_in_another_currency_is_refused():
    usd = coupon(kind="fixed", value="5", currency="USD")
    with pytest.raises(CouponError) as raised:
        price_order(variant(), [], usd, DOMESTIC)
    assert raised.value.code == "currency_mismatch"


def test_coupon_on_a_free_plan_discounts_nothing():
    price = price_order(variant(recurring_fee="0", setup_fee="5"), [], coupon(), DOMESTIC)
    assert price.discount == D("0.00")
    assert [line.kind for line in price.lines] == ["setup", "recurring"]


@pytest.mark.parametrize(
    ("treatment", "tax", "gross"),
    [(DOMESTIC, "5.68", "35.58"), (REVERSE_CHARGE, "0.00", "29.90"),
     (OUTSIDE, "0.00", "29.90"), (tax_treatment("DE", "HU"), "8.07", "37.97"),
     (tax_treatment("DE", "FI"), "7.62", "37.52")],
)
def test_tax_on_the_net_total(treatment, tax, gross):
    price = price_order(variant(), [], None, treatment)
    assert price.tax.amount == D(tax)
    assert price.gross_total == D(gross)
    assert price.tax.rate == treatment.rate
    assert price.tax.category == treatment.category
    assert price.tax.reverse_charge == treatment.reverse_charge


def test_trial_charges_nothing_at_signup_and_everything_at_trial_end():
    trial = variant(setup_fee="9.90", trial_days=14)
    price = price_order(trial, [], coupon(periods=1), DOMESTIC)
    assert price.first_invoice_at == "trial_end"
    assert price.due_now == D("0.00")
    # setup 9.90 + (29.90 − 2.99) = 36.81 net, 6.99 VAT
    assert price.due_at_trial_end == price.gross_total == D("43.80")
    assert price.recurring_gross == D("35.58")  # from period 2 on, coupon used up
    assert price.discount_periods == 1


def test_trial_end_is_start_plus_trial_days():
    assert trial_end(NOW, 14) == datetime(2026, 1, 29, 9, 0, tzinfo=UTC)
    assert trial_end(NOW, 0) == NOW


def test_zero_decimal_and_three_decimal_currencies():
    yen = price_order(variant(currency="JPY", recurring_fee="1000"), [(STORAGE, 5)],
                      coupon(value="33"), DOMESTIC)
    assert yen.recurring_net == D("1002")  # 1000 + round(1.665)
    assert yen.discount == D("331")  # 330.66
    assert yen.tax.amount == D("127")  # 19 % of 671 = 127.49
    assert to_minor(yen.gross_total, "JPY") == 798
    dinar = price_order(variant(currency="KWD", recurring_fee="1.250"), [], None, DOMESTIC)
    assert dinar.tax.amount == D("0.238")


def test_later_periods_for_the_documents_service():
    three_months = coupon(value="20", periods=3)
    selected = [(SEATS, 2), (API_CALLS, 0)]
    first = price_period(variant(setup_fee="9.90"), selected, three_months, DOMESTIC, period=1)
    order = price_order(variant(setup_fee="9.90"), selected, three_months, DOMESTIC)
    assert first.lines == order.lines and first.gross_total == order.gross_total
    third = price_period(variant(setup_fee="9.90"), selected, three_months, DOMESTIC, period=3)
    fourth = price_period(variant(setup_fee="9.90"), selected, three_months, DOMESTIC, period=4)
    assert third.setup_net == D("0.00") and third.discount == order.discount
    assert third.gross_total == order.discounted_recurring_gross
    assert fourth.discount == D("0.00") and fourth.gross_total == order.recurring_gross
    forever = price_period(variant(), [], coupon(periods=None), DOMESTIC, period=120)
    assert forever.discount == D("2.99")


@pytest.mark.parametrize(
    "selected",
    [[(SEATS, 0)], [(SEATS, 11)], [(SUPPORT, 2)], [(API_CALLS, 5)], [(SEATS, 1), (SEATS, 2)],
     [(SEATS, "2")]],
)
def test_inconsistent_selection_is_refused(selected):
    with pytest.raises(ValueError):
        price_order(variant(), selected, None, DOMESTIC)


@pytest.mark.parametrize("period", [0, -1, 1.0])
def test_period_is_one_based(period):
    with pytest.raises(ValueError):
        price_period(variant(), [], None, DOMESTIC, period=period)


def test_as_dict_is_json_with_decimal_strings():
    selected = select_components(COMPONENTS, {"seats": 3, "support": 1})
    price = price_order(variant(setup_fee="9.90", trial_days=7), selected, coupon(), DOMESTIC)
    data = json.loads(json.dumps(price.as_dict()))
    assert data["gross_total"] == str(price.gross_total)
    assert data["tax"] == {"rate": "19", "category": "S", "reverse_charge": False,
                           "amount": str(price.tax.amount)}
    assert data["lines"][0] == {"kind": "setup", "description": "setup_fee", "quantity": 1,
                                "unit_price": "9.90", "net": "9.90", "component_id": None}
    assert data["metered"] == [{"component_id": "api", "name": "API calls",
                                "unit_price": "0.0015"}]
    assert data["first_invoice_at"] == "trial_end" and data["discount_periods"] is None
    assert sum(D(line["net"]) for line in data["lines"]) == D(data["net_total"])


def test_as_dict_never_uses_exponent_notation():
    odd = ComponentPrice("odd", "Odd", "quantity", D("1E+1"))
    data = price_order(variant(), [(odd, 2)], None, DOMESTIC).as_dict()
    assert data["lines"][1]["unit_price"] == "10"
    assert all("E" not in line["net"] for line in data["lines"])


def test_order_price_is_immutable():
    price = price_order(variant(), [], None, DOMESTIC)
    assert isinstance(price, OrderPrice)
    with pytest.raises(AttributeError):
        price.gross_total = D("0")


# --- properties: money never loses or gains a cent --------------------------------------------

CURRENCIES = ["EUR", "USD", "CHF", "JPY", "KWD"]
RATES = sorted(set(EU_VAT_RATES.values()) | {D("0")})


@st.composite
def orders(draw):
    currency = draw(st.sampled_from(CURRENCIES))

    def amount(max_minor=10_000_000):
        return from_minor(draw(st.integers(0, max_minor)), currency)

    price = VariantPrice(currency, amount(), amount(), draw(st.sampled_from([1, 3, 12])),
                         draw(st.sampled_from([0, 0, 14, 30])))
    selected = []
    for index in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["quantity", "onoff", "metered"]))
        # unit prices may be finer than the minor unit
        unit = Decimal(draw(st.integers(0, 10_000_000))).scaleb(-draw(st.integers(0, 4)))
        component = ComponentPrice(f"c{index}", f"C{index}", kind, unit)
        quantity = {"quantity": st.integers(0, 10_000), "onoff": st.integers(0, 1),
                    "metered": st.just(0)}[kind]
        selected.append((component, draw(quantity)))
    discount = draw(st.sampled_from([None, "percent", "fixed"]))
    if discount == "percent":
        value = Decimal(draw(st.integers(1, 10_000))).scaleb(-2)  # 0.01 % … 100 %
        deal = Coupon("P", "percent", value, periods=draw(st.one_of(st.none(), st.integers(1, 12))))
    elif discount == "fixed":
        minor = draw(st.integers(1, 20_000_000))
        deal = Coupon("F", "fixed", from_minor(minor, currency), currency=currency)
    else:
        deal = None
    rate = draw(st.sampled_from(RATES))
    treatment = TaxTreatment(rate, "S" if rate else "O", False, "DE")
    return price, selected, deal, treatment


def is_minor_exact(amount, currency):
    try:
        to_minor(amount, currency)
    except MoneyError:
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders())
def test_totals_never_lose_or_gain_a_cent(order):
    price = price_order(*order)
    currency = price.currency
    assert sum((line.net for line in price.lines), D(0)) == price.net_total
    assert price.setup_net + price.recurring_net - price.discount == price.net_total
    assert price.net_total + price.tax.amount == price.gross_total
    assert price.due_now + price.due_at_trial_end == price.gross_total
    assert D(0) in (price.due_now, price.due_at_trial_end)
    amounts = [price.setup_net, price.recurring_net, price.discount, price.net_total,
               price.tax.amount, price.gross_total, price.due_now, price.due_at_trial_end,
               price.recurring_gross, price.discounted_recurring_gross]
    amounts += [line.net for line in price.lines]
    assert all(is_minor_exact(amount, currency) for amount in amounts)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders())
def test_discount_never_exceeds_what_it_discounts_and_nothing_is_negative(order):
    variant_price, selected, deal, treatment = order
    price = price_order(variant_price, selected, deal, treatment)
    assert D(0) <= price.discount <= price.recurring_net
    assert price.net_total >= price.setup_net
    for line in price.lines:
        assert (line.net < 0) if line.kind == "discount" else (line.net >= 0)
    assert all(amount >= 0 for amount in (
        price.setup_net, price.recurring_net, price.net_total, price.tax.amount,
        price.gross_total, price.due_now, price.due_at_trial_end, price.recurring_gross,
        price.discounted_recurring_gross))
    assert price.discounted_recurring_gross <= price.recurring_gross
    if deal is None:
        assert price.discount == 0 and price.discount_periods == 0
    if treatment.rate == 0:
        assert price.gross_total == price.net_total


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders(), st.integers(1, 30))
def test_every_period_invoice_balances(order, period):
    invoice = price_period(*order, period=period)
    assert sum((line.net for line in invoice.lines), D(0)) == invoice.net_total
    assert invoice.net_total + invoice.tax.amount == invoice.gross_total
    assert (invoice.setup_net == 0) or period == 1
    assert D(0) <= invoice.discount <= invoice.recurring_net
    data = json.loads(json.dumps(invoice.as_dict()))
    assert D(data["gross_total"]) == invoice.gross_total
