"""The gateway's form tokens and cross-site checks."""
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway import web

SECRET = "s" * 40


def test_a_form_token_is_valid_for_its_scope_only():
    token = web.form_token(SECRET, "signup|acme|pv_1", now=1_000_000)
    assert web.check_form_token(SECRET, "signup|acme|pv_1", token, now=1_000_100)
    assert not web.check_form_token(SECRET, "signup|acme|pv_2", token, now=1_000_100)
    assert not web.check_form_token("other" * 8, "signup|acme|pv_1", token, now=1_000_100)


def test_a_form_token_expires_and_cannot_be_forged():
    token = web.form_token(SECRET, "scope", now=1_000_000)
    assert not web.check_form_token(SECRET, "scope", token, now=1_000_000 + web.FORM_TOKEN_TTL + 1)
    issued, _, signature = token.partition(".")
    assert not web.check_form_token(SECRET, "scope", f"{int(issued) + 1}.{signature}",
                                    now=1_000_000)
    for junk in (None, "", "abc", "x.y", "1.", ".sig"):
        assert not web.check_form_token(SECRET, "scope", junk, now=1_000_000)


def request(headers):
    return Request(EnvironBuilder(method="POST", headers=headers).get_environ())


def test_cross_site_posts_are_recognised():
    assert web.cross_site(request({"Sec-Fetch-Site": "cross-site"}))
    assert web.cross_site(request({"Sec-Fetch-Site": "same-site"}))
    assert not web.cross_site(request({"Sec-Fetch-Site": "same-origin"}))
    assert web.cross_site(request({"Origin": "https://evil.example", "Host": "pay.example"}))
    assert not web.cross_site(request({"Origin": "https://pay.example", "Host": "pay.example"}))
    assert not web.cross_site(request({}))  # API clients and old browsers send neither


def test_request_ids_from_callers_are_checked():
    assert web.request_id_from("abcDEF12-_.") == "abcDEF12-_."
    assert web.request_id_from("short") is None
    assert web.request_id_from("bad id with spaces") is None
    assert web.request_id_from("x" * 65) is None
