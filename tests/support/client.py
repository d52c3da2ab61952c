"""An HTTP client that speaks Portico, so e2e tests read as user steps."""
from __future__ import annotations

import re

import requests

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class PorticoClient:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.base_url + path, allow_redirects=False, timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.http.post(self.base_url + path, allow_redirects=False, timeout=30, **kwargs)

    # -- customer steps --------------------------------------------------------------------------
    def open_signup(self, slug: str, variant_id: str, **params) -> requests.Response:
        return self.get(f"/signup/{slug}/{variant_id}", params=params)

    def sign_up(self, slug: str, variant_id: str, *, language: str | None = None,
                **fields) -> requests.Response:
        """Open the signup page, then submit it with ``fields`` (form names) and its token."""
        params = {"language": language} if language else {}
        page = self.open_signup(slug, variant_id, **params)
        page.raise_for_status()
        token = _CSRF.search(page.text).group(1)
        data = {"csrf_token": token, **({"language": language} if language else {}), **fields}
        return self.post(f"/signup/{slug}/{variant_id}", data=data)

    # -- merchant steps --------------------------------------------------------------------------
    def api(self, method: str, path: str, key: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
        return self.http.request(method, self.base_url + path, headers=headers, timeout=30,
                                 allow_redirects=False, **kwargs)
