"""Transports: which SMTP answers are permanent, and when the dev mail page exists."""
import smtplib

import pytest

from services.notifications.mailer import (
    FileTransport,
    PipeliningSMTP,
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


class Server:
    """A real SMTP server (aiosmtpd) that may offer PIPELINING and refuse recipients."""

    def __init__(self, pipelining: bool):
        from aiosmtpd.controller import Controller

        from tests.support.cluster import free_port
        self.pipelining, self.received, self.refuse = pipelining, [], set()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.controller.start()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 OK"


class CountingSMTP(PipeliningSMTP):
    writes = 0

    def send(self, s):
        CountingSMTP.writes += 1
        return super().send(s)


@pytest.mark.parametrize(("pipelining", "writes_per_mail"), [(True, 2), (False, 4)])
def test_pipelining_sends_a_mail_in_two_writes_when_offered(pipelining, writes_per_mail):
    server = Server(pipelining)
    try:
        smtp = CountingSMTP("127.0.0.1", server.controller.port, timeout=5)
        smtp.ehlo()
        CountingSMTP.writes = 0
        body = "Subject: hi\r\n\r\nline one\r\n.starts with a dot\r\n"
        for n in range(3):
            assert smtp.sendmail("from@p.example", [f"to{n}@p.example"], body) == {}
        assert CountingSMTP.writes == 3 * writes_per_mail
        assert [(sender, to) for sender, to, _ in server.received] == [
            ("from@p.example", [f"to{n}@p.example"]) for n in range(3)]
        assert all(b"\r\n.starts with a dot\r\n" in content for _, _, content in server.received)

        server.refuse = {"gone@p.example"}
        refused = smtp.sendmail("from@p.example", ["gone@p.example", "ok@p.example"], body)
        assert refused == {"gone@p.example": (550, b"5.1.1 no such user")}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as raised:
            smtp.sendmail("from@p.example", ["gone@p.example"], body)
        assert _smtp_code(raised.value) == 550
        smtp.sendmail("from@p.example", ["after@p.example"], body)  # still in step
        assert server.received[-1][1] == ["after@p.example"]
        smtp.quit()
    finally:
        server.controller.stop()
