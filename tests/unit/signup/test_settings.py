"""Self-service settings as plain functions: validation, sections, defaults and the views."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.errors import InvalidInput
from services.signup import settings as s


def merchant(stored=None, language="en"):
    return SimpleNamespace(id="m_1", slug="acme", name="Acme", country="DE",
                           default_language=language, settings=stored or {})


def update(stored, body):
    return s.apply_update(stored, body)[0]


def codes(exc: InvalidInput) -> dict:
    return {name: [e["code"] for e in errors] for name, errors in exc.fields.items()}


def test_empty_settings_resolve_to_complete_defaults():
    view = s.resolved(merchant())
    assert view["token_validity_minutes"] == 1440
    assert view["fields"]["email"] == "required" and view["fields"]["company_name"] == \
        "optional"
    assert view["urls"] == dict.fromkeys(("success", "error", "tac", "dpp", "withdrawal"))
    assert view["embedding"] == {"frame_ancestors": ["'self'"], "redirect_hosts": []}
    assert view["styling"]["logo_url"] is None
    assert set(view["styling"]) >= {"button", "button_text", "action_button",
                                    "action_button_text", "border", "border_width",
                                    "border_radius", "page_background", "discount_text"}
    assert view["texts"]["title"] == {"en": None, "de": None, "fr": None}
    assert view["texts"]["order_heading"]["de"] == "Ihre Bestellung"
    sections = view["portal"]["sections"]
    assert sections["contract"] == {"visible": True, "cancellable": True, "heading": {
        "en": "Your contract", "de": "Ihr Vertrag", "fr": "Votre contrat"}}
    assert sections["additional_data"]["visible"] is False
    assert sections["additional_data"]["fields"] == []
    assert view["merchant"] == {"id": "m_1", "slug": "acme", "name": "Acme", "country": "DE"}


def test_texts_fall_back_to_the_default_language_then_built_in_then_any():
    stored = {"texts": {"title": {"fr": "Bienvenue"}, "order_heading": {"de": "Bestellung"}}}
    view = s.resolved(merchant(stored, language="de"))
    assert view["texts"]["order_heading"] == {"en": "Bestellung", "de": "Bestellung",
                                              "fr": "Bestellung"}
    # no text in the language or the default one, no built-in: the merchant's only text
    assert view["texts"]["title"] == {"en": "Bienvenue", "de": "Bienvenue", "fr": "Bienvenue"}


def test_a_section_replaces_the_stored_one_and_others_stay():
    stored = update({}, {"styling": {"button": "#111111"}, "ask_coupon": True})
    stored = update(stored, {"styling": {"border_width": 3}})
    assert stored["styling"] == {"border_width": 3}
    assert stored["ask_coupon"] is True
    assert "styling" not in update(stored, {"styling": None})


def test_logo_url_is_read_only_in_the_styling_section():
    stored = {"logo": {"digest": "ab" * 32, "content_type": "image/png"}}
    new = update(stored, {"styling": {"logo_url": "javascript:alert(1)", "button": "#000000"}})
    assert new["styling"] == {"button": "#000000"}
    assert s.resolved(merchant(new), "https://pay.example")["styling"]["logo_url"] == \
        f"https://pay.example/assets/logos/m_1/{'ab' * 16}.png"


def test_default_language_is_returned_separately():
    stored, language = s.apply_update({}, {"default_language": "fr"})
    assert language == "fr" and "default_language" not in stored


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidInput) as caught:
        s.apply_update({}, {"token_validity_minutes": 0, "styling": {"button": "blue"},
                            "terms": [{"text": {"en": "{x}"}}]})
    assert codes(caught.value) == {"token_validity_minutes": ["out_of_range"],
                                   "styling.button": ["invalid_colour"],
                                   "terms.0.text.en": ["unknown_placeholder"]}
    message = caught.value.fields["token_validity_minutes"][0]["message"]
    assert "1" in message and "10080" in message


@pytest.mark.parametrize("minutes", [1, 1440, 10080])
def test_token_validity_edges_are_accepted(minutes):
    assert update({}, {"token_validity_minutes": minutes})["token_validity_minutes"] == minutes


def test_five_terms_lines_are_fine_six_are_not():
    five = [{"text": {"en": f"Line {n} {{tac}}"}, "confirmation": n % 2 == 0} for n in range(5)]
    assert len(update({}, {"terms": five})["terms"]) == 5
    with pytest.raises(InvalidInput) as caught:
        s.apply_update({}, {"terms": [*five, {"text": {"en": "sixth"}}]})
    assert codes(caught.value) == {"terms": ["too_many"]}


def test_redirect_urls_need_an_allowed_host_and_hosts_are_normalised():
    with pytest.raises(InvalidInput) as caught:
        s.apply_update({}, {"urls": {"error": "https://shop.example.com/oops"}})
    assert codes(caught.value) == {"urls.error": ["host_not_allowed"]}
    stored = update({}, {"urls": {"success": "https://SHOP.example.com/ok"},
                         "embedding": {"redirect_hosts": ["Shop.Example.com."]}})
    assert stored["embedding"]["redirect_hosts"] == ["shop.example.com"]
    # exact host match: a subdomain is another host
    with pytest.raises(InvalidInput):
        s.apply_update(stored, {"urls": {"success": "https://www.shop.example.com/"}})


def test_redirect_url_appends_parameters_and_rechecks_the_host():
    stored = update({}, {"urls": {"success": "https://shop.example.com/ok?a=1&contractId=old#f"},
                         "embedding": {"redirect_hosts": ["shop.example.com"]}})
    assert s.redirect_url(stored, "success", contractId="ct_1") == \
        "https://shop.example.com/ok?a=1&contractId=ct_1#f"
    assert s.redirect_url(stored, "error") is None
    stored["embedding"]["redirect_hosts"] = []  # however it got there: no redirect
    assert s.redirect_url(stored, "success", contractId="ct_1") is None


def test_editable_view_round_trips_through_an_update():
    stored = update({}, {"texts": {"title": {"de": "Hallo"}}, "ask_coupon": True,
                         "terms": [{"text": {"en": "I agree to the {dpp}."}}],
                         "portal": {"sections": {"payment": {"editable": False}}}})
    view = s.editable_view(merchant(stored))
    body = {k: v for k, v in view.items()}
    again, language = s.apply_update(stored, body)
    assert s.editable_view(merchant(again, language)) == view
    assert view["texts"] == {"title": {"de": "Hallo"}}
    assert view["portal"]["sections"]["payment"] == {"visible": True, "editable": False,
                                                     "heading": {}}


@given(st.dictionaries(st.sampled_from(["button", "border", "page_background"]),
                       st.text(max_size=12)))
def test_only_hex_colours_are_ever_stored(styling):
    try:
        stored = update({}, {"styling": styling})
    except InvalidInput:
        return
    for value in stored["styling"].values():
        assert len(value) == 7 and value[0] == "#"
        int(value[1:], 16)
