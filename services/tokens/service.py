"""Tokens service: time-limited self-service tokens and portal sessions."""
from __future__ import annotations

import eventlet
from nameko.dependency_providers import Config
from nameko.exceptions import MethodNotFound
from nameko.rpc import RpcProxy

from services.common.clock import Clock
from services.common.database import Database
from services.common.entrypoints import rpc, timer
from services.common.errors import PorticoError
from services.common.health import HealthRpc
from services.common.telemetry import Correlation

from . import store
from .models import Base

REQUIRED_SETTINGS = ["DB_URL", "PUBLIC_URL"]


class UpstreamTimeout(Exception):
    """The portal or signup service did not answer in time (a 500 at the gateway; the worker
    is freed instead of waiting forever, and a stopping service can drain)."""


class TokensService(HealthRpc):
    name = "tokens"

    db = Database(Base.metadata)
    correlation = Correlation()
    clock = Clock()
    config = Config()
    signup_rpc = RpcProxy("signup")
    portal_rpc = RpcProxy("portal")

    @rpc
    def mint_token(self, merchant_id: str, contract_id: str,
                   validity_minutes: int | None = None) -> dict:
        """``mint_token("m_…", "ct_…", 60)`` → ``{"token": "pt_…", "expires_at", "url"}``.

        ``validity_minutes`` 1..10080 (else ``InvalidInput``); ``None`` takes the merchant's
        default from its self-service settings. Another merchant's contract is ``NotFound``.
        """
        if validity_minutes is not None:
            store.check_validity(validity_minutes)
        with self._deadline("portal/signup"):
            contract = self.portal_rpc.verify_contract.call_async(merchant_id, contract_id)
            if validity_minutes is None:
                validity_minutes = store.default_validity(self._settings(merchant_id))
            contract.result()  # NotFound for an unknown or another merchant's contract
        return store.mint(self.db, merchant_id, contract_id, validity_minutes,
                          self.clock.now(), self.config["PUBLIC_URL"])

    @rpc
    def exchange_token(self, token: str, client_ip: str | None = None) -> dict:
        """``exchange_token("pt_…")`` → ``{"session_id", "merchant_id", "contract_id",
        "expires_at"}``; ``Unauthorized`` (malformed, unknown), ``Gone`` (expired, revoked),
        ``RateLimited`` once ``client_ip`` failed too often."""
        now = self.clock.now()
        client = store.client_key(client_ip) if client_ip else None
        limit, window = self._limits()
        if client:
            store.check_rate(self.db.session, client, now, limit, window)
        try:
            return store.exchange(self.db, token, now, self._session_minutes())
        except PorticoError:
            if client:
                self.db.session.rollback()
                store.record_failure(self.db.session, client, now, window)
                self.db.commit()  # the failure counts although the call fails
            raise

    @rpc
    def verify_session(self, session_id: str) -> dict:
        """``verify_session("ps_…")`` → ``{"merchant_id", "contract_id", "expires_at"}``;
        ``Unauthorized`` or ``Gone`` when it is unknown, expired or revoked."""
        return store.verify_session(self.db.session, session_id, self.clock.now())

    @rpc
    def end_session(self, session_id: str) -> bool:
        return store.end_session(self.db.session, session_id, self.clock.now())

    @rpc
    def revoke_contract(self, merchant_id: str, contract_id: str) -> int:
        """Revoke every token and session of the contract at once → the tokens revoked."""
        with self._deadline("portal"):
            self.portal_rpc.verify_contract(merchant_id, contract_id)
        return store.revoke_contract(self.db, merchant_id, contract_id, self.clock.now())

    @timer(interval=3600)
    def purge_expired(self):
        store.purge(self.db.session, self.clock.now(), window_seconds=self._limits()[1])

    def _deadline(self, what: str):
        seconds = float(self.config.get("RPC_TIMEOUT_SECONDS", 10))
        return eventlet.Timeout(seconds, UpstreamTimeout(f"{what} did not answer in {seconds:g} s"))

    def _settings(self, merchant_id: str) -> dict:
        try:
            return self.signup_rpc.get_settings(merchant_id) or {}
        except MethodNotFound:  # a signup service that predates self-service settings
            return {}

    def _limits(self) -> tuple[int, int]:
        return (int(self.config.get("TOKEN_FAILURE_LIMIT", 10)),
                int(self.config.get("TOKEN_FAILURE_WINDOW_SECONDS", 600)))

    def _session_minutes(self) -> int:
        return int(self.config.get("SESSION_MINUTES", 120))
