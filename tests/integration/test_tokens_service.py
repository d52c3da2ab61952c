"""The tokens service in a real container, with the portal and signup services replaced by
small fakes answering their RPCs: minting knows a contract's merchant from ``ContractCreated``
(or asks the portal once), takes the default validity from the merchant's settings, an accepted
token opens a session in the portal service, failed exchanges are counted across calls, and a
revocation ends the portal sessions in the same call."""
from __future__ import annotations

import datetime as dt

import eventlet
import pytest
from nameko.exceptions import RemoteError
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.clock import Clock, FrozenClock
from services.common.errors import Gone, InvalidInput, NotFound, RateLimited, Unauthorized
from services.tokens.service import TokensService
from tests.support.cluster import wait_until
from tests.support.services import dependency
from tests.unit.documents import factories

CONTRACTS = {("m_1", "ct_1"), ("m_1", "ct_2"), ("m_2", "ct_9")}


CALLS: list[tuple] = []


class FakePortal:
    name = "portal"

    @rpc
    def verify_contract(self, merchant_id, contract_id):
        CALLS.append(("verify_contract", merchant_id, contract_id))
        if (merchant_id, contract_id) not in CONTRACTS:
            raise NotFound("contract not found")
        return {"contract_id": contract_id, "customer_id": "cus", "state": "active"}

    @rpc
    def open_session(self, merchant_id, contract_id, token_id, expires_at):
        CALLS.append(("open_session", merchant_id, contract_id, token_id, expires_at))
        return {"session_id": f"ps_{len(CALLS):043d}", "expires_at": expires_at}

    @rpc
    def revoke_sessions(self, merchant_id, contract_id):
        CALLS.append(("revoke_sessions", merchant_id, contract_id))
        if (merchant_id, contract_id) not in CONTRACTS:
            raise NotFound("contract not found")
        return 3


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
        CALLS.clear()
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


def test_many_links_in_one_call_each_checked_against_its_merchant(tokens):
    service, clock = tokens
    answers = service.mint_tokens([{"merchant_id": "m_1", "contract_id": "ct_1"},
                                   {"merchant_id": "m_1", "contract_id": "ct_9"},
                                   {"merchant_id": "m_1", "contract_id": "ct_1"}])
    first, refused, third = answers
    assert refused == {"error": {"code": "not_found", "message": "contract not found"}}
    assert first["token"] != third["token"]
    for minted in (first, third):
        assert dt.datetime.fromisoformat(minted["expires_at"]) == clock.now() + dt.timedelta(
            minutes=45)
        assert service.exchange_token(minted["token"])["contract_id"] == "ct_1"
    with pytest.raises(InvalidInput):
        service.mint_tokens([{"contract_id": "ct_1"}])


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


def test_an_accepted_token_opens_a_session_in_the_portal_service(tokens):
    service, clock = tokens
    minted = service.mint_token("m_1", "ct_1", 60)
    session = service.exchange_token(minted["token"])

    [opened] = [call for call in CALLS if call[0] == "open_session"]
    assert opened[1:3] == ("m_1", "ct_1") and opened[3].startswith("tok_")
    assert session == {"session_id": f"ps_{len(CALLS):043d}", "merchant_id": "m_1",
                       "contract_id": "ct_1",
                       "expires_at": (clock.now() + dt.timedelta(minutes=60)).isoformat()}


def test_a_contract_is_asked_about_once_then_known(tokens, rabbit_config):
    service, _ = tokens
    service.mint_token("m_1", "ct_1", 60)
    service.mint_token("m_1", "ct_1", 60)
    with pytest.raises(NotFound):  # known now: another merchant is refused without asking
        service.mint_token("m_2", "ct_1", 60)
    assert [c for c in CALLS if c[0] == "verify_contract"] == [
        ("verify_contract", "m_1", "ct_1")]

    # a contract announced by ContractCreated needs no question at all
    event = factories.contract_created("m_3", contract_id="ct_new")
    event_dispatcher(rabbit_config)("portal", "ContractCreated", event.body())
    wait_until(lambda: _mints("m_3", "ct_new", service), 10, what="the known contract")
    assert not [c for c in CALLS if c[0] == "verify_contract" and c[2] == "ct_new"]


def _mints(merchant_id, contract_id, service) -> bool:
    try:
        return bool(service.mint_token(merchant_id, contract_id, 60))
    except NotFound:
        return False


def test_revocation_ends_the_contracts_tokens_and_its_portal_sessions(tokens):
    service, _ = tokens
    one, two = service.mint_token("m_1", "ct_1", 60), service.mint_token("m_1", "ct_2", 60)

    assert service.revoke_contract("m_1", "ct_1") == 1

    assert ("revoke_sessions", "m_1", "ct_1") in CALLS
    with pytest.raises(Gone):
        service.exchange_token(one["token"])
    assert service.exchange_token(two["token"])["contract_id"] == "ct_2"


def test_a_portal_that_does_not_answer_fails_the_mint_instead_of_hanging(start_tokens):
    service, _ = start_tokens(portal=StuckPortal, rpc_timeout=0.5)
    with pytest.raises(RemoteError) as failed:
        service.mint_token("m_1", "ct_1", 60)
    assert failed.value.exc_type == "UpstreamTimeout"
