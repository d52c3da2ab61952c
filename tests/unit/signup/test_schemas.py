"""The signup area's marshmallow schemas: strict types, coded field errors, normalisation."""
from __future__ import annotations

from decimal import Decimal

import pytest

from services.common.errors import InvalidInput
from services.signup import schemas as s


def load_error(schema, body) -> dict:
    with pytest.raises(InvalidInput) as caught:
        s.load(schema, body)
    return {name: [e["code"] for e in errors] for name, errors in caught.value.fields.items()}


@pytest.mark.parametrize(("value", "expected"), [
    ("29.90", Decimal("29.90")), (29, Decimal("29")), (29.9, Decimal("29.9")),
    (" 1.5 ", Decimal("1.5")), ("0", Decimal("0")),
])
def test_amounts(value, expected):
    data = s.load(s.PlanVariantUpdate(), {"recurring_fee": value})
    assert data["recurring_fee"] == expected


@pytest.mark.parametrize("value", ["-1", "1e3", "NaN", "Infinity", "", "1,50", True, None, [1],
                                   "1" * 40, "2000000000"])
def test_bad_amounts(value):
    codes = load_error(s.PlanVariantUpdate(), {"recurring_fee": value})
    assert codes["recurring_fee"][0] in ("not_an_amount", "out_of_range", "null")


@pytest.mark.parametrize("value", [True, "3", 3.0, None])
def test_integers_are_strict(value):
    assert load_error(s.PlanVariantUpdate(), {"trial_days": value})["trial_days"][0] in (
        "not_an_integer", "null")


def test_translations_are_trimmed_languages_checked_and_empty_ones_dropped():
    data = s.load(s.PlanUpdate(), {"name": {"en": "  Pro ", "de": "", "fr": "Pro"}})
    assert data["name"] == {"en": "Pro", "fr": "Pro"}
    assert load_error(s.PlanUpdate(), {"name": {"es": "Pro"}}) == {
        "name.es": ["unknown_language"]}
    assert load_error(s.PlanUpdate(), {"name": {"en": ""}}) == {"name": ["required"]}
    assert load_error(s.PlanUpdate(), {"name": {"en": "a\u202eb"}}) == {
        "name.en": ["invalid_characters"]}
    assert load_error(s.PlanUpdate(), {"name": "Pro"}) == {"name": ["not_an_object"]}


def test_unknown_fields_are_refused_not_ignored():
    assert load_error(s.CouponCreate(), {"code": "A", "kind": "percent", "value": "5",
                                         "valu": "6"}) == {"valu": ["unknown_field"]}


def test_body_must_be_an_object():
    assert load_error(s.PlanCreate(), ["name"]) == {"_body": ["not_an_object"]}


@pytest.mark.parametrize(("origin", "normal"), [
    ("https://Shop.Example.com/", "https://shop.example.com"),
    ("https://shop.example.com:8443", "https://shop.example.com:8443"),
    ("https://bücher.de", "https://xn--bcher-kva.de"),
    ("'self'", "'self'"),
])
def test_origins_are_normalised(origin, normal):
    data = s.load(s.SelfServiceSettings(), {"embedding": {"frame_ancestors": [origin]}})
    assert data["embedding"]["frame_ancestors"] == [normal]


@pytest.mark.parametrize("origin", [
    "http://shop.example.com", "https://shop.example.com/path", "https://*.example.com",
    "*", "'none'", "https://shop.example.com; script-src *", "https://user@shop.example.com",
    "https://shop.example.com?x=1", "javascript:alert(1)", "", 5,
])
def test_bad_origins_are_refused(origin):
    assert load_error(s.SelfServiceSettings(), {"embedding": {"frame_ancestors": [origin]}}) \
        == {"embedding.frame_ancestors.0": ["invalid_origin"]}


@pytest.mark.parametrize("text", ["I accept the {tac}, {dpp} and {withdrawal}.", "No links.",
                                  "{tac}{tac}"])
def test_allowed_placeholders(text):
    s.check_placeholders(text)


@pytest.mark.parametrize(("text", "code"), [
    ("{agb}", "unknown_placeholder"), ("{TAC}", "unknown_placeholder"),
    ("{ tac }", "unknown_placeholder"), ("{}", "unknown_placeholder"),
    ("{tac", "invalid_braces"), ("tac}", "invalid_braces"), ("{{tac}}", "invalid_braces"),
    ("{0}", "unknown_placeholder"), ("{tac.__class__}", "unknown_placeholder"),
])
def test_bad_placeholders(text, code):
    with pytest.raises(s.ValidationError) as caught:
        s.check_placeholders(text)
    assert caught.value.messages[0].code == code


def test_order_request_parses_form_strings_and_refuses_wrong_types():
    data = s.load(s.OrderRequest(), {"components": {"a": "3", "b": 2, "c": ""},
                                     "accepted_terms": ["0", 1], "coupon_code": None})
    assert data["components"] == {"a": 3, "b": 2, "c": None}
    assert data["accepted_terms"] == [0, 1]
    codes = load_error(s.OrderRequest(), {"components": {"a": 1.5, "b": True, "c": "x"},
                                          "accepted_terms": ["first"], "language": "es",
                                          "customer": [], "price": "0"})
    assert codes == {"components.a": ["not_an_integer"], "components.b": ["not_an_integer"],
                     "components.c": ["not_an_integer"], "accepted_terms.0": ["invalid_choice"],
                     "language": ["invalid_choice"], "customer": ["not_an_object"],
                     "price": ["unknown_field"]}


def test_field_errors_flatten_nested_messages_with_codes():
    flat = s.field_errors({"a": {"b": ["Not a valid integer."]},
                           "c": {0: {"d": [s.Coded("x", "X {n}", n=1)]}},
                           "_schema": ["Invalid input type."]})
    assert flat == {
        "a.b": [{"code": "not_an_integer", "message": "Not a valid integer.", "params": {}}],
        "c.0.d": [{"code": "x", "message": "X 1", "params": {"n": 1}}],
        "_body": [{"code": "not_an_object", "message": "Invalid input type.", "params": {}}]}
