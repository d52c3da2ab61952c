"""The gateway side of notifications: the dev mail page's linkifier and error clean-up."""
from gateway.routes.notifications_api import _linked, _numbers_in_params
from services.common.errors import InvalidInput


def test_links_become_clickable_and_everything_else_is_escaped():
    text = 'Open http://127.0.0.1:8000/portal?token=a&b=1 <script>x</script> "now"'
    html = str(_linked(text))
    assert '<a href="http://127.0.0.1:8000/portal?token=a&amp;b=1" rel="noreferrer">' in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
    assert str(_linked('javascript:alert(1) "quoted"')) == \
        "javascript:alert(1) &#34;quoted&#34;"


def test_template_lines_are_numbers_again():
    exc = InvalidInput("x", {"text": [{"code": "template_error", "message": "line 3: …",
                                       "params": {"line": "3"}}],
                             "subject": [{"code": "template_error", "message": "…",
                                          "params": {"line": "None"}}]})
    fixed = _numbers_in_params(exc).fields
    assert fixed["text"][0]["params"]["line"] == 3
    assert fixed["subject"][0]["params"]["line"] is None
