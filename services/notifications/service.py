"""Notifications service: e-mails to customers, signed webhooks and AMQP events for merchants.

Every merchant-visible event (``events.CATALOGUE``) arrives at one handler, which in one
transaction with its inbox row (so a redelivered event does nothing twice):
queues the event for the merchant's AMQP subscribers (``merchant_outbox``), creates one webhook
delivery per interested endpoint, and queues the customer e-mail the event calls for.
Two timers, poked as soon as such a transaction commits, then do the slow parts outside any
transaction: ``dispatch_webhooks`` and ``send_emails``.
"""
from __future__ import annotations

import eventlet
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from sqlalchemy import select

from services.common.clock import Clock
from services.common.entrypoints import event_handler, rpc, timer
from services.common.errors import InvalidInput, NotFound
from services.common.health import HealthRpc
from services.common.telemetry import Correlation

from . import (
    emails,
    fan_out,
    idempotency,
    mail_jobs,
    schemas,
    templates,
    url_guard,
    webhook_store,
)
from .dependencies import (
    MailDispatcher,
    NotificationsDatabase,
    WebhookDispatcher,
    dispatch_timer,
)
from .mailer import Mailer, dev_mail_page_enabled
from .models import Base, EmailTemplate, MailLog
from .webhook_store import aware

REQUIRED_SETTINGS = ["DB_URL"]


