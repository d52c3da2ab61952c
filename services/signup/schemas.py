"""What crosses the signup service's boundary (RPC and the merchant REST API), as marshmallow.

The same schemas validate request bodies here and describe the API in the gateway's OpenAPI
document (``gateway/openapi.py``), so the two cannot drift. This module imports no database
code: the gateway imports it for the documentation only.

Errors come back as ``InvalidInput`` with dotted field paths (``styling.button``,
``terms.2.text.de``) and a stable ``code`` per message: our own validators raise
:class:`Coded` messages; marshmallow's built-in messages are mapped by :data:`BUILTIN_CODES`.
"""
from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from services.common import customer_fields, money
from services.common.errors import InvalidInput

LANGUAGES = ("en", "de", "fr")
LANGUAGE = validate.OneOf(LANGUAGES)
MAX_AMOUNT = Decimal(10**9)


class Coded(str):
    """A validation message that carries a stable ``code`` and its ``params``."""

    code: str
    params: dict

    def __new__(cls, code: str, message: str, **params):
        text = super().__new__(cls, message.format(**params) if params else message)
        text.code = code
        text.params = params
        return text


def invalid(code: str, message: str, **params) -> ValidationError:
    return ValidationError(Coded(code, message, **params))


BUILTIN_CODES = {
    "Missing data for required field.": "required",
    "Unknown field.": "unknown_field",
    "Field may not be null.": "null",
    "Not a valid string.": "not_a_string",
    "Not a valid integer.": "not_an_integer",
    "Not a valid boolean.": "not_a_boolean",
    "Not a valid mapping type.": "not_an_object",
    "Invalid input type.": "not_an_object",
    "Not a valid list.": "not_a_list",
    "Not a valid datetime.": "invalid_datetime",
    "Not a valid aware datetime.": "invalid_datetime",
    "Not a valid number.": "not_a_number",
}


def _code_of(message) -> str:
    code = getattr(message, "code", None)
    if code:
        return code
    text = str(message)
    if text.startswith("Must be one of"):
        return "invalid_choice"
    if text.startswith(("Longer than", "Shorter than", "Length must")):
        return "invalid_length"
    return BUILTIN_CODES.get(text, "invalid")


