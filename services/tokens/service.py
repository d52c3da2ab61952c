"""Tokens service: time-limited self-service tokens: mint, accept (opening a portal session in
the portal service), revoke.

Minting is one local transaction: the contract's merchant comes from ``known_contracts`` (fed
by ``ContractCreated``; a contract not seen yet is checked with the portal service once), and
the merchant's default validity from a short cache of its settings (``SETTINGS_CACHE_SECONDS``,
default 5)."""
from __future__ import annotations

import eventlet
from nameko.dependency_providers import Config
from nameko.exceptions import MethodNotFound
from nameko.rpc import RpcProxy

from services.common.cache import Cache
from services.common.clock import Clock
from services.common.database import Database
from services.common.entrypoints import event_handler, rpc, timer
from services.common.errors import InvalidInput, NotFound, PorticoError
from services.common.health import HealthRpc
from services.common.telemetry import Correlation

from . import store
from .models import Base

REQUIRED_SETTINGS = ["DB_URL", "PUBLIC_URL"]
NUMBER_SETTINGS = {"TOKEN_FAILURE_LIMIT": (int, 1), "TOKEN_FAILURE_WINDOW_SECONDS": (int, 1),
                   "SESSION_MINUTES": (int, 1), "RPC_TIMEOUT_SECONDS": (float, 0.1),
                   "SETTINGS_CACHE_SECONDS": (float, 0)}


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

    settings_cache = Cache("SETTINGS_CACHE_SECONDS", default=5)
    # contract id → merchant id of contracts found in known_contracts (it never changes)
    owners = Cache("CONTRACT_OWNER_CACHE_SECONDS", default=3600)

    @event_handler("ContractCreated", batch=True)
    def handle_contract_created(self, event):
        store.remember_contract(self.db.session, event.merchant_id, event.payload["contract_id"])

    @rpc
    def mint_token(self, merchant_id: str, contract_id: str,
                   validity_minutes: int | None = None) -> dict:
        """``mint_token("m_…", "ct_…", 60)`` → ``{"token": "pt_…", "expires_at", "url"}``.

        ``validity_minutes`` 1..10080 (else ``InvalidInput``); ``None`` takes the merchant's
        default from its self-service settings. Another merchant's contract is ``NotFound``.
        """
        if validity_minutes is not None:
            store.check_validity(validity_minutes)
        self._check_contract(merchant_id, contract_id)
        if validity_minutes is None:
            validity_minutes = store.default_validity(self._settings(merchant_id))
        return store.mint(self.db, merchant_id, contract_id, validity_minutes,
                          self.clock.now(), self.config["PUBLIC_URL"])

    @rpc
    def mint_tokens(self, requests: list[dict]) -> list[dict]:
        """Many ``mint_token`` calls in one: ``[{"merchant_id", "contract_id"}, …]`` (each at
        the merchant's default validity) → one answer per request, in order: the minted
        ``{"token", "expires_at", "url"}``, or ``{"error": {"code", "message"}}`` for a
        contract that is not the merchant's. One transaction for all of them (the e-mail
        senders mint a link for each mail of a run)."""
        if not isinstance(requests, list) or not all(
                isinstance(r, dict) and isinstance(r.get("merchant_id"), str) for r in requests):
            raise InvalidInput("requests must be a list of {merchant_id, contract_id}")
        answers = []
        for request in requests:
            merchant_id, contract_id = request["merchant_id"], request.get("contract_id")
            try:
                self._check_contract(merchant_id, contract_id)
            except NotFound as exc:
                answers.append({"error": {"code": "not_found", "message": str(exc)}})
                continue
            answers.append(store.mint(
                self.db, merchant_id, contract_id,
                store.default_validity(self._settings(merchant_id)), self.clock.now(),
                self.config["PUBLIC_URL"]))
        return answers

    @rpc
    def exchange_token(self, token: str, client_ip: str | None = None) -> dict:
        """``exchange_token("pt_…")`` → a new portal session ``{"session_id", "merchant_id",
        "contract_id", "expires_at"}`` (opened in the portal service); ``Unauthorized``
        (malformed, unknown), ``Gone`` (expired, revoked), ``RateLimited`` once ``client_ip``
        failed too often."""
        now = self.clock.now()
        client = store.client_key(client_ip) if client_ip else None
        limit, window = self._limits()
        if client:
            store.check_rate(self.db.session, client, now, limit, window)
        try:
            accepted = store.accept(self.db.session, token, now, self._session_minutes())
        except PorticoError:
            if client:
                self.db.session.rollback()
                store.record_failure(self.db.session, client, now, window)
                self.db.commit()  # the failure counts although the call fails
            raise
        with self._deadline("portal"):
            opened = self.portal_rpc.open_session(
                accepted["merchant_id"], accepted["contract_id"], accepted["token_id"],
                accepted["expires_at"].isoformat())
        return {"session_id": opened["session_id"], "merchant_id": accepted["merchant_id"],
                "contract_id": accepted["contract_id"], "expires_at": opened["expires_at"]}

    @rpc
    def revoke_contract(self, merchant_id: str, contract_id: str) -> int:
        """Revoke every token and session of the contract at once → the tokens revoked.
        ``NotFound`` for another merchant's or a missing contract."""
        with self._deadline("portal"):
            ended = self.portal_rpc.revoke_sessions(merchant_id, contract_id)
        return store.revoke_contract(self.db, merchant_id, contract_id, self.clock.now(),
                                     sessions_ended=ended)

    @timer(interval=3600)
    def purge_expired(self):
        store.purge(self.db.session, self.clock.now(), window_seconds=self._limits()[1])

    def _deadline(self, what: str):
        seconds = float(self.config.get("RPC_TIMEOUT_SECONDS", 10))
        return eventlet.Timeout(seconds, UpstreamTimeout(f"{what} did not answer in {seconds:g} s"))

    def _check_contract(self, merchant_id: str, contract_id: str) -> None:
        """``NotFound`` unless the contract is the merchant's (asked of the portal service
        only the first time this service hears of a contract)."""
        if not isinstance(contract_id, str):
            raise NotFound("contract not found")
        owner = self.owners.peek(contract_id) or \
            store.contract_owner(self.db.session, contract_id)
        if owner is None:
            with self._deadline("portal"):
                self.portal_rpc.verify_contract(merchant_id, contract_id)  # NotFound
            store.remember_contract(self.db.session, merchant_id, contract_id)
        elif owner != merchant_id:
            raise NotFound("contract not found")
        else:  # a contract never changes merchant: remembering it in memory is always right
            self.owners.put(contract_id, owner)

    def _settings(self, merchant_id: str) -> dict:
        def load():
            with self._deadline("signup"):
                try:
                    return self.signup_rpc.get_settings(merchant_id) or {}
                except MethodNotFound:  # a signup service that predates self-service settings
                    return {}
        return self.settings_cache.get(merchant_id, load)

    def _limits(self) -> tuple[int, int]:
        return (int(self.config.get("TOKEN_FAILURE_LIMIT", 10)),
                int(self.config.get("TOKEN_FAILURE_WINDOW_SECONDS", 600)))

    def _session_minutes(self) -> int:
        return int(self.config.get("SESSION_MINUTES", 120))
