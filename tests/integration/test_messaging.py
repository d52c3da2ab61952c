"""Outbox → broker → inbox: no event lost, none processed twice, failures parked with their
error — including across a broker outage (a TCP proxy in front of RabbitMQ is cut and
restored, so every other test keeps its broker)."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import kombu
import pytest
from nameko.testing.services import entrypoint_hook
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, select

from services.common import events, topology
from services.common.database import Database, add_messaging_tables
from services.common.entrypoints import ATTEMPTS_HEADER, ERROR_HEADER, event_handler, rpc
from tests.support.cluster import wait_until
from tests.support.tcp_proxy import TcpProxy

producer_metadata = MetaData()
add_messaging_tables(producer_metadata)

consumer_metadata = MetaData()
add_messaging_tables(consumer_metadata)
effects = Table(
    "effects", consumer_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("aggregate_id", String(64), nullable=False),
    Column("sequence", Integer, nullable=False),
)


def ended(contract_id: str) -> events.Event:
    return events.new_event("ContractEnded", merchant_id="m_test", aggregate_id=contract_id,
                            payload={"contract_id": contract_id,
                                     "ended_on": dt.date(2027, 1, 31)})


class Producer:
    name = "producer"
    db = Database(producer_metadata)

    @rpc
    def emit(self, aggregates: list[str]) -> list[str]:
        return [self.db.add_event(ended(a)).event_id for a in aggregates]


class Consumer:
    name = "consumer"
    db = Database(consumer_metadata)

    @event_handler("ContractEnded", max_attempts=3)
    def handle_contract_ended(self, event):
        if event.payload["contract_id"] == "poison":
            raise RuntimeError("this contract cannot end")
        self.db.session.execute(effects.insert().values(
            event_id=event.event_id, aggregate_id=event.aggregate_id, sequence=event.sequence))


def database(tmp_path, name: str, metadata: MetaData) -> str:
    url = f"sqlite:///{tmp_path}/{name}.sqlite3"
    engine = create_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    return url


def count(url: str, table) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(table)).scalar_one()
    engine.dispose()
    return n


def rows(url: str, query):
    engine = create_engine(url)
    with engine.connect() as conn:
        result = conn.execute(query).all()
    engine.dispose()
    return result


@pytest.fixture
def consumer(rabbit_config, container_factory, tmp_path):
    url = database(tmp_path, "consumer", consumer_metadata)
    container = container_factory(Consumer, {**rabbit_config, "DB_URL": url, "max_workers": 1})
    container.start()
    container.db_url = url
    return container


@pytest.fixture
def proxy():
    proxy = TcpProxy().start()
    yield proxy
    proxy.cut()


def test_events_survive_a_broker_outage_and_arrive_once_in_order(
        rabbit_config, container_factory, tmp_path, proxy):
    # both services reach the broker through the proxy: both lose it and must reconnect
    consumer_url = database(tmp_path, "consumer", consumer_metadata)
    consumer = container_factory(Consumer, {
        **rabbit_config, "AMQP_URI": proxy.uri(rabbit_config["AMQP_URI"]),
        "DB_URL": consumer_url, "max_workers": 1})
    consumer.start()
    consumer.db_url = consumer_url
    url = database(tmp_path, "producer", producer_metadata)
    producer = container_factory(Producer, {
        **rabbit_config, "AMQP_URI": proxy.uri(rabbit_config["AMQP_URI"]), "DB_URL": url,
        "OUTBOX_POLL_SECONDS": 0.2})
    producer.start()
    outbox = producer_metadata.tables["outbox"]
    aggregates = [f"ct_{i % 7}" for i in range(60)]

    with entrypoint_hook(producer, "emit") as emit:
        first = emit(aggregates)
    wait_until(lambda: count(consumer.db_url, effects) == 60, 20, what="first 60 events")

    proxy.cut()
    with entrypoint_hook(producer, "emit") as emit:
        second = emit(aggregates)
    pending = rows(url, select(func.count()).select_from(outbox)
                   .where(outbox.c.status == "pending"))[0][0]
    assert pending == 60  # nothing can leave while the broker is away, nothing is dropped

    proxy.restore()
    wait_until(lambda: count(consumer.db_url, effects) == 120, 30, what="events after outage")

    seen = rows(consumer.db_url, select(effects.c.event_id, effects.c.aggregate_id,
                                        effects.c.sequence).order_by(effects.c.id))
    assert sorted(e for e, _, _ in seen) == sorted(first + second)  # each exactly once
    by_aggregate: dict[str, list[int]] = {}
    for _, aggregate, sequence in seen:
        by_aggregate.setdefault(aggregate, []).append(sequence)
    for sequences in by_aggregate.values():
        assert sequences == sorted(sequences) == list(range(1, len(sequences) + 1))
    assert rows(url, select(func.count()).select_from(outbox)
                .where(outbox.c.status != "sent"))[0][0] == 0


def publish_raw(amqp_uri: str, body: bytes, *, content_type="application/json", headers=None):
    with kombu.Connection(amqp_uri) as conn:
        producer = conn.Producer()
        producer.publish(body, exchange=topology.event_exchange("portal"),
                         routing_key="ContractEnded", content_type=content_type,
                         content_encoding="utf-8", headers=headers or {}, retry=True)


def dead_letters(amqp_uri: str) -> list:
    found = []
    with kombu.Connection(amqp_uri) as conn:
        queue = topology.dead_letter_queue()(conn.channel())
        while (message := queue.get(no_ack=True)) is not None:
            found.append(message)
    return found


def test_redelivered_event_is_processed_once(rabbit_config, consumer):
    event = ended("ct_once").with_sequence(1)
    body = json.dumps(event.body()).encode()

    publish_raw(rabbit_config["AMQP_URI"], body)
    publish_raw(rabbit_config["AMQP_URI"], body)  # the same event again (a redelivery)
    sentinel = ended("ct_sentinel").with_sequence(1)
    publish_raw(rabbit_config["AMQP_URI"], json.dumps(sentinel.body()).encode())

    wait_until(lambda: rows(consumer.db_url, select(effects.c.event_id)
                            .where(effects.c.event_id == sentinel.event_id)), 15,
               what="the sentinel event")
    handled = rows(consumer.db_url, select(effects.c.event_id))
    assert [e for (e,) in handled].count(event.event_id) == 1


def test_failing_and_malformed_messages_are_dead_lettered_not_dropped(rabbit_config, consumer):
    amqp_uri = rabbit_config["AMQP_URI"]
    publish_raw(amqp_uri, b"this is not json", content_type="application/json")
    publish_raw(amqp_uri, b"<xml/>", content_type="application/xml")
    publish_raw(amqp_uri, json.dumps({"type": "ContractEnded", "payload": {}}).encode())
    poison = ended("poison").with_sequence(1)
    publish_raw(amqp_uri, json.dumps(poison.body()).encode())
    good = ended("ct_good").with_sequence(1)
    publish_raw(amqp_uri, json.dumps(good.body()).encode())

    wait_until(lambda: count(consumer.db_url, effects) == 1, 15, what="the good event")
    parked: list = []
    wait_until(lambda: parked.extend(dead_letters(amqp_uri)) or len(parked) >= 4, 20,
               what="four dead letters")

    errors = [m.headers[ERROR_HEADER] for m in parked]
    assert len(parked) == 4
    assert any("undecodable" in e for e in errors)  # not JSON
    assert sum("undecodable" in e or "malformed" in e for e in errors) == 3
    failed = [m for m in parked if "this contract cannot end" in m.headers[ERROR_HEADER]]
    assert len(failed) == 1 and failed[0].headers[ATTEMPTS_HEADER] == 3
    assert json.loads(failed[0].body)["event_id"] == poison.event_id  # the original, intact
    queue = topology.consumer_queue_name("ContractEnded", "consumer", "handle_contract_ended")
    assert {m.headers["x-portico-queue"] for m in failed} == {queue}


class BatchConsumer:
    """The same effect, handled in batches; ``worker`` tells which worker handled each event."""

    name = "batch_consumer"
    db = Database(consumer_metadata)

    @event_handler("ContractEnded", max_attempts=3, batch=True)
    def handle_contract_ended(self, event):
        if event.payload["contract_id"] == "poison":
            raise RuntimeError("this contract cannot end")
        worker = self.db.__dict__.setdefault("worker", uuid.uuid4().hex[:8])
        self.db.session.execute(effects.insert().values(
            event_id=event.event_id, aggregate_id=f"worker_{worker}", sequence=event.sequence))


def test_batched_events_share_a_worker_and_a_poison_one_fails_alone(
        rabbit_config, container_factory, tmp_path):
    amqp_uri = rabbit_config["AMQP_URI"]
    with kombu.Connection(amqp_uri) as conn:  # the queue exists before its consumer starts
        topology.consumer_queue("ContractEnded", "batch_consumer",
                                "handle_contract_ended")(conn.channel()).declare()
    burst = [ended(f"ct_{i}").with_sequence(1) for i in range(20)]
    for event in [*burst, burst[3]]:  # and one redelivered
        publish_raw(amqp_uri, json.dumps(event.body()).encode())
    url = database(tmp_path, "batch_consumer", consumer_metadata)
    container = container_factory(BatchConsumer, {**rabbit_config, "DB_URL": url})
    container.start()

    wait_until(lambda: count(url, effects) == 20, 15, what="the burst")
    handled = rows(url, select(effects.c.event_id, effects.c.aggregate_id))
    assert sorted(e for e, _ in handled) == sorted(e.event_id for e in burst)  # each once
    assert len({worker for _, worker in handled}) < 20  # several events per worker

    later = [ended(f"ct_later_{i}").with_sequence(1) for i in range(5)]
    poison = ended("poison").with_sequence(1)
    for event in [later[0], later[1], poison, later[2], later[3], later[4]]:
        publish_raw(amqp_uri, json.dumps(event.body()).encode())
    wait_until(lambda: count(url, effects) == 25, 15, what="the good events around the poison")
    parked: list = []
    wait_until(lambda: parked.extend(dead_letters(amqp_uri)) or parked, 20,
               what="the poison event parked")
    assert [json.loads(m.body)["event_id"] for m in parked] == [poison.event_id]
    assert parked[0].headers[ATTEMPTS_HEADER] == 3
    assert sorted(e for (e,) in rows(url, select(effects.c.event_id))) == \
        sorted(e.event_id for e in burst + later)
