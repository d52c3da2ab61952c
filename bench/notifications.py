"""Notifications benchmarks (issue 6): event → signed webhook received, at 100 events/s, and
welcome e-mails rendered and handed to SMTP per second.

Targets: webhook p50 <= 50 ms, p99 <= 250 ms at 100 ev/s; e-mails >= 200/s. The bench cluster
sends mail over SMTP to a sink process (``bench/__main__.py`` starts it); events are published
straight to the exchanges their source services use, as those services would.
"""
from __future__ import annotations

import datetime as dt
import http.server
import json
import sqlite3
import threading
import time
import uuid

import kombu
import requests

from services.common import events, topology
from tests.support.cluster import wait_until

from . import harness

received: dict[str, float] = {}


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        received[self.headers.get("webhook-id", "")] = time.perf_counter()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def contract_ended(merchant_id: str) -> events.Event:
    contract_id = f"ct_{uuid.uuid4().hex}"
    return events.new_event("ContractEnded", merchant_id=merchant_id, aggregate_id=contract_id,
                            payload={"contract_id": contract_id,
                                     "ended_on": dt.date(2027, 1, 31)}).with_sequence(1)


def contract_created(merchant_id: str, n: int) -> events.Event:
    contract_id = f"ct_{uuid.uuid4().hex}"
    terms = {"setup_fee": "0.00", "recurring_fee": "10.00", "billing_period_months": 1,
             "trial_days": 0, "notice_period": {"value": 1, "unit": "month"},
             "minimum_term": None}
    payload = {
        "contract_id": contract_id, "customer_id": f"cus_{n}", "order_id": f"ord_{n}",
        "plan_variant_id": "pv_bench", "plan_name": "Pro", "currency": "EUR",
        "start_date": dt.date(2027, 1, 1), "trial_end": None,
        "billing_start": dt.date(2027, 1, 1), "terms": terms, "components": [],
        "coupon": None, "tax": {"rate": "19", "category": "S", "reverse_charge": False,
                                "country": "DE"},
        "customer": {"email": f"mail{n}@example.com", "first_name": "Ann", "last_name": "Lee",
                     "country": "DE"},
        "external_id": None, "language": "en"}
    schema = events.CATALOGUE["ContractCreated"].schema()
    return events.new_event("ContractCreated", merchant_id=merchant_id,
                            aggregate_id=contract_id,
                            payload=schema.load(payload)).with_sequence(1)


def mails_sent(cluster) -> int:
    with sqlite3.connect(cluster.var / "notifications.sqlite3") as db:
        return db.execute("SELECT count(*) FROM mail_log WHERE status = 'sent'").fetchone()[0]


def run(cluster, tmp: str) -> None:
    print("\n== notifications ==", flush=True)
    merchant = cluster.make_merchant()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = requests.post(
        cluster.base_url + "/api/v1/webhook-endpoints", timeout=10,
        headers={"Authorization": f"Bearer {merchant['secret_key']}"},
        json={"url": f"http://127.0.0.1:{server.server_port}/hook",
              "event_types": ["ContractEnded"]})
    endpoint.raise_for_status()

    published: dict[str, float] = {}
    connection = kombu.Connection(cluster.amqp_uri)
    producer = connection.Producer()

    def publish(event: events.Event) -> bool:
        producer.publish(json.dumps(event.body()), exchange=topology.event_exchange(
            event.kind.source), routing_key=event.type, content_type="application/json",
            delivery_mode=2, retry=True)
        published.setdefault(event.event_id, time.perf_counter())
        return True

    harness.paced(lambda: publish(contract_ended(merchant["merchant_id"])), rate=100,
                  duration=10, concurrency=1)
    wait_until(lambda: len(received) >= len(published), 60, what="every webhook")
    latencies = [(received[e] - published[e]) * 1000 for e in published if e in received]
    harness.report("event → webhook p50 at 100 ev/s", harness.percentile(latencies, 50), "ms",
                   target="<= 50 ms")
    harness.report("event → webhook p99 at 100 ev/s", harness.percentile(latencies, 99), "ms",
                   target="<= 250 ms")
    server.shutdown()

    before = mails_sent(cluster)
    count = 1_000
    started = time.perf_counter()
    for n in range(count):
        publish(contract_created(merchant["merchant_id"], n))
    wait_until(lambda: mails_sent(cluster) - before >= count, 300, 0.2, what="every e-mail")
    elapsed = time.perf_counter() - started
    ceiling = harness.ceiling(cluster.base_url)
    harness.report("welcome e-mails handed to SMTP", count / elapsed, "mail/s", ceiling.rps,
                   target=">= 200 mail/s", ceiling_unit="req/s")
    connection.release()
