"""What crosses the notifications RPC boundary: request bodies and list filters."""
from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from services.common.errors import InvalidInput

from . import templates, webhooks


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class WebhookEndpointCreate(_Strict):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2048))
    event_types = fields.List(fields.String(validate=validate.OneOf(webhooks.MERCHANT_VISIBLE)),
                              allow_none=True, load_default=None,
                              validate=validate.Length(max=len(webhooks.MERCHANT_VISIBLE)))
    description = fields.String(load_default="", validate=validate.Length(max=500))


class WebhookEndpointUpdate(_Strict):
    url = fields.String(validate=validate.Length(min=1, max=2048))
    event_types = fields.List(fields.String(validate=validate.OneOf(webhooks.MERCHANT_VISIBLE)),
                              allow_none=True)
    description = fields.String(validate=validate.Length(max=500))
    enabled = fields.Boolean()


class EmailTemplateBody(_Strict):
    subject = fields.String(required=True)
    text = fields.String(required=True)
    html = fields.String(required=True)


class Page(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class WebhookDeliveryFilter(Page):
    endpoint_id = fields.String(load_default=None, validate=validate.Length(max=40))
    event_id = fields.String(load_default=None, validate=validate.Length(max=36))
    status = fields.String(load_default=None, validate=validate.OneOf(
        ["pending", "succeeded", "failed", "cancelled"]))


class MailLogFilter(Page):
    contract_id = fields.String(load_default=None, validate=validate.Length(max=40))
    kind = fields.String(load_default=None, validate=validate.OneOf(templates.KINDS))
    status = fields.String(load_default=None, validate=validate.OneOf(
        ["queued", "retrying", "sent", "failed", "skipped"]))


class PortalLinkEmailRequest(_Strict):
    contract_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    language = fields.String(load_default=None, allow_none=True,
                             validate=validate.OneOf(templates.LANGUAGES))


# -- what the API answers (OpenAPI documentation) ----------------------------------------------
class WebhookEndpointView(Schema):
    id = fields.String(metadata={"example": "we_4f1c…"})
    url = fields.String(metadata={"example": "https://erp.example.com/portico"})
    description = fields.String()
    event_types = fields.List(fields.String(), allow_none=True,
                              metadata={"description": "null: every merchant-visible type"})
    enabled = fields.Boolean()
    disabled_reason = fields.String(allow_none=True)
    disabled_at = fields.DateTime(allow_none=True)
    failing_since = fields.DateTime(allow_none=True)
    previous_secret_expires_at = fields.DateTime(
        allow_none=True, metadata={"description": "until then deliveries carry a second "
                                                  "signature made with the previous secret"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class WebhookEndpointCreated(WebhookEndpointView):
    secret = fields.String(metadata={"example": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})


class WebhookEndpointList(Schema):
    items = fields.List(fields.Nested(WebhookEndpointView))


class WebhookSecret(Schema):
    id = fields.String()
    secret = fields.String()
    previous_secret_expires_at = fields.DateTime()


class WebhookAttemptView(Schema):
    number = fields.Integer()
    attempted_at = fields.DateTime()
    status_code = fields.Integer(allow_none=True)
    latency_ms = fields.Integer()
    error = fields.String(allow_none=True)


class WebhookDeliveryView(Schema):
    id = fields.String()
    endpoint_id = fields.String()
    event_id = fields.String(metadata={"description": "also the webhook-id header"})
    event_type = fields.String()
    replay = fields.Integer(metadata={"description": "0 for the original, 1, 2, … for replays"})
    status = fields.String(metadata={"enum": ["pending", "succeeded", "failed", "cancelled"]})
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)
    attempt_log = fields.List(fields.Nested(WebhookAttemptView),
                              metadata={"description": "only when fetching one delivery"})


class WebhookDeliveryPage(Schema):
    items = fields.List(fields.Nested(WebhookDeliveryView))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class EmailTemplateView(Schema):
    kind = fields.String(metadata={"enum": list(templates.KINDS)})
    language = fields.String(metadata={"enum": list(templates.LANGUAGES)})
    custom = fields.Boolean(metadata={"description": "false: the built-in template"})
    subject = fields.String()
    text = fields.String()
    html = fields.String()
    placeholders = fields.List(fields.String())


class EmailTemplateSummary(Schema):
    kind = fields.String()
    language = fields.String()
    custom = fields.Boolean()
    updated_at = fields.DateTime(allow_none=True)


class EmailTemplateList(Schema):
    items = fields.List(fields.Nested(EmailTemplateSummary))


class MailLogEntry(Schema):
    id = fields.String()
    kind = fields.String(metadata={"enum": list(templates.KINDS)})
    status = fields.String(metadata={"enum": ["queued", "retrying", "sent", "failed",
                                              "skipped"]})
    recipient = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    message_id = fields.String()
    contract_id = fields.String(allow_none=True)
    document_id = fields.String(allow_none=True)
    cause_event_id = fields.String(allow_none=True)
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)


class MailLogPage(Schema):
    items = fields.List(fields.Nested(MailLogEntry))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


def _field_errors(messages) -> dict:
    errors = {}
    if not isinstance(messages, dict):
        return {"_schema": [{"code": "invalid", "message": str(messages)}]}
    for field, problems in messages.items():
        if isinstance(problems, dict):  # nested (e.g. a list item): flatten with its index
            for sub, sub_problems in _field_errors(problems).items():
                errors[f"{field}.{sub}"] = sub_problems
            continue
        items = problems if isinstance(problems, list) else [problems]
        errors[field] = [{"code": "unknown_field" if str(m) == "Unknown field." else "invalid",
                          "message": str(m)} for m in items]
    return errors


def load(schema: type[Schema], data) -> dict:
    """Load ``data`` or raise ``InvalidInput`` with per-field errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object.",
                           {"_schema": [{"code": "invalid", "message": "Expected an object."}]})
    try:
        return schema().load(data)
    except ValidationError as exc:
        raise InvalidInput("Please correct the marked fields.",
                           _field_errors(exc.messages)) from None
