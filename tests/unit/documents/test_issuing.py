"""Issuing use cases over a real (in-memory SQLite) database: numbering per merchant and kind,
one document per billing key, credit notes for downgrades, payments, settings validation,
scoped reads. Rendering is not involved here (rows stay ``rendering`` until published)."""
from __future__ import annotations

import base64
import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from services.common.database import UnitOfWork, make_engine
from services.common.errors import Conflict, InvalidInput, NotFound
from services.documents import issuing, schemas
from services.documents.models import Base, Document
from services.documents.storage import LocalStorage
from tests.unit.documents import factories as f

TODAY = dt.date(2027, 1, 15)


class _Provider:
    metadata = Base.metadata

    def __init__(self):
        engine = make_engine("sqlite://")
        Base.metadata.create_all(engine)
        self.sessionmaker = sessionmaker(engine, expire_on_commit=False)

    def events_committed(self):
        pass


@pytest.fixture
def db():
    unit = UnitOfWork(_Provider())
    yield unit
    unit.close()


@pytest.fixture
def store(tmp_path):
    return LocalStorage(tmp_path)


def configure(db, store, merchant_id, **overrides):
    data = schemas.load(schemas.DocumentSettingsUpdate(), f.settings(**overrides))
    return issuing.save_settings(db.session, store, merchant_id, data)


def publish_all(db, ids):
    for document_id in ids:
        assert issuing.publish(db, document_id, {"pdf_key": f"k/{document_id}.pdf",
                                                 "pdf_sha256": "0" * 64, "pdf_size": 1},
                               dt.datetime(2027, 1, 15, tzinfo=dt.UTC))
    db.commit()


def outbox(db) -> list[dict]:
    table = Base.metadata.tables["outbox"]
    return [json.loads(body) for body in db.session.scalars(select(table.c.body))]


def test_numbers_count_per_merchant_and_kind_in_the_configured_format(db, store):
    first, second = f.new_merchant_id(), f.new_merchant_id()
    configure(db, store, first, number_formats={"invoice": "R{YY}{MM}-{seq:04}"})
    numbers = []
    for merchant in (first, first, second):
        ids = issuing.contract_created(db, f.contract_created(merchant), TODAY)
        numbers.append(db.session.get(Document, ids[0]).number)
    assert numbers == ["R2701-0001", "R2701-0002", "INV-2027-00001"]


def test_the_same_contract_event_again_issues_nothing(db, store):
    merchant = f.new_merchant_id()
    event = f.contract_created(merchant)
    assert len(issuing.contract_created(db, event, TODAY)) == 1
    assert issuing.contract_created(db, event, TODAY) == []
    contract_id = event.payload["contract_id"]
    assert issuing.bill_period(db, merchant, contract_id, dt.date(2027, 1, 15),
                               dt.date(2027, 2, 15), TODAY) == issuing.unrendered(
        db.session, dt.datetime(2100, 1, 1, tzinfo=dt.UTC))  # only re-offered for rendering
    assert db.session.scalar(select(Document.sequence)) == 1
    assert len(db.session.scalars(select(Document)).all()) == 1


def test_billing_due_for_another_merchants_contract_is_ignored(db):
    event = f.contract_created(f.new_merchant_id())
    issuing.contract_created(db, event, TODAY)
    assert issuing.bill_period(db, f.new_merchant_id(), event.payload["contract_id"],
                               dt.date(2027, 2, 15), dt.date(2027, 3, 15), TODAY) == []


