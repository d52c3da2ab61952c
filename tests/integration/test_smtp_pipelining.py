"""SMTP pipelining against a real SMTP server (aiosmtpd on loopback): two writes per mail when
the server offers PIPELINING, four when it does not, and refusals raised as smtplib raises
them (so they are classified the same)."""
import smtplib

import pytest
from aiosmtpd.controller import Controller

from services.notifications.mailer import PipeliningSMTP, _smtp_code
from tests.support.cluster import free_port


class Server:
    """A real SMTP server (aiosmtpd) that may offer PIPELINING and refuse recipients."""

    def __init__(self, pipelining: bool):
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
