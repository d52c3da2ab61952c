"""EU VAT rules: rates table, VAT ID checks, and the tax treatment of an order."""
from decimal import Decimal

import pytest
from stdnum.eu import vat as eu_vat

from services.common.tax import (
    COUNTRY_CODES,
    EU_MEMBER_STATES,
    EU_VAT_RATES,
    TaxTreatment,
    check_country,
    tax_treatment,
    vat_id_country,
    vat_id_valid,
)

# Checksum-valid VAT IDs, one per member state (python-stdnum's own test numbers).
VALID_VAT_IDS = {
    "AT": "ATU13585627",
    "BE": "BE0403019261",
    "BG": "BG175074752",
    "CY": "CY10259033P",
    "CZ": "CZ25123891",
    "DE": "DE136695976",
    "DK": "DK13585628",
    "EE": "EE100931558",
    "ES": "ESA28015865",
    "FI": "FI20774740",
    "FR": "FR40303265045",
    "GR": "EL094259216",
    "HR": "HR33392005961",
    "HU": "HU12892312",
    "IE": "IE6388047V",
    "IT": "IT00743110157",
    "LT": "LT119511515",
    "LU": "LU15027442",
    "LV": "LV40003521600",
    "MT": "MT11679112",
    "NL": "NL004495445B01",
    "PL": "PL5260250995",
    "PT": "PT501964843",
    "RO": "RO18547290",
    "SE": "SE556188840401",
    "SI": "SI50223054",
    "SK": "SK2020317068",
}


def test_rates_cover_exactly_the_27_member_states():
    assert len(EU_VAT_RATES) == 27
    assert set(EU_VAT_RATES) == EU_MEMBER_STATES
    assert "GB" not in EU_VAT_RATES and "CH" not in EU_VAT_RATES
    assert all(isinstance(rate, Decimal) and 15 <= rate <= 27 for rate in EU_VAT_RATES.values())


@pytest.mark.parametrize(
    ("country", "rate"),
    [("DE", "19"), ("FR", "20"), ("AT", "20"), ("HU", "27"), ("LU", "17"), ("FI", "25.5"),
     ("EE", "24"), ("SK", "23"), ("RO", "21"), ("MT", "18"), ("GR", "24")],
)
def test_standard_rates_as_of_2026(country, rate):
    assert EU_VAT_RATES[country] == Decimal(rate)


def test_country_codes_are_iso_alpha2_only():
    assert {"DE", "FR", "US", "CH", "GB", "GR", "MC", "AX", "XK"} <= COUNTRY_CODES
    assert not {"EU", "EZ", "UN", "ZZ", "XA", "XB", "IC", "EA", "001", "150", "EL"} & COUNTRY_CODES
    assert all(len(code) == 2 and code.isupper() for code in COUNTRY_CODES)


@pytest.mark.parametrize(("country", "vat_id"), sorted(VALID_VAT_IDS.items()))
def test_valid_vat_id_per_member_state(country, vat_id):
    assert eu_vat.is_valid(vat_id)  # the example itself is checksum-valid
    assert vat_id_valid(vat_id)
    assert vat_id_country(vat_id) == country


@pytest.mark.parametrize(
    "vat_id", ["de 136 695 976", "DE-136.695.976", "  de136695976  ", "De136695976"]
)
def test_vat_id_is_normalised_for_spaces_and_case(vat_id):
    assert vat_id_valid(vat_id)
    assert vat_id_country(vat_id) == "DE"


@pytest.mark.parametrize(
    "vat_id",
    [
        "DE123",
        "DE136695977",  # check digit off by one
        "136695976",  # no country prefix
        "XX136695976",
        "GB980780684",  # the UK left the EU
        "XI980780684",  # Northern Ireland: EU VAT area for goods only
        "CHE116281710",
        "GR094259216",  # Greek VAT IDs start EL, not GR
        "",
        "   ",
        "DE" + "1" * 10_000,
        "DE13669597\x00",
    ],
)
def test_invalid_vat_ids(vat_id):
    assert not vat_id_valid(vat_id)
    assert vat_id_country(vat_id) is None


@pytest.mark.parametrize("value", [None, 136695976, ["DE136695976"], {"id": 1}, b"DE136695976"])
def test_vat_id_of_wrong_type_is_invalid_not_a_crash(value):
    assert vat_id_valid(value) is False


