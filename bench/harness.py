"""The benchmarks' shared harness: load generators, the in-run ceiling, and the report line.

Every benchmark prints its figure next to a ceiling measured in the same run, on the same
machine, with the same load generator, and the ratio between them::

    signup POST            412.0 req/s | ceiling 790.0 req/s | ratio 0.52 (target >= 0.50)

Load generators:
- ``wrk(url, …)``: closed-loop maximum throughput (Debian's wrk; Lua for POST bodies).
- ``paced(…)``: open-loop fixed rate from green threads, for latency at a given load.
The ceiling is ``GET /healthz/rpc`` on the gateway: one HTTP request and one no-op RPC.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import eventlet
import requests

CEILING_PATH = "/healthz/rpc"


@dataclasses.dataclass
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    def __str__(self):
        return (f"{self.rps:.1f} req/s, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
                f"{self.requests} requests, {self.errors} errors")


def _ms(match) -> float:
    """A wrk latency like ``12.3ms``; NaN when wrk printed none (no request completed)."""
    parsed = match and re.fullmatch(r"([\d.]+)(us|ms|s|m)", match.group(1).strip())
    if not parsed:
        return float("nan")
    value, unit = parsed.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, *, duration: float = 8, connections: int = 16, threads: int = 1,
        method: str = "GET", body: str | None = None, headers: dict | None = None,
        lua: str | None = None) -> LoadResult:
    """Closed-loop throughput with wrk (one thread: the other core serves)."""
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is missing (make bench installs it with apt-get as root)")
    script = lua
    if script is None and (method != "GET" or body or headers):
        lines = [f'wrk.method = "{method}"']
        if body is not None:
            lines.append(f"wrk.body = {json.dumps(body)}")
        for key, value in (headers or {}).items():
            lines.append(f'wrk.headers["{key}"] = {json.dumps(value)}')
        script = "\n".join(lines)
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "--latency",
            "--timeout", "10s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        if script:
            handle.write(script)
            args += ["-s", handle.name]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    Path(handle.name).unlink(missing_ok=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = _ms(re.search(r"50%\s+(\S+)", out))
    p99 = _ms(re.search(r"99%\s+(\S+)", out))
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      out):
        errors += sum(int(g) for g in m.groups())
    return LoadResult(rps, p50, p99, total, errors)


def paced(send, *, rate: float, duration: float, concurrency: int = 200) -> LoadResult:
    """Open-loop load: call ``send()`` ``rate`` times a second for ``duration`` seconds, each
    in its own green thread; latency is measured from the scheduled start (no coordinated
    omission)."""
    pool = eventlet.GreenPool(concurrency)
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    total = int(rate * duration)

    def one(scheduled: float):
        nonlocal errors
        try:
            ok = send()
        except Exception:
            ok = False
        if not ok:
            errors += 1
        latencies.append((time.perf_counter() - scheduled) * 1000)

    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            eventlet.sleep(delay)
        pool.spawn_n(one, scheduled)
    pool.waitall()
    elapsed = time.perf_counter() - start
    return LoadResult(total / elapsed, percentile(latencies, 50), percentile(latencies, 99),
                      total, errors)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def ceiling(base_url: str, duration: float = 8) -> LoadResult:
    """Throughput of the gateway doing one no-op RPC, measured now, with wrk."""
    requests.get(base_url + CEILING_PATH, timeout=10).raise_for_status()
    return wrk(base_url + CEILING_PATH, duration=duration)


def report(name: str, figure: float, unit: str, ceiling_value: float | None = None, *,
           target: str = "", ceiling_unit: str | None = None) -> str:
    """One result line: the figure, the in-run ceiling and the ratio."""
    line = f"{name:<34} {figure:>10.1f} {unit}"
    if ceiling_value:
        line += (f" | ceiling {ceiling_value:.1f} {ceiling_unit or unit}"
                 f" | ratio {figure / ceiling_value:.2f}")
    if target:
        line += f" (target {target})"
    print(line, flush=True)
    return line


def wait_drained(rabbit_manager, vhost: str, timeout: float = 600) -> float:
    """Wait until no queue of ``vhost`` holds a message (the previous benchmark's work is
    done), so one benchmark's backlog does not load the next; return the seconds waited.

    The management API refreshes its counts every 5 s, so a queue must read empty across
    more than one refresh before it counts as drained."""
    started = time.monotonic()
    empty_since = None
    while time.monotonic() - started < timeout:
        queues = rabbit_manager.get_queues(vhost)
        empty = all(q.get("messages", 0) == 0 for q in queues if not q["name"].startswith(
            ("portico.dead-letter", "rpc.reply")))
        now = time.monotonic()
        if not empty:
            empty_since = None
        elif empty_since is None:
            empty_since = now
        elif now - empty_since >= 6:
            return now - started
        time.sleep(1)
    return time.monotonic() - started


@contextlib.contextmanager
def paused(cluster, names):
    """Freeze (SIGSTOP) the named service processes for the block, then thaw them: measures a
    request's synchronous part without the downstream work it triggers competing for the same
    cores (on a real deployment those services run elsewhere). Their queues fill meanwhile;
    ``drain`` afterwards lets them catch up."""
    frozen = [cluster.processes[name] for name in names if name in cluster.processes]
    for process in frozen:
        process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for process in frozen:
            process.send_signal(signal.SIGCONT)


def drain(cluster, what: str = "") -> None:
    """Wait for every queue to empty, saying so when it took a while."""
    waited = wait_drained(cluster.rabbit_manager, cluster.vhost)
    if waited > 8:
        print(f"  (waited {waited:.0f} s for {what or 'the work'} to drain)", flush=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(pid)


def median(values) -> float:
    return statistics.median(values)
