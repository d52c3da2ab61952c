"""The portal service in a real container on its own vhost: contracts from published orders,
the balance from the documents' events, and the lifecycle timer's BillingDue / ContractEnded
reaching a consumer bound to ``portal.events`` (signup's settings RPC is a small fake)."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import kombu
import pytest
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook

from services.common import events
from services.common.clock import Clock, FrozenClock
from services.common.errors import InvalidInput, NotFound
from services.portal.service import PortalService
from tests.support.cluster import wait_until
from tests.support.services import dependency

M = "m_portal_it"


class FakeSignup:
    name = "signup"

    @rpc
    def get_settings(self, merchant_id):
        return {"fields": {"phone": "required"}}


@pytest.fixture
def portal(start_service, container_factory, rabbit_config):
    container_factory(FakeSignup, rabbit_config).start()
    container = start_service(PortalService, "portal")
    # frozen from the start, so the timer never runs on the wall clock's day
    dependency(container, Clock).clock = FrozenClock("2026-01-01T10:00:00+00:00")
    return container


@pytest.fixture
def rpc_proxy(rabbit_config):
    with ClusterRpcProxy(rabbit_config, timeout=10) as proxy:
        yield proxy


def publish(amqp_uri, event: events.Event):
    event_dispatcher({"AMQP_URI": amqp_uri})(event.kind.source, event.type, event.body())


def consumer(amqp_uri, *types):
    connection = kombu.Connection(amqp_uri)
    exchange = kombu.Exchange("portal.events", type="topic", durable=True)
    queue = kombu.Queue(f"test-{uuid.uuid4().hex[:8]}", exchange=exchange, exclusive=True,
                        bindings=[kombu.binding(exchange, routing_key=t) for t in types]
                        )(connection.channel())
    queue.declare()
    received = []

    def drain(count, event_type):
        def enough():
            while (message := queue.get(no_ack=True)) is not None:
                received.append(message.payload)
            found = [e for e in received if e["type"] == event_type]
            return found if len(found) >= count else None
        return wait_until(enough, 10, what=f"{count} {event_type}")

    return drain


def order(submitted_at: dt.datetime) -> events.Event:
    payload = {
        "order_id": f"ord_{uuid.uuid4().hex[:10]}", "contract_id": f"ct_{uuid.uuid4().hex[:10]}",
        "customer_id": f"cus_{uuid.uuid4().hex[:10]}", "plan_id": "pl", "plan_variant_id": "pv",
        "plan_name": "Pro", "currency": "EUR",
        "customer": {"email": "bo@example.com", "first_name": "Bo", "last_name": "Ek",
                     "country": "DE", "phone": "+49301234567"},
        "components": [], "coupon": None,
        "terms": {"setup_fee": Decimal("0"), "recurring_fee": Decimal("10"),
                  "billing_period_months": 1, "trial_days": 0,
                  "notice_period": {"value": 0, "unit": "day"}, "minimum_term": None},
        "tax": {"rate": Decimal("19"), "category": "S", "reverse_charge": False,
                "country": "DE"},
        "totals": {"net_total": Decimal("10"), "tax_total": Decimal("1.90"),
                   "gross_total": Decimal("11.90"), "recurring_gross": Decimal("11.90")},
        "payment_method": None, "external_id": None, "language": "en",
        "submitted_at": submitted_at}
    return events.new_event("OrderSubmitted", merchant_id=M, aggregate_id=payload["order_id"],
                            payload=payload)


def invoice(contract_id, gross, kind="InvoiceIssued"):
    payload = {"document_id": f"doc_{uuid.uuid4().hex[:10]}", "number": "RE-1",
               "contract_id": contract_id, "customer_id": "cus", "issue_date": dt.date(2026, 1, 1),
               "due_date": None, "period_start": None, "period_end": None, "currency": "EUR",
               "net_total": Decimal(gross), "tax_total": Decimal("0"),
               "gross_total": Decimal(gross)}
    return events.new_event(kind, merchant_id=M, aggregate_id=payload["document_id"],
                            payload=payload)


def test_contracts_balance_and_lifecycle_events(portal, rpc_proxy, rabbit_config):
    amqp = rabbit_config["AMQP_URI"]
    drain = consumer(amqp, "ContractCreated", "BillingDue", "ContractCancelled", "ContractEnded")
    submitted = order(dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC))
    contract_id = submitted.payload["contract_id"]

    publish(amqp, submitted)
    publish(amqp, submitted)  # redelivered: still one contract
    wait_until(lambda: _exists(rpc_proxy, contract_id), what="the contract")
    assert len(drain(1, "ContractCreated")) == 1

    first = invoice(contract_id, "11.90")
    publish(amqp, first)
    publish(amqp, first)  # same event again: the inbox skips it
    publish(amqp, invoice(contract_id, "3.00", kind="CreditNoteIssued"))
    wait_until(lambda: rpc_proxy.portal.get_contract(M, contract_id)["balance"]["amount"]
               == "8.90", what="the balance")

    clock = dependency(portal, Clock).clock
    clock.set(dt.datetime(2026, 3, 15, 8, tzinfo=dt.UTC))
    with entrypoint_hook(portal, "run_lifecycle") as run:
        assert run() == 1
        assert run() == 0  # idempotent
    billed = drain(3, "BillingDue")
    assert [e["payload"]["period_start"] for e in billed] == [
        "2026-01-01", "2026-02-01", "2026-03-01"]

    view = rpc_proxy.portal.cancel_contract(M, contract_id)
    assert view["cancellation"]["end_date"] == "2026-04-01"  # zero notice: the period's end
    drain(1, "ContractCancelled")
    clock.set(dt.datetime(2026, 4, 1, 0, 5, tzinfo=dt.UTC))
    with entrypoint_hook(portal, "run_lifecycle") as run:
        run()
        run()
    [ended] = drain(1, "ContractEnded")
    assert ended["payload"] == {"contract_id": contract_id, "ended_on": "2026-04-01"}
    assert len(drain(3, "BillingDue")) == 3  # nothing billed from the end on
    assert rpc_proxy.portal.get_contract(M, contract_id)["state"] == "ended"


def test_customer_changes_follow_the_merchants_field_modes(portal, rpc_proxy, rabbit_config):
    submitted = order(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    contract_id = submitted.payload["contract_id"]
    publish(rabbit_config["AMQP_URI"], submitted)
    wait_until(lambda: _exists(rpc_proxy, contract_id), what="the contract")

    with pytest.raises(InvalidInput) as invalid:  # the fake merchant requires a phone
        rpc_proxy.portal.change_contract_customer(M, contract_id, {"phone": ""})
    assert invalid.value.fields["phone"][0]["code"] == "required"
    view = rpc_proxy.portal.change_contract_customer(M, contract_id, {"city": "Bonn"})
    assert view["customer"]["city"] == "Bonn"
    with pytest.raises(NotFound):
        rpc_proxy.portal.change_contract_customer("m_other", contract_id, {"city": "X"})
    assert rpc_proxy.portal.latest_contract_id(M) == contract_id
    assert rpc_proxy.portal.verify_contract(M, contract_id)["state"] == "active"


def _exists(rpc_proxy, contract_id) -> bool:
    try:
        rpc_proxy.portal.get_contract(M, contract_id)
    except NotFound:
        return False
    return True
