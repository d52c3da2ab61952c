"""Issuing documents: the documents service's use cases over its tables.

Every document is issued in two steps:

1. **Record** (one short transaction, with the event's inbox row): decide the lines, allocate
   the next number of the merchant's sequence for that kind, and insert the row with its full
   renderable ``content``. The number and the row commit together, so a rolled-back attempt
   gives its number back: no gaps, and the row lock on the sequence makes concurrent workers
   queue rather than repeat a number. Unique keys (``uq_documents_billing_key``) make a second
   delivery of the same fact a no-op.
2. **Render and publish** (no transaction held while rendering): the render pool makes the PDF
   (and Factur-X XML), storage keeps them immutably with their SHA-256, and one compare-and-set
   transaction marks the row ``issued`` and stages ``InvoiceIssued`` / ``CreditNoteIssued`` /
   ``ReminderIssued`` in the outbox. A crash between the steps leaves a ``rendering`` row that
   the repair timer finishes; the event is staged exactly once either way.
"""
from __future__ import annotations

import base64
import collections
import copy
import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from services.common import events, money
from services.common.database import UnitOfWork, utcnow
from services.common.errors import Conflict, InvalidInput, NotFound

from . import billing, content, numbering
from .billing import ContractTerms, DraftLine
from .document import Document as RenderDocument
from .document import Line, Party, Reference
from .models import Contract, Document, DocumentSettings, NumberSequence, Payment, PendingBilling
from .storage import Storage, document_key

log = logging.getLogger(__name__)

KINDS = ("invoice", "credit_note", "reminder")
# marshmallow schemas are costly to build (their nested schemas too) and safe to reuse
_CONTRACT = events.ContractCreated()
EVENT_TYPES = {"invoice": "InvoiceIssued", "credit_note": "CreditNoteIssued",
               "reminder": "ReminderIssued"}
