"""E-mails as durable jobs: queued with the event, sent later, every outcome in the mail log.

An event handler only writes a ``mail_log`` row (``queued``), in the same transaction as its
inbox row, so a redelivered event never queues a second e-mail. The ``send_emails`` timer then
claims due rows (a lease), commits, and for each one gathers what it needs over RPC (contract,
merchant settings, a freshly minted portal link, the PDF), renders, hands the message to the
transport, and records the outcome in a new transaction:

- ``sent`` (and an ``EmailSent`` event), or ``skipped`` (no address, or documents go by post);
- ``retrying`` after a transient failure (SMTP 4xx, connection trouble, a service not
  answering), on the backoff ``RETRY_SCHEDULE`` with jitter, then ``failed``;
- ``failed`` at once after a permanent failure (SMTP 5xx, unknown contract), error kept.

The only duplicate left is the one at-least-once cannot avoid: a crash after the SMTP server
accepted the message but before the outcome was recorded sends it again (same Message-ID).
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import logging
import random
import time
import uuid
from email.headerregistry import Address
from email.message import EmailMessage

import eventlet
from nameko.exceptions import IncorrectSignature, MethodNotFound
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from services.common import events
from services.common.errors import NotFound, PorticoError

from . import emails, templates
from .mailer import PermanentMailError
from .models import EmailTemplate, MailLog
from .webhook_store import aware

log = logging.getLogger(__name__)

RETRY_SCHEDULE = tuple(dt.timedelta(seconds=s) for s in (
    30, 2 * 60, 10 * 60, 30 * 60, 3600, 3 * 3600, 6 * 3600))
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
LEASE = dt.timedelta(minutes=5)
JITTER = 0.1
SETTINGS_TTL_SECONDS = 30.0


class Transient(Exception):
    """Worth trying again later."""


class Permanent(Exception):
    """Trying again will not help; recorded as failed."""


class Skip(Exception):
    """Nothing to send (no e-mail address, or the customer gets documents by post)."""


# -- queueing ----------------------------------------------------------------------------------
def _message_id(domain: str) -> str:
    # short, so the header is not folded onto a second line (some clients mind)
    return f"<{uuid.uuid4().hex}@{domain}>"


def queue_for_event(session: Session, event: events.Event, kind: str, now: dt.datetime,
                    domain: str) -> str:
    """Queue the e-mail ``event`` calls for; its id. A plain INSERT: every such event costs
    one, and the ORM's unit of work costs more than the statement."""
    payload = events.payload_schema(event.type).dump(event.payload)
    mail_id = f"mail_{uuid.uuid4().hex}"
    session.execute(_INSERT_MAIL, {
        "id": mail_id, "merchant_id": event.merchant_id, "cause_event_id": event.event_id,
        "cause_type": event.type, "cause": json.dumps(payload),
        "contract_id": payload.get("contract_id"), "document_id": payload.get("document_id"),
        "kind": kind, "language": payload.get("language"), "recipient": None,
        "subject": None, "message_id": _message_id(domain), "status": "queued",
        "attempts": 0, "next_attempt_at": now, "lease_until": None, "error": None,
        "created_at": now, "sent_at": None})
    return mail_id


_INSERT_MAIL = MailLog.__table__.insert()


def queue_portal_link(session: Session, merchant_id: str, contract_id: str,
                      language: str | None, now: dt.datetime, domain: str) -> MailLog:
    row = MailLog(id=f"mail_{uuid.uuid4().hex}", merchant_id=merchant_id,
                  contract_id=contract_id, kind="portal_link", language=language,
                  message_id=_message_id(domain), status="queued", attempts=0,
                  next_attempt_at=now, created_at=now)
    session.add(row)
    session.flush()
    return row


# -- claiming and recording --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Job:
    id: str
    merchant_id: str
    kind: str
    cause_event_id: str | None
    cause: dict | None
    contract_id: str | None
    document_id: str | None
    language: str | None
    message_id: str
    attempt: int


