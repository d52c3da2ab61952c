"""Merchant REST API for the catalog, self-service settings and orders, plus the OpenAPI document.

Catalog objects (``plans``, ``plan-variants``, ``components``, ``coupons``): ``GET`` list
(``?limit=1..100&offset=``, answering ``{"data": [...], "has_more": bool}``), ``POST`` create
(``Idempotency-Key`` honoured), ``GET /{id}``, ``PATCH /{id}`` (partial update). Another
merchant's id is ``404`` exactly like a missing one. Reference: ``docs/api.md``.
"""
from __future__ import annotations

import base64

from services.common.errors import InvalidInput, PorticoError
from services.signup import schemas as s

from .. import openapi, web
from ..http import route

MAX_LOGO_UPLOAD = 2 * 1024 * 1024
IDEMPOTENCY = {"Idempotency-Key": "Retries with the same key and body get the first response "
                                  "back (24 h, per merchant); another body → 422."}
LIST_QUERY = {"limit": "1–100, default 50", "offset": "default 0"}

CATALOG = {  # path → (RPC noun, create schema, update schema, response schema, tag)
    "plans": ("plan", s.PlanCreate, s.PlanUpdate, s.Plan),
    "plan-variants": ("plan_variant", s.PlanVariantCreate, s.PlanVariantUpdate, s.PlanVariant),
    "components": ("component", s.ComponentCreate, s.ComponentUpdate, s.Component),
    "coupons": ("coupon", s.CouponCreate, s.CouponUpdate, s.Coupon),
}
LIST_RPC = {"plans": "list_plans", "plan-variants": "list_plan_variants",
            "components": "list_components", "coupons": "list_coupons"}


def _page_params(request) -> tuple[int, int]:
    def number(name, default, low, high):
        raw = request.args.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise InvalidInput(f"invalid {name}", {name: [{
                "code": "out_of_range", "params": {"min": low, "max": high},
                "message": f"Must be a whole number between {low} and {high}."}]})
        return int(raw)
    return number("limit", 50, 1, 100), number("offset", 0, 0, 10**9)


