"""Billing rules: invoices priced like the signup preview, proration that never loses a cent,
credit notes that never refund more than was charged, dunning one level at a time."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common import events
from services.common.periods import Period, add_months, prorate
from services.common.pricing import ComponentPrice, Coupon, VariantPrice, price_order
from services.common.tax import TaxTreatment, tax_treatment
from services.documents import billing
from services.documents.billing import BillingError, ContractTerms
from services.documents.document import compute_totals
from services.documents.issuing import _line
from tests.unit.documents import factories as f

D = Decimal


def terms_of(**kwargs) -> ContractTerms:
    payload = f.contract_payload(**kwargs)
    return ContractTerms.from_payload(events.ContractCreated().load(
        events.ContractCreated().dump(payload)))


def totals(lines, reverse_charge=False):
    return compute_totals([_line(line) for line in lines], "EUR", reverse_charge=reverse_charge)


# -- the first invoice is the signup preview -------------------------------------------------


def test_first_invoice_has_setup_fee_period_components_and_discount():
    terms = terms_of(coupon={"code": "WELCOME", "kind": "percent", "value": D("10"),
                             "periods": 2})
    draft = billing.invoice_draft(terms, dt.date(2027, 1, 15))
    assert [(line.kind, line.description, line.net) for line in draft.lines] == [
        ("setup", "Setup fee", D("9.90")), ("recurring", "Pro monthly", D("29.00")),
        ("component", "Extra seats", D("13.50")), ("discount", "Discount WELCOME", D("-4.25"))]
    assert (draft.start, draft.end, draft.period_number) == (
        dt.date(2027, 1, 15), dt.date(2027, 2, 15), 1)


@settings(max_examples=60, deadline=None)
@given(recurring=st.decimals("0", "500", places=2), setup=st.decimals("0", "100", places=2),
       quantity=st.integers(0, 20), unit=st.decimals("0", "30", places=3),
       coupon=st.one_of(st.none(), st.tuples(st.sampled_from(["percent", "fixed"]),
                                             st.decimals("1", "100", places=2))),
       country=st.sampled_from(["DE", "FR", "AT", "US"]), vat_id=st.booleans())
def test_first_invoice_equals_the_signup_preview_to_the_cent(recurring, setup, quantity, unit,
                                                             coupon, country, vat_id):
    treatment = tax_treatment("DE", country, "FR40303265045" if vat_id and country == "FR"
                              else None)
    coupon_data = None if coupon is None else {"code": "C", "kind": coupon[0],
                                               "value": coupon[1], "periods": None}
    terms = terms_of(
        recurring_fee=recurring, setup_fee=setup, coupon=coupon_data,
        components=[{"component_id": "c1", "name": "Seats", "kind": "quantity",
                     "quantity": quantity, "unit_price": unit}],
        tax={"rate": treatment.rate, "category": treatment.category,
             "reverse_charge": treatment.reverse_charge, "country": treatment.country})
    preview = price_order(
        VariantPrice("EUR", recurring, setup),
        [(ComponentPrice("c1", "Seats", "quantity", unit), quantity)],
        None if coupon is None else Coupon("C", coupon[0], coupon[1], currency="EUR"),
        treatment)

    invoice = totals(billing.invoice_draft(terms, dt.date(2027, 1, 15)).lines,
                     treatment.reverse_charge)
    assert (invoice.net_total, invoice.tax_total, invoice.gross_total) == (
        preview.net_total, preview.tax.amount, preview.gross_total)


def test_later_periods_drop_the_setup_fee_and_the_expired_coupon():
    terms = terms_of(coupon={"code": "TWO", "kind": "fixed", "value": D("5"), "periods": 2})
    second = billing.invoice_draft(terms, dt.date(2027, 2, 15))
    third = billing.invoice_draft(terms, dt.date(2027, 3, 15))
    assert [line.kind for line in second.lines] == ["recurring", "component", "discount"]
    assert [line.kind for line in third.lines] == ["recurring", "component"]
    assert (second.period_number, third.period_number) == (2, 3)


def test_reverse_charge_and_outside_scope_lines_carry_their_category():
    reverse = terms_of(tax={"rate": D("0"), "category": "AE", "reverse_charge": True,
                            "country": "FR"})
    outside = terms_of(tax={"rate": D("0"), "category": "O", "reverse_charge": False,
                            "country": "US"})
    assert {line.tax_category for line in billing.invoice_draft(
        reverse, dt.date(2027, 1, 15)).lines} == {"AE"}
    assert {line.tax_category for line in billing.invoice_draft(
        outside, dt.date(2027, 1, 15)).lines} == {"O"}


# -- periods ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("anchor", "months", "start", "number"), [
    (dt.date(2027, 1, 31), 1, dt.date(2027, 2, 28), 2),
    (dt.date(2027, 1, 31), 1, dt.date(2027, 3, 31), 3),
    (dt.date(2028, 1, 31), 1, dt.date(2028, 2, 29), 2),  # leap year
    (dt.date(2027, 1, 15), 3, dt.date(2027, 10, 15), 4),
    (dt.date(2027, 1, 15), 12, dt.date(2029, 1, 15), 3),
])
def test_a_period_start_maps_to_its_number(anchor, months, start, number):
    assert billing.period_number(anchor, months, start)[0] == number


@given(anchor=st.dates(dt.date(2020, 1, 1), dt.date(2035, 12, 31)), months=st.sampled_from(
    [1, 2, 3, 6, 12]), k=st.integers(0, 60))
def test_every_boundary_is_found_again(anchor, months, k):
    start = add_months(anchor, k * months, anchor.day)
    number, period = billing.period_number(anchor, months, start)
    assert number == k + 1 and period.start == start
    assert period.end == add_months(anchor, (k + 1) * months, anchor.day)


@pytest.mark.parametrize("start", [dt.date(2027, 1, 14), dt.date(2027, 1, 20)])
def test_dates_off_the_schedule_are_refused(start):
    with pytest.raises(BillingError):
        billing.period_number(dt.date(2027, 1, 15), 1, start)


def test_a_period_cut_short_charges_recurring_lines_by_days_but_the_setup_fee_whole():
    draft = billing.invoice_draft(terms_of(), dt.date(2027, 1, 15), dt.date(2027, 2, 1))
    period = Period(dt.date(2027, 1, 15), dt.date(2027, 2, 15))
    assert [(line.kind, line.net) for line in draft.lines] == [
        ("setup", D("9.90")),
        ("recurring", prorate(D("29.00"), period, period.start, dt.date(2027, 2, 1), "EUR")),
        ("component", prorate(D("13.50"), period, period.start, dt.date(2027, 2, 1), "EUR"))]
    assert draft.lines[1].net == D("15.90")  # 17 of 31 days


# -- credit notes ----------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(cut=st.integers(1, 30), recurring=st.decimals("0.01", "999", places=2),
       seats=st.integers(0, 9), percent=st.one_of(st.none(), st.integers(1, 100)))
def test_an_invoice_cut_at_a_day_plus_the_credit_from_that_day_is_the_whole(cut, recurring,
                                                                            seats, percent):
    coupon = None if percent is None else {"code": "P", "kind": "percent",
                                           "value": D(percent), "periods": None}
    terms = terms_of(recurring_fee=recurring, coupon=coupon, components=[
        {"component_id": "s", "name": "Seats", "kind": "quantity", "quantity": seats,
         "unit_price": D("3.33")}])
    start = dt.date(2027, 1, 15)
    whole = billing.invoice_draft(terms, start)
    day = start + dt.timedelta(days=cut)
    head = billing.invoice_draft(terms, start, day)
    credit = billing.credit_lines(whole.lines, whole.period, whole.end, day, "EUR")
    recurring_whole = billing.lines_net(x for x in whole.lines if x.kind != "setup")
    recurring_head = billing.lines_net(x for x in head.lines if x.kind != "setup")
    assert recurring_head + billing.lines_net(credit) == recurring_whole
    assert billing.lines_net(credit) <= recurring_whole
    assert recurring_head >= 0 and billing.lines_net(credit) >= 0  # a 100 % coupon included


def test_credits_never_refund_more_than_the_invoice_charged():
    whole = billing.invoice_draft(terms_of(), dt.date(2027, 1, 15))
    first = billing.credit_lines(whole.lines, whole.period, whole.end, dt.date(2027, 2, 1), "EUR")
    already = billing.lines_net(first)
    # a second, larger correction (from an earlier day) only refunds what is left
    second = billing.credit_lines(whole.lines, whole.period, whole.end, dt.date(2027, 1, 15),
                                  "EUR", already_credited=already)
    assert already + billing.lines_net(second) == D("42.50")
    assert billing.credit_lines(whole.lines, whole.period, whole.end, dt.date(2027, 1, 15),
                                "EUR", already_credited=D("42.50")) == []
    assert billing.credit_lines(whole.lines, whole.period, whole.end, dt.date(2027, 2, 15),
                                "EUR") == []


def test_a_downgrade_credits_the_old_price_and_charges_the_new_one_for_the_same_days():
    old = terms_of()
    new = terms_of(components=[{"component_id": "cmp_seats", "name": "Extra seats",
                                "kind": "quantity", "quantity": 1, "unit_price": D("4.50")}])
    invoiced = billing.invoice_draft(old, dt.date(2027, 1, 15))
    credit, charge = billing.change_lines(invoiced.lines, invoiced.period, new,
                                          dt.date(2027, 1, 31), dt.date(2027, 2, 15))
    period = Period(dt.date(2027, 1, 15), dt.date(2027, 2, 15))
    part = dt.date(2027, 1, 31)
    assert billing.lines_net(credit) == prorate(D("29.00"), period, part, period.end, "EUR") + \
        prorate(D("13.50"), period, part, period.end, "EUR")
    assert billing.lines_net(charge) == prorate(D("29.00"), period, part, period.end, "EUR") + \
        prorate(D("4.50"), period, part, period.end, "EUR")
    assert billing.lines_net(charge) < billing.lines_net(credit)


# -- dunning ---------------------------------------------------------------------------------


def test_dunning_goes_one_level_at_a_time():
    levels = billing.dunning_levels([dict(d) for d in billing.DEFAULT_DUNNING], "EUR")
    due = dt.date(2027, 1, 29)
    assert billing.next_reminder(due, dt.date(2027, 2, 4), 0, levels) is None
    assert billing.next_reminder(due, dt.date(2027, 2, 5), 0, levels).level == 1
    late = dt.date(2027, 6, 1)  # long after every level's day
    assert billing.next_reminder(due, late, 0, levels).level == 1
    assert billing.next_reminder(due, late, 1, levels).level == 2
    assert billing.next_reminder(due, late, 2, levels).fee == D("10.00")
    assert billing.next_reminder(due, late, 3, levels) is None


@pytest.mark.parametrize(("config", "message"), [
    ([], "1 to 3"),
    ([{"days_after_due": 7, "fee": "0"}] * 4, "1 to 3"),
    ([{"days_after_due": 7, "fee": "0"}, {"days_after_due": 7, "fee": "1"}], "later"),
    ([{"days_after_due": -1, "fee": "0"}], "0..365"),
    ([{"days_after_due": 7, "fee": "0.001"}], "exact"),
    ([{"days_after_due": 7, "fee": "-1"}], ">= 0"),
])
def test_bad_dunning_levels_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        billing.dunning_levels(config, "EUR")


def test_contract_terms_read_the_tax_category_whatever_the_spelling():
    standard = terms_of(tax={"rate": D("19"), "category": "standard", "reverse_charge": False,
                             "country": "DE"})
    assert standard.tax_category == "S"
    assert standard.tax == TaxTreatment(D("19"), "standard", False, "DE")


def test_contract_terms_are_cached_for_recent_contracts_only(monkeypatch):
    from services.common import events
    from services.documents import issuing
    from services.documents.models import Contract
    from tests.unit.documents import factories

    monkeypatch.setattr(issuing, "TERMS_CACHE_SIZE", 3)
    monkeypatch.setattr(issuing, "_terms_cache", type(issuing._terms_cache)())
    contracts = []
    for n in range(5):
        payload = factories.contract_payload(f"ct_{n}")
        contracts.append(Contract(id=f"ct_{n}", data=events.ContractCreated().dump(payload)))
    first = issuing.contract_terms(contracts[0])
    assert issuing.contract_terms(contracts[0]) is first  # parsed once while it is recent
    for contract in contracts[1:]:
        issuing.contract_terms(contract)
    assert list(issuing._terms_cache) == ["ct_2", "ct_3", "ct_4"]  # bounded, oldest out
    assert issuing.contract_terms(contracts[0]) is not first  # parsed again, same values
    assert issuing.contract_terms(contracts[0]) == first