def field_errors(messages, prefix: str = "") -> dict[str, list[dict]]:
    """marshmallow's nested messages → ``{"a.b": [{"code", "message", "params"}]}``."""
    out: dict[str, list[dict]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = str(key) if key != "_schema" else ""
            if name == "value" and prefix:  # Dict values: the path is the key itself
                name = ""
            path = ".".join(p for p in (prefix, name) if p) or "_body"
            for sub, errors in field_errors(value, path).items():
                out.setdefault(sub, []).extend(errors)
    elif isinstance(messages, list):
        for message in messages:
            if isinstance(message, (dict, list)):
                for sub, errors in field_errors(message, prefix).items():
                    out.setdefault(sub, []).extend(errors)
            else:
                out.setdefault(prefix or "_body", []).append({
                    "code": _code_of(message), "message": str(message),
                    "params": dict(getattr(message, "params", {}) or {})})
    else:
        out.setdefault(prefix or "_body", []).append(
            {"code": _code_of(messages), "message": str(messages), "params": {}})
    return out


def load(schema: Schema, body, *, partial: bool = False) -> dict:
    """Load ``body`` or raise ``InvalidInput`` with per-field coded messages."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", {"_body": [
            {"code": "not_an_object", "message": "The body must be a JSON object.",
             "params": {}}]})
    try:
        return schema.load(body, partial=partial)
    except ValidationError as exc:
        raise InvalidInput("invalid fields", field_errors(exc.normalized_messages())) from None


# -- field types ----------------------------------------------------------------------------------

_FORBIDDEN = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(value, *, max_length: int, multiline: bool = False) -> str:
    """Trimmed text without control characters or bidi overrides; raise ``ValidationError``."""
    if not isinstance(value, str):
        raise invalid("not_a_string", "Enter text.")
    value = value.strip()
    allowed = {"\n"} if multiline else set()
    if any(ch in _FORBIDDEN or (unicodedata.category(ch) in ("Cc", "Cs") and ch not in allowed)
           for ch in value):
        raise invalid("invalid_characters", "This text contains characters that are not "
                                            "allowed.")
    if len(value) > max_length:
        raise invalid("too_long", "At most {max} characters.", max=max_length)
    return value


class Text(fields.Field):
    """One line of merchant-authored text (trimmed, no control characters)."""

    def __init__(self, max_length: int = 200, *, multiline: bool = False, min_length: int = 1,
                 **kwargs):
        super().__init__(**kwargs)
        self.max_length, self.multiline, self.min_length = max_length, multiline, min_length
        self.metadata.setdefault("maxLength", max_length)

    def _deserialize(self, value, attr, data, **kwargs):
        value = clean_text(value, max_length=self.max_length, multiline=self.multiline)
        if len(value) < self.min_length:
            raise invalid("required", "This field is required.")
        return value

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class Translations(fields.Field):
    """``{"en": "…", "de": "…"}``: one text per language (en, de, fr); empty ones are dropped."""

    def __init__(self, max_length: int = 200, *, multiline: bool = False,
                 text_validator=None, min_languages: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.max_length, self.multiline = max_length, multiline
        self.text_validator, self.min_languages = text_validator, min_languages
        self.metadata.setdefault("type", "object")
        self.metadata.setdefault("additionalProperties", {"type": "string",
                                                          "maxLength": max_length})
        self.metadata.setdefault("description", "One text per language: en, de, fr.")

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise invalid("not_an_object", 'Use an object such as {"en": "…", "de": "…"}.')
        out, errors = {}, {}
        for language, text in value.items():
            if language not in LANGUAGES:
                errors[str(language)[:10]] = [Coded("unknown_language",
                                                    "Use one of the languages {languages}.",
                                                    languages=", ".join(LANGUAGES))]
                continue
            try:
                text = clean_text(text, max_length=self.max_length, multiline=self.multiline)
                if text and self.text_validator:
                    self.text_validator(text)
            except ValidationError as exc:
                errors[language] = exc.messages
                continue
            if text:
                out[language] = text
        if errors:
            raise ValidationError(errors)
        if len(out) < self.min_languages:
            raise invalid("required", "Enter the text in at least one language.")
        return out

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class StrictInteger(fields.Integer):
    """An integer that refuses booleans, strings and floats (JSON has no reason to send them)."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid("not_an_integer", "Enter a whole number.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """``true`` or ``false``, nothing else (no ``"yes"``, no ``1``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise invalid("not_a_boolean", "Use true or false.")
        return value


class Amount(fields.Field):
    """Money as a decimal string (``"29.90"``); JSON numbers are taken by their shortest text.
    Serialised as a string, never a float."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.metadata.setdefault("type", "string")
        self.metadata.setdefault("pattern", r"^\d+(\.\d+)?$")
        self.metadata.setdefault("example", "29.90")

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise invalid("not_an_amount", 'Enter an amount such as "29.90".')
        text = repr(value) if isinstance(value, float) else str(value).strip()
        if len(text) > 32 or not re.fullmatch(r"\d+(\.\d+)?", text):
            raise invalid("not_an_amount", 'Enter an amount such as "29.90".')
        try:
            amount = Decimal(text)
        except InvalidOperation:  # pragma: no cover  (the pattern already excludes this)
            raise invalid("not_an_amount", 'Enter an amount such as "29.90".') from None
        if amount > MAX_AMOUNT:
            raise invalid("out_of_range", "At most {max}.", max=str(MAX_AMOUNT))
        return amount

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format(value, "f")


REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
Ref = lambda **kw: fields.String(  # noqa: E731
    validate=validate.Regexp(REF_PATTERN, error=Coded(
        "invalid_ref", "Use up to 64 letters, digits, '.', '_' or '-'.")),
    metadata={"description": "Your own stable key for this object (catalog import upserts by "
                             "it); unique per merchant."}, **kw)


class Strict(Schema):
    """Request bodies: unknown fields are refused, so a typo never passes silently."""

    class Meta:
        unknown = RAISE


class Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


# -- merchants ------------------------------------------------------------------------------------

class MerchantCreate(Lenient):
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


# -- catalog --------------------------------------------------------------------------------------

class List(Schema):
    """A page of a list: ``{"data": [...], "has_more": false}``."""

    has_more = fields.Boolean()


def page_of(item_schema) -> type[Schema]:
    return type(f"{item_schema.__name__}List", (List,), {
        "data": fields.List(fields.Nested(item_schema))})


class PlanCreate(Strict):
    ref = Ref(allow_none=True)
    name = Translations(required=True, min_languages=1)
    description = Translations(max_length=2000, multiline=True, load_default=dict)


class PlanUpdate(Strict):
    ref = Ref(allow_none=True)
    name = Translations(min_languages=1)
    description = Translations(max_length=2000, multiline=True)


class Plan(Schema):
    id = fields.String(metadata={"example": "plan_0f8c…"})
    ref = fields.String(allow_none=True)
    name = fields.Dict(keys=fields.String(), values=fields.String())
    description = fields.Dict(keys=fields.String(), values=fields.String())
    created_at = fields.AwareDateTime()


class DurationSchema(Strict):
    value = StrictInteger(required=True, validate=validate.Range(min=0, max=120))
    unit = fields.String(required=True, validate=validate.OneOf(["day", "week", "month"]))


BILLING_PERIODS = {"monthly": 1, "quarterly": 3, "half-yearly": 6, "yearly": 12}
CURRENCY = validate.OneOf(sorted(money._KNOWN), error=Coded(
    "unknown_currency", "Use an ISO 4217 currency code such as EUR."))


def _variant_fields(create: bool) -> dict:
    required = {"required": True} if create else {}
    return {
        "ref": Ref(allow_none=True),
        "name": Translations(min_languages=1, **required),
        "recurring_fee": Amount(**required),
        "setup_fee": Amount(**({"load_default": Decimal(0)} if create else {})),
        "billing_period": fields.String(
            validate=validate.OneOf(list(BILLING_PERIODS)),
            metadata={"description": "monthly, quarterly, half-yearly or yearly; or give "
                                     "billing_period_months (1–60) for N months."}),
        "billing_period_months": StrictInteger(validate=validate.Range(min=1, max=60)),
        "trial_days": StrictInteger(validate=validate.Range(min=0, max=365),
                                    **({"load_default": 0} if create else {})),
        "notice_period": fields.Nested(DurationSchema, **(
            {"load_default": lambda: {"value": 1, "unit": "month"}} if create else {})),
        "minimum_term": fields.Nested(DurationSchema, allow_none=True,
                                      **({"load_default": None} if create else {})),
        "allow_self_service": StrictBoolean(**({"load_default": True} if create else {})),
        "component_ids": fields.List(fields.String(validate=validate.Length(max=40)),
                                     validate=validate.Length(max=50),
                                     **({"load_default": list} if create else {})),
    }


PlanVariantCreate = Strict.from_dict({
    "plan_id": fields.String(required=True),
    "currency": fields.String(required=True, validate=CURRENCY),
    **_variant_fields(create=True)}, name="PlanVariantCreate")
PlanVariantUpdate = Strict.from_dict(_variant_fields(create=False), name="PlanVariantUpdate")


class PlanVariant(Schema):
    id = fields.String(metadata={"example": "pv_3a1b…"})
    ref = fields.String(allow_none=True)
    plan_id = fields.String()
    name = fields.Dict(keys=fields.String(), values=fields.String())
    currency = fields.String()
    recurring_fee = fields.Method("_recurring", metadata={"type": "string"})
    setup_fee = fields.Method("_setup", metadata={"type": "string"})
    billing_period_months = fields.Integer()
    trial_days = fields.Integer()
    notice_period = fields.Dict()
    minimum_term = fields.Dict(allow_none=True)
    allow_self_service = fields.Boolean()
    component_ids = fields.List(fields.String())
    created_at = fields.AwareDateTime()

    def _recurring(self, v):
        return str(money.from_minor(v.recurring_fee_minor, v.currency))

    def _setup(self, v):
        return str(money.from_minor(v.setup_fee_minor, v.currency))


COMPONENT_KINDS = ("quantity", "onoff", "metered")


def _component_fields(create: bool) -> dict:
    required = {"required": True} if create else {}
    default = (lambda value: {"load_default": value}) if create else (lambda value: {})
    return {
        "ref": Ref(allow_none=True),
        "name": Translations(min_languages=1, **required),
        "unit_price": Amount(**required),
        "min_quantity": StrictInteger(validate=validate.Range(min=0, max=1_000_000),
                                      **default(0)),
        "max_quantity": StrictInteger(allow_none=True,
                                      validate=validate.Range(min=1, max=1_000_000),
                                      **default(None)),
        "show_in_signup": StrictBoolean(**default(True)),
        "show_as_price_information": StrictBoolean(**default(True)),
    }


ComponentCreate = Strict.from_dict({
    "kind": fields.String(required=True, validate=validate.OneOf(COMPONENT_KINDS)),
    "currency": fields.String(required=True, validate=CURRENCY),
    **_component_fields(create=True)}, name="ComponentCreate")
ComponentUpdate = Strict.from_dict(_component_fields(create=False), name="ComponentUpdate")


class Component(Schema):
    id = fields.String(metadata={"example": "comp_91d2…"})
    ref = fields.String(allow_none=True)
    name = fields.Dict(keys=fields.String(), values=fields.String())
    kind = fields.String()
    currency = fields.String()
    unit_price = fields.Method("_unit_price", metadata={"type": "string"})
    min_quantity = fields.Integer()
    max_quantity = fields.Integer(allow_none=True)
    show_in_signup = fields.Boolean()
    show_as_price_information = fields.Boolean()
    created_at = fields.AwareDateTime()

    def _unit_price(self, c):
        return str(money.from_minor(c.unit_price_minor, c.currency))


def _coupon_fields(create: bool) -> dict:
    default = (lambda value: {"load_default": value}) if create else (lambda value: {})
    return {
        "kind": fields.String(validate=validate.OneOf(["percent", "fixed"]),
                              **({"required": True} if create else {})),
        "value": Amount(**({"required": True} if create else {}), metadata={
            "description": "Percent (0 < value ≤ 100) or an amount in `currency`."}),
        "currency": fields.String(allow_none=True, validate=CURRENCY, **default(None)),
        "periods": StrictInteger(allow_none=True, validate=validate.Range(min=1, max=120),
                                 metadata={"description": "Billing periods the discount "
                                                          "lasts; null: forever."},
                                 **default(None)),
        "valid_from": fields.AwareDateTime(allow_none=True, **default(None)),
        "valid_to": fields.AwareDateTime(allow_none=True, **default(None)),
        "max_redemptions": StrictInteger(allow_none=True,
                                         validate=validate.Range(min=1, max=10**9),
                                         **default(None)),
    }


CouponCreate = Strict.from_dict({
    "code": fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9_-]{1,64}$", error=Coded(
            "invalid_code", "Use up to 64 letters, digits, '_' or '-'."))),
    **_coupon_fields(create=True)}, name="CouponCreate")
