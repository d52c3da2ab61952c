"""The two RPCs every service answers: ``health`` (database + outbox) and ``ping`` (nothing)."""
from __future__ import annotations

from .entrypoints import rpc


class HealthRpc:
    """Mix into a service class that has ``db = Database(...)``."""

    @rpc
    def health(self) -> dict:
        """``{"service": "portal", "status": "ok", "outbox_pending": 0}``"""
        return {"service": self.name, "status": "ok", "outbox_pending": self.db.outbox_pending()}

    @rpc
    def ping(self) -> str:
        """A no-op round trip: the benchmarks' ceiling."""
        return "pong"
