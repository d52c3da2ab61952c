"""What a rendered document says: plain frozen values, no nameko, no database.

A ``Document`` is everything the renderers need to print an invoice, a credit note or a payment
reminder and to describe it as an EN 16931 e-invoice. It cannot hold inconsistent totals: its
tax breakdown and totals must equal what ``compute_totals`` derives from its lines, so build one
with ``Document.build(...)`` (which computes them) rather than by hand.

Amounts are ``Decimal`` in the document's currency and exact in its minor unit (cents); rates are
percentages (``Decimal('19')``). Credit notes carry positive amounts (EN 16931 type 381): the
kind says which way the money goes. A reminder lists the overdue items as lines in category ``O``
(their amounts already include the VAT charged on the original invoices); its fee is separate
and shows up in ``amount_due``.

VAT categories (UNCL 5305, as in EN 16931 and ``services.common.tax``):

=====  =======================================  ======
code   meaning                                  rate
=====  =======================================  ======
``S``  standard rate                            > 0
``Z``  zero-rated                               0
``AE`` reverse charge (the buyer accounts)      0
``O``  outside the scope of VAT                 0
=====  =======================================  ======

>>> from datetime import date
>>> seller = Party(name="Acme GmbH", street="Hauptstr.", house_number="1", postal_code="10115",
...               city="Berlin", country="DE", vat_id="DE136695976")
>>> buyer = Party(name="Jane Doe", street="Rue de Rivoli", house_number="5",
...              postal_code="75001", city="Paris", country="FR")
>>> doc = Document.build(kind="invoice", number="INV-2026-00001", issue_date=date(2026, 11, 1),
...                      currency="EUR", seller=seller, buyer=buyer,
...                      lines=[Line.of("Pro plan", 1, "49.90", 20, "EUR")])
>>> doc.tax_breakdown
(TaxBreakdown(rate=Decimal('20'), base=Decimal('49.90'), amount=Decimal('9.98'), category='S'),)
>>> doc.gross_total
Decimal('59.88')
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from services.common.money import check_currency, quantize, to_decimal
from services.common.tax import check_country

DocumentKind = Literal["invoice", "credit_note", "reminder"]
Language = Literal["en", "de", "fr"]
TaxCategory = Literal["S", "Z", "AE", "O"]

KINDS: tuple[str, ...] = ("invoice", "credit_note", "reminder")
# Babel locale per document language (dates, money, country names)
LOCALES = {"en": "en_GB", "de": "de_DE", "fr": "fr_FR"}
LANGUAGES: tuple[str, ...] = ("en", "de", "fr")
TAX_CATEGORIES: tuple[str, ...] = ("S", "Z", "AE", "O")

_HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_ZERO = Decimal(0)


class DocumentError(ValueError):
    """A document that must not be rendered: inconsistent, incomplete or contradictory."""


def _decimal(value: Any, what: str) -> Decimal:
    """Strings, ints and Decimals are accepted; floats are refused (they are not exact)."""
    try:
        return to_decimal(value)
    except ValueError as exc:
        raise DocumentError(f"{what}: {exc}") from exc


def _currency(code: str) -> str:
    try:
        return check_currency(code)
    except ValueError as exc:
        raise DocumentError(str(exc)) from exc


def _set(obj: object, name: str, value: Any) -> None:
    # Normalising a field of a frozen dataclass in __post_init__.
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class Party:
    """A seller or buyer as printed on the document. ``country`` is ISO 3166 alpha-2."""

    name: str
    country: str
    company: str | None = None
    street: str = ""
    house_number: str = ""
    postal_code: str = ""
    city: str = ""
    vat_id: str | None = None
    email: str | None = None

    def __post_init__(self) -> None:
        if not (self.name or "").strip() and not (self.company or "").strip():
            raise DocumentError("a party needs a name or a company")
        try:
            _set(self, "country", check_country(self.country))
        except ValueError as exc:
            raise DocumentError(str(exc)) from exc
        for name in ("company", "vat_id", "email"):
            value = getattr(self, name)
            _set(self, name, (value.strip() or None) if isinstance(value, str) else None)

    @property
    def display_name(self) -> str:
        """The legal name: the company if there is one, else the person."""
        return self.company or self.name


@dataclass(frozen=True)
class Line:
    """One invoiced item. ``net_amount`` is exact in the currency's minor unit.

    ``tax_category`` is derived when omitted: ``AE`` on reverse-charge documents, else ``S`` for
    a positive rate and ``Z`` for 0 %. Use ``Line.of`` to have ``net_amount`` computed.
    """

    description: str
    quantity: Decimal
    unit_price: Decimal
    net_amount: Decimal
    tax_rate: Decimal
    period_start: date | None = None
    period_end: date | None = None
    tax_category: TaxCategory | None = None

    def __post_init__(self) -> None:
        if not (self.description or "").strip():
            raise DocumentError("a line needs a description")
        for name in ("quantity", "unit_price", "net_amount", "tax_rate"):
            _set(self, name, _decimal(getattr(self, name), f"line {name}"))
        if self.tax_rate < 0 or self.tax_rate >= 100:
            raise DocumentError(f"tax rate must be a percentage in [0, 100), got {self.tax_rate}")
        if self.tax_category is not None and self.tax_category not in TAX_CATEGORIES:
            raise DocumentError(
                f"unknown tax category {self.tax_category!r}; use one of {TAX_CATEGORIES}"
            )
        _check_period(self.period_start, self.period_end, "line period")

    @classmethod
    def of(
        cls,
        description: str,
        quantity: Any,
        unit_price: Any,
        tax_rate: Any,
        currency: str,
        **extra: Any,
    ) -> Line:
        """A line whose net amount is ``quantity × unit_price`` rounded half-up to the cent."""
        q = _decimal(quantity, "line quantity")
        p = _decimal(unit_price, "line unit_price")
        return cls(description, q, p, quantize(q * p, currency), tax_rate, **extra)


@dataclass(frozen=True)
class TaxBreakdown:
    """VAT of one (category, rate) group: ``amount = round(base × rate / 100)``."""

    rate: Decimal
    base: Decimal
    amount: Decimal
    category: TaxCategory = "S"


@dataclass(frozen=True)
class Totals:
    tax_breakdown: tuple[TaxBreakdown, ...]
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal


@dataclass(frozen=True)
class Reference:
    """Another document this one refers to: the invoice a credit note corrects, or an overdue
    invoice a reminder is about."""

    number: str
    issue_date: date | None = None

    def __post_init__(self) -> None:
        if not (self.number or "").strip():
            raise DocumentError("a reference needs a number")


@dataclass(frozen=True)
class Branding:
    """The merchant's look: an optional PNG/JPEG logo and two ``#RRGGBB`` colours."""

    logo: bytes | None = None
    primary_color: str = "#1F2937"
    accent_color: str = "#2563EB"

    def __post_init__(self) -> None:
        for name in ("primary_color", "accent_color"):
            if not _HEX_COLOUR.match(getattr(self, name) or ""):
                raise DocumentError(f"{name} must look like '#RRGGBB', got {getattr(self, name)!r}")
        if self.logo is not None and not (
            self.logo.startswith(b"\x89PNG\r\n\x1a\n") or self.logo.startswith(b"\xff\xd8\xff")
        ):
            raise DocumentError("the logo must be a PNG or JPEG image")

    def rgb(self, name: str) -> tuple[int, int, int]:
        """``branding.rgb('primary_color')`` → ``(31, 41, 55)``."""
        value = getattr(self, name)
        return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def _check_period(start: date | None, end: date | None, what: str) -> None:
    if (start is None) != (end is None):
        raise DocumentError(f"{what}: give both start and end, or neither")
    if start is not None and end is not None and end < start:
        raise DocumentError(f"{what}: end {end} is before start {start}")


