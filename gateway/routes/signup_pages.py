"""The hosted signup page: ``/signup/{merchant}/{plan_variant_id}`` (merchant = slug or public key).

- ``GET`` renders the order form from the merchant's settings, prefilled from the query string
  (``email``, ``first_name``, ``last_name``, ``company``, ``vat_id``, ``external_id``,
  ``coupon_code``, ``language``, any customer field, ``component.<id>``) and priced by the
  server. One RPC.
- ``POST`` with ``action=preview`` (the "Update price" button: works without JavaScript)
  re-renders with the new price; any other ``POST`` submits the order: ``303`` to the
  merchant's success URL with ``contractId`` (or our confirmation page), or the form again with
  per-field messages in the page's language and everything the customer typed (``400``).
- ``POST …/preview`` answers the live preview fragment for the page's small script.
- Every ``POST`` needs the form's CSRF token and a same-site origin (``Sec-Fetch-Site`` /
  ``Origin``) and passes a per-IP rate limit (in memory, per gateway process: see
  ``web.RateLimiter``; ``SIGNUP_RATE_LIMIT`` / ``SIGNUP_PREVIEW_RATE_LIMIT`` as ``count/seconds``,
  ``TRUSTED_PROXIES`` to read the client address from ``X-Forwarded-For``).

Merchant-authored texts are escaped by Jinja's autoescape; colours and URLs pass
``web.colour``/``web.safe_url``; terms placeholders become links built here, never markup taken
from the merchant.
"""
from __future__ import annotations

import base64
import datetime as dt
import logging
import re
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache

from babel import Locale
from babel.numbers import format_decimal
from markupsafe import Markup
from werkzeug.wrappers import Response

from services.common import customer_fields
from services.common.errors import NotFound
from services.common.tax import COUNTRY_CODES

from .. import i18n, web
from ..http import error_page, route

log = logging.getLogger(__name__)

FIELD_ORDER = list(customer_fields.FIELDS)
FIELD_LABELS = {"company_name": "Company", "first_name": "First name", "last_name": "Last name",
                "email": "E-mail", "street": "Street", "house_number": "House number",
                "address_line_2": "Additional address line", "postal_code": "Postal code",
                "city": "City", "country": "Country", "phone": "Phone", "vat_id": "VAT ID",
                "dispatch_type": "Dispatch", "birth_date": "Birth date"}
INPUT_TYPES = {"email": ("email", "email"), "phone": ("tel", "tel"),
               "birth_date": ("date", "bday"), "first_name": ("text", "given-name"),
               "last_name": ("text", "family-name"), "company_name": ("text", "organization"),
               "street": ("text", "address-line1"), "address_line_2": ("text", "address-line2"),
               "postal_code": ("text", "postal-code"), "city": ("text", "address-level2")}
DISPATCH_LABELS = {"email": "By e-mail", "post": "By post"}
PREFILL_ALIASES = {"company": "company_name"}
PLACEHOLDER_LABELS = {"tac": "terms and conditions", "dpp": "privacy policy",
                      "withdrawal": "withdrawal instructions"}

# Messages for error codes the customer-field catalogue does not define; English templates,
# translated with the page's catalog (gateway/locale/*/signup.po).
COUPON_MESSAGES = {
    "unknown": "This coupon code is not valid.",
    "not_yet_valid": "This coupon code is not valid yet.",
    "expired": "This coupon code has expired.",
    "used_up": "This coupon code has been used up.",
    "currency_mismatch": "This coupon code does not apply to this plan.",
    "not_accepted": "Coupon codes are not accepted here.",
    "too_long": "At most {max} characters.",
}
QUANTITY_MESSAGES = {
    "unknown_component": "This option is not available.",
    "metered_not_selectable": "This option is billed by usage and cannot be chosen.",
    "not_an_integer": "Enter a whole number.",
    "negative": "The quantity cannot be negative.",
    "invalid_onoff": "Choose on or off.",
    "below_minimum": "At least {min}.",
    "above_maximum": "At most {max}.",
    "out_of_range": "At most {max}.",
}
FORM_MESSAGES = {
    "csrf": "The form has expired. Please submit it again.",
    "price_changed": "The price has changed. Please check the updated order and submit it "
                     "again.",
}
OTHER_MESSAGES = {
    "must_accept": "Please confirm this.",
    "too_long": "At most {max} characters.",
    "invalid_characters": "This field contains characters that are not allowed.",
}
PERIODS = {1: "per month", 3: "per quarter", 6: "per half-year", 12: "per year",
           24: "every two years"}
