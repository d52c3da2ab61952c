"""Rendering off the eventlet hub: a pool of worker processes, awaited cooperatively.

A PDF takes milliseconds of pure-Python CPU (fpdf2). Done on the hub, it would stall every
green thread of the service — AMQP heartbeats included — for that long; done in a thread, it
would still hold the GIL and use one core. So the service keeps ``RENDER_WORKERS`` processes
(``python -m services.documents.render_worker``, default one per CPU) and talks to each over a
socket pair: the parent's end is an eventlet green socket, so waiting for a PDF yields to the
hub like any other network read. Each worker renders one job at a time; a job waits for a
free worker (a green queue). A worker that dies is replaced and its job fails (the handler's
retry renders it again).

``RENDER_WORKERS: 0`` renders in a native thread instead (``eventlet.tpool``): no processes to
start (handy for small tests), the hub still runs between GIL switches, but only one core works.
"""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import eventlet
import eventlet.queue
from eventlet import tpool
from eventlet.queue import LightQueue
from nameko.extensions import DependencyProvider

from . import render_worker

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]


class RenderError(Exception):
    """A job the renderer refused or could not finish."""


class _Worker:
    def __init__(self, start_timeout: float):
        parent, child = socket.socketpair()
        self.sock = parent
        self.jobs = 0
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.documents.render_worker", str(child.fileno())],
            pass_fds=[child.fileno()], cwd=str(ROOT), env=env)
        child.close()
        with eventlet.Timeout(start_timeout, RenderError("a render worker did not start")):
            ready = render_worker.recv_frame(self.sock)
        if not ready.get("ready"):
            raise RenderError(f"a render worker answered {ready!r} instead of ready")

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        render_worker.send_frame(self.sock, job)
        answer = render_worker.recv_frame(self.sock)
        self.jobs += 1
        return answer

    def close(self, timeout: float = 5) -> None:
        try:
            self.sock.close()
        finally:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class RenderPool:
    """``pool.render(job)`` → the worker's answer; raises ``RenderError`` on a failed job."""

    def __init__(self, workers: int, *, start_timeout: float = 60):
        if workers < 1:
            raise ValueError("a render pool needs at least one worker")
        self.size = workers
        self.start_timeout = start_timeout
        self.idle: LightQueue = LightQueue()
        self.workers: list[_Worker] = []
        self.stopped = False

    def start(self, wait: bool = True) -> RenderPool:
        """Start the workers (about half a second each, in parallel); with ``wait=False`` in
        the background, so the service is up at once and the first job waits for a worker."""
        started = time.monotonic()
        threads = [eventlet.spawn(self._spawn_one) for _ in range(self.size)]
        if wait:
            for thread in threads:
                thread.wait()
            log.info("%d render workers ready in %.1f s", len(self.workers),
                     time.monotonic() - started)
        return self

    def render(self, job: dict[str, Any]) -> dict[str, Any]:
        if self.stopped:
            raise RenderError("the render pool is stopped")
        try:
            worker = self.idle.get(timeout=self.start_timeout)
        except eventlet.queue.Empty:
            raise RenderError("no render worker became free in time") from None
        try:
            answer = worker.run(job)
        except (EOFError, OSError) as exc:
            log.error("a render worker died (%s); starting another", exc)
            self._replace(worker)
            raise RenderError(f"the render worker died: {exc}") from exc
        except BaseException:
            # interrupted mid-frame (timeout, kill): the socket's state is unknown
            self._replace(worker)
            raise
        self.idle.put(worker)
        if "error" in answer:
            raise RenderError(answer["error"])
        return answer

    def _replace(self, worker: _Worker) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
        worker.process.kill()
        worker.close(timeout=1)
        if not self.stopped:
            eventlet.spawn_n(self._spawn_one)

    def _spawn_one(self) -> None:
        try:
            worker = _Worker(self.start_timeout)
        except Exception:
            log.exception("could not start a render worker")
            return
        if self.stopped:
            worker.close()
            return
        self.workers.append(worker)
        self.idle.put(worker)

    def stop(self) -> None:
        self.stopped = True
        for worker in list(self.workers):
            worker.close()
        self.workers.clear()

    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self.workers]


class InlineRenderer:
    """``RENDER_WORKERS: 0``: render in eventlet's native thread pool (one core)."""

    size = 0

    def start(self, wait: bool = True) -> InlineRenderer:
        # imported here, on the hub's thread: not for the first time inside a native thread
        from . import content, rendering  # noqa: F401

        if wait:
            tpool.execute(render_worker.load_fonts)
        return self

    def render(self, job: dict[str, Any]) -> dict[str, Any]:
        try:
            return tpool.execute(render_worker.render_job, job)
        except Exception as exc:
            raise RenderError(f"{type(exc).__name__}: {exc}") from exc

    def stop(self) -> None:
        pass


def default_workers() -> int:
    return os.cpu_count() or 1


class Renderer(DependencyProvider):
    """``renderer = Renderer()``: workers get the pool's ``render(job)``.

    Config ``RENDER_WORKERS`` (default: the CPU count; 0 renders in a native thread).
    """

    def setup(self):
        raw = self.container.config.get("RENDER_WORKERS")
        workers = default_workers() if raw in (None, "") else int(raw)
        self.pool = RenderPool(workers) if workers > 0 else InlineRenderer()

    def start(self):
        self.pool.start(wait=False)

    def stop(self):
        self.pool.stop()

    def kill(self):
        self.pool.stop()

    def get_dependency(self, worker_ctx):
        return self.pool
