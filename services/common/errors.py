"""Errors that cross service boundaries, and how the gateway answers them.

Services raise these; nameko re-raises them as the same class in the caller (they are
registered with ``deserialize_to_instance``), and the gateway maps each class to one HTTP status
and error code in ``HTTP_STATUS`` (one table, one parametrised test).
"""
from __future__ import annotations

import json

from nameko.exceptions import deserialize_to_instance


class PorticoError(Exception):
    code = "error"

    def __init__(self, message: str = "", fields: dict | str | None = None):
        if isinstance(fields, str):  # came back over RPC: nameko stringifies non-JSON-safe args
            fields = json.loads(fields)
        self.message = message
        self.fields = fields or {}
        # fields travel as JSON text so numbers stay numbers ({"max": 10080}, not "10080")
        super().__init__(message, json.dumps(self.fields, default=str))

    def __str__(self):
        return self.message or self.code


@deserialize_to_instance
class InvalidInput(PorticoError):
    """Per-field problems: ``fields`` maps a field to a list of error dicts ``{code, message}``."""

    code = "invalid_input"


@deserialize_to_instance
class NotFound(PorticoError):
    code = "not_found"


@deserialize_to_instance
class Conflict(PorticoError):
    code = "conflict"


@deserialize_to_instance
class Unauthorized(PorticoError):
    code = "unauthorized"


@deserialize_to_instance
class Gone(PorticoError):
    code = "gone"


@deserialize_to_instance
class RateLimited(PorticoError):
    code = "rate_limited"


@deserialize_to_instance
class IdempotencyKeyReused(PorticoError):
    """The same ``Idempotency-Key`` came back with a different request (HTTP 422)."""

    code = "idempotency_key_reused"


HTTP_STATUS: dict[type[PorticoError], int] = {
    InvalidInput: 400,
    Unauthorized: 401,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    RateLimited: 429,
    IdempotencyKeyReused: 422,
}


def http_status(exc: PorticoError) -> int:
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
