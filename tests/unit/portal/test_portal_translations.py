"""Every string the portal pages show has a German and a French translation."""
import re
from pathlib import Path

import pytest

from gateway import i18n
from gateway.routes import portal_pages
from services.common import customer_fields

TEMPLATES = Path(portal_pages.__file__).parents[1] / "templates" / "portal"
_LITERAL = re.compile(r"""\bt\('((?:[^'\\]|\\.)+)'""")
_IN_MAPPING = re.compile(r"""\bt\(\{([^}]*)\}""")
_VALUE = re.compile(r""":\s*'([^']+)'""")


def shown_strings() -> set[str]:
    strings = set()
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        strings |= set(_LITERAL.findall(text))
        for mapping in _IN_MAPPING.findall(text):
            strings |= set(_VALUE.findall(mapping))
    strings |= set(portal_pages.HEADINGS.values()) | set(portal_pages.FIELD_LABELS.values())
    strings |= set(portal_pages.PAYMENT_MESSAGES.values())
    strings |= set(customer_fields.MESSAGES.values())
    for _, title, message in portal_pages.REFUSALS.values():
        strings |= {title, message}
    strings |= {"day", "days", "week", "weeks", "month", "months", "By e-mail", "By post"}
    return strings


def test_the_templates_were_found():
    assert {"Cancel contract", "No documents yet.", "In trial", "Invoice"} <= shown_strings()


@pytest.mark.parametrize("language", ["de", "fr"])
def test_every_portal_string_is_translated(language):
    catalog = i18n.catalog(language)
    missing = sorted(s for s in shown_strings() if s not in catalog)
    assert missing == []


@pytest.mark.parametrize("language", ["de", "fr"])
def test_translations_keep_their_placeholders(language):
    catalog = i18n.catalog(language)
    for text in shown_strings():
        assert set(re.findall(r"\{\w+\}", catalog[text])) == set(re.findall(r"\{\w+\}", text)), \
            text