def line_category(line: Line, reverse_charge: bool) -> str:
    """The VAT category a line is taxed in; raises ``DocumentError`` for a contradiction."""
    category = line.tax_category
    if category is None:
        category = "AE" if reverse_charge else ("S" if line.tax_rate > 0 else "Z")
    if category == "S" and line.tax_rate == 0:
        raise DocumentError(f"line {line.description!r}: category S needs a rate above 0 %")
    if category != "S" and line.tax_rate != 0:
        raise DocumentError(
            f"line {line.description!r}: category {category} is taxed at 0 %, "
            f"got {line.tax_rate} %"
        )
    if category == "AE" and not reverse_charge:
        raise DocumentError(
            f"line {line.description!r}: category AE needs a reverse-charge document"
        )
    return category


def compute_totals(lines: tuple[Line, ...] | list[Line], currency: str, *,
                   reverse_charge: bool = False) -> Totals:
    """Tax breakdown and totals of ``lines``, exact in the currency's minor unit.

    VAT is computed per (category, rate) group on the sum of the group's net amounts and rounded
    half-up once per group (EN 16931 BR-CO-17), not per line. Every figure is exact in minor units,
    so ``net_total + tax_total == gross_total`` and the bases add up to ``net_total``: no cent is
    lost or invented. Groups come out ordered by category, then rate descending.
    """
    code = _currency(currency)
    groups: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        if quantize(line.net_amount, code) != line.net_amount:
            raise DocumentError(
                f"line {line.description!r}: net amount {line.net_amount} has more digits "
                f"than {code} allows"
            )
        key = (line_category(line, reverse_charge), line.tax_rate)
        groups[key] = groups.get(key, _ZERO) + line.net_amount
    order = sorted(groups, key=lambda k: (TAX_CATEGORIES.index(k[0]), -k[1]))
    breakdown = tuple(
        TaxBreakdown(
            rate=rate,
            base=quantize(groups[(category, rate)], code),
            amount=quantize(groups[(category, rate)] * rate / 100, code),
            category=category,  # type: ignore[arg-type]
        )
        for category, rate in order
    )
    net = quantize(sum((b.base for b in breakdown), _ZERO), code)
    tax = quantize(sum((b.amount for b in breakdown), _ZERO), code)
    return Totals(tax_breakdown=breakdown, net_total=net, tax_total=tax, gross_total=net + tax)


