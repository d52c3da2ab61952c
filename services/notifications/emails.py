"""Which e-mail an event causes, what its placeholders hold, and the MIME message.

Placeholders (the same for every kind; the ones a kind has no data for are absent):

- ``customer``: ``name`` (first and last name, else company, else e-mail), ``first_name``,
  ``last_name``, ``company_name``, ``email``, ``street``, ``house_number``, ``postal_code``,
  ``city``, ``country``, ``phone``, ``vat_id``
- ``contract``: ``id``, ``plan_name``, ``start_date``, ``trial_end``, ``end_date``,
  ``currency``, ``external_id``
- ``merchant``: ``name``
- ``document`` (invoice, credit note, reminder): ``id``, ``number``, ``issue_date``,
  ``due_date``, ``period_start``, ``period_end``, ``currency``, ``net_total``, ``tax_total``,
  ``gross_total``; credit notes add ``corrects_number``, reminders ``level`` and ``fee``
- ``cancellation``: ``requested_on``, ``end_date``, ``last_day``
- ``SelfServicePortalUrl``: a freshly minted personal portal link

Dates and amounts arrive formatted for the e-mail's language (``January 15, 2027``,
``29,00 €`` in German).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from email import policy
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime

from babel.dates import format_date
from babel.numbers import format_currency

from . import default_templates, mime, templates

EVENT_KINDS = {
    "ContractCreated": "welcome",
    "InvoiceIssued": "invoice",
    "CreditNoteIssued": "credit_note",
    "ReminderIssued": "reminder",
    "ContractCancelled": "cancellation",
}
DOCUMENT_KINDS = ("invoice", "credit_note", "reminder")


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, except that it builds each header class once: the
    stock one creates a new class for every header it parses (about half of composing a
    mail went there)."""

    def __init__(self):
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name):
        made = self._made.get(name.lower())
        if made is None:
            made = self._made[name.lower()] = super().__getitem__(name)
        return made


POLICY = policy.default.clone(header_factory=_HeaderClasses())
CUSTOMER_FIELDS = ("first_name", "last_name", "company_name", "email", "street",
                   "house_number", "postal_code", "city", "country", "phone", "vat_id")


def kind_for(event_type: str) -> str | None:
    return EVENT_KINDS.get(event_type)


def language_for(requested: str | None, merchant_default: str | None) -> str:
    """The customer's language when Portico speaks it, else the merchant's default, else en."""
    for candidate in (requested, merchant_default):
        if candidate in templates.LANGUAGES:
            return candidate
    return "en"


def _date(value, language: str) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    if isinstance(value, dt.datetime):
        value = value.date()
    return format_date(value, format="long", locale=language)


def _money(value, currency: str, language: str) -> str:
    if value in (None, ""):
        return ""
    return format_currency(Decimal(str(value)), currency, locale=language)


def display_name(customer: dict) -> str:
    name = " ".join(p for p in (customer.get("first_name"), customer.get("last_name")) if p)
    return name or customer.get("company_name") or customer.get("email") or ""


def context(kind: str, language: str, *, customer: dict, contract: dict, merchant: dict,
            cause: dict | None = None) -> dict:
    """The placeholder values for one e-mail. ``cause`` is the event payload (JSON form)."""
    cause = cause or {}
    values = {
        "customer": {**{f: str(customer.get(f) or "") for f in CUSTOMER_FIELDS},
                     "name": display_name(customer)},
        "contract": {
            "id": str(contract.get("id") or contract.get("contract_id") or ""),
            "plan_name": str(contract.get("plan_name") or ""),
            "start_date": _date(contract.get("start_date"), language),
            "trial_end": _date(contract.get("trial_end"), language),
            "end_date": _date(contract.get("end_date"), language),
            "currency": str(contract.get("currency") or ""),
            "external_id": str(contract.get("external_id") or ""),
        },
        "merchant": {"name": str(merchant.get("name") or "")},
    }
    if kind in DOCUMENT_KINDS:
        currency = cause.get("currency") or values["contract"]["currency"] or "EUR"
        document = {
            "id": cause.get("document_id", ""), "number": cause.get("number", ""),
            "currency": currency,
            **{f: _date(cause.get(f), language)
               for f in ("issue_date", "due_date", "period_start", "period_end")},
            **{f: _money(cause.get(f), currency, language)
               for f in ("net_total", "tax_total", "gross_total")},
        }
        if kind == "credit_note":
            document["corrects_number"] = cause.get("corrects_number") or ""
        if kind == "reminder":
            document["level"] = cause.get("level") or 1
            document["fee"] = _money(cause.get("fee"), currency, language)
        values["document"] = document
    if kind == "cancellation":
        values["cancellation"] = {f: _date(cause.get(f), language)
                                  for f in ("requested_on", "end_date", "last_day")}
    return values


def sample_context(kind: str, language: str = "en") -> dict:
    """Placeholder values for checking a template when it is saved (every field filled)."""
    customer = {"first_name": "Ann", "last_name": "Lee", "company_name": "Lee Ltd",
                "email": "ann@example.com", "street": "Main Street", "house_number": "1",
                "postal_code": "10115", "city": "Berlin", "country": "DE",
                "phone": "+49301234567", "vat_id": "DE123456789"}
    contract = {"id": "ct_sample", "plan_name": "Pro monthly", "start_date": "2027-01-15",
                "trial_end": "2027-01-29", "end_date": "2028-01-14", "currency": "EUR",
                "external_id": "ext-1"}
    cause = {"document_id": "doc_sample", "number": "INV-2027-0001", "currency": "EUR",
             "issue_date": "2027-01-15", "due_date": "2027-01-29",
             "period_start": "2027-01-15", "period_end": "2027-02-14", "net_total": "24.37",
             "tax_total": "4.63", "gross_total": "29.00", "corrects_number": "INV-2026-0042",
             "level": 1, "fee": "5.00", "requested_on": "2027-03-01",
             "end_date": "2027-04-14", "last_day": "2027-04-14"}
    values = context(kind, language, customer=customer, contract=contract,
                     merchant={"name": "Acme GmbH"}, cause=cause)
    return {**values, templates.PORTAL_URL: "https://portico.example/portal?token=sample"}


def template_parts(kind: str, language: str, custom: dict | None) -> dict[str, str]:
    return custom or default_templates.default(kind, language)


def compose(rendered: templates.Rendered, *, recipient: str, sender: Address,
            message_id: str, date: dt.datetime,
            attachments: list[tuple[str, bytes]] = ()) -> EmailMessage | mime.Composed:
    """``multipart/alternative`` (text, HTML), inside ``multipart/mixed`` with any PDFs:
    written directly (``mime.compose``) where it can be, else with the ``email`` package."""
    fast = mime.compose(subject=rendered.subject, text=rendered.text, html=rendered.html,
                        recipient=recipient, sender=sender, message_id=message_id, date=date,
                        attachments=attachments)
    return fast if fast is not None else compose_with_email_package(
        rendered, recipient=recipient, sender=sender, message_id=message_id, date=date,
        attachments=attachments)


def compose_with_email_package(rendered: templates.Rendered, *, recipient: str,
                               sender: Address, message_id: str, date: dt.datetime,
                               attachments: list[tuple[str, bytes]] = ()) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = Address(addr_spec=recipient)  # the bare address: what the customer gave
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    for filename, content in attachments:
        message.add_attachment(content, maintype="application", subtype="pdf",
                               filename=filename)
    return message
