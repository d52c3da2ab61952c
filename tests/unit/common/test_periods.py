"""Billing period arithmetic: clamped months, half-open periods, proration, durations."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common import money
from services.common.periods import (
    Duration,
    Period,
    add_months,
    boundary_on_or_after,
    days_in_month,
    next_boundary,
    parse_duration,
    period_at,
    periods_between,
    prorate,
    prorated_change,
)

D = date
JUNE = Period(D(2026, 6, 1), D(2026, 7, 1))

dates = st.dates(min_value=D(1990, 1, 1), max_value=D(2200, 12, 31))
months_st = st.sampled_from([1, 2, 3, 6, 12, 24])


# --- add_months -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "n", "anchor", "expected"),
    [
        (D(2026, 1, 31), 1, None, D(2026, 2, 28)),
        (D(2028, 1, 31), 1, None, D(2028, 2, 29)),  # leap year
        (D(2100, 1, 31), 1, None, D(2100, 2, 28)),  # 2100 is not a leap year
        (D(2000, 1, 31), 1, None, D(2000, 2, 29)),  # 2000 is
        (D(2026, 1, 31), 2, None, D(2026, 3, 31)),
        (D(2026, 1, 31), 3, None, D(2026, 4, 30)),
        (D(2026, 2, 28), 1, 31, D(2026, 3, 31)),  # back to the anchor day
        (D(2026, 2, 28), 1, None, D(2026, 3, 28)),  # without the anchor it stays on the 28th
        (D(2026, 4, 30), 1, 31, D(2026, 5, 31)),
        (D(2026, 1, 30), 1, None, D(2026, 2, 28)),
        (D(2026, 1, 29), 1, None, D(2026, 2, 28)),
        (D(2028, 1, 29), 1, None, D(2028, 2, 29)),
        (D(2028, 2, 29), 12, None, D(2029, 2, 28)),
        (D(2028, 2, 29), 48, None, D(2032, 2, 29)),
        (D(2026, 11, 15), 2, None, D(2027, 1, 15)),  # year rollover
        (D(2026, 12, 31), 1, None, D(2027, 1, 31)),
        (D(2026, 3, 31), -1, None, D(2026, 2, 28)),  # negative
        (D(2028, 3, 31), -1, None, D(2028, 2, 29)),
        (D(2026, 1, 15), -1, None, D(2025, 12, 15)),
        (D(2026, 1, 31), -13, None, D(2024, 12, 31)),
        (D(2026, 2, 28), -1, 31, D(2026, 1, 31)),
        (D(2026, 5, 17), 0, None, D(2026, 5, 17)),
        (D(2026, 2, 28), 0, 31, D(2026, 2, 28)),
    ],
)
def test_add_months_clamps_to_month_end_relative_to_the_anchor(start, n, anchor, expected):
    assert add_months(start, n, anchor) == expected


@pytest.mark.parametrize("anchor", [0, 32, -1])
def test_add_months_refuses_impossible_anchor_days(anchor):
    with pytest.raises(ValueError):
        add_months(D(2026, 1, 1), 1, anchor)


def test_a_31st_anchor_visits_every_month_end_without_drifting():
    anchor = D(2027, 12, 31)
    run = [add_months(anchor, k, 31) for k in range(1, 14)]
    assert run == [
        D(2028, 1, 31),
        D(2028, 2, 29),
        D(2028, 3, 31),
        D(2028, 4, 30),
        D(2028, 5, 31),
        D(2028, 6, 30),
        D(2028, 7, 31),
        D(2028, 8, 31),
        D(2028, 9, 30),
        D(2028, 10, 31),
        D(2028, 11, 30),
        D(2028, 12, 31),
        D(2029, 1, 31),
    ]


@given(dates, st.integers(-600, 600), st.integers(-600, 600))
def test_add_months_composes_when_anchored(d, n, m):
    assert add_months(add_months(d, n, d.day), m, d.day) == add_months(d, n + m)


@given(dates, st.integers(-600, 600))
def test_add_months_lands_in_the_right_month_on_the_clamped_day(d, n):
    result = add_months(d, n)
    assert (result.year * 12 + result.month) - (d.year * 12 + d.month) == n
    assert result.day == d.day or (result.day < d.day and (result + timedelta(days=1)).day == 1)


# --- Period -----------------------------------------------------------------------------------


def test_period_is_half_open():
    assert JUNE.days == 30
    assert JUNE.contains(D(2026, 6, 1))
    assert JUNE.contains(D(2026, 6, 30))
    assert not JUNE.contains(D(2026, 7, 1))
    assert not JUNE.contains(D(2026, 5, 31))
    assert JUNE.last_day == D(2026, 6, 30)


def test_period_days_in_february():
    assert Period(D(2028, 2, 1), D(2028, 3, 1)).days == 29
    assert Period(D(2100, 2, 1), D(2100, 3, 1)).days == 28


def test_period_refuses_empty_ranges_and_datetimes():
    with pytest.raises(ValueError):
        Period(D(2026, 6, 1), D(2026, 6, 1))
    with pytest.raises(ValueError):
        Period(D(2026, 7, 1), D(2026, 6, 1))
    with pytest.raises(TypeError):
        Period(datetime(2026, 6, 1), D(2026, 7, 1))


def test_period_overlap_days():
    assert JUNE.overlap_days(D(2026, 6, 16), D(2026, 8, 1)) == 15
    assert JUNE.overlap_days(D(2026, 5, 1), D(2026, 6, 1)) == 0
    assert JUNE.overlap_days(D(2026, 5, 1), D(2026, 9, 1)) == 30


# --- period_at / boundaries -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "months", "at", "expected"),
    [
        (D(2026, 1, 1), 1, D(2026, 1, 1), Period(D(2026, 1, 1), D(2026, 2, 1))),
        (D(2026, 1, 1), 1, D(2026, 1, 31), Period(D(2026, 1, 1), D(2026, 2, 1))),
        (D(2026, 1, 1), 1, D(2026, 2, 1), Period(D(2026, 2, 1), D(2026, 3, 1))),
        (D(2026, 1, 31), 1, D(2026, 2, 27), Period(D(2026, 1, 31), D(2026, 2, 28))),
        (D(2026, 1, 31), 1, D(2026, 2, 28), Period(D(2026, 2, 28), D(2026, 3, 31))),
        (D(2026, 1, 31), 1, D(2026, 3, 30), Period(D(2026, 2, 28), D(2026, 3, 31))),
        (D(2026, 1, 31), 1, D(2026, 3, 31), Period(D(2026, 3, 31), D(2026, 4, 30))),
        (D(2028, 1, 30), 1, D(2028, 2, 29), Period(D(2028, 2, 29), D(2028, 3, 30))),
        (D(2028, 2, 29), 12, D(2029, 2, 28), Period(D(2029, 2, 28), D(2030, 2, 28))),
        (D(2028, 2, 29), 12, D(2032, 3, 1), Period(D(2032, 2, 29), D(2033, 2, 28))),
        (D(2026, 1, 15), 3, D(2026, 4, 14), Period(D(2026, 1, 15), D(2026, 4, 15))),
        (D(2026, 1, 15), 3, D(2026, 4, 15), Period(D(2026, 4, 15), D(2026, 7, 15))),
        (D(2026, 1, 15), 12, D(2027, 1, 14), Period(D(2026, 1, 15), D(2027, 1, 15))),
        (D(2026, 3, 31), 1, D(2026, 3, 30), Period(D(2026, 2, 28), D(2026, 3, 31))),  # before
        (D(2026, 3, 31), 3, D(2025, 12, 31), Period(D(2025, 12, 31), D(2026, 3, 31))),
    ],
)
def test_period_at(anchor, months, at, expected):
    assert period_at(anchor, months, at) == expected


@given(dates, months_st, dates)
def test_period_at_contains_the_day_and_adjoins_its_neighbours(anchor, months, at):
    period = period_at(anchor, months, at)
    assert period.contains(at)
    assert period_at(anchor, months, period.end).start == period.end
    before = period_at(anchor, months, period.start - timedelta(days=1))
    assert before.end == period.start
    for boundary in (period.start, period.end):
        month_length = days_in_month(boundary.year, boundary.month)
        assert boundary.day == min(anchor.day, month_length)


def test_period_length_must_be_whole_months():
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError):
            period_at(D(2026, 1, 1), bad, D(2026, 1, 1))


def test_next_boundary_is_strictly_after():
    assert next_boundary(D(2026, 1, 31), 1, D(2026, 2, 27)) == D(2026, 2, 28)
    assert next_boundary(D(2026, 1, 31), 1, D(2026, 2, 28)) == D(2026, 3, 31)
    assert next_boundary(D(2026, 1, 1), 12, D(2026, 1, 1)) == D(2027, 1, 1)


def test_boundary_on_or_after_keeps_a_boundary():
    assert boundary_on_or_after(D(2026, 1, 31), 1, D(2026, 2, 28)) == D(2026, 2, 28)
    assert boundary_on_or_after(D(2026, 1, 31), 1, D(2026, 3, 1)) == D(2026, 3, 31)
    assert boundary_on_or_after(D(2026, 1, 1), 3, D(2026, 2, 10)) == D(2026, 4, 1)


def test_periods_between_returns_whole_overlapping_periods():
    assert periods_between(D(2026, 1, 31), 1, D(2026, 2, 10), D(2026, 4, 30)) == [
        Period(D(2026, 1, 31), D(2026, 2, 28)),
        Period(D(2026, 2, 28), D(2026, 3, 31)),
        Period(D(2026, 3, 31), D(2026, 4, 30)),
    ]
    # the end is exclusive: a range ending on a boundary does not reach the next period
    assert periods_between(D(2026, 1, 1), 1, D(2026, 1, 1), D(2026, 2, 1)) == [
        Period(D(2026, 1, 1), D(2026, 2, 1)),
    ]
    assert periods_between(D(2026, 1, 1), 1, D(2026, 3, 1), D(2026, 3, 1)) == []


# --- proration --------------------------------------------------------------------------------


def test_prorate_by_days():
    assert prorate(Decimal("30.00"), JUNE, D(2026, 6, 16), D(2026, 7, 1), "EUR") == Decimal("15.00")
    assert prorate(Decimal("30.00"), JUNE, D(2026, 6, 1), D(2026, 7, 1), "EUR") == Decimal("30.00")
    assert prorate(Decimal("30.00"), JUNE, D(2026, 6, 30), D(2026, 7, 1), "EUR") == Decimal("1.00")


def test_prorate_clips_to_the_period():
    assert prorate(Decimal("30.00"), JUNE, D(2026, 5, 1), D(2026, 6, 11), "EUR") == Decimal("10.00")
    assert prorate(Decimal("30.00"), JUNE, D(2026, 7, 1), D(2026, 8, 1), "EUR") == Decimal("0.00")
    assert prorate(Decimal("30.00"), JUNE, D(2026, 6, 20), D(2026, 6, 10), "EUR") == Decimal("0.00")


def test_prorate_rounds_to_the_currency_and_splits_exactly():
    # 10.00 over 3 × 10 days of June: 3.33 + 3.34 + 3.33 (cumulative rounding), sum 10.00
    parts = [
        prorate(Decimal("10.00"), JUNE, D(2026, 6, 1), D(2026, 6, 11), "EUR"),
        prorate(Decimal("10.00"), JUNE, D(2026, 6, 11), D(2026, 6, 21), "EUR"),
        prorate(Decimal("10.00"), JUNE, D(2026, 6, 21), D(2026, 7, 1), "EUR"),
    ]
    assert parts == [Decimal("3.33"), Decimal("3.34"), Decimal("3.33")]
    assert sum(parts) == Decimal("10.00")
    assert prorate(Decimal("1000"), JUNE, D(2026, 6, 1), D(2026, 6, 11), "JPY") == Decimal("333")
    assert prorate(Decimal("1.000"), JUNE, D(2026, 6, 1), D(2026, 6, 11), "KWD") == Decimal("0.333")


def test_prorate_february_of_a_leap_year():
    feb = Period(D(2028, 2, 1), D(2028, 3, 1))
    assert prorate(Decimal("29.00"), feb, D(2028, 2, 29), D(2028, 3, 1), "EUR") == Decimal("1.00")


amounts = st.builds(
    lambda minor, extra: Decimal(minor).scaleb(-2) + Decimal(extra).scaleb(-4),
    st.integers(-(10**9), 10**9),
    st.integers(0, 99),
)
currencies = st.sampled_from(["EUR", "JPY", "KWD", "CHF"])


@given(amounts, dates, months_st, st.data(), currencies)
def test_prorate_never_loses_or_invents_a_cent_across_a_split(amount, anchor, months, data, cur):
    period = period_at(anchor, months, anchor)
    x = data.draw(st.dates(min_value=period.start, max_value=period.end))
    left = prorate(amount, period, period.start, x, cur)
    right = prorate(amount, period, x, period.end, cur)
    assert left + right == money.quantize(amount, cur)
    assert left == money.quantize(left, cur) and right == money.quantize(right, cur)


@given(amounts, dates, months_st, st.data(), currencies)
def test_prorate_any_number_of_pieces_adds_up(amount, anchor, months, data, cur):
    period = period_at(anchor, months, anchor)
    cuts = sorted(
        data.draw(st.lists(st.dates(min_value=period.start, max_value=period.end), max_size=8))
    )
    edges = [period.start, *cuts, period.end]
    pieces = [prorate(amount, period, a, b, cur) for a, b in pairwise(edges)]
    assert sum(pieces, Decimal(0)) == money.quantize(amount, cur)


@given(st.integers(0, 10**8), dates, months_st, st.data())
def test_prorate_is_close_to_the_exact_share(minor, anchor, months, data):
    amount = Decimal(minor).scaleb(-2)
    period = period_at(anchor, months, anchor)
    start = data.draw(st.dates(min_value=period.start, max_value=period.end))
    share = prorate(amount, period, start, period.end, "EUR")
    exact = amount * (period.end - start).days / period.days
    assert abs(share - exact) <= Decimal("0.01")


def test_prorated_change_upgrade_and_downgrade():
    mid = D(2026, 6, 16)
    assert prorated_change(Decimal("30"), Decimal("60"), JUNE, mid, "EUR") == Decimal("15.00")
    assert prorated_change(Decimal("60"), Decimal("30"), JUNE, mid, "EUR") == Decimal("-15.00")
    assert prorated_change(Decimal("30"), Decimal("30"), JUNE, mid, "EUR") == Decimal("0.00")
    # switching on the first day swaps the whole period's price
    assert prorated_change(
        Decimal("9.99"), Decimal("19.99"), JUNE, D(2026, 6, 1), "EUR"
    ) == Decimal("10.00")


def test_prorated_change_outside_the_period_is_refused():
    with pytest.raises(ValueError):
        prorated_change(Decimal("30"), Decimal("60"), JUNE, D(2026, 7, 1), "EUR")


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("30 days", Duration(30, "day")),
        ("1 day", Duration(1, "day")),
        ("1 month", Duration(1, "month")),
        ("3 Months", Duration(3, "month")),
        ("2 weeks", Duration(2, "week")),
        ("  2week ", Duration(2, "week")),
        ("0 days", Duration(0, "day")),
        ({"value": 14, "unit": "day"}, Duration(14, "day")),
        ({"value": "6", "unit": "months"}, Duration(6, "month")),
        (Duration(1, "week"), Duration(1, "week")),
    ],
)
def test_duration_parses(raw, expected):
    assert Duration.parse(raw) == expected
    assert parse_duration(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "days",
        "30",
        "thirty days",
        "-1 day",
        "1.5 months",
        "2 years",
        "1 fortnight",
        "1 month 2 days",
        "١ day",
        {"value": 1},
        {"value": 1, "unit": "day", "x": 1},
        {"value": 1.0, "unit": "day"},
        {"value": True, "unit": "day"},
        {"value": -2, "unit": "week"},
        {"value": 2, "unit": "year"},
        None,
        30,
        ["1", "day"],
    ],
)
def test_duration_refuses_garbage(raw):
    with pytest.raises(ValueError):
        Duration.parse(raw)


def test_duration_constructor_validates():
    with pytest.raises(ValueError):
        Duration(-1, "day")
    with pytest.raises(ValueError):
        Duration(1, "year")


@pytest.mark.parametrize(
    ("duration", "start", "expected"),
    [
        (Duration(30, "day"), D(2026, 2, 1), D(2026, 3, 3)),
        (Duration(2, "week"), D(2026, 12, 25), D(2027, 1, 8)),
        (Duration(1, "month"), D(2026, 1, 31), D(2026, 2, 28)),
        (Duration(1, "month"), D(2028, 1, 31), D(2028, 2, 29)),
        (Duration(12, "month"), D(2028, 2, 29), D(2029, 2, 28)),
        (Duration(0, "month"), D(2026, 5, 5), D(2026, 5, 5)),
    ],
)
def test_duration_add_to(duration, start, expected):
    assert duration.add_to(start) == expected


def test_duration_round_trips_as_text_and_dict():
    for duration in (Duration(1, "month"), Duration(30, "day"), Duration(2, "week")):
        assert Duration.parse(str(duration)) == duration
        assert Duration.parse(duration.to_dict()) == duration
    assert str(Duration(1, "month")) == "1 month"
    assert str(Duration(2, "week")) == "2 weeks"
