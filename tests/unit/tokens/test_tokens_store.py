"""Self-service tokens: minting, validity edges, accepting (the exchange), revocation, known
contracts, rate limiting. Time comes from a FrozenClock; the database is SQLite in memory.
(Portal sessions are the portal service's: tests/unit/portal/test_portal_sessions.py.)"""
import datetime as dt
import hashlib

import pytest
from sqlalchemy import select, text

from services.common.errors import Gone, InvalidInput, RateLimited, Unauthorized
from services.tokens import store
from services.tokens.models import FailedAttempt, KnownContract, SelfServiceToken

PUBLIC = "https://portal.example.com"
M1, M2 = "m_one", "m_two"
C1, C2 = "ct_one", "ct_two"


def mint(db, clock, minutes=60, merchant=M1, contract=C1):
    minted = store.mint(db, merchant, contract, minutes, clock.now(), PUBLIC)
    db.commit()
    return minted


def exchange(db, token, clock, session_minutes=120):
    result = store.accept(db.session, token, clock.now(), session_minutes)
    db.commit()
    return result


# -- minting -------------------------------------------------------------------------------------


def test_a_token_has_256_random_bits_and_only_its_hash_is_stored(database, db, clock):
    minted = mint(db, clock)
    token = minted["token"]

    assert token.startswith("pt_") and len(token) == 3 + 43  # 32 bytes, URL-safe base64
    assert minted["url"] == f"{PUBLIC}/portal?token={token}"
    assert minted["expires_at"] == "2026-03-10T13:00:00+00:00"
    row = db.session.scalar(select(SelfServiceToken))
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert (row.merchant_id, row.contract_id) == (M1, C1)
    # the token itself is nowhere: not in a table, not in the event
    with database.engine.connect() as conn:
        dump = "\n".join(conn.connection.iterdump())
    assert token not in dump and token[3:] not in dump
    [issued] = database.outbox()
    assert issued["type"] == "SelfServiceTokenIssued"
    assert issued["payload"] == {"contract_id": C1, "token_id": row.id,
                                 "expires_at": "2026-03-10T13:00:00+00:00"}


def test_tokens_never_repeat(db, clock):
    tokens = {store.new_secret(store.TOKEN_PREFIX) for _ in range(2000)}
    assert len(tokens) == 2000


@pytest.mark.parametrize("minutes", [1, 10080])
def test_validity_edges_that_are_allowed(db, clock, minutes):
    minted = mint(db, clock, minutes)
    expected = clock.now() + dt.timedelta(minutes=minutes)
    assert dt.datetime.fromisoformat(minted["expires_at"]) == expected


@pytest.mark.parametrize("minutes", [0, 10081, -5, 1.5, "60", True, None])
def test_validity_outside_one_to_10080_minutes_is_refused(database, db, clock, minutes):
    with pytest.raises(InvalidInput) as refused:
        store.mint(db, M1, C1, minutes, clock.now(), PUBLIC)
    [problem] = refused.value.fields["validity_minutes"]
    assert problem["code"] == "out_of_range"
    assert problem["params"] == {"min": 1, "max": 10080}
    db.commit()
    assert db.session.scalar(select(SelfServiceToken)) is None
    assert database.outbox() == []


@pytest.mark.parametrize(("configured", "expected"), [
    (None, 1440), (30, 30), (0, 1), (99999, 10080), ("60", 1440), (True, 1440)])
def test_default_validity_comes_from_settings_within_the_range(configured, expected):
    settings = {} if configured is None else {"token_validity_minutes": configured}
    assert store.default_validity(settings) == expected


# -- expiry --------------------------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [1, 10080])
def test_a_token_works_until_its_expiry_and_not_one_second_after(db, clock, minutes):
    token = mint(db, clock, minutes)["token"]

    clock.advance(minutes=minutes, seconds=-1)
    assert exchange(db, token, clock)["contract_id"] == C1

    clock.advance(seconds=1)  # exactly the expiry: over
    with pytest.raises(Gone) as at_expiry:
        exchange(db, token, clock)
    assert at_expiry.value.fields["token"][0]["code"] == "expired"

    clock.advance(seconds=1)
    with pytest.raises(Gone):
        exchange(db, token, clock)


def test_a_session_may_last_no_longer_than_its_token(db, clock):
    token = mint(db, clock, 30)["token"]
    clock.advance(minutes=20)

    accepted = exchange(db, token, clock, session_minutes=120)

    assert accepted["expires_at"].isoformat() == "2026-03-10T12:30:00+00:00"  # not +120
    assert (accepted["merchant_id"], accepted["contract_id"]) == (M1, C1)
    assert accepted["token_id"].startswith("tok_")


def test_a_long_token_gives_sessions_of_the_configured_length(db, clock):
    token = mint(db, clock, 10080)["token"]
    accepted = exchange(db, token, clock, session_minutes=120)
    assert accepted["expires_at"].isoformat() == "2026-03-10T14:00:00+00:00"


