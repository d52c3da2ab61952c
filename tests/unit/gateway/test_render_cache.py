"""``web.RenderCache``: a kept page is rendered once, and every response still gets its own
CSP nonce and form token, escaped; pages with a visitor's own data are never kept."""
import re

from gateway import web

NONCE = re.compile(r"script-src 'nonce-([^']+)'")


def render(cache, key, token, title="Gold", calls=None):
    def context():
        if calls is not None:
            calls.append(title)
        return {"language": "en", "t": lambda text, **_: text, "styling": {},
                "title": title, "message": "hello", "kind": "notice"}
    return cache.html(key, "portal/notice.html", context, fresh={"csrf_token": token})


def test_a_kept_page_is_rendered_once_with_a_new_nonce_each_time():
    cache, calls = web.RenderCache(), []
    first = render(cache, "k1", "t1", calls=calls)
    second = render(cache, "k1", "t2", calls=calls)

    assert calls == ["Gold"]  # the second response reused the rendered page
    nonces = [NONCE.search(r.headers["Content-Security-Policy"]).group(1)
              for r in (first, second)]
    assert nonces[0] != nonces[1]
    for response, nonce in zip((first, second), nonces, strict=True):
        body = response.get_data(as_text=True)
        assert f'nonce="{nonce}"' in body  # the page's own style tag carries this response's
        assert "Gold" in body
        assert cache._mark("nonce") not in body


def test_fresh_values_are_filled_in_escaped(monkeypatch):
    cache = web.RenderCache()
    # a template that shows the form token: the error page does not, so use a tiny one
    monkeypatch.setattr(web.jinja, "get_template", lambda name: web.jinja.from_string(
        '<p>{{ csrf_token }}</p><style nonce="{{ nonce }}"></style>'))
    body = cache.html("k", "x", dict, fresh={"csrf_token": '1.a"b<c'}).get_data(as_text=True)
    assert '<p>1.a&#34;b&lt;c</p>' in body
    body = cache.html("k", "x", dict, fresh={"csrf_token": "2.zz"}).get_data(as_text=True)
    assert "<p>2.zz</p>" in body


def test_pages_without_a_key_are_not_kept_and_the_cache_is_bounded():
    cache, calls = web.RenderCache(max_entries=2), []
    render(cache, None, "t", calls=calls)
    render(cache, None, "t", calls=calls)
    assert calls == ["Gold", "Gold"] and not cache._pages
    for key in ("a", "b", "c"):
        render(cache, key, "t")
    assert list(cache._pages) == ["b", "c"]


def test_keys_ignore_dict_order():
    assert web.RenderCache.key({"a": 1, "b": [1, 2]}, 3) == \
        web.RenderCache.key({"b": [1, 2], "a": 1}, 3)
    assert web.RenderCache.key({"a": 1}) != web.RenderCache.key({"a": 2})
