"""The notifications service's relays on SQLite (the merchant events relay, and the shared one
for events on the internal bus): the process's one connection is free while the broker confirms,
rows are marked only once confirmed, and a nack stops the batch in order."""
import datetime as dt
import json
import threading
import time

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from services.common import events
from services.common.amqp import CONFIRMED, NACKED, RETURNED
from services.common.database import stage_event
from services.common.outbox import OutboxRelay
from services.notifications import merchant_events
from services.notifications.merchant_events import MerchantEventsRelay
from services.notifications.models import Base, MerchantOutbox


class Publisher:
    """Answers each batch with ``answers`` and checks that the connection is free meanwhile."""

    def __init__(self, engine, answers=None):
        self.engine, self.answers, self.batches = engine, answers, []

    def publish_batch(self, messages, **_):
        with self.engine.connect():  # times out when the relay still held the connection
            pass
        self.batches.append(messages)
        return list(self.answers or [CONFIRMED] * len(messages))

    def close(self):
        pass


@pytest.fixture
def engine(tmp_path):
    # like the service's SQLite engine (one connection), but it gives up quickly
    engine = create_engine(f"sqlite:///{tmp_path}/n.sqlite3", pool_size=1, max_overflow=0,
                           pool_timeout=0.2)
    Base.metadata.create_all(engine)
    return engine


def ended(n):
    return events.new_event("ContractEnded", merchant_id="m_1", aggregate_id=f"ct_{n}",
                            payload={"contract_id": f"ct_{n}", "ended_on": dt.date(2027, 1, 31)})


def relay(cls, engine, publisher):
    made = cls(engine, Base.metadata, {"AMQP_URI": "memory://"}, name="notifications")
    made.publisher = publisher  # (the one made by the relay never connected)
    return made


def test_merchant_events_go_out_without_holding_the_connection(engine):
    with Session(engine) as session:
        for n in range(3):
            event = ended(n)
            merchant_events.stage(session, event, json.dumps(event.body()))
        session.commit()
    publisher = Publisher(engine, [CONFIRMED, RETURNED, NACKED])
    assert relay(MerchantEventsRelay, engine, publisher).relay_once() == 2
    [batch] = publisher.batches
    assert [m.routing_key for m in batch] == ["m_1.ContractEnded"] * 3
    with engine.connect() as conn:
        statuses = conn.execute(select(MerchantOutbox.status).order_by(MerchantOutbox.id))
        assert [s for (s,) in statuses] == ["sent", "sent", "pending"]  # no merchant bound:
    # returned is fine; the nacked row waits, in order, for the next round


def test_service_events_are_marked_only_once_confirmed(engine):
    with Session(engine) as session:
        for n in range(3):
            stage_event(session, Base.metadata, ended(n))
        session.commit()
    publisher = Publisher(engine, [CONFIRMED, NACKED, CONFIRMED])
    assert relay(OutboxRelay, engine, publisher).relay_once() == 1
    outbox = Base.metadata.tables["outbox"]
    with engine.connect() as conn:
        statuses = [s for (s,) in conn.execute(select(outbox.c.status).order_by(outbox.c.id))]
    assert statuses == ["sent", "pending", "pending"]  # stopped at the nack: order kept
    publisher.answers = None
    assert relay(OutboxRelay, engine, publisher).relay_once() == 2


def test_the_publisher_check_itself_notices_a_held_connection(engine):
    with engine.connect() as held:
        held.exec_driver_sql("SELECT 1")
        with pytest.raises(PoolTimeout):
            Publisher(engine).publish_batch([])


def test_a_woken_relay_lingers_so_the_commits_right_behind_share_its_round(engine):
    def stage(n):
        with Session(engine) as session:
            stage_event(session, Base.metadata, ended(n))
            session.commit()

    publisher = Publisher(engine)
    made = OutboxRelay(engine, Base.metadata, {"AMQP_URI": "memory://",
                                               "OUTBOX_POLL_SECONDS": 30,
                                               "OUTBOX_LINGER_SECONDS": 0.5},
                       name="notifications", publisher=publisher)
    runner = threading.Thread(target=made.run)
    runner.start()
    try:
        time.sleep(0.1)  # the relay found nothing and waits to be woken
        stage(0)
        made.wake()
        time.sleep(0.05)  # well inside the linger
        stage(1)
        stage(2)
        made.wake()
        deadline = time.monotonic() + 5
        while made.published < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        made.stop()
        runner.join(5)
    assert [len(batch) for batch in publisher.batches] == [3]
