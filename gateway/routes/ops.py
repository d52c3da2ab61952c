"""Ops endpoints: liveness, readiness (every service over RPC), Prometheus metrics."""
from __future__ import annotations

import time

import eventlet
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from .. import web
from ..http import route

SERVICES = ("signup", "portal", "tokens", "notifications", "documents")


class OpsRoutes:
    # -- ops ---------------------------------------------------------------------------------------
    @route("GET", "/healthz")
    def healthz(self, request):
        return web.json_response({"status": "ok"})

    @route("GET", "/healthz/rpc")
    def healthz_rpc(self, request):
        """Alive through the broker: one no-op RPC round trip (also the benchmarks' ceiling)."""
        return web.json_response({"status": "ok", "rpc": self.tokens_rpc.ping()})

    @route("GET", "/readyz")
    def readyz(self, request):
        """Ready when every service answers its health RPC within 3 s (broker + databases)."""
        checks = self._service_health(timeout=3.0)
        ready = all(c.get("status") == "ok" for c in checks.values())
        return web.json_response({"status": "ok" if ready else "unavailable",
                                  "services": checks}, 200 if ready else 503)

    @route("GET", "/metrics")
    def metrics(self, request):
        for service, check in self._service_health(timeout=2.0).items():
            web.SERVICE_UP.labels(service).set(1 if check.get("status") == "ok" else 0)
            if "outbox_pending" in check:
                web.OUTBOX_PENDING.labels(service).set(check["outbox_pending"])
        return Response(generate_latest(web.registry), mimetype=CONTENT_TYPE_LATEST)

    def _service_health(self, timeout: float) -> dict:
        replies = {}
        for service in SERVICES:
            replies[service] = getattr(self, f"{service}_rpc").health.call_async()
        checks = {}
        deadline = time.monotonic() + timeout
        for service, reply in replies.items():
            try:
                with eventlet.Timeout(max(deadline - time.monotonic(), 0.01)):
                    checks[service] = reply.result()
            except (Exception, eventlet.Timeout) as exc:
                checks[service] = {"status": "unavailable", "error": type(exc).__name__}
        return checks

