"""End-to-end tier: every service and the gateway run as real processes (the same
``python -m services.common.runner`` ops run), on their own RabbitMQ vhost, their own SQLite
files in a temporary ``var/``, and a free port; tests drive them over HTTP (and a real browser
for pages). Nothing is replaced.
"""
import pytest

from tests.support.client import PorticoClient
from tests.support.cluster import Cluster


@pytest.fixture(scope="module")
def cluster(rabbit_manager, tmp_path_factory, request):
    """All processes, started once per test module (about 3 s) and stopped after it."""
    amqp_uri = request.config.getoption("RABBIT_AMQP_URI")
    with Cluster(rabbit_manager, amqp_uri, tmp_path_factory.mktemp("portico-var")) as running:
        yield running


@pytest.fixture
def client(cluster) -> PorticoClient:
    return PorticoClient(cluster.base_url)


@pytest.fixture
def merchant(cluster):
    """A fresh merchant with one self-service plan variant (random slug)."""
    return cluster.make_merchant()
