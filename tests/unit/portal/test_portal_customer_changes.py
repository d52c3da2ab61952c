"""Customer data changes with the signup field rules, and payment method changes (SEPA)."""
import datetime as dt

import pytest

from services.common import customer_fields
from services.common.errors import InvalidInput
from services.portal import contracts, customers, payment_methods
from services.portal.models import Customer

from .orders import order_submitted

TODAY = dt.date(2026, 3, 10)
M = "m_test"
MODES = customer_fields.DEFAULT_MODES


@pytest.fixture
def contract(database, db):
    """A contract created in its own transaction, loaded in the test's unit of work."""
    creating = database.unit()
    contract_id = contracts.create_from_order(creating, order_submitted(M)).id
    creating.commit()
    creating.close()
    return contracts.get_contract(db.session, M, contract_id)


def customer_of(db, contract) -> Customer:
    return customers.get_customer(db.session, M, contract.customer_id)


def test_an_address_change_is_validated_stored_and_announced_with_before_and_after(
        database, db, contract):
    customer = customer_of(db, contract)
    changed = customers.change_customer(
        db, customer, {"street": " Neue Straße ", "house_number": "5", "postal_code": "80331",
                       "city": "München", "unknown_field": "ignored"},
        MODES, TODAY, contract_id=contract.id)
    db.commit()

    assert changed is True
    assert customer.data["street"] == "Neue Straße" and customer.data["city"] == "München"
    assert "unknown_field" not in customer.data
    event = database.outbox()[-1]
    assert event["type"] == "CustomerChanged"
    assert event["payload"]["contract_id"] == contract.id
    assert event["payload"]["before"]["street"] == "Hauptstr."
    assert event["payload"]["after"]["street"] == "Neue Straße"
    assert event["payload"]["after"]["email"] == "ann@example.com"  # untouched fields stay


def test_invalid_fields_are_reported_each_and_nothing_is_written(database, db, contract):
    customer = customer_of(db, contract)
    with pytest.raises(InvalidInput) as invalid:
        customers.change_customer(db, customer, {
            "email": "not-an-address", "postal_code": "ABC", "last_name": "",
            "phone": "12", "city": "x" * 101, "first_name": "Ann\u202e"}, MODES, TODAY)
    db.commit()

    codes = {name: problems[0]["code"] for name, problems in invalid.value.fields.items()}
    assert codes == {"email": "invalid_email", "postal_code": "invalid_postal_code",
                     "last_name": "required", "phone": "invalid_phone", "city": "too_long",
                     "first_name": "invalid_characters"}
    assert invalid.value.fields["city"][0]["params"] == {"max": 100}
    assert customer_of(db, contract).data["email"] == "ann@example.com"
    assert [e["type"] for e in database.outbox()] == ["CustomerCreated", "ContractCreated"]


@pytest.mark.parametrize("value", [None, 12, ["a"], {"a": 1}])
def test_a_value_that_is_not_text_is_refused(db, contract, value):
    with pytest.raises(InvalidInput) as invalid:
        customers.change_customer(db, customer_of(db, contract), {"city": value}, MODES, TODAY)
    assert invalid.value.fields["city"][0]["code"] == "not_a_string"


def test_changes_that_are_not_an_object_are_refused(db, contract):
    with pytest.raises(InvalidInput):
        customers.change_customer(db, customer_of(db, contract), ["street"], MODES, TODAY)


def test_hidden_fields_keep_their_value_whatever_is_sent(db, contract):
    modes = {**MODES, "phone": "hidden", "city": "hidden"}
    customer = customer_of(db, contract)
    customers.change_customer(db, customer, {"phone": "+49301234567", "city": "Hacked",
                                             "street": "Ring"}, modes, TODAY)
    assert customer.data["city"] == "Berlin" and customer.data.get("phone") is None
    assert customer.data["street"] == "Ring"


