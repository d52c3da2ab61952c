"""The tokens service in a real container: minting asks the portal whether the contract is the
merchant's and the signup service for the default validity (both replaced by small fakes
answering their RPCs), failed exchanges are counted across calls, revocation is immediate."""
from __future__ import annotations

import datetime as dt

import eventlet
import pytest
from nameko.exceptions import RemoteError
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.clock import Clock, FrozenClock
from services.common.errors import Gone, InvalidInput, NotFound, RateLimited, Unauthorized
from services.tokens.service import TokensService
from tests.support.services import dependency

CONTRACTS = {("m_1", "ct_1"), ("m_1", "ct_2"), ("m_2", "ct_9")}


class FakePortal:
    name = "portal"

    @rpc
    def verify_contract(self, merchant_id, contract_id):
        if (merchant_id, contract_id) not in CONTRACTS:
            raise NotFound("contract not found")
        return {"contract_id": contract_id, "customer_id": "cus", "state": "active"}


class StuckPortal:
    """A portal service that never answers in time."""

    name = "portal"

    @rpc
    def verify_contract(self, merchant_id, contract_id):
        eventlet.sleep(5)


class FakeSignup:
    name = "signup"

    @rpc
    def get_settings(self, merchant_id):
        return {"token_validity_minutes": 45}


class OldSignup:
    """A signup service that predates ``get_settings``."""

    name = "signup"

    @rpc
    def ping(self):
        return "pong"


@pytest.fixture
def start_tokens(start_service, container_factory, rabbit_config):
    proxies = []

    def start(signup=FakeSignup, portal=FakePortal, rpc_timeout=10):
        container_factory(portal, rabbit_config).start()
        container_factory(signup, rabbit_config).start()
        container = start_service(TokensService, "tokens", PUBLIC_URL="https://p.example.com/",
                                  TOKEN_FAILURE_LIMIT=2, RPC_TIMEOUT_SECONDS=rpc_timeout)
        clock = FrozenClock("2026-05-01T10:00:00+00:00")
        dependency(container, Clock).clock = clock
        proxy = ClusterRpcProxy(rabbit_config, timeout=10)
        proxies.append(proxy)
        return proxy.start().tokens, clock

    yield start
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def tokens(start_tokens):
    return start_tokens()


def test_minting_defaults_to_the_merchants_validity(tokens):
    service, clock = tokens
    minted = service.mint_token("m_1", "ct_1")
    assert minted["url"] == f"https://p.example.com/portal?token={minted['token']}"
    assert dt.datetime.fromisoformat(minted["expires_at"]) == clock.now() + dt.timedelta(
        minutes=45)
    assert service.exchange_token(minted["token"])["contract_id"] == "ct_1"


def test_without_settings_the_default_is_a_day(start_tokens):
    service, clock = start_tokens(OldSignup)
    minted = service.mint_token("m_1", "ct_1", None)
    assert dt.datetime.fromisoformat(minted["expires_at"]) == clock.now() + dt.timedelta(
        days=1)


def test_minting_for_another_merchants_contract_is_not_found(tokens):
    service, _ = tokens
    with pytest.raises(NotFound):
        service.mint_token("m_1", "ct_9", 60)
    with pytest.raises(NotFound):
        service.revoke_contract("m_1", "ct_9")
    with pytest.raises(InvalidInput):
        service.mint_token("m_1", "ct_1", 10081)


def test_failed_exchanges_are_counted_per_client_even_though_the_calls_fail(tokens):
    service, clock = tokens
    good = service.mint_token("m_1", "ct_1", 60)["token"]
    for _ in range(2):
        with pytest.raises(Unauthorized):
            service.exchange_token("pt_" + "x" * 43, "192.0.2.1")
    with pytest.raises(RateLimited):
        service.exchange_token(good, "192.0.2.1")
    assert service.exchange_token(good, "192.0.2.2")["merchant_id"] == "m_1"  # another client
    clock.advance(minutes=10)
    assert service.exchange_token(good, "192.0.2.1")["contract_id"] == "ct_1"


def test_revocation_ends_tokens_and_sessions_of_that_contract_only(tokens):
    service, _ = tokens
    one, two = service.mint_token("m_1", "ct_1", 60), service.mint_token("m_1", "ct_2", 60)
    session_one = service.exchange_token(one["token"])["session_id"]
    session_two = service.exchange_token(two["token"])["session_id"]

    assert service.revoke_contract("m_1", "ct_1") == 1

    with pytest.raises(Gone):
        service.verify_session(session_one)
    with pytest.raises(Gone):
        service.exchange_token(one["token"])
    assert service.verify_session(session_two)["contract_id"] == "ct_2"
    with pytest.raises(Unauthorized):
        service.verify_session("ps_" + "y" * 43)


def test_a_portal_that_does_not_answer_fails_the_mint_instead_of_hanging(start_tokens):
    service, _ = start_tokens(portal=StuckPortal, rpc_timeout=0.5)
    with pytest.raises(RemoteError) as failed:
        service.mint_token("m_1", "ct_1", 60)
    assert failed.value.exc_type == "UpstreamTimeout"
