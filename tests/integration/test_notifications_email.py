"""E-mails from a real notifications container to a real SMTP server (aiosmtpd on loopback).

The neighbouring services (tokens, portal, signup, documents) are small stand-ins answering
from a ``World`` the test fills; everything of the notifications service itself is real.
"""
import datetime as dt
import email
import re
from email import policy

import pytest
from aiosmtpd.controller import Controller
from nameko.standalone.rpc import ServiceRpcProxy

from services.common.errors import InvalidInput, NotFound
from services.notifications.service import NotificationsService
from tests.integration.test_notifications_kit import (
    Receiver,
    World,
    contract_created,
    contract_view,
    freeze,
    invoice_issued,
    new_merchant_id,
    publish,
    start_neighbours,
)
from tests.support.cluster import free_port, wait_until

PDF = b"%PDF-1.7\n% a tiny stand-in invoice\n%%EOF\n"


class SmtpServer:
    """Keeps every accepted message; ``answers`` (a list) scripts refusals of DATA,
    ``rcpt_answers`` refusals of RCPT TO. Offers PIPELINING (as Postfix does) unless told
    not to."""

    def __init__(self, pipelining: bool = True):
        self.messages: list[email.message.EmailMessage] = []
        self.answers: list[str] = []
        self.rcpt_answers: list[str] = []
        self.connections = 0
        self.pipelining = pipelining
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.controller.start()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.connections += 1  # one EHLO per connection
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_answers:
            return self.rcpt_answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it so
        if self.answers:
            return self.answers.pop(0)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.messages if address in m["To"]]


@pytest.fixture
def smtp(request):
    server = SmtpServer(pipelining=getattr(request, "param", True))
    yield server
    server.controller.stop()


@pytest.fixture
def world(container_factory, rabbit_config):
    world = World()
    start_neighbours(container_factory, rabbit_config, world)
    return world


@pytest.fixture
def notifications(start_service, smtp, world):
    return start_service(NotificationsService, "notifications", MAIL_TRANSPORT="smtp",
                         SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.controller.port,
                         MAIL_FROM="Portico <mail@portico.test>", MAIL_POLL_SECONDS=0.05,
                         WEBHOOKS_POLL_SECONDS=0.05, WEBHOOKS_ALLOW_LOOPBACK="true",
                         PUBLIC_URL=world.public_url)


@pytest.fixture
def rpc(rabbit_config, notifications):
    with ServiceRpcProxy("notifications", rabbit_config, timeout=20) as proxy:
        yield proxy


def a_contract(world, merchant=None, **kwargs):
    event = contract_created(merchant or new_merchant_id(), **kwargs)
    world.contracts[(event.merchant_id, event.aggregate_id)] = contract_view(event)
    return event


def portal_links(text: str) -> list[str]:
    return re.findall(r"http://portico\.test/portal\?token=[^\s\"<]+", text)


def test_welcome_mail_has_both_parts_and_a_fresh_portal_link(rpc, smtp, world,
                                                             rabbit_config):
    event = a_contract(world)
    publish(rabbit_config["AMQP_URI"], event)

    message = wait_until(lambda: smtp.to("ann@example.com") and smtp.to("ann@example.com")[0],
                         timeout=10, what="the welcome mail")
    assert message["Subject"] == "Welcome to Pro monthly"
    assert message["To"] == "ann@example.com"
    assert message["From"] == "Acme GmbH <mail@portico.test>"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Hello Ann Lee," in text and "January 15, 2027" in text
    [(merchant, contract, token)] = world.minted
    assert (merchant, contract) == (event.merchant_id, event.aggregate_id)
    assert portal_links(text) == [f"http://portico.test/portal?token={token}"]
    assert f'href="http://portico.test/portal?token={token}"' in html
    assert "{SelfServicePortalUrl}" not in text + html

    [logged] = rpc.list_emails(event.merchant_id)["items"]
    assert logged["status"] == "sent" and logged["kind"] == "welcome"
    assert logged["recipient"] == "ann@example.com" and logged["attempts"] == 1
    assert logged["message_id"] == message["Message-ID"]
    assert logged["cause_event_id"] == event.event_id


def test_redelivered_event_sends_no_second_mail_or_webhook(rpc, smtp, world, rabbit_config,
                                                           notifications):
    receiver = Receiver()
    try:
        event = a_contract(world)
        rpc.create_webhook_endpoint(event.merchant_id, {"url": receiver.url + "/hook",
                                                        "event_types": ["ContractCreated"]})
        publish(rabbit_config["AMQP_URI"], event)
        wait_until(lambda: smtp.messages and receiver.requests, timeout=10,
                   what="the mail and the webhook")

        publish(rabbit_config["AMQP_URI"], event, event)  # redelivered, twice
        later = a_contract(world, event.merchant_id, email="bo@example.com")
        publish(rabbit_config["AMQP_URI"], later)  # handled after the duplicates
        wait_until(lambda: smtp.to("bo@example.com") and len(receiver.requests) >= 2,
                   timeout=10, what="the next event's mail and webhook")

        assert len(smtp.to("ann@example.com")) == 1
        assert [r.headers["webhook-id"] for r in receiver.requests] == [event.event_id,
                                                                        later.event_id]
        assert rpc.list_emails(event.merchant_id)["total"] == 2
    finally:
        receiver.close()


