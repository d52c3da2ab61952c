"""Time comes from a clock that is injected, so billing periods and token expiry are testable.

Services take ``Clock()`` as a nameko dependency; tests swap in ``FrozenClock`` (or call
``FrozenClock.advance``) instead of sleeping.
"""
from __future__ import annotations

import datetime as dt
import os

UTC = dt.UTC


class SystemClock:
    """Wall-clock UTC time. ``PORTICO_CLOCK_OFFSET_SECONDS`` shifts it (demos, e2e time travel)."""

    def __init__(self, offset_seconds: float | None = None):
        if offset_seconds is None:
            offset_seconds = float(os.environ.get("PORTICO_CLOCK_OFFSET_SECONDS", "0") or 0)
        self.offset = dt.timedelta(seconds=offset_seconds)

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC) + self.offset

    def today(self) -> dt.date:
        return self.now().date()


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, at: dt.datetime | str = "2026-01-15T09:00:00+00:00"):
        if isinstance(at, str):
            at = dt.datetime.fromisoformat(at)
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = at.astimezone(UTC)

    def now(self) -> dt.datetime:
        return self._now

    def today(self) -> dt.date:
        return self._now.date()

    def advance(self, **delta) -> dt.datetime:
        self._now += dt.timedelta(**delta)
        return self._now

    def set(self, at: dt.datetime) -> None:
        self._now = at.astimezone(UTC)


try:
    from nameko.extensions import DependencyProvider
except ImportError:  # pure-domain users (and their tests) need no nameko
    DependencyProvider = object


class Clock(DependencyProvider):
    """``clock = Clock()`` on a service: workers get ``now()``/``today()``.

    Tests set ``provider.clock = FrozenClock(...)`` on the running container (or use
    ``worker_factory(..., clock=FrozenClock())``) to move time without sleeping.
    """

    def __init__(self):
        self.clock = SystemClock()

    def get_dependency(self, worker_ctx):
        return self.clock
