"""HTTP plumbing for the gateway: responses, security headers, CSRF, errors, metrics.

Nothing here talks to a service; ``service.py`` holds the routes.
"""
from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import re
import secrets
import socket
import time
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import escape
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from werkzeug.wrappers import Response

from services.common.errors import PorticoError, http_status

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES = ("en", "de", "fr")

# templates ship with the code: compiled once, never re-checked on disk per request
jinja = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                    trim_blocks=True, lstrip_blocks=True, auto_reload=False)

registry = CollectorRegistry()
REQUESTS = Counter("portico_http_requests_total", "HTTP requests", ["route", "status"],
                   registry=registry)
LATENCY = Histogram("portico_http_request_seconds", "HTTP request latency", ["route"],
                    buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5), registry=registry)
OUTBOX_PENDING = Gauge("portico_outbox_pending", "Events waiting in a service's outbox",
                       ["service"], registry=registry)
SERVICE_UP = Gauge("portico_service_up", "1 when the service answered its health RPC",
                   ["service"], registry=registry)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id_from(header: str | None) -> str | None:
    return header if header and _REQUEST_ID.match(header) else None


def language_of(request, default: str = "en") -> str:
    lang = request.args.get("language") or request.form.get("language") if request.method == \
        "POST" else request.args.get("language")
    if lang in LANGUAGES:
        return lang
    best = request.accept_languages.best_match(LANGUAGES)
    return best or default


def security_headers(response: Response, *, nonce: str | None = None,
                     frame_ancestors: str = "'self'") -> Response:
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src {script}; style-src 'self' 'nonce-{nonce or 'x'}'; "
        f"img-src 'self' data:; form-action 'self' https:; base-uri 'none'; "
        f"connect-src 'self'; frame-ancestors {frame_ancestors}"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def html(template: str, status: int = 200, *, frame_ancestors: str = "'self'",
         **context) -> Response:
    nonce = secrets.token_urlsafe(16)
    body = jinja.get_template(template).render(nonce=nonce, **context)
    response = Response(body, status=status, mimetype="text/html")
    return security_headers(response, nonce=nonce, frame_ancestors=frame_ancestors)


class RenderCache:
    """Rendered pages kept by what went into them, for pages many visitors see alike (the
    hosted signup page of a plan variant).

    The per-response parts are rendered as random per-process marks and filled in on every
    response: the CSP nonce always, and whatever the caller names in ``fresh`` (the form
    token). ``key`` must cover everything else the template reads (``None``: render, do not
    keep — for pages that carry a visitor's own data); ``context()`` is called only to render
    a page not yet kept. Bounded (the least recently used goes first)."""

    def __init__(self, max_entries: int = 256):
        self.max_entries = max_entries
        self._pages: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._marks: dict[str, str] = {"nonce": "m" + secrets.token_hex(16)}

    def _mark(self, name: str) -> str:
        return self._marks.setdefault(name, "m" + secrets.token_hex(16))

    def html(self, key: str | None, template: str, context, status: int = 200, *,
             fresh: dict[str, str], frame_ancestors: str = "'self'") -> Response:
        body = self._pages.get(key) if key is not None else None
        if body is None:
            marks = {name: self._mark(name) for name in ("nonce", *fresh)}
            body = jinja.get_template(template).render(**context(), **marks)
            if key is not None:
                self._pages[key] = body
                if len(self._pages) > self.max_entries:
                    self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(key)
        nonce = secrets.token_urlsafe(16)
        body = body.replace(self._mark("nonce"), nonce)
        for name, value in fresh.items():
            body = body.replace(self._mark(name), str(escape(value)))
        response = Response(body, status=status, mimetype="text/html")
        return security_headers(response, nonce=nonce, frame_ancestors=frame_ancestors)

    @staticmethod
    def key(*parts) -> str:
        """A key over JSON-able parts (dict order does not matter)."""
        text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


# -- merchant styling and embedding ----------------------------------------------------------------
# Merchant-chosen values reach CSS and HTML attributes only through these checks, so a stored
# value can never close a rule, open a tag or smuggle a javascript: URL (defence in depth: the
# signup service validates them on save too).

_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
_ORIGIN = re.compile(r"https://[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?(?::[0-9]{1,5})?")
_HTTP_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[^\s\"'<>\\]*)?")


def colour(styling, key: str, default: str) -> str:
    """``styling[key]`` when it is ``#RRGGBB``, else ``default`` (Jinja filter ``colour``)."""
    value = styling.get(key) if isinstance(styling, dict) else None
    return value if isinstance(value, str) and _COLOUR.fullmatch(value) else default