def test_a_downgrade_issues_a_credit_note_for_the_old_price_and_an_invoice_for_the_new(db,
                                                                                      store):
    merchant = f.new_merchant_id()
    configure(db, store, merchant)
    event = f.contract_created(merchant)
    publish_all(db, issuing.contract_created(db, event, TODAY))
    change = f.contract_changed(merchant, event.payload["contract_id"], {
        "components": [{"component_id": "cmp_seats", "name": "Extra seats", "kind": "quantity",
                        "quantity": 1, "unit_price": "4.50"}],
        "effective_on": "2027-01-31"})
    ids = issuing.contract_changed(db, change, dt.date(2027, 1, 31))
    credit, invoice = (db.session.get(Document, i) for i in ids)
    assert (credit.kind, credit.number, invoice.kind, invoice.number) == (
        "credit_note", "CN-2027-00001", "invoice", "INV-2027-00002")
    assert credit.refers_to_id == db.session.scalar(select(Document.id).where(
        Document.number == "INV-2027-00001"))
    assert (credit.period_start, credit.period_end) == (dt.date(2027, 1, 31),
                                                        dt.date(2027, 2, 15))
    assert credit.net_minor == 1403 + 653  # 29.00 and 13.50 for 15 of 31 days
    assert invoice.net_minor == 1403 + 218  # 29.00 and 4.50 for the same days
    # the same change again (replayed): nothing new; later periods bill the new quantity
    assert issuing.contract_changed(db, change, dt.date(2027, 1, 31)) == []
    [later] = issuing.bill_period(db, merchant, event.payload["contract_id"],
                                  dt.date(2027, 2, 15), dt.date(2027, 3, 15),
                                  dt.date(2027, 2, 15))
    assert db.session.get(Document, later).net_minor == 2900 + 450


def test_contract_changes_that_are_not_prices_issue_nothing(db):
    merchant = f.new_merchant_id()
    event = f.contract_created(merchant)
    issuing.contract_created(db, event, TODAY)
    contract_id = event.payload["contract_id"]
    issuing.contract_cancelled(db, merchant, contract_id, dt.date(2027, 3, 15), TODAY)
    withdrawn = f.contract_changed(merchant, contract_id, {
        "cancellation": "withdrawn", "end_date": None, "previous_end_date": "2027-03-15"})
    assert issuing.contract_changed(db, withdrawn, TODAY) == []
    assert issuing.Contract.end_date is not None
    assert db.session.get(issuing.Contract, contract_id).end_date is None
    assert issuing.contract_changed(db, f.contract_changed(merchant, contract_id, {
        "payment_method": {"type": "sepa"}}), TODAY) == []


def test_no_period_is_billed_from_the_end_date_on(db):
    merchant = f.new_merchant_id()
    event = f.contract_created(merchant)
    issuing.contract_created(db, event, TODAY)
    contract_id = event.payload["contract_id"]
    issuing.contract_cancelled(db, merchant, contract_id, dt.date(2027, 2, 15), TODAY)
    assert issuing.bill_period(db, merchant, contract_id, dt.date(2027, 2, 15),
                               dt.date(2027, 3, 15), dt.date(2027, 2, 15)) == []


def test_published_documents_are_announced_once_with_their_totals(db):
    merchant = f.new_merchant_id()
    [document_id] = issuing.contract_created(db, f.contract_created(merchant), TODAY)
    publish_all(db, [document_id])
    assert not issuing.publish(db, document_id, {}, dt.datetime(2027, 1, 15, tzinfo=dt.UTC))
    [event] = outbox(db)
    assert event["type"] == "InvoiceIssued"
    assert event["payload"]["gross_total"] == "62.88" and event["payload"]["number"] == \
        "INV-2027-00001"
    assert event["payload"]["period_end"] == "2027-02-15"  # exclusive, like BillingDue


def test_reads_are_scoped_paginated_and_only_show_issued_documents(db):
    merchant = f.new_merchant_id()
    ids = [issuing.contract_created(db, f.contract_created(merchant), TODAY)[0]
           for _ in range(5)]
    publish_all(db, ids[:4])
    page = issuing.list_documents(db.session, merchant, kind="invoice", page=2, per_page=3)
    assert (page["total"], page["has_more"], len(page["items"])) == (4, False, 1)
    assert page["items"][0]["number"] == "INV-2027-00001"  # newest first
    with pytest.raises(NotFound):
        issuing.find(db.session, merchant, ids[4])  # still rendering
    with pytest.raises(NotFound):
        issuing.find(db.session, f.new_merchant_id(), ids[0])
    contract_id = db.session.get(Document, ids[0]).contract_id
    assert issuing.find(db.session, merchant, ids[0], contract_id).id == ids[0]
    with pytest.raises(NotFound):
        issuing.find(db.session, merchant, ids[0], "ct_other")
    assert issuing.list_documents(db.session, f.new_merchant_id())["total"] == 0


