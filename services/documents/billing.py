"""Billing rules: which lines an invoice, credit note or reminder carries. Plain values only.

- **Invoices** price a billing period with ``services.common.pricing.price_period`` from the
  inputs the contract was sold with (``ContractCreated``: terms, components, coupon, tax), so the
  first invoice equals the signup preview to the cent. Period ``k`` (1-based, counted from the
  billing start) carries the setup fee when ``k == 1`` and the coupon while ``k <= periods``.
  A period cut short (the contract ends mid-period) is charged pro rata by days with
  ``services.common.periods.prorate``; the setup fee never is.
- **Credit notes** refund, pro rata, the recurring lines (fee, components, discount) of an
  invoice for the days it no longer covers: after a cancellation's end date, or from a plan or
  quantity change's effective date (the new price is then invoiced for the same days).
- **Reminders** follow the merchant's dunning levels (days after the due date, fee per level),
  one level at a time.

VAT: every line carries the contract's rate and category (``S`` standard, ``AE`` reverse charge,
``O`` outside the scope); totals are computed by ``document.compute_totals`` (VAT per rate, on
the sum of the lines, rounded once).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from services.common import money
from services.common.periods import Period, period_at, prorate
from services.common.pricing import (
    ComponentPrice,
    Coupon,
    PeriodPrice,
    VariantPrice,
    price_period,
)
from services.common.tax import TaxTreatment

DEFAULT_NUMBER_FORMATS = {
    "invoice": "INV-{YYYY}-{seq:05}",
    "credit_note": "CN-{YYYY}-{seq:05}",
    "reminder": "REM-{YYYY}-{seq:05}",
}
DEFAULT_PAYMENT_TERMS_DAYS = 14
DEFAULT_DUNNING = (
    {"days_after_due": 7, "fee": "0.00"},
    {"days_after_due": 14, "fee": "5.00"},
    {"days_after_due": 28, "fee": "10.00"},
)
MAX_DUNNING_LEVELS = 3

TEXTS = {
    "setup_fee": {"en": "Setup fee", "de": "Einrichtungsgebühr", "fr": "Frais de mise en service"},
    "discount": {"en": "Discount {code}", "de": "Rabatt {code}", "fr": "Remise {code}"},
    "overdue": {"en": "Invoice {number} of {date}", "de": "Rechnung {number} vom {date}",
                "fr": "Facture {number} du {date}"},
}


class BillingError(ValueError):
    """A billing request that cannot be honoured as asked (e.g. a period off the schedule)."""


@dataclass(frozen=True)
class DraftLine:
    """One line before it becomes a ``document.Line``.

    ``full_net`` is the line's price for its whole billing period (what proration divides);
    ``net`` is what this document charges or credits for it.
    """

    kind: str  # setup | recurring | component | discount
    description: str
    quantity: Decimal
    unit_price: Decimal
    net: Decimal
    full_net: Decimal
    tax_rate: Decimal
    tax_category: str
    component_id: str | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None  # exclusive

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "description": self.description,
            "quantity": str(self.quantity), "unit_price": str(self.unit_price),
            "net": str(self.net), "full_net": str(self.full_net),
            "tax_rate": str(self.tax_rate), "tax_category": self.tax_category,
            "component_id": self.component_id,
            "period_start": _iso(self.period_start), "period_end": _iso(self.period_end),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DraftLine:
        return cls(
            kind=data["kind"], description=data["description"],
            quantity=Decimal(data["quantity"]), unit_price=Decimal(data["unit_price"]),
            net=Decimal(data["net"]), full_net=Decimal(data["full_net"]),
            tax_rate=Decimal(data["tax_rate"]), tax_category=data["tax_category"],
            component_id=data.get("component_id"),
            period_start=_date(data.get("period_start")), period_end=_date(data.get("period_end")),
        )


@dataclass(frozen=True)
class Draft:
    """What an invoice or credit note for one contract period says, before numbering."""

    lines: tuple[DraftLine, ...]
    period: Period  # the whole billing period
    start: dt.date  # the days this document covers: [start, end)
    end: dt.date
    period_number: int


# -- the contract as sold ------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractTerms:
    """The pricing inputs of a contract, from its ``ContractCreated`` payload (loaded values)."""

    currency: str
    language: str
    plan_name: str
    billing_start: dt.date
    months: int
    variant: VariantPrice
    selected: tuple[tuple[ComponentPrice, int], ...]
    coupon: Coupon | None
    tax: TaxTreatment

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ContractTerms:
        currency = money.check_currency(payload["currency"])
        terms = payload["terms"]
        variant = VariantPrice(
            currency=currency, recurring_fee=terms["recurring_fee"],
            setup_fee=terms["setup_fee"],
            billing_period_months=terms["billing_period_months"],
            trial_days=terms["trial_days"])
        selected = tuple(
            (ComponentPrice(id=c["component_id"], name=c["name"], kind=c["kind"],
                            unit_price=c["unit_price"]),
             0 if c["kind"] == "metered" else c["quantity"])
            for c in payload.get("components") or [])
        coupon_data = payload.get("coupon")
        coupon = None
        if coupon_data:
            coupon = Coupon(code=coupon_data["code"], kind=coupon_data["kind"],
                            value=coupon_data["value"], periods=coupon_data.get("periods"),
                            currency=currency if coupon_data["kind"] == "fixed" else None)
        tax = payload["tax"]
        treatment = TaxTreatment(rate=Decimal(tax["rate"]), category=tax["category"],
                                 reverse_charge=bool(tax["reverse_charge"]),
                                 country=tax.get("country") or "")
        language = payload.get("language") if payload.get("language") in ("en", "de", "fr") \
            else "en"
        return cls(currency=currency, language=language, plan_name=payload["plan_name"],
                   billing_start=payload["billing_start"],
                   months=variant.billing_period_months, variant=variant, selected=selected,
                   coupon=coupon, tax=treatment)

    def price(self, period_number: int) -> PeriodPrice:
        return price_period(self.variant, self.selected, self.coupon, self.tax, period_number)

    @property
    def tax_category(self) -> str:
        if self.tax.reverse_charge:
            return "AE"
        if self.tax.category == "O":
            return "O"
        return "S" if self.tax.rate > 0 else "Z"


def period_number(anchor: dt.date, months: int, start: dt.date) -> tuple[int, Period]:
    """``(k, period)``: ``start`` must begin billing period ``k`` (1-based) counted from
    ``anchor``; raises ``BillingError`` for a date off the schedule or before the anchor."""
    if start < anchor:
        raise BillingError(f"period start {start} is before the billing start {anchor}")
    period = period_at(anchor, months, start)
    if period.start != start:
        raise BillingError(f"{start} is not a period boundary (periods of {months} months "
                           f"from {anchor})")
    # Boundary k lies in the month anchor + k·months (only its day is clamped).
    offset = (start.year - anchor.year) * 12 + (start.month - anchor.month)
    return offset // months + 1, period


def invoice_draft(terms: ContractTerms, start: dt.date, end: dt.date | None = None) -> Draft:
    """The invoice of the period beginning ``start``, cut to ``end`` if it comes earlier."""
    number, period = period_number(terms.billing_start, terms.months, start)
    end = period.end if end is None or end > period.end else end
    if end <= start:
        raise BillingError(f"empty billing period {start} .. {end}")
    price = terms.price(number)
    lines = [DraftLine(
        kind=line.kind, description=_line_text(line.kind, line.description, terms),
        quantity=Decimal(line.quantity), unit_price=line.unit_price, net=line.net,
        full_net=line.net, tax_rate=terms.tax.rate, tax_category=terms.tax_category,
        component_id=line.component_id, period_start=start, period_end=end)
        for line in price.lines]
    if end < period.end:
        shares = prorated(lines, period, start, end, terms.currency)
        lines = [line if line.kind == "setup" else
                 replace(line, quantity=Decimal(1), unit_price=share, net=share)
                 for line, share in zip(lines, shares, strict=True)]
    return Draft(lines=tuple(lines), period=period, start=start, end=end, period_number=number)


def prorated(lines, period: Period, start: dt.date, end: dt.date, currency: str
             ) -> list[Decimal]:
    """Each recurring line's share for ``[start, end)`` (setup lines: 0).

    Charges are prorated line by line; a discount takes what is left of the prorated total,
    so the share of a period never goes below zero (a 100 % coupon stays 100 % of every
    piece) and the pieces of any split still add up exactly to the whole, line by line.
    """
    recurring = [line for line in lines if line.kind != "setup"]
    total = prorate(sum((line.full_net for line in recurring), Decimal(0)), period, start, end,
                    currency)
    shares = {id(line): prorate(line.full_net, period, start, end, currency)
              for line in recurring if line.kind != "discount"}
    discounts = [line for line in recurring if line.kind == "discount"]
    if discounts:  # one coupon per contract: it takes the residual
        shares[id(discounts[0])] = total - sum(shares.values(), Decimal(0))
        for extra in discounts[1:]:
            shares[id(extra)] = Decimal(0)
    return [shares.get(id(line), Decimal(0)) for line in lines]


def _line_text(kind: str, description: str, terms: ContractTerms) -> str:
    if kind == "setup":
        return TEXTS["setup_fee"][terms.language]
    if kind == "recurring":
        return terms.plan_name
    if kind == "discount":
        return TEXTS["discount"][terms.language].format(code=description)
    return description


# -- credit notes ------------------------------------------------------------------------------


def credit_lines(lines: tuple[DraftLine, ...] | list[DraftLine], period: Period,
                 billed_end: dt.date, credit_from: dt.date, currency: str,
                 already_credited: Decimal = Decimal(0)) -> list[DraftLine]:
    """What to refund of an invoice's recurring lines for ``[credit_from, billed_end)``.

    Each line is prorated from its whole-period price, exactly as a cut period was charged, so
    an invoice cut at ``x`` plus a credit from ``x`` never differ from the whole by a cent. The
    setup fee is never refunded. ``already_credited`` (net) is subtracted from the refund so two
    corrections of one invoice cannot refund more than it charged; nothing comes back → ``[]``.
    """
    start = max(credit_from, period.start)
    if start >= billed_end:
        return []
    out = [replace(line, quantity=Decimal(1), unit_price=amount, net=amount,
                   period_start=start, period_end=billed_end)
           for line, amount in zip(lines, prorated(lines, period, start, billed_end, currency),
                                   strict=True)
           if line.kind != "setup" and amount != 0]
    charged = sum((line.net for line in lines if line.kind != "setup"), Decimal(0))
    total = sum((line.net for line in out), Decimal(0))
    room = charged - already_credited
    if room <= 0 or total <= 0:
        return []
    if total > room:  # refund at most what is left: one line takes the difference
        out = [*out[:-1], replace(out[-1], unit_price=out[-1].net - (total - room),
                                  net=out[-1].net - (total - room))]
    return [line for line in out if line.net != 0]


def change_lines(invoiced: tuple[DraftLine, ...] | list[DraftLine], period: Period,
                 new: ContractTerms, effective_on: dt.date, billed_end: dt.date,
                 already_credited: Decimal = Decimal(0)
                 ) -> tuple[list[DraftLine], list[DraftLine]]:
    """A plan or quantity change on ``effective_on`` inside ``period``, which an invoice with
    lines ``invoiced`` billed up to ``billed_end``: ``(credit, charge)`` — what was invoiced
    refunded and the new recurring price charged, both pro rata for
    ``[effective_on, billed_end)``."""
    credit = credit_lines(invoiced, period, billed_end, effective_on, new.currency,
                          already_credited)
    new_draft = invoice_draft(new, period.start)
    charge = credit_lines([line for line in new_draft.lines if line.kind != "setup"], period,
                          billed_end, effective_on, new.currency)
    return credit, charge


def lines_net(lines) -> Decimal:
    return sum((line.net for line in lines), Decimal(0))


# -- reminders ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DunningLevel:
    level: int
    days_after_due: int
    fee: Decimal


def dunning_levels(config: list[dict] | tuple[dict, ...], currency: str) -> list[DunningLevel]:
    """The merchant's levels, validated: 1..3 levels, strictly later each, fees exact."""
    if not 1 <= len(config) <= MAX_DUNNING_LEVELS:
        raise ValueError(f"give 1 to {MAX_DUNNING_LEVELS} dunning levels")
    levels = []
    previous = -1
    for index, entry in enumerate(config, start=1):
        days = entry.get("days_after_due")
        if isinstance(days, bool) or not isinstance(days, int) or days < 0 or days > 365:
            raise ValueError(f"level {index}: days_after_due must be a whole number 0..365")
        if days <= previous:
            raise ValueError(f"level {index}: days_after_due must be later than level "
                             f"{index - 1}'s")
        fee = money.to_decimal(entry.get("fee", "0"))
        if fee < 0 or money.quantize(fee, currency) != fee:
            raise ValueError(f"level {index}: the fee must be >= 0 and exact in {currency}")
        levels.append(DunningLevel(index, days, fee))
        previous = days
    return levels


def next_reminder(due_date: dt.date, today: dt.date, current_level: int,
                  levels: list[DunningLevel]) -> DunningLevel | None:
    """The reminder an open invoice should get today, or ``None``.

    One level at a time: after an outage the next level comes first, the one after it on a
    later run (a customer never gets level 1 and 3 on the same day).
    """
    if current_level >= len(levels):
        return None
    level = levels[current_level]
    if (today - due_date).days >= level.days_after_due:
        return level
    return None


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None
