"""The event catalogue and envelope: one definition per type, validated both ways."""
import datetime as dt
import json
import re
import uuid
from decimal import Decimal

import pytest
from marshmallow import ValidationError

from services.common import events

SERVICES = {"signup", "portal", "tokens", "notifications", "documents"}


def test_every_type_is_a_pascal_case_fact_from_a_real_service():
    for name, kind in events.CATALOGUE.items():
        assert re.fullmatch(r"(?:[A-Z][a-z]+)+", name), name
        assert kind.name == name
        assert kind.source in SERVICES
        assert kind.exchange == f"{kind.source}.events"


def test_an_event_survives_the_wire_unchanged():
    event = events.new_event("InvoiceIssued", merchant_id="m_1", aggregate_id="ct_1", payload={
        "document_id": "doc_1", "number": "INV-2027-00001", "contract_id": "ct_1",
        "customer_id": "cus_1", "issue_date": dt.date(2027, 1, 1), "currency": "EUR",
        "net_total": Decimal("10.00"), "tax_total": Decimal("1.90"),
        "gross_total": Decimal("11.90")}).with_sequence(3)

    wire = json.loads(json.dumps(event.body()))
    back = events.load_envelope(wire, "InvoiceIssued")

    assert wire["payload"]["gross_total"] == "11.90"  # money travels as text, never a float
    assert back.payload["gross_total"] == Decimal("11.90")
    assert back.payload["issue_date"] == dt.date(2027, 1, 1)
    assert (back.event_id, back.sequence, back.merchant_id) == (event.event_id, 3, "m_1")
    assert uuid.UUID(back.event_id)


def test_a_publisher_cannot_build_an_event_with_a_missing_field():
    with pytest.raises(ValidationError) as caught:
        events.new_event("ContractEnded", merchant_id="m", aggregate_id="c",
                         payload={"contract_id": "c"})
    assert "ended_on" in caught.value.messages


@pytest.mark.parametrize("body", [
    "not a dict",
    [],
    {},
    {"type": "ContractEnded"},
    {"event_id": "not-a-uuid", "type": "ContractEnded", "merchant_id": "m",
     "occurred_at": "2027-01-01T00:00:00+00:00", "aggregate_id": "c", "sequence": 1,
     "schema_version": 1, "payload": {"contract_id": "c", "ended_on": "2027-01-01"}},
    {"event_id": str(uuid.uuid4()), "type": "NoSuchThing", "merchant_id": "m",
     "occurred_at": "2027-01-01T00:00:00+00:00", "aggregate_id": "c", "sequence": 1,
     "schema_version": 1, "payload": {}},
    {"event_id": str(uuid.uuid4()), "type": "ContractEnded", "merchant_id": "m",
     "occurred_at": "2027-01-01T00:00:00+00:00", "aggregate_id": "c", "sequence": 0,
     "schema_version": 1, "payload": {"contract_id": "c", "ended_on": "2027-01-01"}},
    {"event_id": str(uuid.uuid4()), "type": "ContractEnded", "merchant_id": "m",
     "occurred_at": "2027-01-01T00:00:00+00:00", "aggregate_id": "c", "sequence": 1,
     "schema_version": 1, "payload": {"contract_id": "c", "ended_on": "the end"}},
])
def test_malformed_envelopes_are_rejected(body):
    with pytest.raises(ValidationError):
        events.load_envelope(body)


def test_a_consumer_refuses_an_event_of_another_type():
    event = events.new_event("ContractEnded", merchant_id="m", aggregate_id="c",
                             payload={"contract_id": "c", "ended_on": dt.date(2027, 1, 1)})
    with pytest.raises(ValidationError):
        events.load_envelope(event.with_sequence(1).body(), "InvoiceIssued")


def test_tokens_never_travel_in_events():
    fields = events.CATALOGUE["SelfServiceTokenIssued"].schema().fields
    assert "token" not in fields and "token_id" in fields
