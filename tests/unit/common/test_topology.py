"""The declared topology and the services' real handlers must agree: a handler whose queue is
not declared at deploy time could miss events published before it first started."""
import importlib

from nameko.containers import ServiceContainer

from services.common import topology
from services.common.entrypoints import EventHandler
from services.common.runner import SERVICES, service_class


def declared_handlers():
    found = set()
    for name in SERVICES:
        importlib.import_module(f"services.{name}.service")
        container = ServiceContainer(service_class(name), {"AMQP_URI": "memory://"})
        for entrypoint in container.entrypoints:
            if isinstance(entrypoint, EventHandler):
                found.add((name, entrypoint.method_name, entrypoint.event_type))
    return found


def test_subscriptions_list_exactly_the_event_handlers_the_services_have():
    assert set(topology.SUBSCRIPTIONS) == declared_handlers()


def test_queue_names_are_namekos_own():
    assert topology.consumer_queue_name("OrderSubmitted", "portal", "handle_order_submitted") \
        == "evt-signup-OrderSubmitted--portal.handle_order_submitted"
