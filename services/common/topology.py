"""The broker topology, declared at deploy/start: exchanges, consumer queues, dead letters.

Which service consumes which event is written once, in ``SUBSCRIPTIONS``; a unit test checks it
against the ``@event_handler`` methods the services really have. ``declare_all`` creates every
exchange and queue before any service starts, so an event published before its consumer ever
ran is not lost (the outbox also publishes with ``mandatory`` and records anything unroutable).

Queue names are nameko's own (``evt-<source>-<type>--<service>.<method>``), so plain nameko
handlers interoperate. ``PORTICO_QUEUE_TYPE=quorum`` declares quorum queues (clusters);
switching an existing queue's type needs the queue deleted first (RabbitMQ refuses to redeclare).
"""
from __future__ import annotations

import os

import kombu

from . import events

DEAD_LETTER_EXCHANGE = "portico.dead-letter"
DEAD_LETTER_QUEUE = "portico.dead-letter"
MERCHANT_EVENTS_EXCHANGE = "portico.merchant-events"

# (consumer service, handler method, event type)
SUBSCRIPTIONS: list[tuple[str, str, str]] = [
    ("portal", "handle_order_submitted", "OrderSubmitted"),
    ("portal", "handle_invoice_issued", "InvoiceIssued"),
    ("portal", "handle_credit_note_issued", "CreditNoteIssued"),
    ("portal", "handle_reminder_issued", "ReminderIssued"),
    ("portal", "handle_payment_received", "PaymentReceived"),
    ("notifications", "handle_contract_created", "ContractCreated"),
    ("documents", "handle_contract_created", "ContractCreated"),
    ("tokens", "handle_contract_created", "ContractCreated"),
    ("documents", "handle_billing_due", "BillingDue"),
    ("documents", "handle_contract_cancelled", "ContractCancelled"),
    ("documents", "handle_contract_changed", "ContractChanged"),
    # notifications: every merchant-visible event (webhooks, merchant AMQP, e-mails)
    ("notifications", "handle_order_submitted", "OrderSubmitted"),
    ("notifications", "handle_customer_created", "CustomerCreated"),
    ("notifications", "handle_customer_changed", "CustomerChanged"),
    ("notifications", "handle_contract_changed", "ContractChanged"),
    ("notifications", "handle_contract_cancelled", "ContractCancelled"),
    ("notifications", "handle_contract_ended", "ContractEnded"),
    ("notifications", "handle_self_service_token_issued", "SelfServiceTokenIssued"),
    ("notifications", "handle_self_service_tokens_revoked", "SelfServiceTokensRevoked"),
    ("notifications", "handle_invoice_issued", "InvoiceIssued"),
    ("notifications", "handle_credit_note_issued", "CreditNoteIssued"),
    ("notifications", "handle_reminder_issued", "ReminderIssued"),
    ("notifications", "handle_payment_received", "PaymentReceived"),
]


def queue_type() -> str:
    return os.environ.get("PORTICO_QUEUE_TYPE", "classic")


def queue_arguments() -> dict:
    args = {"x-queue-type": queue_type()}
    if queue_type() == "quorum":
        args["x-delivery-limit"] = 20  # poison messages cannot loop forever
    return args


def event_exchange(source: str) -> kombu.Exchange:
    return kombu.Exchange(f"{source}.events", type="topic", durable=True, auto_delete=False,
                          delivery_mode=2)


def consumer_queue_name(event_type: str, service: str, method: str) -> str:
    source = events.event_type(event_type).source
    return f"evt-{source}-{event_type}--{service}.{method}"


def consumer_queue(event_type: str, service: str, method: str) -> kombu.Queue:
    source = events.event_type(event_type).source
    return kombu.Queue(consumer_queue_name(event_type, service, method),
                       exchange=event_exchange(source), routing_key=event_type,
                       durable=True, auto_delete=False, queue_arguments=queue_arguments())


def dead_letter_queue() -> kombu.Queue:
    exchange = kombu.Exchange(DEAD_LETTER_EXCHANGE, type="fanout", durable=True)
    return kombu.Queue(DEAD_LETTER_QUEUE, exchange=exchange, durable=True,
                       queue_arguments=queue_arguments())


def declare_dead_letters(amqp_uri: str) -> None:
    with kombu.Connection(amqp_uri, connect_timeout=5) as conn:
        channel = conn.channel()
        dead_letter_queue()(channel).declare()
        channel.close()


def declare_all(amqp_uri: str, subscriptions=None) -> list[str]:
    """Declare every exchange and queue; return the queue names. Safe to run repeatedly."""
    subscriptions = SUBSCRIPTIONS if subscriptions is None else subscriptions
    declared = []
    with kombu.Connection(amqp_uri, connect_timeout=5) as conn:
        channel = conn.channel()
        for source in sorted({t.source for t in events.CATALOGUE.values()}):
            event_exchange(source)(channel).declare()
        kombu.Exchange(MERCHANT_EVENTS_EXCHANGE, type="topic", durable=True)(channel).declare()
        dlq = dead_letter_queue()(channel)
        dlq.declare()
        declared.append(dlq.name)
        for service, method, event_type in subscriptions:
            queue = consumer_queue(event_type, service, method)(channel)
            queue.declare()
            declared.append(queue.name)
        channel.close()
    return declared