_CONTRACT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_limiters: dict[str, web.RateLimiter | None] = {}


RATE_LIMITS = {"submit": ("SIGNUP_RATE_LIMIT", "20/60"),
               "preview": ("SIGNUP_PREVIEW_RATE_LIMIT", "120/60")}


def limiter(kind: str, spec: str) -> web.RateLimiter | None:
    """One bucket set per kind and configured spec, shared by the process's workers."""
    key = f"{kind}:{spec}"
    if key not in _limiters:
        try:
            _limiters[key] = web.RateLimiter.parse(spec)
        except ValueError:
            log.error("bad %s %r; using %s", RATE_LIMITS[kind][0], spec, RATE_LIMITS[kind][1])
            _limiters[key] = web.RateLimiter.parse(RATE_LIMITS[kind][1])
    return _limiters[key]


def error_message(name: str, error: dict, t) -> str:
    """One error in the page's language: by its code, else the service's English message."""
    code, params = error.get("code"), error.get("params") or {}
    if name == "coupon_code":
        template = COUPON_MESSAGES.get(code)
    elif name.startswith("components"):
        template = QUANTITY_MESSAGES.get(code)
    elif name == "_form":
        template = FORM_MESSAGES.get(code)
    else:
        template = customer_fields.MESSAGES.get(code) or OTHER_MESSAGES.get(code)
    if template is None:
        return str(error.get("message") or t("This value is not valid."))
    try:
        return t(template, **params)
    except (KeyError, IndexError, ValueError):
        return t(template)


def translate_errors(errors: dict, t) -> dict[str, list[str]]:
    return {name: [error_message(name, e, t) for e in items if isinstance(e, dict)]
            for name, items in (errors or {}).items() if isinstance(items, list)}


def money(amount, currency: str, language: str) -> str:
    return _money(str(amount), currency, language)


@lru_cache(maxsize=4096)
def _money(amount: str, currency: str, language: str) -> str:
    """Babel formatting is the page's main cost after the template; prices repeat a lot."""
    try:
        return i18n.money(Decimal(amount), currency, language)
    except (InvalidOperation, ValueError):
        return amount


def period_text(months: int, t) -> str:
    return t(PERIODS[months]) if months in PERIODS else t("every {n} months", n=months)


def term_segments(text: str, urls: dict, t) -> list[dict]:
    """``"I accept the {tac}."`` → text and link segments; a placeholder whose URL is not set
    stays plain text. Links are built from validated https URLs only."""
    segments = []
    for index, part in enumerate(re.split(r"\{(tac|dpp|withdrawal)\}", text or "")):
        if index % 2 == 0:
            if part:
                segments.append({"text": part})
            continue
        label = t(PLACEHOLDER_LABELS[part])
        url = urls.get(part)
        safe = web.safe_url(url) if isinstance(url, str) and url.startswith("https://") else None
        segments.append({"text": label, "url": safe})
    return segments


@cache
def countries(language: str) -> tuple[tuple[str, str], ...]:
    """Every country as ``(code, name in language)``, sorted by name."""
    names = Locale.parse(language).territories
    return tuple(sorted(((code, names.get(code, code)) for code in COUNTRY_CODES),
                        key=lambda item: item[1].casefold()))


@lru_cache(maxsize=1024)
def country_options(language: str, selected: str) -> Markup:
    """The ~250 ``<option>``s of the country select, rendered once per language and choice
    (rendering them in the template was most of the page's cost)."""
    return Markup("").join(
        Markup('<option value="{0}"{1}>{2}</option>').format(
            code, Markup(" selected") if code == selected else "", name)
        for code, name in countries(language))


