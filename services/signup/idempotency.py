"""``Idempotency-Key``: a merchant's retried POST gets the first response back.

Keys are scoped per merchant and kept 24 h (:data:`TTL`; a timer purges older ones). The key is
stored in the same transaction as the effect, so a response is remembered exactly when its
effect happened; a request that failed (e.g. invalid input) stores nothing and may be retried
with the same key. The request is compared by a SHA-256 of the endpoint and the JSON body: the
same key with a different request raises ``IdempotencyKeyReused`` (HTTP 422). Two requests
racing with one key: the second's insert hits the unique constraint and answers ``Conflict``
(409), and its retry then gets the first response.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.errors import Conflict, IdempotencyKeyReused, InvalidInput

from .models import IdempotencyKey

TTL = dt.timedelta(hours=24)
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
HEADER = "Idempotency-Key"


def check_key(key) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidInput("invalid Idempotency-Key", {HEADER: [{
            "code": "invalid", "params": {"max": 255},
            "message": "Use 1 to 255 visible ASCII characters (a UUID is ideal)."}]})
    return key


def request_hash(endpoint: str, body) -> str:
    text = json.dumps({"endpoint": endpoint, "body": body}, sort_keys=True,
                      separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def replay(session: Session, merchant_id: str, key: str, digest: str,
           now: dt.datetime) -> dict | None:
    """The remembered ``{"status", "body"}`` for ``key``, or ``None`` (first use, or expired)."""
    row = session.scalar(select(IdempotencyKey).where(IdempotencyKey.merchant_id == merchant_id,
                                                      IdempotencyKey.key == key))
    if row is None:
        return None
    if row.created_at <= now - TTL:
        session.delete(row)
        session.flush()
        return None
    if row.request_hash != digest:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request",
            {HEADER: [{"code": "idempotency_key_reused", "params": {},
                       "message": "This key was already used with a different request; "
                                  "use a new key for a new request."}]})
    return {"status": row.status_code, "body": row.response}


def remember(session: Session, merchant_id: str, key: str, digest: str, status: int,
             body: dict, now: dt.datetime) -> None:
    session.add(IdempotencyKey(merchant_id=merchant_id, key=key, request_hash=digest,
                               status_code=status, response=body, created_at=now))
    try:
        session.flush()
    except IntegrityError:
        raise Conflict("a request with this Idempotency-Key is in progress; retry it", {
            HEADER: [{"code": "in_progress", "params": {},
                      "message": "A request with this key is in progress; retry shortly."}]
        }) from None


def run(session: Session, merchant_id: str, key: str | None, endpoint: str, body,
        now: dt.datetime, action, status: int = 201) -> tuple[dict, bool]:
    """``action()`` once per key: return ``(body, replayed)``."""
    if key is None:
        return action(), False
    check_key(key)
    digest = request_hash(endpoint, body)
    remembered = replay(session, merchant_id, key, digest, now)
    if remembered is not None:
        return remembered["body"], True
    result = action()
    remember(session, merchant_id, key, digest, status, result, now)
    return result, False


def purge(session: Session, now: dt.datetime) -> int:
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at
                                                          <= now - TTL))
    return result.rowcount or 0
