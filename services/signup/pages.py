"""What the hosted signup page shows: one RPC answer with everything the gateway renders.

The page is built from the merchant's resolved settings, the plan variant and its components,
and a server-side preview of the order as currently filled in, so a ``GET``, a no-JavaScript
"preview" submit and a failed submit each cost the gateway exactly one RPC.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from services.common import customer_fields, money
from services.common.errors import InvalidInput

from . import orders
from . import settings as merchant_settings
from .catalog import localized
from .models import Merchant, Plan, PlanVariant


def parse_page_form(raw) -> tuple[dict, dict]:
    """Parse a form from the hosted page; a bad top-level entry is dropped and reported, so a
    tampered field never hides the rest of the page."""
    raw = dict(raw) if isinstance(raw, dict) else {}
    errors: dict = {}
    for _ in range(len(raw) + 1):
        try:
            return orders.parse_form(raw), errors
        except InvalidInput as exc:
            errors.update(exc.fields)
            bad = {name.split(".", 1)[0] for name in exc.fields}
            if not bad & set(raw):
                break
            raw = {k: v for k, v in raw.items() if k not in bad}
    return orders.parse_form({}), errors


def signup_page(session: Session, merchant: Merchant, variant: PlanVariant, language: str,
                form: dict, now: dt.datetime, form_errors: dict | None = None,
                public_url: str = "", plan: Plan | None = None) -> dict:
    resolved = merchant_settings.page_view(merchant, public_url)
    default = merchant.default_language
    plan = plan or session.get(Plan, variant.plan_id)
    form = {**form, "language": language}
    priced = orders.price(session, merchant, variant, form, now, self_service=True)
    currency = variant.currency
    components, metered = [], []
    for row, price in priced.components:
        if row.kind == "metered":
            if row.show_as_price_information:
                metered.append({"id": row.id, "name": price.name,
                                "unit_price": str(price.unit_price)})
        elif orders.selectable(row):
            components.append({
                "id": row.id, "name": price.name, "kind": row.kind,
                "unit_price": str(price.unit_price), "min_quantity": row.min_quantity,
                "max_quantity": row.max_quantity,
                "show_price": row.show_as_price_information})
    return {
        "merchant": {**resolved["merchant"], "default_language": default},
        "language": language,
        "settings": resolved,
        "fields": resolved["fields"],
        "dispatch_choices": list(customer_fields.dispatch_choices(resolved["fields"])),
        "plan": {"id": variant.plan_id,
                 "name": localized(plan.name, language, default) if plan else "",
                 "description": localized(plan.description, language, default)
                 if plan else ""},
        "plan_name": localized(variant.name, language, default),
        "variant": {
            "id": variant.id, "currency": currency,
            "recurring_fee": str(money.from_minor(variant.recurring_fee_minor, currency)),
            "setup_fee": str(money.from_minor(variant.setup_fee_minor, currency)),
            "billing_period_months": variant.billing_period_months,
            "trial_days": variant.trial_days, "notice_period": variant.notice_period,
            "minimum_term": variant.minimum_term,
            "trial_ends_on": (now + dt.timedelta(days=variant.trial_days)).date().isoformat()
            if variant.trial_days else None},
        "components": components,
        "metered": metered,
        "form": {"customer": form.get("customer") or {},
                 "components": form.get("components") or {},
                 "coupon_code": form.get("coupon_code"),
                 "accepted_terms": sorted(form.get("accepted_terms") or []),
                 "external_id": form.get("external_id")},
        "preview": {"price": priced.price_dict(),
                    "errors": {**priced.errors, **(form_errors or {})}},
    }
