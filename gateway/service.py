"""The gateway: hosted pages, the merchant REST API and ops endpoints, over RPC to the services.

Stateless: scale it freely. Each route loads its input, makes its RPC call(s) and renders; the
mapping of service errors to HTTP statuses lives in ``services.common.errors.HTTP_STATUS``.
"""
from __future__ import annotations

import hashlib
import logging
import time
from functools import partial

import eventlet
from eventlet.event import Event
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from services.common.entrypoints import Http
from services.common.errors import InvalidInput, NotFound, PorticoError
from services.common.telemetry import CORRELATION_KEY, Correlation, new_correlation_id

from . import web
from .i18n import translator

log = logging.getLogger(__name__)

REQUIRED_SETTINGS = ["SECRET_KEY"]
SECRET_SETTINGS = ["SECRET_KEY"]
SERVICES = ("signup", "portal", "tokens", "notifications", "documents")

FIELD_ORDER = ["company_name", "first_name", "last_name", "email", "street", "house_number",
               "address_line_2", "postal_code", "city", "country", "phone", "vat_id",
               "dispatch_type", "birth_date"]
FIELD_LABELS = {"company_name": "Company", "first_name": "First name", "last_name": "Last name",
                "email": "E-mail", "street": "Street", "house_number": "House number",
                "address_line_2": "Additional address line", "postal_code": "Postal code",
                "city": "City", "country": "Country", "phone": "Phone", "vat_id": "VAT ID",
                "dispatch_type": "Dispatch", "birth_date": "Birth date"}


class GatewayHttp(Http):
    """Carries the caller's ``X-Request-Id`` (or a new id) into the worker and every RPC it
    makes, counts and times the request, and never answers with a traceback."""

    def handle_request(self, request):
        started = time.perf_counter()
        cid = web.request_id_from(request.headers.get("X-Request-Id")) or new_correlation_id()
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


gateway_http = GatewayHttp.decorator


def error_page(status: int, language: str, request_id: str | None = None) -> Response:
    t = translator(language)
    title, message = {
        404: ("Page not found", "This page does not exist or is no longer available."),
    }.get(status, ("Something went wrong", "Please try again in a moment."))
    return web.html("error.html", status, language=language, t=t, styling={},
                    title=t(title), message=t(message), request_id=request_id)


