"""What crosses the signup service's RPC boundary, as marshmallow schemas."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from services.common import customer_fields, money
from services.common.errors import InvalidInput

from .catalog import localized

LANGUAGE = validate.OneOf(["en", "de", "fr"])
Translations = lambda **kw: fields.Dict(  # noqa: E731
    keys=fields.String(validate=LANGUAGE),
    values=fields.String(validate=validate.Length(min=1, max=200)), **kw)


def load(schema: Schema, body) -> dict:
    """Load ``body`` or raise ``InvalidInput`` with marshmallow's per-field messages."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", {"_body": [
            {"code": "invalid", "message": "The body must be a JSON object."}]})
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise InvalidInput("invalid fields", {
            name: [{"code": "invalid", "message": str(m)} for m in _flatten(msgs)]
            for name, msgs in exc.normalized_messages().items()}) from None


def _flatten(messages):
    if isinstance(messages, dict):
        for value in messages.values():
            yield from _flatten(value)
    elif isinstance(messages, list):
        for value in messages:
            yield from _flatten(value)
    else:
        yield messages


class Strict(Schema):
    class Meta:
        unknown = EXCLUDE


class MerchantCreate(Strict):
    slug = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{1,62}$"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    country = fields.String(load_default="DE", validate=validate.Regexp(r"^[A-Z]{2}$"))
    default_language = fields.String(load_default="en", validate=LANGUAGE)


class Merchant(Schema):
    id = fields.String()
    slug = fields.String()
    name = fields.String()
    country = fields.String()
    default_language = fields.String()
    public_key = fields.String()
    settings = fields.Dict()


class PlanCreate(Strict):
    name = Translations(required=True, validate=validate.Length(min=1))
    description = Translations(load_default=dict)


class Plan(Schema):
    id = fields.String()
    name = fields.Dict()
    description = fields.Dict()


class DurationSchema(Strict):
    value = fields.Integer(required=True, validate=validate.Range(min=0, max=120))
    unit = fields.String(required=True, validate=validate.OneOf(["day", "week", "month"]))


class PlanVariantCreate(Strict):
    plan_id = fields.String(required=True)
    name = Translations(required=True, validate=validate.Length(min=1))
    currency = fields.String(required=True, validate=validate.OneOf(sorted(money._KNOWN)))
    recurring_fee = fields.Decimal(required=True, places=None,
                                   validate=validate.Range(min=0, max=10**9))
    setup_fee = fields.Decimal(load_default=0, validate=validate.Range(min=0, max=10**9))
    billing_period_months = fields.Integer(load_default=1, validate=validate.Range(min=1, max=60))
    trial_days = fields.Integer(load_default=0, validate=validate.Range(min=0, max=365))
    notice_period = fields.Nested(DurationSchema, load_default=lambda: {"value": 1,
                                                                        "unit": "month"})
    minimum_term = fields.Nested(DurationSchema, allow_none=True, load_default=None)
    allow_self_service = fields.Boolean(load_default=True)
    component_ids = fields.List(fields.String(), load_default=list)


class PlanVariant(Schema):
    id = fields.String()
    plan_id = fields.String()
    name = fields.Dict()
    currency = fields.String()
    recurring_fee = fields.Method("_recurring")
    setup_fee = fields.Method("_setup")
    billing_period_months = fields.Integer()
    trial_days = fields.Integer()
    notice_period = fields.Dict()
    minimum_term = fields.Dict(allow_none=True)
    allow_self_service = fields.Boolean()
    component_ids = fields.List(fields.String())

    def _recurring(self, v):
        return str(money.from_minor(v.recurring_fee_minor, v.currency))

    def _setup(self, v):
        return str(money.from_minor(v.setup_fee_minor, v.currency))


def form(raw) -> dict:
    """Normalise a submitted order form (from the page or the API) without trusting it."""
    if not isinstance(raw, dict):
        raise InvalidInput("the order must be a JSON object", {"_body": [
            {"code": "invalid", "message": "The order must be a JSON object."}]})
    return {
        "customer": raw.get("customer") if isinstance(raw.get("customer"), dict) else {},
        "components": raw.get("components", {}),
        "coupon_code": raw.get("coupon_code"),
        "accepted_terms": raw.get("accepted_terms") if isinstance(raw.get("accepted_terms"),
                                                                  list) else [],
        "external_id": raw.get("external_id"),
        "language": raw.get("language"),
    }


def signup_page(session, merchant, variant, language: str) -> dict:
    """Everything the gateway needs to render the hosted signup page."""
    from .orders import variant_components

    settings = merchant.settings or {}
    return {
        "merchant": {"id": merchant.id, "slug": merchant.slug, "name": merchant.name,
                     "default_language": merchant.default_language},
        "variant": PlanVariant().dump(variant),
        "plan_name": localized(variant.name, language, merchant.default_language),
        "fields": customer_fields.resolve_modes(settings.get("fields", {})),
        "components": [{"id": c.id, "name": c.name, "kind": c.kind,
                        "unit_price": str(c.unit_price), "min_quantity": c.min_quantity,
                        "max_quantity": c.max_quantity}
                       for c in variant_components(session, variant, language)],
        "ask_coupon": bool(settings.get("ask_coupon", False)),
        "terms": settings.get("terms", []),
        "texts": settings.get("texts", {}),
        "styling": settings.get("styling", {}),
        "success_url": settings.get("success_url"),
    }
