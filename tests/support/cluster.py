"""All of Portico as processes, for e2e tests and benchmarks.

``Cluster`` creates a RabbitMQ vhost, a temporary ``var/``, migrates every service's SQLite
database, starts the five services and the gateway on a free port with
``python -m services.common.runner``, and waits for ``/readyz``. ``stop()`` sends SIGTERM and
deletes the vhost.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import string
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import requests

from services.common import migrate, topology

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("signup", "portal", "tokens", "notifications", "documents")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Cluster:
    def __init__(self, rabbit_manager, amqp_uri: str, var: Path, *, services=SERVICES,
                 env: dict | None = None):
        self.rabbit_manager = rabbit_manager
        self.base_amqp_uri = amqp_uri
        self.var = Path(var)
        self.services = services
        self.extra_env = env or {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.vhost = "portico_e2e_" + "".join(secrets.choice(string.ascii_lowercase)
                                              for _ in range(10))
        parts = urlparse(amqp_uri)
        self.amqp_uri = f"{parts.scheme}://{parts.netloc}/{self.vhost}"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.secret_key = secrets.token_urlsafe(32)

    # -- lifecycle -----------------------------------------------------------------------------
    def env(self) -> dict:
        env = dict(os.environ)
        env.update({
            "AMQP_URI": self.amqp_uri, "PORTICO_VAR": str(self.var),
            "MAIL_DIR": str(self.var / "mail"), "GATEWAY_ADDRESS": f"127.0.0.1:{self.port}",
            "PORTICO_PUBLIC_URL": self.base_url, "PORTICO_SECRET_KEY": self.secret_key,
            "BROKER_WAIT_SECONDS": "20", "LOG_LEVEL": "INFO", "OUTBOX_POLL_SECONDS": "0.5",
        })
        env.update(self.extra_env)
        return env

    def db_url(self, service: str) -> str:
        return f"sqlite:///{self.var}/{service}.sqlite3"

    def start(self) -> Cluster:
        user = urlparse(self.base_amqp_uri).username or "guest"
        self.rabbit_manager.create_vhost(self.vhost)
        self.rabbit_manager.set_vhost_permissions(self.vhost, user, ".*", ".*", ".*")
        (self.var / "log").mkdir(parents=True, exist_ok=True)
        for service in SERVICES:
            migrate.upgrade(service, self.db_url(service))
        topology.declare_all(self.amqp_uri)
        env = self.env()
        for name in (*self.services, "gateway"):
            self.start_process(name, env)
        self.wait_ready()
        return self

    def start_process(self, name: str, env: dict | None = None) -> subprocess.Popen:
        log = (self.var / "log" / f"{name}.log").open("ab")
        process = subprocess.Popen([sys.executable, "-m", "services.common.runner", name],
                                   cwd=ROOT, env=env or self.env(), stdout=log,
                                   stderr=subprocess.STDOUT)
        self.processes[name] = process
        return process

    def stop_process(self, name: str, timeout: float = 15) -> int:
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def wait_ready(self, timeout: float = 60) -> None:
        def ready():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise AssertionError(
                        f"{name} exited {process.returncode}:\n{self.log(name, 4000)}")
            try:
                return requests.get(f"{self.base_url}/readyz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, timeout, 0.2, "all services ready")

    def stop(self) -> None:
        # signal everyone first: a service waiting on another that already stopped would
        # otherwise sit out its RPC timeout
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name in list(self.processes):
            self.stop_process(name)
        try:
            self.rabbit_manager.delete_vhost(self.vhost)
        except Exception:  # noqa: S110  a leftover vhost is harmless
            pass

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self, name: str, tail: int | None = None) -> str:
        """A process's log (JSON lines); ``tail`` keeps only the last characters."""
        path = self.var / "log" / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text[-tail:] if tail else text

    # -- talking to the services ----------------------------------------------------------------
    def rpc(self, timeout: float = 30):
        from nameko.standalone.rpc import ClusterRpcProxy
        return ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=timeout)

    def make_merchant(self, **variant_overrides) -> dict:
        """A merchant with a plan and one self-service variant; keys included."""
        slug = f"m-{uuid.uuid4().hex[:12]}"
        with self.rpc() as rpc:
            created = rpc.signup.create_merchant(slug, f"Merchant {slug}", "DE", "en")
            plan = rpc.signup.create_plan(created["merchant_id"], {"name": {"en": "Pro"}})
            variant = rpc.signup.create_plan_variant(created["merchant_id"], {
                "plan_id": plan["id"], "name": {"en": "Pro monthly", "de": "Pro monatlich"},
                "currency": "EUR", "recurring_fee": "29.00", "setup_fee": "9.90",
                **variant_overrides})
        return {**created, "plan_id": plan["id"], "plan_variant_id": variant["id"]}