CouponUpdate = Strict.from_dict(_coupon_fields(create=False), name="CouponUpdate")


class Coupon(Schema):
    id = fields.String(metadata={"example": "cpn_5e0a…"})
    code = fields.String()
    kind = fields.String()
    value = fields.String()
    currency = fields.String(allow_none=True)
    periods = fields.Integer(allow_none=True)
    valid_from = fields.AwareDateTime(allow_none=True)
    valid_to = fields.AwareDateTime(allow_none=True)
    max_redemptions = fields.Integer(allow_none=True)
    redemptions = fields.Integer()
    created_at = fields.AwareDateTime()


# -- self-service settings ------------------------------------------------------------------------

TEXT_KEYS: dict[str, int] = {
    "page_title": 200, "title": 200, "order_heading": 200, "customer_heading": 200,
    "payment_heading": 200, "usage_prices_heading": 200, "usage_prices_description": 1000,
}
URL_KEYS = ("success", "error", "tac", "dpp", "withdrawal")
COLOUR_KEYS = ("page_title", "page_background", "section_header_background",
               "section_header_text", "content_background", "discount_text", "button",
               "button_text", "action_button", "action_button_text", "border")
BORDER_WIDTH = (0, 8)
BORDER_RADIUS = (0, 24)
TOKEN_VALIDITY = (1, 10080)
MAX_TERMS = 5
PLACEHOLDERS = ("tac", "dpp", "withdrawal")
MAX_ORIGINS = 10
MAX_HOSTS = 10

