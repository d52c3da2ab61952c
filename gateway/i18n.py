"""Built-in strings in en/de/fr: gettext catalogs (``locale/<lang>/<area>.po``) read with Babel.

The ``.po`` files are the source; they are parsed once at import (no compiled ``.mo`` to keep in
step). Money and dates are formatted with Babel for the page's locale.
"""
from __future__ import annotations

from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date as _format_date
from babel.messages.pofile import read_po
from babel.numbers import format_currency

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "de", "fr")


@cache
def catalog(language: str) -> dict[str, str]:
    messages: dict[str, str] = {}
    for path in sorted((LOCALE_DIR / language).glob("*.po")):  # one file per area
        with path.open("rb") as handle:
            po = read_po(handle, locale=language)
        messages.update({m.id: m.string for m in po if m.id and m.string and not m.fuzzy})
    return messages


def translator(language: str):
    messages = catalog(language if language in LANGUAGES else "en")

    def gettext(text: str, **params) -> str:
        translated = messages.get(text, text)
        return translated.format(**params) if params else translated

    return gettext


@cache
def locale(language: str) -> Locale:
    """Parsed once per language (parsing it on every call doubled the cost of formatting)."""
    return Locale.parse(language)


def money(amount, currency: str, language: str) -> str:
    return _money(str(amount), currency, language)


@lru_cache(maxsize=4096)
def _money(amount: str, currency: str, language: str) -> str:
    """Pages repeat the same few amounts; Babel's formatting costs ~15 µs each time."""
    return format_currency(Decimal(amount), currency, locale=locale(language))


@lru_cache(maxsize=4096)
def date(value, language: str) -> str:
    return _format_date(value, format="long", locale=locale(language))
