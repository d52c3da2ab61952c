"""The lifecycle timer's date rules: when a contract next needs it, and the current period."""
from datetime import date as D

import pytest

from services.common.periods import Period
from services.portal.domain import current_period, next_lifecycle_date


@pytest.mark.parametrize(("last_billed", "end", "ended", "expected"), [
    (None, None, None, D(2026, 1, 31)),  # nothing billed: the anchor
    (D(2026, 1, 31), None, None, D(2026, 2, 28)),  # month-end anchor clamps
    (D(2026, 2, 28), None, None, D(2026, 3, 31)),  # ... and returns to the 31st
    (D(2026, 2, 28), D(2026, 3, 31), None, D(2026, 3, 31)),  # the end is the next period start
    (D(2026, 1, 31), D(2026, 2, 28), None, D(2026, 2, 28)),
    (None, D(2026, 1, 31), None, D(2026, 1, 31)),  # cancelled in the trial: end = anchor
    (D(2026, 2, 28), D(2026, 3, 31), D(2026, 3, 31), None),  # ended: never again
])
def test_next_lifecycle_date(last_billed, end, ended, expected):
    assert next_lifecycle_date(D(2026, 1, 31), 1, last_billed, end, ended) == expected


def test_current_period():
    anchor = D(2026, 1, 15)
    assert current_period(anchor, 1, D(2026, 1, 14), None) is None  # still in the trial
    assert current_period(anchor, 1, D(2026, 1, 15), None) == Period(D(2026, 1, 15),
                                                                     D(2026, 2, 15))
    assert current_period(anchor, 3, D(2026, 5, 1), None) == Period(D(2026, 4, 15),
                                                                    D(2026, 7, 15))
    assert current_period(anchor, 3, D(2026, 5, 1), D(2026, 6, 1)) == Period(D(2026, 4, 15),
                                                                            D(2026, 6, 1))
    assert current_period(anchor, 1, D(2026, 6, 1), D(2026, 6, 1)) is None  # ended