def test_a_field_the_merchant_now_requires_must_be_filled_in(db, contract):
    modes = {**MODES, "phone": "required"}
    with pytest.raises(InvalidInput) as invalid:
        customers.change_customer(db, customer_of(db, contract), {"street": "Ring"}, modes, TODAY)
    assert list(invalid.value.fields) == ["phone"]


def test_an_optional_field_can_be_cleared_and_values_are_normalised(db, contract):
    customer = customer_of(db, contract)
    customers.change_customer(db, customer, {"address_line_2": "c/o Lee", "country": "de",
                                             "phone": "030 1234567"}, MODES, TODAY)
    assert customer.data["country"] == "DE" and customer.data["phone"] == "+49301234567"
    customers.change_customer(db, customer, {"address_line_2": ""}, MODES, TODAY)
    assert customer.data["address_line_2"] is None


def test_sending_the_same_data_changes_nothing_and_announces_nothing(database, db, contract):
    customer = customer_of(db, contract)
    assert customers.change_customer(db, customer, {"city": "Berlin"}, MODES, TODAY) is False
    db.commit()
    assert "CustomerChanged" not in [e["type"] for e in database.outbox()]


def test_post_dispatch_needs_the_postal_address(db, contract):
    customer = customer_of(db, contract)
    with pytest.raises(InvalidInput) as invalid:
        customers.change_customer(db, customer, {"dispatch_type": "post", "street": ""},
                                  MODES, TODAY)
    assert invalid.value.fields["street"][0]["code"] == "required"


# -- payment method ------------------------------------------------------------------------------

GOOD = {"type": "sepa_debit", "iban": "DE89 3704 0044 0532 0130 00", "account_holder": "Ann Lee",
        "mandate_accepted": True}


def test_a_sepa_mandate_stores_and_announces_only_the_masked_iban(database, db, contract):
    method = payment_methods.change(db, contract, GOOD)
    db.commit()

    assert method == {"type": "sepa_debit", "masked": "DE89 **** **** **** **30 00",
                      "account_holder": "Ann Lee"}
    with database.engine.connect() as conn:
        dump = "\n".join(conn.connection.iterdump())
    assert "DE89370400440532013000" not in dump and "0532 0130" not in dump
    event = database.outbox()[-1]
    assert event["type"] == "ContractChanged"
    assert event["payload"]["changes"] == {
        "payment_method": {"type": "sepa_debit", "masked": "DE89 **** **** **** **30 00"}}
    db.close()
    reloaded = contracts.get_contract(database.unit().session, M, contract.id)
    view = contracts.contract_view(database.unit().session, reloaded, TODAY)
    assert view["payment_method"] == method


@pytest.mark.parametrize(("changes", "field", "code"), [
    ({"iban": "DE89 3704 0044 0532 0130 01"}, "iban", "invalid_iban"),  # checksum
    ({"iban": "DE89 3704"}, "iban", "invalid_iban"),
    ({"iban": "hello"}, "iban", "invalid_iban"),
    ({"iban": ""}, "iban", "required"),
    ({"iban": None}, "iban", "required"),
    ({"iban": "BR15 0000 0000 0000 1093 2840 814P 2"}, "iban", "iban_not_sepa"),
    ({"account_holder": " "}, "account_holder", "required"),
    ({"account_holder": "A" * 71}, "account_holder", "too_long"),
    ({"account_holder": "Ann\u202eLee"}, "account_holder", "invalid_characters"),
    ({"mandate_accepted": False}, "mandate_accepted", "mandate_required"),
    ({"type": "card"}, "type", "invalid_choice"),
])
def test_payment_method_errors_per_field(database, db, contract, changes, field, code):
    with pytest.raises(InvalidInput) as invalid:
        payment_methods.change(db, contract, {**GOOD, **changes})
    assert invalid.value.fields[field][0]["code"] == code
    db.commit()
    db.close()
    assert contracts.get_contract(database.unit().session, M, contract.id).payment_method is None
