"""The document model: totals that cannot disagree with the lines, and refusals of nonsense."""
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.money import precision, quantize, to_minor
from services.documents.document import (
    Branding,
    Document,
    DocumentError,
    Line,
    Party,
    Reference,
    TaxBreakdown,
    compute_totals,
)

SELLER = Party(name="Acme GmbH", street="Hauptstraße", house_number="1", postal_code="10115",
               city="Berlin", country="DE", vat_id="DE136695976")
BUYER = Party(name="Jeanne Dupré", company="Dupré SARL", street="rue de Rivoli",
              house_number="5", postal_code="75001", city="Paris", country="FR",
              vat_id="FR40303265045")


def build(**overrides) -> Document:
    fields = {
        "kind": "invoice",
        "number": "INV-2026-00001",
        "issue_date": date(2026, 11, 1),
        "due_date": date(2026, 11, 15),
        "currency": "EUR",
        "seller": SELLER,
        "buyer": BUYER,
        "lines": [Line.of("Pro plan", 1, "49.90", 19, "EUR")],
    }
    fields.update(overrides)
    return Document.build(**fields)


# ---- totals


def test_vat_is_rounded_once_per_rate_not_per_line():
    # Three lines of 0.05 at 19 %: per line 0.0095 → 0.01 each (0.03); per group 0.15 → 0.03.
    # Ten lines of 0.01 at 7 %: per line 0.0007 → 0.00 each; per group 0.10 × 7 % → 0.01.
    lines = [Line.of(f"a{i}", 1, "0.05", 19, "EUR") for i in range(3)]
    lines += [Line.of(f"b{i}", 1, "0.01", 7, "EUR") for i in range(10)]
    totals = compute_totals(lines, "EUR")
    assert totals.tax_breakdown == (
        TaxBreakdown(rate=Decimal("19"), base=Decimal("0.15"), amount=Decimal("0.03"),
                     category="S"),
        TaxBreakdown(rate=Decimal("7"), base=Decimal("0.10"), amount=Decimal("0.01"),
                     category="S"),
    )
    assert (totals.net_total, totals.tax_total, totals.gross_total) == (
        Decimal("0.25"), Decimal("0.04"), Decimal("0.29"))


def test_rates_written_differently_fall_into_one_group():
    lines = [Line.of("a", 1, "10", "19", "EUR"), Line.of("b", 1, "10", "19.00", "EUR")]
    (entry,) = compute_totals(lines, "EUR").tax_breakdown
    assert (entry.base, entry.amount) == (Decimal("20.00"), Decimal("3.80"))


def test_half_cents_round_half_up():
    totals = compute_totals([Line.of("a", 1, "0.50", 19, "EUR")], "EUR")  # 0.095 VAT
    assert totals.tax_total == Decimal("0.10")


def test_line_of_rounds_the_net_amount_to_the_cent():
    line = Line.of("API calls", 1234, "0.0125", 19, "EUR")  # 15.425
    assert line.net_amount == Decimal("15.43")
    assert line.unit_price == Decimal("0.0125")  # the price keeps its digits


def test_zero_decimal_currency():
    doc = build(currency="JPY", lines=[Line.of("Plan", 3, "333", 10, "JPY")])
    assert (doc.net_total, doc.tax_total, doc.gross_total) == (
        Decimal("999"), Decimal("100"), Decimal("1099"))


def test_categories_are_derived_from_rate_and_reverse_charge():
    zero = build(lines=[Line.of("Book", 1, "10", 0, "EUR"), Line.of("Plan", 1, "10", 19, "EUR")])
    assert [b.category for b in zero.tax_breakdown] == ["S", "Z"]
    rc = build(reverse_charge=True, lines=[Line.of("Plan", 1, "100", 0, "EUR")])
    assert rc.tax_breakdown == (TaxBreakdown(Decimal("0"), Decimal("100.00"), Decimal("0.00"),
                                             "AE"),)
    assert rc.gross_total == Decimal("100.00")


def test_outside_scope_lines_keep_their_category():
    doc = build(lines=[Line.of("Plan", 1, "10", 0, "EUR", tax_category="O")])
    assert doc.tax_breakdown[0].category == "O"
    assert doc.tax_total == Decimal("0.00")


