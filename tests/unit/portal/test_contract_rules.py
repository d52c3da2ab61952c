"""Contract rules: trials, states, cancellation end dates, next billing date, periods due.

End dates are exclusive (the first day no longer covered); ``last_day_covered`` is for display.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.periods import Duration, Period, add_months, period_at
from services.portal.domain import (
    ContractState,
    billing_due_periods,
    billing_start,
    can_withdraw_cancellation,
    cancellation_end_date,
    contract_state,
    last_day_covered,
    next_billing_date,
    trial_end,
)

D = date
DAY = timedelta(days=1)
NO_NOTICE = Duration(0, "day")
ONE_MONTH = Duration(1, "month")


def cancel(
    requested_on, *, start=D(2026, 1, 1), trial=None, months=1, notice=ONE_MONTH, minimum_term=None
):
    return cancellation_end_date(
        start=start,
        trial_end=trial,
        billing_months=months,
        notice=notice,
        minimum_term=minimum_term,
        requested_on=requested_on,
    )


# --- trial ------------------------------------------------------------------------------------


def test_trial_end_is_the_first_day_after_the_trial():
    assert trial_end(D(2026, 6, 1), 14) == D(2026, 6, 15)
    assert trial_end(D(2026, 2, 20), 14) == D(2026, 3, 6)
    assert trial_end(D(2028, 2, 20), 14) == D(2028, 3, 5)  # leap year
    assert trial_end(D(2026, 1, 31), Duration(1, "month")) == D(2026, 2, 28)


def test_trial_end_uses_the_utc_day_of_a_datetime():
    late_in_brazil = datetime(2026, 6, 1, 23, 30, tzinfo=timezone(timedelta(hours=-3)))
    assert trial_end(late_in_brazil, 14) == D(2026, 6, 16)  # 2 June UTC + 14 days
    assert trial_end(datetime(2026, 6, 1, 9, 0, tzinfo=UTC), 14) == D(2026, 6, 15)


def test_no_trial():
    assert trial_end(D(2026, 6, 1), 0) is None
    assert trial_end(D(2026, 6, 1), None) is None
    assert trial_end(D(2026, 6, 1), Duration(0, "day")) is None


@pytest.mark.parametrize("bad", [-1, 1.5, True, "14"])
def test_trial_days_must_be_a_whole_number(bad):
    with pytest.raises(ValueError):
        trial_end(D(2026, 6, 1), bad)


def test_billing_starts_after_the_trial_or_at_the_start():
    assert billing_start(D(2026, 6, 1), D(2026, 6, 15)) == D(2026, 6, 15)
    assert billing_start(D(2026, 6, 1), None) == D(2026, 6, 1)
    assert billing_start(datetime(2026, 6, 1, 12, tzinfo=UTC), None) == D(2026, 6, 1)


def test_last_day_covered():
    assert last_day_covered(D(2026, 7, 1)) == D(2026, 6, 30)
    assert last_day_covered(D(2028, 3, 1)) == D(2028, 2, 29)
    assert last_day_covered(D(2027, 1, 1)) == D(2026, 12, 31)


# --- state ------------------------------------------------------------------------------------

START = D(2026, 6, 1)
TRIAL_END = D(2026, 6, 15)


@pytest.mark.parametrize(
    ("trial", "end", "now", "expected"),
    [
        (TRIAL_END, None, D(2026, 6, 1), ContractState.IN_TRIAL),
        (TRIAL_END, None, D(2026, 6, 14), ContractState.IN_TRIAL),
        (TRIAL_END, None, D(2026, 6, 15), ContractState.ACTIVE),
        (None, None, D(2026, 6, 1), ContractState.ACTIVE),
        (None, None, D(2030, 1, 1), ContractState.ACTIVE),
        (None, D(2026, 8, 1), D(2026, 7, 31), ContractState.CANCELLATION_REQUESTED),
        (None, D(2026, 8, 1), D(2026, 8, 1), ContractState.ENDED),
        (None, D(2026, 8, 1), D(2027, 1, 1), ContractState.ENDED),
        (TRIAL_END, TRIAL_END, D(2026, 6, 10), ContractState.CANCELLATION_REQUESTED),
        (TRIAL_END, TRIAL_END, D(2026, 6, 15), ContractState.ENDED),
        (
            None,
            D(2026, 8, 1),
            datetime(2026, 7, 31, 23, 59, tzinfo=UTC),
            ContractState.CANCELLATION_REQUESTED,
        ),
        (
            None,
            D(2026, 8, 1),
            datetime(2026, 7, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1))),
            ContractState.ENDED,  # 00:30 UTC on 1 August
        ),
    ],
)
def test_contract_state(trial, end, now, expected):
    assert contract_state(START, trial, end, now) is expected


def test_state_values_are_the_wire_names():
    assert [s.value for s in ContractState] == [
        "in_trial",
        "active",
        "cancellation_requested",
        "ended",
    ]
    assert ContractState("ended") is ContractState.ENDED


# --- cancellation: trial ----------------------------------------------------------------------


def test_cancel_during_trial_ends_at_trial_end_whatever_the_notice_and_term():
    for requested in (D(2026, 6, 1), D(2026, 6, 3), D(2026, 6, 14)):
        assert (
            cancel(
                requested,
                start=START,
                trial=TRIAL_END,
                notice=Duration(3, "month"),
                minimum_term=Duration(24, "month"),
            )
            == TRIAL_END
        )


def test_cancel_on_the_last_trial_day_still_ends_at_trial_end():
    end = cancel(D(2026, 6, 14), start=START, trial=TRIAL_END)
    assert end == D(2026, 6, 15)
    assert last_day_covered(end) == D(2026, 6, 14)
    # ... so nothing is ever billed
    assert billing_due_periods(TRIAL_END, 1, None, D(2026, 6, 20), end) == []
    assert next_billing_date(START, TRIAL_END, 1, D(2026, 6, 14), end) is None


def test_cancel_on_the_billing_start_day_is_no_longer_a_trial_cancellation():
    # the first period (15 June – 14 July) began and was billed that morning
    assert cancel(D(2026, 6, 15), start=START, trial=TRIAL_END, notice=NO_NOTICE) == D(2026, 7, 15)
    assert cancel(D(2026, 6, 15), start=START, trial=TRIAL_END) == D(2026, 7, 15)
    assert cancel(D(2026, 6, 16), start=START, trial=TRIAL_END) == D(2026, 8, 15)


# --- cancellation: notice -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notice", "requested", "expected"),
    [
        # monthly from 1 Jan 2026
        (Duration(30, "day"), D(2026, 3, 1), D(2026, 4, 1)),  # notice until 30 Mar
        (Duration(30, "day"), D(2026, 3, 2), D(2026, 4, 1)),  # earliest 1 Apr: on a boundary
        (Duration(30, "day"), D(2026, 3, 3), D(2026, 5, 1)),  # earliest 2 Apr
        (Duration(30, "day"), D(2026, 2, 1), D(2026, 4, 1)),  # earliest 3 Mar (Feb has 28)
        (Duration(14, "day"), D(2026, 3, 18), D(2026, 4, 1)),
        (Duration(14, "day"), D(2026, 3, 19), D(2026, 5, 1)),
        (Duration(2, "week"), D(2026, 3, 18), D(2026, 4, 1)),
        (Duration(2, "week"), D(2026, 3, 19), D(2026, 5, 1)),
        (Duration(1, "week"), D(2026, 12, 25), D(2027, 1, 1)),
        (Duration(1, "month"), D(2026, 3, 1), D(2026, 4, 1)),  # request exactly on a boundary
        (Duration(1, "month"), D(2026, 3, 2), D(2026, 5, 1)),
        (Duration(1, "month"), D(2026, 2, 28), D(2026, 4, 1)),
        (Duration(3, "month"), D(2026, 3, 1), D(2026, 6, 1)),
        (Duration(3, "month"), D(2026, 3, 31), D(2026, 7, 1)),
        # zero notice: the current period is still served to its end, the request day included
        (Duration(0, "day"), D(2026, 3, 15), D(2026, 4, 1)),
        (Duration(0, "day"), D(2026, 3, 1), D(2026, 4, 1)),
        (Duration(0, "day"), D(2026, 3, 31), D(2026, 4, 1)),
        (Duration(1, "day"), D(2026, 3, 31), D(2026, 4, 1)),
        (Duration(2, "day"), D(2026, 3, 31), D(2026, 5, 1)),
    ],
)
def test_cancel_with_notice_ends_at_the_next_period_end(notice, requested, expected):
    assert cancel(requested, notice=notice) == expected


def test_notice_on_a_month_end_anchored_contract():
    start = D(2026, 1, 31)
    assert cancel(D(2026, 1, 31), start=start) == D(2026, 2, 28)  # 1 month from 31 Jan → 28 Feb
    assert cancel(D(2026, 2, 28), start=start) == D(2026, 3, 31)  # earliest 28 Mar
    assert cancel(D(2026, 3, 31), start=start) == D(2026, 4, 30)
    assert cancel(D(2026, 4, 30), start=start) == D(2026, 5, 31)  # earliest 30 May
    assert cancel(D(2028, 1, 31), start=D(2028, 1, 31), notice=NO_NOTICE) == D(2028, 2, 29)


def test_notice_on_longer_billing_periods():
    # quarterly from 15 Jan: boundaries 15 Apr, 15 Jul, 15 Oct
    assert cancel(D(2026, 3, 15), start=D(2026, 1, 15), months=3) == D(2026, 4, 15)
    assert cancel(D(2026, 3, 16), start=D(2026, 1, 15), months=3) == D(2026, 7, 15)
    # yearly from 1 Jan 2026
    assert cancel(D(2026, 3, 1), months=12) == D(2027, 1, 1)
    assert cancel(D(2026, 12, 1), months=12) == D(2027, 1, 1)
    assert cancel(D(2026, 12, 2), months=12) == D(2028, 1, 1)
    # yearly from a leap day
    assert cancel(D(2028, 3, 1), start=D(2028, 2, 29), months=12) == D(2029, 2, 28)


# --- cancellation: minimum term -----------------------------------------------------------------


def test_twelve_month_minimum_term_cancelled_in_month_two_ends_after_month_twelve():
    end = cancel(D(2026, 2, 10), minimum_term=Duration(12, "month"))
    assert end == D(2027, 1, 1)
    assert last_day_covered(end) == D(2026, 12, 31)


def test_minimum_term_no_longer_matters_once_served():
    term = Duration(12, "month")
    assert cancel(D(2026, 11, 30), minimum_term=term) == D(2027, 1, 1)  # notice reaches 30 Dec
    assert cancel(D(2026, 12, 1), minimum_term=term) == D(2027, 1, 1)  # both reach 1 Jan
    assert cancel(D(2026, 12, 5), minimum_term=term) == D(2027, 2, 1)  # notice wins
    assert cancel(D(2027, 6, 10), minimum_term=term) == D(2027, 8, 1)


def test_minimum_term_counts_from_the_billing_start_after_a_trial():
    # trial 1–14 June, billing from 15 June: term ends 15 June 2027
    end = cancel(D(2026, 7, 1), start=START, trial=TRIAL_END, minimum_term=Duration(12, "month"))
    assert end == D(2027, 6, 15)
    assert last_day_covered(end) == D(2027, 6, 14)


def test_minimum_term_in_days_rounds_up_to_a_period_end():
    # 90 days from 1 Jan → 1 Apr 2026 is a boundary; 100 days → 11 Apr → 1 May
    assert cancel(D(2026, 1, 5), minimum_term=Duration(90, "day")) == D(2026, 4, 1)
    assert cancel(D(2026, 1, 5), minimum_term=Duration(100, "day")) == D(2026, 5, 1)


def test_cancel_before_a_future_start_still_serves_the_first_period():
    assert cancel(D(2026, 6, 1), start=D(2026, 7, 1), notice=NO_NOTICE) == D(2026, 8, 1)


boundary_anchors = st.dates(min_value=D(2000, 1, 1), max_value=D(2150, 12, 31))
durations = st.one_of(
    st.builds(Duration, st.integers(0, 400), st.just("day")),
    st.builds(Duration, st.integers(0, 20), st.just("week")),
    st.builds(Duration, st.integers(0, 24), st.just("month")),
)


@given(
    boundary_anchors,
    st.sampled_from([1, 3, 6, 12]),
    durations,
    st.one_of(st.none(), durations),
    st.integers(0, 2000),
)
def test_cancellation_end_is_the_earliest_boundary_satisfying_every_rule(
    anchor, months, notice, term, offset
):
    requested = anchor + timedelta(days=offset)
    end = cancel(requested, start=anchor, months=months, notice=notice, minimum_term=term)

    def allowed(boundary):
        return (
            boundary > requested
            and boundary >= notice.add_to(requested)
            and (term is None or boundary >= term.add_to(anchor))
        )

    assert period_at(anchor, months, end).start == end  # a period boundary
    assert allowed(end)
    previous = period_at(anchor, months, end - DAY).start
    assert previous == anchor or not allowed(previous)
    # runs at least until the end of the period the request falls in
    assert end >= period_at(anchor, months, requested).end


# --- withdrawal -------------------------------------------------------------------------------


def test_cancellation_can_be_withdrawn_until_it_takes_effect():
    end = D(2026, 8, 1)
    assert can_withdraw_cancellation(end, D(2026, 6, 10))
    assert can_withdraw_cancellation(end, D(2026, 7, 31))  # the last day covered
    assert can_withdraw_cancellation(end, datetime(2026, 7, 31, 23, 59, tzinfo=UTC))
    assert not can_withdraw_cancellation(end, D(2026, 8, 1))
    assert not can_withdraw_cancellation(end, datetime(2026, 8, 1, 0, 0, tzinfo=UTC))
    assert not can_withdraw_cancellation(end, D(2027, 1, 1))
    assert not can_withdraw_cancellation(None, D(2026, 6, 10))


def test_a_trial_cancellation_can_be_withdrawn_through_the_last_trial_day():
    assert can_withdraw_cancellation(TRIAL_END, D(2026, 6, 14))
    assert not can_withdraw_cancellation(TRIAL_END, D(2026, 6, 15))


# --- next billing date --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trial", "months", "today", "end", "expected"),
    [
        (TRIAL_END, 1, D(2026, 6, 1), None, D(2026, 6, 15)),
        (TRIAL_END, 1, D(2026, 6, 14), None, D(2026, 6, 15)),
        (TRIAL_END, 1, D(2026, 6, 15), None, D(2026, 7, 15)),  # billed today: next is July
        (TRIAL_END, 1, D(2026, 7, 14), None, D(2026, 7, 15)),
        (None, 1, D(2026, 6, 1), None, D(2026, 7, 1)),
        (None, 12, D(2026, 6, 1), None, D(2027, 6, 1)),
        (None, 3, D(2026, 8, 31), None, D(2026, 9, 1)),
        (None, 1, D(2026, 6, 20), D(2026, 8, 1), D(2026, 7, 1)),
        (None, 1, D(2026, 7, 1), D(2026, 8, 1), None),  # the July period is the last
        (None, 1, D(2026, 8, 5), D(2026, 8, 1), None),  # ended
        (TRIAL_END, 1, D(2026, 6, 3), TRIAL_END, None),  # cancelled during the trial
    ],
)
def test_next_billing_date(trial, months, today, end, expected):
    assert next_billing_date(START, trial, months, today, end) == expected


def test_next_billing_date_on_a_31st_anchor():
    start = D(2026, 1, 31)
    assert next_billing_date(start, None, 1, D(2026, 2, 1), None) == D(2026, 2, 28)
    assert next_billing_date(start, None, 1, D(2026, 2, 28), None) == D(2026, 3, 31)
    assert next_billing_date(start, None, 1, D(2028, 2, 1), None) == D(2028, 2, 29)


# --- periods due ------------------------------------------------------------------------------


def test_nothing_is_due_before_the_billing_start():
    assert billing_due_periods(TRIAL_END, 1, None, D(2026, 6, 14), None) == []


def test_the_first_period_is_due_on_the_billing_start():
    assert billing_due_periods(TRIAL_END, 1, None, D(2026, 6, 15), None) == [
        Period(D(2026, 6, 15), D(2026, 7, 15)),
    ]


def test_missed_runs_catch_up_in_order():
    due = billing_due_periods(D(2026, 1, 31), 1, D(2026, 1, 31), D(2026, 4, 30), None)
    assert due == [
        Period(D(2026, 2, 28), D(2026, 3, 31)),
        Period(D(2026, 3, 31), D(2026, 4, 30)),
        Period(D(2026, 4, 30), D(2026, 5, 31)),
    ]


def test_billing_again_after_recording_the_last_period_returns_nothing():
    anchor, today = D(2026, 1, 1), D(2026, 3, 10)
    due = billing_due_periods(anchor, 1, None, today, None)
    assert [p.start for p in due] == [D(2026, 1, 1), D(2026, 2, 1), D(2026, 3, 1)]
    assert billing_due_periods(anchor, 1, due[-1].start, today, None) == []
    assert billing_due_periods(anchor, 1, due[-1].start, D(2026, 3, 31), None) == []
    assert billing_due_periods(anchor, 1, due[-1].start, D(2026, 4, 1), None) == [
        Period(D(2026, 4, 1), D(2026, 5, 1)),
    ]


def test_nothing_is_due_from_the_end_on():
    end = D(2026, 4, 1)
    assert billing_due_periods(D(2026, 1, 1), 1, D(2026, 3, 1), D(2026, 6, 1), end) == []
    assert [p.start for p in billing_due_periods(D(2026, 1, 1), 1, None, D(2026, 6, 1), end)] == [
        D(2026, 1, 1),
        D(2026, 2, 1),
        D(2026, 3, 1),
    ]


def test_an_end_off_the_boundary_cuts_the_last_period():
    due = billing_due_periods(D(2026, 1, 1), 3, None, D(2026, 6, 1), D(2026, 5, 15))
    assert due == [Period(D(2026, 1, 1), D(2026, 4, 1)), Period(D(2026, 4, 1), D(2026, 5, 15))]


def test_billing_due_periods_accepts_an_aware_datetime():
    now = datetime(2026, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-2)))  # 1 Feb UTC
    assert [p.start for p in billing_due_periods(D(2026, 1, 1), 1, D(2026, 1, 1), now, None)] == [
        D(2026, 2, 1),
    ]


@given(
    boundary_anchors,
    st.sampled_from([1, 2, 3, 6, 12]),
    st.lists(st.integers(0, 200), min_size=1, max_size=8),
    st.one_of(st.none(), st.integers(1, 50)),
)
def test_billing_runs_are_idempotent_and_add_up_to_one_catch_up(anchor, months, steps, end_in):
    end = None if end_in is None else add_months(anchor, end_in)
    last, billed, today = None, [], anchor - DAY
    for step in steps:
        today += timedelta(days=step)
        due = billing_due_periods(anchor, months, last, today, end)
        billed += due
        if due:
            last = due[-1].start
        # the same run again, after recording, bills nothing
        assert billing_due_periods(anchor, months, last, today, end) == []
    assert billed == billing_due_periods(anchor, months, None, today, end)
    # no gaps, no overlaps, nothing ahead of time, nothing from the end on
    for earlier, later in pairwise(billed):
        assert earlier.end == later.start
    assert all(p.start <= today for p in billed)
    assert end is None or all(p.end <= end for p in billed)
    if billed:
        assert billed[0].start == anchor
