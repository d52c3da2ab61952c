"""Transports: which SMTP answers are permanent, and when the dev mail page exists."""
import smtplib

import pytest

from services.notifications.mailer import (
    FileTransport,
    SmtpTransport,
    _smtp_code,
    dev_mail_page_enabled,
)


@pytest.mark.parametrize(("error", "code"), [
    (smtplib.SMTPDataError(451, b"try later"), 451),
    (smtplib.SMTPDataError(550, b"no such user"), 550),
    (smtplib.SMTPSenderRefused(553, b"bad sender", "a@b"), 553),
    (smtplib.SMTPRecipientsRefused({"a@b": (550, b"no"), "c@d": (450, b"later")}), 450),
    (smtplib.SMTPRecipientsRefused({"a@b": (550, b"no")}), 550),
    (smtplib.SMTPServerDisconnected("gone"), None),
])
def test_smtp_codes(error, code):
    assert _smtp_code(error) == code


@pytest.mark.parametrize(("transport", "setting", "public_url", "enabled"), [
    (FileTransport("/tmp/x"), "auto", "http://127.0.0.1:8000", True),
    (FileTransport("/tmp/x"), "auto", "https://portico.example.com", False),
    (FileTransport("/tmp/x"), "true", "https://portico.example.com", True),
    (FileTransport("/tmp/x"), "false", "http://127.0.0.1:8000", False),
    (SmtpTransport("h", 25), "true", "http://127.0.0.1:8000", False),
])
def test_dev_mail_page(transport, setting, public_url, enabled):
    config = {"DEV_MAIL_PAGE": setting, "PUBLIC_URL": public_url}
    assert dev_mail_page_enabled(config, transport) is enabled


class FakeSmtp:
    def __init__(self, log):
        self.log = log

    def send_message(self, message):
        self.log.append(("send", id(self)))

    def quit(self):
        self.log.append(("quit", id(self)))

    def close(self):
        pass


def counting_transport(**kwargs):
    transport = SmtpTransport("h", 25, **kwargs)
    log = []

    def connect():
        log.append(("connect", None))
        return FakeSmtp(log)
    transport.connect = connect
    return transport, log


def test_smtp_connections_are_reused_across_sessions():
    transport, log = counting_transport()
    for _ in range(3):
        with transport.session() as send:
            send("a message")
    assert [what for what, _ in log] == ["connect", "send", "send", "send"]
    assert len({who for what, who in log if what == "send"}) == 1
    transport.close()
    assert log[-1][0] == "quit"


def test_idle_smtp_connections_are_closed_not_reused():
    transport, log = counting_transport(idle_seconds=0)
    for _ in range(2):
        with transport.session() as send:
            send("a message")
    assert [what for what, _ in log] == ["connect", "send", "quit", "connect", "send"]


def test_at_most_max_idle_smtp_connections_wait():
    transport, log = counting_transport(max_idle=1)
    with transport.session() as first, transport.session() as second:
        first("a message")
        second("a message")
    assert [what for what, _ in log].count("quit") == 1

