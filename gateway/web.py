"""HTTP plumbing for the gateway: responses, security headers, CSRF, errors, metrics.

Nothing here talks to a service; ``service.py`` holds the routes.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from werkzeug.wrappers import Response

from services.common.errors import PorticoError, http_status

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES = ("en", "de", "fr")

jinja = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                    trim_blocks=True, lstrip_blocks=True)

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
