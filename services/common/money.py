"""Money as ``Decimal`` in the currency's minor units.

Amounts are never floats. ``to_minor``/``from_minor`` convert to integer minor units
(cents) for storage and sums; ``quantize`` rounds half-up to the currency's precision.

>>> quantize(Decimal("9.995"), "EUR")
Decimal('10.00')
>>> quantize(Decimal("1000.4"), "JPY")
Decimal('1000')
"""
from __future__ import annotations

import functools
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import get_currency_precision, list_currencies

_KNOWN = frozenset(list_currencies())


class MoneyError(ValueError):
    """An amount or currency that cannot be money."""


def check_currency(currency: str) -> str:
    """Return the ISO 4217 code upper-cased, or raise ``MoneyError``."""
    code = (currency or "").upper()
    if code not in _KNOWN:
        raise MoneyError(f"unknown currency {currency!r}")
    return code


def precision(currency: str) -> int:
    """Number of minor-unit digits: 2 for EUR, 0 for JPY, 3 for KWD."""
    return _precision(check_currency(currency))


@functools.cache
def _precision(code: str) -> int:  # Babel looks it up in its data on every call
    return get_currency_precision(code)


def exponent(currency: str) -> Decimal:
    return _exponent(precision(currency))


@functools.cache
def _exponent(digits: int) -> Decimal:
    return Decimal(1).scaleb(-digits)


def to_decimal(value) -> Decimal:
    """Parse a user- or API-supplied amount; floats are refused (they are not exact)."""
    if isinstance(value, float):
        raise MoneyError("amounts must be strings or decimals, not floats")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, TypeError) as exc:
        raise MoneyError(f"not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise MoneyError(f"not an amount: {value!r}")
    return amount


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit."""
    return Decimal(amount).quantize(exponent(currency), rounding=ROUND_HALF_UP)


def to_minor(amount: Decimal, currency: str) -> int:
    """``Decimal('12.34')`` EUR → ``1234``; the amount must already be exact in minor units."""
    exact = quantize(amount, currency)
    if exact != amount:
        raise MoneyError(f"{amount} has more digits than {currency} allows")
    return int(exact.scaleb(precision(currency)))


def from_minor(minor: int, currency: str) -> Decimal:
    """``1234`` EUR → ``Decimal('12.34')``."""
    return quantize(Decimal(int(minor)).scaleb(-precision(currency)), currency)


def allocate(total: Decimal, weights: list[Decimal], currency: str) -> list[Decimal]:
    """Split ``total`` in proportion to ``weights`` so the parts add up to ``total`` exactly.

    Remainders go to the largest fractional parts first (largest remainder method), so no cent is
    lost or invented: ``sum(allocate(t, w, c)) == quantize(t, c)`` always.
    """
    if not weights:
        return []
    total_minor = to_minor(quantize(total, currency), currency)
    weight_sum = sum(weights, Decimal(0))
    if weight_sum == 0:
        raw = [Decimal(total_minor) / len(weights)] * len(weights)
    else:
        raw = [Decimal(total_minor) * w / weight_sum for w in weights]
    floors = [int(r.to_integral_value(rounding="ROUND_FLOOR")) for r in raw]
    leftover = total_minor - sum(floors)
    order = sorted(range(len(raw)), key=lambda i: raw[i] - floors[i], reverse=True)
    for i in order[:leftover]:
        floors[i] += 1
    return [from_minor(m, currency) for m in floors]