def pixels(styling, key: str, default: int, low: int = 0, high: int = 24) -> int:
    """An integer pixel size from ``styling`` within ``[low, high]`` (Jinja filter ``pixels``)."""
    value = styling.get(key) if isinstance(styling, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return min(max(value, low), high)


def safe_url(value) -> str | None:
    """An absolute http(s) URL or a same-site path, else None (Jinja filter ``safe_url``)."""
    if not isinstance(value, str) or len(value) > 2000:
        return None
    if value.startswith("/") and not value.startswith("//") and _HTTP_URL.fullmatch(
            "http://x" + value):
        return value
    return value if _HTTP_URL.fullmatch(value) else None


def frame_ancestors(settings) -> str:
    """The CSP ``frame-ancestors`` value for a merchant's pages: its
    ``embedding.frame_ancestors`` ('self' and https origins; anything else is dropped), or
    ``'self'`` when it allows none."""
    embedding = (settings or {}).get("embedding") if isinstance(settings, dict) else None
    origins = (embedding or {}).get("frame_ancestors") if isinstance(embedding, dict) else None
    allowed = []
    for origin in origins if isinstance(origins, list) else []:
        if origin == "'self'" or (isinstance(origin, str) and _ORIGIN.fullmatch(origin)):
            if origin not in allowed:
                allowed.append(origin)
    return " ".join(allowed) or "'self'"


jinja.filters["colour"] = colour
jinja.filters["pixels"] = pixels
jinja.filters["safe_url"] = safe_url


# -- rate limits --------------------------------------------------------------------------------

class RateLimiter:
    """A token bucket per key (client IP), in memory and per gateway process.

    ``RateLimiter.parse("20/60")`` allows bursts of 20 and refills 20 per 60 s. With N gateway
    replicas a client gets up to N times the limit; put a shared limiter in front (ingress) when
    that matters. At most ``max_keys`` buckets are kept (the oldest are dropped first).
    """

    def __init__(self, capacity: int, per_seconds: float, *, max_keys: int = 50_000,
                 clock=time.monotonic):
        self.capacity, self.rate = capacity, capacity / per_seconds
        self.max_keys, self.clock = max_keys, clock
        self._buckets: dict[str, tuple[float, float]] = {}

    @classmethod
    def parse(cls, spec: str, **kwargs) -> RateLimiter | None:
        """``"20/60"`` → a limiter; ``"0"`` or ``"off"`` → None (no limit)."""
        text = str(spec).strip().lower()
        if text in ("", "0", "off", "none"):
            return None
        count, _, seconds = text.partition("/")
        return cls(int(count), float(seconds or 60), **kwargs)

    def allow(self, key: str) -> tuple[bool, int]:
        """``(allowed, retry_after_seconds)``; takes one token when allowed."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.capacity), now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self._buckets[key] = (tokens, now)  # re-inserted: dict order = least recently used
        while len(self._buckets) > self.max_keys:
            self._buckets.pop(next(iter(self._buckets)))
        retry = 0 if allowed else max(1, int((1 - tokens) / self.rate + 0.999))
        return allowed, retry


def client_ip(request, trusted_proxies: int = 0) -> str:
    """The client's address: the peer, or with ``trusted_proxies`` = N the N-th address from
    the right of ``X-Forwarded-For`` (what the last of N trusted proxies saw)."""
    if trusted_proxies > 0:
        chain = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",")
                 if p.strip()]
        if len(chain) >= trusted_proxies:
            return chain[-trusted_proxies][:64]
    return request.remote_addr or "unknown"


def no_delay(request) -> None:
    """Send this connection's writes at once (TCP_NODELAY). eventlet's WSGI server writes a
    response larger than its 16 KB buffer in two sends; with Nagle's algorithm the second waits
    for the client's delayed ACK, adding ~40 ms to every large page."""
    sock = getattr(request.environ.get("eventlet.input"), "_sock", None)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):  # not a TCP socket (tests), or already closed
        pass


def json_response(data, status: int = 200, headers=None) -> Response:
    response = Response(json.dumps(data, default=str), status=status, headers=headers,
                        mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def api_error(code: str, message: str, status: int, fields: dict | None = None) -> Response:
    return json_response({"error": {"code": code, "message": message, "fields": fields or {}}},
                         status)


def api_error_from(exc: PorticoError) -> Response:
    return api_error(exc.code, exc.message or exc.code, http_status(exc), exc.fields)


def read_json(request) -> object:
    """The request body as JSON, or raise ``BadJson``."""
    if not request.data:
        return {}
    try:
        return json.loads(request.get_data(as_text=True))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadJson(str(exc)) from None


class BadJson(Exception):
    pass


def bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    return None


# -- CSRF ----------------------------------------------------------------------------------------
# The signup form is anonymous: its token is an HMAC over the form's scope and issue time, and
# cross-site POSTs are refused by Sec-Fetch-Site/Origin. Portal forms bind the token to the
# session instead (see the portal routes).

FORM_TOKEN_TTL = 6 * 3600


def _sign(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def form_token(secret: str, scope: str, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    return f"{issued}.{_sign(secret, f'{scope}|{issued}')}"


def check_form_token(secret: str, scope: str, token: str | None, now: float | None = None) -> bool:
    if not token or "." not in token:
        return False
    issued, _, signature = token.partition(".")
    if not issued.isdigit():
        return False
    now = now if now is not None else time.time()
    if not 0 <= now - int(issued) <= FORM_TOKEN_TTL:
        return False
    return hmac.compare_digest(signature, _sign(secret, f"{scope}|{issued}"))


def cross_site(request) -> bool:
    """True when a browser tells us the POST comes from another site."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        host = request.headers.get("Host", "")
        return origin.split("://", 1)[-1] != host
    return False
