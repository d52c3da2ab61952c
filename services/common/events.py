"""The event catalogue: every event type, its source service and payload schema, written once.

Every event travels in one envelope::

    {"event_id": "…uuid…", "type": "ContractCreated", "merchant_id": "m_…",
     "occurred_at": "2026-11-21T10:00:00+00:00", "aggregate_id": "…contract id…",
     "sequence": 1, "schema_version": 1, "payload": {...}}

Publishers build events with ``new_event`` (which dumps the payload through its schema and
validates it) and hand them to the outbox; consumers get an ``Event`` back from ``load_envelope``
with the payload loaded into Python values (``Decimal``, ``date``, ``datetime``). Routing stays
nameko-compatible: exchange ``<source>.events``, routing key = the event type.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

__all__ = ["CATALOGUE", "Event", "EventType", "ValidationError", "load_envelope", "new_event"]


class Payload(Schema):
    """Base of every payload schema: consumers ignore fields newer publishers add."""

    class Meta:
        unknown = EXCLUDE


Amount = lambda **kw: fields.Decimal(as_string=True, **kw)  # noqa: E731  Decimals travel as strings


class Duration(Payload):
    value = fields.Integer(required=True, validate=validate.Range(min=0))
    unit = fields.String(required=True, validate=validate.OneOf(["day", "week", "month"]))


class CustomerData(Payload):
    email = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    company_name = fields.String(allow_none=True)
    street = fields.String(allow_none=True)
    house_number = fields.String(allow_none=True)
    address_line_2 = fields.String(allow_none=True)
    postal_code = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    country = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    vat_id = fields.String(allow_none=True)
    dispatch_type = fields.String(allow_none=True)
    birth_date = fields.Date(allow_none=True)
    language = fields.String(allow_none=True)


class ComponentLine(Payload):
    component_id = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["quantity", "onoff", "metered"]))
    quantity = fields.Integer(required=True, validate=validate.Range(min=0))
    unit_price = Amount(required=True)


class CouponData(Payload):
    code = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["percent", "fixed"]))
    value = Amount(required=True)
    periods = fields.Integer(allow_none=True)


class PriceTerms(Payload):
    """The plan variant's prices and terms as the customer saw them when ordering."""

    setup_fee = Amount(required=True)
    recurring_fee = Amount(required=True)
    billing_period_months = fields.Integer(required=True, validate=validate.Range(min=1))
    trial_days = fields.Integer(required=True, validate=validate.Range(min=0))
    notice_period = fields.Nested(Duration, required=True)
    minimum_term = fields.Nested(Duration, allow_none=True)


class TaxData(Payload):
    rate = Amount(required=True)
    category = fields.String(required=True)
    reverse_charge = fields.Boolean(required=True)
    country = fields.String(allow_none=True)


class Totals(Payload):
    net_total = Amount(required=True)
    tax_total = Amount(required=True)
    gross_total = Amount(required=True)
    recurring_gross = Amount(allow_none=True)


class PaymentMethod(Payload):
    type = fields.String(required=True)
    masked = fields.String(allow_none=True)


class OrderSubmitted(Payload):
    order_id = fields.String(required=True)
    contract_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    plan_id = fields.String(required=True)
    plan_variant_id = fields.String(required=True)
    plan_name = fields.String(required=True)
    currency = fields.String(required=True)
    customer = fields.Nested(CustomerData, required=True)
    components = fields.List(fields.Nested(ComponentLine), load_default=list)
    coupon = fields.Nested(CouponData, allow_none=True)
    terms = fields.Nested(PriceTerms, required=True)
    tax = fields.Nested(TaxData, required=True)
    totals = fields.Nested(Totals, required=True)
    payment_method = fields.Nested(PaymentMethod, allow_none=True)
    external_id = fields.String(allow_none=True)
    language = fields.String(required=True)
    submitted_at = fields.AwareDateTime(required=True)


class CustomerCreated(Payload):
    customer_id = fields.String(required=True)
    customer = fields.Nested(CustomerData, required=True)


class ContractCreated(Payload):
    contract_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    order_id = fields.String(required=True)
    plan_variant_id = fields.String(required=True)
    plan_name = fields.String(required=True)
    currency = fields.String(required=True)
    start_date = fields.Date(required=True)
    trial_end = fields.Date(allow_none=True)
    billing_start = fields.Date(required=True)
    terms = fields.Nested(PriceTerms, required=True)
    components = fields.List(fields.Nested(ComponentLine), load_default=list)
    coupon = fields.Nested(CouponData, allow_none=True)
    tax = fields.Nested(TaxData, required=True)
    customer = fields.Nested(CustomerData, required=True)
    external_id = fields.String(allow_none=True)
    language = fields.String(required=True)


