"""Webhook rules as plain functions: which events an endpoint gets, when to retry, when to give up.

Retry schedule after a failed attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h
(about 3 days and 3 hours in all), each stretched or shrunk by up to ``jitter`` (default ±10 %)
so that a recovering receiver is not hit by every retry at once. ``429``/``503`` with
``Retry-After`` wait as long as asked instead. ``2xx`` is success; ``410 Gone`` disables the
endpoint; everything else (``3xx`` included: redirects are not followed) is a failure. After the
last retry fails the delivery is exhausted; an endpoint that has not had a success for five
days is disabled.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import random

from services.common import events

from .delivery import Result

SCHEDULE: tuple[dt.timedelta, ...] = tuple(dt.timedelta(seconds=s) for s in (
    5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600))
MAX_ATTEMPTS = len(SCHEDULE) + 1
DISABLE_AFTER_FAILING = dt.timedelta(days=5)
ROTATION_OVERLAP = dt.timedelta(hours=24)
DEFAULT_JITTER = 0.1

MERCHANT_VISIBLE: tuple[str, ...] = tuple(sorted(
    name for name, kind in events.CATALOGUE.items() if kind.merchant_visible))


def wants(event_types: list[str] | None, event: events.Event, endpoint_id: str) -> bool:
    """Does an endpoint subscribed to ``event_types`` (None: all) receive ``event``?"""
    if event.type not in MERCHANT_VISIBLE:
        return False
    if event.type == "WebhookDeliveryFailed" and event.payload.get("endpoint_id") == endpoint_id:
        return False  # an endpoint is not told about its own failures (that would loop)
    return not event_types or event.type in event_types


def retry_delay(failed_attempts: int, *, jitter: float = DEFAULT_JITTER,
                rng: random.Random | None = None) -> dt.timedelta | None:
    """Wait after the ``failed_attempts``-th failure; None when the schedule is used up."""
    if failed_attempts < 1 or failed_attempts > len(SCHEDULE):
        return None
    base = SCHEDULE[failed_attempts - 1]
    factor = 1 + (rng or random).uniform(-jitter, jitter) if jitter else 1
    return base * factor


@dataclasses.dataclass(frozen=True)
class Decision:
    status: str  # succeeded | pending | failed | cancelled
    next_attempt_at: dt.datetime | None = None
    failing_since: dt.datetime | None = None  # the endpoint's, after this attempt
    disable_reason: str | None = None
    exhausted: bool = False


def decide(result: Result, attempts: int, now: dt.datetime,
           failing_since: dt.datetime | None, *, jitter: float = DEFAULT_JITTER,
           rng: random.Random | None = None) -> Decision:
    """What follows attempt number ``attempts`` (1-based) that ended with ``result``."""
    code = result.status_code
    if code is not None and 200 <= code < 300:
        return Decision("succeeded")
    if code == 410:
        return Decision("cancelled", failing_since=failing_since,
                        disable_reason="The endpoint answered 410 Gone.")
    failing_since = failing_since or now
    disable_reason = None
    if now - failing_since >= DISABLE_AFTER_FAILING:
        disable_reason = (f"No successful delivery since {failing_since:%Y-%m-%d %H:%M} UTC "
                          "(5 days).")
    if attempts >= MAX_ATTEMPTS:
        return Decision("failed", failing_since=failing_since, disable_reason=disable_reason,
                        exhausted=True)
    if disable_reason:
        return Decision("cancelled", failing_since=failing_since, disable_reason=disable_reason)
    if code in (429, 503) and result.retry_after is not None:
        delay = dt.timedelta(seconds=max(result.retry_after, 1))
    else:
        delay = retry_delay(attempts, jitter=jitter, rng=rng)
    return Decision("pending", next_attempt_at=now + delay, failing_since=failing_since)
