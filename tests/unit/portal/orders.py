"""Events as the portal receives them (through the wire format), with random identifiers."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from services.common import events


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def delivered(event: events.Event) -> events.Event:
    """What a consumer gets: the envelope dumped to JSON and loaded back."""
    return events.load_envelope(event.body())


def order_submitted(merchant_id: str = "m_test", *, submitted_at="2026-01-01T09:00:00+00:00",
                    trial_days: int = 0, months: int = 1, notice=None, minimum_term=None,
                    customer: dict | None = None, **overrides) -> events.Event:
    payload = {
        "order_id": _id("ord"), "contract_id": _id("ct"), "customer_id": _id("cus"),
        "plan_id": "pl_1", "plan_variant_id": "pv_1", "plan_name": "Pro monthly",
        "currency": "EUR",
        "customer": customer or {"email": "ann@example.com", "first_name": "Ann",
                                 "last_name": "Lee", "country": "DE", "street": "Hauptstr.",
                                 "house_number": "1", "postal_code": "10115", "city": "Berlin"},
        "components": [{"component_id": "co_1", "name": "Seats", "kind": "quantity",
                        "quantity": 3, "unit_price": Decimal("5.00")}],
        "coupon": None,
        "terms": {"setup_fee": Decimal("9.90"), "recurring_fee": Decimal("29.00"),
                  "billing_period_months": months, "trial_days": trial_days,
                  "notice_period": notice or {"value": 1, "unit": "month"},
                  "minimum_term": minimum_term},
        "tax": {"rate": Decimal("19"), "category": "S", "reverse_charge": False,
                "country": "DE"},
        "totals": {"net_total": Decimal("29.00"), "tax_total": Decimal("5.51"),
                   "gross_total": Decimal("34.51"), "recurring_gross": Decimal("34.51")},
        "payment_method": None, "external_id": "ext-1", "language": "de",
        "submitted_at": dt.datetime.fromisoformat(submitted_at),
        **overrides,
    }
    return delivered(events.new_event("OrderSubmitted", merchant_id=merchant_id,
                                      aggregate_id=payload["order_id"], payload=payload))


def document_issued(kind: str, merchant_id: str, contract_id: str, gross: str, *,
                    document_id: str | None = None, currency: str = "EUR",
                    fee: str = "0") -> events.Event:
    gross_total = Decimal(gross)
    payload = {"document_id": document_id or _id("doc"), "number": "RE-1",
               "contract_id": contract_id, "customer_id": "cus_x",
               "issue_date": dt.date(2026, 1, 1), "due_date": None, "period_start": None,
               "period_end": None, "currency": currency, "net_total": gross_total,
               "tax_total": Decimal("0"), "gross_total": gross_total}
    if kind == "CreditNoteIssued":
        payload |= {"corrects_document_id": None, "corrects_number": None}
    if kind == "ReminderIssued":
        payload |= {"invoice_id": "doc_invoice", "level": 1, "fee": Decimal(fee)}
    return delivered(events.new_event(kind, merchant_id=merchant_id,
                                      aggregate_id=payload["document_id"], payload=payload))


def payment_received(merchant_id: str, contract_id: str, amount: str) -> events.Event:
    payload = {"payment_id": _id("pay"), "invoice_id": "doc_invoice", "invoice_number": "RE-1",
               "contract_id": contract_id, "customer_id": "cus_x", "amount": Decimal(amount),
               "currency": "EUR", "paid_on": dt.date(2026, 1, 10), "outstanding": Decimal("0"),
               "reference": None}
    return delivered(events.new_event("PaymentReceived", merchant_id=merchant_id,
                                      aggregate_id=payload["payment_id"], payload=payload))
