"""A merchant's customer signs up; the merchant finds the first invoice over the REST API, equal
to the order preview to the cent, downloads its Factur-X PDF and XML, and registers the
payment. Another merchant cannot see any of it."""
from __future__ import annotations

import hashlib
import io
from decimal import Decimal

import facturx
from pypdf import PdfReader

from tests.support.cluster import wait_until
from tests.unit.documents import factories as f

CUSTOMER = {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee",
            "street": "Unter den Linden", "house_number": "5", "postal_code": "10117",
            "city": "Berlin", "country": "DE"}


def test_first_invoice_matches_the_preview_downloads_and_settles(cluster, client, merchant):
    key = merchant["secret_key"]
    settings = client.api("PUT", "/api/v1/settings/documents", key, json=f.settings(
        number_formats={"invoice": "RE-{YYYY}-{seq:04}"}))
    assert settings.status_code == 200, settings.text
    assert settings.json()["seller"]["vat_id"] == "DE136695976"

    order = {"plan_variant_id": merchant["plan_variant_id"], "customer": CUSTOMER}
    preview = client.api("POST", "/api/v1/orders/preview", key, json=order)
    assert preview.status_code == 200, preview.text
    placed = client.api("POST", "/api/v1/orders", key, json=order)
    assert placed.status_code == 201, placed.text
    contract_id = placed.json()["contract_id"]

    def first_invoice():
        reply = client.api("GET", f"/api/v1/invoices?contract_id={contract_id}", key)
        return reply.json()["items"] if reply.status_code == 200 and reply.json()[
            "items"] else None

    [invoice] = wait_until(first_invoice, timeout=30, what="the first invoice")
    price = preview.json()["price"]
    assert invoice["gross_total"] == price["gross_total"]
    assert invoice["net_total"] == price["net_total"]
    assert Decimal(invoice["tax_total"]) == Decimal(price["tax"]["amount"])
    assert invoice["number"].startswith("RE-") and invoice["number"].endswith("-0001")

    pdf = client.api("GET", f"/api/v1/documents/{invoice['id']}/pdf", key)
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert hashlib.sha256(pdf.content).hexdigest() == pdf.headers["X-Content-SHA256"] == \
        invoice["pdf"]["sha256"]
    assert f'filename="{invoice["number"]}.pdf"' in pdf.headers["Content-Disposition"]
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    for expected in (invoice["number"], "Ann Lee", "Unter den Linden 5", "Acme Software GmbH",
                     "Hauptstraße 1a"):
        assert expected in text, expected
    xml = client.api("GET", f"/api/v1/documents/{invoice['id']}/xml", key)
    assert xml.status_code == 200
    assert facturx.get_facturx_xml_from_pdf(pdf.content, check_xsd=True)[1] == xml.content

    other = cluster.make_merchant()
    for path in (f"/api/v1/documents/{invoice['id']}", f"/api/v1/documents/{invoice['id']}/pdf",
                 f"/api/v1/documents/{invoice['id']}/xml"):
        refused = client.api("GET", path, other["secret_key"])
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    assert client.api("GET", f"/api/v1/invoices?contract_id={contract_id}",
                      other["secret_key"]).json()["items"] == []
    assert client.api("POST", "/api/v1/payments", other["secret_key"], json={
        "invoice_id": invoice["id"], "amount": invoice["gross_total"]}).status_code == 404

    bad = client.api("POST", f"/api/v1/invoices/{invoice['id']}/payments", key,
                     json={"amount": "-5"})
    assert bad.status_code == 400 and bad.json()["error"]["fields"]["amount"][0]["code"] == \
        "not_positive"
    paid = client.api("POST", f"/api/v1/invoices/{invoice['id']}/payments", key,
                      json={"amount": invoice["gross_total"], "reference": "SEPA 1"},
                      headers={"Idempotency-Key": "e2e-pay-1"})
    assert paid.status_code == 201, paid.text
    assert paid.json()["invoice"]["payment_status"] == "settled"
    assert client.api("GET", f"/api/v1/documents/{invoice['id']}", key).json()[
        "outstanding"] == "0.00"
    assert client.api("GET", "/api/v1/credit-notes", key).json()["total"] == 0


def test_bad_requests_are_answered_with_codes_not_tracebacks(cluster, client, merchant):
    key = merchant["secret_key"]
    page = client.api("GET", "/api/v1/invoices?page=0&per_page=1000", key)
    assert page.status_code == 400
    assert set(page.json()["error"]["fields"]) == {"page", "per_page"}
    assert client.api("GET", "/api/v1/documents/doc_missing/pdf", key).status_code == 404
    assert client.get("/api/v1/invoices").status_code == 401
    settings = client.api("PUT", "/api/v1/settings/documents", key,
                          json={"seller": {"name": "X", "country": "DE", "vat_id": "DE1"}})
    assert settings.status_code == 400
    assert settings.json()["error"]["fields"]["seller.vat_id"][0]["code"] == "invalid_vat_id"
    spec = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/invoices", "/api/v1/credit-notes", "/api/v1/documents/{id}/pdf",
            "/api/v1/payments", "/api/v1/settings/documents"} <= set(spec["paths"])
