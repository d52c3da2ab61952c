"""Building one e-mail (the Courier) with the other services replaced by plain objects, and the
mail job rows in an in-memory SQLite database."""
import base64
import datetime as dt
import hashlib
import random
from email.headerregistry import Address

import pytest
from nameko.exceptions import MethodNotFound
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from services.common import events
from services.common.errors import NotFound
from services.notifications import emails, mail_jobs
from services.notifications.mailer import PermanentMailError
from services.notifications.models import Base, MailLog

NOW = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.UTC)
PDF = b"%PDF-1.7 tiny"
CUSTOMER = {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee",
            "language": "en"}


class Services:
    """Stand-ins for the four RPC proxies."""

    def __init__(self, *, settings=None, contract=None, mint=None, pdf=None):
        self._settings, self._contract = settings, contract
        self._mint, self._pdf = mint, pdf
        self.minted = 0
        self.portal, self.signup, self.tokens, self.documents = self, self, self, self

    def get_settings(self, merchant_id):
        if isinstance(self._settings, Exception):
            raise self._settings
        return self._settings or {"default_language": "en", "merchant": {"name": "Acme"}}

    def get_contract(self, merchant_id, contract_id):
        if isinstance(self._contract, Exception):
            raise self._contract
        return self._contract or {"id": contract_id, "customer": CUSTOMER,
                                  "plan_name": "Pro", "currency": "EUR", "language": "de",
                                  "start_date": "2027-01-15"}

    def mint_token(self, merchant_id, contract_id, validity_minutes=None):
        if isinstance(self._mint, Exception):
            raise self._mint
        self.minted += 1
        return {"token": "tok", "url": f"https://p.example/portal?token=tok{self.minted}"}

    def mint_tokens(self, requests):
        if isinstance(self._mint, Exception):
            raise self._mint
        self.batches = [*getattr(self, "batches", []), requests]
        return [{"error": {"code": "not_found", "message": "contract not found"}}
                if r["contract_id"] == "ct_gone" else
                self.mint_token(r["merchant_id"], r["contract_id"]) for r in requests]

    def get_pdf(self, merchant_id, document_id, contract_id=None):
        if isinstance(self._pdf, Exception):
            raise self._pdf
        content = self._pdf or PDF
        return {"filename": "INV-1.pdf", "content_b64": base64.b64encode(content).decode(),
                "sha256": hashlib.sha256(PDF).hexdigest()}


def courier(services, sent=None, **kwargs):
    sent = [] if sent is None else sent
    return mail_jobs.Courier(portal=services.portal, signup=services.signup,
                             tokens=services.tokens, documents=services.documents,
                             send=sent.append, sender=Address("Portico", "mail", "p.example"),
                             public_url="https://p.example", now=NOW, **kwargs)


def job(kind="invoice", **overrides):
    cause = {"document_id": "doc_1", "number": "INV-1", "contract_id": "ct_1",
             "issue_date": "2027-01-15", "currency": "EUR", "gross_total": "29.00"}
    values = {"id": "mail_1", "merchant_id": f"m_{random.random()}", "kind": kind,
              "cause_event_id": "e1", "cause": cause, "contract_id": "ct_1",
              "document_id": "doc_1" if kind in emails.DOCUMENT_KINDS else None,
              "language": None, "message_id": "<x@p.example>", "attempt": 1}
    values.update(overrides)
    return mail_jobs.Job(**values)


def test_invoice_in_the_contract_language_with_pdf_and_fresh_link():
    services, sent = Services(), []
    recipient, subject, language = courier(services, sent).deliver(job())
    assert (recipient, subject, language) == ("ann@example.com", "Ihre Rechnung INV-1", "de")
    [message] = sent
    assert message["From"] == "Acme <mail@p.example>"
    assert message["Message-ID"] == "<x@p.example>"
    assert "29,00\xa0€" in message.get_body(("plain",)).get_content()
    assert "https://p.example/portal?token=tok1" in message.get_body(("plain",)).get_content()
    [attachment] = message.iter_attachments()
    assert attachment.get_filename() == "INV-1.pdf" and attachment.get_content() == PDF