def claim_due(session: Session, now: dt.datetime, limit: int,
              exclude: set[str] | frozenset = frozenset()) -> list[Job]:
    t = MailLog.__table__  # plain statements: one claim per few mails, on the hot path
    query = (select(t.c.id, t.c.merchant_id, t.c.kind, t.c.cause_event_id, t.c.cause,
                    t.c.contract_id, t.c.document_id, t.c.language, t.c.message_id,
                    t.c.attempts)
             .where(t.c.status.in_(("queued", "retrying")), t.c.next_attempt_at <= now,
                    or_(t.c.lease_until.is_(None), t.c.lease_until <= now))
             .order_by(t.c.next_attempt_at, t.c.id).limit(limit + len(exclude)))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    jobs = []
    for row in session.execute(query):
        if row.id in exclude or len(jobs) >= limit:
            continue
        jobs.append(Job(row.id, row.merchant_id, row.kind, row.cause_event_id,
                        json.loads(row.cause) if row.cause else None, row.contract_id,
                        row.document_id, row.language, row.message_id, row.attempts + 1))
    if jobs:
        session.execute(t.update().where(t.c.id.in_([j.id for j in jobs]))
                        .values(lease_until=now + LEASE))
    return jobs


def release(session: Session, ids: list[str]) -> None:
    """Give back the lease of claimed jobs that were never started (the service is stopping)."""
    session.execute(update(MailLog).where(MailLog.id.in_(ids),
                                          MailLog.status.in_(("queued", "retrying")))
                    .values(lease_until=None))


def _set(session: Session, job: Job, **values) -> None:
    # a plain UPDATE by key, no read first (built once per set of columns); a row of this
    # session's identity map is expired so that it reads the new values
    session.execute(_update_mail(tuple(values)), {"mail_id": job.id, **values})
    loaded = session.identity_map.get(identity_key(MailLog, job.id))
    if loaded is not None:
        session.expire(loaded)


@functools.cache
def _update_mail(columns: tuple[str, ...]):
    t = MailLog.__table__
    return t.update().where(t.c.id == bindparam("mail_id")).values(
        {column: bindparam(column) for column in columns})


def record_sent(session: Session, job: Job, now: dt.datetime, *, recipient: str,
                subject: str, language: str) -> list[events.Event]:
    _set(session, job, status="sent", attempts=job.attempt, sent_at=now, recipient=recipient,
         subject=subject[:300], language=language, lease_until=None, next_attempt_at=None,
         error=None)
    return [events.new_event(
        "EmailSent", merchant_id=job.merchant_id, aggregate_id=job.contract_id or job.id,
        payload={"message_id": job.message_id, "kind": job.kind,
                 "contract_id": job.contract_id, "cause_event_id": job.cause_event_id},
        occurred_at=now)]


def record_skipped(session: Session, job: Job, now: dt.datetime, reason: str) -> None:
    _set(session, job, status="skipped", attempts=job.attempt, error=reason[:1000],
         lease_until=None, next_attempt_at=None)


def record_failure(session: Session, job: Job, now: dt.datetime, error: str, *,
                   transient: bool, rng: random.Random | None = None) -> None:
    if transient and job.attempt < MAX_ATTEMPTS:
        delay = RETRY_SCHEDULE[job.attempt - 1] * (1 + (rng or random).uniform(-JITTER, JITTER))
        _set(session, job, status="retrying", attempts=job.attempt, lease_until=None,
             next_attempt_at=now + delay, error=error[:1000])
    else:
        _set(session, job, status="failed", attempts=job.attempt, lease_until=None,
             next_attempt_at=None,
             error=(error if not transient else
                    f"gave up after {job.attempt} attempts: {error}")[:1000])


# -- building one e-mail -----------------------------------------------------------------------
_settings_cache: dict[str, tuple[float, dict]] = {}  # merchant id → (expires, settings)


