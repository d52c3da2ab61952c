"""Merchant REST API for customers, contracts and self-service tokens."""
from __future__ import annotations

from ..http import route


class PortalApi:
    @route("GET", "/api/v1/contracts/<string:contract_id>")
    def api_get_contract(self, request, contract_id):
        return self.api_call(request, lambda m, _: (200, self.portal_rpc.get_contract(
            m, contract_id)))
