"""Each service's own database: engine, messaging tables (outbox, inbox), and the nameko provider.

A worker gets a ``UnitOfWork``: a lazily opened SQLAlchemy session plus ``add_event`` (outbox)
and ``claim`` (inbox), all in one transaction. The entrypoints in ``entrypoints.py`` commit it
*before* the RPC reply is sent or the message is acked, so a reply never announces a write that
then fails; worker teardown rolls back whatever was not committed.

SQLite (the default, one file per service under ``var/``) gets a pool of one connection per
process: green threads then wait for it cooperatively instead of blocking the whole hub inside
SQLite's C busy-wait. Keep transactions short and never make an RPC call while holding one.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import weakref

import eventlet
from nameko.extensions import DependencyProvider
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from . import events as ev
from .clock import SystemClock
from .telemetry import current_correlation_id

log = logging.getLogger(__name__)
UTC = dt.UTC


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on the way in and out on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetimes are not stored; give them a time zone")
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)  # stored as UTC text, zone restored below
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def add_messaging_tables(metadata: MetaData) -> None:
    """Give a service's metadata the outbox, its sequence counters and the inbox."""
    from sqlalchemy import Table

    Table(
        "outbox", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("type", String(64), nullable=False),
        Column("exchange", String(128), nullable=False),
        Column("merchant_id", String(64), nullable=False),
        Column("aggregate_id", String(64), nullable=False),
        Column("sequence", Integer, nullable=False),
        Column("body", Text, nullable=False),
        Column("headers", Text, nullable=False, default="{}"),
        Column("status", String(16), nullable=False, default="pending"),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text),
        Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
        Column("sent_at", UTCDateTime()),
        Index("ix_outbox_status_id", "status", "id"),
    )
    Table(
        "outbox_sequences", metadata,
        Column("aggregate_id", String(64), primary_key=True),
        Column("last_sequence", Integer, nullable=False),
    )
    Table(
        "inbox", metadata,
        Column("consumer", String(200), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("processed_at", UTCDateTime(), nullable=False, default=utcnow),
    )


def make_engine(url: str, *, pool_size: int = 12) -> Engine:
    """An engine tuned for green threads; ``sqlite:///var/x.sqlite3`` or ``postgresql+psycopg://``."""
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            engine = create_engine(url, poolclass=StaticPool,
                                   connect_args={"check_same_thread": False})
        else:
            engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=60,
                                   connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_size=pool_size, max_overflow=4, pool_pre_ping=True,
                         pool_timeout=30)


@functools.cache
def _bump_sequence(table: Table, dialect: str):
    """The upsert behind ``next_sequence``, built once per table and dialect (building a
    statement costs more than running it, and every event staged runs it)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).values(aggregate_id=bindparam("aggregate_id"), last_sequence=1) \
        .on_conflict_do_update(index_elements=[table.c.aggregate_id],
                               set_={"last_sequence": table.c.last_sequence + 1}) \
        .returning(table.c.last_sequence)


@functools.cache
def _insert_outbox(table: Table):
    return table.insert()


@functools.cache
def _claim_inbox(table: Table, dialect: str):
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(
        index_elements=[table.c.consumer, table.c.event_id]).returning(table.c.event_id)


def next_sequence(session: Session, metadata: MetaData, aggregate_id: str) -> int:
    """Atomically bump the per-aggregate counter (row-locked on PostgreSQL)."""
    stmt = _bump_sequence(metadata.tables["outbox_sequences"],
                          session.get_bind().dialect.name)
    return session.execute(stmt, {"aggregate_id": aggregate_id}).scalar_one()


def stage_event(session: Session, metadata: MetaData, event: ev.Event) -> ev.Event:
    """Write ``event`` to the outbox in the caller's transaction; return it with its sequence."""
    sequenced = event.with_sequence(next_sequence(session, metadata, event.aggregate_id))
    headers = {}
    correlation_id = current_correlation_id()
    if correlation_id:
        headers["nameko.correlation_id"] = correlation_id
    session.execute(_insert_outbox(metadata.tables["outbox"]), {
        "event_id": sequenced.event_id, "type": sequenced.type,
        "exchange": sequenced.kind.exchange, "merchant_id": sequenced.merchant_id,
        "aggregate_id": sequenced.aggregate_id, "sequence": sequenced.sequence,
        "body": json.dumps(sequenced.body()), "headers": json.dumps(headers),
        "status": "pending", "attempts": 0, "created_at": utcnow()})
    return sequenced


