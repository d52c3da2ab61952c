"""Creating and reading contracts: the portal service's use cases over its tables."""
from __future__ import annotations

from sqlalchemy.orm import Session

from services.common import events
from services.common.clock import SystemClock
from services.common.database import UnitOfWork
from services.common.errors import NotFound

from . import domain
from .models import Contract, Customer

EventSchemaDump = events.CATALOGUE["ContractCreated"].schema


def create_from_order(db: UnitOfWork, event: events.Event, clock=None) -> Contract:
    """Customer + contract from ``OrderSubmitted``; a second delivery of the same order is a
    no-op (the contract id was born in the signup service, so it is the idempotency key)."""
    clock = clock or SystemClock()
    order = event.payload
    existing = db.session.get(Contract, order["contract_id"])
    if existing is not None:
        return existing
    start = domain.as_date(order["submitted_at"])
    trial_end = domain.trial_end(start, order["terms"]["trial_days"])
    customer = db.session.get(Customer, order["customer_id"])
    customer_data = events.CustomerData().dump(order["customer"])
    if customer is None:
        customer = Customer(id=order["customer_id"], merchant_id=event.merchant_id,
                            data=customer_data)
        db.session.add(customer)
        db.add_event(events.new_event(
            "CustomerCreated", merchant_id=event.merchant_id, aggregate_id=customer.id,
            payload={"customer_id": customer.id, "customer": order["customer"]}))
    contract = Contract(
        id=order["contract_id"], merchant_id=event.merchant_id, customer_id=customer.id,
        order_id=order["order_id"], plan_variant_id=order["plan_variant_id"],
        plan_name=order["plan_name"], currency=order["currency"], start_date=start,
        trial_end=trial_end, billing_start=domain.billing_start(start, trial_end),
        terms=events.PriceTerms().dump(order["terms"]),
        components=[events.ComponentLine().dump(c) for c in order["components"]],
        coupon=events.CouponData().dump(order["coupon"]) if order.get("coupon") else None,
        tax=events.TaxData().dump(order["tax"]),
        payment_method=order.get("payment_method"),
        external_id=order.get("external_id"), language=order["language"],
    )
    db.session.add(contract)
    db.session.flush()
    db.add_event(events.new_event(
        "ContractCreated", merchant_id=event.merchant_id, aggregate_id=contract.id,
        payload={
            "contract_id": contract.id, "customer_id": customer.id, "order_id": contract.order_id,
            "plan_variant_id": contract.plan_variant_id, "plan_name": contract.plan_name,
            "currency": contract.currency, "start_date": start, "trial_end": trial_end,
            "billing_start": contract.billing_start, "terms": order["terms"],
            "components": order["components"], "coupon": order.get("coupon"),
            "tax": order["tax"], "customer": order["customer"],
            "external_id": contract.external_id, "language": contract.language,
        }))
    return contract


def get_contract(session: Session, merchant_id: str, contract_id: str) -> Contract:
    contract = session.get(Contract, contract_id)
    if contract is None or contract.merchant_id != merchant_id:
        raise NotFound("contract not found")
    return contract


def contract_view(session: Session, contract: Contract, today) -> dict:
    customer = session.get(Customer, contract.customer_id)
    state = domain.contract_state(contract.start_date, contract.trial_end, contract.end_date,
                                  today)
    return {
        "id": contract.id,
        "merchant_id": contract.merchant_id,
        "customer_id": contract.customer_id,
        "customer": customer.data if customer else {},
        "plan_variant_id": contract.plan_variant_id,
        "plan_name": contract.plan_name,
        "currency": contract.currency,
        "state": str(state),
        "start_date": contract.start_date.isoformat(),
        "trial_end": contract.trial_end.isoformat() if contract.trial_end else None,
        "end_date": contract.end_date.isoformat() if contract.end_date else None,
        "next_billing_date": _iso(domain.next_billing_date(
            contract.start_date, contract.trial_end, contract.terms["billing_period_months"],
            today, contract.end_date)),
        "terms": contract.terms,
        "components": contract.components,
        "external_id": contract.external_id,
        "language": contract.language,
    }


def _iso(value):
    return value.isoformat() if value else None