class CustomerChanged(Payload):
    customer_id = fields.String(required=True)
    contract_id = fields.String(allow_none=True)
    before = fields.Nested(CustomerData, required=True)
    after = fields.Nested(CustomerData, required=True)


class ContractChanged(Payload):
    contract_id = fields.String(required=True)
    changes = fields.Dict(keys=fields.String(), required=True)


class ContractCancelled(Payload):
    contract_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    requested_on = fields.Date(required=True)
    end_date = fields.Date(required=True)
    last_day = fields.Date(required=True)


class ContractEnded(Payload):
    contract_id = fields.String(required=True)
    ended_on = fields.Date(required=True)


class BillingDue(Payload):
    contract_id = fields.String(required=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)


class SelfServiceTokenIssued(Payload):
    """Never carries the token itself: only its id and lifetime."""

    contract_id = fields.String(required=True)
    token_id = fields.String(required=True)
    expires_at = fields.AwareDateTime(required=True)


class SelfServiceTokensRevoked(Payload):
    contract_id = fields.String(required=True)
    revoked = fields.Integer(required=True)


class DocumentIssued(Payload):
    document_id = fields.String(required=True)
    number = fields.String(required=True)
    contract_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    issue_date = fields.Date(required=True)
    due_date = fields.Date(allow_none=True)
    period_start = fields.Date(allow_none=True)
    period_end = fields.Date(allow_none=True)
    currency = fields.String(required=True)
    net_total = Amount(required=True)
    tax_total = Amount(required=True)
    gross_total = Amount(required=True)


class CreditNoteIssued(DocumentIssued):
    corrects_document_id = fields.String(allow_none=True)
    corrects_number = fields.String(allow_none=True)


class ReminderIssued(DocumentIssued):
    invoice_id = fields.String(required=True)
    level = fields.Integer(required=True, validate=validate.Range(min=1, max=3))
    fee = Amount(required=True)


class PaymentReceived(Payload):
    """A payment registered against an invoice (documents service); ``outstanding`` is what is
    still open on that invoice afterwards (reminder fees included, credit notes deducted)."""

    payment_id = fields.String(required=True)
    invoice_id = fields.String(required=True)
    invoice_number = fields.String(required=True)
    contract_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    amount = Amount(required=True)
    currency = fields.String(required=True)
    paid_on = fields.Date(required=True)
    outstanding = Amount(required=True)
    reference = fields.String(allow_none=True)


class EmailSent(Payload):
    message_id = fields.String(required=True)
    kind = fields.String(required=True)
    contract_id = fields.String(allow_none=True)
    cause_event_id = fields.String(allow_none=True)


class WebhookDeliveryFailed(Payload):
    delivery_id = fields.String(required=True)
    endpoint_id = fields.String(required=True)
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True)


@dataclasses.dataclass(frozen=True)
class EventType:
    name: str
    source: str  # the service that publishes it: exchange "<source>.events"
    schema: type[Payload]
    merchant_visible: bool = True  # sent to webhooks and merchant AMQP subscriptions
    version: int = 1

    @property
    def exchange(self) -> str:
        return f"{self.source}.events"


CATALOGUE: dict[str, EventType] = {
    t.name: t
    for t in [
        EventType("OrderSubmitted", "signup", OrderSubmitted),
        EventType("CustomerCreated", "portal", CustomerCreated),
        EventType("ContractCreated", "portal", ContractCreated),
        EventType("CustomerChanged", "portal", CustomerChanged),
        EventType("ContractChanged", "portal", ContractChanged),
        EventType("ContractCancelled", "portal", ContractCancelled),
        EventType("ContractEnded", "portal", ContractEnded),
        EventType("BillingDue", "portal", BillingDue, merchant_visible=False),
        EventType("SelfServiceTokenIssued", "tokens", SelfServiceTokenIssued),
        EventType("SelfServiceTokensRevoked", "tokens", SelfServiceTokensRevoked),
        EventType("InvoiceIssued", "documents", DocumentIssued),
        EventType("CreditNoteIssued", "documents", CreditNoteIssued),
        EventType("ReminderIssued", "documents", ReminderIssued),
        EventType("PaymentReceived", "documents", PaymentReceived),
        EventType("EmailSent", "notifications", EmailSent),
        EventType("WebhookDeliveryFailed", "notifications", WebhookDeliveryFailed),
    ]
}


