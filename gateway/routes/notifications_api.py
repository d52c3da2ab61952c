"""Merchant REST API for webhook endpoints and deliveries, e-mail templates and the mail log;
and the dev-only page listing sent mails (local runs with the file transport only).

See docs/notifications.md for the API.
"""
from __future__ import annotations

import re

from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from services.common.errors import InvalidInput, NotFound
from services.notifications import schemas as s

from .. import openapi, web
from ..http import error_page, route
from ..i18n import translator

_LINK = re.compile(r"https?://[^\s<>\"']+")


def _no_content() -> Response:
    return Response(status=204, headers={"Cache-Control": "no-store"})


def _query(request, *names) -> dict:
    return {name: request.args[name] for name in names if request.args.get(name)}


def _numbers_in_params(exc: InvalidInput) -> InvalidInput:
    # nameko sends exception arguments as text; put the template line back as a number
    for problems in exc.fields.values():
        for problem in problems:
            line = (problem.get("params") or {}).get("line")
            if isinstance(line, str) and line.isdigit():
                problem["params"]["line"] = int(line)
            elif line == "None":
                problem["params"]["line"] = None
    return exc


class NotificationsApi:
    # -- webhook endpoints ------------------------------------------------------------------
    @route("POST", "/api/v1/webhook-endpoints")
    def api_create_webhook_endpoint(self, request):
        key = request.headers.get("Idempotency-Key")
        return self.api_call(request, lambda m, body: (
            201, self.notifications_rpc.create_webhook_endpoint(m, body, key)))

    @route("GET", "/api/v1/webhook-endpoints")
    def api_list_webhook_endpoints(self, request):
        return self.api_call(request, lambda m, _: (
            200, {"items": self.notifications_rpc.list_webhook_endpoints(m)}))

    @route("GET", "/api/v1/webhook-endpoints/<string:endpoint_id>")
    def api_get_webhook_endpoint(self, request, endpoint_id):
        return self.api_call(request, lambda m, _: (
            200, self.notifications_rpc.get_webhook_endpoint(m, endpoint_id)))

    @route("PATCH", "/api/v1/webhook-endpoints/<string:endpoint_id>")
    def api_update_webhook_endpoint(self, request, endpoint_id):
        return self.api_call(request, lambda m, body: (
            200, self.notifications_rpc.update_webhook_endpoint(m, endpoint_id, body)))

    @route("DELETE", "/api/v1/webhook-endpoints/<string:endpoint_id>")
    def api_delete_webhook_endpoint(self, request, endpoint_id):
        def delete(merchant_id, _):
            self.notifications_rpc.delete_webhook_endpoint(merchant_id, endpoint_id)
            return 204, _no_content()
        return self.api_call(request, delete)

    @route("POST", "/api/v1/webhook-endpoints/<string:endpoint_id>/rotate-secret")
    def api_rotate_webhook_secret(self, request, endpoint_id):
        return self.api_call(request, lambda m, _: (
            200, self.notifications_rpc.rotate_webhook_secret(m, endpoint_id)))

    @route("GET", "/api/v1/webhook-endpoints/<string:endpoint_id>/secret")
    def api_get_webhook_secret(self, request, endpoint_id):
        return self.api_call(request, lambda m, _: (
            200, self.notifications_rpc.get_webhook_secret(m, endpoint_id)))

    # -- webhook deliveries -----------------------------------------------------------------
    @route("GET", "/api/v1/webhook-deliveries")
    def api_list_webhook_deliveries(self, request):
        filters = _query(request, "endpoint_id", "event_id", "status", "page", "per_page")
        return self.api_call(request, lambda m, _: (
            200, self.notifications_rpc.list_webhook_deliveries(m, filters)))

    @route("GET", "/api/v1/webhook-deliveries/<string:delivery_id>")
    def api_get_webhook_delivery(self, request, delivery_id):
        return self.api_call(request, lambda m, _: (
            200, self.notifications_rpc.get_webhook_delivery(m, delivery_id)))

    @route("POST", "/api/v1/webhook-deliveries/<string:delivery_id>/replay")
    def api_replay_webhook_delivery(self, request, delivery_id):
        key = request.headers.get("Idempotency-Key")
        return self.api_call(request, lambda m, _: (
            202, self.notifications_rpc.replay_webhook_delivery(m, delivery_id, key)))

    # -- e-mail templates -------------------------------------------------------------------
    @route("GET", "/api/v1/email-templates")
    def api_list_email_templates(self, request):
        return self.api_call(request, lambda m, _: (
            200, {"items": self.notifications_rpc.list_email_templates(m)}))

    @route("GET", "/api/v1/email-templates/<string:kind>/<string:language>")
    def api_get_email_template(self, request, kind, language):
        return self.api_call(request, lambda m, _: (
            200, self.notifications_rpc.get_email_template(m, kind, language)))

    @route("PUT", "/api/v1/email-templates/<string:kind>/<string:language>")
    def api_put_email_template(self, request, kind, language):
        def put(merchant_id, body):
            try:
                return 200, self.notifications_rpc.put_email_template(merchant_id, kind,
                                                                      language, body)
            except InvalidInput as exc:
                raise _numbers_in_params(exc) from None
        return self.api_call(request, put)

    @route("DELETE", "/api/v1/email-templates/<string:kind>/<string:language>")
    def api_delete_email_template(self, request, kind, language):
        def delete(merchant_id, _):
            self.notifications_rpc.delete_email_template(merchant_id, kind, language)
            return 204, _no_content()
        return self.api_call(request, delete)

    # -- the mail log -----------------------------------------------------------------------
    @route("GET", "/api/v1/emails")
    def api_list_emails(self, request):
        filters = _query(request, "contract_id", "kind", "status", "page", "per_page")
        return self.api_call(request, lambda m, _: (
            200, self.notifications_rpc.list_emails(m, filters)))

    @route("POST", "/api/v1/emails/portal-link")
    def api_send_portal_link(self, request):
        key = request.headers.get("Idempotency-Key")
        return self.api_call(request, lambda m, body: (
            202, self.notifications_rpc.send_portal_link(m, body, key)))

    @route("GET", "/api/v1/emails/<string:mail_id>")
    def api_get_email(self, request, mail_id):
        return self.api_call(request, lambda m, _: (
            200, self.notifications_rpc.get_email(m, mail_id)))

    # -- the dev-only mail page -------------------------------------------------------------
    @route("GET", "/dev/mail")
    def dev_mail_list(self, request):
        language = web.language_of(request)
        try:
            mails = self.notifications_rpc.dev_mail_outbox(50)
        except NotFound:
            return error_page(404, language)
        for mail in mails:
            mail["text_html"] = _linked(mail.get("text") or "")
        return web.html("notifications/dev_mail.html", language=language,
                        t=translator(language), styling={}, mails=mails)

    @route("GET", "/dev/mail/<string:mail_id>/html")
    def dev_mail_html(self, request, mail_id):
        try:
            mail = self.notifications_rpc.dev_mail(mail_id)
        except NotFound:
            return error_page(404, web.language_of(request))
        # Merchant-authored HTML: shown only in a sandbox (no scripts, no forms, no same origin)
        response = Response(mail.get("html") or "", mimetype="text/html")
        response.headers["Content-Security-Policy"] = (
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data: https:")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response


def _linked(text: str):
    """Plain text with its links clickable (everything else escaped)."""
    out, last = [], 0
    for match in _LINK.finditer(text):
        out.append(escape(text[last:match.start()]))
        url = match.group(0)
        out.append(Markup('<a href="{0}" rel="noreferrer">{0}</a>').format(url))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def _register_openapi() -> None:
    hooks, mail = ["webhooks"], ["e-mail"]
    once = {"Idempotency-Key": "A retry with the same key and body gets the first answer; "
                              "another body → 422."}
    openapi.register("/api/v1/webhook-endpoints", "post", "Register a webhook endpoint",
                     s.WebhookEndpointCreate, s.WebhookEndpointCreated, status=201,
                     headers=once, tags=hooks,
                     description="https only (loopback and http only for local runs); URLs "
                                 "resolving to private, loopback, link-local or metadata "
                                 "addresses are refused. The answer carries the signing "
                                 "secret (Standard Webhooks, whsec_…).")
    openapi.register("/api/v1/webhook-endpoints", "get", "List webhook endpoints",
                     response_schema=s.WebhookEndpointList, tags=hooks)
    openapi.register("/api/v1/webhook-endpoints/{id}", "get", "Fetch a webhook endpoint",
                     response_schema=s.WebhookEndpointView, tags=hooks)
    openapi.register("/api/v1/webhook-endpoints/{id}", "patch", "Change, disable or enable "
                     "a webhook endpoint", s.WebhookEndpointUpdate, s.WebhookEndpointView,
                     tags=hooks, description="enabled: false cancels pending deliveries.")
    openapi.register("/api/v1/webhook-endpoints/{id}", "delete", "Delete a webhook endpoint",
                     status=204, tags=hooks)
    openapi.register("/api/v1/webhook-endpoints/{id}/rotate-secret", "post",
                     "Rotate the signing secret", response_schema=s.WebhookSecret, tags=hooks,
                     description="For 24 hours deliveries are signed with both secrets.")
    openapi.register("/api/v1/webhook-endpoints/{id}/secret", "get", "The signing secret",
                     response_schema=s.WebhookSecret, tags=hooks)
    openapi.register("/api/v1/webhook-deliveries", "get", "List webhook deliveries",
                     response_schema=s.WebhookDeliveryPage, tags=hooks, query={
                         "endpoint_id": "Only this endpoint's", "event_id": "Only this event's",
                         "status": "pending, succeeded, failed or cancelled",
                         "page": "1, 2, … (default 1)", "per_page": "1–100 (default 50)"})
    openapi.register("/api/v1/webhook-deliveries/{id}", "get",
                     "Fetch a delivery with its attempts", response_schema=s.WebhookDeliveryView,
                     tags=hooks)
    openapi.register("/api/v1/webhook-deliveries/{id}/replay", "post",
                     "Send the event again (same webhook-id)",
                     response_schema=s.WebhookDeliveryView, status=202, headers=once,
                     tags=hooks)
    openapi.register("/api/v1/email-templates", "get", "Which e-mail templates are your own",
                     response_schema=s.EmailTemplateList, tags=mail)
    openapi.register("/api/v1/email-templates/{kind}/{language}", "get",
                     "Fetch an e-mail template (yours or the built-in one)",
                     response_schema=s.EmailTemplateView, tags=mail)
    openapi.register("/api/v1/email-templates/{kind}/{language}", "put",
                     "Save an e-mail template", s.EmailTemplateBody, s.EmailTemplateView,
                     tags=mail, description="Checked when saved: an unknown placeholder or a "
                                            "template error answers 400 naming the part and "
                                            "line (fields.<part>[].params.line).")
    openapi.register("/api/v1/email-templates/{kind}/{language}", "delete",
                     "Back to the built-in template", status=204, tags=mail)
    openapi.register("/api/v1/emails", "get", "The mail log", response_schema=s.MailLogPage,
                     tags=mail, query={"contract_id": "Only this contract's",
                                       "kind": "welcome, invoice, credit_note, reminder, "
                                               "cancellation or portal_link",
                                       "status": "queued, retrying, sent, failed or skipped",
                                       "page": "1, 2, … (default 1)",
                                       "per_page": "1–100 (default 50)"})
    openapi.register("/api/v1/emails/{id}", "get", "One e-mail of the log",
                     response_schema=s.MailLogEntry, tags=mail)
    openapi.register("/api/v1/emails/portal-link", "post",
                     "E-mail the customer a fresh portal link", s.PortalLinkEmailRequest,
                     s.MailLogEntry, status=202, headers=once, tags=mail)


_register_openapi()
