"""Merchant REST API for invoices, credit notes, reminders, payments and document downloads.

Every lookup goes through the documents service scoped to the authenticated merchant: another
merchant's document id answers 404 exactly like a missing one.
"""
from __future__ import annotations

import base64

from werkzeug.wrappers import Response

from services.documents import schemas as s

from .. import openapi
from ..http import route

_FILTERS = ("contract_id", "customer_id", "page", "per_page")


def _download(found: dict) -> Response:
    data = base64.b64decode(found["content_b64"])
    response = Response(data, status=200, mimetype=found.get("content_type")
                        or "application/octet-stream")
    response.headers["Content-Disposition"] = f'attachment; filename="{found["filename"]}"'
    response.headers["ETag"] = f'"{found["sha256"]}"'
    response.headers["X-Content-SHA256"] = found["sha256"]
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


class DocumentsApi:
    def _list(self, request, kind: str):
        filters = {name: request.args.get(name) for name in _FILTERS
                   if request.args.get(name) is not None}
        return self.api_call(request, lambda m, _: (200, self.documents_rpc.list_documents(
            m, kind=kind, **filters)))

    @route("GET", "/api/v1/invoices")
    def api_list_invoices(self, request):
        """``?contract_id=&customer_id=&page=1&per_page=50`` → ``{"items", "total", …}``."""
        return self._list(request, "invoice")

    @route("GET", "/api/v1/credit-notes")
    def api_list_credit_notes(self, request):
        return self._list(request, "credit_note")

    @route("GET", "/api/v1/reminders")
    def api_list_reminders(self, request):
        return self._list(request, "reminder")

    @route("GET", "/api/v1/documents/<string:document_id>")
    def api_get_document(self, request, document_id):
        return self.api_call(request, lambda m, _: (200, self.documents_rpc.get_document(
            m, document_id)))

    @route("GET", "/api/v1/documents/<string:document_id>/pdf")
    def api_get_document_pdf(self, request, document_id):
        return self.api_call(request, lambda m, _: (200, _download(
            self.documents_rpc.get_pdf(m, document_id))))

    @route("GET", "/api/v1/documents/<string:document_id>/xml")
    def api_get_document_xml(self, request, document_id):
        return self.api_call(request, lambda m, _: (200, _download(
            self.documents_rpc.get_xml(m, document_id))))

    @route("POST", "/api/v1/payments")
    def api_register_payment(self, request):
        """``{"invoice_id", "amount": "35.70", "paid_on"?, "reference"?}`` (+ optional
        ``Idempotency-Key``) → 201 with the payment and the invoice's new state."""
        key = request.headers.get("Idempotency-Key")
        return self.api_call(request, lambda m, body: (201, self.documents_rpc.register_payment(
            m, body, idempotency_key=key)))

    @route("POST", "/api/v1/invoices/<string:invoice_id>/payments")
    def api_register_invoice_payment(self, request, invoice_id):
        key = request.headers.get("Idempotency-Key")

        def register(merchant_id, body):
            if isinstance(body, dict):
                body = {**body, "invoice_id": invoice_id}
            return 201, self.documents_rpc.register_payment(merchant_id, body,
                                                            idempotency_key=key)
        return self.api_call(request, register)

    @route("GET", "/api/v1/settings/documents")
    def api_get_document_settings(self, request):
        return self.api_call(request, lambda m, _: (
            200, self.documents_rpc.get_document_settings(m)))

    @route("PUT", "/api/v1/settings/documents")
    def api_update_document_settings(self, request):
        """Seller block (name, address, country, VAT ID), number formats, payment terms,
        dunning levels and branding (colours, base64 logo)."""
        return self.api_call(request, lambda m, body: (
            200, self.documents_rpc.update_document_settings(m, body)))


def _register_openapi() -> None:
    tag = ["documents"]
    query = {"contract_id": "Only this contract's documents",
             "customer_id": "Only this customer's documents",
             "page": "1, 2, … (default 1)", "per_page": "1–200 (default 50)"}
    for path, label in (("invoices", "invoices"), ("credit-notes", "credit notes"),
                        ("reminders", "payment reminders")):
        openapi.register(f"/api/v1/{path}", "get", f"List {label}",
                         response_schema=s.DocumentPage, query=query, tags=tag)
    openapi.register("/api/v1/documents/{id}", "get", "Fetch a document",
                     response_schema=s.DocumentView, tags=tag)
    openapi.register("/api/v1/documents/{id}/pdf", "get", "Download the PDF",
                     response_content_type="application/pdf", tags=tag,
                     description="Invoices and credit notes are Factur-X (EN 16931) PDF/A-3 "
                                 "with the XML embedded. ETag and X-Content-SHA256 carry the "
                                 "SHA-256 recorded when it was stored.")
    openapi.register("/api/v1/documents/{id}/xml", "get", "Download the e-invoice XML",
                     response_content_type="application/xml", tags=tag,
                     description="Factur-X / ZUGFeRD CII XML, profile EN 16931; 404 for "
                                 "reminders.")
    idempotency = {"Idempotency-Key": "The same key again returns the first payment; with "
                                      "another invoice or amount → 409."}
    openapi.register("/api/v1/payments", "post", "Register a payment", s.PaymentCreate,
                     s.PaymentView, status=201, headers=idempotency, tags=tag,
                     description="Settles the invoice when nothing is outstanding; emits "
                                 "PaymentReceived.")
    openapi.register("/api/v1/invoices/{invoice_id}/payments", "post",
                     "Register a payment for an invoice", s.PaymentCreate, s.PaymentView,
                     status=201, headers=idempotency, tags=tag)
    openapi.register("/api/v1/settings/documents", "get", "Document settings", tags=tag,
                     response_schema=s.DocumentSettingsUpdate)
    openapi.register("/api/v1/settings/documents", "put", "Change document settings",
                     s.DocumentSettingsUpdate, s.DocumentSettingsUpdate, tags=tag,
                     description="Seller block (printed on every document; its VAT ID is "
                                 "needed for e-invoices), number formats such as "
                                 "INV-{YYYY}-{seq:05}, payment terms in days, 1–3 dunning "
                                 "levels and branding (colours, base64 PNG/JPEG logo).")


_register_openapi()