class SignupApi:
    # -- catalog ----------------------------------------------------------------------------------
    def _catalog_list(self, request, kind):
        def action(merchant_id, _):
            limit, offset = _page_params(request)
            extra = {}
            if kind == "plan-variants" and request.args.get("plan_id"):
                extra["plan_id"] = request.args["plan_id"][:40]
            rows = getattr(self.signup_rpc, LIST_RPC[kind])(merchant_id, limit + 1, offset,
                                                            **extra)
            return 200, {"data": rows[:limit], "has_more": len(rows) > limit}
        return self.api_call(request, action)

    def _catalog_create(self, request, kind):
        noun = CATALOG[kind][0]
        key = request.headers.get("Idempotency-Key")
        return self.api_call(request, lambda m, body: (201, getattr(
            self.signup_rpc, f"create_{noun}")(m, body, key)))

    def _catalog_get(self, request, kind, object_id):
        noun = CATALOG[kind][0]
        return self.api_call(request, lambda m, _: (200, getattr(
            self.signup_rpc, f"get_{noun}")(m, object_id)))

    def _catalog_update(self, request, kind, object_id):
        noun = CATALOG[kind][0]
        return self.api_call(request, lambda m, body: (200, getattr(
            self.signup_rpc, f"update_{noun}")(m, object_id, body)))

    @route("GET", "/api/v1/plans")
    def api_list_plans(self, request):
        return self._catalog_list(request, "plans")

    @route("POST", "/api/v1/plans")
    def api_create_plan(self, request):
        return self._catalog_create(request, "plans")

    @route("GET", "/api/v1/plans/<string:object_id>")
    def api_get_plan(self, request, object_id):
        return self._catalog_get(request, "plans", object_id)

    @route("PATCH", "/api/v1/plans/<string:object_id>")
    def api_update_plan(self, request, object_id):
        return self._catalog_update(request, "plans", object_id)

    @route("GET", "/api/v1/plan-variants")
    def api_list_variants(self, request):
        return self._catalog_list(request, "plan-variants")

    @route("POST", "/api/v1/plan-variants")
    def api_create_variant(self, request):
        return self._catalog_create(request, "plan-variants")

    @route("GET", "/api/v1/plan-variants/<string:object_id>")
    def api_get_variant(self, request, object_id):
        return self._catalog_get(request, "plan-variants", object_id)

    @route("PATCH", "/api/v1/plan-variants/<string:object_id>")
    def api_update_variant(self, request, object_id):
        return self._catalog_update(request, "plan-variants", object_id)

    @route("GET", "/api/v1/components")
    def api_list_components(self, request):
        return self._catalog_list(request, "components")

    @route("POST", "/api/v1/components")
    def api_create_component(self, request):
        return self._catalog_create(request, "components")

    @route("GET", "/api/v1/components/<string:object_id>")
    def api_get_component(self, request, object_id):
        return self._catalog_get(request, "components", object_id)

    @route("PATCH", "/api/v1/components/<string:object_id>")
    def api_update_component(self, request, object_id):
        return self._catalog_update(request, "components", object_id)

    @route("GET", "/api/v1/coupons")
    def api_list_coupons(self, request):
        return self._catalog_list(request, "coupons")

    @route("POST", "/api/v1/coupons")
    def api_create_coupon(self, request):
        return self._catalog_create(request, "coupons")

    @route("GET", "/api/v1/coupons/<string:object_id>")
    def api_get_coupon(self, request, object_id):
        return self._catalog_get(request, "coupons", object_id)

    @route("PATCH", "/api/v1/coupons/<string:object_id>")
    def api_update_coupon(self, request, object_id):
        return self._catalog_update(request, "coupons", object_id)

    # -- self-service settings --------------------------------------------------------------------
    @route("GET", "/api/v1/settings/self-service")
    def api_get_self_service_settings(self, request):
        return self.api_call(request, lambda m, _: (
            200, self.signup_rpc.get_self_service_settings(m)))

    @route("PUT", "/api/v1/settings/self-service")
    def api_put_self_service_settings(self, request):
        def update(merchant_id, body):
            saved = self.signup_rpc.update_self_service_settings(merchant_id, body)
            self.settings_cache.forget(merchant_id)
            return 200, saved
        return self.api_call(request, update)

    @route("PUT", "/api/v1/settings/self-service/logo")
    def api_put_logo(self, request):
        """The raw image as the body (``Content-Type: image/png`` or ``image/jpeg``)."""
        def upload(merchant_id):
            if (request.content_length or 0) > MAX_LOGO_UPLOAD:
                raise InvalidInput("logo too large", {"logo": [{
                    "code": "too_large", "params": {"max_bytes": MAX_LOGO_UPLOAD},
                    "message": f"The logo may be at most {MAX_LOGO_UPLOAD} bytes."}]})
            data = request.stream.read(MAX_LOGO_UPLOAD + 1)
            if "svg" in (request.mimetype or ""):
                raise InvalidInput("SVG refused", {"logo": [{
                    "code": "svg_not_allowed", "params": {},
                    "message": "SVG logos are not accepted; upload a PNG or JPEG image."}]})
            if len(data) > MAX_LOGO_UPLOAD:
                raise InvalidInput("logo too large", {"logo": [{
                    "code": "too_large", "params": {"max_bytes": MAX_LOGO_UPLOAD},
                    "message": f"The logo may be at most {MAX_LOGO_UPLOAD} bytes."}]})
            saved = self.signup_rpc.set_logo(merchant_id, base64.b64encode(data).decode())
            self.settings_cache.forget(merchant_id)
            return 200, saved
        return self._raw_api_call(request, upload)

    @route("DELETE", "/api/v1/settings/self-service/logo")
    def api_delete_logo(self, request):
        def delete(merchant_id):
            deleted = self.signup_rpc.delete_logo(merchant_id)
            self.settings_cache.forget(merchant_id)
            return 200, deleted
        return self._raw_api_call(request, delete)

    def _raw_api_call(self, request, action):
        """Like ``api_call`` for bodies that are not JSON."""
        key = web.bearer_token(request)
        if not key:
            return web.api_error("unauthorized", "Send your secret key as 'Authorization: "
                                 "Bearer sk_…'.", 401)
        try:
            merchant = self.merchant_for_key(key)
            status, data = action(merchant["id"])
        except PorticoError as exc:
            return web.api_error_from(exc)
        return web.json_response(data, status)

    # -- orders -----------------------------------------------------------------------------------
    @route("POST", "/api/v1/orders/preview")
    def api_preview_order(self, request):
        def preview(merchant_id, body):
            variant_id = body.get("plan_variant_id") if isinstance(body, dict) else None
            if not isinstance(variant_id, str):
                raise InvalidInput("plan_variant_id is required", {"plan_variant_id": [
                    {"code": "required", "message": "This field is required.", "params": {}}]})
            return 200, self.signup_rpc.preview_order(merchant_id, variant_id, body)
        return self.api_call(request, preview)

    @route("POST", "/api/v1/orders")
    def api_create_order(self, request):
        key = request.headers.get("Idempotency-Key")
        replayed = []

        def create(merchant_id, body):
            result = self.signup_rpc.place_order(merchant_id, body, key)
            replayed.append(result["replayed"])
            return result["status"], result["body"]
        response = self.api_call(request, create)
        if replayed and replayed[0]:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    @route("GET", "/api/v1/orders/<string:order_id>")
    def api_get_order(self, request, order_id):
        return self.api_call(request, lambda m, _: (200, self.signup_rpc.get_order(m,
                                                                                   order_id)))

    # -- OpenAPI ----------------------------------------------------------------------------------
    @route("GET", "/api/v1/openapi.json")
    def api_openapi(self, request):
        response = web.json_response(openapi.spec())
        response.headers["Cache-Control"] = "public, max-age=300"
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response


