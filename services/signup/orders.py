"""Order preview and submission: validate, price, store, and announce ``OrderSubmitted``.

The client never supplies a price: both preview and submission price the order from the
catalog on the server, so what the customer saw is what the contract and first invoice get.
Every priced order carries a ``fingerprint``; a form that sends back the fingerprint it was
shown (``quoted_price``) is refused with ``price_changed`` when the price moved in between
(e.g. the merchant changed the catalog), instead of charging a price nobody saw.

Errors map a field to a list of ``{code, message, params}``: customer fields by their name
(``email``), ``components.<id>``, ``coupon_code``, ``terms.<n>``, ``external_id``, ``language``,
``_form``. Codes are stable; the gateway translates them for the page's language.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common import customer_fields, events, money, tax
from services.common.database import UnitOfWork, utcnow
from services.common.errors import InvalidInput

from . import pricing, schemas
from . import settings as merchant_settings
from .catalog import coupon_by_code, error, localized, new_id
from .models import Component, Coupon, Merchant, Order, PlanVariant

LANGUAGES = ("en", "de", "fr")

COUPON_MESSAGES = {
    "unknown": "This coupon code is not valid.",
    "not_yet_valid": "This coupon code is not valid yet.",
    "expired": "This coupon code has expired.",
    "used_up": "This coupon code has been used up.",
    "currency_mismatch": "This coupon code does not apply to this plan.",
    "not_accepted": "Coupon codes are not accepted here.",
}

QUANTITY_MESSAGES = {
    "unknown_component": "This option is not available.",
    "metered_not_selectable": "This option is billed by usage and cannot be chosen.",
    "not_an_integer": "Enter a whole number.",
    "negative": "The quantity cannot be negative.",
    "invalid_onoff": "Choose on or off.",
    "below_minimum": "At least {min}.",
    "above_maximum": "At most {max}.",
}


@dataclasses.dataclass
class Priced:
    """The outcome of validating and pricing one order form."""

    customer: dict
    errors: dict
    price: pricing.OrderPrice | None
    coupon: Coupon | None
    components: list[tuple[Component, pricing.ComponentPrice]]
    language: str

    def price_dict(self) -> dict | None:
        return price_as_dict(self.price) if self.price is not None else None


def fingerprint(price: pricing.OrderPrice | dict) -> str:
    """A short digest of everything the customer is shown about the price."""
    data = price if isinstance(price, dict) else price.as_dict()
    body = json.dumps({k: v for k, v in data.items() if k != "fingerprint"}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def price_as_dict(price: pricing.OrderPrice) -> dict:
    data = price.as_dict()
    data["fingerprint"] = fingerprint(data)
    return data


_ORDER_REQUEST = schemas.OrderRequest()  # stateless between loads; building one costs a load


def parse_form(raw) -> dict:
    """Load an order body strictly (unknown keys, wrong types → ``InvalidInput``)."""
    form = schemas.load(_ORDER_REQUEST, raw)
    form["components"] = {k: v for k, v in form["components"].items() if v is not None}
    return form


def variant_price(variant: PlanVariant) -> pricing.VariantPrice:
    return pricing.VariantPrice(
        currency=variant.currency,
        recurring_fee=money.from_minor(variant.recurring_fee_minor, variant.currency),
        setup_fee=money.from_minor(variant.setup_fee_minor, variant.currency),
        billing_period_months=variant.billing_period_months,
        trial_days=variant.trial_days,
    )


def variant_components(session: Session, variant: PlanVariant,
                       language: str, default_language: str = "en"
                       ) -> list[tuple[Component, pricing.ComponentPrice]]:
    """The variant's components in the variant's order, as rows and as prices."""
    if not variant.component_ids:
        return []
    rows = {c.id: c for c in session.scalars(select(Component).where(
        Component.merchant_id == variant.merchant_id, Component.id.in_(variant.component_ids)))}
    return [(c, pricing.ComponentPrice(
        id=c.id, name=localized(c.name, language, default_language), kind=c.kind,
        unit_price=money.from_minor(c.unit_price_minor, c.currency),
        min_quantity=c.min_quantity, max_quantity=c.max_quantity))
        for c in (rows.get(i) for i in variant.component_ids) if c is not None]


def selectable(component: Component) -> bool:
    """Whether a customer may choose this component's quantity on the hosted page."""
    return component.kind != "metered" and component.show_in_signup