_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def check_placeholders(text: str) -> None:
    """Only ``{tac}``, ``{dpp}`` and ``{withdrawal}``; any other brace is refused."""
    for name in _PLACEHOLDER.findall(text):
        if name not in PLACEHOLDERS:
            raise invalid("unknown_placeholder", "Unknown placeholder {{{placeholder}}}; use "
                          "{{tac}}, {{dpp}} or {{withdrawal}}.", placeholder=name[:20])
    if "{" in _PLACEHOLDER.sub("", text) or "}" in _PLACEHOLDER.sub("", text):
        raise invalid("invalid_braces", "Braces are only allowed around {{tac}}, {{dpp}} or "
                      "{{withdrawal}}.")


def normal_host(value) -> str:
    """A host name as browsers compare it: lower-case, IDNA (``bücher.de`` → ``xn--…``)."""
    if not isinstance(value, str):
        raise invalid("not_a_string", "Enter text.")
    host = value.strip().lower().rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise invalid("invalid_host", "Enter a host name such as shop.example.com (no "
                                      "scheme, port, path or wildcard).") from None
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_HOST_LABEL.fullmatch(p) for p in labels) \
            or labels[-1].isdigit():
        raise invalid("invalid_host", "Enter a host name such as shop.example.com (no scheme, "
                                      "port, path or wildcard).")
    return host