def test_domestic_customer_pays_the_seller_countrys_rate():
    assert tax_treatment("DE", "DE") == TaxTreatment(Decimal("19"), "S", False, "DE")


def test_domestic_business_customer_is_not_reverse_charged():
    treatment = tax_treatment("DE", "DE", vat_id=VALID_VAT_IDS["DE"])
    assert treatment == TaxTreatment(Decimal("19"), "S", False, "DE")


def test_seller_defaults_to_germany():
    assert tax_treatment(customer_country="DE").rate == Decimal("19")
    assert tax_treatment(customer_country="AT").rate == Decimal("20")


@pytest.mark.parametrize("customer", sorted(EU_MEMBER_STATES - {"DE"}))
def test_eu_consumer_abroad_pays_destination_rate(customer):
    treatment = tax_treatment("DE", customer)
    assert treatment == TaxTreatment(EU_VAT_RATES[customer], "S", False, customer)


@pytest.mark.parametrize("customer", sorted(EU_MEMBER_STATES - {"DE"}))
def test_eu_business_abroad_with_valid_vat_id_is_reverse_charged(customer):
    treatment = tax_treatment("DE", customer, vat_id=VALID_VAT_IDS[customer])
    assert treatment == TaxTreatment(Decimal("0"), "AE", True, customer)


def test_reverse_charge_accepts_unnormalised_vat_id():
    assert tax_treatment("DE", "fr", vat_id="fr 40 303 265 045").category == "AE"


def test_greek_customer_with_el_vat_id_is_reverse_charged():
    assert tax_treatment("DE", "GR", vat_id="EL094259216").reverse_charge is True


@pytest.mark.parametrize("vat_id", ["FR123", "FR40303265046", "", None])
def test_invalid_vat_id_falls_back_to_destination_rate(vat_id):
    assert tax_treatment("DE", "FR", vat_id=vat_id) == TaxTreatment(
        Decimal("20"), "S", False, "FR"
    )


def test_vat_id_of_another_member_state_does_not_reverse_charge():
    # A customer in France presenting an Austrian VAT ID is not a French business.
    treatment = tax_treatment("DE", "FR", vat_id=VALID_VAT_IDS["AT"])
    assert treatment == TaxTreatment(Decimal("20"), "S", False, "FR")


@pytest.mark.parametrize("customer", ["US", "CH", "GB", "NO", "JP", "AX", "GP", "RE"])
def test_customer_outside_the_eu_vat_area_is_outside_scope(customer):
    treatment = tax_treatment("DE", customer)
    assert treatment == TaxTreatment(Decimal("0"), "O", False, customer)
    assert tax_treatment("DE", customer, vat_id=VALID_VAT_IDS["FR"]).category == "O"


def test_monaco_is_taxed_as_france():
    assert tax_treatment("DE", "MC") == TaxTreatment(Decimal("20"), "S", False, "FR")
    assert tax_treatment("DE", "MC", vat_id=VALID_VAT_IDS["FR"]).category == "AE"
    assert tax_treatment("FR", "MC") == TaxTreatment(Decimal("20"), "S", False, "FR")


def test_other_seller_countries():
    assert tax_treatment("AT", "AT").rate == Decimal("20")
    assert tax_treatment("AT", "DE").rate == Decimal("19")
    assert tax_treatment("FR", "DE", vat_id=VALID_VAT_IDS["DE"]).category == "AE"


@pytest.mark.parametrize(
    ("seller", "customer"),
    [("DE", "XX"), ("DE", "DEU"), ("DE", ""), ("DE", "EU"), ("DE", "EL"), ("XX", "DE"),
     ("DE", None), ("DE", 49)],
)
def test_unknown_country_codes_raise(seller, customer):
    with pytest.raises(ValueError):
        tax_treatment(seller, customer)


@pytest.mark.parametrize("seller", ["US", "CH", "GB"])
def test_seller_outside_the_eu_is_refused(seller):
    with pytest.raises(ValueError, match="not an EU member state"):
        tax_treatment(seller, "DE")


def test_country_codes_are_case_insensitive():
    assert check_country(" de ") == "DE"
    assert tax_treatment("de", "fr") == tax_treatment("DE", "FR")


def test_tax_treatment_is_immutable():
    treatment = tax_treatment("DE", "DE")
    with pytest.raises(AttributeError):
        treatment.rate = Decimal("0")