def as_pricing_coupon(row: Coupon | None) -> pricing.Coupon | None:
    if row is None:
        return None
    return pricing.Coupon(code=row.code, kind=row.kind, value=Decimal(row.value),
                          periods=row.periods, valid_from=row.valid_from, valid_to=row.valid_to,
                          max_redemptions=row.max_redemptions, redemptions=row.redemptions,
                          currency=row.currency)


def price(session: Session, merchant: Merchant, variant: PlanVariant, form: dict,
          now: dt.datetime, *, self_service: bool) -> Priced:
    """Validate and price a parsed ``form``. Customer errors never stop pricing (the price
    only needs the country and VAT ID); invalid component quantities do (``price`` is None)."""
    stored = merchant.settings or {}
    language = form.get("language") or merchant.default_language
    modes = merchant_settings.field_modes(stored)
    customer = form.get("customer") or {}
    clean, field_errors = customer_fields.validate_customer(customer, modes, today=now.date())
    errors: dict[str, list[dict]] = {
        name: [{"code": e.code, "message": e.message(), "params": e.params}]
        for name, e in field_errors.items()
    }
    if not self_service:
        for key in customer:
            if key not in customer_fields.FIELDS:
                errors[f"customer.{str(key)[:40]}"] = error("unknown_field", "Unknown field.")

    components = variant_components(session, variant, language, merchant.default_language)
    quantities = dict(form.get("components") or {})
    if self_service:
        allowed = {c.id for c, _ in components if selectable(c)}
        for key in [k for k in quantities if k not in allowed]:
            errors[f"components.{key}"] = error("unknown_component",
                                                QUANTITY_MESSAGES["unknown_component"])
            del quantities[key]
    selected = None
    try:
        selected = pricing.select_components([p for _, p in components], quantities)
    except pricing.ComponentQuantityError as exc:
        for component_id, problem in exc.errors.items():
            errors[f"components.{component_id}"] = error(
                problem.code, QUANTITY_MESSAGES[problem.code], **problem.params)

    coupon_row = None
    code = form.get("coupon_code")
    if code not in (None, ""):
        if self_service and not stored.get("ask_coupon"):
            errors["coupon_code"] = error("not_accepted", COUPON_MESSAGES["not_accepted"])
        else:
            coupon_row = coupon_by_code(session, merchant.id, code)
            try:
                pricing.check_coupon(as_pricing_coupon(coupon_row), code, now,
                                     currency=variant.currency)
            except pricing.CouponError as exc:
                errors["coupon_code"] = error(exc.code, COUPON_MESSAGES[exc.code])
                coupon_row = None

    if self_service:
        accepted = set(form.get("accepted_terms") or [])
        for index, line in enumerate(stored.get("terms") or []):
            if line.get("confirmation") and index not in accepted:
                errors[f"terms.{index}"] = error("must_accept", "Please confirm this.")

    treatment = tax_treatment(merchant, clean)
    if selected is None:
        return Priced(clean, errors, None, coupon_row, components, language)
    order_price = pricing.price_order(variant_price(variant), selected,
                                      as_pricing_coupon(coupon_row), treatment)
    return Priced(clean, errors, order_price, coupon_row, components, language)


def tax_treatment(merchant: Merchant, customer: dict) -> tax.TaxTreatment:
    """EU VAT by the customer's country (the merchant's until one is entered). A merchant
    outside the EU gets no VAT computed (Portico computes EU VAT only)."""
    country = customer.get("country") or merchant.country
    try:
        return tax.tax_treatment(merchant.country, country, customer.get("vat_id"))
    except ValueError:
        return tax.TaxTreatment(rate=Decimal("0"), category="O", reverse_charge=False,
                                country=country)


