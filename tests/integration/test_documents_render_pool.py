"""Rendering happens off the eventlet hub: green threads (AMQP heartbeats among them) keep
running while a batch of PDFs renders in the worker processes, and a dead worker is replaced.

Real: the worker processes (``python -m services.documents.render_worker``), fpdf2, fonts.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import time

import eventlet
import pytest

from services.documents import content, render_worker
from services.documents.document import Document, Line
from services.documents.render_pool import RenderError, RenderPool
from tests.support.cluster import wait_until
from tests.unit.documents.test_rendering import make_buyer, make_party


def heavy_job(lines: int = 400) -> dict:
    """A document that takes tens of milliseconds to render (many pages): long enough that
    the control below stalls the hub far beyond the ticker's 5 ms resolution."""
    doc = Document.build(
        kind="invoice", number="INV-2027-00001", issue_date=dt.date(2027, 1, 15),
        due_date=dt.date(2027, 1, 29), currency="EUR", seller=make_party(), buyer=make_buyer(),
        lines=[Line.of(f"Usage item {i} with a fairly long description", i + 1, "0.75", 19,
                       "EUR") for i in range(lines)])
    return {"content": content.to_content(doc), "logo": None,
            "created_at": dt.datetime(2027, 1, 15, tzinfo=dt.UTC), "einvoice": True}


class Ticker:
    """A green thread that wakes every 5 ms and records how late each wake-up was."""

    def __init__(self):
        self.gaps: list[float] = []
        self.thread = eventlet.spawn(self.run)

    def run(self):
        last = time.monotonic()
        while True:
            eventlet.sleep(0.005)
            now = time.monotonic()
            self.gaps.append(now - last)
            last = now

    def stop(self) -> list[float]:
        self.thread.kill()
        return self.gaps


@pytest.fixture(scope="module")
def pool():
    pool = RenderPool(2).start()
    yield pool
    pool.stop()


def test_the_hub_keeps_ticking_while_a_batch_renders_in_the_pool(pool):
    job = heavy_job()
    pool.render(job)  # warm both code paths (fonts, locale data)
    render_worker.render_job(job)

    # control: the same render on the hub stalls every green thread for its whole duration
    ticker = Ticker()
    eventlet.sleep(0.02)
    started = time.monotonic()
    render_worker.render_job(job)
    inline_seconds = time.monotonic() - started
    eventlet.sleep(0.02)
    inline_gap = max(ticker.stop())
    assert inline_gap >= 0.8 * inline_seconds > 0.03

    ticker = Ticker()
    started = time.monotonic()
    answers = list(eventlet.GreenPool(6).imap(lambda _: pool.render(job), range(12)))
    batch_seconds = time.monotonic() - started
    gaps = ticker.stop()

    assert all(a["pdf"].startswith(b"%PDF") and a["xml"] for a in answers)
    # the hub woke up on time throughout, though twelve renders took far longer
    assert batch_seconds > 3 * inline_seconds
    assert max(gaps) < inline_seconds / 2
    assert len(gaps) > 0.5 * batch_seconds / 0.0055


def test_a_failed_job_is_reported_and_the_worker_carries_on(pool):
    job = heavy_job(lines=1)
    job["content"]["lines"][0]["net_amount"] = "1.001"  # inconsistent: refused by Document
    with pytest.raises(RenderError, match="DocumentError"):
        pool.render(job)
    assert pool.render(heavy_job(lines=1))["pdf"].startswith(b"%PDF")


def test_a_dead_worker_is_replaced(pool):
    victim = pool.pids()[0]
    os.kill(victim, signal.SIGKILL)
    # one of the next jobs meets the dead worker and fails; the pool then starts another
    outcomes = []
    for _ in range(4):
        try:
            outcomes.append(pool.render(heavy_job(lines=1))["pdf"][:4])
        except RenderError:
            outcomes.append("failed")
    assert outcomes.count("failed") <= 1 and b"%PDF" in outcomes
    wait_until(lambda: len(pool.pids()) == 2 and victim not in pool.pids(), 30,
               what="a replacement worker")

