"""Portal service: customers and contracts, created from orders; what the portal shows."""
from __future__ import annotations

from services.common.clock import Clock
from services.common.database import Database
from services.common.entrypoints import event_handler, rpc
from services.common.health import HealthRpc
from services.common.telemetry import Correlation

from . import contracts
from .models import Base

REQUIRED_SETTINGS = ["DB_URL"]


class PortalService(HealthRpc):
    name = "portal"

    db = Database(Base.metadata)
    correlation = Correlation()
    clock = Clock()


    @event_handler("OrderSubmitted")
    def handle_order_submitted(self, event):
        contracts.create_from_order(self.db, event, self.clock)

    @rpc
    def get_contract(self, merchant_id: str, contract_id: str) -> dict:
        """``get_contract("m_…", "ct_…")`` → the contract as the portal and API show it."""
        contract = contracts.get_contract(self.db.session, merchant_id, contract_id)
        return contracts.contract_view(self.db.session, contract, self.clock.today())