def test_merchant_templates_fall_back_to_their_default_language_then_built_in():
    custom = {("invoice", "fr"): {"subject": "FR {document.number}", "text": "t", "html": "h"}}
    services = Services(settings={"default_language": "fr", "merchant": {"name": "Acme"}})
    _, subject, language = courier(services, custom_templates=custom).deliver(job())
    assert (subject, language) == ("FR INV-1", "de")  # German customer, merchant wrote French
    _, subject, _ = courier(Services(), custom_templates={}).deliver(job())
    assert subject == "Ihre Rechnung INV-1"


def test_language_falls_back_to_the_merchants_default():
    contract = {"id": "ct_1", "customer": CUSTOMER, "plan_name": "Pro", "language": "it"}
    services = Services(contract=contract,
                        settings={"default_language": "fr", "merchant": {"name": "A"}})
    assert courier(services).deliver(job())[2] == "fr"
    assert emails.language_for(None, None) == "en"


def test_portal_link_is_minted_only_when_the_template_uses_it():
    services = Services()
    custom = {("invoice", "de"): {"subject": "s", "text": "no link", "html": "<p>none</p>"}}
    courier(services, custom_templates=custom).deliver(job())
    assert services.minted == 0


@pytest.mark.parametrize(("services", "kind", "expected"), [
    (Services(contract=NotFound("No such contract.")), "invoice", mail_jobs.Permanent),
    (Services(contract=ConnectionError("broker gone")), "invoice", mail_jobs.Transient),
    (Services(mint=RuntimeError("tokens down")), "invoice", mail_jobs.Transient),
    (Services(pdf=b"changed"), "invoice", mail_jobs.Transient),
    (Services(pdf=MethodNotFound("get_pdf")), "invoice", mail_jobs.Transient),
    (Services(contract={"id": "ct_1", "customer": {"email": None}}), "invoice", mail_jobs.Skip),
    (Services(contract={"id": "ct_1", "customer": {**CUSTOMER, "dispatch_type": "post"}}),
     "invoice", mail_jobs.Skip),
    (Services(contract={"id": "ct_1", "customer": {**CUSTOMER, "email": "bad address@"}}),
     "portal_link", mail_jobs.Permanent),
])
def test_outcomes_are_classified(services, kind, expected):
    with pytest.raises(expected):
        courier(services).deliver(job(kind))


def test_older_neighbours_degrade_gracefully():
    services = Services(settings=MethodNotFound("get_settings"),
                        mint=MethodNotFound("mint_token"))
    sent = []
    courier(services, sent).deliver(job("portal_link"))
    assert "https://p.example/portal\n" in sent[0].get_body(("plain",)).get_content()


def test_a_run_of_mails_mints_its_links_in_one_call():
    services, sent = Services(), []
    jobs = [job(id=f"mail_{n}", contract_id=f"ct_{n}", message_id=f"<{n}@p.example>")
            for n in range(3)] + [job(id="mail_x", contract_id="ct_gone")]
    outcomes = courier(services, sent).deliver_all(jobs)
    assert [o[0] for o in outcomes] == ["sent", "sent", "sent", "failed"]
    assert "contract not found" in outcomes[3][1]
    assert [[r["contract_id"] for r in batch] for batch in services.batches] == \
        [["ct_0", "ct_1", "ct_2", "ct_gone"]]
    links = {m.get_body(("plain",)).get_content().split("token=")[1].split()[0] for m in sent}
    assert links == {"tok1", "tok2", "tok3"}  # each mail its own link


def test_a_run_falls_back_to_one_mint_each_and_keeps_outcomes_apart():
    services = Services(mint=MethodNotFound("mint_tokens"))
    outcomes = courier(services).deliver_all([job(id="a"), job(id="b")])
    assert [o[0] for o in outcomes] == ["sent", "sent"]  # mint_token's own fallback
    down = Services(mint=RuntimeError("tokens down"))
    outcomes = courier(down).deliver_all([job(id="a"), job(id="b", kind="welcome",
                                                           cause=None, contract_id=None)])
    assert [o[0] for o in outcomes] == ["retrying", "failed"]


