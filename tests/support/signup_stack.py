"""The signup service and the gateway as real containers on one vhost, for integration tests.

``SignupStack`` reads as merchant and customer steps: ``stack.merchant(settings=…)`` creates a
merchant with a plan variant (and optional components/coupons) over RPC and the REST API,
``stack.page(...)``/``stack.submit(...)`` drive the hosted page like a browser would.
"""
from __future__ import annotations

import datetime as dt
import re
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
from nameko.standalone.rpc import ClusterRpcProxy

from gateway.service import GatewayService
from services.common.clock import Clock, FrozenClock
from services.signup.service import SignupService
from tests.support.cluster import free_port
from tests.support.services import dependency

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


@dataclass
class Shop:
    """One merchant as the tests know it."""

    id: str
    slug: str
    key: str
    public_key: str
    plan_id: str
    variant_id: str
    components: dict = field(default_factory=dict)


@dataclass
class SignupStack:
    base_url: str
    amqp_uri: str
    db_path: Path
    clock: FrozenClock
    signup: object
    gateway: object

    # -- merchant steps ------------------------------------------------------------------------
    def rpc(self):
        return ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=15)

    def api(self, method: str, path: str, shop_or_key, **kwargs) -> requests.Response:
        key = shop_or_key.key if isinstance(shop_or_key, Shop) else shop_or_key
        headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
        return requests.request(method, self.base_url + path, headers=headers, timeout=15,
                                allow_redirects=False, **kwargs)

    def merchant(self, *, settings: dict | None = None, components=(), coupons=(),
                 language: str = "en", country: str = "DE", **variant) -> Shop:
        slug = f"m-{uuid.uuid4().hex[:10]}"
        with self.rpc() as rpc:
            created = rpc.signup.create_merchant(slug, f"Shop {slug}", country, language)
        shop = Shop(created["merchant_id"], slug, created["secret_key"], created["public_key"],
                    "", "")
        shop.plan_id = self.ok(self.api("POST", "/api/v1/plans", shop, json={
            "name": {"en": "Pro", "de": "Profi", "fr": "Pro"},
            "description": {"en": "Everything you need"}}), 201)["id"]
        for spec in components:
            body = {"currency": "EUR", **spec}
            name = body.pop("key")
            shop.components[name] = self.ok(self.api("POST", "/api/v1/components", shop,
                                                     json=body), 201)["id"]
        shop.variant_id = self.ok(self.api("POST", "/api/v1/plan-variants", shop, json={
            "plan_id": shop.plan_id,
            "name": {"en": "Pro monthly", "de": "Profi monatlich", "fr": "Pro mensuel"},
            "currency": "EUR", "recurring_fee": "29.00", "setup_fee": "9.90",
            "component_ids": list(shop.components.values()), **variant}), 201)["id"]
        for coupon in coupons:
            self.ok(self.api("POST", "/api/v1/coupons", shop, json=coupon), 201)
        if settings:
            self.ok(self.api("PUT", "/api/v1/settings/self-service", shop, json=settings))
        return shop

    @staticmethod
    def ok(response: requests.Response, status: int = 200) -> dict:
        assert response.status_code == status, response.text
        return response.json()

    # -- customer steps ------------------------------------------------------------------------
    def page(self, shop: Shop, variant_id: str | None = None, *, ref: str | None = None,
             **params) -> requests.Response:
        path = f"/signup/{ref or shop.slug}/{variant_id or shop.variant_id}"
        return requests.get(self.base_url + path, params=params, timeout=15,
                            allow_redirects=False)

    def submit(self, shop: Shop, fields: dict | None = None, *, language: str | None = None,
               ref: str | None = None, headers: dict | None = None,
               **more) -> requests.Response:
        """Open the page (for its CSRF token), then post ``fields`` (form names)."""
        params = {"language": language} if language else {}
        page = self.page(shop, ref=ref, **params)
        assert page.status_code == 200, page.text
        token = CSRF.search(page.text).group(1)
        data = {"csrf_token": token, **(params or {}), **(fields or {}), **more}
        path = f"/signup/{ref or shop.slug}/{shop.variant_id}"
        return requests.post(self.base_url + path, data=data, timeout=15,
                             allow_redirects=False, headers=headers or {})

    # -- what was stored -------------------------------------------------------------------------
    def count(self, table: str, merchant_id: str) -> int:
        with sqlite3.connect(self.db_path) as db:
            return db.execute(f"SELECT count(*) FROM {table} WHERE merchant_id = ?",  # noqa: S608
                              (merchant_id,)).fetchone()[0]

    def outbox(self, merchant_id: str) -> int:
        with sqlite3.connect(self.db_path) as db:
            return db.execute("SELECT count(*) FROM outbox WHERE merchant_id = ?",
                              (merchant_id,)).fetchone()[0]


CUSTOMER = {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee",
            "country": "DE"}


def start_signup_stack(start_service, container_factory, rabbit_config, tmp_path,
                       **gateway_config) -> SignupStack:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    signup = start_service(SignupService, "signup", PUBLIC_URL=base_url)
    clock = FrozenClock(NOW)
    dependency(signup, Clock).clock = clock
    gateway = container_factory(GatewayService, {
        **rabbit_config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
        "SECRET_KEY": "integration-secret", "PUBLIC_URL": base_url, **gateway_config})
    gateway.start()
    return SignupStack(base_url, rabbit_config["AMQP_URI"], tmp_path / "signup.sqlite3", clock,
                       signup, gateway)