def preview_view(page: dict, language: str, t) -> dict | None:
    """The price overview as display rows (strings formatted for ``language``)."""
    price = page["preview"].get("price")
    if not price:
        return None
    currency = price["currency"]
    fmt = lambda amount: money(amount, currency, language)  # noqa: E731
    settings = page["settings"]
    period = period_text(price["billing_period_months"], t)
    lines = []
    for line in price["lines"]:
        if line["kind"] == "setup":
            label = t("Setup fee")
        elif line["kind"] == "recurring":
            label = t("{plan}, first period", plan=page["plan_name"])
        elif line["kind"] == "component":
            label = f'{line["description"]} × {line["quantity"]}'
        else:
            label = t("Discount ({code})", code=line["description"])
        lines.append({"kind": line["kind"], "label": label, "amount": fmt(line["net"])})
    tax = price["tax"]
    if tax["reverse_charge"]:
        tax_label = t("VAT: reverse charge (the recipient owes the VAT)")
    elif tax["category"] == "O":
        tax_label = t("VAT: not applicable")
    else:
        tax_label = t("VAT {rate} %", rate=format_decimal(Decimal(tax["rate"]), locale=language))
    recurring = []
    periods = price["discount_periods"]
    if price["discount"] != price["recurring_gross"] and periods != 0 and Decimal(
            price["discounted_recurring_gross"]) != Decimal(price["recurring_gross"]):
        if periods is None:
            recurring.append({"label": t("Recurring amount with discount"),
                              "amount": f'{fmt(price["discounted_recurring_gross"])} {period}'})
        else:
            recurring.append({"label": t("Recurring amount for the first {n} periods", n=periods),
                              "amount": f'{fmt(price["discounted_recurring_gross"])} {period}'})
            recurring.append({"label": t("Recurring amount after that"),
                              "amount": f'{fmt(price["recurring_gross"])} {period}'})
    else:
        recurring.append({"label": t("Recurring amount"),
                          "amount": f'{fmt(price["recurring_gross"])} {period}'})
    due = []
    ends_on = (page.get("variant") or {}).get("trial_ends_on")
    if price["trial_days"]:
        trial = (t("{days} days, until {date}", days=price["trial_days"],
                   date=i18n.date(dt.date.fromisoformat(ends_on), language))
                 if ends_on else t("{days} days", days=price["trial_days"]))
        due.append({"label": t("Free trial"), "amount": trial})
        due.append({"label": t("Due today"), "amount": fmt(price["due_now"])})
        due.append({"label": t("Due at the end of the trial"),
                    "amount": fmt(price["due_at_trial_end"])})
    else:
        due.append({"label": t("Due today"), "amount": fmt(price["due_now"])})
    external_id = (page.get("form") or {}).get("external_id")
    return {
        "lines": lines, "net_total": fmt(price["net_total"]), "tax_label": tax_label,
        "tax_amount": fmt(tax["amount"]), "gross_total": fmt(price["gross_total"]),
        "reverse_charge": tax["reverse_charge"], "recurring": recurring, "due": due,
        "fingerprint": price.get("fingerprint", ""),
        "external_id": external_id if settings.get("show_external_id") else None,
    }


def typed_mistakes(errors: dict) -> dict:
    """A preview shows what was typed wrong; "required" waits for the real submit."""
    kept = {name: [e for e in items if e.get("code") != "required"]
            for name, items in (errors or {}).items()}
    return {name: items for name, items in kept.items() if items}