class UnknownEventType(ValidationError):
    pass


def event_type(name: str) -> EventType:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownEventType({"type": [f"unknown event type {name!r}"]}) from None


@dataclasses.dataclass(frozen=True)
class Event:
    """One fact. ``payload`` holds Python values; ``body()`` is the JSON envelope."""

    type: str
    merchant_id: str
    aggregate_id: str
    payload: dict[str, Any]
    event_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: dt.datetime = dataclasses.field(
        default_factory=lambda: dt.datetime.now(dt.UTC))
    sequence: int | None = None
    schema_version: int = 1
    # the payload as its schema dumps it, kept by new_event (not part of the event's identity)
    _dumped: dict | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> EventType:
        return event_type(self.type)

    def with_sequence(self, sequence: int) -> Event:
        return dataclasses.replace(self, sequence=sequence)

    def body(self) -> dict:
        """The envelope as JSON-ready values (the payload dumped through its schema; events
        built by ``new_event`` reuse the dump made while checking them)."""
        payload = self._dumped if self._dumped is not None \
            else payload_schema(self.type).dump(self.payload)
        return {"event_id": str(self.event_id), "type": self.type,
                "merchant_id": self.merchant_id, "occurred_at": self.occurred_at.isoformat(),
                "aggregate_id": self.aggregate_id, "sequence": self.sequence,
                "schema_version": self.schema_version, "payload": dict(payload)}


class _Envelope(Schema):
    class Meta:
        unknown = EXCLUDE

    event_id = fields.UUID(required=True)
    type = fields.String(required=True)
    merchant_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    occurred_at = fields.AwareDateTime(required=True, default_timezone=dt.UTC)
    aggregate_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    sequence = fields.Integer(required=True, allow_none=True, validate=validate.Range(min=1))
    schema_version = fields.Integer(required=True, validate=validate.Range(min=1))
    payload = fields.Dict(required=True)


_ENVELOPE = _Envelope()
_PAYLOAD_SCHEMAS: dict[str, Payload] = {}


def payload_schema(type_name: str) -> Payload:
    """One schema instance per type (they hold no state between calls; building one costs
    about as much as using it)."""
    schema = _PAYLOAD_SCHEMAS.get(type_name)
    if schema is None:
        schema = _PAYLOAD_SCHEMAS[type_name] = event_type(type_name).schema()
    return schema


def new_event(type_name: str, *, merchant_id: str, aggregate_id: str, payload: dict,
              occurred_at: dt.datetime | None = None) -> Event:
    """Build an event, checking the payload against its schema now rather than at the consumer.

    >>> new_event("ContractEnded", merchant_id="m1", aggregate_id="c1",
    ...           payload={"contract_id": "c1", "ended_on": dt.date(2027, 1, 1)}).type
    'ContractEnded'
    """
    kind = event_type(type_name)
    schema = payload_schema(type_name)
    dumped = schema.dump(payload)
    loaded = schema.load(dumped)  # raises ValidationError naming the bad field
    extra = {"occurred_at": occurred_at} if occurred_at else {}
    return Event(type=type_name, merchant_id=str(merchant_id), aggregate_id=str(aggregate_id),
                 payload=loaded, schema_version=kind.version, _dumped=dumped, **extra)


def load_envelope(body: Any, expected_type: str | None = None) -> Event:
    """Parse and validate a received message body; raise ``ValidationError`` if malformed."""
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["the message body is not a JSON object"]})
    envelope = _ENVELOPE.load(body)
    if expected_type and envelope["type"] != expected_type:
        raise ValidationError({"type": [f"expected {expected_type}, got {envelope['type']}"]})
    kind = event_type(envelope["type"])
    payload = payload_schema(kind.name).load(envelope["payload"])
    return Event(type=kind.name, merchant_id=envelope["merchant_id"],
                 aggregate_id=envelope["aggregate_id"], payload=payload,
                 event_id=str(envelope["event_id"]), occurred_at=envelope["occurred_at"],
                 sequence=envelope["sequence"], schema_version=envelope["schema_version"])
