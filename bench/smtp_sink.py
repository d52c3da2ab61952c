"""The benchmarks' SMTP server: accepts and drops every mail, and offers PIPELINING the way
Postfix and the large relays do (aiosmtpd's own ``Sink`` does not offer it).

``python -m aiosmtpd -n -l 127.0.0.1:PORT -c bench.smtp_sink.PipeliningSink``
"""
from aiosmtpd.handlers import Sink


class PipeliningSink(Sink):
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        responses.insert(1, "250-PIPELINING")
        return responses
