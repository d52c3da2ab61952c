"""Billing period arithmetic: months that clamp, half-open periods, proration, durations.

Shared by the portal (contract periods, next billing date, cancellation) and documents
(proration on invoices and credit notes). Plain values only: ``date``, ``Decimal``, ``str``.

Conventions used throughout:

- Every interval is **half-open**, ``[start, end)``: ``end`` is the first day *not* covered.
  A monthly period starting 1 June is ``Period(2026-06-01, 2026-07-01)``; periods that follow
  each other share a boundary and never overlap, and ``days`` is simply ``end - start``.
- Month arithmetic clamps to the end of the month *relative to an anchor day*, so a
  subscription started on the 31st is billed on the 31st, 28th/29th, 31st, 30th, ...
  and never drifts: ``add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)`` and
  ``add_months(date(2026, 2, 28), 1, anchor_day=31) == date(2026, 3, 31)``.
- Billing periods are counted from the billing start (``anchor``): period ``k`` is
  ``[add_months(anchor, k*m), add_months(anchor, (k+1)*m))``, always computed from the anchor,
  never by stepping from the previous period. ``k`` may be negative (dates before the anchor);
  callers decide whether such a date matters.

>>> period_at(date(2026, 1, 31), 1, date(2026, 3, 5))
Period(start=datetime.date(2026, 2, 28), end=datetime.date(2026, 3, 31))
>>> prorate(Decimal("30.00"), Period(date(2026, 6, 1), date(2026, 7, 1)),
...         date(2026, 6, 16), date(2026, 7, 1), "EUR")
Decimal('15.00')
>>> Duration.parse("2 weeks").add_to(date(2026, 1, 1))
datetime.date(2026, 1, 15)
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from services.common import money

__all__ = [
    "Duration",
    "DurationUnit",
    "Period",
    "add_months",
    "boundary_on_or_after",
    "days_in_month",
    "next_boundary",
    "parse_duration",
    "period_at",
    "periods_between",
    "prorate",
    "prorated_change",
]


# --- months -----------------------------------------------------------------------------------


def days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def add_months(d: date, n: int, anchor_day: int | None = None) -> date:
    """``d`` moved by ``n`` calendar months (``n`` may be negative or zero).

    The day of the result is ``anchor_day`` (default: ``d.day``) clamped to the length of the
    target month. Passing the contract's original day as ``anchor_day`` keeps a 31st-anchored
    schedule on month ends: Jan 31 → Feb 28 → Mar 31 (not Mar 28).
    """
    if anchor_day is None:
        anchor_day = d.day
    if not 1 <= anchor_day <= 31:
        raise ValueError(f"anchor_day must be 1..31, got {anchor_day}")
    year, month0 = divmod(d.year * 12 + (d.month - 1) + int(n), 12)
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        raise ValueError(f"{d} + {n} months is out of range")
    month = month0 + 1
    return date(year, month, min(anchor_day, days_in_month(year, month)))


# --- periods ----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Period:
    """The half-open day range ``[start, end)``; ``end`` is the first day not covered."""

    start: date
    end: date

    def __post_init__(self) -> None:
        for d in (self.start, self.end):
            if not isinstance(d, date) or isinstance(d, dt.datetime):
                raise TypeError(f"Period takes dates, not {type(d).__name__}")
        if self.end <= self.start:
            raise ValueError(f"empty period: {self.start} .. {self.end}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def last_day(self) -> date:
        """The last day covered (for display: "1 June – 30 June")."""
        return self.end - dt.timedelta(days=1)

    def contains(self, d: date) -> bool:
        return self.start <= d < self.end

    def overlap_days(self, start: date, end: date) -> int:
        """Number of days of ``[start, end)`` that fall inside this period."""
        return max(0, (min(end, self.end) - max(start, self.start)).days)


def _check_months(months: int) -> None:
    if isinstance(months, bool) or not isinstance(months, int) or months < 1:
        raise ValueError(f"billing period length must be a whole number of months ≥ 1: {months!r}")


def _boundary(anchor: date, months: int, k: int) -> date:
    """Start of period ``k`` (period 0 starts at ``anchor``)."""
    return add_months(anchor, k * months, anchor.day)


def _index_at(anchor: date, months: int, at: date) -> int:
    """Index ``k`` of the period that contains ``at``."""
    _check_months(months)
    month_offset = (at.year - anchor.year) * 12 + (at.month - anchor.month)
    k = month_offset // months
    # Period k starts in a month no later than at's month; only when it is the same month can
    # its (clamped anchor) day lie after ``at``, and then period k-1 starts in an earlier month.
    if _boundary(anchor, months, k) > at:
        k -= 1
    return k


def _period(anchor: date, months: int, k: int) -> Period:
    return Period(_boundary(anchor, months, k), _boundary(anchor, months, k + 1))


def period_at(anchor: date, months: int, at: date) -> Period:
    """The billing period of ``months`` months, counted from ``anchor``, that contains ``at``."""
    return _period(anchor, months, _index_at(anchor, months, at))


def next_boundary(anchor: date, months: int, at: date) -> date:
    """The first period boundary strictly after ``at`` (= end of the period containing ``at``)."""
    return _boundary(anchor, months, _index_at(anchor, months, at) + 1)


def boundary_on_or_after(anchor: date, months: int, d: date) -> date:
    """``d`` itself if a period starts on ``d``, else the next boundary after it."""
    k = _index_at(anchor, months, d)
    start = _boundary(anchor, months, k)
    return start if start == d else _boundary(anchor, months, k + 1)


def periods_between(anchor: date, months: int, start: date, end: date) -> list[Period]:
    """The whole billing periods that overlap ``[start, end)``, in order (not clipped).

    Empty when ``end <= start``. Clip with ``Period.overlap_days`` or ``prorate``.
    """
    if end <= start:
        return []
    k = _index_at(anchor, months, start)
    periods = []
    while True:
        period = _period(anchor, months, k)
        if period.start >= end:
            return periods
        periods.append(period)
        k += 1


# --- proration --------------------------------------------------------------------------------


def _cumulative(amount: Decimal, period: Period, upto: date, currency: str) -> Decimal:
    """The rounded share of ``amount`` for ``[period.start, upto)``."""
    days = min(max((upto - period.start).days, 0), period.days)
    return money.quantize(Decimal(amount) * days / period.days, currency)


def prorate(amount: Decimal, period: Period, start: date, end: date, currency: str) -> Decimal:
    """The share of ``amount`` (the price of all of ``period``) for ``[start, end) ∩ period``.

    By days, rounded half-up to the currency's minor unit. The share is computed as the
    difference of two *cumulative* rounded shares (from the period start up to ``end``, minus up
    to ``start``), so the shares of any split of a period add up exactly to the rounded whole:
    ``prorate(a, p, p.start, x, c) + prorate(a, p, x, p.end, c) == money.quantize(a, c)`` for
    every ``x`` — no cent is lost or invented, however many pieces a period is cut into.
    """
    if end <= start:
        return money.quantize(Decimal(0), currency)
    return _cumulative(amount, period, end, currency) - _cumulative(amount, period, start, currency)


def prorated_change(
    old_amount: Decimal, new_amount: Decimal, period: Period, change_date: date, currency: str
) -> Decimal:
    """Net charge (> 0) or credit (< 0) for switching from ``old_amount`` to ``new_amount``
    (both prices of the whole ``period``, already billed at the old price) on ``change_date``.

    The switch takes effect on ``change_date`` itself: the customer is credited the old price for
    ``[change_date, period.end)`` and charged the new price for the same days.

    >>> p = Period(date(2026, 6, 1), date(2026, 7, 1))
    >>> prorated_change(Decimal("30"), Decimal("60"), p, date(2026, 6, 16), "EUR")
    Decimal('15.00')
    """
    if not period.contains(change_date):
        raise ValueError(f"change date {change_date} is outside {period.start} .. {period.end}")
    charge = prorate(new_amount, period, change_date, period.end, currency)
    credit = prorate(old_amount, period, change_date, period.end, currency)
    return charge - credit


# --- durations --------------------------------------------------------------------------------

DurationUnit = Literal["day", "week", "month"]
_UNITS: dict[str, DurationUnit] = {
    "day": "day",
    "days": "day",
    "week": "week",
    "weeks": "week",
    "month": "month",
    "months": "month",
}
_TEXT = re.compile(r"\s*([0-9]+)\s*([a-zA-Z]+)\s*")
_DIGITS = re.compile(r"\s*[0-9]+\s*")


@dataclass(frozen=True)
class Duration:
    """A notice period, minimum term or trial length: ``Duration(30, 'day')``, ``Duration(1,
    'month')``. Months add with end-of-month clamping (``add_months``)."""

    value: int
    unit: DurationUnit

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < 0:
            raise ValueError(f"duration value must be a whole number ≥ 0: {self.value!r}")
        if self.unit not in ("day", "week", "month"):
            raise ValueError(f"duration unit must be day, week or month: {self.unit!r}")

    def add_to(self, d: date) -> date:
        if self.unit == "month":
            return add_months(d, self.value)
        days = self.value * (7 if self.unit == "week" else 1)
        return d + dt.timedelta(days=days)

    def to_dict(self) -> dict:
        return {"value": self.value, "unit": self.unit}

    def __str__(self) -> str:
        return f"{self.value} {self.unit}{'' if self.value == 1 else 's'}"

    @classmethod
    def parse(cls, raw: Duration | str | dict) -> Duration:
        """From ``'30 days'``, ``'1 month'``, ``'2 weeks'`` or ``{'value': 2, 'unit': 'week'}``
        (units singular or plural, any case). Anything else raises ``ValueError``."""
        if isinstance(raw, Duration):
            return raw
        if isinstance(raw, str):
            match = _TEXT.fullmatch(raw)
            if not match:
                raise ValueError(f"not a duration: {raw!r} (expected e.g. '30 days')")
            value, unit = match.group(1), match.group(2)
        elif isinstance(raw, dict):
            if set(raw) != {"value", "unit"}:
                raise ValueError(f"a duration needs exactly 'value' and 'unit': {raw!r}")
            value, unit = raw["value"], raw["unit"]
        else:
            raise ValueError(f"not a duration: {raw!r}")
        return cls(_parse_value(value), _parse_unit(unit))


def _parse_value(value) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not a duration value: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value.strip())
    raise ValueError(f"not a duration value: {value!r}")


def _parse_unit(unit) -> DurationUnit:
    if not isinstance(unit, str) or unit.strip().lower() not in _UNITS:
        raise ValueError(f"duration unit must be day(s), week(s) or month(s): {unit!r}")
    return _UNITS[unit.strip().lower()]


def parse_duration(raw: Duration | str | dict) -> Duration:
    """Module-level alias of ``Duration.parse``."""
    return Duration.parse(raw)
