"""Portal service: customers and contracts, created from orders; what the portal shows and
changes (customer data, payment method, cancellation); the contract lifecycle timer."""
from __future__ import annotations

import datetime as dt
import logging
import os

import eventlet
from nameko.dependency_providers import Config
from nameko.exceptions import MethodNotFound
from nameko.rpc import RpcProxy

from services.common import customer_fields
from services.common.clock import Clock
from services.common.database import Database
from services.common.entrypoints import event_handler, rpc, timer
from services.common.errors import InvalidInput, NotFound
from services.common.health import HealthRpc
from services.common.telemetry import Correlation

from . import contracts, customers, ledger, payment_methods, sessions
from .models import Base

REQUIRED_SETTINGS = ["DB_URL"]
# How often the lifecycle timer looks for periods to bill and cancellations taking effect.
# It only reads contracts whose next action is due (an indexed date), so it is cheap to run often.
LIFECYCLE_INTERVAL = float(os.environ.get("PORTAL_LIFECYCLE_INTERVAL_SECONDS", "30"))

log = logging.getLogger(__name__)


class UpstreamTimeout(Exception):
    """The signup service did not answer in time: fail the call rather than hold the worker."""


class PortalService(HealthRpc):
    name = "portal"

    db = Database(Base.metadata)
    correlation = Correlation()
    clock = Clock()
    config = Config()
    signup_rpc = RpcProxy("signup")

    # -- events ---------------------------------------------------------------------------------
    @event_handler("OrderSubmitted")
    def handle_order_submitted(self, event):
        contracts.create_from_order(self.db, event, self.clock)

    @event_handler("InvoiceIssued")
    def handle_invoice_issued(self, event):
        ledger.record_document(self.db, event, ledger.INVOICE)

    @event_handler("CreditNoteIssued")
    def handle_credit_note_issued(self, event):
        ledger.record_document(self.db, event, ledger.CREDIT_NOTE)

    @event_handler("ReminderIssued")
    def handle_reminder_issued(self, event):
        ledger.record_document(self.db, event, ledger.FEE)

    @event_handler("PaymentReceived")
    def handle_payment_received(self, event):
        ledger.record_payment(self.db, event)

    # -- the lifecycle --------------------------------------------------------------------------
    @timer(interval=LIFECYCLE_INTERVAL)
    def run_lifecycle(self):
        """Emit ``BillingDue`` for every period that has begun and ``ContractEnded`` for every
        cancellation that took effect, by the injected clock; idempotent."""
        moved = contracts.run_lifecycle(self.db, self.clock.today())
        if moved:
            log.info("lifecycle advanced %d contract(s)", moved)
        return moved

    # -- reading --------------------------------------------------------------------------------
    @rpc
    def get_contract(self, merchant_id: str, contract_id: str) -> dict:
        """``get_contract("m_…", "ct_…")`` → the contract as the portal and API show it."""
        contract = contracts.get_contract(self.db.session, merchant_id, contract_id)
        return contracts.contract_view(self.db.session, contract, self.clock.today())

    @rpc
    def verify_contract(self, merchant_id: str, contract_id: str) -> dict:
        """``{"contract_id", "customer_id", "state"}`` or ``NotFound`` (the tokens service
        checks this before it mints)."""
        contract = contracts.get_contract(self.db.session, merchant_id, contract_id)
        return {"contract_id": contract.id, "customer_id": contract.customer_id,
                "state": str(contracts.state(contract, self.clock.today()))}

    @rpc
    def portal_view(self, session_id: str, documents: bool = False) -> dict:
        """Everything a portal page needs in one call: ``portal_view("ps_…", documents=True)``
        → ``{"merchant_id", "contract_id", "expires_at", "contract": {...}, "documents":
        [...] | None}``; ``Unauthorized`` (malformed, unknown session) or ``Gone`` (expired,
        revoked, signed out)."""
        row, contract, customer = sessions.verify_with_contract(
            self.db.session, session_id, self.clock.now())
        if contract is None:
            raise NotFound("contract not found")
        account = ledger.Account.of(self.db.session, contract)
        return {"merchant_id": row.merchant_id, "contract_id": row.contract_id,
                "expires_at": row.expires_at.isoformat(),
                "contract": contracts.contract_view(self.db.session, contract,
                                                    self.clock.today(), customer=customer,
                                                    account=account),
                "documents": account.documents() if documents else None}

    # -- portal sessions (opened by the tokens service when it accepts a token) -----------------
    @rpc
    def open_session(self, merchant_id: str, contract_id: str, token_id: str,
                     expires_at: str) -> dict:
        """``open_session("m_…", "ct_…", "tok_…", "2026-…")`` → ``{"session_id",
        "expires_at"}``; ``NotFound`` for another merchant's or a missing contract."""
        contracts.get_contract(self.db.session, merchant_id, contract_id)
        return sessions.open_session(self.db.session, merchant_id, contract_id, token_id,
                                     dt.datetime.fromisoformat(expires_at), self.clock.now())

    @rpc
    def end_session(self, session_id: str) -> bool:
        """Sign out → whether a live session ended."""
        return sessions.end(self.db.session, session_id, self.clock.now())

    @rpc
    def revoke_sessions(self, merchant_id: str, contract_id: str) -> int:
        """End every session of the contract → how many; ``NotFound`` for another merchant's
        or a missing contract (the tokens service calls this when tokens are revoked)."""
        contracts.get_contract(self.db.session, merchant_id, contract_id)
        return sessions.revoke_contract(self.db.session, merchant_id, contract_id,
                                        self.clock.now())

    @timer(interval=3600)
    def purge_sessions(self):
        sessions.purge(self.db.session, self.clock.now())

    @rpc
    def latest_contract_id(self, merchant_id: str) -> str | None:
        """The merchant's newest contract id, or ``None`` (the demo portal link)."""
        return contracts.latest_contract_id(self.db.session, merchant_id)

    @rpc
    def get_customer(self, merchant_id: str, customer_id: str) -> dict:
        return customers.customer_view(
            customers.get_customer(self.db.session, merchant_id, customer_id))

    # -- changes --------------------------------------------------------------------------------
    @rpc
    def change_contract_customer(self, merchant_id: str, contract_id: str, changes: dict) -> dict:
        """The portal's customer form: ``change_contract_customer("m_…", "ct_…", {"street": …})``
        → the contract view; ``InvalidInput`` per field; ``CustomerChanged`` with before/after."""
        modes = self._field_modes(merchant_id)
        contract = contracts.get_contract(self.db.session, merchant_id, contract_id)
        customer = customers.get_customer(self.db.session, merchant_id, contract.customer_id)
        customers.change_customer(self.db, customer, changes, modes, self.clock.today(),
                                  contract_id=contract.id)
        return contracts.contract_view(self.db.session, contract, self.clock.today())

    @rpc
    def change_customer(self, merchant_id: str, customer_id: str, changes: dict) -> dict:
        """The merchant API's ``PATCH /api/v1/customers/{id}`` → the customer."""
        modes = self._field_modes(merchant_id)
        customer = customers.get_customer(self.db.session, merchant_id, customer_id)
        customers.change_customer(self.db, customer, changes, modes, self.clock.today())
        return customers.customer_view(customer)

    @rpc
    def change_payment_method(self, merchant_id: str, contract_id: str, method: dict) -> dict:
        """``{"type": "sepa_debit", "iban", "account_holder", "mandate_accepted": true}`` →
        the contract view with the masked method; the IBAN itself is never stored."""
        contract = contracts.get_contract(self.db.session, merchant_id, contract_id)
        payment_methods.change(self.db, contract, method)
        return contracts.contract_view(self.db.session, contract, self.clock.today())

    @rpc
    def cancel_contract(self, merchant_id: str, contract_id: str,
                        expected_end_date: str | None = None) -> dict:
        """Cancel as of today → the contract view with ``cancellation.end_date``."""
        expected = _parse_date(expected_end_date, "expected_end_date")
        contract = contracts.get_contract(self.db.session, merchant_id, contract_id)
        contracts.cancel(self.db, contract, self.clock.today(), expected)
        return contracts.contract_view(self.db.session, contract, self.clock.today())

    @rpc
    def withdraw_cancellation(self, merchant_id: str, contract_id: str) -> dict:
        contract = contracts.get_contract(self.db.session, merchant_id, contract_id)
        contracts.withdraw_cancellation(self.db, contract, self.clock.today())
        return contracts.contract_view(self.db.session, contract, self.clock.today())

    def _field_modes(self, merchant_id: str) -> dict:
        """The merchant's customer field modes, asked before any table is touched (no RPC while
        holding a transaction)."""
        seconds = float(self.config.get("RPC_TIMEOUT_SECONDS", 10))
        late = UpstreamTimeout(f"signup did not answer in {seconds:g} s")
        try:
            with eventlet.Timeout(seconds, late):
                fields = (self.signup_rpc.get_settings(merchant_id) or {}).get("fields") or {}
        except MethodNotFound:  # a signup service that predates self-service settings
            fields = {}
        return customer_fields.resolve_modes(
            {k: v for k, v in fields.items() if k in customer_fields.FIELDS})


def _parse_date(value, field: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"{field} is not a date", {field: [
            {"code": "invalid_date", "message": "Enter a date as YYYY-MM-DD.",
             "params": {}}]}) from None
