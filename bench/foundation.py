"""Foundation benchmarks (issue 2): the ceiling, the outbox relay against raw kombu, the event
hop latency at 200 events/s, and service memory over 10,000 orders.

    make bench BENCH=foundation      # or: .venv/bin/python -m bench foundation
"""
from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid

import eventlet
import kombu
import requests
from nameko.containers import ServiceContainer
from sqlalchemy import MetaData, create_engine

from services.common import events, topology
from services.common.database import Database, add_messaging_tables, stage_event
from services.common.entrypoints import event_handler
from services.common.outbox import OutboxRelay

from . import harness

RELAY_EVENTS = 20_000


def raw_publish_rates(amqp_uri: str) -> tuple[float, float]:
    """Persistent publishes with plain kombu: unconfirmed, and confirming each one."""
    body = events.new_event("ContractEnded", merchant_id="m", aggregate_id="c", payload={
        "contract_id": "c", "ended_on": dt.date(2027, 1, 1)}).with_sequence(1).body()
    exchange = topology.event_exchange("portal")
    rates = []
    for confirm, n in ((False, RELAY_EVENTS), (True, 2_000)):
        options = {"confirm_publish": True} if confirm else {}
        with kombu.Connection(amqp_uri, transport_options=options) as conn:
            producer = conn.Producer(serializer="json")
            started = time.perf_counter()
            for _ in range(n):
                producer.publish(body, exchange=exchange, routing_key="ContractEnded",
                                 delivery_mode=2)
            rates.append(n / (time.perf_counter() - started))
    return rates[0], rates[1]


def relay_rate(amqp_uri: str, tmp: str) -> float:
    metadata = MetaData()
    add_messaging_tables(metadata)
    engine = create_engine(f"sqlite:///{tmp}/relay.sqlite3")
    metadata.create_all(engine)
    template = events.new_event("ContractEnded", merchant_id="m", aggregate_id="c", payload={
        "contract_id": "c", "ended_on": dt.date(2027, 1, 1)})
    from sqlalchemy.orm import Session
    with Session(engine) as session:
        for i in range(RELAY_EVENTS):
            stage_event(session, metadata, events.Event(
                type=template.type, merchant_id="m", aggregate_id=f"ct_{i % 500}",
                payload=template.payload))
        session.commit()
    relay = OutboxRelay(engine, metadata, {"AMQP_URI": amqp_uri, "OUTBOX_BATCH_SIZE": 500},
                        name="bench")
    started = time.perf_counter()
    sent = 0
    while sent < RELAY_EVENTS:
        sent += relay.relay_once()
    elapsed = time.perf_counter() - started
    relay.publisher.close()
    engine.dispose()
    return RELAY_EVENTS / elapsed


def bind_sink(amqp_uri: str) -> None:
    """A queue that takes every portal event, so publishes are routed (and then purged)."""
    with kombu.Connection(amqp_uri) as conn:
        queue = kombu.Queue("bench-sink", exchange=topology.event_exchange("portal"),
                            routing_key="#", durable=False, auto_delete=False,
                            max_length=1000)
        queue(conn.channel()).declare()


hop_started: dict[str, float] = {}
hop_seen: dict[str, float] = {}


def event_hop(amqp_uri: str, tmp: str, rate: float = 200, seconds: float = 15):
    """Outbox row committed → consumer handler started, at a steady ``rate``."""
    producer_meta = MetaData()
    add_messaging_tables(producer_meta)
    consumer_meta = MetaData()
    add_messaging_tables(consumer_meta)

    class HopConsumer:
        name = "hop"
        db = Database(consumer_meta)

        @event_handler("ContractEnded", inbox=False)
        def handle_contract_ended(self, event):
            hop_seen[event.event_id] = time.perf_counter()

    for meta, name in ((producer_meta, "hop-producer"), (consumer_meta, "hop")):
        engine = create_engine(f"sqlite:///{tmp}/{name}.sqlite3")
        meta.create_all(engine)
        engine.dispose()

    class HopProducer:
        name = "hop-producer"
        db = Database(producer_meta)

    consumer = ServiceContainer(HopConsumer, {"AMQP_URI": amqp_uri,
                                              "DB_URL": f"sqlite:///{tmp}/hop.sqlite3",
                                              "OUTBOX_RELAY": "false"})
    producer = ServiceContainer(HopProducer, {"AMQP_URI": amqp_uri,
                                              "DB_URL": f"sqlite:///{tmp}/hop-producer.sqlite3"})
    consumer.start()
    producer.start()
    database = next(d for d in producer.dependencies if isinstance(d, Database))

    def commit_one():
        event = events.new_event("ContractEnded", merchant_id="m",
                                 aggregate_id=f"ct_{uuid.uuid4().hex[:8]}",
                                 payload={"contract_id": "c", "ended_on": dt.date(2027, 1, 1)})
        with database.sessionmaker() as session:
            stage_event(session, producer_meta, event)
            session.commit()
        hop_started[event.event_id] = time.perf_counter()
        database.events_committed()
        return True

    harness.paced(commit_one, rate=rate, duration=seconds, concurrency=50)
    deadline = time.monotonic() + 10
    while len(hop_seen) < len(hop_started) and time.monotonic() < deadline:
        eventlet.sleep(0.05)
    producer.stop()
    consumer.stop()
    latencies = [(hop_seen[e] - hop_started[e]) * 1000 for e in hop_started if e in hop_seen]
    return latencies, len(hop_started)