def test_a_backlog_larger_than_a_batch_is_sent_once_each_over_few_connections(
        start_service, smtp, world, rabbit_config):
    start_service(NotificationsService, "notifications", MAIL_TRANSPORT="smtp",
                  SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.controller.port,
                  MAIL_FROM="Portico <mail@portico.test>", MAIL_BATCH_SIZE=3,
                  MAIL_CONCURRENCY=2, PUBLIC_URL=world.public_url)
    merchant = new_merchant_id()
    contracts = [a_contract(world, merchant, email=f"c{n}@example.com") for n in range(12)]
    publish(rabbit_config["AMQP_URI"], *contracts)

    wait_until(lambda: len(smtp.messages) >= 12, timeout=20, what="twelve welcome mails")
    assert sorted(m["To"] for m in smtp.messages) == sorted(f"c{n}@example.com"
                                                             for n in range(12))
    assert len({m["Message-ID"] for m in smtp.messages}) == 12
    assert 1 <= smtp.connections <= 4  # two senders, each connection reused for many mails


def test_invoice_mail_attaches_the_pdf(rpc, smtp, world, rabbit_config):
    contract = a_contract(world)
    invoice = invoice_issued(contract.merchant_id, contract.aggregate_id)
    world.pdfs[(contract.merchant_id, invoice.payload["document_id"])] = PDF
    publish(rabbit_config["AMQP_URI"], invoice)

    message = wait_until(lambda: smtp.messages and smtp.messages[0], timeout=10,
                         what="the invoice mail")
    assert message["Subject"] == "Your invoice INV-2027-0001"
    assert message.get_content_type() == "multipart/mixed"
    body, attachment = message.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"{invoice.payload['document_id']}.pdf"
    assert attachment.get_content() == PDF
    text = message.get_body(("plain",)).get_content()
    assert "€29.00" in text and "January 29, 2027" in text
    assert len(portal_links(text)) == 1


def test_merchant_template_with_language_suffix_and_fallback_language(rpc, smtp, world,
                                                                      rabbit_config):
    merchant = new_merchant_id()
    world.settings[merchant] = {"default_language": "de", "name": "Beispiel GmbH"}
    rpc.put_email_template(merchant, "welcome", "de", {
        "subject": "Hallo {customer.first_name}",
        "text": "Ihr Portal: {SelfServicePortalUrl}?language=de\n{{ merchant.name }}\n",
        "html": '<p><a href="{SelfServicePortalUrl}?language=de">Portal</a> '
                "{{ customer.last_name }}</p>"})
    event = a_contract(world, merchant, language="it", last_name="<b>Lee</b>")
    publish(rabbit_config["AMQP_URI"], event)

    message = wait_until(lambda: smtp.messages and smtp.messages[0], timeout=10,
                         what="the mail")
    logged = wait_until(lambda: _mail(rpc, merchant, status="sent"), timeout=10,
                        what="the mail logged")
    [(_, _, token)] = world.minted
    assert message["Subject"] == "Hallo Ann"
    text = message.get_body(("plain",)).get_content()
    assert f"http://portico.test/portal?token={token}&language=de" in text
    assert "Beispiel GmbH" in text
    html = message.get_body(("html",)).get_content()
    assert f'href="http://portico.test/portal?token={token}&amp;language=de"' in html
    assert "&lt;b&gt;Lee&lt;/b&gt;" in html and "<b>Lee" not in html  # customer data escaped
    assert logged["language"] == "de"


def test_template_problems_are_refused_with_their_line(rpc):
    merchant = new_merchant_id()
    good = rpc.get_email_template(merchant, "invoice", "fr")
    assert good["custom"] is False and "{SelfServicePortalUrl}" in good["text"]
    assert "document.gross_total" in good["placeholders"]

    cases = {
        "text": ("Hello\n\n{customer.first_nam}\n", 3, "first_nam"),
        "html": ("<p>\n{% if customer.name %}\n", 2, "endif"),
        "subject": ("{{ customer.__class__ }}", 1, "unsafe"),
    }
    for part, (source, line, words) in cases.items():
        body = {**{k: good[k] for k in ("subject", "text", "html")}, part: source}
        with pytest.raises(InvalidInput) as refused:
            rpc.put_email_template(merchant, "invoice", "fr", body)
        [error] = refused.value.fields[part]
        assert int(error["params"]["line"]) == line, error  # (nameko sends numbers as text)
        assert words in error["message"], error
    body = {**{k: good[k] for k in ("subject", "text", "html")},
            "text": "{{ unknown_thing }}\n{% for x in customer.name %}{% endfor %}"}
    with pytest.raises(InvalidInput) as refused:
        rpc.put_email_template(merchant, "invoice", "fr", body)
    assert int(refused.value.fields["text"][0]["params"]["line"]) == 1
    assert rpc.get_email_template(merchant, "invoice", "fr")["custom"] is False

    saved = rpc.put_email_template(merchant, "invoice", "fr",
                                   {k: good[k] for k in ("subject", "text", "html")})
    assert saved["custom"] is True
    with pytest.raises(NotFound):
        rpc.get_email_template(merchant, "newsletter", "fr")
    rpc.delete_email_template(merchant, "invoice", "fr")
    assert rpc.get_email_template(merchant, "invoice", "fr")["custom"] is False


