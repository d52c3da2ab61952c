"""The direct MIME writer against the ``email`` package: the same message, part by part, once
both are parsed back; and it steps aside for what it does not write."""
import datetime as dt
import email
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage

import pytest

from services.notifications import emails, mime, templates

DATE = dt.datetime(2027, 1, 15, 9, 30, tzinfo=dt.UTC)
PDF = bytes(range(256)) * 40


def rendered(subject="Welcome to Pro", text="Hello Ann,\n\nthanks.\n", html="<p>Hello</p>"):
    return templates.Rendered(subject, text, html, "marker")


def both(message_rendered, *, recipient="ann@example.com", sender=Address("Acme", "mail",
                                                                         "p.example"),
         attachments=()):
    kwargs = {"recipient": recipient, "sender": sender, "message_id": "<abc@p.example>",
              "date": DATE, "attachments": list(attachments)}
    fast = emails.compose(message_rendered, **kwargs)
    slow = emails.compose_with_email_package(message_rendered, **kwargs)
    assert isinstance(fast, mime.Composed)
    # as the SMTP server receives each: smtplib sends the email package's message with CRLF
    on_the_wire = slow.as_bytes(policy=slow.policy.clone(linesep="\r\n"))
    return (email.message_from_bytes(fast.raw, policy=policy.default),
            email.message_from_bytes(on_the_wire, policy=policy.default), fast)


def summary(message: EmailMessage) -> dict:
    return {
        "headers": {name: str(message[name]) for name in
                    ("From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted")},
        "types": [part.get_content_type() for part in message.walk()],
        "text": message.get_body(("plain",)).get_content(),
        "html": message.get_body(("html",)).get_content(),
        "attachments": [(a.get_filename(), a.get_content()) for a in message.iter_attachments()],
    }


LONG = "A line that goes on " * 12
CASES = {
    "ascii": (rendered(), Address("Acme", "mail", "p.example")),
    "german": (rendered("Ihre Kündigungsbestätigung für Pro – bis 31.01.2027",
                        "Grüße,\n\nÄnderungen ✓ 29,00\xa0€\n" + LONG + "\n.dot\nFrom here\n"
                        "trailing spaces   \n\ttab\n", "<p>Grüße &amp; mehr</p>\n"),
               Address("Müller & Söhne GmbH", "mail", "p.example")),
    "quoted name": (rendered("Votre facture FAC-1"), Address('Acme, Inc. "Best"', "mail",
                                                            "p.example")),
    "long encoded subject": (rendered("Ü" * 90), Address("", "mail", "p.example")),
    "crlf text": (rendered(text="one\r\ntwo\rthree"), Address("Acme", "mail", "p.example")),
}


@pytest.mark.parametrize("case", CASES)
def test_the_direct_writer_says_what_the_email_package_says(case):
    message_rendered, sender = CASES[case]
    fast, slow, composed = both(message_rendered, sender=sender)
    assert summary(fast) == summary(slow)
    assert composed["Subject"] == message_rendered.subject
    assert composed["Message-ID"] == "<abc@p.example>"
    for line in composed.raw.split(b"\r\n"):
        assert len(line) <= 78 and line.isascii()
    assert b"\n" not in composed.raw.replace(b"\r\n", b"")  # CRLF only


def test_attachments_and_their_structure():
    fast, slow, composed = both(rendered(), attachments=[("INV-1.pdf", PDF),
                                                         ("CN 2.pdf", b"%PDF tiny")])
    assert summary(fast) == summary(slow)
    assert fast.get_content_type() == "multipart/mixed"
    assert [p.get_content_type() for p in fast.iter_parts()] == [
        "multipart/alternative", "application/pdf", "application/pdf"]
    assert composed.get_content_type() == "multipart/mixed"  # parsed on demand


@pytest.mark.parametrize(("recipient", "attachments", "sender"), [
    ("ann@exämple.com", (), Address("Acme", "mail", "p.example")),
    ('"ann lee"@example.com', (), Address("Acme", "mail", "p.example")),
    ("ann@example.com", [("Rechnung Ä.pdf", PDF)], Address("Acme", "mail", "p.example")),
    ("ann@example.com", (), Address("A" * 80, "mail", "p.example")),  # would need folding
])
def test_what_it_does_not_write_goes_to_the_email_package(recipient, attachments, sender):
    message = emails.compose(rendered(), recipient=recipient, sender=sender,
                             message_id="<abc@p.example>", date=DATE,
                             attachments=list(attachments))
    assert isinstance(message, EmailMessage)


def test_a_long_ascii_subject_goes_to_the_email_package():
    message = emails.compose(rendered("Your invoice " * 8), recipient="ann@example.com",
                             sender=Address("Acme", "mail", "p.example"),
                             message_id="<abc@p.example>", date=DATE)
    assert isinstance(message, EmailMessage)


def test_an_address_the_email_package_refuses_is_still_refused():
    with pytest.raises(Exception) as raised:
        emails.compose(rendered(), recipient="änn@example.com",
                       sender=Address("Acme", "mail", "p.example"),
                       message_id="<abc@p.example>", date=DATE)
    assert "non-ASCII" in str(raised.value)
