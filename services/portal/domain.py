"""Contract rules: trial, state, cancellation end date, next billing date, periods due.

Plain functions over plain values (dates, ints, ``Duration``) — no nameko, no session — so the
service layer can call them and the tests need no fixtures.

**End-date convention (exclusive ends).** Every end date here is the *first day no longer
covered*, matching the half-open periods of ``services.common.periods``:

- ``trial_end`` is the first day after the trial, which is also the billing start: a 14-day trial
  starting 1 June covers 1–14 June and ``trial_end == date(2026, 6, 15)``.
- ``cancellation_end`` is the first day the contract no longer runs, always a billing-period
  boundary (or the trial end): a monthly contract cancelled to the end of June has
  ``cancellation_end == date(2026, 7, 1)``.

Stored values and events carry these exclusive dates; pages show ``last_day_covered(end)``
("runs until 30 June"). Comparisons are then uniform: the contract is over on day ``d`` exactly
when ``d >= cancellation_end``.

Billing is in advance: each period is billed on its first day (its ``start``).
"""

from __future__ import annotations

import datetime as dt
import enum
from datetime import date

from services.common.periods import (
    Duration,
    Period,
    boundary_on_or_after,
    next_boundary,
    period_at,
)

__all__ = [
    "ContractState",
    "as_date",
    "billing_due_periods",
    "billing_start",
    "can_withdraw_cancellation",
    "cancellation_end_date",
    "contract_state",
    "current_period",
    "last_day_covered",
    "next_billing_date",
    "next_lifecycle_date",
    "trial_end",
]

_DAY = dt.timedelta(days=1)


class ContractState(enum.StrEnum):
    IN_TRIAL = "in_trial"
    ACTIVE = "active"
    CANCELLATION_REQUESTED = "cancellation_requested"
    ENDED = "ended"


