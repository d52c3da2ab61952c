"""One webhook HTTP call: re-check the address, POST, classify nothing (``webhooks`` decides).

It uses ``http.client`` over a socket opened to the very address the SSRF guard approved, with
the URL's host name for the ``Host`` header and TLS (SNI and certificate check). ``requests``
would resolve the name again when connecting, which is the gap DNS rebinding uses. Redirects
are never followed (``http.client`` does not), the whole call is bounded by one deadline, and
at most a few KiB of the answer are read.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import http.client
import socket
import ssl
import time

import eventlet

from . import url_guard

USER_AGENT = "Portico-Webhooks/1.0"
MAX_RESPONSE_BYTES = 4096
MAX_RETRY_AFTER = 24 * 3600


@dataclasses.dataclass(frozen=True)
class Result:
    status_code: int | None
    latency_ms: int
    error: str | None = None
    retry_after: float | None = None  # seconds, from a 429/503 answer's Retry-After


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout, context):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait: ``Retry-After: 120`` or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), MAX_RETRY_AFTER))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = time.time() if now is None else now
    return float(min(max(when.timestamp() - now, 0), MAX_RETRY_AFTER))


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float,
         allow_loopback: bool, resolver: url_guard.Resolver | None = None,
         tls_context: ssl.SSLContext | None = None) -> Result:
    """POST ``body`` to ``url``; never raises for network trouble (it becomes ``error``)."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        target, addresses = url_guard.check(url, allow_loopback=allow_loopback,
                                            resolver=resolver)
    except url_guard.UnsafeUrl as exc:
        return Result(None, elapsed(), f"refused: {exc}")
    address = str(addresses[0])
    if target.scheme == "https":
        conn = _PinnedHTTPSConnection(target.host, target.port, address, timeout,
                                      tls_context or ssl.create_default_context())
    else:
        conn = _PinnedHTTPConnection(target.host, target.port, address, timeout)
    try:
        with eventlet.Timeout(timeout):
            conn.request("POST", target.path, body=body, headers={
                **headers, "Content-Type": "application/json", "User-Agent": USER_AGENT,
                "Content-Length": str(len(body)),
            })
            response = conn.getresponse()
            response.read(MAX_RESPONSE_BYTES)
            status = response.status
            retry_after = parse_retry_after(response.getheader("Retry-After")) \
                if status in (429, 503) else None
    except eventlet.Timeout:
        return Result(None, elapsed(), f"timed out after {timeout:g} s")
    except (OSError, http.client.HTTPException) as exc:
        return Result(None, elapsed(), f"{type(exc).__name__}: {exc}"[:500])
    finally:
        conn.close()
    if 200 <= status < 300:
        error = None
    elif 300 <= status < 400:
        error = f"HTTP {status}: redirects are not followed"
    else:
        error = f"HTTP {status}"
    return Result(status, elapsed(), error, retry_after)
