"""What crosses the documents service's RPC boundary, loaded through marshmallow.

Bad input becomes ``InvalidInput`` with per-field errors ``{field: [{"code", "message",
"params"}]}`` (dotted paths for nested fields: ``seller.vat_id``, ``dunning.1.fee``).
"""
from __future__ import annotations

import base64
import binascii
import io
import unicodedata
from decimal import Decimal

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)

from services.common import money, tax
from services.common.errors import InvalidInput

from . import billing, numbering
from .document import KINDS

_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
MAX_LOGO_BYTES = 512 * 1024


def _error(code: str, message: str, **params) -> dict:
    return {"code": code, "message": message, "params": params}


def field_errors(messages, prefix: str = "") -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = "" if key == "_schema" else str(key)
            path = ".".join(p for p in (prefix, name) if p) or "_body"
            for sub, errors in field_errors(value, path).items():
                out.setdefault(sub, []).extend(errors)
    elif isinstance(messages, list):
        for message in messages:
            if isinstance(message, (dict, list)):
                for sub, errors in field_errors(message, prefix).items():
                    out.setdefault(sub, []).extend(errors)
            else:
                out.setdefault(prefix or "_body", []).append(_coded(message))
    else:
        out.setdefault(prefix or "_body", []).append(_coded(messages))
    return out


_CODES = {"Missing data for required field.": "required", "Unknown field.": "unknown_field",
          "Field may not be null.": "required", "Not a valid string.": "not_a_string",
          "Not a valid integer.": "not_an_integer", "Not a valid number.": "not_a_number",
          "Not a valid date.": "invalid_date", "Not a valid boolean.": "not_a_boolean"}


def _coded(message) -> dict:
    text = str(message)
    if "|" in text and text.split("|", 1)[0].isidentifier():  # our own "code|message"
        code, text = text.split("|", 1)
        return _error(code, text)
    if text.startswith("Must be one of"):
        return _error("invalid_choice", text)
    if text.startswith(("Must be greater", "Must be less", "Must be between")):
        return _error("out_of_range", text)
    if text.startswith(("Longer than", "Shorter than", "Length must")):
        return _error("invalid_length", text)
    return _error(_CODES.get(text, "invalid"), text)