class UnitOfWork:
    """What a worker sees as ``self.db``: one transaction, opened on first use."""

    def __init__(self, provider: Database):
        self._provider = provider
        self._session: Session | None = None
        self.staged_events = 0

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self._provider.sessionmaker()
        return self._session

    def add_event(self, event: ev.Event) -> ev.Event:
        """Stage an event to be published once this transaction commits."""
        self.staged_events += 1
        return stage_event(self.session, self._provider.metadata, event)

    def claim(self, consumer: str, event_id: str) -> bool:
        """Record that ``consumer`` handles ``event_id``; False if it already did (redelivery)."""
        return event_id in self.claim_many(consumer, [event_id])

    def claim_many(self, consumer: str, event_ids: list[str]) -> set[str]:
        """``claim`` for a batch, in one statement: the ids not handled before. A concurrent
        delivery of the same event waits for this transaction on PostgreSQL and then inserts
        nothing, instead of failing on the primary key."""
        unique = list(dict.fromkeys(event_ids))
        if not unique:
            return set()
        stmt = _claim_inbox(self._provider.metadata.tables["inbox"],
                            self.session.get_bind().dialect.name)
        now = utcnow()
        inserted = self.session.execute(stmt, [
            {"consumer": consumer, "event_id": event_id, "processed_at": now}
            for event_id in unique])
        return {event_id for (event_id,) in inserted}

    def outbox_pending(self) -> int:
        return self._provider.outbox_pending()

    def commit(self) -> None:
        if self._session is not None:
            self._session.commit()
            if self.staged_events:
                self.staged_events = 0
                self._provider.events_committed()

    def close(self) -> None:
        if self._session is not None:
            try:
                self._session.rollback()
            finally:
                self._session.close()
                self._session = None


class Database(DependencyProvider):
    """``db = Database(Base.metadata)``: a ``UnitOfWork`` per worker, plus the outbox relay.

    Config: ``DB_URL`` (SQLite default per service), ``OUTBOX_RELAY`` (default on).
    """

    def __init__(self, metadata: MetaData, *, url_key: str = "DB_URL"):
        self.metadata = metadata
        self.url_key = url_key
        self.units: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.relay = None
        self.clock = SystemClock()

    def setup(self):
        config = self.container.config
        self.engine = make_engine(config[self.url_key],
                                  pool_size=int(config.get("max_workers", 10)) + 2)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        if str(config.get("OUTBOX_RELAY", "true")).lower() not in ("0", "false", "no"):
            from .outbox import OutboxRelay
            self.relay = OutboxRelay(self.engine, self.metadata, config,
                                     name=self.container.service_name)

    def start(self):
        if self.relay is not None:
            self._relay_thread = self.container.spawn_managed_thread(
                self.relay.run, identifier="outbox-relay")

    def stop(self):
        if self.relay is not None:
            self.relay.stop()
            thread = getattr(self, "_relay_thread", None)
            if thread is not None:
                # let an in-flight batch finish (and be marked sent) instead of killing it
                with eventlet.Timeout(10, False):
                    thread.wait()

    def kill(self):
        self.stop()

    def events_committed(self):
        if self.relay is not None:
            self.relay.wake()

    def get_dependency(self, worker_ctx):
        unit = UnitOfWork(self)
        self.units[worker_ctx] = unit
        return unit

    def commit_worker(self, worker_ctx):
        unit = self.units.get(worker_ctx)
        if unit is not None:
            unit.commit()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        # Our entrypoints already committed before replying; this covers plain nameko
        # entrypoints and nameko's testing hooks, which bypass ``handle_result``.
        if exc_info is None:
            self.commit_worker(worker_ctx)

    def worker_teardown(self, worker_ctx):
        unit = self.units.pop(worker_ctx, None)
        if unit is not None:
            unit.close()

    def outbox_pending(self) -> int:
        outbox = self.metadata.tables["outbox"]
        from sqlalchemy import func
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.status == "pending")
            ).scalar_one()
