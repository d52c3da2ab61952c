"""Contracts: creation from orders, what the portal and API show, cancellation, the lifecycle.

Use cases over the portal service's tables; the rules themselves (dates, states) are in
``domain.py``. Every state change that others must hear about stages its event in the same
transaction (outbox), and concurrent writers are fenced with compare-and-set updates so that
two replicas (or a retried request) never announce the same fact twice.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common import events
from services.common.clock import SystemClock
from services.common.database import UnitOfWork
from services.common.errors import Conflict, NotFound
from services.common.periods import Duration

from . import domain, ledger
from .models import Contract, Customer

log = logging.getLogger(__name__)

LIFECYCLE_BATCH = 200


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
    billing_start = domain.billing_start(start, trial_end)
    contract = Contract(
        id=order["contract_id"], merchant_id=event.merchant_id, customer_id=customer.id,
        order_id=order["order_id"], plan_variant_id=order["plan_variant_id"],
        plan_name=order["plan_name"], currency=order["currency"], start_date=start,
        trial_end=trial_end, billing_start=billing_start,
        terms=events.PriceTerms().dump(order["terms"]),
        components=[events.ComponentLine().dump(c) for c in order["components"]],
        coupon=events.CouponData().dump(order["coupon"]) if order.get("coupon") else None,
        tax=events.TaxData().dump(order["tax"]),
        payment_method=(events.PaymentMethod().dump(order["payment_method"])
                        if order.get("payment_method") else None),
        external_id=order.get("external_id"), language=order["language"],
        next_action_on=billing_start, additional_data={},
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


# -- reading ----------------------------------------------------------------------------------


def get_contract(session: Session, merchant_id: str, contract_id: str) -> Contract:
    """The merchant's contract; another merchant's id is ``NotFound`` exactly like a missing one."""
    contract = session.get(Contract, contract_id) if isinstance(contract_id, str) else None
    if contract is None or contract.merchant_id != merchant_id:
        raise NotFound("contract not found")
    return contract


def latest_contract_id(session: Session, merchant_id: str) -> str | None:
    return session.scalar(select(Contract.id).where(Contract.merchant_id == merchant_id)
                          .order_by(Contract.created_at.desc(), Contract.id.desc()).limit(1))


def months(contract: Contract) -> int:
    return int(contract.terms["billing_period_months"])


def notice(contract: Contract) -> Duration:
    return Duration.parse(contract.terms["notice_period"])


def minimum_term(contract: Contract) -> Duration | None:
    raw = contract.terms.get("minimum_term")
    return Duration.parse(raw) if raw else None


def state(contract: Contract, today: dt.date) -> domain.ContractState:
    return domain.contract_state(contract.start_date, contract.trial_end, contract.end_date, today)


def cancellation_end(contract: Contract, requested_on: dt.date) -> dt.date:
    return domain.cancellation_end_date(
        start=contract.start_date, trial_end=contract.trial_end, billing_months=months(contract),
        notice=notice(contract), minimum_term=minimum_term(contract), requested_on=requested_on)


def contract_view(session: Session, contract: Contract, today: dt.date, *,
                  customer: Customer | None = None,
                  account: ledger.Account | None = None) -> dict:
    """The contract as the portal and the API show it (dates ISO, money as strings).

    End dates are exclusive (``end_date`` is the first day no longer covered); ``last_day`` is
    the last day covered, for display. ``customer`` and ``account`` may be passed in when the
    caller has already read them.
    """
    if customer is None:
        customer = session.get(Customer, contract.customer_id)
    if account is None:
        account = ledger.Account.of(session, contract)
    current = state(contract, today)
    period = domain.current_period(contract.billing_start, months(contract), today,
                                   contract.end_date)
    cancellable = current in (domain.ContractState.IN_TRIAL, domain.ContractState.ACTIVE)
    preview = None
    if cancellable:
        end = cancellation_end(contract, today)
        preview = {"end_date": end.isoformat(),
                   "last_day": domain.last_day_covered(end).isoformat()}
    cancellation = None
    if contract.end_date is not None:
        cancellation = {
            "requested_on": _iso(contract.cancellation_requested_on),
            "end_date": contract.end_date.isoformat(),
            "last_day": domain.last_day_covered(contract.end_date).isoformat(),
            "withdrawable": domain.can_withdraw_cancellation(contract.end_date, today),
        }
    term = minimum_term(contract)
    return {
        "id": contract.id,
        "merchant_id": contract.merchant_id,
        "customer_id": contract.customer_id,
        "customer": customer.data if customer else {},
        "plan_variant_id": contract.plan_variant_id,
        "plan_name": contract.plan_name,
        "currency": contract.currency,
        "state": str(current),
        "start_date": contract.start_date.isoformat(),
        "trial_end": _iso(contract.trial_end),
        "trial_last_day": _iso(domain.last_day_covered(contract.trial_end)
                               if contract.trial_end else None),
        "billing_start": contract.billing_start.isoformat(),
        "end_date": _iso(contract.end_date),
        "ended_on": _iso(contract.ended_on),
        "current_period": None if period is None else {
            "start": period.start.isoformat(), "end": period.end.isoformat(),
            "last_day": period.last_day.isoformat()},
        "next_billing_date": _iso(domain.next_billing_date(
            contract.start_date, contract.trial_end, months(contract), today,
            contract.end_date)),
        "notice_period": notice(contract).to_dict(),
        "minimum_term": term.to_dict() if term else None,
        "minimum_term_end": _iso(term.add_to(contract.billing_start)) if term else None,
        "cancellable": cancellable,
        "cancellation": cancellation,
        "cancellation_preview": preview,
        "terms": contract.terms,
        "components": contract.components,
        "coupon": contract.coupon,
        "payment_method": _public_payment_method(contract.payment_method),
        "balance": account.balance(),
        "external_id": contract.external_id,
        "language": contract.language,
        "additional_data": contract.additional_data or {},
    }


def _public_payment_method(method: dict | None) -> dict | None:
    if not method:
        return None
    return {key: method.get(key) for key in ("type", "masked", "account_holder")
            if method.get(key) is not None}


def _iso(value):
    return value.isoformat() if value else None


# -- cancellation -----------------------------------------------------------------------------


def cancel(db: UnitOfWork, contract: Contract, today: dt.date,
           expected_end_date: dt.date | None = None) -> Contract:
    """Request the cancellation on ``today``; the end date follows notice and minimum term.

    Asking again while a cancellation is pending changes nothing (and announces nothing).
    ``expected_end_date`` is the date the customer confirmed: if the rule now gives another
    (the day turned between page and click) this raises ``Conflict`` naming the new date.
    """
    current = state(contract, today)
    if current is domain.ContractState.ENDED:
        raise Conflict("the contract has already ended", {"contract": [
            {"code": "ended", "message": "The contract has already ended.", "params": {}}]})
    if current is domain.ContractState.CANCELLATION_REQUESTED:
        return contract
    end = cancellation_end(contract, today)
    if expected_end_date is not None and expected_end_date != end:
        raise Conflict("the end date has changed", {"end_date": [
            {"code": "end_date_changed", "message": "The end date is now {end_date}.",
             "params": {"end_date": end.isoformat()}}]})
    next_action = domain.next_lifecycle_date(contract.billing_start, months(contract),
                                             contract.last_billed_period_start, end, None)
    fenced = db.session.execute(
        update(Contract)
        .where(Contract.id == contract.id, Contract.end_date.is_(None),
               Contract.ended_on.is_(None))
        .values(cancellation_requested_on=today, end_date=end, next_action_on=next_action)
        .execution_options(synchronize_session=False))
    db.session.refresh(contract)
    if fenced.rowcount != 1:  # a concurrent request cancelled first: that one announced it
        return contract
    db.add_event(events.new_event(
        "ContractCancelled", merchant_id=contract.merchant_id, aggregate_id=contract.id,
        payload={"contract_id": contract.id, "customer_id": contract.customer_id,
                 "requested_on": today, "end_date": end,
                 "last_day": domain.last_day_covered(end)}))
    return contract


def withdraw_cancellation(db: UnitOfWork, contract: Contract, today: dt.date) -> Contract:
    """Take back a pending cancellation; possible until the day it takes effect."""
    if contract.end_date is None:
        raise Conflict("no cancellation is pending", {"contract": [
            {"code": "not_cancelled", "message": "No cancellation is pending.", "params": {}}]})
    if not domain.can_withdraw_cancellation(contract.end_date, today):
        raise Conflict("the cancellation has taken effect", {"contract": [
            {"code": "ended", "message": "The contract has already ended.", "params": {}}]})
    old_end = contract.end_date
    next_action = domain.next_lifecycle_date(contract.billing_start, months(contract),
                                             contract.last_billed_period_start, None, None)
    fenced = db.session.execute(
        update(Contract)
        .where(Contract.id == contract.id, Contract.end_date == old_end,
               Contract.ended_on.is_(None))
        .values(cancellation_requested_on=None, end_date=None, next_action_on=next_action)
        .execution_options(synchronize_session=False))
    db.session.refresh(contract)
    if fenced.rowcount == 1:
        db.add_event(events.new_event(
            "ContractChanged", merchant_id=contract.merchant_id, aggregate_id=contract.id,
            payload={"contract_id": contract.id, "changes": {
                "cancellation": "withdrawn", "withdrawn_on": today.isoformat(),
                "end_date": None, "previous_end_date": old_end.isoformat()}}))
    return contract


# -- the lifecycle timer ------------------------------------------------------------------------


def run_lifecycle(db: UnitOfWork, today: dt.date, batch: int = LIFECYCLE_BATCH,
                  max_batches: int = 50) -> int:
    """Bill the periods that have begun (``BillingDue``, oldest first) and end the contracts
    whose cancellation took effect (``ContractEnded``); return how many contracts moved.

    Only contracts whose ``next_action_on`` has come are read. Each batch commits on its own so
    a long catch-up does not hold one huge transaction. Running it twice on the same day, or on
    two replicas at once, announces nothing twice: each contract is advanced with a
    compare-and-set on the fields it read.
    """
    moved = 0
    for _ in range(max_batches):
        ids = db.session.scalars(
            select(Contract.id).where(Contract.next_action_on <= today)
            .order_by(Contract.next_action_on, Contract.id).limit(batch)).all()
        if not ids:
            break
        for contract_id in ids:
            moved += advance(db, db.session.get(Contract, contract_id), today)
        db.commit()
        if len(ids) < batch:
            break
    return moved


def advance(db: UnitOfWork, contract: Contract, today: dt.date) -> int:
    """Bring one contract up to ``today``; 1 if it moved, 0 if another worker got there first."""
    billing_months = months(contract)
    due = domain.billing_due_periods(contract.billing_start, billing_months,
                                     contract.last_billed_period_start, today, contract.end_date)
    last_billed = due[-1].start if due else contract.last_billed_period_start
    ends = (contract.end_date is not None and contract.ended_on is None
            and today >= contract.end_date)
    ended_on = contract.end_date if ends else contract.ended_on
    next_action = domain.next_lifecycle_date(contract.billing_start, billing_months, last_billed,
                                             contract.end_date, ended_on)
    fenced = db.session.execute(
        update(Contract)
        .where(Contract.id == contract.id,
               _same(Contract.last_billed_period_start, contract.last_billed_period_start),
               _same(Contract.end_date, contract.end_date),
               _same(Contract.ended_on, contract.ended_on))
        .values(last_billed_period_start=last_billed, ended_on=ended_on,
                next_action_on=next_action)
        .execution_options(synchronize_session=False))
    db.session.refresh(contract)
    if fenced.rowcount != 1:
        return 0
    for period in due:
        db.add_event(events.new_event(
            "BillingDue", merchant_id=contract.merchant_id, aggregate_id=contract.id,
            payload={"contract_id": contract.id, "period_start": period.start,
                     "period_end": period.end}))
    if ends:
        db.add_event(events.new_event(
            "ContractEnded", merchant_id=contract.merchant_id, aggregate_id=contract.id,
            payload={"contract_id": contract.id, "ended_on": ended_on}))
    return 1


def _same(column, value):
    return column.is_(None) if value is None else column == value

