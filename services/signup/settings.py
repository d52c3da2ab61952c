"""A merchant's self-service settings: defaults, updates and the views other areas read.

Stored as one JSON document on the merchant (``Merchant.settings``) holding only what the
merchant set; defaults are filled in when read, so changing a default reaches every merchant
who did not choose otherwise. Two views:

- :func:`editable_view` — what ``GET /api/v1/settings/self-service`` returns and ``PUT`` accepts
  back unchanged (texts and terms as the merchant wrote them);
- :func:`resolved` — the contract for other areas (``get_settings`` RPC): every key present,
  texts resolved per language (merchant's text in that language → in the merchant's default
  language → Portico's built-in text), portal sections with defaults and headings.

Rules that span sections (a success URL's host must be an allowed redirect host) are checked
on the whole document after an update, so no order of updates can leave it inconsistent.
"""
from __future__ import annotations

import copy
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from services.common import customer_fields
from services.common.errors import InvalidInput

from . import schemas
from .schemas import COLOUR_KEYS, LANGUAGES, TEXT_KEYS, URL_KEYS

DEFAULT_TOKEN_VALIDITY = 1440

DEFAULT_STYLING: dict = {
    "page_title": "#1B1F24",
    "page_background": "#F6F7F9",
    "section_header_background": "#EEF1F4",
    "section_header_text": "#1B1F24",
    "content_background": "#FFFFFF",
    "discount_text": "#1A7F37",
    "button": "#57606A",
    "button_text": "#FFFFFF",
    "action_button": "#1F6FEB",
    "action_button_text": "#FFFFFF",
    "border": "#D0D7DE",
    "border_width": 1,
    "border_radius": 8,
}
assert set(COLOUR_KEYS) <= set(DEFAULT_STYLING)

# Built-in texts; ``None`` means the page composes its own (plan and merchant name).
DEFAULT_TEXTS: dict[str, dict[str, str] | None] = {
    "page_title": None,
    "title": None,
    "order_heading": {"en": "Your order", "de": "Ihre Bestellung", "fr": "Votre commande"},
    "customer_heading": {"en": "Your details", "de": "Ihre Angaben", "fr": "Vos coordonnées"},
    "payment_heading": {"en": "Payment", "de": "Zahlung", "fr": "Paiement"},
    "usage_prices_heading": {"en": "Usage-based prices", "de": "Nutzungsabhängige Preise",
                             "fr": "Prix selon l'utilisation"},
    "usage_prices_description": {
        "en": "Charged at the end of each billing period for what you used.",
        "de": "Wird am Ende jedes Abrechnungszeitraums nach Verbrauch berechnet.",
        "fr": "Facturé à la fin de chaque période selon votre consommation."},
}
assert set(DEFAULT_TEXTS) == set(TEXT_KEYS)

DEFAULT_PORTAL_SECTIONS: dict = {
    "customer": {"visible": True, "editable": True, "heading": {
        "en": "Your details", "de": "Ihre Daten", "fr": "Vos coordonnées"}},
    "payment": {"visible": True, "editable": True, "heading": {
        "en": "Payment method", "de": "Zahlungsart", "fr": "Moyen de paiement"}},
    "contract": {"visible": True, "cancellable": True, "heading": {
        "en": "Your contract", "de": "Ihr Vertrag", "fr": "Votre contrat"}},
    "account": {"visible": True, "heading": {
        "en": "Account", "de": "Kundenkonto", "fr": "Compte"}},
    "documents": {"visible": True, "heading": {
        "en": "Invoices and documents", "de": "Rechnungen und Dokumente",
        "fr": "Factures et documents"}},
    "additional_data": {"visible": False, "heading": {
        "en": "Additional information", "de": "Weitere Angaben",
        "fr": "Informations complémentaires"}, "fields": []},
}

DEFAULT_FRAME_ANCESTORS = ["'self'"]