@pytest.mark.parametrize("smtp", [True, False], indirect=True, ids=["pipelined", "plain"])
def test_transient_smtp_failure_is_retried_with_backoff(rpc, smtp, world, rabbit_config,
                                                        notifications):
    clock = freeze(notifications)
    smtp.answers = ["451 4.3.0 Try again later"]
    event = a_contract(world)
    publish(rabbit_config["AMQP_URI"], event)

    logged = wait_until(lambda: _mail(rpc, event.merchant_id, status="retrying"), timeout=10,
                        what="the first attempt recorded")
    assert "451" in logged["error"] and logged["attempts"] == 1
    due = dt.datetime.fromisoformat(logged["next_attempt_at"])
    assert dt.timedelta(seconds=27) <= due - clock.now() <= dt.timedelta(seconds=33)
    assert smtp.messages == []

    clock.set(due)
    sent = wait_until(lambda: _mail(rpc, event.merchant_id, status="sent"), timeout=10,
                      what="the retry")
    assert sent["attempts"] == 2 and sent["error"] is None
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("smtp", [True, False], indirect=True, ids=["pipelined", "plain"])
@pytest.mark.parametrize("refused_at", ["DATA", "RCPT"])
def test_permanent_smtp_failure_is_recorded(rpc, smtp, world, rabbit_config, refused_at):
    if refused_at == "DATA":
        smtp.answers = ["550 5.1.1 Mailbox does not exist"]
    else:
        smtp.rcpt_answers = ["550 5.1.1 Mailbox does not exist"]
    event = a_contract(world)
    publish(rabbit_config["AMQP_URI"], event)

    failed = wait_until(lambda: _mail(rpc, event.merchant_id, status="failed"), timeout=10,
                        what="the failure recorded")
    assert failed["error"].startswith("SMTP 550") and "Mailbox does not exist" in failed["error"]
    assert failed["attempts"] == 1
    assert rpc.get_email(event.merchant_id, failed["id"])["status"] == "failed"
    assert rpc.list_emails(event.merchant_id, {"status": "failed"})["total"] == 1
    with pytest.raises(NotFound):
        rpc.get_email(new_merchant_id(), failed["id"])


def test_no_address_or_documents_by_post_are_skipped(rpc, smtp, world, rabbit_config):
    silent = a_contract(world, email=None)
    by_post = a_contract(world, dispatch_type="post", email="post@example.com")
    invoice = invoice_issued(by_post.merchant_id, by_post.aggregate_id)
    publish(rabbit_config["AMQP_URI"], silent, invoice)

    skipped = wait_until(lambda: _mail(rpc, silent.merchant_id, status="skipped"), timeout=10,
                         what="the mail without an address")
    assert skipped["error"] == "the customer has no e-mail address"
    by_post_mail = wait_until(lambda: _mail(rpc, by_post.merchant_id, status="skipped"),
                              timeout=10, what="the invoice by post")
    assert by_post_mail["kind"] == "invoice"
    assert smtp.messages == []


def test_portal_link_on_request(rpc, smtp, world):
    event = a_contract(world)

    queued = rpc.send_portal_link(event.merchant_id, {"contract_id": event.aggregate_id,
                                                      "language": "fr"})

    assert queued["kind"] == "portal_link" and queued["status"] == "queued"
    message = wait_until(lambda: smtp.messages and smtp.messages[0], timeout=10,
                         what="the portal link mail")
    assert message["Subject"] == "Votre lien vers l'espace client"
    assert len(portal_links(message.get_body(("plain",)).get_content())) == 1
    with pytest.raises(NotFound):
        rpc.send_portal_link(new_merchant_id(), {"contract_id": event.aggregate_id})


def test_the_dev_mail_page_exists_only_for_the_file_transport(rpc):
    with pytest.raises(NotFound):  # this container sends over SMTP
        rpc.dev_mail_outbox()


def _mail(rpc, merchant, *, status):
    items = rpc.list_emails(merchant)["items"]
    return items[0] if len(items) == 1 and items[0]["status"] == status else None
