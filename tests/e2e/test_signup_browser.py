"""The hosted signup page in a real browser (Debian's chromium through Playwright, in its own
process: see ``tests/support/signup_browser.py``) and an order over the REST API, both against
the whole system: the contract ends up in the portal service.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.support.cluster import ROOT, wait_until

pytestmark = pytest.mark.browser


def contract_in_portal(client, key: str, contract_id: str):
    reply = client.api("GET", f"/api/v1/contracts/{contract_id}", key)
    return reply.json() if reply.status_code == 200 else None


def test_live_preview_and_a_localized_error_in_a_real_browser(cluster, client, merchant):
    key, slug, variant = merchant["secret_key"], merchant["slug"], merchant["plan_variant_id"]
    seats = client.api("POST", "/api/v1/components", key, json={
        "name": {"en": "Seats", "de": "Plätze"}, "kind": "quantity", "currency": "EUR",
        "unit_price": "5.00", "max_quantity": 20}).json()
    assert client.api("PATCH", f"/api/v1/plan-variants/{variant}", key,
                      json={"component_ids": [seats["id"]]}).status_code == 200
    assert client.api("PUT", "/api/v1/settings/self-service", key, json={
        "urls": {"tac": "https://shop.example.com/agb"},
        "terms": [{"text": {"de": "Ich akzeptiere die {tac}."}, "confirmation": True}],
    }).status_code == 200
    run = subprocess.run(
        [sys.executable, "-m", "tests.support.signup_browser", cluster.base_url, slug, variant,
         seats["id"]], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout)
    contract_id = seen["contract_id"]
    assert re.search(r"/done\?.*contractId=" + contract_id, seen["url"])

    contract = wait_until(lambda: contract_in_portal(client, key, contract_id), timeout=15,
                          what="the contract in the portal service")
    assert contract["customer"]["email"] == "anne@example.com"
    assert contract["customer"]["country"] == "FR"


def test_an_api_order_is_placed_once_per_idempotency_key(cluster, client, merchant):
    key = merchant["secret_key"]
    body = {"plan_variant_id": merchant["plan_variant_id"], "external_id": "CRM-7",
            "customer": {"email": "bo@example.com", "first_name": "Bo", "last_name": "Ek",
                         "country": "SE", "vat_id": "SE556036079301"}}
    headers = {"Idempotency-Key": "e2e-order-1"}
    first = client.api("POST", "/api/v1/orders", key, json=body, headers=headers)
    again = client.api("POST", "/api/v1/orders", key, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    price = first.json()["price"]
    assert price["tax"]["reverse_charge"] is True and price["gross_total"] == "38.90"

    contract_id = first.json()["contract_id"]
    contract = wait_until(lambda: contract_in_portal(client, key, contract_id), timeout=15,
                          what="the contract in the portal service")
    assert contract["customer"]["email"] == "bo@example.com"