def translate(texts: dict | None, language: str, default_language: str) -> str | None:
    """The merchant's text in ``language``, else in its default language, else any."""
    if not texts:
        return None
    return (texts.get(language) or texts.get(default_language)
            or next(iter(texts.values()), None))


def _per_language(texts: dict | None, builtin: dict | None, default_language: str) -> dict:
    """Per language: the merchant's text in it → in the merchant's default language →
    Portico's built-in text → the merchant's text in any language."""
    texts, builtin = texts or {}, builtin or {}
    return {language: texts.get(language) or texts.get(default_language)
            or builtin.get(language) or next(iter(texts.values()), None)
            for language in LANGUAGES}


# -- reading ------------------------------------------------------------------------------------

def logo_url(merchant_id: str, logo: dict | None, public_url: str = "") -> str | None:
    """The gateway serves logos at a stable, content-addressed URL (cacheable for a year):
    ``{PUBLIC_URL}/assets/logos/{merchant_id}/{digest}.png``. Absolute, so e-mails can use it."""
    if not logo:
        return None
    extension = "png" if logo.get("content_type") == "image/png" else "jpg"
    return (f"{public_url.rstrip('/')}/assets/logos/{merchant_id}/"
            f"{logo['digest'][:32]}.{extension}")


def styling(stored: dict, merchant_id: str, public_url: str = "") -> dict:
    values = {**DEFAULT_STYLING, **{k: v for k, v in (stored.get("styling") or {}).items()
                                    if v is not None and k in DEFAULT_STYLING}}
    values["logo_url"] = logo_url(merchant_id, stored.get("logo"), public_url)
    return values


def embedding(stored: dict) -> dict:
    value = stored.get("embedding") or {}
    return {"frame_ancestors": list(value.get("frame_ancestors") or DEFAULT_FRAME_ANCESTORS),
            "redirect_hosts": list(value.get("redirect_hosts") or [])}


def urls(stored: dict) -> dict:
    value = stored.get("urls") or {}
    return {key: value.get(key) for key in URL_KEYS}


def field_modes(stored: dict) -> dict:
    return customer_fields.resolve_modes(stored.get("fields") or {})


def token_validity(stored: dict) -> int:
    value = stored.get("token_validity_minutes")
    return DEFAULT_TOKEN_VALIDITY if value is None else value


def portal_sections(stored: dict, default_language: str, *, resolve: bool) -> dict:
    chosen = ((stored.get("portal") or {}).get("sections")) or {}
    sections = {}
    for name, defaults in DEFAULT_PORTAL_SECTIONS.items():
        section = {**copy.deepcopy(defaults), **copy.deepcopy(chosen.get(name) or {})}
        own = (chosen.get(name) or {}).get("heading") or {}
        section["heading"] = (_per_language(own, defaults["heading"], default_language)
                              if resolve else own)
        if name == "additional_data" and resolve:
            section["fields"] = [
                {**field, "label": _per_language(field["label"], None, default_language)}
                for field in section.get("fields") or []]
        sections[name] = section
    return sections


def terms(stored: dict, default_language: str, *, resolve: bool) -> list[dict]:
    lines = stored.get("terms") or []
    if not resolve:
        return copy.deepcopy(lines)
    return [{"text": _per_language(line["text"], None, default_language),
             "confirmation": bool(line.get("confirmation"))} for line in lines]


def texts(stored: dict, default_language: str) -> dict:
    own = stored.get("texts") or {}
    return {key: _per_language(own.get(key), DEFAULT_TEXTS[key], default_language)
            for key in TEXT_KEYS}


