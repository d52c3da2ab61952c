"""Documents service: invoices, credit notes and reminders as PDF with e-invoice data.

Listens to the portal's contract events, issues numbered documents, renders them off the hub
(``render_pool``), keeps the files immutably (``storage``) and announces each one; answers the
gateway's and the portal's queries; registers payments; sends reminders from a timer over the
injected clock.
"""
from __future__ import annotations

import datetime as dt
import logging
import os

from nameko.extensions import DependencyProvider

from services.common.clock import Clock
from services.common.database import Database
from services.common.entrypoints import event_handler, rpc, timer
from services.common.health import HealthRpc
from services.common.telemetry import Correlation

from . import issuing, schemas
from .models import Base
from .render_pool import Renderer, RenderError
from .storage import LocalStorage, StorageError

REQUIRED_SETTINGS = ["DB_URL"]
log = logging.getLogger(__name__)

# Timers are declared with the class, so their period comes from the environment.
DUNNING_SECONDS = float(os.environ.get("DOCUMENTS_DUNNING_SECONDS", "60"))
REPAIR_SECONDS = float(os.environ.get("DOCUMENTS_REPAIR_SECONDS", "30"))
REPAIR_AFTER = dt.timedelta(seconds=60)  # a render still running after this has failed


class DocumentStorage(DependencyProvider):
    """``DOCUMENTS_DIR`` (default ``var/documents``): local, immutable files."""

    def setup(self):
        self.storage = LocalStorage(self.container.config.get("DOCUMENTS_DIR")
                                    or "var/documents")

    def get_dependency(self, worker_ctx):
        return self.storage


class DocumentsService(HealthRpc):
    name = "documents"

    db = Database(Base.metadata)
    correlation = Correlation()
    clock = Clock()
    renderer = Renderer()
    storage = DocumentStorage()

    # -- contract events -------------------------------------------------------------------------
    @event_handler("ContractCreated")
    def handle_contract_created(self, event):
        """Keep the contract; the first invoice now (no trial) or at the trial's end."""
        self._render(issuing.contract_created(self.db, event, self.clock.today()))

    @event_handler("BillingDue")
    def handle_billing_due(self, event):
        """``{"contract_id", "period_start", "period_end"}`` → that period's invoice, once."""
        p = event.payload
        self._render(issuing.bill_period(self.db, event.merchant_id, p["contract_id"],
                                         p["period_start"], p["period_end"],
                                         self.clock.today()))

    @event_handler("ContractCancelled")
    def handle_contract_cancelled(self, event):
        """Credit notes for whatever was invoiced beyond the end date (pro rata)."""
        p = event.payload
        self._render(issuing.contract_cancelled(self.db, event.merchant_id, p["contract_id"],
                                                p["end_date"], self.clock.today()))

    @event_handler("ContractChanged")
    def handle_contract_changed(self, event):
        """Plan/quantity changes: credit note for the old price, invoice for the new one."""
        self._render(issuing.contract_changed(self.db, event, self.clock.today()))

    # -- timers ------------------------------------------------------------------------------------
    @timer(interval=DUNNING_SECONDS)
    def run_dunning(self):
        """Reminders for invoices unpaid N days after their due date (merchant's levels)."""
        return len(self._render(issuing.run_dunning(self.db, self.clock.today())))

    @timer(interval=REPAIR_SECONDS)
    def finish_unrendered(self):
        """Render documents whose first render never finished (crash, dead worker)."""
        before = dt.datetime.now(dt.UTC) - REPAIR_AFTER
        return len(self._render(issuing.unrendered(self.db.session, before)))

    # -- queries -----------------------------------------------------------------------------------
    @rpc
    def list_documents(self, merchant_id, contract_id=None, customer_id=None, kind=None,
                       page=1, per_page=50) -> dict:
        """``list_documents("m_…", kind="invoice", page=1)`` →
        ``{"items": [document, …], "page", "per_page", "total", "has_more"}``."""
        query = schemas.load(schemas.DocumentListQuery(), {
            "contract_id": contract_id, "customer_id": customer_id, "kind": kind,
            "page": page, "per_page": per_page})
        return issuing.list_documents(self.db.session, merchant_id, **query)

    @rpc
    def get_document(self, merchant_id, document_id, contract_id=None) -> dict:
        """One issued document (lines, totals, payment state); another merchant's or contract's
        → ``NotFound``."""
        return issuing.view(self.db.session, issuing.find(self.db.session, merchant_id,
                                                          document_id, contract_id))

    @rpc
    def get_pdf(self, merchant_id, document_id, contract_id=None) -> dict:
        """``{"filename": "INV-2026-00001.pdf", "content_b64": "…", "sha256": "…"}``."""
        row = issuing.find(self.db.session, merchant_id, document_id, contract_id)
        return issuing.file_of(self.storage, row, "pdf")

    @rpc
    def get_xml(self, merchant_id, document_id, contract_id=None) -> dict:
        """The Factur-X (EN 16931) XML alone; ``NotFound`` for reminders."""
        row = issuing.find(self.db.session, merchant_id, document_id, contract_id)
        return issuing.file_of(self.storage, row, "xml")

    # -- commands ----------------------------------------------------------------------------------
    @rpc
    def register_payment(self, merchant_id, body, idempotency_key=None) -> dict:
        """``register_payment("m_…", {"invoice_id": "doc_…", "amount": "35.70"})`` → the
        payment with the invoice's new state; announces ``PaymentReceived``."""
        data = schemas.load(schemas.PaymentCreate(), body)
        return issuing.register_payment(self.db, merchant_id, data, idempotency_key,
                                        self.clock.today())

    @rpc
    def get_document_settings(self, merchant_id) -> dict:
        return issuing.settings_of(self.db.session, merchant_id, fresh=True).as_dict()

    @rpc
    def update_document_settings(self, merchant_id, body) -> dict:
        """Seller block, number formats, payment terms, dunning levels, colours and logo."""
        data = schemas.load(schemas.DocumentSettingsUpdate(), body)
        return issuing.save_settings(self.db.session, self.storage, merchant_id,
                                     data).as_dict()

    # -- rendering ---------------------------------------------------------------------------------
    def _render(self, document_ids: list[str]) -> list[str]:
        """Render, store and publish ``document_ids`` (just recorded by this worker).

        The recording transaction commits first, so numbers are final and no database
        connection is held while the pool renders; each document then publishes in its own
        short transaction. A failure leaves the row for ``finish_unrendered``.
        """
        self.db.commit()
        published = []
        for document_id in document_ids:
            row = issuing.recorded(self.db.session, document_id) or self.db.session.get(
                issuing.Document, document_id)
            if row is None or row.status != "rendering":
                continue
            job = issuing.render_job(self.storage, row)
            self.db.commit()  # end the read: no connection is held while rendering
            try:
                answer = self.renderer.render(job.job)
                values = issuing.store_rendered(self.storage, row, answer)
            except (RenderError, StorageError, ValueError) as exc:
                log.error("rendering %s failed: %s", document_id, exc,
                          extra={"document_id": document_id})
                issuing.render_failed(self.db, document_id, str(exc))
                self.db.commit()
                continue
            if issuing.publish(self.db, document_id, values, self.clock.now(), row):
                published.append(document_id)
            self.db.commit()
        return published