def test_payments_settle_invoices_and_an_idempotency_key_books_once(db):
    merchant = f.new_merchant_id()
    [invoice_id] = issuing.contract_created(db, f.contract_created(merchant), TODAY)
    publish_all(db, [invoice_id])

    def pay(amount, key=None):
        data = schemas.load(schemas.PaymentCreate(), {"invoice_id": invoice_id,
                                                      "amount": amount})
        return issuing.register_payment(db, merchant, data, key, TODAY)

    assert pay("50.00", "a")["invoice"]["outstanding"] == "12.88"
    assert pay("50.00", "a")["invoice"]["outstanding"] == "12.88"  # the same request again
    with pytest.raises(Conflict):
        pay("40.00", "a")
    assert pay("12.88")["invoice"] == {"number": "INV-2027-00001", "payment_status": "settled",
                                       "outstanding": "0.00"}
    events_ = [e for e in outbox(db) if e["type"] == "PaymentReceived"]
    assert [e["payload"]["outstanding"] for e in events_] == ["12.88", "0.00"]


# -- settings --------------------------------------------------------------------------------


def png(width=40, height=20) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (1, 2, 3)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_unconfigured_merchants_get_defaults(db):
    found = issuing.settings_of(db.session, "m_new").as_dict()
    assert found["configured"] is False
    assert found["number_formats"]["invoice"] == "INV-{YYYY}-{seq:05}"
    assert [level["days_after_due"] for level in found["dunning"]] == [7, 14, 28]


def test_settings_keep_a_re_encoded_logo_by_digest(db, store):
    merchant = f.new_merchant_id()
    saved = configure(db, store, merchant, branding={"logo": png(), "accent_color": "#B45309"})
    digest = saved.branding["logo_sha256"]
    assert store.get(f"logos/{digest}.img", sha256=digest).startswith(b"\x89PNG")
    again = configure(db, store, merchant, branding={"accent_color": "#000000"})
    assert again.branding["logo_sha256"] == digest  # absent: kept
    removed = configure(db, store, merchant, branding={"logo": ""})
    assert removed.branding["logo_sha256"] is None


@pytest.mark.parametrize(("overrides", "field", "code"), [
    ({"seller": {**f.SELLER, "vat_id": "DE123"}}, "seller.vat_id", "invalid_vat_id"),
    ({"seller": {**f.SELLER, "country": "XX"}}, "seller.country", "invalid_country"),
    ({"seller": {**f.SELLER, "name": "Evil\u202eCorp"}}, "seller.name", "invalid_characters"),
    ({"seller": {k: v for k, v in f.SELLER.items() if k != "name"}}, "seller.name", "required"),
    ({"number_formats": {"invoice": "INV-{seq}-{seq}"}}, "number_formats.invoice",
     "invalid_pattern"),
    ({"number_formats": {"credit_note": "CN-{YEAR}"}}, "number_formats.credit_note",
     "invalid_pattern"),
    ({"payment_terms_days": 400}, "payment_terms_days", "out_of_range"),
    ({"dunning": [{"days_after_due": 14, "fee": "0"}, {"days_after_due": 7, "fee": "1"}]},
     "dunning.1.days_after_due", "not_increasing"),
    ({"dunning": [{"days_after_due": 7, "fee": "0.001"}]}, "dunning.0.fee", "invalid_fee"),
    ({"dunning": []}, "dunning", "invalid_length"),
    ({"branding": {"primary_color": "red"}}, "branding.primary_color", "invalid"),
    ({"branding": {"logo": "not base64!"}}, "branding.logo", "not_base64"),
    ({"branding": {"logo": base64.b64encode(b"<svg onload=alert(1)/>").decode()}},
     "branding.logo", "unreadable"),
])
def test_bad_settings_are_refused_per_field(overrides, field, code):
    with pytest.raises(InvalidInput) as refused:
        schemas.load(schemas.DocumentSettingsUpdate(), f.settings(**overrides))
    assert code in [e["code"] for e in refused.value.fields[field]], refused.value.fields


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"amount": "10"}, "invoice_id", "required"),
    ({"invoice_id": "doc_1"}, "amount", "required"),
    ({"invoice_id": "doc_1", "amount": "0"}, "amount", "not_positive"),
    ({"invoice_id": "doc_1", "amount": "NaN"}, "amount", "invalid"),
    ({"invoice_id": "doc_1", "amount": "1", "paid_on": "yesterday"}, "paid_on", "invalid_date"),
])
def test_bad_payments_are_refused_per_field(body, field, code):
    with pytest.raises(InvalidInput) as refused:
        schemas.load(schemas.PaymentCreate(), body)
    assert refused.value.fields[field][0]["code"] == code, refused.value.fields


