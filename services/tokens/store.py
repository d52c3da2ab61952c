"""Self-service tokens: mint, accept (exchange), revoke, rate-limit failed attempts.

A token is ``pt_`` + 43 URL-safe characters (256 bits from ``secrets``). Only its SHA-256 is
stored, and it is never put into a log line, a metric or an event (events carry the public
``tok_…`` id). Times come from the caller's clock.

Validity: a token minted at ``t`` with ``validity_minutes = n`` works while
``now < t + n min`` and is ``Gone`` from ``t + n min`` on. A token may be exchanged any number
of times within its lifetime (mail scanners open links before people do); every exchange opens
a new portal session (in the portal service) that ends at the token's expiry or after
``session_minutes``, whichever is first.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.common import events
from services.common.database import UnitOfWork
from services.common.errors import Gone, InvalidInput, RateLimited, Unauthorized

from .models import FailedAttempt, KnownContract, SelfServiceToken

TOKEN_PREFIX = "pt_"  # noqa: S105  a prefix, not a secret
MIN_VALIDITY_MINUTES = 1
MAX_VALIDITY_MINUTES = 10080  # one week
DEFAULT_VALIDITY_MINUTES = 1440
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)  # 32 bytes = 256 bits → 43 characters


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def well_formed(value, prefix: str) -> bool:
    return (isinstance(value, str) and value.startswith(prefix)
            and _SECRET.fullmatch(value[len(prefix):]) is not None)


def check_validity(minutes) -> int:
    """``validity_minutes`` as an int in 1..10080, or ``InvalidInput`` naming the field."""
    valid = (isinstance(minutes, int) and not isinstance(minutes, bool)
             and MIN_VALIDITY_MINUTES <= minutes <= MAX_VALIDITY_MINUTES)
    if not valid:
        raise InvalidInput("validity_minutes must be a whole number from 1 to 10080", {
            "validity_minutes": [{
                "code": "out_of_range",
                "message": "Enter a whole number of minutes from {min} to {max}.",
                "params": {"min": MIN_VALIDITY_MINUTES, "max": MAX_VALIDITY_MINUTES}}]})
    return minutes


def default_validity(settings: dict | None) -> int:
    """The merchant's default from its settings, kept within the allowed range."""
    value = (settings or {}).get("token_validity_minutes", DEFAULT_VALIDITY_MINUTES)
    if not isinstance(value, int) or isinstance(value, bool):
        return DEFAULT_VALIDITY_MINUTES
    return min(max(value, MIN_VALIDITY_MINUTES), MAX_VALIDITY_MINUTES)


def portal_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/portal?token={token}"


# -- tokens -------------------------------------------------------------------------------------


def mint(db: UnitOfWork, merchant_id: str, contract_id: str, validity_minutes: int,
         now: dt.datetime, public_url: str) -> dict:
    """Store a new token's hash; return ``{"token", "expires_at", "url"}`` (the only time the
    token itself exists outside the customer's link)."""
    token = new_secret(TOKEN_PREFIX)
    token_id = "tok_" + secrets.token_hex(10)
    expires_at = now + dt.timedelta(minutes=check_validity(validity_minutes))
    db.session.execute(_INSERT_TOKEN, {
        "id": token_id, "token_hash": digest(token), "merchant_id": merchant_id,
        "contract_id": contract_id, "created_at": now, "expires_at": expires_at,
        "revoked_at": None, "exchanges": 0})
    db.add_event(events.new_event(
        "SelfServiceTokenIssued", merchant_id=merchant_id, aggregate_id=contract_id,
        payload={"contract_id": contract_id, "token_id": token_id, "expires_at": expires_at}))
    return {"token": token, "expires_at": expires_at.isoformat(),
            "url": portal_url(public_url, token)}


# built once (a mint is a hot path: building a statement costs more than running it)
_INSERT_TOKEN = SelfServiceToken.__table__.insert()
_CONTRACT_OWNER = select(KnownContract.merchant_id).where(
    KnownContract.contract_id == bindparam("contract_id"))


def _refused(cls, reason: str, message: str):
    return cls(message, {"token": [{"code": reason, "message": message, "params": {}}]})


