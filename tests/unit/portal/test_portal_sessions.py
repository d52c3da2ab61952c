"""Portal sessions (services/portal/sessions.py): opened for an accepted token, checked on every
page, signed out, revoked with the contract's tokens, purged. Frozen clock, SQLite in memory."""
import datetime as dt
import hashlib

import pytest
from sqlalchemy import select, text

from services.common.errors import Gone, Unauthorized
from services.portal import sessions
from services.portal.models import PortalSession

M1, M2 = "m_one", "m_two"
C1, C2 = "ct_one", "ct_two"


def open_session(db, clock, minutes=120, merchant=M1, contract=C1):
    opened = sessions.open_session(db.session, merchant, contract, "tok_1",
                                   clock.now() + dt.timedelta(minutes=minutes), clock.now())
    db.commit()
    return opened["session_id"]


def verify(db, session_id, clock):
    return sessions.verify(db.session, session_id, clock.now())


def test_a_session_id_has_256_random_bits_and_only_its_hash_is_stored(database, db, clock):
    session_id = open_session(db, clock)

    assert session_id.startswith("ps_") and len(session_id) == 3 + 43
    stored = db.session.scalars(select(PortalSession.session_hash)).all()
    assert stored == [hashlib.sha256(session_id.encode()).hexdigest()]
    with database.engine.connect() as conn:
        dump = "\n".join(conn.connection.iterdump())
    assert session_id not in dump and session_id[3:] not in dump
    assert len({open_session(db, clock) for _ in range(200)}) == 200


def test_a_session_works_until_its_expiry_and_not_one_second_after(db, clock):
    session_id = open_session(db, clock, minutes=30)

    clock.advance(minutes=29, seconds=59)
    row = verify(db, session_id, clock)
    assert (row.merchant_id, row.contract_id) == (M1, C1)
    clock.advance(seconds=1)
    with pytest.raises(Gone) as ended:
        verify(db, session_id, clock)
    assert ended.value.fields["session"][0]["code"] == "expired"


@pytest.mark.parametrize("session_id", [
    "", "ps_", "ps_short", "pt_" + "a" * 43, "ps_" + "a" * 44, "ps_" + "a" * 42 + "!",
    None, 42, ["ps_" + "a" * 43]])
def test_malformed_session_ids_are_unauthorized(db, clock, session_id):
    with pytest.raises(Unauthorized) as refused:
        verify(db, session_id, clock)
    assert refused.value.fields["session"][0]["code"] == "malformed"


def test_unknown_and_tampered_session_ids_are_unauthorized(db, clock):
    session_id = open_session(db, clock)
    tampered = session_id[:-1] + ("A" if session_id[-1] != "A" else "B")
    for candidate in (tampered, "ps_" + "A" * 43):
        with pytest.raises(Unauthorized) as refused:
            verify(db, candidate, clock)
        assert refused.value.fields["session"][0]["code"] == "unknown"
        assert C1 not in str(refused.value.fields) and M1 not in str(refused.value)


def test_signing_out_ends_only_that_session(db, clock):
    one, two = open_session(db, clock), open_session(db, clock)
    assert sessions.end(db.session, one, clock.now()) is True
    assert sessions.end(db.session, one, clock.now()) is False
    assert sessions.end(db.session, "garbage", clock.now()) is False
    db.commit()
    with pytest.raises(Gone) as ended:
        verify(db, one, clock)
    assert ended.value.fields["session"][0]["code"] == "revoked"
    assert verify(db, two, clock).contract_id == C1


def test_revoking_a_contract_ends_all_its_sessions_and_no_others(db, clock):
    first, second = open_session(db, clock), open_session(db, clock)
    sibling = open_session(db, clock, contract=C2)
    other_merchant = open_session(db, clock, merchant=M2)

    assert sessions.revoke_contract(db.session, M1, C1, clock.now()) == 2
    db.commit()

    for session_id in (first, second):
        with pytest.raises(Gone):
            verify(db, session_id, clock)
    assert verify(db, sibling, clock).contract_id == C2
    assert verify(db, other_merchant, clock).merchant_id == M2
    assert sessions.revoke_contract(db.session, M1, C1, clock.now()) == 0
    # a session opened after the revocation works
    assert verify(db, open_session(db, clock), clock).contract_id == C1


def test_purge_forgets_sessions_two_days_after_they_ended(db, clock):
    open_session(db, clock, minutes=60)
    clock.advance(days=2, minutes=61)
    fresh = open_session(db, clock, minutes=60)

    sessions.purge(db.session, clock.now())
    db.commit()

    assert db.session.scalar(select(text("count(*)")).select_from(PortalSession)) == 1
    assert verify(db, fresh, clock).contract_id == C1