@pytest.mark.parametrize(
    ("line", "reverse_charge", "message"),
    [
        (Line.of("x", 1, "10", 19, "EUR"), True, "category AE is taxed at 0 %"),
        (Line.of("x", 1, "10", 0, "EUR", tax_category="S"), False, "needs a rate above 0"),
        (Line.of("x", 1, "10", 20, "EUR", tax_category="O"), False, "taxed at 0 %"),
        (Line.of("x", 1, "10", 0, "EUR", tax_category="AE"), False, "reverse-charge"),
    ],
)
def test_contradictory_categories_are_refused(line, reverse_charge, message):
    with pytest.raises(DocumentError, match=message):
        compute_totals([line], "EUR", reverse_charge=reverse_charge)


def test_hand_made_totals_that_disagree_with_the_lines_are_refused():
    doc = build()
    with pytest.raises(DocumentError, match="totals do not match"):
        replace(doc, gross_total=doc.gross_total + Decimal("0.01"))
    with pytest.raises(DocumentError, match="totals do not match"):
        replace(doc, lines=(*doc.lines, Line.of("extra", 1, "1", 19, "EUR")))
    with pytest.raises(DocumentError, match="totals do not match"):
        replace(doc, tax_breakdown=())


def test_hand_made_totals_that_agree_are_accepted():
    doc = build()
    same = Document(**{**doc.__dict__})
    assert same == doc


def test_net_amounts_finer_than_the_currency_are_refused():
    line = Line("Plan", Decimal(1), Decimal("9.999"), Decimal("9.999"), Decimal(19))
    with pytest.raises(DocumentError, match="more digits than EUR allows"):
        compute_totals([line], "EUR")


money = st.decimals(min_value=Decimal("-5000"), max_value=Decimal("50000"), places=4,
                    allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000"), places=3,
                         allow_nan=False, allow_infinity=False)
rates = st.sampled_from([Decimal(r) for r in ("0", "5.5", "7", "10", "19", "20", "21", "25.5")])


@st.composite
def line_lists(draw, currency):
    items = draw(st.lists(st.tuples(quantities, money, rates), min_size=1, max_size=25))
    return [Line.of(f"item {i}", q, p, r, currency) for i, (q, p, r) in enumerate(items)]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), currency=st.sampled_from(["EUR", "JPY", "KWD", "CHF"]))
def test_totals_never_lose_or_invent_a_cent(data, currency):
    lines = data.draw(line_lists(currency))
    totals = compute_totals(lines, currency)
    # every figure is exact in the currency's minor unit
    for amount in (totals.net_total, totals.tax_total, totals.gross_total,
                   *(b.base for b in totals.tax_breakdown),
                   *(b.amount for b in totals.tax_breakdown)):
        assert quantize(amount, currency) == amount
    # gross = net + tax, to the minor unit
    assert to_minor(totals.gross_total, currency) == (
        to_minor(totals.net_total, currency) + to_minor(totals.tax_total, currency))
    # the breakdown adds up to the totals and the bases to the lines
    assert sum(b.base for b in totals.tax_breakdown) == totals.net_total
    assert sum(b.amount for b in totals.tax_breakdown) == totals.tax_total
    assert totals.net_total == sum(line.net_amount for line in lines)
    # each group's VAT is its exact VAT rounded: off by at most half a minor unit
    half_unit = Decimal(1).scaleb(-precision(currency)) / 2
    for entry in totals.tax_breakdown:
        assert abs(entry.amount - entry.base * entry.rate / 100) <= half_unit
    # one group per rate, no empty or duplicate group
    assert len({b.rate for b in totals.tax_breakdown}) == len(totals.tax_breakdown)
    assert {b.rate for b in totals.tax_breakdown} == {line.tax_rate for line in lines}


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_built_document_always_passes_its_own_consistency_check(data):
    lines = data.draw(line_lists("EUR"))
    doc = build(lines=lines)
    assert doc.gross_total == doc.net_total + doc.tax_total
    assert replace(doc) == doc  # re-validates through __post_init__


# ---- validation


def test_floats_are_refused():
    with pytest.raises(DocumentError, match="not floats"):
        Line.of("Plan", 1, 9.99, 19, "EUR")
    with pytest.raises(DocumentError, match="not floats"):
        Line("Plan", Decimal(1), Decimal("9.99"), Decimal("9.99"), 19.0)


