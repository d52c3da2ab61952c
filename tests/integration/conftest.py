"""Integration tier: one service in a nameko container on a fresh RabbitMQ vhost per test
(nameko's ``rabbit_config``) with a real database: a SQLite file in ``tmp_path`` migrated with
the service's own Alembic history, or PostgreSQL for tests marked ``postgres``.

Real here: the broker, the database, the outbox relay, the service's entrypoints. Replaced:
only the other services, by publishing their events or answering their RPCs from the test.
"""
import pytest

from tests.support.services import ServiceStarter


@pytest.fixture
def start_service(rabbit_config, container_factory, tmp_path):
    """``start_service(PortalService, "portal", EXTRA_SETTING=…)`` → a running container."""
    return ServiceStarter(rabbit_config, container_factory, tmp_path)