class GatewayService:
    name = "gateway"

    signup_rpc = RpcProxy("signup")
    portal_rpc = RpcProxy("portal")
    tokens_rpc = RpcProxy("tokens")
    notifications_rpc = RpcProxy("notifications")
    documents_rpc = RpcProxy("documents")
    correlation = Correlation()
    config = Config()

    # -- ops ---------------------------------------------------------------------------------------
    @gateway_http("GET", "/healthz")
    def healthz(self, request):
        return web.json_response({"status": "ok"})

    @gateway_http("GET", "/readyz")
    def readyz(self, request):
        """Ready when every service answers its health RPC within 3 s (broker + databases)."""
        checks = self._service_health(timeout=3.0)
        ready = all(c.get("status") == "ok" for c in checks.values())
        return web.json_response({"status": "ok" if ready else "unavailable",
                                  "services": checks}, 200 if ready else 503)

    @gateway_http("GET", "/metrics")
    def metrics(self, request):
        for service, check in self._service_health(timeout=2.0).items():
            web.SERVICE_UP.labels(service).set(1 if check.get("status") == "ok" else 0)
            if "outbox_pending" in check:
                web.OUTBOX_PENDING.labels(service).set(check["outbox_pending"])
        return Response(generate_latest(web.registry), mimetype=CONTENT_TYPE_LATEST)

    def _service_health(self, timeout: float) -> dict:
        replies = {}
        for service in SERVICES:
            replies[service] = getattr(self, f"{service}_rpc").health.call_async()
        checks = {}
        deadline = time.monotonic() + timeout
        for service, reply in replies.items():
            try:
                with eventlet.Timeout(max(deadline - time.monotonic(), 0.01)):
                    checks[service] = reply.result()
            except (Exception, eventlet.Timeout) as exc:
                checks[service] = {"status": "unavailable", "error": type(exc).__name__}
        return checks

    # -- hosted signup page -----------------------------------------------------------------------
    @gateway_http("GET", "/signup/<string:slug>/<string:variant_id>")
    def signup_page(self, request, slug, variant_id):
        language = web.language_of(request)
        page = self._signup_page(slug, variant_id, language)
        if isinstance(page, Response):
            return page
        values = {name: request.args.get(name) for name in FIELD_ORDER if request.args.get(name)}
        return self._render_signup(page, language, values, {})

    @gateway_http("POST", "/signup/<string:slug>/<string:variant_id>")
    def signup_submit(self, request, slug, variant_id):
        language = web.language_of(request)
        t = translator(language)
        page = self._signup_page(slug, variant_id, language)
        if isinstance(page, Response):
            return page
        form = request.form
        values = {name: form.get(name, "") for name in FIELD_ORDER}
        if web.cross_site(request) or not web.check_form_token(
                self._secret, f"signup|{slug}|{variant_id}", form.get("csrf_token")):
            errors = {"_form": [{"code": "csrf",
                                 "message": t("The form has expired. Please submit it again.")}]}
            return self._render_signup(page, language, values, errors, status=400)
        order = {
            "customer": {k: v for k, v in values.items() if page["fields"].get(k) != "hidden"},
            "components": {key[len("component."):]: value for key, value in form.items()
                           if key.startswith("component.")},
            "coupon_code": form.get("coupon_code") or None,
            "accepted_terms": form.getlist("accepted_terms"),
            "external_id": form.get("external_id") or None,
            "language": language,
        }
        try:
            result = self.signup_rpc.submit_order(page["merchant"]["id"], variant_id, order,
                                                  self_service=True)
        except InvalidInput as exc:
            return self._render_signup(page, language, values, exc.fields, status=400)
        target = result.get("success_url") or (
            f"/signup/{slug}/{variant_id}/done?language={language}")
        separator = "&" if "?" in target else "?"
        return Response(status=303, headers={
            "Location": f"{target}{separator}contractId={result['contract_id']}"})

    @gateway_http("GET", "/signup/<string:slug>/<string:variant_id>/done")
    def signup_done(self, request, slug, variant_id):
        language = web.language_of(request)
        contract_id = request.args.get("contractId", "")[:64]
        return web.html("signup_done.html", language=language, t=translator(language),
                        styling={}, contract_id=contract_id)

    def _signup_page(self, slug, variant_id, language):
        try:
            return self.signup_rpc.get_signup_page(slug, variant_id, language)
        except NotFound:
            return error_page(404, language)

    def _render_signup(self, page, language, values, errors, status=200):
        scope = f"signup|{page['merchant']['slug']}|{page['variant']['id']}"
        return web.html("signup.html", status, language=language, t=translator(language),
                        page=page, values=values, errors=errors,
                        styling=page.get("styling") or {},
                        csrf_token=web.form_token(self._secret, scope),
                        field_order=FIELD_ORDER, labels=FIELD_LABELS)

    @property
    def _secret(self) -> str:
        return self.config["SECRET_KEY"]

    # -- merchant REST API ------------------------------------------------------------------------
    @gateway_http("POST", "/api/v1/plans")
    def api_create_plan(self, request):
        return self._api(request, lambda m, body: (201, self.signup_rpc.create_plan(m, body)))

    @gateway_http("POST", "/api/v1/plan-variants")
    def api_create_variant(self, request):
        return self._api(request,
                         lambda m, body: (201, self.signup_rpc.create_plan_variant(m, body)))

    @gateway_http("GET", "/api/v1/plan-variants/<string:variant_id>")
    def api_get_variant(self, request, variant_id):
        return self._api(request, lambda m, _: (200, self.signup_rpc.get_plan_variant(
            m, variant_id)))

    @gateway_http("POST", "/api/v1/orders/preview")
    def api_preview_order(self, request):
        def preview(merchant_id, body):
            variant_id = body.get("plan_variant_id") if isinstance(body, dict) else None
            if not isinstance(variant_id, str):
                raise InvalidInput("plan_variant_id is required", {"plan_variant_id": [
                    {"code": "required", "message": "This field is required."}]})
            return 200, self.signup_rpc.preview_order(merchant_id, variant_id, body)
        return self._api(request, preview)

    @gateway_http("POST", "/api/v1/orders")
    def api_create_order(self, request):
        def create(merchant_id, body):
            variant_id = body.get("plan_variant_id") if isinstance(body, dict) else None
            if not isinstance(variant_id, str):
                raise InvalidInput("plan_variant_id is required", {"plan_variant_id": [
                    {"code": "required", "message": "This field is required."}]})
            result = self.signup_rpc.submit_order(merchant_id, variant_id, body)
            result.pop("success_url", None)
            return 201, result
        return self._api(request, create)

    @gateway_http("GET", "/api/v1/contracts/<string:contract_id>")
    def api_get_contract(self, request, contract_id):
        return self._api(request, lambda m, _: (200, self.portal_rpc.get_contract(
            m, contract_id)))

    def _api(self, request, action):
        """Authenticate, parse, run ``action(merchant_id, body) -> (status, data)``, map errors."""
        key = web.bearer_token(request)
        if not key:
            return web.api_error("unauthorized", "Send your secret key as 'Authorization: "
                                 "Bearer sk_…'.", 401)
        try:
            merchant = self._merchant_for_key(key)
            body = web.read_json(request) if request.method in ("POST", "PUT", "PATCH") else {}
            status, data = action(merchant["id"], body)
        except web.BadJson:
            return web.api_error("invalid_json", "The body is not valid JSON.", 400)
        except PorticoError as exc:
            return web.api_error_from(exc)
        return web.json_response(data, status)

    _key_cache: dict = {}

    def _merchant_for_key(self, key: str) -> dict:
        """Authenticate over RPC, remembering good keys for 30 s (revocation lag ≤ 30 s)."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        cached = self._key_cache.get(digest)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        merchant = self.signup_rpc.authenticate(key)
        if len(self._key_cache) > 10_000:
            self._key_cache.clear()
        self._key_cache[digest] = (time.monotonic() + 30, merchant)
        return merchant