def test_amounts_are_never_floats():
    loaded = schemas.load(schemas.PaymentCreate(), {"invoice_id": "d", "amount": "35.70"})
    assert loaded["amount"] == Decimal("35.70")


def test_a_second_change_in_one_period_corrects_the_first_changes_invoice(db, store):
    merchant = f.new_merchant_id()
    event = f.contract_created(merchant)
    contract_id = event.payload["contract_id"]
    publish_all(db, issuing.contract_created(db, event, TODAY))

    def seats(quantity, day):
        return f.contract_changed(merchant, contract_id, {"effective_on": day, "components": [
            {"component_id": "cmp_seats", "name": "Extra seats", "kind": "quantity",
             "quantity": quantity, "unit_price": "4.50"}]})

    first = issuing.contract_changed(db, seats(5, "2027-01-25"), dt.date(2027, 1, 25))
    publish_all(db, first)
    second = issuing.contract_changed(db, seats(1, "2027-02-01"), dt.date(2027, 2, 1))
    credit = db.session.get(Document, second[0])
    first_invoice = db.session.get(Document, first[1])
    assert credit.refers_to_id == first_invoice.id  # the invoice that billed those days
    assert (credit.period_start, credit.period_end) == (dt.date(2027, 2, 1),
                                                        dt.date(2027, 2, 15))
    # 29.00 + 5 x 4.50 for 14 of 31 days, refunded from the first change's invoice
    assert credit.net_minor == 1310 + 1016
    original = db.session.scalar(select(Document).where(Document.number == "INV-2027-00001"))
    assert original.credited_minor == db.session.get(Document, first[0]).gross_minor


def test_a_cancellation_never_refunds_days_a_change_refunded_already(db, store):
    merchant = f.new_merchant_id()
    event = f.contract_created(merchant)
    contract_id = event.payload["contract_id"]
    publish_all(db, issuing.contract_created(db, event, TODAY))
    change = f.contract_changed(merchant, contract_id, {"effective_on": "2027-01-31", "terms": {
        "recurring_fee": "19.00"}})
    publish_all(db, issuing.contract_changed(db, change, dt.date(2027, 1, 31)))
    ids = issuing.contract_cancelled(db, merchant, contract_id, dt.date(2027, 2, 5),
                                     dt.date(2027, 2, 1))
    [credit] = [db.session.get(Document, i) for i in ids]
    # only the change's invoice (19.00 + 13.50 from 31 Jan) is credited from 5 Feb; the
    # original's days from 31 Jan were refunded by the change's credit note already
    assert credit.refers_to_id == db.session.scalar(select(Document.id).where(
        Document.billing_key == f"change:{change.event_id}", Document.kind == "invoice"))
    assert (credit.period_start, credit.period_end) == (dt.date(2027, 2, 5),
                                                        dt.date(2027, 2, 15))