def check_https_url(value) -> str:
    """An absolute ``https://`` URL with a host and no credentials, trimmed."""
    if not isinstance(value, str):
        raise invalid("not_a_string", "Enter text.")
    url = value.strip()
    message = "Enter an https:// URL."
    if len(url) > 2000:
        raise invalid("too_long", "At most {max} characters.", max=2000)
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" or ch == "\\" for ch in url):
        raise invalid("invalid_url", message)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a bad port
    except ValueError:
        raise invalid("invalid_url", message) from None
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        raise invalid("invalid_url", message)
    normal_host(parts.hostname)
    del port
    return url


def url_host(url: str) -> str:
    return normal_host(urlsplit(url).hostname or "")


class Colour(fields.Field):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.metadata.setdefault("type", "string")
        self.metadata.setdefault("pattern", "^#[0-9A-Fa-f]{6}$")
        self.metadata.setdefault("example", "#1F6FEB")

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _COLOUR.fullmatch(value):
            raise invalid("invalid_colour", "Use a colour written #RRGGBB, e.g. #1F6FEB.")
        return value.upper()


class HttpsUrl(fields.Field):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.metadata.setdefault("type", "string")
        self.metadata.setdefault("format", "uri")

    def _deserialize(self, value, attr, data, **kwargs):
        return check_https_url(value)


