"""The price of an order: its first invoice, what is due when, and what each later period costs.

Pure functions over plain values (catalog prices, chosen quantities, a coupon, a
:class:`~services.common.tax.TaxTreatment`); nothing here knows about signup, so the documents
service reproduces an order's invoices to the cent by calling :func:`price_period` (or
:func:`price_order`) with the inputs stored on the contract. It imports only
``services.common`` and lives there so signup and documents share it (``services.signup.pricing``
re-exports it).

The rules:

- Prices are **net**. Every line amount is rounded half-up to the currency's minor unit
  (``unit price × quantity``, then rounded); totals are sums of rounded lines, so the lines of
  an invoice always add up to its net total.
- Setup and recurring fees must be exact in minor units; component unit prices may be finer
  (``0.015`` per unit), their lines are rounded.
- The first invoice carries the setup fee and the **first billing period** (recurring fee plus
  ``quantity`` and ``onoff`` components). ``metered`` components are never charged up front;
  they are listed for information (:attr:`OrderPrice.metered`) and billed in arrears elsewhere.
- **Coupons discount recurring charges only**, never the setup fee: the recurring fee plus the
  quantity/onoff components of each discounted period. A percent coupon takes
  ``round(base × value / 100)``; a fixed coupon takes ``min(value, base)``. A discount therefore
  never exceeds what it discounts and no total becomes negative. It applies to the first
  ``coupon.periods`` billing periods (``None``: forever); the first invoice's period is period 1.
- VAT: one rate for the whole order. Tax is computed once on the invoice's net total and rounded
  half-up; ``gross = net + tax`` exactly.
- **Trials**: with ``trial_days > 0`` nothing is charged at signup (``due_now == 0``); the first
  invoice, issued at :func:`trial_end`, carries the setup fee plus the first (discounted) period.
  Without a trial the first invoice is issued at signup and due now. The trial is not a billing
  period and does not use up coupon periods.
- :func:`price_order` does not re-check a coupon's dates or redemptions (that is
  :func:`check_coupon`'s job at redemption time; a coupon redeemed at signup stays valid at trial
  end), but refuses a fixed coupon in another currency.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from services.common.money import check_currency, quantize, to_decimal
from services.common.tax import TaxTreatment

ComponentKind = Literal["quantity", "onoff", "metered"]
CouponKind = Literal["percent", "fixed"]
LineKind = Literal["setup", "recurring", "component", "discount"]

COMPONENT_KINDS = ("quantity", "onoff", "metered")
COUPON_KINDS = ("percent", "fixed")
SETUP_FEE = "setup_fee"
RECURRING_FEE = "recurring_fee"


def _money(value: Any, what: str) -> Decimal:
    amount = to_decimal(value)
    if amount < 0:
        raise ValueError(f"{what} must not be negative, got {amount}")
    return amount


def _exact(amount: Decimal, currency: str, what: str) -> None:
    if quantize(amount, currency) != amount:
        raise ValueError(f"{what} {amount} has more digits than {currency} allows")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _aware(moment: datetime | None, what: str) -> None:
    if moment is not None and (not isinstance(moment, datetime) or moment.utcoffset() is None):
        raise ValueError(f"{what} must be a timezone-aware datetime")


# --- catalog prices -------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantPrice:
    """A plan variant's prices. Amounts accept ``Decimal`` or strings (never floats)."""

    currency: str
    recurring_fee: Decimal
    setup_fee: Decimal = Decimal("0")
    billing_period_months: int = 1
    trial_days: int = 0

    def __post_init__(self) -> None:
        currency = check_currency(self.currency)
        object.__setattr__(self, "currency", currency)
        for name in ("recurring_fee", "setup_fee"):
            amount = _money(getattr(self, name), name)
            _exact(amount, currency, name)
            object.__setattr__(self, name, amount)
        if not _is_int(self.billing_period_months) or self.billing_period_months < 1:
            raise ValueError("billing_period_months must be an integer >= 1")
        if not _is_int(self.trial_days) or self.trial_days < 0:
            raise ValueError("trial_days must be an integer >= 0")


@dataclass(frozen=True)
class ComponentPrice:
    """An add-on priced per unit and billing period (``metered``: per unit used, in arrears).

    ``onoff`` components are quantity 0 or 1 (``max_quantity`` is forced to 1).
    ``min_quantity`` is the least a customer must take (0: optional).
    """

    id: str
    name: str
    kind: ComponentKind
    unit_price: Decimal
    min_quantity: int = 0
    max_quantity: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in COMPONENT_KINDS:
            raise ValueError(f"component kind must be one of {COMPONENT_KINDS}")
        object.__setattr__(self, "unit_price", _money(self.unit_price, "unit_price"))
        if not _is_int(self.min_quantity) or self.min_quantity < 0:
            raise ValueError("min_quantity must be an integer >= 0")
        if self.max_quantity is not None and (
            not _is_int(self.max_quantity) or self.max_quantity < self.min_quantity
        ):
            raise ValueError("max_quantity must be None or an integer >= min_quantity")
        if self.kind == "onoff":
            if self.min_quantity > 1:
                raise ValueError("an onoff component has min_quantity 0 or 1")
            object.__setattr__(self, "max_quantity", 1)


