"""The customer fields of the signup form and the portal, defined once, and their validation.

Each merchant sets every field to ``'optional'``, ``'required'`` or ``'hidden'``
(:data:`DEFAULT_MODES` for fields it did not configure). :func:`validate_customer` turns
untrusted input (form posts, JSON bodies) into clean values and per-field errors; it never raises
for bad input, only for a bad merchant configuration.

Rules:

- Only the fields in :data:`FIELDS` are read; unknown keys are ignored. A hidden field is dropped
  even when sent (a tampered form must not set it).
- A sent value must be a string (``None``, numbers, lists, dicts → ``not_a_string``). It is
  trimmed; control characters, lone surrogates and bidi overrides are refused
  (``invalid_characters``); then the length limit (``too_long``, ``{'max': n}``) is checked
  before any parsing.
- An empty value of a required field is ``required``; of an optional field it is cleaned to
  ``None`` (so the portal can clear a field). Fields not sent at all are absent from the result.
- ``dispatch_type == 'post'`` makes ``street``, ``postal_code``, ``city`` and ``country``
  required. If the merchant hides any of them, ``'post'`` is not a valid choice.
- Every clean value is a string (or ``None``): e-mail in email-validator's normalised form,
  phone in E.164, VAT ID compact and upper-case, country upper-case, birth date ISO
  ``YYYY-MM-DD``, dispatch type lower-case.

Error messages live in :data:`MESSAGES`, English, marked with :func:`N_` for extraction
(``pybabel extract -k N_``); translate them with gettext where they are shown.

>>> clean, errors = validate_customer(
...     {"email": " Ada@Example.COM ", "first_name": "Ada", "last_name": "Lovelace",
...      "country": "gb", "phone": "020 7946 0000"},
...     DEFAULT_MODES, today=date(2026, 1, 15))
>>> clean["email"], clean["country"], clean["phone"], errors
('Ada@example.com', 'GB', '+442079460000', {})
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from services.common.tax import COUNTRY_CODES, compact_vat_id, vat_id_country


def N_(message: str) -> str:
    """Mark ``message`` for translation without translating it (gettext's no-op marker)."""
    return message


FieldMode = Literal["optional", "required", "hidden"]
MODES: frozenset[str] = frozenset({"optional", "required", "hidden"})

# Field name → maximum length in characters after trimming. The order is the form's order.
# Coded fields (country, dispatch type, date) get roomy limits so that a wrong value is reported
# as what it is ("Select a country.") rather than as too long.
FIELDS: dict[str, int] = {
    "company_name": 200,
    "first_name": 100,
    "last_name": 100,
    "email": 254,
    "street": 200,
    "house_number": 20,
    "address_line_2": 200,
    "postal_code": 20,
    "city": 100,
    "country": 64,
    "phone": 40,
    "vat_id": 30,
    "dispatch_type": 20,
    "birth_date": 32,
}

DEFAULT_MODES: dict[str, str] = {name: "optional" for name in FIELDS} | {
    "email": "required",
    "first_name": "required",
    "last_name": "required",
    "country": "required",
}

DISPATCH_TYPES: tuple[str, ...] = ("email", "post")
POSTAL_ADDRESS_FIELDS: tuple[str, ...] = ("street", "postal_code", "city", "country")
MAX_AGE_YEARS = 130

MESSAGES: dict[str, str] = {
    "required": N_("This field is required."),
    "not_a_string": N_("Enter text."),
    "invalid_characters": N_("This field contains characters that are not allowed."),
    "too_long": N_("At most {max} characters."),
    "invalid_email": N_("Enter a valid e-mail address."),
    "invalid_phone": N_("Enter a valid phone number, with the country code if it is abroad."),
    "invalid_vat_id": N_("Enter a valid EU VAT ID, for example DE136695976."),
    "vat_id_country_mismatch": N_("This VAT ID is not from the selected country ({country})."),
    "invalid_postal_code": N_("Enter a valid postal code for {country}."),
    "invalid_country": N_("Select a country."),
    "invalid_date": N_("Enter a date as YYYY-MM-DD."),
    "birth_date_in_future": N_("The date of birth cannot be in the future."),
    "birth_date_too_old": N_("The date of birth cannot be more than {years} years ago."),
    "invalid_choice": N_("Select one of: {choices}."),
}

# Postal code formats (after trimming, upper-casing and collapsing spaces). Countries not listed
# accept any value: a wrong rule would lock real customers out, a missing one only lets typos in.
POSTAL_CODE_PATTERNS: dict[str, re.Pattern[str]] = {
    country: re.compile(pattern, re.ASCII)
    for country, pattern in {
        "AT": r"[1-9]\d{3}",
        "BE": r"[1-9]\d{3}",
        "CA": r"[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d",
        "CH": r"[1-9]\d{3}",
        "CZ": r"\d{3} ?\d{2}",
        "DE": r"\d{5}",
        "DK": r"[1-9]\d{3}",
        "ES": r"(0[1-9]|[1-4]\d|5[0-2])\d{3}",
        "FI": r"\d{5}",
        "FR": r"\d{5}",
        "GB": r"(GIR ?0AA|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})",
        "IT": r"\d{5}",
        "LI": r"94(8[5-9]|9[0-8])",
        "LU": r"\d{4}",
        "NL": r"[1-9]\d{3} ?[A-Z]{2}",
        "NO": r"\d{4}",
        "PL": r"\d{2}-\d{3}",
        "PT": r"\d{4}-\d{3}",
        "SE": r"[1-9]\d{2} ?\d{2}",
        "SK": r"\d{3} ?\d{2}",
        "US": r"\d{5}(-\d{4})?",
    }.items()
}

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# Refused anywhere: control characters (line breaks included: every field is one line), lone
# surrogates, and bidirectional overrides/isolates (they disguise text on invoices and e-mails).
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs"})
_FORBIDDEN_CHARS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class FieldError:
    """One field's problem: a stable ``code`` (a key of :data:`MESSAGES`) and its parameters."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def message(self, translate: Callable[[str], str] = lambda text: text) -> str:
        """The English message, or ``translate(template)`` filled in (e.g. ``gettext``)."""
        return translate(MESSAGES[self.code]).format(**self.params)


class _Invalid(Exception):
    def __init__(self, code: str, **params: Any):
        super().__init__(code)
        self.error = FieldError(code, params)


def resolve_modes(modes: Mapping[str, str]) -> dict[str, str]:
    """The merchant's modes over :data:`DEFAULT_MODES`; ``ValueError`` on unknown keys/modes."""
    unknown = set(modes) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown customer fields in modes: {sorted(unknown)}")
    resolved = {**DEFAULT_MODES, **modes}
    bad = {name: mode for name, mode in resolved.items() if mode not in MODES}
    if bad:
        raise ValueError(f"invalid field modes: {bad}")
    return resolved


def dispatch_choices(modes: Mapping[str, str]) -> tuple[str, ...]:
    """Dispatch types a customer may choose: ``'post'`` only when the address can be entered."""
    resolved = resolve_modes(modes)
    if any(resolved[name] == "hidden" for name in POSTAL_ADDRESS_FIELDS):
        return ("email",)
    return DISPATCH_TYPES


def validate_customer(
    data: Mapping[str, Any],
    modes: Mapping[str, str],
    *,
    today: date,
) -> tuple[dict[str, str | None], dict[str, FieldError]]:
    """Validate customer input against the merchant's field modes.

    Returns ``(clean, errors)``; ``errors`` maps a field name to its :class:`FieldError` and is
    empty when the input is valid. ``today`` (the merchant's or UTC date) bounds the birth date.
    Raises ``ValueError`` only for an invalid ``modes`` mapping.
    """
    resolved = resolve_modes(modes)
    visible = [name for name in FIELDS if resolved[name] != "hidden"]
    clean: dict[str, str | None] = {}
    errors: dict[str, FieldError] = {}

    # Pass 1: type, characters, length and emptiness of every visible field that was sent.
    for name in visible:
        if name not in data:
            continue
        value = data[name]
        if not isinstance(value, str):
            errors[name] = FieldError("not_a_string")
            continue
        value = value.strip()
        if any(_forbidden(char) for char in value):
            errors[name] = FieldError("invalid_characters")
        elif len(value) > FIELDS[name]:
            errors[name] = FieldError("too_long", {"max": FIELDS[name]})
        else:
            clean[name] = value or None

    # Pass 2: formats, in an order where country precedes the fields that depend on it.
    for name in ("country", "dispatch_type", "email", "phone", "vat_id", "postal_code",
                 "birth_date"):
        value = clean.get(name)
        if value is None:
            continue
        try:
            clean[name] = _check_format(name, value, clean, resolved, today)
        except _Invalid as invalid:
            errors[name] = invalid.error
            del clean[name]

    # Pass 3: required fields, including the postal address when documents go by post.
    required = {name for name in visible if resolved[name] == "required"}
    if clean.get("dispatch_type") == "post":
        required.update(POSTAL_ADDRESS_FIELDS)
    for name in sorted(required, key=list(FIELDS).index):
        if name not in errors and clean.get(name) is None:
            errors[name] = FieldError("required")
            clean.pop(name, None)
    return clean, errors


def _forbidden(char: str) -> bool:
    return char in _FORBIDDEN_CHARS or unicodedata.category(char) in _FORBIDDEN_CATEGORIES


def _check_format(
    name: str, value: str, clean: Mapping[str, str | None], modes: Mapping[str, str], today: date
) -> str:
    country = clean.get("country")
    if name == "country":
        code = value.upper()
        if code not in COUNTRY_CODES:
            raise _Invalid("invalid_country")
        return code
    if name == "dispatch_type":
        choice = value.lower()
        choices = dispatch_choices(modes)
        if choice not in choices:
            raise _Invalid("invalid_choice", choices=", ".join(choices))
        return choice
    if name == "email":
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError:
            raise _Invalid("invalid_email") from None
    if name == "phone":
        return _check_phone(value, country)
    if name == "vat_id":
        issued_by = vat_id_country(value)
        if issued_by is None:
            raise _Invalid("invalid_vat_id")
        # Monaco businesses hold French VAT IDs.
        if country is not None and issued_by != {"MC": "FR"}.get(country, country):
            raise _Invalid("vat_id_country_mismatch", country=country)
        return compact_vat_id(value)
    if name == "postal_code":
        normalised = " ".join(value.upper().split())
        pattern = POSTAL_CODE_PATTERNS.get(country or "")
        if pattern is not None and not pattern.fullmatch(normalised):
            raise _Invalid("invalid_postal_code", country=country)
        return normalised
    if name == "birth_date":
        return _check_birth_date(value, today).isoformat()
    raise AssertionError(f"no format rule for {name}")  # pragma: no cover


def _check_phone(value: str, country: str | None) -> str:
    try:
        number = phonenumbers.parse(value, country)
    except phonenumbers.NumberParseException:
        raise _Invalid("invalid_phone") from None
    if not phonenumbers.is_valid_number(number):
        raise _Invalid("invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _check_birth_date(value: str, today: date) -> date:
    if not _ISO_DATE.fullmatch(value):
        raise _Invalid("invalid_date")
    try:
        born = date.fromisoformat(value)
    except ValueError:
        raise _Invalid("invalid_date") from None
    if born > today:
        raise _Invalid("birth_date_in_future")
    if born < _years_before(today, MAX_AGE_YEARS):
        raise _Invalid("birth_date_too_old", years=MAX_AGE_YEARS)
    return born


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)
