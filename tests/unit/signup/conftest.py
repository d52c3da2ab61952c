"""Signup unit tests: the service's functions on an in-memory SQLite database (its own tables,
created from the models), no broker. ``db`` stands in for the worker's unit of work: the same
session, and ``add_event`` writing to the real outbox table."""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import pytest
from sqlalchemy.orm import Session

from services.common.database import make_engine, stage_event
from services.signup import catalog, schemas
from services.signup.models import Base

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


@dataclass
class UnitOfWork:
    session: Session
    events: list = field(default_factory=list)

    def add_event(self, event):
        staged = stage_event(self.session, Base.metadata, event)
        self.events.append(staged)
        return staged


@pytest.fixture
def session():
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as db_session:
        yield db_session
    engine.dispose()


@pytest.fixture
def db(session) -> UnitOfWork:
    return UnitOfWork(session)


@pytest.fixture
def make_merchant(session):
    """``make_merchant(components=[...], settings={...}, **variant)`` → (merchant, variant)."""
    def make(*, components=(), settings=None, slug=None, **variant):
        created = catalog.create_merchant(session, slug=slug or f"shop-{uuid.uuid4().hex[:8]}",
                                          name="Shop")
        merchant = catalog.get_merchant(session, created["merchant_id"])
        plan = catalog.create_plan(session, merchant.id, name={"en": "Pro"})
        ids = [catalog.create_component(session, merchant.id, schemas.load(
            schemas.ComponentCreate(), {"currency": "EUR", **spec})).id for spec in components]
        data = schemas.load(schemas.PlanVariantCreate(), {
            "plan_id": plan.id, "name": {"en": "Pro monthly"}, "currency": "EUR",
            "recurring_fee": "29.00", "setup_fee": "9.90", "component_ids": ids, **variant})
        variant_row = catalog.create_variant(session, merchant.id, data)
        merchant.settings = settings or {}
        session.flush()
        return merchant, variant_row
    return make
