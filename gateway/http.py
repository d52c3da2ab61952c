"""The gateway's HTTP entrypoint and the pieces every route module shares."""
from __future__ import annotations

import hashlib
import logging
import time
from functools import partial

from eventlet.event import Event
from werkzeug.wrappers import Response

from services.common.entrypoints import Http
from services.common.errors import PorticoError
from services.common.telemetry import CORRELATION_KEY, new_correlation_id

from . import web
from .i18n import translator

log = logging.getLogger(__name__)


class GatewayHttp(Http):
    """Carries the caller's ``X-Request-Id`` (or a new id) into the worker and every RPC it
    makes, counts and times the request, and never answers with a traceback."""

    def handle_request(self, request):
        started = time.perf_counter()
        cid = web.request_id_from(request.headers.get("X-Request-Id")) or new_correlation_id()
        web.no_delay(request)  # every response, not only the large pages
        request.shallow = False
        try:
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            done = Event()
            self.container.spawn_worker(self, args, kwargs, context_data={CORRELATION_KEY: cid},
                                        handle_result=partial(self.handle_result, done))
            response = self.response_from_result(done.wait())
        except Exception as exc:
            log.error("unhandled %s answering %s %s", type(exc).__name__, request.method,
                      self.url)
            response = (web.api_error("internal", "Something went wrong; please try again.", 500)
                        if request.path.startswith("/api/") else error_page(500, "en", cid))
        response.headers["X-Request-Id"] = cid
        web.REQUESTS.labels(self.url, str(response.status_code)).inc()
        web.LATENCY.labels(self.url).observe(time.perf_counter() - started)
        return response


route = GatewayHttp.decorator

ERROR_TEXTS = {
    404: ("Page not found", "This page does not exist or is no longer available."),
}


def error_page(status: int, language: str, request_id: str | None = None, *,
               title: str | None = None, message: str | None = None) -> Response:
    t = translator(language)
    default_title, default_message = ERROR_TEXTS.get(
        status, ("Something went wrong", "Please try again in a moment."))
    return web.html("error.html", status, language=language, t=t, styling={},
                    title=t(title or default_title), message=t(message or default_message),
                    request_id=request_id)


class MerchantApi:
    """Authentication and error mapping for ``/api/v1`` routes (mixed into the gateway)."""

    def api_call(self, request, action):
        """Authenticate, parse, run ``action(merchant_id, body) -> (status, data)``, map errors.

        ``data`` may also be a werkzeug ``Response`` (e.g. a PDF download)."""
        key = web.bearer_token(request)
        if not key:
            return web.api_error("unauthorized", "Send your secret key as 'Authorization: "
                                 "Bearer sk_…'.", 401)
        try:
            merchant = self.merchant_for_key(key)
            body = web.read_json(request) if request.method in ("POST", "PUT", "PATCH") else {}
            status, data = action(merchant["id"], body)
        except web.BadJson:
            return web.api_error("invalid_json", "The body is not valid JSON.", 400)
        except PorticoError as exc:
            return web.api_error_from(exc)
        if isinstance(data, Response):
            return data
        return web.json_response(data, status)

    def merchant_for_key(self, key: str) -> dict:
        """Authenticate over RPC, remembering good keys for ``API_KEY_CACHE_SECONDS`` (30; a
        rotated key stops working within that time). Kept by the key's hash, never the key;
        a refused key is never remembered."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.key_cache.get(digest, lambda: self.signup_rpc.authenticate(key))