class Host(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        return normal_host(value)


class Origin(fields.Field):
    """``'self'`` or an https origin (``https://shop.example.com[:port]``, no path)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value == "'self'":
            return value
        message = "Use 'self' or an origin such as https://shop.example.com (no path)."
        if not isinstance(value, str):
            raise invalid("invalid_origin", message)
        text = value.strip().rstrip("/")
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise invalid("invalid_origin", message) from None
        if parts.scheme != "https" or not parts.hostname or parts.path or parts.query \
                or parts.fragment or "@" in parts.netloc:
            raise invalid("invalid_origin", message)
        try:
            host = normal_host(parts.hostname)
        except ValidationError:
            raise invalid("invalid_origin", message) from None
        return f"https://{host}" + (f":{port}" if port else "")


def _range(low: int, high: int, unit: str = ""):
    suffix = f" {unit}" if unit else ""
    return validate.Range(min=low, max=high, error=Coded(
        "out_of_range", f"Must be between {{min}} and {{max}}{suffix}.", min=low, max=high))


Texts = Strict.from_dict({
    key: Translations(max_length=limit, multiline=key.endswith("description"), allow_none=True)
    for key, limit in TEXT_KEYS.items()}, name="Texts")


class Urls(Strict):
    success = HttpsUrl(allow_none=True, metadata={
        "description": "After a successful order; Portico appends contractId. Its host must "
                       "be in embedding.redirect_hosts."})
    error = HttpsUrl(allow_none=True, metadata={
        "description": "Where the customer goes when an order cannot be placed for a technical "
                       "reason. Its host must be in embedding.redirect_hosts."})
    tac = HttpsUrl(allow_none=True, metadata={"description": "Terms and conditions: {tac}"})
    dpp = HttpsUrl(allow_none=True, metadata={"description": "Data protection: {dpp}"})
    withdrawal = HttpsUrl(allow_none=True, metadata={
        "description": "Withdrawal instructions: {withdrawal}"})


class TermLine(Strict):
    text = Translations(max_length=500, required=True, min_languages=1,
                        text_validator=check_placeholders)
    confirmation = StrictBoolean(load_default=False, metadata={
        "description": "A mandatory checkbox the customer must tick."})


Styling = Strict.from_dict({
    **{key: Colour(allow_none=True) for key in COLOUR_KEYS},
    "border_width": StrictInteger(allow_none=True, validate=_range(*BORDER_WIDTH, "pixels")),
    "border_radius": StrictInteger(allow_none=True, validate=_range(*BORDER_RADIUS, "pixels")),
    "logo_url": fields.String(allow_none=True, metadata={
        "description": "Read-only; upload with PUT /api/v1/settings/self-service/logo."}),
}, name="Styling")


class Embedding(Strict):
    frame_ancestors = fields.List(Origin(), validate=validate.Length(max=MAX_ORIGINS), metadata={
        "description": "Origins allowed to embed the pages in an iframe (CSP frame-ancestors)."
                       " Default ['self']."})
    redirect_hosts = fields.List(Host(), validate=validate.Length(max=MAX_HOSTS), metadata={
        "description": "Hosts (exact match) the success and error URLs may point to."})


class Section(Strict):
    visible = StrictBoolean()
    heading = Translations(max_length=100)


class EditableSection(Section):
    editable = StrictBoolean()


class ContractSection(Section):
    cancellable = StrictBoolean()


class AdditionalDataField(Strict):
    key = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_]{1,40}$"))
    label = Translations(max_length=100, required=True, min_languages=1)


AdditionalDataSection = Section.from_dict({
    "fields": fields.List(fields.Nested(AdditionalDataField), validate=validate.Length(max=20)),
}, name="AdditionalDataSection")


class PortalSections(Strict):
    customer = fields.Nested(EditableSection)
    payment = fields.Nested(EditableSection)
    contract = fields.Nested(ContractSection)
    account = fields.Nested(Section)
    documents = fields.Nested(Section)
    additional_data = fields.Nested(AdditionalDataSection)


class PortalSettings(Strict):
    sections = fields.Nested(PortalSections)


SelfServiceSettings = Strict.from_dict({
    "default_language": fields.String(validate=LANGUAGE),
    "token_validity_minutes": StrictInteger(
        allow_none=True, validate=_range(*TOKEN_VALIDITY, "minutes"),
        metadata={"description": "Default validity of portal links (1–10080, default 1440)."}),
    "fields": fields.Dict(
        keys=fields.String(validate=validate.OneOf(list(customer_fields.FIELDS))),
        values=fields.String(validate=validate.OneOf(sorted(customer_fields.MODES))),
        allow_none=True,
        metadata={"description": "Customer field → optional | required | hidden."}),
    "ask_coupon": StrictBoolean(allow_none=True),
    "show_external_id": StrictBoolean(allow_none=True),
    "texts": fields.Nested(Texts, allow_none=True),
    "urls": fields.Nested(Urls, allow_none=True),
    "terms": fields.List(fields.Nested(TermLine), allow_none=True, validate=validate.Length(
        max=MAX_TERMS, error=Coded("too_many", "At most {max} lines of contract terms.",
                                   max=MAX_TERMS))),
    "styling": fields.Nested(Styling, allow_none=True),
    "embedding": fields.Nested(Embedding, allow_none=True),
    "portal": fields.Nested(PortalSettings, allow_none=True),
}, name="SelfServiceSettings")
SelfServiceSettings.__doc__ = """The merchant's self-service settings. In ``PUT``, each top-level
key present replaces that section (keys left out of it take their defaults; ``null`` resets
it); sections not in the body stay as they are."""


class Logo(Schema):
    logo_url = fields.String(allow_none=True)


# -- orders ---------------------------------------------------------------------------------------

class Quantity(fields.Field):
    """A component quantity: an integer, or its digits as text (form posts)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.metadata.setdefault("type", "integer")

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            text = value.strip()
            if re.fullmatch(r"-?\d{1,7}", text):
                return int(text)
            if text == "":
                return None
            raise invalid("not_an_integer", "Enter a whole number.")
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid("not_an_integer", "Enter a whole number.")
        if abs(value) > 10**7:
            raise invalid("out_of_range", "At most {max}.", max=10**7)
        return value


class AcceptedTerm(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and re.fullmatch(r"\d{1,2}", value.strip()):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 100:
            return value
        raise invalid("invalid_choice", "Unknown terms line.")


class OrderRequest(Strict):
    """An order as the hosted page or a merchant's system sends it (never with a price)."""

    plan_variant_id = fields.String(validate=validate.Length(max=40))
    customer = fields.Dict(keys=fields.String(), load_default=dict, metadata={
        "description": "Customer fields (see docs/signup.md): email, first_name, last_name, "
                       "company_name, street, house_number, address_line_2, postal_code, city, "
                       "country, phone, vat_id, dispatch_type, birth_date."})
    components = fields.Dict(keys=fields.String(validate=validate.Length(max=40)),
                             values=Quantity(allow_none=True), load_default=dict,
                             validate=validate.Length(max=50))
    coupon_code = fields.String(allow_none=True, load_default=None, validate=validate.Length(
        max=64, error=Coded("too_long", "At most {max} characters.", max=64)))
    accepted_terms = fields.List(AcceptedTerm(), load_default=list,
                                 validate=validate.Length(max=MAX_TERMS))
    external_id = Text(max_length=200, min_length=0, allow_none=True, load_default=None)
    language = fields.String(allow_none=True, load_default=None, validate=LANGUAGE)
    quoted_price = fields.String(allow_none=True, load_default=None,
                                 validate=validate.Length(max=64), metadata={
                                     "description": "The price fingerprint the customer saw "
                                                    "(from a preview); a changed price is "
                                                    "refused instead of charged."})


class PriceLine(Schema):
    kind = fields.String(metadata={"enum": ["setup", "recurring", "component", "discount"]})
    description = fields.String()
    quantity = fields.Integer()
    unit_price = fields.String()
    net = fields.String()
    component_id = fields.String(allow_none=True)


class PriceTax(Schema):
    rate = fields.String()
    category = fields.String(metadata={"enum": ["S", "AE", "O"]})
    reverse_charge = fields.Boolean()
    amount = fields.String()


class MeteredPrice(Schema):
    component_id = fields.String()
    name = fields.String()
    unit_price = fields.String()


class OrderPrice(Schema):
    currency = fields.String()
    lines = fields.List(fields.Nested(PriceLine))
    metered = fields.List(fields.Nested(MeteredPrice))
    setup_net = fields.String()
    recurring_net = fields.String()
    discount = fields.String()
    net_total = fields.String()
    tax = fields.Nested(PriceTax)
    gross_total = fields.String()
    trial_days = fields.Integer()
    billing_period_months = fields.Integer()
    first_invoice_at = fields.String(metadata={"enum": ["signup", "trial_end"]})
    due_now = fields.String()
    due_at_trial_end = fields.String()
    discount_periods = fields.Integer(allow_none=True)
    discounted_recurring_gross = fields.String()
    recurring_gross = fields.String()
    fingerprint = fields.String()


class ErrorItem(Schema):
    code = fields.String()
    message = fields.String()
    params = fields.Dict()


class OrderPreview(Schema):
    price = fields.Nested(OrderPrice, allow_none=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(ErrorItem)))


class Order(Schema):
    order_id = fields.String()
    contract_id = fields.String()
    customer_id = fields.String()
    price = fields.Nested(OrderPrice)
