"""Merchant REST API for the catalog and orders (``/api/v1/plans`` … ``/api/v1/orders``)."""
from __future__ import annotations

from services.common.errors import InvalidInput

from ..http import route


class SignupApi:
    # -- merchant REST API ------------------------------------------------------------------------
    @route("POST", "/api/v1/plans")
    def api_create_plan(self, request):
        return self.api_call(request, lambda m, body: (201, self.signup_rpc.create_plan(m, body)))

    @route("POST", "/api/v1/plan-variants")
    def api_create_variant(self, request):
        return self.api_call(request,
                         lambda m, body: (201, self.signup_rpc.create_plan_variant(m, body)))

    @route("GET", "/api/v1/plan-variants/<string:variant_id>")
    def api_get_variant(self, request, variant_id):
        return self.api_call(request, lambda m, _: (200, self.signup_rpc.get_plan_variant(
            m, variant_id)))

    @route("POST", "/api/v1/orders/preview")
    def api_preview_order(self, request):
        def preview(merchant_id, body):
            variant_id = body.get("plan_variant_id") if isinstance(body, dict) else None
            if not isinstance(variant_id, str):
                raise InvalidInput("plan_variant_id is required", {"plan_variant_id": [
                    {"code": "required", "message": "This field is required."}]})
            return 200, self.signup_rpc.preview_order(merchant_id, variant_id, body)
        return self.api_call(request, preview)

    @route("POST", "/api/v1/orders")
    def api_create_order(self, request):
        def create(merchant_id, body):
            variant_id = body.get("plan_variant_id") if isinstance(body, dict) else None
            if not isinstance(variant_id, str):
                raise InvalidInput("plan_variant_id is required", {"plan_variant_id": [
                    {"code": "required", "message": "This field is required."}]})
            result = self.signup_rpc.submit_order(merchant_id, variant_id, body)
            result.pop("success_url", None)
            return 201, result
        return self.api_call(request, create)
