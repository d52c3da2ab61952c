"""Merchant REST API for customers, contracts and self-service tokens.

    GET    /api/v1/contracts/{id}
    POST   /api/v1/contracts/{id}/self-service-token   {"validity_minutes": 1..10080}
    DELETE /api/v1/contracts/{id}/self-service-tokens
    POST   /api/v1/contracts/{id}/cancellation         {"expected_end_date": "YYYY-MM-DD"}?
    DELETE /api/v1/contracts/{id}/cancellation         (withdraw a pending cancellation)
    GET    /api/v1/customers/{id}
    PATCH  /api/v1/customers/{id}                      {"street": …, …}

Another merchant's contract or customer is 404, exactly like a missing one.
"""
from __future__ import annotations

from services.common.errors import InvalidInput

from ..http import route


def _object(body) -> dict:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", {"_body": [
            {"code": "invalid", "message": "The body must be a JSON object.", "params": {}}]})
    return body


class PortalApi:
    @route("GET", "/api/v1/contracts/<string:contract_id>")
    def api_get_contract(self, request, contract_id):
        return self.api_call(request, lambda m, _: (200, self.portal_rpc.get_contract(
            m, contract_id)))

    @route("POST", "/api/v1/contracts/<string:contract_id>/self-service-token")
    def api_mint_token(self, request, contract_id):
        """→ ``201 {"token": "pt_…", "expires_at": "…", "url": "https://…/portal?token=…"}``."""
        def mint(merchant_id, body):
            validity = _object(body).get("validity_minutes")
            return 201, self.tokens_rpc.mint_token(merchant_id, contract_id, validity)
        return self.api_call(request, mint)

    @route("DELETE", "/api/v1/contracts/<string:contract_id>/self-service-tokens")
    def api_revoke_tokens(self, request, contract_id):
        """Revoke every token and portal session of the contract → ``{"revoked": n}``."""
        return self.api_call(request, lambda m, _: (200, {
            "revoked": self.tokens_rpc.revoke_contract(m, contract_id)}))

    @route("POST", "/api/v1/contracts/<string:contract_id>/cancellation")
    def api_cancel_contract(self, request, contract_id):
        def cancel(merchant_id, body):
            expected = _object(body).get("expected_end_date")
            return 200, self.portal_rpc.cancel_contract(merchant_id, contract_id, expected)
        return self.api_call(request, cancel)

    @route("DELETE", "/api/v1/contracts/<string:contract_id>/cancellation")
    def api_withdraw_cancellation(self, request, contract_id):
        return self.api_call(request, lambda m, _: (200, self.portal_rpc.withdraw_cancellation(
            m, contract_id)))

    @route("GET", "/api/v1/customers/<string:customer_id>")
    def api_get_customer(self, request, customer_id):
        return self.api_call(request, lambda m, _: (200, self.portal_rpc.get_customer(
            m, customer_id)))

    @route("PATCH", "/api/v1/customers/<string:customer_id>")
    def api_change_customer(self, request, customer_id):
        return self.api_call(request, lambda m, body: (200, self.portal_rpc.change_customer(
            m, customer_id, _object(body))))
