"""Order preview and submission: validate, price, store, and announce ``OrderSubmitted``.

The client never supplies a price: both preview and submission price the order from the
catalog on the server, so what the customer saw is what the contract and first invoice get.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common import customer_fields, events, money, tax
from services.common.database import UnitOfWork
from services.common.errors import InvalidInput

from . import pricing
from .catalog import localized, new_id
from .models import Component, Coupon, Merchant, Order, PlanVariant

LANGUAGES = ("en", "de", "fr")


def field_error(code: str, message: str, **params) -> list[dict]:
    return [{"code": code, "message": message, "params": params}]


def settings_of(merchant: Merchant) -> dict:
    return merchant.settings or {}


def variant_price(variant: PlanVariant) -> pricing.VariantPrice:
    return pricing.VariantPrice(
        currency=variant.currency,
        recurring_fee=money.from_minor(variant.recurring_fee_minor, variant.currency),
        setup_fee=money.from_minor(variant.setup_fee_minor, variant.currency),
        billing_period_months=variant.billing_period_months,
        trial_days=variant.trial_days,
    )


def variant_components(session: Session, variant: PlanVariant, language: str):
    if not variant.component_ids:
        return []
    rows = session.scalars(select(Component).where(
        Component.merchant_id == variant.merchant_id, Component.id.in_(variant.component_ids)))
    return [pricing.ComponentPrice(
        id=c.id, name=localized(c.name, language), kind=c.kind,
        unit_price=money.from_minor(c.unit_price_minor, c.currency),
        min_quantity=c.min_quantity, max_quantity=c.max_quantity) for c in rows]


def find_coupon(session: Session, merchant_id: str, code: str) -> Coupon | None:
    return session.scalar(select(Coupon).where(Coupon.merchant_id == merchant_id,
                                               Coupon.code == code.strip().upper()))


def as_pricing_coupon(row: Coupon | None) -> pricing.Coupon | None:
    if row is None:
        return None
    return pricing.Coupon(code=row.code, kind=row.kind, value=Decimal(row.value),
                          periods=row.periods, valid_from=row.valid_from, valid_to=row.valid_to,
                          max_redemptions=row.max_redemptions, redemptions=row.redemptions,
                          currency=row.currency)


def price(session: Session, merchant: Merchant, variant: PlanVariant, form: dict,
          now: dt.datetime) -> tuple[dict, dict, pricing.OrderPrice | None, Coupon | None]:
    """Validate and price ``form``; return ``(clean customer, errors, price, coupon row)``.

    ``errors`` maps a field (``customer.email``-style names flattened to ``email``,
    ``components.<id>``, ``coupon_code``, ``terms.<n>``) to a list of ``{code, message}``.
    """
    settings = settings_of(merchant)
    language = form.get("language") if form.get("language") in LANGUAGES else "en"
    modes = customer_fields.resolve_modes(settings.get("fields", {}))
    clean, field_errors = customer_fields.validate_customer(form.get("customer") or {}, modes,
                                                            today=now.date())
    errors: dict[str, list[dict]] = {
        name: [{"code": e.code, "message": e.message(), "params": e.params}]
        for name, e in field_errors.items()
    }
    components = variant_components(session, variant, language)
    quantities = _parse_quantities(form.get("components") or {})
    selected = []
    if not isinstance(quantities, dict):
        errors["components"] = field_error("invalid", "Components must be a mapping.")
    else:
        try:
            selected = pricing.select_components(components, quantities)
        except pricing.ComponentQuantityError as exc:
            for component_id, problem in exc.errors.items():
                errors[f"components.{component_id}"] = field_error(
                    problem.code, f"Invalid quantity ({problem.code}).", **problem.params)
    coupon_row = None
    code = form.get("coupon_code")
    if code not in (None, ""):
        if not isinstance(code, str) or len(code) > 64:
            errors["coupon_code"] = field_error("unknown", "This coupon code is not valid.")
        else:
            coupon_row = find_coupon(session, merchant.id, code)
            try:
                pricing.check_coupon(as_pricing_coupon(coupon_row), code, now,
                                     currency=variant.currency)
            except pricing.CouponError as exc:
                errors["coupon_code"] = field_error(exc.code, COUPON_MESSAGES[exc.code])
                coupon_row = None
    for index, line in enumerate(settings.get("terms", [])):
        accepted = form.get("accepted_terms") or []
        if line.get("confirmation") and str(index) not in {str(a) for a in accepted}:
            errors[f"terms.{index}"] = field_error("required", "Please confirm this.")
    external_id = form.get("external_id")
    if external_id is not None and (not isinstance(external_id, str) or len(external_id) > 200):
        errors["external_id"] = field_error("too_long", "At most 200 characters.", max=200)
    country = clean.get("country") or merchant.country
    try:
        treatment = tax.tax_treatment(merchant.country, country, clean.get("vat_id"))
    except ValueError:
        errors.setdefault("country", field_error("invalid_country", "Unknown country."))
        treatment = tax.tax_treatment(merchant.country, merchant.country)
    if errors and any(k.startswith("components") for k in errors):
        return clean, errors, None, coupon_row
    order_price = pricing.price_order(variant_price(variant), selected,
                                      as_pricing_coupon(coupon_row), treatment)
    return clean, errors, order_price, coupon_row


def _parse_quantities(raw):
    """Form posts carry quantities as text; "2" → 2, anything else is left for the check."""
    if not isinstance(raw, dict):
        return raw
    return {key: int(value) if isinstance(value, str) and value.strip().isdigit()
            and len(value.strip()) < 7 else value for key, value in raw.items()}


COUPON_MESSAGES = {
    "unknown": "This coupon code is not valid.",
    "not_yet_valid": "This coupon code is not valid yet.",
    "expired": "This coupon code has expired.",
    "used_up": "This coupon code has been used up.",
    "currency_mismatch": "This coupon code does not apply to this plan.",
}


def submit(db: UnitOfWork, merchant: Merchant, variant: PlanVariant, form: dict,
           now: dt.datetime) -> dict:
    """Store the order and stage ``OrderSubmitted``; raise ``InvalidInput`` and store nothing
    when anything is wrong."""
    clean, errors, order_price, coupon_row = price(db.session, merchant, variant, form, now)
    if errors:
        raise InvalidInput("the order has invalid fields", errors)
    language = form.get("language") if form.get("language") in LANGUAGES else \
        merchant.default_language
    if coupon_row is not None:
        # conditional increment: two last redemptions racing cannot both succeed
        bumped = db.session.execute(
            update(Coupon).where(Coupon.id == coupon_row.id,
                                 (Coupon.max_redemptions.is_(None))
                                 | (Coupon.redemptions < Coupon.max_redemptions))
            .values(redemptions=Coupon.redemptions + 1))
        if bumped.rowcount != 1:
            raise InvalidInput("coupon used up", {"coupon_code": field_error(
                "used_up", COUPON_MESSAGES["used_up"])})
    order_id, contract_id, customer_id = new_id("ord"), new_id("ct"), new_id("cus")
    customer = {k: v for k, v in clean.items() if v is not None}
    customer["language"] = language
    priced = order_price.as_dict()
    db.session.add(Order(id=order_id, merchant_id=merchant.id, plan_variant_id=variant.id,
                         contract_id=contract_id, customer_id=customer_id, customer=customer,
                         lines=priced, language=language))
    payload = {
        "order_id": order_id, "contract_id": contract_id, "customer_id": customer_id,
        "plan_id": variant.plan_id, "plan_variant_id": variant.id,
        "plan_name": localized(variant.name, language), "currency": variant.currency,
        "customer": customer,
        "components": [
            {"component_id": c.id, "name": c.name, "kind": c.kind, "quantity": q,
             "unit_price": c.unit_price}
            for c, q in _selected_from(order_price, db.session, variant, language)],
        "coupon": ({"code": coupon_row.code, "kind": coupon_row.kind,
                    "value": Decimal(coupon_row.value), "periods": coupon_row.periods}
                   if coupon_row else None),
        "terms": {"setup_fee": money.from_minor(variant.setup_fee_minor, variant.currency),
                  "recurring_fee": money.from_minor(variant.recurring_fee_minor,
                                                    variant.currency),
                  "billing_period_months": variant.billing_period_months,
                  "trial_days": variant.trial_days, "notice_period": variant.notice_period,
                  "minimum_term": variant.minimum_term},
        "tax": {"rate": order_price.tax.rate, "category": order_price.tax.category,
                "reverse_charge": order_price.tax.reverse_charge,
                "country": customer.get("country") or merchant.country},
        "totals": {"net_total": order_price.net_total, "tax_total": order_price.tax.amount,
                   "gross_total": order_price.gross_total,
                   "recurring_gross": order_price.recurring_gross},
        "payment_method": None,
        "external_id": form.get("external_id"), "language": language, "submitted_at": now,
    }
    db.add_event(events.new_event("OrderSubmitted", merchant_id=merchant.id,
                                  aggregate_id=contract_id, payload=payload, occurred_at=now))
    return {"order_id": order_id, "contract_id": contract_id, "customer_id": customer_id,
            "price": priced}


def _selected_from(order_price, session, variant, language):
    """The charged (non-metered) components of a priced order, with their quantities."""
    by_id = {c.id: c for c in variant_components(session, variant, language)}
    for line in order_price.lines:
        if line.kind == "component" and line.component_id in by_id:
            yield by_id[line.component_id], line.quantity
