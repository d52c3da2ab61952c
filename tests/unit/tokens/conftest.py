"""Tokens unit tests: the store's functions over an in-memory SQLite database and a frozen clock."""
import pytest

from services.common.clock import FrozenClock
from services.tokens.models import Base
from tests.support.database import InMemoryDatabase


@pytest.fixture
def database():
    return InMemoryDatabase(Base.metadata)


@pytest.fixture
def db(database):
    unit = database.unit()
    yield unit
    unit.close()


@pytest.fixture
def clock():
    return FrozenClock("2026-03-10T12:00:00+00:00")