@dataclass(frozen=True)
class Coupon:
    """A discount code. ``value`` is a percentage (``percent``) or an amount in ``currency``.

    ``valid_from`` is inclusive and ``valid_to`` exclusive (the API turns "valid until 31 March"
    into the first instant of 1 April). ``periods``: how many billing periods it discounts,
    ``None`` for as long as the contract runs.
    """

    code: str
    kind: CouponKind
    value: Decimal
    periods: int | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    max_redemptions: int | None = None
    redemptions: int = 0
    currency: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in COUPON_KINDS:
            raise ValueError(f"coupon kind must be one of {COUPON_KINDS}")
        value = _money(self.value, "value")
        object.__setattr__(self, "value", value)
        if self.kind == "percent":
            if not 0 < value <= 100:
                raise ValueError("a percent coupon's value must be > 0 and <= 100")
        else:
            if self.currency is None:
                raise ValueError("a fixed coupon needs a currency")
            object.__setattr__(self, "currency", check_currency(self.currency))
            if value <= 0:
                raise ValueError("a fixed coupon's value must be > 0")
            _exact(value, self.currency, "value")
        if self.periods is not None and (not _is_int(self.periods) or self.periods < 1):
            raise ValueError("periods must be None or an integer >= 1")
        _aware(self.valid_from, "valid_from")
        _aware(self.valid_to, "valid_to")
        if self.max_redemptions is not None and (
            not _is_int(self.max_redemptions) or self.max_redemptions < 0
        ):
            raise ValueError("max_redemptions must be None or an integer >= 0")
        if not _is_int(self.redemptions) or self.redemptions < 0:
            raise ValueError("redemptions must be an integer >= 0")


# --- checks on customer input ---------------------------------------------------------------


class CouponError(ValueError):
    """A coupon code that cannot be redeemed; ``code`` says why.

    ``unknown`` | ``not_yet_valid`` | ``expired`` | ``used_up`` | ``currency_mismatch``
    """

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def check_coupon(
    coupon: Coupon | None, code: str, now: datetime, *, currency: str | None = None
) -> Coupon:
    """Return ``coupon`` if the code the customer typed redeems it at ``now``.

    ``coupon`` is what the merchant's catalog holds for ``code`` (``None`` when nothing). Codes
    match case-insensitively, ignoring surrounding spaces. With ``currency`` (the plan variant's),
    a fixed coupon in another currency is refused. Checks run in the order of the error codes.
    """
    _aware(now, "now")
    if (
        coupon is None
        or not isinstance(code, str)
        or coupon.code.strip().casefold() != code.strip().casefold()
    ):
        raise CouponError("unknown")
    if coupon.valid_from is not None and now < coupon.valid_from:
        raise CouponError("not_yet_valid")
    if coupon.valid_to is not None and now >= coupon.valid_to:
        raise CouponError("expired")
    if coupon.max_redemptions is not None and coupon.redemptions >= coupon.max_redemptions:
        raise CouponError("used_up")
    if currency is not None and _currency_mismatch(coupon, check_currency(currency)):
        raise CouponError("currency_mismatch")
    return coupon


def _currency_mismatch(coupon: Coupon, currency: str) -> bool:
    return coupon.kind == "fixed" and coupon.currency != currency


@dataclass(frozen=True)
class QuantityError:
    """Why a component quantity is refused: a stable ``code`` and its parameters.

    ``unknown_component`` | ``metered_not_selectable`` | ``not_an_integer`` | ``negative`` |
    ``invalid_onoff`` | ``below_minimum`` (``min``) | ``above_maximum`` (``max``)
    """

    code: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


class ComponentQuantityError(ValueError):
    """Raised by :func:`select_components`; ``errors`` maps component id → QuantityError."""

    def __init__(self, errors: Mapping[str, QuantityError]):
        super().__init__(", ".join(f"{key}: {error.code}" for key, error in errors.items()))
        self.errors = dict(errors)


