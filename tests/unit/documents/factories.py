"""Events and settings the documents tests build on (unit, integration and e2e tiers).

Every factory takes overrides and invents fresh ids, so tests never depend on each other.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal

import kombu
from lxml import etree
from pypdf import PdfReader

from services.common import events, topology
from services.common.amqp import CONFIRMED, ConfirmingPublisher, Outgoing, json_body

SELLER = {"name": "Max Müller", "company": "Acme Software GmbH", "street": "Hauptstraße",
          "house_number": "1a", "postal_code": "10115", "city": "Berlin", "country": "DE",
          "vat_id": "DE136695976", "email": "billing@acme.example"}


def new_merchant_id() -> str:
    return f"m_{uuid.uuid4().hex[:16]}"


def customer(**overrides) -> dict:
    return {"email": "jeanne@example.com", "first_name": "Jeanne", "last_name": "Dupré",
            "company_name": None, "street": "Rue de Rivoli", "house_number": "5",
            "postal_code": "75001", "city": "Paris", "country": "FR", "vat_id": None,
            "language": "en", **overrides}


def terms(**overrides) -> dict:
    return {"setup_fee": Decimal("9.90"), "recurring_fee": Decimal("29.00"),
            "billing_period_months": 1, "trial_days": 0,
            "notice_period": {"value": 1, "unit": "month"}, "minimum_term": None, **overrides}


def contract_payload(contract_id: str | None = None, *, start=dt.date(2027, 1, 15),
                     trial_end=None, language="en", components=None, coupon=None,
                     tax=None, customer_overrides=None, **term_overrides) -> dict:
    contract_id = contract_id or f"ct_{uuid.uuid4().hex}"
    return {
        "contract_id": contract_id, "customer_id": f"cus_{uuid.uuid4().hex}",
        "order_id": f"ord_{uuid.uuid4().hex}", "plan_variant_id": "pv_1",
        "plan_name": "Pro monthly", "currency": "EUR", "start_date": start,
        "trial_end": trial_end, "billing_start": trial_end or start,
        "terms": terms(**term_overrides),
        "components": components if components is not None else [
            {"component_id": "cmp_seats", "name": "Extra seats", "kind": "quantity",
             "quantity": 3, "unit_price": Decimal("4.50")}],
        "coupon": coupon,
        "tax": tax or {"rate": Decimal("20"), "category": "S", "reverse_charge": False,
                       "country": "FR"},
        "customer": customer(**(customer_overrides or {})), "language": language,
    }


def contract_created(merchant_id: str, **kwargs) -> events.Event:
    payload = contract_payload(**kwargs)
    return events.new_event("ContractCreated", merchant_id=merchant_id,
                            aggregate_id=payload["contract_id"], payload=payload)


def billing_due(merchant_id: str, contract_id: str, start: dt.date,
                end: dt.date) -> events.Event:
    return events.new_event("BillingDue", merchant_id=merchant_id, aggregate_id=contract_id,
                            payload={"contract_id": contract_id, "period_start": start,
                                     "period_end": end})


def contract_cancelled(merchant_id: str, contract_id: str, end_date: dt.date,
                       requested_on: dt.date) -> events.Event:
    return events.new_event("ContractCancelled", merchant_id=merchant_id,
                            aggregate_id=contract_id, payload={
        "contract_id": contract_id, "customer_id": "cus_x", "requested_on": requested_on,
        "end_date": end_date, "last_day": end_date - dt.timedelta(days=1)})


def contract_changed(merchant_id: str, contract_id: str, changes: dict) -> events.Event:
    return events.new_event("ContractChanged", merchant_id=merchant_id,
                            aggregate_id=contract_id,
                            payload={"contract_id": contract_id, "changes": changes})


def settings(**overrides) -> dict:
    return {"seller": dict(SELLER), "payment_terms_days": 14, **overrides}


# -- the broker --------------------------------------------------------------------------------


def publish(amqp_uri: str, *events_: events.Event) -> None:
    """Publish as the source service's outbox relay would (confirmed, persistent)."""
    publisher = ConfirmingPublisher(amqp_uri)
    try:
        results = publisher.publish_batch([
            Outgoing(exchange=e.kind.exchange, routing_key=e.type,
                     body=json_body(e.body()), message_id=e.event_id) for e in events_])
    finally:
        publisher.close()
    assert all(r == CONFIRMED for r in results), results


class EventTap:
    """A queue bound to ``documents.events`` that collects what the service announces."""

    def __init__(self, amqp_uri: str, source: str = "documents"):
        self.connection = kombu.Connection(amqp_uri)
        self.queue = kombu.Queue(f"test-tap-{uuid.uuid4().hex[:8]}",
                                 exchange=topology.event_exchange(source), routing_key="#",
                                 auto_delete=True)
        self.queue(self.connection.channel()).declare()
        self.seen: list[dict] = []

    def drain(self) -> list[dict]:
        bound = self.queue(self.connection.channel())
        while (message := bound.get(no_ack=True)) is not None:
            body = message.body
            self.seen.append(json.loads(body) if isinstance(body, (bytes, str)) else body)
        return self.seen

    def of_type(self, event_type: str) -> list[dict]:
        return [e for e in self.drain() if e["type"] == event_type]

    def close(self) -> None:
        self.connection.release()


# -- reading documents back --------------------------------------------------------------------


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def xml_values(xml: bytes, path: str) -> list[str]:
    ns = {"rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
          "ram": "urn:un:unece:uncefact:data:standard:"
                 "ReusableAggregateBusinessInformationEntity:100"}
    return [node.text for node in etree.fromstring(xml).xpath(path, namespaces=ns)]