def accept(session: Session, token, now: dt.datetime, session_minutes: int) -> dict:
    """A live token → ``{"token_id", "merchant_id", "contract_id", "expires_at"}`` for the
    session it may open (``expires_at``: the token's expiry or ``session_minutes`` from now,
    whichever is first); ``Unauthorized`` (malformed, unknown) or ``Gone`` (expired, revoked).
    Counts the exchange."""
    if not well_formed(token, TOKEN_PREFIX):
        raise _refused(Unauthorized, "malformed", "This link is not valid.")
    row = session.scalar(select(SelfServiceToken)
                         .where(SelfServiceToken.token_hash == digest(token)))
    if row is None:
        raise _refused(Unauthorized, "unknown", "This link is not valid.")
    if row.revoked_at is not None:
        raise _refused(Gone, "revoked", "This link is no longer valid.")
    token_expires = row.expires_at
    if now >= token_expires:
        raise _refused(Gone, "expired", "This link has expired.")
    row.exchanges += 1
    return {"token_id": row.id, "merchant_id": row.merchant_id,
            "contract_id": row.contract_id,
            "expires_at": min(token_expires, now + dt.timedelta(minutes=session_minutes))}


def revoke_contract(db: UnitOfWork, merchant_id: str, contract_id: str, now: dt.datetime,
                    sessions_ended: int = 0) -> int:
    """Revoke every live token of the contract at once; return the tokens revoked. The
    portal service ends the sessions (``sessions_ended`` of them) in the same request."""
    tokens = db.session.execute(
        update(SelfServiceToken)
        .where(SelfServiceToken.merchant_id == merchant_id,
               SelfServiceToken.contract_id == contract_id,
               SelfServiceToken.revoked_at.is_(None), SelfServiceToken.expires_at > now)
        .values(revoked_at=now)).rowcount
    if tokens or sessions_ended:
        db.add_event(events.new_event(
            "SelfServiceTokensRevoked", merchant_id=merchant_id, aggregate_id=contract_id,
            payload={"contract_id": contract_id, "revoked": tokens}))
    return tokens


# -- known contracts -----------------------------------------------------------------------------


def contract_owner(session: Session, contract_id: str) -> str | None:
    """The merchant a known contract belongs to, or ``None`` when this service has not seen
    it yet."""
    return session.scalar(_CONTRACT_OWNER, {"contract_id": contract_id})


def remember_contract(session: Session, merchant_id: str, contract_id: str) -> None:
    """Record a contract's merchant once (a replay or a concurrent lookup is a no-op)."""
    table = KnownContract.__table__
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    session.execute(insert(table).values(contract_id=contract_id, merchant_id=merchant_id)
                    .on_conflict_do_nothing(index_elements=[table.c.contract_id]))


# -- failed attempts ----------------------------------------------------------------------------


def client_key(ip: str) -> str:
    """Rate limits key on a hash of the IP, not the IP itself (it is personal data)."""
    return hashlib.sha256(f"portico-token-attempts|{ip}".encode()).hexdigest()


def _window(now: dt.datetime, seconds: int) -> int:
    return int(now.timestamp()) // seconds


def check_rate(session: Session, client: str, now: dt.datetime, limit: int,
               window_seconds: int) -> None:
    """``RateLimited`` once ``client`` failed ``limit`` times in the current window."""
    failures = session.scalar(select(FailedAttempt.count).where(
        FailedAttempt.client == client, FailedAttempt.window_no == _window(now, window_seconds)))
    if failures is not None and failures >= limit:
        raise RateLimited("too many failed attempts", {"token": [
            {"code": "rate_limited", "message": "Too many attempts. Please try again later.",
             "params": {"retry_after": window_seconds}}]})


def record_failure(session: Session, client: str, now: dt.datetime,
                   window_seconds: int) -> None:
    table = FailedAttempt.__table__
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    stmt = insert(table).values(client=client, window_no=_window(now, window_seconds), count=1)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[table.c.client, table.c.window_no],
        set_={"count": table.c.count + 1}))


def purge(session: Session, now: dt.datetime, *, keep_tokens_days: int = 30,
          window_seconds: int = 600) -> None:
    """Delete what can no longer matter: old failure windows and long-expired tokens."""
    session.execute(delete(FailedAttempt).where(
        FailedAttempt.window_no < _window(now, window_seconds) - 1))
    session.execute(delete(SelfServiceToken).where(
        SelfServiceToken.expires_at < now - dt.timedelta(days=keep_tokens_days)))
