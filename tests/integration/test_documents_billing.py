"""The documents service in a real container: contract events in, numbered PDFs (Factur-X) and
their events out — once, whatever is redelivered; credit notes, payments and reminders.

Real: RabbitMQ (own vhost), the service's migrated SQLite database, the render worker process,
the file store. The portal is replaced by publishing its events; time by a frozen clock.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
from decimal import Decimal

import facturx
import pytest
from nameko.testing.services import entrypoint_hook
from sqlalchemy import create_engine, select

from services.common import tax
from services.common.clock import Clock, FrozenClock
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.periods import Period, prorate
from services.common.pricing import ComponentPrice, VariantPrice, price_order
from services.documents.models import Document
from services.documents.service import DocumentsService
from tests.support.cluster import wait_until
from tests.support.services import dependency
from tests.unit.documents import factories as f

START = dt.date(2027, 1, 15)


@pytest.fixture
def documents(start_service, tmp_path):
    container = start_service(DocumentsService, "documents", RENDER_WORKERS=1,
                              DOCUMENTS_DIR=str(tmp_path / "files"))
    container.clock = FrozenClock("2027-01-15T09:00:00+00:00")
    dependency(container, Clock).clock = container.clock
    container.db_url = container.config["DB_URL"]
    return container


@pytest.fixture
def tap(rabbit_config):
    tap = f.EventTap(rabbit_config["AMQP_URI"])
    yield tap
    tap.close()


@pytest.fixture
def merchant(documents):
    merchant_id = f.new_merchant_id()
    with entrypoint_hook(documents, "update_document_settings") as update:
        update(merchant_id, f.settings())
    return merchant_id


def rpc(container, method, *args, **kwargs):
    with entrypoint_hook(container, method) as call:
        return call(*args, **kwargs)


def documents_of(container, merchant_id, **filters):
    return rpc(container, "list_documents", merchant_id, **filters)["items"]


def wait_for_documents(container, merchant_id, count, **filters):
    return wait_until(lambda: (lambda items: items if len(items) >= count else None)(
        documents_of(container, merchant_id, **filters)), timeout=20,
        what=f"{count} documents {filters}")


def rows(container):
    engine = create_engine(container.db_url)
    with engine.connect() as conn:
        found = conn.execute(select(Document.number, Document.kind, Document.status,
                                    Document.contract_id)).all()
    engine.dispose()
    return found


def handled(container, *events_) -> bool:
    """Every event has been through its handler (the inbox holds its id)."""
    inbox = Document.metadata.tables["inbox"]
    engine = create_engine(container.db_url)
    with engine.connect() as conn:
        seen = set(conn.execute(select(inbox.c.event_id)).scalars())
    engine.dispose()
    return {e.event_id for e in events_} <= seen


def test_first_invoice_is_a_valid_factur_x_pdf_equal_to_the_signup_preview(
        documents, merchant, tap, rabbit_config):
    created = f.contract_created(merchant, start=START)
    f.publish(rabbit_config["AMQP_URI"], created)

    [invoice] = wait_for_documents(documents, merchant, 1)
    payload = created.payload

    # the signup preview of the same order, priced by signup's own function
    preview = price_order(
        VariantPrice(currency="EUR", recurring_fee=Decimal("29.00"), setup_fee=Decimal("9.90")),
        [(ComponentPrice("cmp_seats", "Extra seats", "quantity", Decimal("4.50")), 3)], None,
        tax.TaxTreatment(Decimal("20"), "S", False, "FR"))
    assert Decimal(invoice["gross_total"]) == preview.gross_total == Decimal("62.88")
    assert Decimal(invoice["net_total"]) == preview.net_total
    assert Decimal(invoice["tax_total"]) == preview.tax.amount
    assert invoice["number"] == "INV-2027-00001"
    assert (invoice["period_start"], invoice["period_end"]) == ("2027-01-15", "2027-02-15")
    assert invoice["due_date"] == "2027-01-29" and invoice["payment_status"] == "open"

    pdf = rpc(documents, "get_pdf", merchant, invoice["id"])
    data = base64.b64decode(pdf["content_b64"])
    assert hashlib.sha256(data).hexdigest() == pdf["sha256"] == invoice["pdf"]["sha256"]
    assert pdf["filename"] == "INV-2027-00001.pdf"
    text = f.pdf_text(data)
    for expected in ("INV-2027-00001", "€62.88", "Acme Software GmbH", "Hauptstraße 1a",
                     "10115 Berlin", "Jeanne Dupré", "5 Rue de Rivoli", "75001 Paris",
                     "Setup fee", "Pro monthly", "Extra seats"):
        assert expected in text, expected
    filename, embedded = facturx.get_facturx_xml_from_pdf(data, check_xsd=True)
    xml = base64.b64decode(rpc(documents, "get_xml", merchant, invoice["id"])["content_b64"])
    assert filename == "factur-x.xml" and embedded == xml
    assert f.xml_values(xml, "//ram:GrandTotalAmount") == ["62.88"]
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")

    [announced] = wait_until(lambda: tap.of_type("InvoiceIssued"), 15, what="InvoiceIssued")
    assert announced["payload"]["document_id"] == invoice["id"]
    assert announced["payload"]["gross_total"] == "62.88"
    assert announced["payload"]["contract_id"] == payload["contract_id"]


def test_redelivered_and_repeated_events_never_issue_a_second_invoice(
        documents, merchant, rabbit_config):
    amqp = rabbit_config["AMQP_URI"]
    created = f.contract_created(merchant, start=START)
    contract_id = created.payload["contract_id"]
    due = f.billing_due(merchant, contract_id, START, dt.date(2027, 2, 15))
    again = f.billing_due(merchant, contract_id, START, dt.date(2027, 2, 15))
    # the same events twice (redeliveries), and the portal's BillingDue for the same period
    f.publish(amqp, created, created, due, due, again)
    sentinel = f.contract_created(merchant, start=START)
    f.publish(amqp, sentinel)
    wait_until(lambda: handled(documents, created, due, again, sentinel), 20,
               what="every event handled")
    wait_for_documents(documents, merchant, 1, contract_id=sentinel.payload["contract_id"])

    invoices = wait_for_documents(documents, merchant, 1, contract_id=contract_id)
    assert [i["number"] for i in invoices] == ["INV-2027-00001"]
    assert sorted(number for number, *_ in rows(documents)) == ["INV-2027-00001",
                                                                "INV-2027-00002"]


def test_a_burst_of_contracts_is_invoiced_once_each_with_numbers_in_a_row(
        documents, merchant, rabbit_config):
    # trial and paying contracts interleaved, all at once
    trials = [f.contract_created(merchant, start=START, trial_end=dt.date(2027, 1, 29),
                                 trial_days=14) for _ in range(5)]
    paying = [f.contract_created(merchant, start=START) for _ in range(5)]
    burst = [event for pair in zip(trials, paying, strict=True) for event in pair]
    f.publish(rabbit_config["AMQP_URI"], *burst, paying[2])  # and one redelivered
    wait_until(lambda: handled(documents, *burst), 20, what="every contract handled")
    invoices = wait_for_documents(documents, merchant, 5)
    assert sorted(i["contract_id"] for i in invoices) == sorted(
        e.payload["contract_id"] for e in paying)
    assert sorted(number for number, *_ in rows(documents)) == [
        f"INV-2027-0000{n}" for n in range(1, 6)]


def test_billing_due_before_the_contract_is_known_is_billed_when_it_arrives(
        documents, merchant, rabbit_config):
    amqp = rabbit_config["AMQP_URI"]
    trial_end = dt.date(2027, 1, 29)
    created = f.contract_created(merchant, start=START, trial_end=trial_end, trial_days=14)
    contract_id = created.payload["contract_id"]
    f.publish(amqp, f.billing_due(merchant, contract_id, trial_end, dt.date(2027, 2, 28)))
    wait_until(lambda: rpc(documents, "health")["status"] == "ok", 5)
    assert documents_of(documents, merchant, contract_id=contract_id) == []

    f.publish(amqp, created)
    [invoice] = wait_for_documents(documents, merchant, 1, contract_id=contract_id)
    # the trial is over: first period, with the setup fee, from the trial's end
    assert (invoice["period_start"], invoice["period_end"]) == ("2027-01-29", "2027-02-28")
    assert [line["description"] for line in invoice["lines"]] == [
        "Setup fee", "Pro monthly", "Extra seats"]


def test_a_trial_contract_is_not_invoiced_at_signup(documents, merchant, rabbit_config):
    created = f.contract_created(merchant, start=START, trial_end=dt.date(2027, 1, 29),
                                 trial_days=14)
    sentinel = f.contract_created(merchant, start=START)
    f.publish(rabbit_config["AMQP_URI"], created, sentinel)
    wait_for_documents(documents, merchant, 1, contract_id=sentinel.payload["contract_id"])
    assert documents_of(documents, merchant,
                        contract_id=created.payload["contract_id"]) == []


def test_another_merchants_or_contracts_document_is_not_found(documents, merchant,
                                                               rabbit_config):
    created = f.contract_created(merchant, start=START)
    f.publish(rabbit_config["AMQP_URI"], created)
    [invoice] = wait_for_documents(documents, merchant, 1)
    other_merchant = f.new_merchant_id()

    for method in ("get_document", "get_pdf", "get_xml"):
        with pytest.raises(NotFound):
            rpc(documents, method, other_merchant, invoice["id"])
        with pytest.raises(NotFound):
            rpc(documents, method, merchant, invoice["id"], contract_id="ct_someone_else")
        with pytest.raises(NotFound):
            rpc(documents, method, merchant, "doc_missing")
    assert rpc(documents, "get_document", merchant, invoice["id"],
               contract_id=created.payload["contract_id"])["id"] == invoice["id"]
    assert documents_of(documents, other_merchant) == []


def test_cancellation_credits_the_unused_days_and_references_the_invoice(
        documents, merchant, tap, rabbit_config):
    amqp = rabbit_config["AMQP_URI"]
    created = f.contract_created(merchant, start=START)
    contract_id = created.payload["contract_id"]
    f.publish(amqp, created)
    [invoice] = wait_for_documents(documents, merchant, 1, kind="invoice")

    # ends on 1 Feb: 14 of the period's 31 days (1 Feb .. 14 Feb) are refunded
    f.publish(amqp, f.contract_cancelled(merchant, contract_id, dt.date(2027, 2, 1), START))
    [credit] = wait_for_documents(documents, merchant, 1, kind="credit_note")

    assert credit["number"] == "CN-2027-00001"
    assert credit["refers_to"] == {"id": invoice["id"], "number": invoice["number"]}
    period = Period(START, dt.date(2027, 2, 15))
    expected_net = sum(prorate(Decimal(amount), period, dt.date(2027, 2, 1), period.end, "EUR")
                       for amount in ("29.00", "13.50"))  # each recurring line, by days
    assert expected_net == Decimal("13.10") + Decimal("6.10")
    assert Decimal(credit["net_total"]) == expected_net
    assert Decimal(credit["gross_total"]) == expected_net + (expected_net * Decimal("0.20")
                                                             ).quantize(Decimal("0.01"))
    assert (credit["period_start"], credit["period_end"]) == ("2027-02-01", "2027-02-15")
    text = f.pdf_text(base64.b64decode(rpc(documents, "get_pdf", merchant,
                                           credit["id"])["content_b64"]))
    assert "Credit note" in text and invoice["number"] in text
    xml = base64.b64decode(rpc(documents, "get_xml", merchant, credit["id"])["content_b64"])
    assert f.xml_values(xml, "//rsm:ExchangedDocument/ram:TypeCode") == ["381"]

    [announced] = wait_until(lambda: tap.of_type("CreditNoteIssued"), 15, what="the event")
    assert announced["payload"]["corrects_document_id"] == invoice["id"]
    refreshed = rpc(documents, "get_document", merchant, invoice["id"])
    assert Decimal(refreshed["outstanding"]) == Decimal(invoice["gross_total"]) - Decimal(
        credit["gross_total"])

    # the same cancellation again (replayed by ops): nothing new
    f.publish(amqp, f.contract_cancelled(merchant, contract_id, dt.date(2027, 2, 1), START))
    sentinel = f.contract_created(merchant, start=START)
    f.publish(amqp, sentinel)
    wait_for_documents(documents, merchant, 1, contract_id=sentinel.payload["contract_id"])
    assert len(documents_of(documents, merchant, kind="credit_note")) == 1


def test_reminders_climb_levels_with_fees_until_a_payment_settles_the_invoice(
        documents, merchant, tap, rabbit_config):
    created = f.contract_created(merchant, start=START)
    f.publish(rabbit_config["AMQP_URI"], created)
    [invoice] = wait_for_documents(documents, merchant, 1)
    clock = documents.clock

    assert rpc(documents, "run_dunning") == 0  # not due yet
    clock.set(dt.datetime(2027, 2, 5, 9, tzinfo=dt.UTC))  # due 29 Jan + 7 days
    assert rpc(documents, "run_dunning") == 1
    assert rpc(documents, "run_dunning") == 0  # once per level
    clock.set(dt.datetime(2027, 3, 1, 9, tzinfo=dt.UTC))  # an outage: level 2 only, not 3
    assert rpc(documents, "run_dunning") == 1
    reminders = documents_of(documents, merchant, kind="reminder")
    assert [(r["reminder_level"], r["fee"]) for r in reminders] == [(2, "5.00"), (1, "0.00")]
    level_two = reminders[0]
    assert level_two["amount_due"] == "67.88"  # 62.88 open + 5.00 fee
    text = f.pdf_text(base64.b64decode(rpc(documents, "get_pdf", merchant,
                                           level_two["id"])["content_b64"]))
    assert "Payment reminder" in text and invoice["number"] in text and "€67.88" in text
    with pytest.raises(NotFound):  # reminders are not e-invoices
        rpc(documents, "get_xml", merchant, level_two["id"])

    paid = rpc(documents, "register_payment", merchant,
               {"invoice_id": invoice["id"], "amount": "67.88", "reference": "SEPA 42"},
               idempotency_key="pay-1")
    assert paid["invoice"] == {"number": invoice["number"], "payment_status": "settled",
                               "outstanding": "0.00"}
    again = rpc(documents, "register_payment", merchant,
                {"invoice_id": invoice["id"], "amount": "67.88"}, idempotency_key="pay-1")
    assert again["id"] == paid["id"]
    clock.set(dt.datetime(2027, 4, 1, 9, tzinfo=dt.UTC))
    assert rpc(documents, "run_dunning") == 0  # settled: no level 3

    [received] = wait_until(lambda: tap.of_type("PaymentReceived"), 15, what="payment")
    assert received["payload"]["amount"] == "67.88"
    assert received["payload"]["outstanding"] == "0.00"
    reminder_events = wait_until(lambda: (lambda e: e if len(e) == 2 else None)(
        tap.of_type("ReminderIssued")), 15, what="reminder events")
    assert sorted(e["payload"]["level"] for e in reminder_events) == [1, 2]


def test_payments_are_validated_and_scoped(documents, merchant, rabbit_config):
    f.publish(rabbit_config["AMQP_URI"], f.contract_created(merchant, start=START))
    [invoice] = wait_for_documents(documents, merchant, 1)

    with pytest.raises(InvalidInput) as bad:
        rpc(documents, "register_payment", merchant,
            {"invoice_id": invoice["id"], "amount": "-1"})
    assert bad.value.fields["amount"][0]["code"] == "not_positive"
    with pytest.raises(InvalidInput) as bad:
        rpc(documents, "register_payment", merchant,
            {"invoice_id": invoice["id"], "amount": "1.001"})
    assert bad.value.fields["amount"][0]["code"] == "too_precise"
    with pytest.raises(InvalidInput) as bad:
        rpc(documents, "register_payment", merchant,
            {"invoice_id": invoice["id"], "amount": "1.00", "currency": "USD"})
    assert bad.value.fields["currency"][0]["code"] == "currency_mismatch"
    with pytest.raises(NotFound):
        rpc(documents, "register_payment", f.new_merchant_id(),
            {"invoice_id": invoice["id"], "amount": "1.00"})
    partial = rpc(documents, "register_payment", merchant,
                  {"invoice_id": invoice["id"], "amount": "10.00"}, idempotency_key="k1")
    assert partial["invoice"]["outstanding"] == "52.88"
    with pytest.raises(Conflict):
        rpc(documents, "register_payment", merchant,
            {"invoice_id": invoice["id"], "amount": "11.00"}, idempotency_key="k1")
    assert rpc(documents, "get_document", merchant, invoice["id"])["paid_total"] == "10.00"
