"""A contract's account: issued invoices (and reminder fees) minus credit notes minus payments.

Filled from the documents service's events (``InvoiceIssued``, ``CreditNoteIssued``,
``ReminderIssued`` for its fee, ``PaymentReceived``), each booked once under the id its
publisher gave it. Amounts are gross, stored in integer minor units.
"""
from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.common import events, money
from services.common.database import UnitOfWork

from .models import AccountEntry, Contract

log = logging.getLogger(__name__)

INVOICE, CREDIT_NOTE, PAYMENT, FEE = "invoice", "credit_note", "payment", "fee"
SIGN = {INVOICE: 1, FEE: 1, CREDIT_NOTE: -1, PAYMENT: -1}


def record_document(db: UnitOfWork, event: events.Event, kind: str) -> AccountEntry | None:
    """Book an issued invoice or credit note (its gross total), or a reminder (its fee)."""
    doc = event.payload
    amount = doc["fee"] if kind == FEE else doc["gross_total"]
    return _book(db, event, doc["document_id"], kind, doc["contract_id"], doc.get("number"),
                 doc["currency"], amount, doc["issue_date"])


def record_payment(db: UnitOfWork, event: events.Event) -> AccountEntry | None:
    payment = event.payload
    return _book(db, event, payment["payment_id"], PAYMENT, payment["contract_id"],
                 payment.get("invoice_number"), payment["currency"], payment["amount"],
                 payment["paid_on"])


def _book(db: UnitOfWork, event: events.Event, entry_id: str, kind: str, contract_id: str,
          number, currency: str, amount, booked_on) -> AccountEntry | None:
    """One entry per id (a replay under a new event id still counts once)."""
    if db.session.get(AccountEntry, entry_id) is not None:
        return None
    currency = money.check_currency(currency)
    # the sign comes from the kind, whatever sign the publisher gave the amount
    minor = money.to_minor(abs(money.quantize(amount, currency)), currency)
    contract = db.session.get(Contract, contract_id)
    if contract is None or contract.merchant_id != event.merchant_id:
        log.warning("%s %s for an unknown contract", event.type, entry_id,
                    extra={"event_id": event.event_id})
    entry = AccountEntry(id=entry_id, merchant_id=event.merchant_id, contract_id=contract_id,
                         kind=kind, number=number, currency=currency, amount_minor=minor,
                         booked_on=booked_on)
    db.session.add(entry)
    return entry


def balance(session: Session, contract: Contract) -> dict:
    """``{"amount": "29.00", "currency": "EUR", "invoiced", "fees", "credited", "paid"}``; a
    positive amount is what the customer owes."""
    rows = session.execute(
        select(AccountEntry.kind, func.coalesce(func.sum(AccountEntry.amount_minor), 0))
        .where(AccountEntry.merchant_id == contract.merchant_id,
               AccountEntry.contract_id == contract.id,
               AccountEntry.currency == contract.currency)
        .group_by(AccountEntry.kind)).all()
    totals = {kind: int(total) for kind, total in rows}
    owed = sum(SIGN.get(kind, 0) * total for kind, total in totals.items())
    currency = contract.currency

    def as_money(minor: int) -> str:
        return str(money.from_minor(minor, currency))

    return {"amount": as_money(owed), "currency": currency,
            "invoiced": as_money(totals.get(INVOICE, 0)),
            "fees": as_money(totals.get(FEE, 0)),
            "credited": as_money(totals.get(CREDIT_NOTE, 0)),
            "paid": as_money(totals.get(PAYMENT, 0))}


DOCUMENT_KINDS = {INVOICE: "invoice", CREDIT_NOTE: "credit_note", FEE: "reminder"}


def documents(session: Session, contract: Contract, limit: int = 100) -> list[dict]:
    """The contract's issued documents, newest first, as the portal lists them: ``{"id",
    "kind", "number", "issue_date", "gross_total", "currency"}`` (a reminder shows its fee).

    The portal shows documents from its own ledger, so a page needs no call to the documents
    service; the PDF itself still comes from there."""
    rows = session.scalars(
        select(AccountEntry)
        .where(AccountEntry.merchant_id == contract.merchant_id,
               AccountEntry.contract_id == contract.id,
               AccountEntry.kind.in_(DOCUMENT_KINDS))
        .order_by(AccountEntry.booked_on.desc(), AccountEntry.created_at.desc(),
                  AccountEntry.id.desc())
        .limit(limit))
    return [{"id": row.id, "kind": DOCUMENT_KINDS[row.kind], "number": row.number,
             "issue_date": row.booked_on.isoformat(), "currency": row.currency,
             "gross_total": str(money.from_minor(row.amount_minor, row.currency))}
            for row in rows]