def test_a_token_can_be_exchanged_again_within_its_lifetime(db, clock):
    token = mint(db, clock, 60)["token"]
    exchange(db, token, clock)  # the mail scanner
    clock.advance(minutes=5)
    assert exchange(db, token, clock)["contract_id"] == C1  # the customer
    assert db.session.scalar(select(SelfServiceToken.exchanges)) == 2


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [
    "", "pt_", "pt_short", "xx_" + "a" * 43, "pt_" + "a" * 44, "pt_" + "a" * 42 + "!",
    "pt_" + "a" * 42 + "\n", None, 42, ["pt_" + "a" * 43]])
def test_malformed_tokens_are_unauthorized(db, clock, token):
    with pytest.raises(Unauthorized) as refused:
        store.accept(db.session, token, clock.now(), 120)
    assert refused.value.fields["token"][0]["code"] == "malformed"


def test_tampered_and_unknown_tokens_are_unauthorized(db, clock):
    token = mint(db, clock)["token"]
    last = token[-1]
    tampered = token[:-1] + ("A" if last != "A" else "B")
    for candidate in (tampered, store.new_secret(store.TOKEN_PREFIX)):
        with pytest.raises(Unauthorized) as refused:
            store.accept(db.session, candidate, clock.now(), 120)
        assert refused.value.fields["token"][0]["code"] == "unknown"
        assert C1 not in str(refused.value.fields) and M1 not in str(refused.value)


# -- revocation ----------------------------------------------------------------------------------


def test_revoking_a_contract_ends_its_tokens_at_once(database, db, clock):
    kept = mint(db, clock, merchant=M1, contract=C2)["token"]
    other_merchant = mint(db, clock, merchant=M2, contract=C1)["token"]
    first, second = mint(db, clock)["token"], mint(db, clock)["token"]

    revoked = store.revoke_contract(db, M1, C1, clock.now())
    db.commit()

    assert revoked == 2
    for token in (first, second):
        with pytest.raises(Gone) as refused:
            exchange(db, token, clock)
        assert refused.value.fields["token"][0]["code"] == "revoked"
    # the contract's siblings and another merchant's same-named contract keep working
    assert exchange(db, kept, clock)["contract_id"] == C2
    assert exchange(db, other_merchant, clock)["merchant_id"] == M2
    event = database.outbox()[-1]
    assert event["type"] == "SelfServiceTokensRevoked"
    assert event["payload"] == {"contract_id": C1, "revoked": 2}
    # revoking again finds nothing live and announces nothing ...
    assert store.revoke_contract(db, M1, C1, clock.now()) == 0
    db.commit()
    assert database.outbox()[-1] == event
    # ... unless the portal service ended sessions (tokens already expired, sessions not)
    assert store.revoke_contract(db, M1, C1, clock.now(), sessions_ended=1) == 0
    db.commit()
    assert database.outbox()[-1]["payload"] == {"contract_id": C1, "revoked": 0}


# -- known contracts ------------------------------------------------------------------------------


def test_known_contracts_remember_their_merchant_once(db):
    assert store.contract_owner(db.session, C1) is None
    store.remember_contract(db.session, M1, C1)
    store.remember_contract(db.session, M1, C1)  # a replay, or a lookup racing the event
    db.commit()
    assert store.contract_owner(db.session, C1) == M1
    assert db.session.scalar(select(text("count(*)")).select_from(KnownContract)) == 1


# -- failed attempts -----------------------------------------------------------------------------


def test_failed_attempts_are_limited_per_client_and_window(db, clock):
    client, other = store.client_key("203.0.113.7"), store.client_key("198.51.100.1")
    assert "203.0.113.7" not in client
    clock.set(dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC))
    for _ in range(3):
        store.check_rate(db.session, client, clock.now(), 3, 600)
        store.record_failure(db.session, client, clock.now(), 600)

    with pytest.raises(RateLimited):
        store.check_rate(db.session, client, clock.now(), 3, 600)
    store.check_rate(db.session, other, clock.now(), 3, 600)  # another client is not affected

    clock.advance(minutes=10)  # the next window
    store.check_rate(db.session, client, clock.now(), 3, 600)


def test_purge_forgets_old_windows_and_tokens(db, clock):
    old = mint(db, clock, 60)["token"]
    exchange(db, old, clock)
    store.record_failure(db.session, "client", clock.now(), 600)
    db.commit()
    clock.advance(days=31)
    fresh = mint(db, clock, 60)["token"]
    exchange(db, fresh, clock)

    store.purge(db.session, clock.now(), window_seconds=600)
    db.commit()

    assert db.session.scalar(select(text("count(*)")).select_from(SelfServiceToken)) == 1
    assert db.session.scalar(select(text("count(*)")).select_from(FailedAttempt)) == 0
    assert exchange(db, fresh, clock)["contract_id"] == C1
