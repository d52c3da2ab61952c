"""The hosted customer portal: ``/portal?token=…`` and its pages.

A token from a link is exchanged (tokens service) for a session, kept in a cookie, and the
browser is sent on with ``303`` so the token leaves the address bar. Every page then makes one
call, ``portal.portal_view``, which checks the session and returns the contract (and its
documents) — nothing about the session is cached, so a revocation or sign-out takes effect on
the next request — takes the merchant's settings from a cache of a few seconds, and renders
only the sections the merchant shows. Every POST carries a CSRF token bound to the session and
the contract id it acts on, which must be the session's own (anything else is 404, like a
missing page).

Cookie: ``HttpOnly``; behind HTTPS (``PUBLIC_URL`` scheme) ``__Host-`` prefixed, ``Secure``,
``SameSite=None; Partitioned`` so the portal works inside a merchant's iframe. In local
development over plain HTTP browsers refuse ``SameSite=None``/``Partitioned`` without
``Secure``, so there it is ``SameSite=Lax`` (top-level use only).
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlparse

from nameko.exceptions import MethodNotFound
from werkzeug.wrappers import Response

from services.common import customer_fields
from services.common.errors import (
    Conflict,
    Gone,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
)

from .. import i18n, web
from ..http import route

LANGUAGES = web.LANGUAGES
SECTIONS = ("customer", "payment", "contract", "account", "documents", "additional_data")
HEADINGS = {"customer": "Customer", "payment": "Payment", "contract": "Contract",
            "account": "Account", "documents": "Outgoing documents",
            "additional_data": "Additional data"}
FIELD_LABELS = {"company_name": "Company", "first_name": "First name", "last_name": "Last name",
                "email": "E-mail", "street": "Street", "house_number": "House number",
                "address_line_2": "Additional address line", "postal_code": "Postal code",
                "city": "City", "country": "Country", "phone": "Phone", "vat_id": "VAT ID",
                "dispatch_type": "Dispatch", "birth_date": "Birth date"}
PAYMENT_MESSAGES = {
    "required": "This field is required.",
    "invalid_iban": "Enter a valid IBAN.",
    "iban_not_sepa": "This IBAN is not from a SEPA country.",
    "invalid_characters": "This field contains characters that are not allowed.",
    "too_long": "At most {max} characters.",
    "mandate_required": "Please authorise the SEPA direct debit mandate.",
    "invalid_choice": "Select one of: {choices}.",
}
DEFAULT_SETTINGS = {
    "default_language": "en",
    "token_validity_minutes": 1440,
    "fields": {},
    "texts": {},
    "styling": {},
    "urls": {},
    "embedding": {"frame_ancestors": [], "redirect_hosts": []},
    "portal": {"sections": {
        "customer": {"visible": True, "editable": True, "heading": {}},
        "payment": {"visible": True, "editable": True, "heading": {}},
        "contract": {"visible": True, "cancellable": True, "heading": {}},
        "account": {"visible": True, "heading": {}},
        "documents": {"visible": True, "heading": {}},
        "additional_data": {"visible": False, "heading": {}, "fields": []},
    }},
    "merchant": {},
}
REFUSALS = {
    "invalid": (401, "This link is not valid",
                "Please check that you opened the complete link, or ask for a new one."),
    "gone": (410, "This link is no longer valid",
             "Links to the customer portal only work for a limited time. "
             "Please ask for a new link."),
    "session": (401, "Your session has ended",
                "For your security, please open your portal link again."),
    "session_ended": (410, "Your session has ended",
                      "For your security, please open your portal link again."),
    "rate": (429, "Too many attempts", "Please wait a few minutes and try again."),
    "not_found": (404, "Page not found", "This page does not exist or is no longer available."),
    "form": (400, "The form has expired", "The form has expired. Please submit it again."),
    "logged_out": (200, "You are signed out", "You can close this window now."),
}
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DOCUMENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass
class Portal:
    """One authenticated portal request: who, which contract, and how to render."""

    session_id: str
    merchant_id: str
    contract_id: str
    contract: dict
    settings: dict
    language: str
    csrf_token: str
    documents: list | None = None

    def section(self, name: str) -> dict:
        return self.settings["portal"]["sections"].get(name) or {}

    def visible(self, name: str) -> bool:
        return bool(self.section(name).get("visible"))


class PortalPages:
    # -- entering ---------------------------------------------------------------------------------
    @route("GET", "/portal")
    def portal_home(self, request):
        return self._portal_get(request, "/portal", self._render_home, documents=True)

    @route("GET", "/portal/customer")
    def portal_customer(self, request):
        return self._portal_get(request, "/portal/customer", self._render_customer)

    @route("GET", "/portal/payment")
    def portal_payment(self, request):
        return self._portal_get(request, "/portal/payment", self._render_payment)

    @route("GET", "/portal/contract/cancel")
    def portal_cancel(self, request):
        return self._portal_get(request, "/portal/contract/cancel", self._render_cancel)

    @route("GET", "/portal/documents")
    def portal_documents(self, request):
        return self._portal_get(request, "/portal/documents", self._render_documents,
                                documents=True)

    @route("GET", "/portal/documents/<string:document_id>/pdf")
    def portal_document_pdf(self, request, document_id):
        portal = self._portal(request)
        if isinstance(portal, Response):
            return portal
        if not portal.visible("documents") or not _DOCUMENT_ID.fullmatch(document_id):
            return self._refusal(request, "not_found", portal.language)
        try:
            pdf = self.documents_rpc.get_pdf(portal.merchant_id, document_id,
                                             contract_id=portal.contract_id)
            content = base64.b64decode(pdf["content_b64"], validate=True)
        except (NotFound, MethodNotFound, KeyError, TypeError, binascii.Error):
            return self._refusal(request, "not_found", portal.language)
        filename = _FILENAME_UNSAFE.sub("_", str(pdf.get("filename") or document_id))[:100]
        if not filename.lower().endswith(".pdf"):
            filename += ".pdf"
        response = Response(content, mimetype="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="{filename}"'})
        return _no_referrer(response)

    # -- changes -----------------------------------------------------------------------------------
    @route("POST", "/portal/customer")
    def portal_customer_save(self, request):
        portal = self._portal_post(request)
        if isinstance(portal, Response):
            return portal
        section = portal.section("customer")
        if not section.get("visible"):
            return self._refusal(request, "not_found", portal.language)
        if not section.get("editable"):
            return self._render_customer(request, portal, status=403)
        modes = self._field_modes(portal)
        values = {name: request.form.get(name, "") for name in customer_fields.FIELDS
                  if modes.get(name) != "hidden"}
        try:
            self.portal_rpc.change_contract_customer(portal.merchant_id, portal.contract_id,
                                                     values)
        except InvalidInput as exc:
            errors = _customer_errors(exc.fields, portal.language)
            return self._render_customer(request, portal, values=values, errors=errors,
                                         status=400)
        return self._see_other(portal, "/portal", done="customer")

    @route("POST", "/portal/payment")
    def portal_payment_save(self, request):
        portal = self._portal_post(request)
        if isinstance(portal, Response):
            return portal
        section = portal.section("payment")
        if not section.get("visible"):
            return self._refusal(request, "not_found", portal.language)
        if not section.get("editable"):
            return self._render_payment(request, portal, status=403)
        values = {"type": "sepa_debit", "iban": request.form.get("iban", ""),
                  "account_holder": request.form.get("account_holder", ""),
                  "mandate_accepted": request.form.get("mandate_accepted") == "yes"}
        try:
            self.portal_rpc.change_payment_method(portal.merchant_id, portal.contract_id,
                                                  values)
        except InvalidInput as exc:
            errors = _translated_errors(exc.fields, portal.language, PAYMENT_MESSAGES)
            return self._render_payment(request, portal, values=values, errors=errors,
                                        status=400)
        return self._see_other(portal, "/portal", done="payment")

    @route("POST", "/portal/contract/cancel")
    def portal_cancel_confirm(self, request):
        portal = self._portal_post(request)
        if isinstance(portal, Response):
            return portal
        if not self._may_cancel(portal):
            return self._refusal(request, "not_found", portal.language)
        try:
            portal.contract = self.portal_rpc.cancel_contract(
                portal.merchant_id, portal.contract_id,
                request.form.get("expected_end_date") or None)
        except InvalidInput:
            return self._refusal(request, "form", portal.language)
        except Conflict as exc:
            if "end_date" in exc.fields:  # the date moved on between page and click
                portal.contract = self.portal_rpc.get_contract(portal.merchant_id,
                                                               portal.contract_id)
                return self._render_cancel(request, portal, changed=True, status=409)
            return self._render_cancel(request, portal, status=409)
        return self._see_other(portal, "/portal/contract/cancel", done="cancelled")

    @route("POST", "/portal/contract/withdraw-cancellation")
    def portal_withdraw_cancellation(self, request):
        portal = self._portal_post(request)
        if isinstance(portal, Response):
            return portal
        if not self._may_cancel(portal):
            return self._refusal(request, "not_found", portal.language)
        try:
            self.portal_rpc.withdraw_cancellation(portal.merchant_id, portal.contract_id)
        except Conflict:
            return self._render_cancel(request, portal, status=409)
        return self._see_other(portal, "/portal", done="withdrawn")

    @route("POST", "/portal/logout")
    def portal_logout(self, request):
        portal = self._portal_post(request)
        if isinstance(portal, Response):
            return portal
        self.portal_rpc.end_session(portal.session_id)
        response = self._refusal(request, "logged_out", portal.language)
        self._clear_cookie(response)
        return response

    # -- pages -------------------------------------------------------------------------------------
    def _render_home(self, request, portal, status=200):
        return self._page("portal/home.html", portal, request, status,
                          done=request.args.get("done"))

    def _render_customer(self, request, portal, values=None, errors=None, status=200):
        if not portal.visible("customer"):
            return self._refusal(request, "not_found", portal.language)
        modes = self._field_modes(portal)
        stored = portal.contract.get("customer") or {}
        return self._page("portal/customer.html", portal, request, status,
                          editable=bool(portal.section("customer").get("editable")),
                          fields=[n for n in customer_fields.FIELDS if modes[n] != "hidden"],
                          modes=modes,
                          dispatch_choices=customer_fields.dispatch_choices(modes),
                          values=values if values is not None else {
                              k: (v if v is not None else "") for k, v in stored.items()},
                          errors=errors or {})

    def _render_payment(self, request, portal, values=None, errors=None, status=200):
        if not portal.visible("payment"):
            return self._refusal(request, "not_found", portal.language)
        return self._page("portal/payment.html", portal, request, status,
                          editable=bool(portal.section("payment").get("editable")),
                          values=values or {}, errors=errors or {})

    def _render_cancel(self, request, portal, changed=False, status=200):
        if not self._may_cancel(portal):
            return self._refusal(request, "not_found", portal.language)
        return self._page("portal/cancel.html", portal, request, status, changed=changed,
                          done=request.args.get("done"))

    def _render_documents(self, request, portal, status=200):
        if not portal.visible("documents"):
            return self._refusal(request, "not_found", portal.language)
        return self._page("portal/documents.html", portal, request, status)

    def _may_cancel(self, portal) -> bool:
        section = portal.section("contract")
        return bool(section.get("visible") and section.get("cancellable"))

    # -- the session -------------------------------------------------------------------------------
    def _portal_get(self, request, path, render, documents=False):
        token = request.args.get("token")
        if token is not None:
            return self._exchange(request, token, path)
        portal = self._portal(request, documents=documents)
        if isinstance(portal, Response):
            return portal
        return render(request, portal)

    def _exchange(self, request, token, path):
        language = _requested_language(request)
        try:
            session = self.tokens_rpc.exchange_token(token[:200], self._client_ip(request))
        except Unauthorized:
            return self._refusal(request, "invalid", language)
        except Gone:
            return self._refusal(request, "gone", language)
        except RateLimited:
            return self._refusal(request, "rate", language)
        query = f"?{urlencode({'language': language})}" if _chosen_language(request) else ""
        response = _no_referrer(Response(status=303, headers={"Location": path + query}))
        expires_at = dt.datetime.fromisoformat(session["expires_at"])
        max_age = max(int((expires_at - dt.datetime.now(dt.UTC)).total_seconds()), 0)
        secure = self._secure_cookies()
        response.set_cookie(_cookie_name(secure), session["session_id"], max_age=max_age,
                            expires=expires_at, path="/", secure=secure, httponly=True,
                            samesite="None" if secure else "Lax", partitioned=secure)
        return response

    def _portal(self, request, documents=False):
        """The request's live session with its contract and settings, or a refusal page.

        One call to the portal service checks the session and returns the contract (and its
        documents); the merchant's settings come from a cache of a few seconds."""
        language = _requested_language(request)
        session_id = request.cookies.get(_cookie_name(self._secure_cookies()))
        if not session_id:
            return self._refusal(request, "session", language)
        try:
            view = self.portal_rpc.portal_view(session_id[:200], documents=documents)
        except (Unauthorized, Gone) as exc:
            kind = "session_ended" if isinstance(exc, Gone) else "session"
            response = self._refusal(request, kind, language)
            self._clear_cookie(response)
            return response
        except NotFound:
            return self._refusal(request, "not_found", language)
        merchant_id, contract_id, contract = \
            view["merchant_id"], view["contract_id"], view["contract"]
        settings = self._portal_settings(merchant_id)
        if _chosen_language(request) is None:
            language = next((lang for lang in (contract.get("language"),
                                               settings.get("default_language"))
                             if lang in LANGUAGES), "en")
        portal = Portal(session_id=session_id, merchant_id=merchant_id, contract_id=contract_id,
                        contract=contract, settings=settings, language=language,
                        csrf_token=self._csrf_token(session_id))
        if documents:
            portal.documents = _document_items(view.get("documents") or [])
        return portal

    def _portal_settings(self, merchant_id: str) -> dict:
        """The merchant's settings over the defaults, cached for ``SETTINGS_CACHE_SECONDS``
        (default 5; a change through this gateway's API is seen at once). Shared by every
        request: read it, never change it."""
        def load():
            try:
                return _with_defaults(self.signup_rpc.get_settings(merchant_id) or {})
            except MethodNotFound:
                return _with_defaults({})
        return self.settings_cache.get(merchant_id, load)

    def _portal_post(self, request):
        """A POST's session, after its CSRF token and contract id are checked."""
        portal = self._portal(request)
        if isinstance(portal, Response):
            return portal
        token = request.form.get("csrf_token") or ""
        if web.cross_site(request) or not hmac.compare_digest(
                token.encode(), portal.csrf_token.encode()):
            return self._refusal(request, "form", portal.language)
        if request.form.get("contract_id") != portal.contract_id:
            return self._refusal(request, "not_found", portal.language)
        return portal

    def _client_ip(self, request) -> str:
        """Failed exchanges are limited per client: behind ``TRUSTED_PROXIES`` load balancers
        the address they saw (``X-Forwarded-For``), else the peer."""
        helper = getattr(web, "client_ip", None)
        if helper is None:
            return request.remote_addr or "unknown"
        return helper(request, int(self.config.get("TRUSTED_PROXIES", 0) or 0))

    def _csrf_token(self, session_id: str) -> str:
        digest = hmac.new(self.config["SECRET_KEY"].encode(),
                          f"portal-csrf|{session_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _secure_cookies(self) -> bool:
        return urlparse(self.config.get("PUBLIC_URL") or "").scheme == "https"

    def _clear_cookie(self, response):
        secure = self._secure_cookies()
        response.delete_cookie(_cookie_name(secure), path="/", secure=secure, httponly=True,
                               samesite="None" if secure else "Lax", partitioned=secure)

    def _field_modes(self, portal) -> dict:
        fields = {k: v for k, v in (portal.settings.get("fields") or {}).items()
                  if k in customer_fields.FIELDS and v in customer_fields.MODES}
        return customer_fields.resolve_modes(fields)

    # -- rendering ---------------------------------------------------------------------------------
    def _page(self, template, portal, request, status=200, **context):
        language = portal.language
        t = i18n.translator(language)
        settings = portal.settings
        styling = _safe_styling(settings.get("styling") or {})
        response = web.html(
            template, status, frame_ancestors=_frame_ancestors(settings),
            language=language, t=t, portal=portal, contract=portal.contract,
            styling=styling, merchant=settings.get("merchant") or {},
            headings={name: _heading(portal.section(name), name, language, t)
                      for name in SECTIONS},
            text=lambda key: _localized((settings.get("texts") or {}).get(key), language),
            link=lambda path, **params: _link(path, language, **params),
            fmt_date=lambda value: _format_date(value, language),
            fmt_money=lambda amount, currency: _format_money(amount, currency, language),
            fmt_duration=lambda value: _format_duration(value, t),
            field_value=lambda name, value: _field_value(name, value, t),
            additional=_additional_fields(portal, language), labels=FIELD_LABELS,
            path=request.path, languages=LANGUAGES, **context)
        logo = styling.get("logo_url")
        if logo:  # the merchant's logo host joins img-src, nothing else does
            origin = "{0.scheme}://{0.netloc}".format(urlparse(logo))
            csp = response.headers["Content-Security-Policy"]
            response.headers["Content-Security-Policy"] = csp.replace(
                "img-src 'self' data:", f"img-src 'self' data: {origin}", 1)
        return response

    def _see_other(self, portal, path, **params):
        return _no_referrer(Response(status=303, headers={
            "Location": _link(path, portal.language, **params)}))

    def _refusal(self, request, kind, language=None):
        """A friendly page that tells nothing about any contract (no merchant styling either)."""
        language = language if language in LANGUAGES else _requested_language(request)
        status, title, message = REFUSALS[kind]
        t = i18n.translator(language)
        # a static page without actions cannot be clickjacked; let it show inside any iframe
        return web.html("portal/notice.html", status, frame_ancestors="*", language=language,
                        t=t, styling={}, title=t(title), message=t(message), kind=kind)


# -- helpers ---------------------------------------------------------------------------------------


def _cookie_name(secure: bool) -> str:
    return "__Host-portico_portal" if secure else "portico_portal"


def _no_referrer(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _chosen_language(request) -> str | None:
    """The language the visitor picked (``?language=`` or the form's), if it is one we have."""
    for value in (request.args.get("language"),
                  request.form.get("language") if request.method == "POST" else None):
        if value in LANGUAGES:
            return value
    return None


def _requested_language(request) -> str:
    return _chosen_language(request) or request.accept_languages.best_match(LANGUAGES) or "en"


def _with_defaults(settings, defaults=DEFAULT_SETTINGS):
    """``settings`` over ``defaults``, recursively for dicts (a missing key never breaks a page)."""
    if not isinstance(settings, dict):
        return defaults
    merged = dict(defaults)
    for key, value in settings.items():
        if isinstance(defaults.get(key), dict) and isinstance(value, dict):
            merged[key] = _with_defaults(value, defaults[key])
        elif value is not None:
            merged[key] = value
    return merged


def _document_items(result) -> list:
    if isinstance(result, dict):
        result = result.get("items") or result.get("documents") or result.get("data") or []
    return [item for item in result if isinstance(item, dict)] if isinstance(result, list) \
        else []


def _safe_styling(styling: dict) -> dict:
    """The merchant's styling for the page: colours and sizes pass base.html's own filters
    (``colour``: only ``#RRGGBB``; ``pixels``: bounded ints); the logo only as an http(s) URL
    whose origin can join the CSP's ``img-src`` (no ``javascript:``, no quotes)."""
    safe = {key: value for key, value in styling.items() if key != "logo_url"}
    logo = styling.get("logo_url")
    if isinstance(logo, str) and len(logo) <= 2000 and not any(c in logo for c in "\"' <>"):
        parts = urlparse(logo)
        if (parts.scheme in ("http", "https") and parts.netloc
                and _ORIGIN.fullmatch(f"{parts.scheme}://{parts.netloc}")):
            safe["logo_url"] = logo
    return safe


def _frame_ancestors(settings: dict) -> str:
    helper = getattr(web, "frame_ancestors", None)
    if helper is not None:
        return helper(settings)
    origins = [o for o in (settings.get("embedding") or {}).get("frame_ancestors") or []
               if isinstance(o, str) and _ORIGIN.fullmatch(o)]
    return " ".join(["'self'", *origins])


def _localized(value, language: str) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        text = value.get(language) or value.get("en")
        return text if isinstance(text, str) else None
    return None


def _heading(section: dict, name: str, language: str, t) -> str:
    return _localized(section.get("heading") or {}, language) or t(HEADINGS[name])


def _link(path: str, language: str, **params) -> str:
    return f"{path}?{urlencode({'language': language, **params})}"


def _format_date(value, language: str) -> str:
    if not value:
        return "–"
    try:
        day = dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return i18n.date(day, language)


def _format_money(amount, currency: str, language: str) -> str:
    try:
        return i18n.money(amount, currency, language)
    except Exception:  # an odd currency shows as plain text, never a 500
        return f"{amount} {currency}"


def _format_duration(value, t) -> str:
    if not value:
        return "–"
    count, unit = value.get("value"), value.get("unit")
    names = {"day": ("day", "days"), "week": ("week", "weeks"), "month": ("month", "months")}
    singular, plural = names.get(unit, (unit, unit))
    return f"{count} {t(singular if count == 1 else plural)}"


def _field_value(name: str, value, t) -> str:
    if value in (None, ""):
        return "–"
    if name == "dispatch_type":
        return t({"email": "By e-mail", "post": "By post"}.get(value, value))
    return str(value)


def _additional_fields(portal: Portal, language: str) -> list[tuple[str, str]]:
    section = portal.section("additional_data")
    data = portal.contract.get("additional_data") or {}
    rows = []
    for spec in section.get("fields") or []:
        if isinstance(spec, str):
            key, label = spec, spec
        elif isinstance(spec, dict):
            key = spec.get("key") or spec.get("name")
            label = _localized(spec.get("label"), language) or key
        else:
            continue
        if isinstance(key, str):
            value = data.get(key)
            rows.append((str(label), "–" if value in (None, "") else str(value)))
    return rows


def _translated_errors(fields: dict, language: str, messages: dict) -> dict:
    t = i18n.translator(language)
    translated = {}
    for name, problems in (fields or {}).items():
        out = []
        for problem in problems:
            template = messages.get(problem.get("code"), problem.get("message") or "")
            try:
                out.append(t(template).format(**(problem.get("params") or {})))
            except (KeyError, IndexError, ValueError):
                out.append(t(template))
        translated[name] = out
    return translated


def _customer_errors(fields: dict, language: str) -> dict:
    return _translated_errors(fields, language, customer_fields.MESSAGES)
