"""A ``document.Document`` as JSON and back: what a document row keeps so it can be rendered
again, byte for byte the same page content, long after the settings or contract changed.

The logo is not copied into every row: ``branding.logo_sha256`` names it in the content-
addressed ``logos`` store (see ``storage.py``), and ``from_content`` takes the bytes.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any

from .document import Branding, Document, Line, Party, Reference

_PARTY_FIELDS = ("name", "company", "street", "house_number", "postal_code", "city", "country",
                 "vat_id", "email")


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def party_to_dict(party: Party) -> dict[str, Any]:
    return {name: getattr(party, name) for name in _PARTY_FIELDS}


def party_from_dict(data: dict[str, Any]) -> Party:
    return Party(**{name: data.get(name) or ("" if name in (
        "street", "house_number", "postal_code", "city") else None)
        for name in _PARTY_FIELDS if name not in ("name", "country")},
        name=data.get("name") or "", country=data.get("country") or "")


def to_content(doc: Document) -> dict[str, Any]:
    """JSON-ready values: Decimals as strings, dates as ISO strings."""
    logo = doc.branding.logo
    return {
        "kind": doc.kind, "number": doc.number, "issue_date": _iso(doc.issue_date),
        "currency": doc.currency,
        "seller": party_to_dict(doc.seller), "buyer": party_to_dict(doc.buyer),
        "lines": [{
            "description": line.description, "quantity": str(line.quantity),
            "unit_price": str(line.unit_price), "net_amount": str(line.net_amount),
            "tax_rate": str(line.tax_rate), "tax_category": line.tax_category,
            "period_start": _iso(line.period_start), "period_end": _iso(line.period_end),
        } for line in doc.lines],
        "due_date": _iso(doc.due_date),
        "service_period_start": _iso(doc.service_period_start),
        "service_period_end": _iso(doc.service_period_end),
        "reverse_charge": doc.reverse_charge,
        "references": [{"number": ref.number, "issue_date": _iso(ref.issue_date)}
                       for ref in doc.references],
        "reminder_level": doc.reminder_level,
        "reminder_fee": None if doc.reminder_fee is None else str(doc.reminder_fee),
        "payment_terms": doc.payment_terms, "notes": list(doc.notes), "language": doc.language,
        "branding": {
            "primary_color": doc.branding.primary_color,
            "accent_color": doc.branding.accent_color,
            "logo_sha256": hashlib.sha256(logo).hexdigest() if logo else None,
        },
    }


def from_content(data: dict[str, Any], logo: bytes | None = None) -> Document:
    """The document again; ``logo`` is the image ``branding.logo_sha256`` names (or ``None``)."""
    branding = data.get("branding") or {}
    if logo is not None and hashlib.sha256(logo).hexdigest() != branding.get("logo_sha256"):
        raise ValueError("the logo does not match the document's logo_sha256")
    return Document.build(
        kind=data["kind"], number=data["number"], issue_date=_date(data["issue_date"]),
        currency=data["currency"],
        seller=party_from_dict(data["seller"]), buyer=party_from_dict(data["buyer"]),
        lines=[Line(
            description=line["description"], quantity=Decimal(line["quantity"]),
            unit_price=Decimal(line["unit_price"]), net_amount=Decimal(line["net_amount"]),
            tax_rate=Decimal(line["tax_rate"]), tax_category=line.get("tax_category"),
            period_start=_date(line.get("period_start")),
            period_end=_date(line.get("period_end")),
        ) for line in data["lines"]],
        due_date=_date(data.get("due_date")),
        service_period_start=_date(data.get("service_period_start")),
        service_period_end=_date(data.get("service_period_end")),
        reverse_charge=bool(data.get("reverse_charge")),
        references=[Reference(ref["number"], _date(ref.get("issue_date")))
                    for ref in data.get("references") or []],
        reminder_level=data.get("reminder_level"),
        reminder_fee=None if data.get("reminder_fee") is None else Decimal(data["reminder_fee"]),
        payment_terms=data.get("payment_terms"), notes=tuple(data.get("notes") or ()),
        language=data.get("language") or "en",
        branding=Branding(logo=logo if branding.get("logo_sha256") else None,
                          primary_color=branding.get("primary_color") or "#1F2937",
                          accent_color=branding.get("accent_color") or "#2563EB"),
    )