@dataclass(frozen=True)
class Document:
    """An invoice, credit note or payment reminder ready to render.

    The constructor checks consistency (totals against lines, reverse charge against VAT IDs,
    reminder fields against the kind) and raises ``DocumentError``; ``Document.build`` fills in
    the totals for you.
    """

    kind: DocumentKind
    number: str
    issue_date: date
    currency: str
    seller: Party
    buyer: Party
    lines: tuple[Line, ...]
    tax_breakdown: tuple[TaxBreakdown, ...]
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal
    due_date: date | None = None
    service_period_start: date | None = None
    service_period_end: date | None = None
    reverse_charge: bool = False
    references: tuple[Reference, ...] = ()
    reminder_level: int | None = None
    reminder_fee: Decimal | None = None
    payment_terms: str | None = None
    notes: tuple[str, ...] = ()
    language: Language = "en"
    branding: Branding = field(default_factory=Branding)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DocumentError(f"unknown document kind {self.kind!r}; use one of {KINDS}")
        if self.language not in LANGUAGES:
            raise DocumentError(f"unsupported language {self.language!r}; use one of {LANGUAGES}")
        if not (self.number or "").strip():
            raise DocumentError("a document needs a number")
        code = _currency(self.currency)
        _set(self, "currency", code)
        _set(self, "lines", tuple(self.lines))
        _set(self, "tax_breakdown", tuple(self.tax_breakdown))
        _set(self, "references", tuple(self.references))
        _set(self, "notes", tuple(n for n in self.notes if n and n.strip()))
        if not self.lines:
            raise DocumentError("a document needs at least one line")
        if self.due_date is not None and self.due_date < self.issue_date:
            raise DocumentError(f"due date {self.due_date} is before issue date {self.issue_date}")
        _check_period(self.service_period_start, self.service_period_end, "service period")
        self._check_totals(code)
        if self.reverse_charge and not (self.seller.vat_id and self.buyer.vat_id):
            raise DocumentError("a reverse-charge document needs the seller's and buyer's VAT IDs")
        self._check_reminder(code)

    def _check_totals(self, code: str) -> None:
        for name in ("net_total", "tax_total", "gross_total"):
            _set(self, name, _decimal(getattr(self, name), name))
        expected = compute_totals(self.lines, code, reverse_charge=self.reverse_charge)
        given = Totals(self.tax_breakdown, self.net_total, self.tax_total, self.gross_total)
        if given != expected:
            raise DocumentError(
                f"totals do not match the lines: expected {expected}, got {given} "
                "(use Document.build to compute them)"
            )

    def _check_reminder(self, code: str) -> None:
        if self.kind != "reminder":
            if self.reminder_level is not None or self.reminder_fee is not None:
                raise DocumentError("reminder_level and reminder_fee are for reminders only")
            return
        if self.reminder_level is None:
            _set(self, "reminder_level", 1)
        if isinstance(self.reminder_level, bool) or not isinstance(self.reminder_level, int) \
                or self.reminder_level < 1:
            raise DocumentError(f"reminder_level must be an int >= 1, got {self.reminder_level!r}")
        if self.reminder_fee is not None:
            fee = _decimal(self.reminder_fee, "reminder_fee")
            if fee < 0 or quantize(fee, code) != fee:
                raise DocumentError(f"reminder_fee must be >= 0 and exact in {code}, got {fee}")
            _set(self, "reminder_fee", fee)

    @classmethod
    def build(cls, *, lines: tuple[Line, ...] | list[Line], currency: str,
              reverse_charge: bool = False, **fields_: Any) -> Document:
        """A document whose tax breakdown and totals are computed from ``lines``."""
        totals = compute_totals(lines, currency, reverse_charge=reverse_charge)
        return cls(
            lines=tuple(lines),
            currency=currency,
            reverse_charge=reverse_charge,
            tax_breakdown=totals.tax_breakdown,
            net_total=totals.net_total,
            tax_total=totals.tax_total,
            gross_total=totals.gross_total,
            **fields_,
        )

    @property
    def amount_due(self) -> Decimal:
        """What the buyer is asked to pay: the gross total plus any reminder fee."""
        return self.gross_total + (self.reminder_fee or _ZERO)

    @property
    def is_einvoice(self) -> bool:
        """Invoices and credit notes are e-invoices (EN 16931); reminders are not."""
        return self.kind in ("invoice", "credit_note")

    def line_category(self, line: Line) -> str:
        return line_category(line, self.reverse_charge)