def _register_openapi() -> None:
    for kind, (noun, create, update, out) in CATALOG.items():
        tag = ["catalog"]
        label = noun.replace("_", " ")
        openapi.register(f"/api/v1/{kind}", "get", f"List {label}s",
                         response_schema=s.page_of(out), query=LIST_QUERY |
                         ({"plan_id": "Only this plan's variants"}
                          if kind == "plan-variants" else {}), tags=tag)
        openapi.register(f"/api/v1/{kind}", "post", f"Create a {label}", create, out,
                         status=201, headers=IDEMPOTENCY, tags=tag)
        openapi.register(f"/api/v1/{kind}/{{id}}", "get", f"Fetch a {label}",
                         response_schema=out, tags=tag)
        openapi.register(f"/api/v1/{kind}/{{id}}", "patch", f"Update a {label}", update, out,
                         description="Partial update: only the fields sent change.", tags=tag)
    tag = ["settings"]
    openapi.register("/api/v1/settings/self-service", "get", "Self-service settings",
                     response_schema=s.SelfServiceSettings, tags=tag)
    openapi.register("/api/v1/settings/self-service", "put", "Change self-service settings",
                     s.SelfServiceSettings, s.SelfServiceSettings, tags=tag,
                     description=s.SelfServiceSettings.__doc__)
    openapi.register("/api/v1/settings/self-service/logo", "put", "Upload the logo",
                     response_schema=s.Logo, request_content_type="image/png", tags=tag,
                     description="PNG or JPEG (≤ 2 MB), re-encoded and scaled to at most "
                                 "800×400 px; SVG is refused.")
    openapi.register("/api/v1/settings/self-service/logo", "delete", "Remove the logo",
                     response_schema=s.Logo, tags=tag)
    tag = ["orders"]
    openapi.register("/api/v1/orders/preview", "post", "Price an order without placing it",
                     s.OrderRequest, s.OrderPreview, tags=tag)
    openapi.register("/api/v1/orders", "post", "Place an order", s.OrderRequest, s.Order,
                     status=201, headers=IDEMPOTENCY, tags=tag,
                     description="Emits OrderSubmitted; the portal service then creates the "
                                 "customer and contract (same contract_id).")
    openapi.register("/api/v1/orders/{id}", "get", "Fetch an order", response_schema=s.Order,
                     tags=tag)
    openapi.register("/api/v1/openapi.json", "get", "This document", public=True,
                     tags=["meta"])


_register_openapi()