@dataclasses.dataclass
class Courier:
    """Gathers, renders and sends one job. The collaborators are nameko RPC proxies and the
    mail transport; nothing here touches the database."""

    portal: object
    signup: object
    tokens: object
    documents: object
    send: object  # callable(EmailMessage)
    sender: Address
    public_url: str
    now: dt.datetime
    rpc_timeout: float = 10.0
    custom_templates: dict = dataclasses.field(default_factory=dict)

    def _call(self, what: str, method, *args):
        try:
            with eventlet.Timeout(self.rpc_timeout):
                return method(*args)
        except eventlet.Timeout:
            raise Transient(f"{what}: no answer within {self.rpc_timeout:g} s") from None
        except NotFound as exc:
            raise Permanent(f"{what}: {exc}") from None
        except (MethodNotFound, IncorrectSignature):
            raise
        except PorticoError as exc:
            raise Permanent(f"{what}: {exc}") from None
        except Exception as exc:  # broker trouble, a service that is down or failing
            raise Transient(f"{what}: {type(exc).__name__}: {exc}") from None

    def settings(self, merchant_id: str) -> dict:
        cached = _settings_cache.get(merchant_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            settings = self._call("merchant settings", self.signup.get_settings, merchant_id)
        except (MethodNotFound, IncorrectSignature):
            log.warning("signup offers no get_settings yet; using default e-mail settings")
            settings = {}
        _settings_cache[merchant_id] = (time.monotonic() + SETTINGS_TTL_SECONDS, settings)
        return settings

    def portal_url(self, job: Job) -> str:
        try:
            minted = self._call("portal link", self.tokens.mint_token, job.merchant_id,
                                job.contract_id)
        except (MethodNotFound, IncorrectSignature):
            # An older tokens service: a mail whose link leads to the portal's sign-in beats
            # losing the e-mail. Never happens once tokens offers mint_token.
            log.error("tokens offers no mint_token; sending the portal address without token")
            return f"{self.public_url.rstrip('/')}/portal"
        return minted["url"]

    def attachment(self, job: Job) -> tuple[str, bytes]:
        try:
            pdf = self._call("document PDF", self.documents.get_pdf, job.merchant_id,
                             job.document_id, job.contract_id)
        except (MethodNotFound, IncorrectSignature) as exc:
            raise Transient(f"documents cannot hand out PDFs yet ({type(exc).__name__})") \
                from None
        content = base64.b64decode(pdf["content_b64"])
        if pdf.get("sha256") and hashlib.sha256(content).hexdigest() != pdf["sha256"]:
            raise Transient("document PDF: checksum mismatch")
        return pdf.get("filename") or f"{job.document_id}.pdf", content

    def contract(self, job: Job) -> dict:
        if job.kind == "welcome" and job.cause:  # the event carries all of it
            return {**job.cause, "id": job.cause.get("contract_id")}
        if not job.contract_id:
            raise Permanent("the e-mail has no contract")
        try:
            return self._call("contract", self.portal.get_contract, job.merchant_id,
                              job.contract_id)
        except (MethodNotFound, IncorrectSignature) as exc:
            raise Transient(f"portal cannot answer get_contract ({type(exc).__name__})") \
                from None

    def portal_urls(self, jobs: list[Job]) -> dict[str, str | Exception]:
        """A fresh portal link for each job, minted in one call: job id → URL, or the
        Transient/Permanent exception that job's mail gets."""
        if len(jobs) == 1:
            return _one_each(jobs, self.portal_url)
        try:
            minted = self._call("portal links", self.tokens.mint_tokens, [
                {"merchant_id": job.merchant_id, "contract_id": job.contract_id}
                for job in jobs])
        except (MethodNotFound, IncorrectSignature):
            return _one_each(jobs, self.portal_url)  # a tokens service without mint_tokens
        except (Transient, Permanent) as exc:
            return {job.id: exc for job in jobs}
        return {job.id: answer["url"] if "url" in answer else Permanent(
                    f"portal link: {answer.get('error', {}).get('message', answer)}")
                for job, answer in zip(jobs, minted, strict=True)}

    def build(self, job: Job) -> tuple[EmailMessage, str, str]:
        """The message, its recipient and language; raises Transient/Permanent/Skip."""
        draft = self.draft(job)
        return self.finish(draft, self.portal_url(job) if draft.needs_portal_url else None)

    def draft(self, job: Job) -> Draft:
        """Everything but the portal link: raises Transient/Permanent/Skip."""
        contract = self.contract(job)
        customer = contract.get("customer") or {}
        recipient = (customer.get("email") or "").strip()
        if not recipient:
            raise Skip("the customer has no e-mail address")
        if job.kind in emails.DOCUMENT_KINDS and customer.get("dispatch_type") == "post":
            raise Skip("the customer receives documents by post")
        settings = self.settings(job.merchant_id)
        merchant = settings.get("merchant") or {}
        language = emails.language_for(job.language or contract.get("language")
                                       or customer.get("language"),
                                       settings.get("default_language"))
        parts = self.template(job.kind, language, settings.get("default_language"))
        values = emails.context(job.kind, language, customer=customer, contract=contract,
                                merchant=merchant, cause=job.cause)
        try:
            rendered = templates.render(parts, values)
        except Exception as exc:  # a saved template is checked; this is a last resort
            log.error("template of %s failed at send time (%s); using the built-in one",
                      job.merchant_id, exc)
            rendered = templates.render(emails.template_parts(job.kind, language, None), values)
        attachments = [self.attachment(job)] if job.kind in emails.DOCUMENT_KINDS and \
            job.document_id else []
        sender = Address(display_name=_one_line(merchant.get("name")) or
                         self.sender.display_name, addr_spec=self.sender.addr_spec)
        return Draft(job, rendered, recipient, language, sender, attachments)

    def finish(self, draft: Draft, portal_url: str | None) -> tuple[EmailMessage, str, str]:
        rendered = draft.rendered
        if draft.needs_portal_url:
            rendered = rendered.with_portal_url(portal_url)
        try:
            message = emails.compose(rendered, recipient=draft.recipient, sender=draft.sender,
                                     message_id=draft.job.message_id, date=self.now,
                                     attachments=draft.attachments)
        except Exception as exc:  # the header parser raises several kinds for a bad address
            raise Permanent(f"cannot address the e-mail to {draft.recipient!r}: "
                            f"{type(exc).__name__} {exc}") from None
        return message, draft.recipient, draft.language

    def template(self, kind: str, language: str, merchant_default: str | None) -> dict:
        """The merchant's own template in the language, else in their default language, else
        the built-in one in the language."""
        for candidate in (language, merchant_default):
            custom = self.custom_templates.get((kind, candidate))
            if custom:
                return custom
        return emails.template_parts(kind, language, None)

    def deliver(self, job: Job) -> tuple[str, str, str]:
        return self.hand_over(*self.build(job))

    def hand_over(self, message: EmailMessage, recipient: str, language: str):
        try:
            self.send(message)
        except PermanentMailError as exc:
            raise Permanent(str(exc)) from None
        except Exception as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from None
        return recipient, str(message["Subject"]), language

    def deliver_all(self, jobs: list[Job]) -> list[tuple]:
        """Build and send several jobs, minting their portal links in one call; each job's
        outcome, in order: ``("sent", recipient, subject, language)``, ``("skipped", why)``,
        ``("failed", why)`` or ``("retrying", why)``."""
        outcomes: dict[str, tuple] = {}
        drafts = []
        for job in jobs:
            outcome = _outcome(lambda job=job: drafts.append(self.draft(job)), job)
            if outcome is not None:
                outcomes[job.id] = outcome
        urls = self.portal_urls([d.job for d in drafts if d.needs_portal_url])
        for draft in drafts:
            def send(draft=draft):
                url = urls.get(draft.job.id)
                if isinstance(url, Exception):
                    raise url
                return ("sent", *self.hand_over(*self.finish(draft, url)))
            outcomes[draft.job.id] = _outcome(send, draft.job)
        return [outcomes[job.id] for job in jobs]


@dataclasses.dataclass(frozen=True)
class Draft:
    """A job's e-mail rendered, waiting only for its portal link (if it has one)."""

    job: Job
    rendered: templates.Rendered
    recipient: str
    language: str
    sender: Address
    attachments: list

    @property
    def needs_portal_url(self) -> bool:
        return self.rendered.uses_portal_url


def _one_each(jobs: list[Job], mint) -> dict[str, str | Exception]:
    urls: dict[str, str | Exception] = {}
    for job in jobs:
        try:
            urls[job.id] = mint(job)
        except (Transient, Permanent) as exc:
            urls[job.id] = exc
    return urls


def _outcome(attempt, job: Job) -> tuple | None:
    """Run ``attempt()``; its outcome tuple (None when it returns none), every failure
    classified. A bug must not leave the job leased and silent."""
    try:
        return attempt()
    except Skip as exc:
        return ("skipped", str(exc))
    except Permanent as exc:
        return ("failed", str(exc))
    except Transient as exc:
        return ("retrying", str(exc))
    except Exception as exc:
        log.exception("e-mail %s failed unexpectedly", job.id)
        return ("retrying", f"{type(exc).__name__}: {exc}")


def _one_line(value) -> str:
    return " ".join(str(value or "").split())[:200]


def custom_templates(session: Session, merchant_ids: set[str]) -> dict[str, dict]:
    """``{merchant_id: {(kind, language): parts}}`` for the merchants of a batch."""
    found: dict[str, dict] = {m: {} for m in merchant_ids}
    if not merchant_ids:
        return found
    for row in session.scalars(select(EmailTemplate)
                               .where(EmailTemplate.merchant_id.in_(merchant_ids))):
        found[row.merchant_id][(row.kind, row.language)] = {
            "subject": row.subject, "text": row.text, "html": row.html}
    return found


def send_all(courier: Courier, jobs: list[Job], transaction, now_fn, rng=None) -> list[str]:
    """Build and send jobs (``Courier.deliver_all``), then record every outcome in one new
    transaction; their statuses."""
    outcomes = courier.deliver_all(jobs)
    with transaction() as tx:
        now = now_fn()
        for job, outcome in zip(jobs, outcomes, strict=True):
            if outcome[0] == "sent":
                for event in record_sent(tx.session, job, now, recipient=outcome[1],
                                         subject=outcome[2], language=outcome[3]):
                    tx.announce(event, now)
            elif outcome[0] == "skipped":
                record_skipped(tx.session, job, now, outcome[1])
            else:
                record_failure(tx.session, job, now, outcome[1],
                               transient=outcome[0] == "retrying", rng=rng)
    for job, outcome in zip(jobs, outcomes, strict=True):
        if outcome[0] != "sent":
            log.warning("e-mail %s (%s): %s: %s", job.id, job.kind, outcome[0], outcome[-1])
    return [outcome[0] for outcome in outcomes]


# -- the mail log API --------------------------------------------------------------------------
def get_mail(session: Session, merchant_id: str, mail_id: str) -> MailLog:
    row = session.get(MailLog, mail_id)
    if row is None or row.merchant_id != merchant_id:
        raise NotFound("No such e-mail.")
    return row


def list_mails(session: Session, merchant_id: str, *, contract_id=None, status=None, kind=None,
               page: int = 1, per_page: int = 50) -> tuple[list[MailLog], int]:
    query = select(MailLog).where(MailLog.merchant_id == merchant_id)
    if contract_id:
        query = query.where(MailLog.contract_id == contract_id)
    if status:
        query = query.where(MailLog.status == status)
    if kind:
        query = query.where(MailLog.kind == kind)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(MailLog.created_at.desc(), MailLog.id.desc())
                           .offset((page - 1) * per_page).limit(per_page))
    return list(rows), total


def mail_view(row: MailLog) -> dict:
    def iso(value):
        return aware(value).isoformat() if value else None
    return {"id": row.id, "kind": row.kind, "status": row.status, "recipient": row.recipient,
            "subject": row.subject, "language": row.language, "message_id": row.message_id,
            "contract_id": row.contract_id, "document_id": row.document_id,
            "cause_event_id": row.cause_event_id, "attempts": row.attempts,
            "next_attempt_at": iso(row.next_attempt_at) if row.status == "retrying" else None,
            "error": row.error, "created_at": iso(row.created_at), "sent_at": iso(row.sent_at)}