class NotificationsService(HealthRpc):
    name = "notifications"

    db = NotificationsDatabase(Base.metadata)
    correlation = Correlation()
    clock = Clock()
    config = Config()
    mailer = Mailer()
    webhook_dispatcher = WebhookDispatcher()
    mail_dispatcher = MailDispatcher()
    portal_rpc = RpcProxy("portal")
    signup_rpc = RpcProxy("signup")
    tokens_rpc = RpcProxy("tokens")
    documents_rpc = RpcProxy("documents")

    # -- every event merchants may see -------------------------------------------------------
    @event_handler("OrderSubmitted", batch=True)
    def handle_order_submitted(self, event):
        self._fan_out(event)

    @event_handler("CustomerCreated", batch=True)
    def handle_customer_created(self, event):
        self._fan_out(event)

    @event_handler("ContractCreated", batch=True)
    def handle_contract_created(self, event):
        self._fan_out(event)  # + the welcome e-mail

    @event_handler("CustomerChanged", batch=True)
    def handle_customer_changed(self, event):
        self._fan_out(event)

    @event_handler("ContractChanged", batch=True)
    def handle_contract_changed(self, event):
        self._fan_out(event)

    @event_handler("ContractCancelled", batch=True)
    def handle_contract_cancelled(self, event):
        self._fan_out(event)  # + the cancellation confirmation

    @event_handler("ContractEnded", batch=True)
    def handle_contract_ended(self, event):
        self._fan_out(event)

    @event_handler("SelfServiceTokenIssued", batch=True)
    def handle_self_service_token_issued(self, event):
        self._fan_out(event)

    @event_handler("SelfServiceTokensRevoked", batch=True)
    def handle_self_service_tokens_revoked(self, event):
        self._fan_out(event)

    @event_handler("InvoiceIssued", batch=True)
    def handle_invoice_issued(self, event):
        self._fan_out(event)  # + the invoice e-mail with its PDF

    @event_handler("CreditNoteIssued", batch=True)
    def handle_credit_note_issued(self, event):
        self._fan_out(event)  # + the credit note e-mail with its PDF

    @event_handler("ReminderIssued", batch=True)
    def handle_reminder_issued(self, event):
        self._fan_out(event)  # + the reminder e-mail with its PDF

    @event_handler("PaymentReceived", batch=True)
    def handle_payment_received(self, event):
        self._fan_out(event)

    # this service's own EmailSent and WebhookDeliveryFailed are fanned out where they are
    # recorded (``Transaction.announce``), not heard back from the broker

    def _fan_out(self, event):
        now = self.clock.now()
        self.db.merchant_event_staged()
        if fan_out.to_merchant(self.db.session, event, now, self.db.endpoints):
            self.db.poke_after_commit("dispatch_webhooks")
        kind = emails.kind_for(event.type)
        if kind:
            mail_jobs.queue_for_event(self.db.session, event, kind, now,
                                      self.mailer.message_domain)
            self.db.poke_after_commit("send_emails")

    # -- dispatchers (config: WEBHOOKS_POLL_SECONDS, MAIL_POLL_SECONDS) ----------------------
    @dispatch_timer("WEBHOOKS_POLL_SECONDS")
    def dispatch_webhooks(self):
        self.webhook_dispatcher.dispatch_due()

    @dispatch_timer("MAIL_POLL_SECONDS")
    def send_emails(self):
        self.mail_dispatcher.dispatch_due(mail_jobs.Courier(
            portal=self.portal_rpc, signup=self.signup_rpc, tokens=self.tokens_rpc,
            documents=self.documents_rpc, send=None, sender=self.mailer.sender,
            public_url=str(self.config.get("PUBLIC_URL", "")), now=self.clock.now()))

    # -- webhook endpoints --------------------------------------------------------------------
    @rpc
    def create_webhook_endpoint(self, merchant_id: str, body: dict,
                                idempotency_key: str | None = None) -> dict:
        """``create_webhook_endpoint("m_…", {"url": "https://…", "event_types":
        ["ContractCreated"]})`` → the endpoint with its ``secret`` (``whsec_…``)."""
        data = schemas.load(schemas.WebhookEndpointCreate, body)
        self._check_url(data["url"])  # DNS before the transaction opens
        now = self.clock.now()

        def create():
            endpoint = webhook_store.create_endpoint(self.db.session, merchant_id, data, now)
            return {**webhook_store.endpoint_view(endpoint, now), "secret": endpoint.secret}
        return idempotency.run(self.db.session, merchant_id, idempotency_key,
                               "create_webhook_endpoint", body, now, create)

    @rpc
    def list_webhook_endpoints(self, merchant_id: str) -> list[dict]:
        now = self.clock.now()
        return [webhook_store.endpoint_view(e, now)
                for e in webhook_store.list_endpoints(self.db.session, merchant_id)]

    @rpc
    def get_webhook_endpoint(self, merchant_id: str, endpoint_id: str) -> dict:
        endpoint = webhook_store.get_endpoint(self.db.session, merchant_id, endpoint_id)
        return webhook_store.endpoint_view(endpoint, self.clock.now())

    @rpc
    def update_webhook_endpoint(self, merchant_id: str, endpoint_id: str, body: dict) -> dict:
        """``{"url"?, "event_types"?, "description"?, "enabled"?}``; ``enabled: false``
        disables (pending deliveries are cancelled), ``true`` enables again."""
        data = schemas.load(schemas.WebhookEndpointUpdate, body)
        if "url" in data:
            self._check_url(data["url"])
        endpoint = webhook_store.get_endpoint(self.db.session, merchant_id, endpoint_id)
        webhook_store.update_endpoint(self.db.session, endpoint, data, self.clock.now())
        return webhook_store.endpoint_view(endpoint, self.clock.now())

    @rpc
    def delete_webhook_endpoint(self, merchant_id: str, endpoint_id: str) -> None:
        endpoint = webhook_store.get_endpoint(self.db.session, merchant_id, endpoint_id)
        webhook_store.delete_endpoint(self.db.session, endpoint, self.clock.now())

    @rpc
    def rotate_webhook_secret(self, merchant_id: str, endpoint_id: str) -> dict:
        """A new secret; deliveries carry a signature with the old one too for 24 hours."""
        endpoint = webhook_store.get_endpoint(self.db.session, merchant_id, endpoint_id)
        secret = webhook_store.rotate_secret(endpoint, self.clock.now())
        return {"id": endpoint.id, "secret": secret,
                "previous_secret_expires_at":
                    aware(endpoint.previous_secret_expires_at).isoformat()}

    @rpc
    def get_webhook_secret(self, merchant_id: str, endpoint_id: str) -> dict:
        endpoint = webhook_store.get_endpoint(self.db.session, merchant_id, endpoint_id)
        return {"id": endpoint.id, "secret": endpoint.secret}

    def _check_url(self, url: str) -> None:
        try:
            url_guard.check(url, allow_loopback=url_guard.loopback_allowed(self.config))
        except url_guard.UnsafeUrl as exc:
            raise InvalidInput(str(exc), {"url": [{"code": exc.code, "message": str(exc)}]}) \
                from None

    # -- webhook deliveries -------------------------------------------------------------------
    @rpc
    def list_webhook_deliveries(self, merchant_id: str, filters: dict | None = None) -> dict:
        """``filters``: ``endpoint_id``, ``event_id``, ``status``, ``page``, ``per_page``."""
        query = schemas.load(schemas.WebhookDeliveryFilter, filters)
        rows, total = webhook_store.list_deliveries(self.db.session, merchant_id, **query)
        return {"items": [webhook_store.delivery_view(d) for d in rows], "total": total,
                "page": query["page"], "per_page": query["per_page"]}

    @rpc
    def get_webhook_delivery(self, merchant_id: str, delivery_id: str) -> dict:
        delivery = webhook_store.get_delivery(self.db.session, merchant_id, delivery_id)
        return webhook_store.delivery_view(
            delivery, webhook_store.attempts_of(self.db.session, delivery.id))

    @rpc
    def replay_webhook_delivery(self, merchant_id: str, delivery_id: str,
                                idempotency_key: str | None = None) -> dict:
        """Send the delivery's event again (same ``webhook-id`` and body) as a new delivery."""
        now = self.clock.now()

        def replay():
            copy = webhook_store.replay(self.db.session, merchant_id, delivery_id, now)
            self.db.poke_after_commit("dispatch_webhooks")
            return webhook_store.delivery_view(copy, [])
        return idempotency.run(self.db.session, merchant_id, idempotency_key,
                               f"replay_webhook_delivery:{delivery_id}", {}, now, replay)

    # -- e-mail templates ---------------------------------------------------------------------
    @rpc
    def list_email_templates(self, merchant_id: str) -> list[dict]:
        custom = {(t.kind, t.language): t for t in self.db.session.scalars(
            select(EmailTemplate).where(EmailTemplate.merchant_id == merchant_id))}
        return [{"kind": kind, "language": language, "custom": (kind, language) in custom,
                 "updated_at": aware(custom[(kind, language)].updated_at).isoformat()
                 if (kind, language) in custom else None}
                for kind in templates.KINDS for language in templates.LANGUAGES]

    @rpc
    def get_email_template(self, merchant_id: str, kind: str, language: str) -> dict:
        """The merchant's template, or the built-in one (``custom: false``) to start from."""
        _check_kind_language(kind, language)
        row = self._template_row(merchant_id, kind, language)
        parts = {"subject": row.subject, "text": row.text, "html": row.html} if row else \
            emails.template_parts(kind, language, None)
        return {"kind": kind, "language": language, "custom": row is not None, **parts,
                "placeholders": _placeholders(kind)}

    @rpc
    def put_email_template(self, merchant_id: str, kind: str, language: str,
                           body: dict) -> dict:
        """Save after checking: any problem → ``InvalidInput`` naming the part and line."""
        _check_kind_language(kind, language)
        parts = schemas.load(schemas.EmailTemplateBody, body)
        problems = templates.validate(parts, emails.sample_context(kind, language))
        if problems:
            raise InvalidInput("The template cannot be used: " + "; ".join(
                f"{p.part}: {p.as_field_error()['message']}" for p in problems),
                {p.part: [p.as_field_error()] for p in problems})
        now = self.clock.now()
        row = self._template_row(merchant_id, kind, language)
        if row is None:
            row = EmailTemplate(id=webhook_store.new_id("tpl"), merchant_id=merchant_id,
                                kind=kind, language=language, created_at=now)
            self.db.session.add(row)
        row.subject, row.text, row.html, row.updated_at = (parts["subject"], parts["text"],
                                                           parts["html"], now)
        return {"kind": kind, "language": language, "custom": True, **parts,
                "placeholders": _placeholders(kind)}

    @rpc
    def delete_email_template(self, merchant_id: str, kind: str, language: str) -> None:
        """Back to the built-in template."""
        _check_kind_language(kind, language)
        row = self._template_row(merchant_id, kind, language)
        if row is None:
            raise NotFound("There is no custom template for this kind and language.")
        self.db.session.delete(row)

    def _template_row(self, merchant_id, kind, language) -> EmailTemplate | None:
        return self.db.session.scalar(select(EmailTemplate).where(
            EmailTemplate.merchant_id == merchant_id, EmailTemplate.kind == kind,
            EmailTemplate.language == language))

    # -- the mail log -------------------------------------------------------------------------
    @rpc
    def list_emails(self, merchant_id: str, filters: dict | None = None) -> dict:
        """``filters``: ``contract_id``, ``kind``, ``status``, ``page``, ``per_page``."""
        query = schemas.load(schemas.MailLogFilter, filters)
        rows, total = mail_jobs.list_mails(self.db.session, merchant_id, **query)
        return {"items": [mail_jobs.mail_view(r) for r in rows], "total": total,
                "page": query["page"], "per_page": query["per_page"]}

    @rpc
    def get_email(self, merchant_id: str, mail_id: str) -> dict:
        return mail_jobs.mail_view(mail_jobs.get_mail(self.db.session, merchant_id, mail_id))

    @rpc
    def send_portal_link(self, merchant_id: str, body: dict,
                         idempotency_key: str | None = None) -> dict:
        """``{"contract_id": "ct_…", "language": "de"?}`` → the queued e-mail (a fresh link)."""
        data = schemas.load(schemas.PortalLinkEmailRequest, body)
        with eventlet.Timeout(10):  # the contract must be this merchant's (NotFound otherwise)
            self.portal_rpc.get_contract(merchant_id, data["contract_id"])
        now = self.clock.now()

        def queue():
            row = mail_jobs.queue_portal_link(self.db.session, merchant_id, data["contract_id"],
                                              data["language"], now, self.mailer.message_domain)
            self.db.poke_after_commit("send_emails")
            return mail_jobs.mail_view(row)
        return idempotency.run(self.db.session, merchant_id, idempotency_key,
                               "send_portal_link", body, now, queue)

    @timer(interval=3600)
    def purge_idempotency_keys(self) -> None:
        """Forget ``Idempotency-Key`` answers older than 24 hours."""
        idempotency.purge(self.db.session, self.clock.now())

    # -- the dev-only mail page (file transport, local public URL) ----------------------------
    @rpc
    def dev_mail_outbox(self, limit: int = 50) -> list[dict]:
        self._require_dev_mail()
        rows = self.db.session.scalars(select(MailLog).where(MailLog.status == "sent")
                                       .order_by(MailLog.sent_at.desc())
                                       .limit(max(1, min(int(limit), 200))))
        return [self._dev_mail(row, with_html=False) for row in rows]

    @rpc
    def dev_mail(self, mail_id: str) -> dict:
        self._require_dev_mail()
        row = self.db.session.get(MailLog, mail_id)
        if row is None or row.status != "sent":
            raise NotFound("No such e-mail.")
        return self._dev_mail(row, with_html=True)

    def _require_dev_mail(self):
        if not dev_mail_page_enabled(self.config, self.mailer.transport):
            raise NotFound("The mail page exists only for local runs with the file transport.")

    def _dev_mail(self, row: MailLog, *, with_html: bool) -> dict:
        message = self.mailer.transport.read(row.message_id)
        text = html = None
        attachments = []
        if message is not None:
            plain = message.get_body(("plain",))
            text = plain.get_content() if plain else None
            rich = message.get_body(("html",))
            html = rich.get_content() if rich and with_html else None
            attachments = [part.get_filename() for part in message.iter_attachments()]
        sent_at = aware(row.sent_at)
        return {"id": row.id, "kind": row.kind, "recipient": row.recipient,
                "subject": row.subject, "sent_at": sent_at.isoformat() if sent_at else None,
                "text": text, "html": html, "attachments": attachments}


def _check_kind_language(kind: str, language: str) -> None:
    if kind not in templates.KINDS:
        raise NotFound(f"Unknown e-mail kind {kind!r}; kinds: {', '.join(templates.KINDS)}.")
    if language not in templates.LANGUAGES:
        raise NotFound(f"Unknown language {language!r}; languages: en, de, fr.")


def _placeholders(kind: str) -> list[str]:
    names = []
    for key, value in emails.sample_context(kind).items():
        if isinstance(value, dict):
            names.extend(f"{key}.{sub}" for sub in value)
        else:
            names.append(key)
    return names
