"""E-mail templates: placeholder syntax, what the sandbox refuses (with lines), rendering."""
import pytest

from services.notifications import default_templates, emails, templates

SAMPLE = emails.sample_context("invoice")


def parts(**overrides):
    return {"subject": "Invoice {document.number}", "text": "Hello {customer.name}\n",
            "html": "<p>{{ customer.name }}</p>", **overrides}


def test_single_braces_become_jinja_and_nothing_else_changes():
    assert templates.to_jinja("{SelfServicePortalUrl}?language=de") == \
        "{{ SelfServicePortalUrl }}?language=de"
    assert templates.to_jinja("{customer.first_name}") == "{{ customer.first_name }}"
    for untouched in ("{{ customer.name }}", "{% if x %}", "a { color: red }", "${HOME}",
                      '{"json": 1}', "{{x}}", "{ spaced }"):
        assert templates.to_jinja(untouched) == untouched


def test_a_good_template_passes():
    assert templates.validate(parts(), SAMPLE) == []
    assert templates.validate(parts(text="{% if document.due_date %}due {document.due_date}"
                                         "{% else %}now{% endif %} {{ customer.name|upper }}"),
                              SAMPLE) == []


@pytest.mark.parametrize(("source", "line", "words"), [
    ("one\ntwo\n{nope}", 3, "unknown placeholder 'nope'"),
    ("one\n{customer.first_nam}", 2, "first_nam"),
    ("{{ customer.name", 1, "unexpected end of template"),
    ("a\n{% if customer.name %}", 2, "endif"),
    ("a\n{% if x %}{% endif %}", 2, "unknown placeholder 'x'"),
    ("{% for c in customer.name %}{% endfor %}", 1, "loops"),
    ("\n{% set x = 1 %}", 2, "set is not available"),
    ("{% macro m() %}{% endmacro %}", 1, "macros"),
    ("{{ customer.name.upper() }}", 1, "calling"),
    ("{{ customer.name|replace('a', 'b') }}", 1, "unknown filter 'replace'"),
    ("{{ customer.name|format(1) }}", 1, "unknown filter"),
    ("{{ '%s' % customer.name }}", 1, "% operator"),
    ("{{ 9 ** 99999 }}", 1, "** operator"),
    ("{% include 'x' %}", 1, "includes"),
    ("{{ customer.__class__ }}", 1, "unsafe"),
    ("line\n{{ customer.name * 100000 }}", 2, "too long"),
    ("{{ range(10) }}", 1, "calling"),
    ("{{ lipsum }}", 1, "unknown placeholder 'lipsum'"),
])
def test_problems_are_refused_with_their_line(source, line, words):
    [problem] = templates.validate(parts(text=source), SAMPLE)
    assert problem.part == "text"
    assert problem.line == line, problem
    assert words in problem.message, problem
    assert problem.as_field_error()["params"] == {"line": line}
    assert problem.as_field_error()["message"].startswith(f"line {line}: ")


def test_every_part_is_required_and_bounded():
    problems = templates.validate({"subject": "", "text": "x" * 60_000, "html": "ok"}, SAMPLE)
    assert [(p.part, p.message) for p in problems] == [
        ("subject", "this part may not be empty"), ("text", "longer than 50000 characters")]


def test_placeholders_differ_by_kind():
    welcome = emails.sample_context("welcome")
    [problem] = templates.validate(parts(subject="Hi", text="{document.number}"), welcome)
    assert "document" in problem.message


def test_rendering_escapes_html_but_not_text_and_keeps_the_subject_on_one_line():
    values = {**SAMPLE, "customer": {**SAMPLE["customer"], "name": "<b>Ann</b> & Bo"}}
    rendered = templates.render(parts(subject="Hi\n{customer.name}\r\nX-Header: y"), values)
    assert rendered.subject == "Hi <b>Ann</b> & Bo X-Header: y"
    assert rendered.text == "Hello <b>Ann</b> & Bo\n"
    assert rendered.html == "<p>&lt;b&gt;Ann&lt;/b&gt; &amp; Bo</p>"


def test_portal_url_marker_and_suffix():
    rendered = templates.render(parts(
        text="Open {SelfServicePortalUrl}?language=de or {SelfServicePortalUrl}.",
        html='<a href="{SelfServicePortalUrl}?language=fr">x</a>'), SAMPLE)
    assert rendered.uses_portal_url
    filled = rendered.with_portal_url("https://p.example/portal?token=abc")
    assert filled.text == ("Open https://p.example/portal?token=abc&language=de or "
                           "https://p.example/portal?token=abc.")
    assert filled.html == '<a href="https://p.example/portal?token=abc&amp;language=fr">x</a>'
    assert not templates.render(parts(), SAMPLE).uses_portal_url


@pytest.mark.parametrize("kind", templates.KINDS)
@pytest.mark.parametrize("language", templates.LANGUAGES)
def test_built_in_templates_pass_their_own_checks_and_read_well(kind, language):
    built_in = default_templates.default(kind, language)
    sample = emails.sample_context(kind, language)
    assert templates.validate(built_in, sample) == []
    rendered = templates.render(built_in, sample)
    assert rendered.uses_portal_url
    filled = rendered.with_portal_url("https://p.example/portal?token=abc")
    assert "https://p.example/portal?token=abc" in filled.text
    assert 'href="https://p.example/portal?token=abc"' in filled.html
    assert "Ann Lee" in filled.text and "Acme GmbH" in filled.text
    assert "{" not in filled.text + filled.subject
    assert filled.html.startswith("<!doctype html>") and f'lang="{language}"' in filled.html