def _quantity_error(component: ComponentPrice, quantity: Any) -> QuantityError | None:
    if component.kind == "metered":
        return QuantityError("metered_not_selectable")
    if not _is_int(quantity):
        return QuantityError("not_an_integer")
    if quantity < 0:
        return QuantityError("negative")
    if component.kind == "onoff" and quantity not in (0, 1):
        return QuantityError("invalid_onoff")
    if quantity < component.min_quantity:
        return QuantityError("below_minimum", {"min": component.min_quantity})
    if component.max_quantity is not None and quantity > component.max_quantity:
        return QuantityError("above_maximum", {"max": component.max_quantity})
    return None


def check_component_quantities(
    components: Iterable[ComponentPrice], quantities: Mapping[str, Any]
) -> dict[str, QuantityError]:
    """Errors per component id for the quantities a customer chose; empty when all are valid.

    Quantities must be ``int`` (not ``bool``, not strings: parse at the boundary). A metered
    component takes no quantity at all. Components left out are not errors here: they get their
    ``min_quantity`` (see :func:`select_components`).
    """
    by_id = {component.id: component for component in components}
    errors: dict[str, QuantityError] = {}
    for key, quantity in quantities.items():
        component = by_id.get(key)
        error = (
            QuantityError("unknown_component")
            if component is None
            else _quantity_error(component, quantity)
        )
        if error is not None:
            errors[str(key)] = error
    return errors


def select_components(
    components: Iterable[ComponentPrice], quantities: Mapping[str, Any]
) -> list[tuple[ComponentPrice, int]]:
    """Every component of the variant with its quantity, ready for :func:`price_order`.

    Components not in ``quantities`` get their ``min_quantity``; metered ones get 0. Raises
    :class:`ComponentQuantityError` when :func:`check_component_quantities` finds errors.
    """
    components = list(components)
    errors = check_component_quantities(components, quantities)
    if errors:
        raise ComponentQuantityError(errors)
    return [
        (c, 0 if c.kind == "metered" else quantities.get(c.id, c.min_quantity))
        for c in components
    ]


# --- prices ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceLine:
    """One invoice line. ``description`` is a message key (``setup_fee``, ``recurring_fee``),
    the component's name, or the coupon code. A discount line has a negative ``net``."""

    kind: LineKind
    description: str
    quantity: int
    unit_price: Decimal
    net: Decimal
    component_id: str | None = None


@dataclass(frozen=True)
class MeteredPrice:
    """A metered component, shown for information: billed per unit used, in arrears."""

    component_id: str
    name: str
    unit_price: Decimal


@dataclass(frozen=True)
class OrderTax:
    rate: Decimal
    category: str
    reverse_charge: bool
    amount: Decimal


@dataclass(frozen=True)
class PeriodPrice:
    """The invoice of one billing period (``period`` 1 is the first invoice)."""

    currency: str
    period: int
    lines: tuple[PriceLine, ...]
    setup_net: Decimal
    recurring_net: Decimal
    discount: Decimal
    net_total: Decimal
    tax: OrderTax
    gross_total: Decimal

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(self)


