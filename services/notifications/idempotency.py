"""``Idempotency-Key`` on the notifications API's POSTs: a retried request gets the first
response back instead of a second endpoint, e-mail or replay.

The key is stored in the transaction of the effect, so it is remembered exactly when the
effect happened (an invalid request stores nothing). Keys are per merchant, kept 24 h; the same
key with another request answers ``IdempotencyKeyReused`` (422); two requests racing with one
key: the second hits the unique constraint and answers ``Conflict`` (409).
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
HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def run(session: Session, merchant_id: str, key: str | None, endpoint: str, body,
        now: dt.datetime, action) -> dict:
    """``action()`` once per key; a repeat gets the first result."""
    if key is None:
        return action()
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidInput("invalid Idempotency-Key", {HEADER: [{
            "code": "invalid", "params": {"max": 255},
            "message": "Use 1 to 255 visible ASCII characters (a UUID is ideal)."}]})
    digest = hashlib.sha256(json.dumps({"endpoint": endpoint, "body": body}, sort_keys=True,
                                       default=str).encode()).hexdigest()
    row = session.scalar(select(IdempotencyKey).where(IdempotencyKey.merchant_id == merchant_id,
                                                      IdempotencyKey.key == key))
    if row is not None and _aware(row.created_at) <= now - TTL:
        session.delete(row)
        session.flush()
        row = None
    if row is not None:
        if row.request_hash != digest:
            raise IdempotencyKeyReused("this Idempotency-Key was used with a different request", {
                HEADER: [{"code": "idempotency_key_reused", "params": {},
                          "message": "This key was already used with a different request; "
                                     "use a new key for a new request."}]})
        return json.loads(row.response)
    result = action()
    session.add(IdempotencyKey(merchant_id=merchant_id, key=key, request_hash=digest,
                               response=json.dumps(result, default=str), created_at=now))
    try:
        session.flush()
    except IntegrityError:
        raise Conflict("a request with this Idempotency-Key is in progress; retry it", {
            HEADER: [{"code": "in_progress", "params": {},
                      "message": "A request with this key is in progress; retry shortly."}]
        }) from None
    return result


def purge(session: Session, now: dt.datetime) -> int:
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at
                                                          <= now - TTL))
    return result.rowcount or 0