def as_date(value: date | dt.datetime) -> date:
    """The UTC calendar day of ``value`` (aware datetimes are converted to UTC first)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date()
    return value


def trial_end(start: date | dt.datetime, trial_days: int | Duration | None) -> date | None:
    """Exclusive end of the trial (= billing start), or ``None`` without a trial.

    ``trial_end(date(2026, 6, 1), 14) == date(2026, 6, 15)``: the trial covers 1–14 June.
    ``trial_days`` may also be a ``Duration`` (``Duration(1, 'month')``); 0 means no trial.
    """
    day = as_date(start)
    if trial_days is None:
        return None
    if not isinstance(trial_days, Duration):
        if isinstance(trial_days, bool) or not isinstance(trial_days, int) or trial_days < 0:
            raise ValueError(f"trial days must be a whole number ≥ 0: {trial_days!r}")
        trial_days = Duration(trial_days, "day")
    if trial_days.value == 0:
        return None
    return trial_days.add_to(day)


def billing_start(start: date | dt.datetime, trial_end: date | None) -> date:
    """The anchor of all billing periods: the trial end when there is a trial, else the start."""
    return trial_end if trial_end is not None else as_date(start)


def last_day_covered(end: date) -> date:
    """The last day a contract with exclusive ``end`` still runs, for display."""
    return end - _DAY


def contract_state(
    start: date | dt.datetime,
    trial_end: date | None,
    cancellation_end: date | None,
    now: date | dt.datetime,
) -> ContractState:
    """Where the contract stands on ``now``'s (UTC) day.

    ``ENDED`` from ``cancellation_end`` on; before that a pending cancellation wins over the
    trial (``CANCELLATION_REQUESTED`` — the one the customer can still act on, by withdrawing);
    then ``IN_TRIAL`` before ``trial_end``; otherwise ``ACTIVE`` (also for a contract whose
    start lies ahead: it exists and will bill). ``start`` is taken for symmetry with the other
    rules; the state follows from the end dates alone.
    """
    today = as_date(now)
    if cancellation_end is not None:
        if today >= cancellation_end:
            return ContractState.ENDED
        return ContractState.CANCELLATION_REQUESTED
    if trial_end is not None and today < trial_end:
        return ContractState.IN_TRIAL
    return ContractState.ACTIVE


def cancellation_end_date(
    *,
    start: date,
    trial_end: date | None,
    billing_months: int,
    notice: Duration,
    minimum_term: Duration | None,
    requested_on: date,
) -> date:
    """The exclusive end date of a contract cancelled on ``requested_on`` (billwerk-style).

    1. **During the trial** (``requested_on < trial_end``, i.e. up to and including the last
       trial day) the contract ends at ``trial_end``; no period is ever billed. Notice and
       minimum term do not apply to a trial.
    2. **Otherwise** the earliest possible end is the latest of
       - ``requested_on + notice`` (the notice runs from the request day: 1 month's notice
         given on 10 Feb covers 10 Feb – 9 Mar, earliest end 10 Mar),
       - the end of the minimum term counted from the billing start (12 months from 1 Jan 2026
         → 1 Jan 2027), when there is one,
       - the day after the request: the period the request falls in has begun (and was billed
         in advance), so it is always served to its end, even with zero notice on its first day.
    3. Contracts end at period ends, never mid-period: the result is the first billing-period
       boundary (periods of ``billing_months`` from the billing start) on or after that
       earliest date — and never before the end of the first period.

    A request on a boundary with notice that reaches exactly the next boundary ends there:
    monthly from 1 Jan, 1 month's notice given on 1 Mar → ends 1 Apr (runs until 31 Mar).
    """
    start = as_date(start)
    requested_on = as_date(requested_on)
    if trial_end is not None and requested_on < trial_end:
        return trial_end
    anchor = billing_start(start, trial_end)
    earliest = max(notice.add_to(requested_on), requested_on + _DAY)
    if minimum_term is not None:
        earliest = max(earliest, minimum_term.add_to(anchor))
    first_period_end = next_boundary(anchor, billing_months, anchor)
    return max(boundary_on_or_after(anchor, billing_months, earliest), first_period_end)


def can_withdraw_cancellation(cancellation_end: date | None, now: date | dt.datetime) -> bool:
    """A pending cancellation can be withdrawn until it takes effect (the day before its end)."""
    return cancellation_end is not None and as_date(now) < cancellation_end


def next_billing_date(
    start: date | dt.datetime,
    trial_end: date | None,
    billing_months: int,
    today: date | dt.datetime,
    cancellation_end: date | None = None,
) -> date | None:
    """The next day a period will be billed, strictly after ``today``, or ``None``.

    Before the billing start that is the billing start itself; afterwards the start of the next
    period (today's period, if it began today, counts as billed). ``None`` when that period
    would begin on or after ``cancellation_end`` — the contract ends first.
    """
    anchor = billing_start(start, trial_end)
    day = as_date(today)
    upcoming = anchor if day < anchor else next_boundary(anchor, billing_months, day)
    if cancellation_end is not None and upcoming >= cancellation_end:
        return None
    return upcoming


def billing_due_periods(
    anchor: date,
    months: int,
    last_billed_period_start: date | None,
    now_date: date | dt.datetime,
    end: date | None,
) -> list[Period]:
    """Periods that have begun by ``now_date`` (billed in advance) and are not yet billed.

    Those whose start is after ``last_billed_period_start`` (all from ``anchor`` when nothing was
    billed yet), on or before ``now_date``, and before the contract ``end``; oldest first, so a
    missed run catches up. Idempotent: once the caller records the last returned period's start
    as ``last_billed_period_start``, the same call returns ``[]``. A period cut by an ``end``
    that is not a boundary is returned cut to ``end``.
    """
    today = as_date(now_date)
    if today < anchor:
        return []
    if last_billed_period_start is None:
        period = period_at(anchor, months, anchor)
    else:
        period = period_at(anchor, months, max(last_billed_period_start, anchor))
        if period.start <= last_billed_period_start:
            period = period_at(anchor, months, period.end)
    due = []
    while period.start <= today and (end is None or period.start < end):
        if end is not None and end < period.end:
            due.append(Period(period.start, end))
        else:
            due.append(period)
        period = period_at(anchor, months, period.end)
    return due


def next_lifecycle_date(
    anchor: date,
    months: int,
    last_billed_period_start: date | None,
    cancellation_end: date | None,
    ended_on: date | None,
) -> date | None:
    """The first day the lifecycle timer has work for a contract, or ``None`` once it ended.

    That is the start of the next unbilled period (the ``anchor`` when nothing was billed yet),
    or the ``cancellation_end`` when that comes first (the day ``ContractEnded`` is due).
    """
    if ended_on is not None:
        return None
    upcoming = (anchor if last_billed_period_start is None
                else next_boundary(anchor, months, max(last_billed_period_start, anchor)))
    if cancellation_end is not None:
        return min(upcoming, cancellation_end)
    return upcoming


def current_period(
    anchor: date, months: int, today: date | dt.datetime, cancellation_end: date | None
) -> Period | None:
    """The billing period ``today`` falls in (cut at ``cancellation_end``), or ``None`` before
    the billing start (trial) and from the end on."""
    day = as_date(today)
    if day < anchor or (cancellation_end is not None and day >= cancellation_end):
        return None
    period = period_at(anchor, months, day)
    if cancellation_end is not None and cancellation_end < period.end:
        return Period(period.start, cancellation_end)
    return period