@dataclass(frozen=True)
class OrderPrice:
    """What an order costs: the first invoice and the periods after it.

    - ``lines``, ``setup_net``, ``recurring_net`` (one period incl. components, before
      discount), ``discount``, ``net_total``, ``tax``, ``gross_total``: the first invoice.
    - ``first_invoice_at``: ``'signup'`` or ``'trial_end'``; ``due_now`` + ``due_at_trial_end``
      == ``gross_total`` and one of them is 0.
    - ``discounted_recurring_gross``: each period's gross while the coupon lasts
      (``discount_periods`` periods, counting the first; ``None``: forever; 0: no coupon).
    - ``recurring_gross``: each period's gross without discount (after the coupon ran out).
    """

    currency: str
    lines: tuple[PriceLine, ...]
    metered: tuple[MeteredPrice, ...]
    setup_net: Decimal
    recurring_net: Decimal
    discount: Decimal
    net_total: Decimal
    tax: OrderTax
    gross_total: Decimal
    trial_days: int
    billing_period_months: int
    first_invoice_at: Literal["signup", "trial_end"]
    due_now: Decimal
    due_at_trial_end: Decimal
    discount_periods: int | None
    discounted_recurring_gross: Decimal
    recurring_gross: Decimal

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: Decimals as plain strings (``'10.00'``), tuples as lists."""
        return _jsonable(self)


def trial_end(start: datetime, trial_days: int) -> datetime:
    """When the trial that starts at ``start`` ends, i.e. when the first invoice is issued."""
    return start + timedelta(days=trial_days)


def price_period(
    variant: VariantPrice,
    selected: Sequence[tuple[ComponentPrice, int]],
    coupon: Coupon | None,
    tax: TaxTreatment,
    period: int = 1,
) -> PeriodPrice:
    """The invoice for billing period ``period`` (1-based) of a contract with these inputs.

    Period 1 carries the setup fee; the coupon applies while ``period <= coupon.periods``.
    Raises ``ValueError`` for inconsistent inputs (a quantity :func:`check_component_quantities`
    would refuse, a component twice) and :class:`CouponError` for a coupon in another currency.
    """
    if not _is_int(period) or period < 1:
        raise ValueError("period must be an integer >= 1")
    currency = variant.currency
    _check_selected(selected)
    if coupon is not None and _currency_mismatch(coupon, currency):
        raise CouponError("currency_mismatch")

    lines: list[PriceLine] = []
    setup_net = quantize(variant.setup_fee if period == 1 else Decimal(0), currency)
    if setup_net > 0:
        lines.append(PriceLine("setup", SETUP_FEE, 1, variant.setup_fee, setup_net))
    recurring_fee = quantize(variant.recurring_fee, currency)
    lines.append(PriceLine("recurring", RECURRING_FEE, 1, variant.recurring_fee, recurring_fee))
    for component, quantity in selected:
        if component.kind == "metered" or quantity == 0:
            continue
        net = quantize(component.unit_price * quantity, currency)
        lines.append(
            PriceLine("component", component.name, quantity, component.unit_price, net,
                      component.id)
        )
    recurring_net = sum((line.net for line in lines if line.kind != "setup"), Decimal(0))
    recurring_net = quantize(recurring_net, currency)

    discount = quantize(Decimal(0), currency)
    if coupon is not None and (coupon.periods is None or period <= coupon.periods):
        discount = _discount(coupon, recurring_net, currency)
    if discount > 0:
        lines.append(PriceLine("discount", coupon.code, 1, -discount, -discount))

    net_total = setup_net + recurring_net - discount
    tax_amount = _tax(net_total, tax, currency)
    return PeriodPrice(
        currency=currency,
        period=period,
        lines=tuple(lines),
        setup_net=setup_net,
        recurring_net=recurring_net,
        discount=discount,
        net_total=net_total,
        tax=OrderTax(tax.rate, tax.category, tax.reverse_charge, tax_amount),
        gross_total=net_total + tax_amount,
    )


def price_order(
    variant: VariantPrice,
    selected: Sequence[tuple[ComponentPrice, int]],
    coupon: Coupon | None,
    tax: TaxTreatment,
) -> OrderPrice:
    """Price an order: its first invoice (= ``price_period(..., period=1)``), what is due at
    signup and at trial end, and the gross of later periods. See the module docstring for rules.

    ``selected`` is usually :func:`select_components`' result; metered components in it are
    listed in ``metered`` and never charged.
    """
    first = price_period(variant, selected, coupon, tax, period=1)
    currency = variant.currency
    zero = quantize(Decimal(0), currency)
    discounted_net = first.recurring_net - first.discount
    with_trial = variant.trial_days > 0
    return OrderPrice(
        currency=currency,
        lines=first.lines,
        metered=tuple(
            MeteredPrice(component.id, component.name, component.unit_price)
            for component, _ in selected
            if component.kind == "metered"
        ),
        setup_net=first.setup_net,
        recurring_net=first.recurring_net,
        discount=first.discount,
        net_total=first.net_total,
        tax=first.tax,
        gross_total=first.gross_total,
        trial_days=variant.trial_days,
        billing_period_months=variant.billing_period_months,
        first_invoice_at="trial_end" if with_trial else "signup",
        due_now=zero if with_trial else first.gross_total,
        due_at_trial_end=first.gross_total if with_trial else zero,
        discount_periods=0 if coupon is None else coupon.periods,
        discounted_recurring_gross=discounted_net + _tax(discounted_net, tax, currency),
        recurring_gross=first.recurring_net + _tax(first.recurring_net, tax, currency),
    )


def _check_selected(selected: Sequence[tuple[ComponentPrice, int]]) -> None:
    seen: set[str] = set()
    for component, quantity in selected:
        if component.id in seen:
            raise ValueError(f"component {component.id!r} selected twice")
        seen.add(component.id)
        if component.kind == "metered":
            if quantity != 0:
                raise ValueError(f"metered component {component.id!r} takes no quantity")
            continue
        error = _quantity_error(component, quantity)
        if error is not None:
            raise ValueError(f"component {component.id!r}: {error.code} {error.params}")


def _discount(coupon: Coupon, base: Decimal, currency: str) -> Decimal:
    if coupon.kind == "percent":
        amount = quantize(base * coupon.value / 100, currency)
    else:
        amount = quantize(coupon.value, currency)
    return min(amount, base)


def _tax(net: Decimal, tax: TaxTreatment, currency: str) -> Decimal:
    return quantize(net * tax.rate / 100, currency)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value