class SignupPages:
    # -- hosted signup page -----------------------------------------------------------------------
    @route("GET", "/signup/<string:slug>/<string:variant_id>")
    def signup_page(self, request, slug, variant_id):
        web.no_delay(request)
        language = self._signup_language(request)
        form = self._prefill(request.args)
        try:
            page = self.signup_rpc.get_signup_page(slug, variant_id, language, form)
        except NotFound:
            return error_page(404, language or "en")
        page["preview"]["errors"] = {}  # a prefill is not yet a mistake
        values = self._values_from_prefill(request.args)
        return self._render_signup(slug, page, values, {})

    @route("POST", "/signup/<string:slug>/<string:variant_id>")
    def signup_submit(self, request, slug, variant_id):
        web.no_delay(request)
        values = request.form.to_dict()  # each field's first value, as MultiDict.get reads it
        language = self._signup_language(request, values)
        previewing = values.get("action") == "preview"
        limited = self._rate_limited(request, "preview" if previewing else "submit", values)
        if limited:
            return limited
        form = self._order_form(values, request.form.getlist("accepted_terms"))
        if web.cross_site(request) or not self._form_token_ok(values, slug, variant_id):
            try:
                page = self.signup_rpc.get_signup_page(slug, variant_id, language, form)
            except NotFound:
                return error_page(404, language or "en")
            csrf = {"_form": [{"code": "csrf", "params": {},
                               "message": "The form has expired. Please submit it again."}]}
            return self._render_signup(slug, page, values, csrf, status=400)
        if previewing:
            try:
                page = self.signup_rpc.get_signup_page(slug, variant_id, language, form)
            except NotFound:
                return error_page(404, language or "en")
            return self._render_signup(slug, page, values,
                                       typed_mistakes(page["preview"]["errors"]))
        try:
            result = self.signup_rpc.submit_signup(slug, variant_id, form, language)
        except NotFound:
            return error_page(404, language or "en")
        except Exception as exc:  # the signup service failed: send the customer somewhere
            return self._order_failed(slug, language, exc)
        if result["status"] != "ok":
            page = result["page"]
            return self._render_signup(slug, page, values, page["preview"]["errors"],
                                       status=400)
        target = result.get("success_url")
        if not (isinstance(target, str) and target.startswith("https://")):
            lang = result.get("language") or language or "en"
            target = (f"/signup/{slug}/{variant_id}/done?language={lang}"
                      f"&contractId={result['contract_id']}")
        return web.security_headers(Response(status=303, headers={"Location": target}))

    @route("POST", "/signup/<string:slug>/<string:variant_id>/preview")
    def signup_live_preview(self, request, slug, variant_id):
        """The price fragment for the page's script (same CSRF token as the form)."""
        web.no_delay(request)
        values = request.form.to_dict()
        if self._rate_limited(request, "preview", values):
            return web.security_headers(Response("", status=429))
        if web.cross_site(request) or not self._form_token_ok(values, slug, variant_id):
            return web.security_headers(Response("", status=403))
        language = self._signup_language(request, values)
        try:
            page = self.signup_rpc.get_signup_page(
                slug, variant_id, language,
                self._order_form(values, request.form.getlist("accepted_terms")))
        except NotFound:
            return web.security_headers(Response("", status=404))
        context = self._signup_context(page, values, typed_mistakes(page["preview"]["errors"]))
        return web.html("signup_preview.html", 200, **context)

    @route("GET", "/signup/<string:slug>/<string:variant_id>/done")
    def signup_done(self, request, slug, variant_id):
        web.no_delay(request)
        language = self._signup_language(request) or "en"
        contract_id = request.args.get("contractId", "")
        contract_id = contract_id if _CONTRACT_ID.fullmatch(contract_id) else ""
        try:
            settings = self.signup_rpc.get_settings_by_slug(slug)
        except NotFound:
            return error_page(404, language)
        t = i18n.translator(language)
        return web.html("signup_done.html", language=language, t=t,
                        styling=settings.get("styling") or {}, contract_id=contract_id,
                        merchant=settings.get("merchant") or {},
                        frame_ancestors=web.frame_ancestors(settings))

    @route("GET", "/assets/logos/<string:merchant_id>/<string:filename>")
    def merchant_logo(self, request, merchant_id, filename):
        """Logos at content-addressed URLs: cached for a year, kept in process memory."""
        web.no_delay(request)
        digest = filename.rsplit(".", 1)[0]
        cached = _logo_cache.get((merchant_id, digest))
        if cached is None:
            try:
                logo = self.signup_rpc.get_logo(merchant_id)
            except NotFound:
                return web.security_headers(Response("", status=404))
            if logo["digest"][:32] != digest:
                return web.security_headers(Response("", status=404))
            cached = (logo["content_type"], base64.b64decode(logo["content_b64"]))
            if len(_logo_cache) > 500:
                _logo_cache.clear()
            _logo_cache[(merchant_id, digest)] = cached
        response = Response(cached[1], status=200, mimetype=cached[0])
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
        return response

    # -- helpers --------------------------------------------------------------------------------
    def _signup_language(self, request, posted: dict | None = None) -> str | None:
        """?language= (or the posted form's: ``posted``), else the browser's; None lets the
        merchant's default decide."""
        explicit = request.args.get("language") or (posted or {}).get("language")
        if explicit in web.LANGUAGES:
            return explicit
        if request.headers.get("Accept-Language"):
            return request.accept_languages.best_match(web.LANGUAGES)
        return None

    def _rate_limited(self, request, kind: str, posted: dict | None = None):
        setting, default = RATE_LIMITS[kind]
        bucket = limiter(kind, str(self.config.get(setting) or default))
        if bucket is None:
            return None
        ip = web.client_ip(request, int(self.config.get("TRUSTED_PROXIES", 0) or 0))
        allowed, retry_after = bucket.allow(ip)
        if allowed:
            return None
        language = self._signup_language(request, posted) or "en"
        response = error_page(429, language, title="Too many requests",
                              message="Please wait a moment and try again.")
        response.headers["Retry-After"] = str(retry_after)
        return response

    def _form_token_ok(self, posted: dict, slug, variant_id) -> bool:
        return web.check_form_token(self.config["SECRET_KEY"], f"signup|{slug}|{variant_id}",
                                    posted.get("csrf_token"))

    def _order_failed(self, slug, language, exc):
        log.error("signup submit failed for %s: %s", slug, type(exc).__name__)
        try:
            settings = self.signup_rpc.get_settings_by_slug(slug)
            url = (settings.get("urls") or {}).get("error")
        except Exception:
            url = None
        if isinstance(url, str) and url.startswith("https://"):
            separator = "&" if "?" in url else "?"
            return web.security_headers(Response(status=303, headers={
                "Location": f"{url}{separator}error=order_failed"}))
        return error_page(503, language or "en", title="Something went wrong",
                          message="Your order could not be placed. Please try again in a "
                                  "moment.")

    @staticmethod
    def _prefill(args) -> dict:
        customer = {}
        for key, value in args.items():
            name = PREFILL_ALIASES.get(key, key)
            if name in customer_fields.FIELDS and value:
                customer[name] = value
        return {"customer": customer,
                "components": {k[len("component."):]: v for k, v in args.items()
                               if k.startswith("component.") and v},
                "coupon_code": args.get("coupon_code") or args.get("coupon") or None,
                "external_id": args.get("external_id") or None}

    @staticmethod
    def _values_from_prefill(args) -> dict:
        values = {}
        for key, value in args.items():
            values[PREFILL_ALIASES.get(key, key)] = value
        if "coupon" in args and "coupon_code" not in args:
            values["coupon_code"] = args["coupon"]
        return values

    @staticmethod
    def _order_form(posted: dict, accepted_terms: list) -> dict:
        """The order as the service reads it, from the posted form (strings only): ``posted``
        holds each field's first value (``MultiDict.to_dict()``; a plain dict, since a
        MultiDict raises and catches an exception for every field it lacks), the terms boxes
        come as their list."""
        return {
            "customer": {name: posted[name] for name in FIELD_ORDER if name in posted},
            "components": {key[len("component."):]: value for key, value in posted.items()
                           if key.startswith("component.")},
            "coupon_code": posted.get("coupon_code") or None,
            "accepted_terms": accepted_terms,
            "external_id": posted.get("external_id") or None,
            "quoted_price": posted.get("quoted_price") or None,
        }

    def _signup_context(self, page: dict, values: dict, errors: dict) -> dict:
        language = page["language"]
        t = i18n.translator(language)
        settings = page["settings"]
        texts = {key: (value or {}).get(language) for key, value in settings["texts"].items()}
        modes = page["fields"]
        messages = translate_errors(errors, t)
        fields = []
        for name in FIELD_ORDER:
            mode = modes.get(name, "optional")
            if mode == "hidden":
                continue
            kind, autocomplete = INPUT_TYPES.get(name, ("text", None))
            field = {"name": name, "label": t(FIELD_LABELS[name]), "mode": mode,
                     "type": kind, "autocomplete": autocomplete,
                     "maxlength": customer_fields.FIELDS[name],
                     "value": values.get(name) or "", "errors": messages.get(name, [])}
            if name == "country":
                field["value"] = (values.get(name) or page["merchant"].get("country") or "")
                field["options_html"] = country_options(language, str(field["value"])[:64])
            elif name == "dispatch_type":
                field["options"] = [(c, t(DISPATCH_LABELS[c])) for c in page["dispatch_choices"]]
            fields.append(field)
        currency = page["variant"]["currency"]
        components = []
        posted = "csrf_token" in values
        for component in page["components"]:
            key = f"component.{component['id']}"
            default = component["min_quantity"]
            value = values.get(key)
            components.append({
                **component, "input": key,
                "value": value if value is not None else str(default),
                "checked": value == "1" if posted or value is not None else default >= 1,
                "price": (t("{price} per unit", price=money(component["unit_price"], currency,
                                                            language))
                          if component["kind"] == "quantity"
                          else money(component["unit_price"], currency, language))
                if component.get("show_price") else None,
                "errors": messages.get(f"components.{component['id']}", [])})
        accepted = {str(i) for i in (page.get("form") or {}).get("accepted_terms") or []}
        terms = []
        for index, line in enumerate(settings["terms"]):
            text = line["text"].get(language) or ""
            terms.append({"index": index, "confirmation": line["confirmation"],
                          "segments": term_segments(text, settings["urls"], t),
                          "checked": str(index) in accepted,
                          "errors": messages.get(f"terms.{index}", [])})
        variant = page["variant"]
        period = period_text(variant["billing_period_months"], t)
        pricing_errors = [m for name, items in messages.items()
                          if name == "coupon_code" or name.startswith("components")
                          for m in items]
        return {
            "language": language, "t": t, "page": page, "texts": texts, "fields": fields,
            "components": components, "terms": terms, "messages": messages,
            "form_errors": messages.get("_form", []),
            "other_errors": [m for name, items in messages.items()
                             if name not in {f["name"] for f in fields}
                             and not name.startswith(("components", "terms", "_form"))
                             and name != "coupon_code"
                             for m in items],
            "values": values, "styling": settings["styling"],
            "metered": [{"name": m["name"], "price": money(m["unit_price"], currency, language)}
                        for m in page["metered"]],
            "summary": {
                "recurring": f'{money(variant["recurring_fee"], currency, language)} {period}',
                "setup": money(variant["setup_fee"], currency, language)
                if Decimal(variant["setup_fee"]) else None,
                "trial_days": variant["trial_days"],
                "notice": self._duration(variant["notice_period"], t),
                "minimum_term": self._duration(variant["minimum_term"], t)},
            "period": period,
            "preview": preview_view(page, language, t), "pricing_errors": pricing_errors,
            "languages": web.LANGUAGES,
            "frame_ancestors": web.frame_ancestors(settings),
        }

    @staticmethod
    def _duration(duration, t) -> str | None:
        if not duration or not duration.get("value"):
            return None
        units = {"day": ("{n} day", "{n} days"), "week": ("{n} week", "{n} weeks"),
                 "month": ("{n} month", "{n} months")}
        one, many = units.get(duration["unit"], ("{n}", "{n}"))
        return t(one if duration["value"] == 1 else many, n=duration["value"])

    def _render_signup(self, ref, page, values, errors, status=200):
        """The form; ``ref`` is the merchant as the URL names it (slug or public key).

        Every visitor of a plan variant gets the same page but for the CSP nonce and the form
        token, so the plain page (no prefilled values, no errors: nothing of a visitor's own;
        ``?language=`` only) is kept (``RenderCache``) by everything that goes into it: the
        signup service's page as it came (prices, settings, language), the values and the
        status."""
        variant_id = page["variant"]["id"]
        csrf_token = web.form_token(self.config["SECRET_KEY"], f"signup|{ref}|{variant_id}")

        def context():
            built = self._signup_context(page, values, errors)
            built.pop("frame_ancestors")
            built["preview_url"] = f"/signup/{ref}/{variant_id}/preview"
            built["page_title"] = built["texts"].get("page_title") or (
                f"{page['plan_name']} – {page['merchant']['name']}")
            built["title"] = built["texts"].get("title") or page["plan_name"]
            return built

        plain = not errors and set(values) <= {"language"}
        key = RENDERED.key(ref, page, values, status) if plain else None
        return RENDERED.html(key, "signup.html", context, status,
                             fresh={"csrf_token": csrf_token},
                             frame_ancestors=web.frame_ancestors(page["settings"]))


_logo_cache: dict[tuple[str, str], tuple[str, bytes]] = {}
# rendered signup pages, per gateway process (see SignupPages._render_signup)
RENDERED = web.RenderCache()