MAX_RENDER_ATTEMPTS = 5
_DAY = dt.timedelta(days=1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def minor(amount: Decimal, currency: str) -> int:
    return money.to_minor(money.quantize(amount, currency), currency)


def major(amount_minor: int, currency: str) -> Decimal:
    return money.from_minor(amount_minor, currency)


# -- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    merchant_id: str
    seller: dict[str, Any]
    number_formats: dict[str, str]
    payment_terms_days: int
    dunning: list[dict[str, Any]]
    branding: dict[str, Any]
    configured: bool

    def as_dict(self) -> dict[str, Any]:
        return {"seller": self.seller, "number_formats": self.number_formats,
                "payment_terms_days": self.payment_terms_days, "dunning": self.dunning,
                "branding": {k: v for k, v in self.branding.items()}, "configured": self.configured}


SETTINGS_TTL_SECONDS = 5.0
_settings_cache: dict[str, tuple[float, Settings]] = {}


def settings_of(session: Session, merchant_id: str, *, fresh: bool = False) -> Settings:
    """The merchant's document settings with defaults filled in (nothing is written).

    Billing reads them for every document, so they are kept for ``SETTINGS_TTL_SECONDS`` per
    process: a change reaches documents issued a few seconds later on every replica (at once
    on the replica that saved it). ``fresh=True`` reads the database.
    """
    cached = None if fresh else _settings_cache.get(merchant_id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    settings = _load_settings(session, merchant_id)
    if len(_settings_cache) >= 10_000:
        _settings_cache.clear()
    _settings_cache[merchant_id] = (time.monotonic() + SETTINGS_TTL_SECONDS, settings)
    return settings


def _load_settings(session: Session, merchant_id: str) -> Settings:
    row = session.get(DocumentSettings, merchant_id)
    if row is None:
        return Settings(merchant_id, {"name": merchant_id, "country": "DE"},
                        dict(billing.DEFAULT_NUMBER_FORMATS), billing.DEFAULT_PAYMENT_TERMS_DAYS,
                        [dict(level) for level in billing.DEFAULT_DUNNING],
                        {"primary_color": "#1F2937", "accent_color": "#2563EB",
                         "logo_sha256": None}, configured=False)
    return Settings(merchant_id, dict(row.seller),
                    {**billing.DEFAULT_NUMBER_FORMATS, **(row.number_formats or {})},
                    row.payment_terms_days, list(row.dunning), dict(row.branding),
                    configured=True)


def save_settings(session: Session, storage: Storage, merchant_id: str,
                  data: dict[str, Any]) -> Settings:
    """Replace the merchant's settings with ``data`` (validated by ``schemas.Settings``)."""
    branding = dict(data["branding"])
    logo = branding.pop("logo", None)
    current = settings_of(session, merchant_id, fresh=True)
    if logo == "":  # explicitly removed
        branding["logo_sha256"] = None
    elif logo is not None:
        stored = storage.put(f"logos/{_sha(logo)}.img", logo)
        branding["logo_sha256"] = stored.sha256
    else:
        branding["logo_sha256"] = current.branding.get("logo_sha256")
    row = session.get(DocumentSettings, merchant_id)
    if row is None:
        row = DocumentSettings(merchant_id=merchant_id)
        session.add(row)
    row.seller = data["seller"]
    row.number_formats = {**billing.DEFAULT_NUMBER_FORMATS, **data["number_formats"]}
    row.payment_terms_days = data["payment_terms_days"]
    row.dunning = data["dunning"]
    row.branding = branding
    row.updated_at = utcnow()
    session.flush()
    return settings_of(session, merchant_id, fresh=True)


def _sha(data: bytes) -> str:
    import hashlib
    return hashlib.sha256(data).hexdigest()


# -- numbering ---------------------------------------------------------------------------------


def allocate_number(session: Session, merchant_id: str, kind: str) -> int:
    """The next sequence number of ``(merchant, kind)``: 1, 2, 3, … without gaps.

    An atomic upsert that takes the row lock until the caller's transaction ends (PostgreSQL;
    SQLite serialises writers anyway): a concurrent allocation waits, then reads the committed
    value; a rolled-back transaction returns its number to the sequence.
    """
    dialect = session.get_bind().dialect.name
    stmt = _ALLOCATE.get(dialect)
    if stmt is None:  # built once per dialect; the values are bound per call
        table = NumberSequence.__table__
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = _ALLOCATE[dialect] = insert(table).values(
            merchant_id=bindparam("merchant_id"), kind=bindparam("kind"), last_value=1,
        ).on_conflict_do_update(
            index_elements=[table.c.merchant_id, table.c.kind],
            set_={"last_value": table.c.last_value + 1},
        ).returning(table.c.last_value)
    return session.execute(stmt, {"merchant_id": merchant_id, "kind": kind}).scalar_one()


_ALLOCATE: dict[str, Any] = {}


# -- contracts ---------------------------------------------------------------------------------


def record_contract(session: Session, event: events.Event) -> tuple[Contract, bool]:
    """Keep what billing needs from ``ContractCreated``; ``(contract, created)``."""
    payload = event.payload
    existing = session.get(Contract, payload["contract_id"])
    if existing is not None:
        return existing, False
    contract = Contract(
        id=payload["contract_id"], merchant_id=event.merchant_id,
        customer_id=payload["customer_id"], currency=money.check_currency(payload["currency"]),
        language=payload.get("language") or "en", billing_start=payload["billing_start"],
        data=_CONTRACT.dump(payload))
    session.add(contract)
    session.flush()
    return contract, True


# Recently used contracts only: an entry holds a copy of the contract's data (~2 KB), and a
# billing run meets each contract once per period, so a large cache would only hold memory
# (20,000 entries grew the service by 17 MB over 10,000 new contracts).
TERMS_CACHE_SIZE = 512
_terms_cache: collections.OrderedDict[str, tuple[dict, ContractTerms]] = \
    collections.OrderedDict()


def contract_terms(contract: Contract) -> ContractTerms:
    """The contract's pricing inputs, parsed once per version of its data (per process): the
    cached terms are used only while the row's data still equals what they were parsed from."""
    cached = _terms_cache.get(contract.id)
    if cached is not None and cached[0] == contract.data:
        _terms_cache.move_to_end(contract.id)
        return cached[1]
    terms = ContractTerms.from_payload(_CONTRACT.load(contract.data))
    _terms_cache[contract.id] = (copy.deepcopy(contract.data), terms)
    _terms_cache.move_to_end(contract.id)
    while len(_terms_cache) > TERMS_CACHE_SIZE:
        _terms_cache.popitem(last=False)
    return terms


def customer_party(contract: Contract) -> Party:
    customer = (contract.data or {}).get("customer") or {}
    tax = (contract.data or {}).get("tax") or {}
    name = " ".join(p for p in (customer.get("first_name"), customer.get("last_name")) if p)
    return Party(name=name or customer.get("email") or "", company=customer.get("company_name"),
                 street=customer.get("street") or "", house_number=customer.get("house_number")
                 or "", postal_code=customer.get("postal_code") or "",
                 city=customer.get("city") or "",
                 country=customer.get("country") or tax.get("country") or "DE",
                 vat_id=customer.get("vat_id"), email=customer.get("email"))


# -- building documents ------------------------------------------------------------------------


def _line(draft: DraftLine) -> Line:
    return Line(description=draft.description, quantity=draft.quantity,
                unit_price=draft.unit_price, net_amount=draft.net, tax_rate=draft.tax_rate,
                tax_category=draft.tax_category, period_start=draft.period_start,
                period_end=draft.period_end - _DAY if draft.period_end else None)


def render_document(settings: Settings, contract: Contract, *, kind: str, number: str,
                    issue_date: dt.date, lines: list[Line], due_date: dt.date | None = None,
                    period: tuple[dt.date, dt.date] | None = None, reverse_charge: bool = False,
                    references: tuple[Reference, ...] = (), reminder_level: int | None = None,
                    reminder_fee: Decimal | None = None) -> RenderDocument:
    """The renderable document; periods given here are half-open, printed inclusively."""
    return RenderDocument.build(
        kind=kind, number=number, issue_date=issue_date, currency=contract.currency,
        seller=content.party_from_dict(settings.seller), buyer=customer_party(contract),
        lines=lines, due_date=due_date,
        service_period_start=period[0] if period else None,
        service_period_end=period[1] - _DAY if period else None,
        reverse_charge=reverse_charge, references=references, reminder_level=reminder_level,
        reminder_fee=reminder_fee, language=contract.language if contract.language in (
            "en", "de", "fr") else "en",
        branding=_branding(settings))


def _branding(settings: Settings):
    from .document import Branding
    return Branding(logo=None, primary_color=settings.branding.get("primary_color") or "#1F2937",
                    accent_color=settings.branding.get("accent_color") or "#2563EB")


def _content(doc: RenderDocument, settings: Settings, extra: dict | None = None) -> dict:
    data = content.to_content(doc)
    data["branding"]["logo_sha256"] = settings.branding.get("logo_sha256")
    if extra:
        data["billing"] = extra
    return data


_ISSUED_FOR_KEY = select(Document.id).where(
    Document.contract_id == bindparam("contract_id"), Document.kind == bindparam("kind"),
    Document.billing_key == bindparam("billing_key"))


_DOCUMENT = Document.__table__
_INSERT_DOCUMENT = _DOCUMENT.insert()
_NO_VALUES = dict.fromkeys(column.name for column in _DOCUMENT.columns)
_RECORDED = "documents.recorded"  # session.info key: rows inserted by this unit of work


def _insert(db: UnitOfWork, settings: Settings, contract: Contract, *, kind: str,
            billing_key: str, issue_date: dt.date, build, **columns) -> Document | None:
    """Number and insert a document unless ``billing_key`` was issued already (→ ``None``).

    ``build(number) -> (render document, extra billing content)``. The row is written with one
    prepared INSERT (every column given, so it compiles once) rather than an ORM flush, and
    the returned ``Document`` is a transient copy of what was written, kept on the session
    (``recorded``) so that rendering it needs no query.
    """
    session = db.session
    exists = session.scalar(_ISSUED_FOR_KEY, {"contract_id": contract.id, "kind": kind,
                                              "billing_key": billing_key})
    if exists is not None:
        return None
    sequence = allocate_number(session, contract.merchant_id, kind)
    number = numbering.format_number(settings.number_formats[kind], sequence, issue_date)
    doc, extra = build(number)
    values = {
        **_NO_VALUES,
        "id": new_id("doc"), "merchant_id": contract.merchant_id, "kind": kind,
        "number": number, "sequence": sequence, "contract_id": contract.id,
        "customer_id": contract.customer_id, "billing_key": billing_key,
        "issue_date": issue_date, "due_date": doc.due_date, "currency": contract.currency,
        "net_minor": minor(doc.net_total, doc.currency),
        "tax_minor": minor(doc.tax_total, doc.currency),
        "gross_minor": minor(doc.gross_total, doc.currency),
        "content": _content(doc, settings, extra), "status": "rendering", "render_attempts": 0,
        "paid_minor": 0, "credited_minor": 0, "fees_minor": 0, "dunning_level": 0,
        "fee_minor": 0, "created_at": utcnow(), **columns}
    session.execute(_INSERT_DOCUMENT, values)
    row = Document(**values)
    session.info.setdefault(_RECORDED, {})[row.id] = row
    return row


def recorded(session: Session, document_id: str) -> Document | None:
    """The row as this unit of work inserted it, if it did (see ``_insert``)."""
    return session.info.get(_RECORDED, {}).pop(document_id, None)


def issue_invoice(db: UnitOfWork, contract: Contract, start: dt.date, end: dt.date | None,
                  today: dt.date) -> Document | None:
    """The invoice of the period beginning ``start`` (cut to ``end``), once."""
    terms = contract_terms(contract)
    if contract.end_date is not None and start >= contract.end_date:
        return None
    if contract.end_date is not None and (end is None or end > contract.end_date):
        end = contract.end_date
    draft = billing.invoice_draft(terms, start, end)
    settings = settings_of(db.session, contract.merchant_id)
    due = today + dt.timedelta(days=settings.payment_terms_days)

    def build(number):
        doc = render_document(settings, contract, kind="invoice", number=number,
                              issue_date=today, lines=[_line(line) for line in draft.lines],
                              due_date=due, period=(draft.start, draft.end),
                              reverse_charge=terms.tax.reverse_charge)
        extra = {"period_start": draft.period.start.isoformat(),
                 "period_end": draft.period.end.isoformat(), "period_number": draft.period_number,
                 "lines": [line.as_dict() for line in draft.lines]}
        return doc, extra

    return _insert(db, settings, contract, kind="invoice",
                   billing_key=f"period:{start.isoformat()}", issue_date=today, build=build,
                   period_start=draft.start, period_end=draft.end, payment_status="open")


def bill_period(db: UnitOfWork, merchant_id: str, contract_id: str, start: dt.date,
                end: dt.date, today: dt.date) -> list[str]:
    """``BillingDue``: invoice the period, or park it until ``ContractCreated`` arrives."""
    contract = db.session.get(Contract, contract_id)
    if contract is None:
        if db.session.get(PendingBilling, (contract_id, start)) is None:
            db.session.add(PendingBilling(contract_id=contract_id, period_start=start,
                                          period_end=end, merchant_id=merchant_id))
        return []
    if contract.merchant_id != merchant_id:
        log.warning("BillingDue for contract %s from another merchant ignored", contract_id)
        return []
    row = issue_invoice(db, contract, start, end, today)
    return [row.id] if row is not None else _unrendered(db.session, contract.id, "invoice",
                                                        f"period:{start.isoformat()}")


def _unrendered(session: Session, contract_id: str, kind: str, key: str) -> list[str]:
    """A redelivery still renders a document whose first render never finished."""
    found = session.scalar(select(Document.id).where(
        Document.contract_id == contract_id, Document.kind == kind,
        Document.billing_key == key, Document.status == "rendering"))
    return [found] if found else []


def contract_created(db: UnitOfWork, event: events.Event, today: dt.date) -> list[str]:
    """Keep the contract; issue the first invoice now unless a trial comes first, and every
    period that arrived (``BillingDue``) before the contract did."""
    contract, _ = record_contract(db.session, event)
    issued = []
    starts = set()
    if event.payload.get("trial_end") is None and contract.billing_start <= today:
        row = issue_invoice(db, contract, contract.billing_start, None, today)
        starts.add(contract.billing_start)
        if row is not None:
            issued.append(row.id)
    pending = db.session.scalars(select(PendingBilling).where(
        PendingBilling.contract_id == contract.id).order_by(PendingBilling.period_start)).all()
    for parked in pending:
        if parked.period_start not in starts:
            row = issue_invoice(db, contract, parked.period_start, parked.period_end, today)
            if row is not None:
                issued.append(row.id)
        db.session.delete(parked)
    return issued


# -- credit notes ------------------------------------------------------------------------------


def _credit_note(db: UnitOfWork, contract: Contract, invoice: Document, lines: list[DraftLine],
                 key: str, today: dt.date, credit_from: dt.date) -> Document | None:
    if not lines:
        return None
    settings = settings_of(db.session, contract.merchant_id)
    reverse_charge = bool(invoice.content.get("reverse_charge"))
    end = max(line.period_end for line in lines)

    def build(number):
        doc = render_document(settings, contract, kind="credit_note", number=number,
                              issue_date=today, lines=[_line(line) for line in lines],
                              period=(credit_from, end), reverse_charge=reverse_charge,
                              references=(Reference(invoice.number, invoice.issue_date),))
        return doc, {"lines": [line.as_dict() for line in lines]}

    row = _insert(db, settings, contract, kind="credit_note", billing_key=key, issue_date=today,
                  build=build, period_start=credit_from, period_end=end,
                  refers_to_id=invoice.id)
    if row is not None:
        db.session.execute(update(Document).where(Document.id == invoice.id).values(
            credited_minor=Document.credited_minor + row.gross_minor))
        _refresh_status(db.session, invoice.id)
    return row


def _invoice_lines(invoice: Document) -> tuple[list[DraftLine], billing.Period] | None:
    extra = (invoice.content or {}).get("billing")
    if not extra:
        return None
    period = billing.Period(dt.date.fromisoformat(extra["period_start"]),
                            dt.date.fromisoformat(extra["period_end"]))
    return [DraftLine.from_dict(line) for line in extra["lines"]], period


def _refunded_from(session: Session, invoice: Document) -> dt.date:
    """The first day of the invoice that an earlier credit note refunded (its end if none):
    a later correction only refunds the days before it."""
    earliest = session.scalar(select(func.min(Document.period_start)).where(
        Document.refers_to_id == invoice.id, Document.kind == "credit_note"))
    return min(earliest, invoice.period_end) if earliest else invoice.period_end


def _credited_net(session: Session, invoice_id: str) -> Decimal:
    rows = session.execute(select(Document.net_minor, Document.currency).where(
        Document.refers_to_id == invoice_id, Document.kind == "credit_note")).all()
    return sum((major(net, currency) for net, currency in rows), Decimal(0))


def contract_cancelled(db: UnitOfWork, merchant_id: str, contract_id: str, end_date: dt.date,
                       today: dt.date) -> list[str]:
    """Refund, pro rata, whatever was invoiced for days from ``end_date`` on."""
    contract = db.session.get(Contract, contract_id)
    if contract is None or contract.merchant_id != merchant_id:
        log.warning("ContractCancelled for unknown contract %s", contract_id)
        return []
    contract.end_date = end_date
    invoices = db.session.scalars(select(Document).where(
        Document.contract_id == contract.id, Document.kind == "invoice",
        Document.period_end > end_date).order_by(Document.period_start)).all()
    issued = []
    for invoice in invoices:
        found = _invoice_lines(invoice)
        if found is None:
            continue
        lines, period = found
        start = max(end_date, invoice.period_start)
        credit = billing.credit_lines(lines, period, _refunded_from(db.session, invoice), start,
                                      contract.currency, _credited_net(db.session, invoice.id))
        row = _credit_note(db, contract, invoice, credit, f"cancel:{invoice.id}:{end_date}",
                           today, start)
        if row is not None:
            issued.append(row.id)
    return issued


def contract_changed(db: UnitOfWork, event: events.Event, today: dt.date) -> list[str]:
    """``ContractChanged``: a withdrawn cancellation clears the end date; a price change
    (``changes`` with ``components`` and/or ``terms`` and ``effective_on``) credits the rest
    of the billed period at the old price and invoices it at the new one. Other changes
    (payment method, …) do not concern documents."""
    changes = event.payload["changes"] or {}
    contract = db.session.get(Contract, event.payload["contract_id"])
    if contract is None or contract.merchant_id != event.merchant_id:
        return []
    if changes.get("cancellation") == "withdrawn":
        contract.end_date = None
    if not ({"components", "terms"} & set(changes)) or not changes.get("effective_on"):
        return []
    key = f"change:{event.event_id}"
    if db.session.scalar(select(Document.id).where(Document.contract_id == contract.id,
                                                   Document.billing_key == key)):
        return []  # replayed: the terms were updated then, the documents issued
    effective_on = dt.date.fromisoformat(str(changes["effective_on"]))
    old = contract_terms(contract)
    data = dict(contract.data)
    if "components" in changes:
        data["components"] = [events.ComponentLine().dump(events.ComponentLine().load(c))
                              for c in changes["components"]]
    if "terms" in changes:
        data["terms"] = events.PriceTerms().dump(events.PriceTerms().load(
            {**data["terms"], **changes["terms"]}))
    new = ContractTerms.from_payload(_CONTRACT.load(data))
    if new.months != old.months:
        raise InvalidInput("a change of billing period length is not supported mid-contract")
    contract.data = data
    # the invoice that billed effective_on most recently (the period's, or an earlier change's)
    invoice = db.session.scalar(select(Document).where(
        Document.contract_id == contract.id, Document.kind == "invoice",
        Document.period_start <= effective_on, Document.period_end > effective_on)
        .order_by(Document.period_start.desc(), Document.sequence.desc()))
    found = _invoice_lines(invoice) if invoice is not None else None
    if found is None:
        return []
    lines, period = found
    billed_end = _refunded_from(db.session, invoice)
    if billed_end <= effective_on:
        return []  # those days were refunded already (the contract ended before)
    credit, charge = billing.change_lines(lines, period, new, effective_on, billed_end,
                                          _credited_net(db.session, invoice.id))
    issued = []
    row = _credit_note(db, contract, invoice, credit, key, today, effective_on)
    if row is not None:
        issued.append(row.id)
    if charge:
        settings = settings_of(db.session, contract.merchant_id)
        due = today + dt.timedelta(days=settings.payment_terms_days)

        def build(number):
            doc = render_document(settings, contract, kind="invoice", number=number,
                                  issue_date=today, lines=[_line(line) for line in charge],
                                  due_date=due, period=(effective_on, billed_end),
                                  reverse_charge=new.tax.reverse_charge)
            extra = {"period_start": invoice.content["billing"]["period_start"],
                     "period_end": invoice.content["billing"]["period_end"],
                     "lines": [line.as_dict() for line in charge]}
            return doc, extra

        row = _insert(db, settings, contract, kind="invoice", billing_key=key, issue_date=today,
                      build=build, period_start=effective_on, period_end=billed_end,
                      payment_status="open")
        if row is not None:
            issued.append(row.id)
    return issued


# -- reminders ---------------------------------------------------------------------------------


def outstanding_minor(invoice: Document) -> int:
    return invoice.gross_minor + invoice.fees_minor - invoice.paid_minor - invoice.credited_minor


def _refresh_status(session: Session, invoice_id: str) -> None:
    invoice = session.get(Document, invoice_id)
    session.refresh(invoice)
    invoice.payment_status = "settled" if outstanding_minor(invoice) <= 0 else "open"


def run_dunning(db: UnitOfWork, today: dt.date, limit: int = 200) -> list[str]:
    """Issue the reminders that are due today (one level per invoice per run)."""
    session = db.session
    candidates = session.scalars(select(Document).where(
        Document.kind == "invoice", Document.status == "issued",
        Document.payment_status == "open", Document.due_date < today,
        Document.dunning_level < billing.MAX_DUNNING_LEVELS)
        .order_by(Document.due_date, Document.id).limit(limit)).all()
    issued = []
    for invoice in candidates:
        settings = settings_of(session, invoice.merchant_id)
        try:
            levels = billing.dunning_levels(settings.dunning, invoice.currency)
        except ValueError:
            log.warning("merchant %s has unusable dunning settings", invoice.merchant_id)
            continue
        level = billing.next_reminder(invoice.due_date, today, invoice.dunning_level, levels)
        if level is None or outstanding_minor(invoice) <= 0:
            continue
        row = _reminder(db, settings, invoice, level, today)
        if row is not None:
            issued.append(row.id)
    return issued


def _reminder(db: UnitOfWork, settings: Settings, invoice: Document,
              level: billing.DunningLevel, today: dt.date) -> Document | None:
    session = db.session
    # compare-and-set: two timers (replicas) racing issue the level once
    moved = session.execute(update(Document).where(
        Document.id == invoice.id, Document.dunning_level == level.level - 1)
        .values(dunning_level=level.level).execution_options(synchronize_session=False))
    if moved.rowcount != 1:
        return None
    contract = session.get(Contract, invoice.contract_id)
    open_amount = major(outstanding_minor(invoice), invoice.currency)
    fee = money.quantize(level.fee, invoice.currency)
    language = contract.language if contract.language in ("en", "de", "fr") else "en"
    from babel.dates import format_date

    from .document import LOCALES
    label = billing.TEXTS["overdue"][language].format(
        number=invoice.number,
        date=format_date(invoice.issue_date, format="medium", locale=LOCALES[language]))

    def build(number):
        doc = render_document(
            settings, contract, kind="reminder", number=number, issue_date=today,
            lines=[Line(description=label, quantity=Decimal(1), unit_price=open_amount,
                        net_amount=open_amount, tax_rate=Decimal(0), tax_category="O")],
            due_date=today + dt.timedelta(days=settings.payment_terms_days),
            references=(Reference(invoice.number, invoice.issue_date),),
            reminder_level=level.level, reminder_fee=fee)
        return doc, None

    row = _insert(db, settings, contract, kind="reminder",
                  billing_key=f"{invoice.id}:{level.level}", issue_date=today, build=build,
                  refers_to_id=invoice.id, reminder_level=level.level,
                  fee_minor=minor(fee, invoice.currency))
    if row is not None:
        session.execute(update(Document).where(Document.id == invoice.id).values(
            fees_minor=Document.fees_minor + row.fee_minor))
    return row


# -- payments ----------------------------------------------------------------------------------


def register_payment(db: UnitOfWork, merchant_id: str, data: dict[str, Any],
                     idempotency_key: str | None, today: dt.date) -> dict[str, Any]:
    """Record a payment against an invoice and announce ``PaymentReceived``.

    ``data``: ``invoice_id``, ``amount`` (Decimal > 0), optional ``currency`` (must be the
    invoice's), ``paid_on`` (default today), ``reference``. The same ``Idempotency-Key`` again
    returns the first payment instead of booking a second one.
    """
    session = db.session
    if idempotency_key:
        earlier = session.scalar(select(Payment).where(
            Payment.merchant_id == merchant_id, Payment.idempotency_key == idempotency_key))
        if earlier is not None:
            if earlier.invoice_id != data["invoice_id"] or earlier.amount_minor != minor(
                    data["amount"], earlier.currency):
                raise Conflict("this Idempotency-Key was used for another payment")
            return payment_view(session, earlier)
    invoice = session.get(Document, data["invoice_id"])
    if invoice is None or invoice.merchant_id != merchant_id or invoice.kind != "invoice" \
            or invoice.status != "issued":
        raise NotFound("invoice not found")
    currency = data.get("currency") or invoice.currency
    if currency.upper() != invoice.currency:
        raise InvalidInput("the currency differs from the invoice's", {"currency": [{
            "code": "currency_mismatch", "message": f"The invoice is in {invoice.currency}.",
            "params": {"currency": invoice.currency}}]})
    amount = data["amount"]
    if money.quantize(amount, invoice.currency) != amount:
        raise InvalidInput("too many decimals", {"amount": [{
            "code": "too_precise", "message": f"At most {money.precision(invoice.currency)} "
            "decimals.", "params": {"decimals": money.precision(invoice.currency)}}]})
    payment = Payment(id=new_id("pay"), merchant_id=merchant_id, invoice_id=invoice.id,
                      amount_minor=minor(amount, invoice.currency), currency=invoice.currency,
                      paid_on=data.get("paid_on") or today, reference=data.get("reference"),
                      idempotency_key=idempotency_key)
    session.add(payment)
    try:
        session.flush()
    except IntegrityError:  # the same key raced in: the other request booked it
        raise Conflict("a payment with this Idempotency-Key is being recorded") from None
    session.execute(update(Document).where(Document.id == invoice.id).values(
        paid_minor=Document.paid_minor + payment.amount_minor))
    _refresh_status(session, invoice.id)
    db.add_event(events.new_event("PaymentReceived", merchant_id=merchant_id,
                                  aggregate_id=invoice.contract_id, payload={
        "payment_id": payment.id, "invoice_id": invoice.id, "invoice_number": invoice.number,
        "contract_id": invoice.contract_id, "customer_id": invoice.customer_id,
        "amount": major(payment.amount_minor, invoice.currency), "currency": invoice.currency,
        "paid_on": payment.paid_on,
        "outstanding": major(outstanding_minor(invoice), invoice.currency),
        "reference": payment.reference}))
    return payment_view(session, payment)


def payment_view(session: Session, payment: Payment) -> dict[str, Any]:
    invoice = session.get(Document, payment.invoice_id)
    return {"id": payment.id, "invoice_id": payment.invoice_id,
            "amount": str(major(payment.amount_minor, payment.currency)),
            "currency": payment.currency, "paid_on": payment.paid_on.isoformat(),
            "reference": payment.reference,
            "invoice": {"number": invoice.number, "payment_status": invoice.payment_status,
                        "outstanding": str(major(outstanding_minor(invoice),
                                                 invoice.currency))}}


# -- rendering and publishing ------------------------------------------------------------------


@dataclass(frozen=True)
class RenderJob:
    document_id: str
    job: dict[str, Any]


def render_job(storage: Storage, row: Document) -> RenderJob:
    """What the renderer needs. The PDF is dated when the row was recorded, so rendering it
    again (after a crash) gives the same bytes and the immutable store accepts them."""
    logo_sha = ((row.content or {}).get("branding") or {}).get("logo_sha256")
    logo = storage.get(f"logos/{logo_sha}.img", sha256=logo_sha) if logo_sha else None
    created = row.created_at
    if created.tzinfo is None:  # as flushed, before the UTC-aware column reads it back
        created = created.replace(tzinfo=dt.UTC)
    return RenderJob(row.id, {"content": row.content, "logo": logo, "created_at": created,
                              "einvoice": row.kind in ("invoice", "credit_note")})


def store_rendered(storage: Storage, row: Document, answer: dict[str, Any]) -> dict[str, Any]:
    year = row.issue_date.year
    pdf = storage.put(document_key(row.merchant_id, year, row.id, "pdf"), answer["pdf"])
    if pdf.sha256 != answer["pdf_sha256"]:
        raise ValueError("the stored PDF does not match the renderer's digest")
    values = {"pdf_key": pdf.key, "pdf_sha256": pdf.sha256, "pdf_size": pdf.size,
              "einvoice_error": answer.get("einvoice_error")}
    if answer.get("xml") is not None:
        xml = storage.put(document_key(row.merchant_id, year, row.id, "xml"), answer["xml"])
        values.update(xml_key=xml.key, xml_sha256=xml.sha256)
    return values


_PUBLISHED = ("pdf_key", "pdf_sha256", "pdf_size", "xml_key", "xml_sha256", "einvoice_error")
_PUBLISH = (update(Document.__table__)
            .where(Document.__table__.c.id == bindparam("document_id"),
                   Document.__table__.c.status == "rendering")
            .values(status="issued", issued_at=bindparam("issued_at"), render_error=None,
                    **{name: bindparam(name) for name in _PUBLISHED}))


def publish(db: UnitOfWork, document_id: str, values: dict[str, Any], now: dt.datetime,
            row: Document | None = None) -> bool:
    """Mark the document issued and stage its event, once (compare-and-set on the status).

    ``row``: the document as the caller has it (saves reading it again)."""
    session = db.session
    values = {**dict.fromkeys(_PUBLISHED), **values}
    done = session.execute(_PUBLISH, {"document_id": document_id, "issued_at": now, **values})
    if done.rowcount != 1:
        return False
    if row is None or row.id != document_id:
        row = session.get(Document, document_id)
    if row.status != "issued":  # (the UPDATE above bypassed the session) keep it in step
        for name, value in {"status": "issued", "issued_at": now, **values}.items():
            set_committed_value(row, name, value)
    db.add_event(events.new_event(EVENT_TYPES[row.kind], merchant_id=row.merchant_id,
                                  aggregate_id=row.contract_id, payload=event_payload(session,
                                                                                      row)))
    return True


def render_failed(db: UnitOfWork, document_id: str, error: str) -> None:
    db.session.execute(update(Document).where(
        Document.id == document_id, Document.status == "rendering").values(
        render_attempts=Document.render_attempts + 1, render_error=error[:2000],
        status=_failed_after_attempts()).execution_options(synchronize_session=False))


def _failed_after_attempts():
    from sqlalchemy import case
    return case((Document.render_attempts + 1 >= MAX_RENDER_ATTEMPTS, "failed"),
                else_="rendering")


def event_payload(session: Session, row: Document) -> dict[str, Any]:
    payload = {
        "document_id": row.id, "number": row.number, "contract_id": row.contract_id,
        "customer_id": row.customer_id, "issue_date": row.issue_date, "due_date": row.due_date,
        "period_start": row.period_start, "period_end": row.period_end,
        "currency": row.currency, "net_total": major(row.net_minor, row.currency),
        "tax_total": major(row.tax_minor, row.currency),
        "gross_total": major(row.gross_minor, row.currency),
    }
    if row.kind == "credit_note":
        corrected = session.get(Document, row.refers_to_id) if row.refers_to_id else None
        payload.update(corrects_document_id=row.refers_to_id,
                       corrects_number=corrected.number if corrected else None)
    if row.kind == "reminder":
        payload.update(invoice_id=row.refers_to_id, level=row.reminder_level,
                       fee=major(row.fee_minor, row.currency))
    return payload


def unrendered(session: Session, older_than: dt.datetime, limit: int = 100) -> list[str]:
    return list(session.scalars(select(Document.id).where(
        Document.status == "rendering", Document.created_at < older_than)
        .order_by(Document.created_at).limit(limit)))


# -- reading -----------------------------------------------------------------------------------


def find(session: Session, merchant_id: str, document_id: str,
         contract_id: str | None = None) -> Document:
    """The issued document, scoped: another merchant's or contract's is ``NotFound``."""
    row = session.get(Document, document_id) if isinstance(document_id, str) else None
    if row is None or row.merchant_id != merchant_id or row.status != "issued" or (
            contract_id is not None and row.contract_id != contract_id):
        raise NotFound("document not found")
    return row


def list_documents(session: Session, merchant_id: str, *, contract_id=None, customer_id=None,
                   kind=None, page: int = 1, per_page: int = 50) -> dict[str, Any]:
    query = select(Document).where(Document.merchant_id == merchant_id,
                                   Document.status == "issued")
    if contract_id is not None:
        query = query.where(Document.contract_id == contract_id)
    if customer_id is not None:
        query = query.where(Document.customer_id == customer_id)
    if kind is not None:
        query = query.where(Document.kind == kind)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Document.issue_date.desc(), Document.sequence.desc(),
                                          Document.id)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return {"items": [view(session, row) for row in rows], "page": page, "per_page": per_page,
            "total": total, "has_more": page * per_page < total}


def view(session: Session, row: Document) -> dict[str, Any]:
    currency = row.currency

    def amount(value: int) -> str:
        return str(major(value, currency))

    data = {
        "id": row.id, "kind": row.kind, "number": row.number, "contract_id": row.contract_id,
        "customer_id": row.customer_id, "issue_date": row.issue_date.isoformat(),
        "due_date": row.due_date.isoformat() if row.due_date else None,
        "period_start": row.period_start.isoformat() if row.period_start else None,
        "period_end": row.period_end.isoformat() if row.period_end else None,
        "currency": currency, "net_total": amount(row.net_minor),
        "tax_total": amount(row.tax_minor), "gross_total": amount(row.gross_minor),
        "reverse_charge": bool((row.content or {}).get("reverse_charge")),
        "lines": [{k: line[k] for k in ("description", "quantity", "unit_price", "net_amount",
                                         "tax_rate", "tax_category")}
                  for line in (row.content or {}).get("lines", [])],
        "pdf": {"sha256": row.pdf_sha256, "size": row.pdf_size},
        "einvoice": row.xml_key is not None,
        "issued_at": row.issued_at.isoformat() if row.issued_at else None,
    }
    if row.kind == "invoice":
        data.update(payment_status=row.payment_status,
                    outstanding=amount(outstanding_minor(row)), paid_total=amount(row.paid_minor),
                    credited_total=amount(row.credited_minor), fees_total=amount(row.fees_minor),
                    dunning_level=row.dunning_level)
    if row.refers_to_id:
        refers = session.get(Document, row.refers_to_id)
        data["refers_to"] = {"id": row.refers_to_id, "number": refers.number if refers else None}
    if row.kind == "reminder":
        data.update(reminder_level=row.reminder_level, fee=amount(row.fee_minor),
                    amount_due=amount(row.gross_minor + row.fee_minor))
    return data


def file_of(storage: Storage, row: Document, which: str) -> dict[str, Any]:
    key, digest = (row.pdf_key, row.pdf_sha256) if which == "pdf" else (row.xml_key,
                                                                       row.xml_sha256)
    if not key:
        raise NotFound("this document has no e-invoice XML" if which == "xml"
                       else "document not found")
    data = storage.get(key, sha256=digest)
    safe_number = "".join(c if c.isalnum() or c in "-_." else "_" for c in row.number)
    return {"filename": f"{safe_number}.{which}", "content_b64": base64.b64encode(data).decode(),
            "sha256": digest, "content_type": "application/pdf" if which == "pdf"
            else "application/xml"}
