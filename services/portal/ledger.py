"""A contract's account: issued invoices (and reminder fees) minus credit notes minus payments.

Filled from the documents service's events (``InvoiceIssued``, ``CreditNoteIssued``,
``ReminderIssued`` for its fee, ``PaymentReceived``), each booked once under the id its
publisher gave it. Amounts are gross, stored in integer minor units.
"""
from __future__ import annotations

import logging

from sqlalchemy import bindparam, select
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
    return Account(_entries(session, contract), contract.currency).balance()


# built once: constructing the statement costs more than running it (every portal page)
_ENTRIES = (
    select(AccountEntry.id, AccountEntry.kind, AccountEntry.number, AccountEntry.currency,
           AccountEntry.amount_minor, AccountEntry.booked_on)
    .where(AccountEntry.merchant_id == bindparam("merchant_id"),
           AccountEntry.contract_id == bindparam("contract_id"))
    .order_by(AccountEntry.booked_on.desc(), AccountEntry.created_at.desc(),
              AccountEntry.id.desc()))


def _entries(session: Session, contract: Contract) -> list:
    """The contract's entries, newest first, as plain rows (one query, no ORM objects)."""
    return session.execute(_ENTRIES, {"merchant_id": contract.merchant_id,
                                      "contract_id": contract.id}).all()


class Account:
    """A contract's entries, read once, giving both its balance and its documents."""

    def __init__(self, entries: list, currency: str):
        self.entries = entries
        self.currency = currency

    @classmethod
    def of(cls, session: Session, contract: Contract) -> Account:
        return cls(_entries(session, contract), contract.currency)

    def balance(self) -> dict:
        totals = {INVOICE: 0, FEE: 0, CREDIT_NOTE: 0, PAYMENT: 0}
        for entry in self.entries:
            if entry.currency == self.currency and entry.kind in totals:
                totals[entry.kind] += int(entry.amount_minor)
        owed = sum(SIGN[kind] * total for kind, total in totals.items())

        def as_money(minor: int) -> str:
            return str(money.from_minor(minor, self.currency))

        return {"amount": as_money(owed), "currency": self.currency,
                "invoiced": as_money(totals[INVOICE]), "fees": as_money(totals[FEE]),
                "credited": as_money(totals[CREDIT_NOTE]), "paid": as_money(totals[PAYMENT])}

    def documents(self, limit: int = 100) -> list[dict]:
        """Issued documents, newest first, as the portal lists them: ``{"id", "kind",
        "number", "issue_date", "gross_total", "currency"}`` (a reminder shows its fee).

        The portal lists documents from its own ledger, so a page needs no call to the
        documents service (and the list always agrees with the balance); the PDF itself still
        comes from there."""
        return [{"id": entry.id, "kind": DOCUMENT_KINDS[entry.kind], "number": entry.number,
                 "issue_date": entry.booked_on.isoformat(), "currency": entry.currency,
                 "gross_total": str(money.from_minor(entry.amount_minor, entry.currency))}
                for entry in self.entries if entry.kind in DOCUMENT_KINDS][:limit]


DOCUMENT_KINDS = {INVOICE: "invoice", CREDIT_NOTE: "credit_note", FEE: "reminder"}
