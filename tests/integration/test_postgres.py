"""PostgreSQL where it matters: psycopg must wait on the eventlet hub (not freeze it), and the
outbox's per-aggregate sequence must stay gap-free under concurrent transactions."""
from __future__ import annotations

import datetime as dt

import eventlet
import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.orm import sessionmaker

from services.common import events
from services.common.database import (
    Database,
    UnitOfWork,
    add_messaging_tables,
    make_engine,
    stage_event,
)
from services.common.migrate import upgrade
from tests.support.postgres import scratch_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(pg_admin_url):
    with scratch_database(pg_admin_url) as url:
        yield url


def test_a_slow_query_does_not_freeze_other_green_threads(pg_url):
    engine = make_engine(pg_url)
    ticks = []

    def ticker():
        for _ in range(100):
            ticks.append(1)
            eventlet.sleep(0.01)

    thread = eventlet.spawn(ticker)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_sleep(0.6)")
    ticks_during_query = len(ticks)
    thread.kill()
    engine.dispose()
    # ~60 ticks fit into 0.6 s; a blocking driver would allow none until the query returned
    assert ticks_during_query >= 30


def test_concurrent_transactions_get_gap_free_sequences_per_aggregate(pg_url):
    metadata = MetaData()
    add_messaging_tables(metadata)
    engine = make_engine(pg_url, pool_size=10)
    metadata.create_all(engine)
    from sqlalchemy.orm import sessionmaker
    make_session = sessionmaker(engine)

    def add(i):
        with make_session() as session:
            event = events.new_event("ContractEnded", merchant_id="m", aggregate_id="ct_hot",
                                     payload={"contract_id": "ct_hot",
                                              "ended_on": dt.date(2027, 1, 1)})
            staged = stage_event(session, metadata, event)
            eventlet.sleep(0.005 * (i % 3))  # hold the row lock a little, interleave
            session.commit()
            return staged.sequence

    pool = eventlet.GreenPool(10)
    sequences = list(pool.imap(add, range(40)))
    outbox = metadata.tables["outbox"]
    with engine.connect() as conn:
        stored = conn.execute(select(outbox.c.sequence).order_by(outbox.c.id)).scalars().all()
    engine.dispose()
    assert sorted(sequences) == list(range(1, 41))
    assert stored == list(range(1, 41))  # id order (relay order) == sequence order


def test_two_deliveries_of_one_event_racing_are_claimed_once(pg_url):
    """Both transactions insert the inbox row; the second waits for the first and then
    finds the row: one handles the event, the other skips it, neither fails."""
    metadata = MetaData()
    add_messaging_tables(metadata)
    engine = make_engine(pg_url, pool_size=4)
    metadata.create_all(engine)
    provider = Database(metadata)
    provider.engine, provider.sessionmaker = engine, sessionmaker(engine)

    def deliver(hold):
        unit = UnitOfWork(provider)
        try:
            claimed = unit.claim("portal.handle_x", "0b8f0a1e-0000-4000-8000-000000000001")
            eventlet.sleep(hold)  # the first keeps its transaction open a moment
            unit.commit()
            return claimed
        finally:
            unit.close()

    first = eventlet.spawn(deliver, 0.3)
    eventlet.sleep(0.05)
    second = eventlet.spawn(deliver, 0)
    outcomes = [first.wait(), second.wait()]
    with engine.connect() as conn:
        rows = conn.execute(select(metadata.tables["inbox"])).all()
    engine.dispose()
    assert outcomes == [True, False]
    assert len(rows) == 1


@pytest.mark.parametrize("service", ["signup", "portal", "tokens", "notifications", "documents"])
def test_every_service_migrates_on_postgres(pg_url, service):
    upgrade(service, pg_url)
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    engine.dispose()
    assert version