def test_strings_and_ints_become_decimals():
    line = Line("Plan", "2", "4.50", "9.00", 19)
    assert (line.quantity, line.unit_price, line.net_amount, line.tax_rate) == (
        Decimal(2), Decimal("4.50"), Decimal("9.00"), Decimal(19))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": "quote"}, "unknown document kind"),
        ({"language": "es"}, "unsupported language"),
        ({"number": " "}, "needs a number"),
        ({"currency": "EURO"}, "unknown currency"),
        ({"lines": []}, "at least one line"),
        ({"due_date": date(2026, 10, 31)}, "before issue date"),
        ({"service_period_start": date(2026, 11, 1)}, "both start and end"),
        ({"service_period_start": date(2026, 11, 30), "service_period_end": date(2026, 11, 1)},
         "before start"),
        ({"reminder_level": 1}, "for reminders only"),
        ({"reminder_fee": Decimal("5.00")}, "for reminders only"),
    ],
)
def test_invalid_documents_are_refused(overrides, message):
    with pytest.raises(DocumentError, match=message):
        build(**overrides)


def test_currency_codes_are_upper_cased():
    assert build(currency="eur").currency == "EUR"


def test_reverse_charge_needs_both_vat_ids():
    lines = [Line.of("Plan", 1, "100", 0, "EUR")]
    with pytest.raises(DocumentError, match="VAT IDs"):
        build(reverse_charge=True, lines=lines, buyer=replace(BUYER, vat_id=None))
    with pytest.raises(DocumentError, match="VAT IDs"):
        build(reverse_charge=True, lines=lines, seller=replace(SELLER, vat_id=" "))


def test_reminders_default_to_level_one_and_add_their_fee_to_the_amount_due():
    lines = [Line.of("Invoice INV-2026-00001", 1, "59.38", 0, "EUR", tax_category="O")]
    reminder = build(kind="reminder", lines=lines, reminder_fee=Decimal("5.00"))
    assert reminder.reminder_level == 1
    assert reminder.gross_total == Decimal("59.38")
    assert reminder.amount_due == Decimal("64.38")
    assert not reminder.is_einvoice
    with pytest.raises(DocumentError, match="reminder_level"):
        build(kind="reminder", lines=lines, reminder_level=0)
    with pytest.raises(DocumentError, match="reminder_fee"):
        build(kind="reminder", lines=lines, reminder_fee=Decimal("-1.00"))
    with pytest.raises(DocumentError, match="reminder_fee"):
        build(kind="reminder", lines=lines, reminder_fee=Decimal("1.001"))


def test_collections_become_tuples_so_documents_are_immutable():
    doc = build(references=[Reference("INV-1")], notes=["a", " ", ""])
    assert isinstance(doc.lines, tuple) and isinstance(doc.references, tuple)
    assert doc.notes == ("a",)
    with pytest.raises(AttributeError):
        doc.number = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "country": "DE"}, "name or a company"),
        ({"name": "A", "country": "XX"}, "unknown country"),
        ({"name": "A", "country": "Germany"}, "unknown country"),
    ],
)
def test_invalid_parties_are_refused(kwargs, message):
    with pytest.raises(DocumentError, match=message):
        Party(**kwargs)


def test_parties_normalise_country_and_blank_optionals():
    party = Party(name="A", company=" ", country="de", vat_id="", email=" a@b.example ")
    assert (party.country, party.company, party.vat_id, party.email) == (
        "DE", None, None, "a@b.example")
    assert Party(name="Jane", company="Acme", country="DE").display_name == "Acme"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"description": " "}, "needs a description"),
        ({"tax_rate": Decimal("-1")}, "percentage"),
        ({"tax_rate": Decimal("100")}, "percentage"),
        ({"tax_category": "E"}, "unknown tax category"),
        ({"period_start": date(2026, 2, 1), "period_end": date(2026, 1, 1)}, "before start"),
    ],
)
def test_invalid_lines_are_refused(kwargs, message):
    fields = {"description": "Plan", "quantity": 1, "unit_price": "1", "net_amount": "1",
              "tax_rate": 19, **kwargs}
    with pytest.raises(DocumentError, match=message):
        Line(**fields)


def test_branding_checks_colours_and_logo_format():
    assert Branding(primary_color="#0a0B0c").rgb("primary_color") == (10, 11, 12)
    with pytest.raises(DocumentError, match="#RRGGBB"):
        Branding(primary_color="red")
    with pytest.raises(DocumentError, match="#RRGGBB"):
        Branding(accent_color="#12345")
    with pytest.raises(DocumentError, match="PNG or JPEG"):
        Branding(logo=b"GIF89a...")