def editable_view(merchant, public_url: str = "") -> dict:
    """The document ``GET /api/v1/settings/self-service`` returns (and ``PUT`` accepts)."""
    stored = merchant.settings or {}
    return {
        "default_language": merchant.default_language,
        "token_validity_minutes": token_validity(stored),
        "fields": field_modes(stored),
        "ask_coupon": bool(stored.get("ask_coupon", False)),
        "show_external_id": bool(stored.get("show_external_id", False)),
        "texts": copy.deepcopy(stored.get("texts") or {}),
        "urls": urls(stored),
        "terms": terms(stored, merchant.default_language, resolve=False),
        "styling": styling(stored, merchant.id, public_url),
        "embedding": embedding(stored),
        "portal": {"sections": portal_sections(stored, merchant.default_language,
                                               resolve=False)},
    }


def page_view(merchant, public_url: str = "") -> dict:
    """What the hosted signup page needs of :func:`resolved` (no portal sections)."""
    stored = merchant.settings or {}
    language = merchant.default_language
    return {
        "default_language": language,
        "fields": field_modes(stored),
        "ask_coupon": bool(stored.get("ask_coupon", False)),
        "show_external_id": bool(stored.get("show_external_id", False)),
        "texts": texts(stored, language),
        "terms": terms(stored, language, resolve=True),
        "styling": styling(stored, merchant.id, public_url),
        "urls": urls(stored),
        "embedding": embedding(stored),
        "merchant": {"id": merchant.id, "slug": merchant.slug, "name": merchant.name,
                     "country": merchant.country},
    }


def resolved(merchant, public_url: str = "") -> dict:
    """The settings with every default filled in: the ``get_settings`` RPC contract."""
    stored = merchant.settings or {}
    language = merchant.default_language
    return {
        "default_language": language,
        "token_validity_minutes": token_validity(stored),
        "fields": field_modes(stored),
        "ask_coupon": bool(stored.get("ask_coupon", False)),
        "show_external_id": bool(stored.get("show_external_id", False)),
        "texts": texts(stored, language),
        "terms": terms(stored, language, resolve=True),
        "styling": styling(stored, merchant.id, public_url),
        "urls": urls(stored),
        "embedding": embedding(stored),
        "portal": {"sections": portal_sections(stored, language, resolve=True)},
        "merchant": {"id": merchant.id, "slug": merchant.slug, "name": merchant.name,
                     "country": merchant.country},
    }


# -- writing ------------------------------------------------------------------------------------

def _clean_section(name: str, value):
    if name == "styling":
        return {k: v for k, v in value.items() if k != "logo_url" and v is not None}
    if name in ("texts", "urls"):
        return {k: v for k, v in value.items() if v}
    return value


def apply_update(stored: dict, body) -> tuple[dict, str | None]:
    """Validate ``body`` (a ``PUT``) against ``stored``; return ``(new stored document, new
    default language or None)`` or raise ``InvalidInput`` with every problem at once."""
    data = schemas.load(schemas.SelfServiceSettings(), body)
    language = data.pop("default_language", None)
    new = copy.deepcopy(stored or {})
    for name, value in data.items():
        if value is None:
            new.pop(name, None)
        else:
            new[name] = _clean_section(name, value)
    errors = cross_check(new)
    if errors:
        raise InvalidInput("invalid settings", errors)
    return new, language


def cross_check(stored: dict) -> dict:
    """Errors of rules spanning sections: redirect URLs must point at an allowed host."""
    errors: dict[str, list[dict]] = {}
    hosts = set(embedding(stored)["redirect_hosts"])
    for key in ("success", "error"):
        url = urls(stored)[key]
        if url and schemas.url_host(url) not in hosts:
            host = schemas.url_host(url)
            errors[f"urls.{key}"] = [{
                "code": "host_not_allowed",
                "message": f"Add {host} to embedding.redirect_hosts to redirect there.",
                "params": {"host": host}}]
    return errors


def redirect_url(stored: dict, key: str, **params) -> str | None:
    """The merchant's success/error URL with ``params`` appended, or ``None`` when unset or
    when its host is (no longer) allowed."""
    url = urls(stored).get(key)
    if not url or schemas.url_host(url) not in set(embedding(stored)["redirect_hosts"]):
        return None
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in params]
    query += list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query),
                       parts.fragment))
