"""Customer data: reading it and changing it with the same field rules as the signup page."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy.orm import Session

from services.common import customer_fields, events
from services.common.database import UnitOfWork, utcnow
from services.common.errors import InvalidInput, NotFound

from .models import Customer


def get_customer(session: Session, merchant_id: str, customer_id: str) -> Customer:
    customer = session.get(Customer, customer_id) if isinstance(customer_id, str) else None
    if customer is None or customer.merchant_id != merchant_id:
        raise NotFound("customer not found")
    return customer


def customer_view(customer: Customer) -> dict:
    return {"id": customer.id, "merchant_id": customer.merchant_id, "data": customer.data,
            "created_at": customer.created_at.isoformat(),
            "updated_at": customer.updated_at.isoformat()}


def validate_changes(current: Mapping, changes, modes: Mapping[str, str], today: dt.date
                     ) -> dict:
    """The customer's data after applying ``changes``, or ``InvalidInput`` with per-field errors.

    The stored values are validated together with the changes, so the result satisfies the
    merchant's current field rules as a whole (a newly required field must be filled in).
    Hidden fields keep their stored value whatever is sent; unknown keys are ignored.
    """
    if not isinstance(changes, Mapping):
        raise InvalidInput("the customer data must be an object", {"_form": [
            {"code": "invalid", "message": "The customer data must be an object.",
             "params": {}}]})
    stored = {name: value for name, value in current.items()
              if name in customer_fields.FIELDS and isinstance(value, str)}
    submitted = {name: value for name, value in changes.items()
                 if name in customer_fields.FIELDS}
    clean, errors = customer_fields.validate_customer({**stored, **submitted}, modes, today=today)
    if errors:
        raise InvalidInput("some fields are invalid", {
            name: [{"code": error.code, "message": error.message(), "params": error.params}]
            for name, error in errors.items()})
    after = dict(current)
    for name, value in clean.items():
        after[name] = value
    return after


def change_customer(db: UnitOfWork, customer: Customer, changes, modes: Mapping[str, str],
                    today: dt.date, contract_id: str | None = None) -> bool:
    """Apply validated ``changes``; announce ``CustomerChanged`` with before/after when anything
    changed. Returns whether it did."""
    before = dict(customer.data or {})
    after = validate_changes(before, changes, modes, today)
    if after == before:
        return False
    customer.data = after
    customer.updated_at = utcnow()
    schema = events.CustomerData()
    db.add_event(events.new_event(
        "CustomerChanged", merchant_id=customer.merchant_id, aggregate_id=customer.id,
        payload={"customer_id": customer.id, "contract_id": contract_id,
                 "before": schema.load(before), "after": schema.load(after)}))
    return True
