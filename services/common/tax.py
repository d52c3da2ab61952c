"""EU VAT for digital subscriptions: which rate an order carries, and whether a VAT ID is valid.

The rules (services, B2B and B2C; the seller is established in an EU member state):

==========================================  ========  ========================  =============
customer                                    category  rate                      reverse charge
==========================================  ========  ========================  =============
in the seller's member state                ``S``     seller country's rate     no
other member state, valid VAT ID of it      ``AE``    0 %                       yes
other member state, no (valid) VAT ID       ``S``     customer country's rate   no
outside the EU                              ``O``     0 %                       no
==========================================  ========  ========================  =============

A cross-border B2C customer pays the destination country's rate (the One-Stop-Shop rule, which
applies from the first euro for electronically supplied services). Reverse charge needs a VAT ID
*issued by the customer's member state*: a German VAT ID given by a customer in France does not
make the French customer a French business, so that order is taxed as B2C.

Countries are ISO 3166 alpha-2 codes (``GR`` for Greece, even though its VAT IDs start ``EL``).
Monaco is part of the French VAT territory and is taxed as France. Special territories with their
own ISO code (Åland ``AX``, the French overseas departments ``GP``/``MQ``/``RE``/``GF``/``YT``, ...)
are outside the EU VAT area and therefore ``O``. Territories without their own code (Canary
Islands, Ceuta, Melilla, Büsingen, Livigno, ...) are taxed as their country: a known limitation.

VAT ID checks are offline (format and check digit via python-stdnum); whether the number is
registered (VIES) is not checked here.

>>> tax_treatment("DE", "FR").rate
Decimal('20')
>>> tax_treatment("DE", "FR", vat_id="FR40303265045").category
'AE'
>>> tax_treatment("DE", "US").category
'O'
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from babel import Locale
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError

# Standard VAT rates in percent, as in force on 1 January 2026 (after Slovakia's rise to 23 %
# in January 2025, Estonia's to 24 % in July 2025 and Romania's to 21 % in August 2025).
# Source: the European Commission's "VAT rates in the EU" table; re-check it every January.
EU_VAT_RATES: dict[str, Decimal] = {
    "AT": Decimal("20"),
    "BE": Decimal("21"),
    "BG": Decimal("20"),
    "CY": Decimal("19"),
    "CZ": Decimal("21"),
    "DE": Decimal("19"),
    "DK": Decimal("25"),
    "EE": Decimal("24"),
    "ES": Decimal("21"),
    "FI": Decimal("25.5"),
    "FR": Decimal("20"),
    "GR": Decimal("24"),
    "HR": Decimal("25"),
    "HU": Decimal("27"),
    "IE": Decimal("23"),
    "IT": Decimal("22"),
    "LT": Decimal("21"),
    "LU": Decimal("17"),
    "LV": Decimal("21"),
    "MT": Decimal("18"),
    "NL": Decimal("21"),
    "PL": Decimal("23"),
    "PT": Decimal("23"),
    "RO": Decimal("21"),
    "SE": Decimal("25"),
    "SI": Decimal("22"),
    "SK": Decimal("23"),
}

EU_MEMBER_STATES: frozenset[str] = frozenset(EU_VAT_RATES)

# VAT ID prefix → ISO country. Only Greece differs. "XI" (Northern Ireland) is deliberately
# absent: it belongs to the EU VAT area for goods only, not for services.
_VAT_PREFIX_COUNTRY: dict[str, str] = {code: code for code in EU_MEMBER_STATES if code != "GR"}
_VAT_PREFIX_COUNTRY["EL"] = "GR"

# Countries whose territory belongs to another state's VAT area.
_VAT_AREA_OF: dict[str, str] = {"MC": "FR"}

# CLDR territory codes that are not ISO 3166 countries: regions, pseudo-locales and the
# "exceptionally reserved" codes (Ascension, Canary Islands, ...). Kosovo's XK stays: it is
# user-assigned but used by the EU, SWIFT and phonenumbers alike.
_NOT_COUNTRIES = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "ZZ"}
)

COUNTRY_CODES: frozenset[str] = frozenset(
    code
    for code in Locale("en").territories
    if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
)

TaxCategory = Literal["S", "AE", "O"]
"""UNCL 5305 codes as used by EN 16931 e-invoices: standard, reverse charge, outside scope."""


@dataclass(frozen=True)
class TaxTreatment:
    """How one order is taxed: one rate for the whole order.

    ``rate`` is a percentage (``Decimal('19')``); ``country`` is the country whose VAT rules
    decide (the customer's, or France for Monaco).
    """

    rate: Decimal
    category: TaxCategory
    reverse_charge: bool
    country: str


def check_country(code: str) -> str:
    """Return the ISO 3166 alpha-2 code upper-cased, or raise ``ValueError``."""
    normalised = code.strip().upper() if isinstance(code, str) else ""
    if normalised not in COUNTRY_CODES:
        raise ValueError(f"unknown country code {code!r}")
    return normalised


def compact_vat_id(vat_id: str) -> str:
    """``'de 136.695.976'`` → ``'DE136695976'`` (spaces, dots and dashes removed, upper-cased)."""
    return eu_vat.compact(vat_id)


def vat_id_country(vat_id: str) -> str | None:
    """The ISO country of a valid EU VAT ID (``'EL…'`` → ``'GR'``), else ``None``."""
    if not isinstance(vat_id, str):
        return None
    try:
        compact = eu_vat.validate(vat_id)
    except (ValidationError, ValueError, TypeError):
        return None
    return _VAT_PREFIX_COUNTRY.get(compact[:2])


def vat_id_valid(vat_id: str) -> bool:
    """Whether ``vat_id`` is a well-formed EU VAT ID with a correct check digit (offline)."""
    return vat_id_country(vat_id) is not None


def tax_treatment(
    seller_country: str = "DE",
    customer_country: str | None = None,
    vat_id: str | None = None,
) -> TaxTreatment:
    """Decide the VAT of an order; see the module docstring for the table of rules.

    ``customer_country`` is required (it only has a default so that ``seller_country`` can
    default to ``'DE'``: ``tax_treatment(customer_country="FR")``). Raises ``ValueError`` for a
    missing or unknown country code, or a seller outside the EU (Portico computes EU VAT only).
    """
    if customer_country is None:
        raise ValueError("customer_country is required")
    seller = _VAT_AREA_OF.get(check_country(seller_country), check_country(seller_country))
    if seller not in EU_MEMBER_STATES:
        raise ValueError(f"seller country {seller_country!r} is not an EU member state")
    customer = check_country(customer_country)
    place = _VAT_AREA_OF.get(customer, customer)

    if place not in EU_MEMBER_STATES:
        return TaxTreatment(rate=Decimal("0"), category="O", reverse_charge=False, country=customer)
    if place == seller:
        return TaxTreatment(
            rate=EU_VAT_RATES[seller], category="S", reverse_charge=False, country=seller
        )
    if vat_id and vat_id_country(vat_id) == place:
        return TaxTreatment(rate=Decimal("0"), category="AE", reverse_charge=True, country=place)
    return TaxTreatment(rate=EU_VAT_RATES[place], category="S", reverse_charge=False, country=place)
