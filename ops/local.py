"""``portico run``: every service and the gateway as local processes, with demo data.

Logs go to ``var/log/<service>.log`` (JSON lines). Ctrl-C (or SIGTERM) stops the processes
gracefully, then kills what is still running after 15 s.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from services.common import migrate, topology
from services.common.runner import SERVICES

from . import cli

ROOT = Path(__file__).resolve().parents[1]


def ensure_secret(var: Path) -> str:
    path = var / "secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def start_processes(env: dict, var: Path) -> dict[str, subprocess.Popen]:
    (var / "log").mkdir(parents=True, exist_ok=True)
    processes = {}
    for name in (*SERVICES, "gateway"):
        log = (var / "log" / f"{name}.log").open("ab")
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "services.common.runner", name], cwd=ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT)
    return processes


def stop_processes(processes: dict[str, subprocess.Popen], grace: float = 15.0) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes.values():
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()


def wait_ready(base_url: str, processes: dict, var: Path, deadline_seconds: float = 90) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                tail = (var / "log" / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
        try:
            if requests.get(f"{base_url}/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"Portico did not become ready within {deadline_seconds:.0f} s")


def run(port: int | None = None) -> int:
    var = ROOT / os.environ.get("PORTICO_VAR", "var")
    var.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("PORTICO_SECRET_KEY", ensure_secret(var))
    if port:
        env["GATEWAY_ADDRESS"] = f"127.0.0.1:{port}"
    os.environ.update(env)
    address = cli.service_config("gateway")["WEB_SERVER_ADDRESS"]
    base_url = f"http://{address}"
    for name in SERVICES:
        migrate.upgrade(name, cli.service_config(name)["DB_URL"])
    topology.declare_all(cli.amqp_uri())
    processes = start_processes(env, var)
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        wait_ready(base_url, processes, var)
        with cli.rpc_proxy() as rpc:
            demo = cli.seed_demo(rpc)
            portal_url = cli.demo_portal_link(rpc, demo, base_url)
        print_welcome(base_url, demo, portal_url, var)
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    print(f"portico: {name} stopped unexpectedly (exit {process.returncode}); "
                          f"see {var}/log/{name}.log", file=sys.stderr)
                    stopping = True
            time.sleep(0.5)
    except RuntimeError as exc:
        print(f"portico: {exc}", file=sys.stderr)
        return 1
    finally:
        print("\nstopping Portico …")
        stop_processes(processes)
    return 0


def print_welcome(base_url: str, demo: dict, portal_url: str | None, var: Path) -> None:
    signup_url = f"{base_url}/signup/{demo['slug']}/{demo['plan_variant_id']}"
    print(f"""
Portico is running.

  Signup page:      {signup_url}
                    {signup_url}?language=de
  Customer portal:  {portal_url or '(no contract yet: sign up first, then run `make portal-link`)'}
  API key (demo):   {demo['secret_key']}
  Try the API:      curl -s -H "Authorization: Bearer {demo['secret_key']}" \\
                         {base_url}/api/v1/plan-variants/{demo['plan_variant_id']}
  Health:           {base_url}/readyz   Metrics: {base_url}/metrics
  Sent e-mails:     {base_url}/dev/mail   (files in {var}/mail/)   Logs: {var}/log/

Press Ctrl-C to stop.
""", flush=True)