def orders_lua(variant_id: str, key: str) -> str:
    """wrk script: POST /api/v1/orders with a distinct customer each time."""
    return f"""
local counter = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local body = '{{"plan_variant_id": "{variant_id}", "customer": {{"email": "c' .. counter ..
    '@example.com", "first_name": "Ann", "last_name": "Lee", "country": "DE"}}}}'
  return wrk.format(nil, "/api/v1/orders", nil, body)
end
"""


def place_orders(base_url: str, merchant: dict, count: int, concurrency: int = 8) -> int:
    """Place exactly ``count`` orders through the REST API; return how many succeeded."""
    session = requests.Session()
    url = base_url + "/api/v1/orders"
    headers = {"Authorization": f"Bearer {merchant['secret_key']}"}
    ok = 0

    def one(i):
        nonlocal ok
        reply = session.post(url, headers=headers, timeout=30, json={
            "plan_variant_id": merchant["plan_variant_id"],
            "customer": {"email": f"m{i}@example.com", "first_name": "Ann", "last_name": "Lee",
                         "country": "DE"}})
        ok += reply.status_code == 201

    pool = eventlet.GreenPool(concurrency)
    for i in range(count):
        pool.spawn_n(one, i)
    pool.waitall()
    return ok


def memory_over_orders(cluster, merchant, checkpoints=(1_000, 10_000)):
    """RSS of every process after 1,000 and 10,000 orders (each order is three events:
    OrderSubmitted, CustomerCreated, ContractCreated, plus a welcome e-mail)."""
    readings = {}
    placed = 0
    for target in checkpoints:
        placed += place_orders(cluster.base_url, merchant, target - placed)
        time.sleep(3)  # let the consumers drain before reading memory
        readings[target] = {name: harness.rss_mb(p.pid) for name, p in cluster.processes.items()}
    return readings, placed


@contextlib.contextmanager
def scratch_vhost(cluster):
    vhost = f"{cluster.vhost}_broker"
    cluster.rabbit_manager.create_vhost(vhost)
    cluster.rabbit_manager.set_vhost_permissions(vhost, "guest", ".*", ".*", ".*")
    try:
        yield cluster.amqp_uri.rsplit("/", 1)[0] + "/" + vhost
    finally:
        cluster.rabbit_manager.delete_vhost(vhost)


def run(cluster, tmp: str) -> None:
    print("\n== foundation ==", flush=True)
    ceiling = harness.ceiling(cluster.base_url)
    harness.report("ceiling: HTTP + one no-op RPC", ceiling.rps, "req/s")
    hello = harness.wrk(cluster.base_url + "/healthz", duration=5)
    harness.report("HTTP only (/healthz)", hello.rps, "req/s")

    # broker-level measurements on a vhost of their own: the cluster's services consume
    # portal events and would otherwise process (and be slowed by) every message published here
    with scratch_vhost(cluster) as amqp_uri:
        topology.declare_all(amqp_uri)
        bind_sink(amqp_uri)
        unconfirmed, confirmed = raw_publish_rates(amqp_uri)
        harness.report("raw kombu publish, unconfirmed", unconfirmed, "msg/s")
        harness.report("raw kombu publish, confirm each", confirmed, "msg/s")
        relay = relay_rate(amqp_uri, tmp)
        harness.report("outbox relay (batched confirms)", relay, "msg/s", unconfirmed,
                       target=">= 0.50 of raw unconfirmed")
        latencies, sent = event_hop(amqp_uri, tmp)
    harness.report("event hop p50 at 200 ev/s", harness.percentile(latencies, 50), "ms",
                   target="<= 20 ms")
    harness.report("event hop p99 at 200 ev/s", harness.percentile(latencies, 99), "ms",
                   target="<= 100 ms")
    print(f"  ({len(latencies)} of {sent} events timed)", flush=True)

    merchant = cluster.make_merchant()
    orders = harness.wrk(cluster.base_url + "/api/v1/orders", duration=8, connections=8,
                         lua=orders_lua(merchant["plan_variant_id"], merchant["secret_key"]))
    harness.report("API order POST (wrk, closed loop)", orders.rps, "req/s", ceiling.rps)
    readings, placed = memory_over_orders(cluster, merchant)
    (first_n, first), (last_n, last) = sorted(readings.items())
    print(f"  {placed} of {last_n} orders placed", flush=True)
    for name in first:
        growth = (last[name] - first[name]) / first[name] * 100
        print(f"  RSS {name:<14} {first[name]:6.1f} MB after {first_n} orders, "
              f"{last[name]:6.1f} MB after {last_n} (growth {growth:+.1f}%; "
              f"target <= 120 MB, <= 10%)", flush=True)