def preview(session: Session, merchant: Merchant, variant: PlanVariant, form: dict,
            now: dt.datetime, *, self_service: bool) -> dict:
    priced = price(session, merchant, variant, form, now, self_service=self_service)
    return {"price": priced.price_dict(), "errors": priced.errors}


def submit(db: UnitOfWork, merchant: Merchant, variant: PlanVariant, form: dict,
           now: dt.datetime, *, self_service: bool) -> dict:
    """Store the order and stage ``OrderSubmitted``; raise ``InvalidInput`` and store nothing
    when anything is wrong."""
    priced = price(db.session, merchant, variant, form, now, self_service=self_service)
    errors = dict(priced.errors)
    quoted = form.get("quoted_price")
    priced_dict = priced.price_dict()
    if not errors and quoted and priced_dict is not None and quoted != priced_dict[
            "fingerprint"]:
        errors["_form"] = error("price_changed", "The price has changed. Please check the "
                                                 "updated order and submit it again.")
    if errors:
        raise InvalidInput("the order has invalid fields", errors)
    order_price, coupon_row, language = priced.price, priced.coupon, priced.language
    if coupon_row is not None:
        # conditional increment: two last redemptions racing cannot both succeed
        bumped = db.session.execute(
            update(Coupon).where(Coupon.id == coupon_row.id,
                                 (Coupon.max_redemptions.is_(None))
                                 | (Coupon.redemptions < Coupon.max_redemptions))
            .values(redemptions=Coupon.redemptions + 1))
        if bumped.rowcount != 1:
            raise InvalidInput("coupon used up", {"coupon_code": error(
                "used_up", COUPON_MESSAGES["used_up"])})
    order_id, contract_id, customer_id = new_id("ord"), new_id("ct"), new_id("cus")
    customer = {k: v for k, v in priced.customer.items() if v is not None}
    customer["language"] = language
    external_id = form.get("external_id") or None
    db.session.connection().execute(_INSERT_ORDER, {
        "id": order_id, "merchant_id": merchant.id, "plan_variant_id": variant.id,
        "contract_id": contract_id, "customer_id": customer_id, "customer": customer,
        "lines": priced_dict, "language": language, "external_id": external_id,
        "coupon_code": coupon_row.code if coupon_row else None, "created_at": utcnow()})
    quantities = {line.component_id: line.quantity for line in order_price.lines
                  if line.kind == "component"}
    payload = {
        "order_id": order_id, "contract_id": contract_id, "customer_id": customer_id,
        "plan_id": variant.plan_id, "plan_variant_id": variant.id,
        "plan_name": localized(variant.name, language, merchant.default_language),
        "currency": variant.currency,
        "customer": _event_customer(customer),
        "components": [
            {"component_id": p.id, "name": p.name, "kind": p.kind,
             "quantity": quantities[p.id], "unit_price": p.unit_price}
            for _, p in priced.components if p.id in quantities],
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
        "external_id": external_id, "language": language, "submitted_at": now,
    }
    db.add_event(events.new_event("OrderSubmitted", merchant_id=merchant.id,
                                  aggregate_id=contract_id, payload=payload, occurred_at=now))
    return {"order_id": order_id, "contract_id": contract_id, "customer_id": customer_id,
            "price": priced_dict}


# built once: the order POST is the signup page's hot path (a Core insert on the session's
# connection: neither an ORM flush nor the ORM execute layer)
_INSERT_ORDER = Order.__table__.insert()


def _event_customer(customer: dict) -> dict:
    out = dict(customer)
    if out.get("birth_date"):
        out["birth_date"] = dt.date.fromisoformat(out["birth_date"])
    return out


def get_order(session: Session, merchant_id: str, order_id: str) -> Order:
    from .catalog import _scoped
    return _scoped(session, Order, merchant_id, order_id, "order")


def order_view(order: Order) -> dict:
    return {"order_id": order.id, "contract_id": order.contract_id,
            "customer_id": order.customer_id, "plan_variant_id": order.plan_variant_id,
            "customer": order.customer, "price": order.lines, "language": order.language,
            "external_id": order.external_id, "coupon_code": order.coupon_code,
            "created_at": order.created_at.isoformat()}
