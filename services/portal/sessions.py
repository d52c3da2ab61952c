"""Portal sessions: opened when the tokens service accepts a link's token, checked on every
portal page, ended by signing out, revoked with the contract's tokens.

They live here, beside the contract, so that a portal page is one call: ``portal_view`` checks
the session and returns the contract in the same round trip, and a revocation or sign-out is
effective on the very next request (nothing is cached anywhere).

A session id is ``ps_`` + 43 URL-safe characters (256 bits from ``secrets``). Only its SHA-256
is stored, and it never appears in a log line, a metric or an event. Times come from the
caller's clock.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from sqlalchemy import and_, bindparam, delete, select, update
from sqlalchemy.orm import Session

from services.common.errors import Gone, Unauthorized

from .models import Contract, Customer, PortalSession

SESSION_PREFIX = "ps_"
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def well_formed(value) -> bool:
    return (isinstance(value, str) and value.startswith(SESSION_PREFIX)
            and _SECRET.fullmatch(value[len(SESSION_PREFIX):]) is not None)


def open_session(session: Session, merchant_id: str, contract_id: str, token_id: str,
                 expires_at: dt.datetime, now: dt.datetime) -> dict:
    """A new session → ``{"session_id", "expires_at"}`` (the only time the id exists outside
    the customer's cookie)."""
    session_id = SESSION_PREFIX + secrets.token_urlsafe(32)
    session.add(PortalSession(
        id="ses_" + secrets.token_hex(10), session_hash=digest(session_id), token_id=token_id,
        merchant_id=merchant_id, contract_id=contract_id, created_at=now,
        expires_at=expires_at))
    return {"session_id": session_id, "expires_at": expires_at.isoformat()}


def _refusal(cls, reason: str, message: str):
    return cls("the session is not valid" if cls is Unauthorized else "the session has ended",
               {"session": [{"code": reason, "message": message, "params": {}}]})


def verify(session: Session, session_id, now: dt.datetime) -> PortalSession:
    """The live session, else ``Unauthorized`` (malformed, unknown) or ``Gone`` (expired,
    revoked, signed out)."""
    return verify_with_contract(session, session_id, now)[0]


# built once: constructing the statement costs more than running it (every portal page)
_WITH_CONTRACT = (
    select(PortalSession, Contract, Customer)
    .outerjoin(Contract, and_(Contract.id == PortalSession.contract_id,
                              Contract.merchant_id == PortalSession.merchant_id))
    .outerjoin(Customer, Customer.id == Contract.customer_id)
    .where(PortalSession.session_hash == bindparam("session_hash")))


def verify_with_contract(session: Session, session_id, now: dt.datetime) -> tuple:
    """``(session, contract, customer)`` for a live session in one query (the contract and
    customer ``None`` if they are missing); refusals as ``verify``."""
    if not well_formed(session_id):
        raise _refusal(Unauthorized, "malformed", "Your session is not valid.")
    found = session.execute(_WITH_CONTRACT, {"session_hash": digest(session_id)}).first()
    row = found[0] if found is not None else None
    if row is None:
        raise _refusal(Unauthorized, "unknown", "Your session is not valid.")
    if row.revoked_at is not None:
        raise _refusal(Gone, "revoked", "Your session has ended.")
    if now >= row.expires_at:
        raise _refusal(Gone, "expired", "Your session has ended.")
    return row, found[1], found[2]


def end(session: Session, session_id, now: dt.datetime) -> bool:
    """Sign out: the session stops working at once. False when there was nothing to end."""
    if not well_formed(session_id):
        return False
    result = session.execute(
        update(PortalSession)
        .where(PortalSession.session_hash == digest(session_id),
               PortalSession.revoked_at.is_(None))
        .values(revoked_at=now))
    return result.rowcount == 1


def revoke_contract(session: Session, merchant_id: str, contract_id: str,
                    now: dt.datetime) -> int:
    """End every live session of the contract at once → how many."""
    return session.execute(
        update(PortalSession)
        .where(PortalSession.merchant_id == merchant_id,
               PortalSession.contract_id == contract_id,
               PortalSession.revoked_at.is_(None), PortalSession.expires_at > now)
        .values(revoked_at=now)).rowcount


def purge(session: Session, now: dt.datetime, keep_days: int = 2) -> None:
    session.execute(delete(PortalSession).where(
        PortalSession.expires_at < now - dt.timedelta(days=keep_days)))