def test_transport_errors_are_classified():
    def refuse(message):
        raise PermanentMailError("SMTP 550: no such user")

    def flaky(message):
        raise OSError("connection reset")

    with pytest.raises(mail_jobs.Permanent):
        mail_jobs.Courier(**{**vars(courier(Services())), "send": refuse}).deliver(job())
    with pytest.raises(mail_jobs.Transient):
        mail_jobs.Courier(**{**vars(courier(Services())), "send": flaky}).deliver(job())


def test_welcome_mail_needs_no_contract_lookup():
    event_payload = {"contract_id": "ct_9", "plan_name": "Pro", "currency": "EUR",
                     "start_date": "2027-01-15", "language": "en", "customer": CUSTOMER}
    services = Services(contract=AssertionError("no lookup expected"))
    _, subject, _ = courier(services).deliver(job("welcome", cause=event_payload,
                                                  language="en"))
    assert subject == "Welcome to Pro"


# -- rows ------------------------------------------------------------------------------------
@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session


def ended_event():
    return events.new_event("ContractCancelled", merchant_id="m_1", aggregate_id="ct_1",
                            payload={"contract_id": "ct_1", "customer_id": "cu_1",
                                     "requested_on": dt.date(2027, 3, 1),
                                     "end_date": dt.date(2027, 4, 14),
                                     "last_day": dt.date(2027, 4, 14)})


def test_jobs_are_claimed_once_and_retried_on_the_backoff(session):
    mail_id = mail_jobs.queue_for_event(session, ended_event(), "cancellation", NOW,
                                        "p.example")
    session.commit()
    row = session.get(MailLog, mail_id)
    assert row.message_id.endswith("@p.example>") and row.status == "queued"

    [claimed] = mail_jobs.claim_due(session, NOW, 10)
    assert claimed.cause["requested_on"] == "2027-03-01" and claimed.attempt == 1
    assert mail_jobs.claim_due(session, NOW, 10) == []  # leased
    mail_jobs.record_failure(session, claimed, NOW, "451 later", transient=True,
                             rng=random.Random(1))
    assert row.status == "retrying" and row.attempts == 1
    delay = mail_jobs.aware(row.next_attempt_at) - NOW
    assert dt.timedelta(seconds=27) <= delay <= dt.timedelta(seconds=33)
    assert mail_jobs.claim_due(session, NOW, 10) == []  # not yet due

    later = NOW + dt.timedelta(minutes=1)
    [again] = mail_jobs.claim_due(session, later, 10)
    assert again.attempt == 2
    [sent] = mail_jobs.record_sent(session, again, later, recipient="a@example.com",
                                   subject="Hi", language="de")
    assert sent.type == "EmailSent" and sent.payload["message_id"] == row.message_id
    assert (row.status, row.attempts, row.error) == ("sent", 2, None)


def test_transient_failures_give_up_after_the_schedule(session):
    mail_jobs.queue_for_event(session, ended_event(), "cancellation", NOW, "p.example")
    now = NOW
    for attempt in range(1, mail_jobs.MAX_ATTEMPTS + 1):
        [claimed] = mail_jobs.claim_due(session, now, 10)
        assert claimed.attempt == attempt
        mail_jobs.record_failure(session, claimed, now, "timeout", transient=True)
        now += dt.timedelta(days=1)
    row = session.query(MailLog).one()
    assert row.status == "failed" and row.error.startswith("gave up after 8 attempts")
    assert mail_jobs.claim_due(session, now, 10) == []


def test_mail_log_is_scoped_to_the_merchant(session):
    mail_id = mail_jobs.queue_for_event(session, ended_event(), "cancellation", NOW,
                                        "p.example")
    row = session.get(MailLog, mail_id)
    assert mail_jobs.get_mail(session, "m_1", row.id) is row
    with pytest.raises(NotFound):
        mail_jobs.get_mail(session, "m_2", row.id)
    assert mail_jobs.list_mails(session, "m_2")[1] == 0
    assert mail_jobs.mail_view(row)["created_at"].endswith("+00:00")