def load(schema: Schema, body) -> dict:
    """``body`` loaded, or ``InvalidInput`` naming every bad field (nothing half-applied)."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", {"_body": [_error(
            "not_an_object", "The body must be a JSON object.")]})
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise InvalidInput("invalid fields", field_errors(exc.normalized_messages())) from None


def _text(max_length: int, *, required: bool = False):
    def check(value):
        if any(ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
            raise ValidationError("invalid_characters|This text contains characters that are "
                                  "not allowed.")
    return fields.String(required=required, allow_none=not required,
                         validate=[validate.Length(max=max_length), check])


class _Strict(Schema):
    class Meta:
        unknown = EXCLUDE


class DocumentListQuery(_Strict):
    contract_id = fields.String(allow_none=True, load_default=None,
                                validate=validate.Length(max=64))
    customer_id = fields.String(allow_none=True, load_default=None,
                                validate=validate.Length(max=64))
    kind = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(KINDS))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class PaymentCreate(_Strict):
    invoice_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    amount = fields.Decimal(required=True, allow_nan=False)
    currency = fields.String(allow_none=True, load_default=None,
                             validate=validate.Length(equal=3))
    paid_on = fields.Date(allow_none=True, load_default=None)
    reference = _text(200)

    @validates("amount")
    def _positive(self, value, **_):
        if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
            raise ValidationError("not_positive|The amount must be greater than 0.")
        if value > Decimal("100000000"):
            raise ValidationError("too_large|The amount is too large.")


class DocumentSeller(_Strict):
    name = _text(200, required=True)
    company = _text(200)
    street = _text(200)
    house_number = _text(20)
    postal_code = _text(20)
    city = _text(100)
    country = fields.String(required=True)
    vat_id = fields.String(allow_none=True, load_default=None)
    email = fields.Email(allow_none=True, load_default=None)

    @validates("country")
    def _country(self, value, **_):
        try:
            tax.check_country(value)
        except ValueError:
            raise ValidationError("invalid_country|Unknown country code.") from None

    @validates("vat_id")
    def _vat_id(self, value, **_):
        if value and not tax.vat_id_valid(value):
            raise ValidationError("invalid_vat_id|This is not a valid EU VAT ID.")

    @post_load
    def _normalise(self, data, **_):
        data["country"] = tax.check_country(data["country"])
        if data.get("vat_id"):
            data["vat_id"] = tax.compact_vat_id(data["vat_id"])
        return {k: v for k, v in data.items()}


class DocumentNumberFormats(_Strict):
    invoice = fields.String(load_default=billing.DEFAULT_NUMBER_FORMATS["invoice"])
    credit_note = fields.String(load_default=billing.DEFAULT_NUMBER_FORMATS["credit_note"])
    reminder = fields.String(load_default=billing.DEFAULT_NUMBER_FORMATS["reminder"])

    @validates_schema
    def _patterns(self, data, **_):
        problems = {}
        for kind, pattern in data.items():
            try:
                numbering.validate_pattern(pattern)
            except ValueError as exc:
                problems[kind] = [f"invalid_pattern|{exc}"]
        if problems:
            raise ValidationError(problems)


class DocumentDunningLevel(_Strict):
    days_after_due = fields.Integer(required=True, validate=validate.Range(min=0, max=365))
    fee = fields.Decimal(required=True, allow_nan=False, as_string=True)

    @validates("fee")
    def _fee(self, value, **_):
        if value < 0 or money.quantize(value, "EUR") != value or value > 1000:
            raise ValidationError("invalid_fee|The fee must be between 0 and 1000 with at most "
                                  "two decimals.")


class DocumentBranding(_Strict):
    primary_color = fields.String(load_default="#1F2937",
                                  validate=validate.Regexp(r"^#[0-9A-Fa-f]{6}$"))
    accent_color = fields.String(load_default="#2563EB",
                                 validate=validate.Regexp(r"^#[0-9A-Fa-f]{6}$"))
    # base64 PNG/JPEG; "" removes the logo; absent keeps the current one
    logo = fields.String(allow_none=True, load_default=None)

    @post_load
    def _logo(self, data, **_):
        if data.get("logo"):
            data["logo"] = clean_logo(data["logo"])
        return data


def clean_logo(encoded: str) -> bytes:
    """A merchant logo decoded and re-encoded by Pillow as PNG (nothing but its pixels)."""
    from PIL import Image, UnidentifiedImageError

    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError({"logo": ["not_base64|Send the logo as base64."]}) from None
    if len(raw) > MAX_LOGO_BYTES:
        raise ValidationError({"logo": [f"too_large|The logo may be at most {MAX_LOGO_BYTES} "
                                        "bytes."]})
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.format not in ("PNG", "JPEG") or image.width * image.height > 4_000_000:
                raise ValidationError({"logo": ["unsupported_format|Upload a PNG or JPEG "
                                                "image."]})
            image.thumbnail((800, 400))
            out = io.BytesIO()
            image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").save(
                out, format="PNG")
            return out.getvalue()
    except (UnidentifiedImageError, OSError):
        raise ValidationError({"logo": ["unreadable|The image could not be read."]}) from None


class DocumentSettingsUpdate(_Strict):
    seller = fields.Nested(DocumentSeller, required=True)
    number_formats = fields.Nested(DocumentNumberFormats, load_default=dict)
    payment_terms_days = fields.Integer(load_default=billing.DEFAULT_PAYMENT_TERMS_DAYS,
                                        validate=validate.Range(min=0, max=365))
    dunning = fields.List(fields.Nested(DocumentDunningLevel),
                          load_default=lambda: [dict(d) for d in billing.DEFAULT_DUNNING],
                          validate=validate.Length(min=1, max=billing.MAX_DUNNING_LEVELS))
    branding = fields.Nested(DocumentBranding, load_default=dict)

    @validates_schema
    def _dunning_order(self, data, **_):
        levels = data.get("dunning") or []
        for index in range(1, len(levels)):
            if levels[index]["days_after_due"] <= levels[index - 1]["days_after_due"]:
                raise ValidationError({"dunning": {index: {"days_after_due": [
                    "not_increasing|Each level must come later than the one before."]}}})

    @post_load
    def _defaults(self, data, **_):
        data["number_formats"] = {**billing.DEFAULT_NUMBER_FORMATS,
                                  **(data.get("number_formats") or {})}
        data["dunning"] = [{"days_after_due": d["days_after_due"], "fee": str(d["fee"])}
                           for d in data["dunning"]]
        branding = data.get("branding") or {}
        data["branding"] = {"primary_color": branding.get("primary_color", "#1F2937"),
                            "accent_color": branding.get("accent_color", "#2563EB"),
                            "logo": branding.get("logo")}
        return data


# -- what the API answers (documented in the OpenAPI document; the RPCs build these dicts) ------


class DocumentLine(Schema):
    description = fields.String()
    quantity = fields.String(metadata={"example": "1"})
    unit_price = fields.String(metadata={"example": "29.00"})
    net_amount = fields.String(metadata={"example": "29.00"})
    tax_rate = fields.String(metadata={"example": "19"})
    tax_category = fields.String(metadata={"description": "S, Z, AE (reverse charge) or O"})


class DocumentFile(Schema):
    sha256 = fields.String()
    size = fields.Integer()


class DocumentReference(Schema):
    id = fields.String()
    number = fields.String()


class DocumentView(Schema):
    """An issued invoice, credit note or reminder. Amounts are decimal strings in
    ``currency``; periods are half-open (``period_end`` is the first day not covered)."""

    id = fields.String(metadata={"example": "doc_3f2a…"})
    kind = fields.String(metadata={"enum": list(KINDS)})
    number = fields.String(metadata={"example": "INV-2026-00042"})
    contract_id = fields.String()
    customer_id = fields.String()
    issue_date = fields.Date()
    due_date = fields.Date(allow_none=True)
    period_start = fields.Date(allow_none=True)
    period_end = fields.Date(allow_none=True)
    currency = fields.String(metadata={"example": "EUR"})
    net_total = fields.String()
    tax_total = fields.String()
    gross_total = fields.String()
    reverse_charge = fields.Boolean()
    lines = fields.List(fields.Nested(DocumentLine))
    pdf = fields.Nested(DocumentFile)
    einvoice = fields.Boolean(metadata={"description": "a Factur-X XML is embedded and "
                                                      "downloadable"})
    issued_at = fields.DateTime()
    payment_status = fields.String(metadata={"description": "invoices: open | settled"})
    outstanding = fields.String(metadata={"description": "invoices: gross + reminder fees − "
                                                         "payments − credit notes"})
    paid_total = fields.String()
    credited_total = fields.String()
    fees_total = fields.String()
    dunning_level = fields.Integer()
    refers_to = fields.Nested(DocumentReference, metadata={
        "description": "credit notes: the invoice corrected; reminders: the overdue invoice"})
    reminder_level = fields.Integer()
    fee = fields.String()
    amount_due = fields.String()


class DocumentPage(Schema):
    items = fields.List(fields.Nested(DocumentView))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    has_more = fields.Boolean()


class PaymentInvoiceState(Schema):
    number = fields.String()
    payment_status = fields.String()
    outstanding = fields.String()


class PaymentView(Schema):
    id = fields.String()
    invoice_id = fields.String()
    amount = fields.String()
    currency = fields.String()
    paid_on = fields.Date()
    reference = fields.String(allow_none=True)
    invoice = fields.Nested(PaymentInvoiceState)
