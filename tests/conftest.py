"""The whole suite: eventlet is patched before anything else imports a socket.

Tiers are folders, and each tier's ``conftest.py`` says what is real there:
``unit`` (no broker, no network), ``integration`` (one service on a real RabbitMQ vhost per test
and a real database), ``e2e`` (every service and the gateway as processes, over HTTP).
Shared helpers live in ``tests/support/``.
"""
from services.common import green  # noqa: F401  (first, before kombu/nameko/psycopg)

# isort: split
import os

import pytest

PG_URL = os.environ.get("PORTICO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """A PostgreSQL server for the tests marked ``postgres`` (bootstrap starts one)."""
    return PG_URL
