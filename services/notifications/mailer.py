"""Sending e-mail: a file transport (local runs, ``var/mail/*.eml``) or SMTP.

``Mailer`` is a nameko dependency handing workers ``send(message)``. A transport raises
``PermanentMailError`` when trying again cannot help (the SMTP server answered 5xx); anything
else it raises (4xx answers, connection trouble, timeouts) is worth retrying.
"""
from __future__ import annotations

import contextlib
import email
import smtplib
import ssl
import time
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

from nameko.extensions import DependencyProvider

from .mime import Composed


class PermanentMailError(Exception):
    """The server refused the message for good (SMTP 5xx)."""


def file_name(message_id: str) -> str:
    return message_id.strip("<>").replace("@", "_at_").replace("/", "_") + ".eml"


class FileTransport:
    kind = "file"

    def __init__(self, directory: str):
        self.directory = Path(directory)

    @contextlib.contextmanager
    def session(self):
        yield self.send

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = file_name(message["Message-ID"])
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(bytes(message))
        tmp.rename(self.directory / name)  # readers never see half a mail

    def read(self, message_id: str) -> EmailMessage | None:
        path = self.directory / file_name(message_id)
        if not path.is_file():
            return None
        # either line end: the direct writer's mails are stored as sent (CRLF)
        return email.message_from_bytes(path.read_bytes().replace(b"\r\n", b"\n"),
                                        policy=policy.default)


def _smtp_code(exc: smtplib.SMTPException) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        # permanent only when every recipient was refused for good
        return 550 if codes and all(500 <= c < 600 for c in codes) else 450
    return getattr(exc, "smtp_code", None)


class SmtpTransport:
    kind = "smtp"

    def __init__(self, host: str, port: int, *, starttls: bool = False, username: str = "",
                 password: str = "", timeout: float = 15.0, max_idle: int = 20,
                 idle_seconds: float = 30.0):
        self.host, self.port, self.starttls = host, port, starttls
        self.username, self.password, self.timeout = username, password, timeout
        self.max_idle, self.idle_seconds = max_idle, idle_seconds
        self._idle: list[tuple[float, _SmtpSession]] = []  # (since, session), newest last

    def send(self, message: EmailMessage) -> None:
        with self.session() as send:
            send(message)

    @contextlib.contextmanager
    def session(self):
        """``send(message)`` over one connection, opened on first use and reused: by this
        session for a run of mails, and afterwards by the next session (up to ``max_idle``
        connections wait, each for ``idle_seconds``), so mails cost no connect, STARTTLS and
        login each. A connection the server has closed meanwhile is reopened once."""
        session = self._take()
        try:
            yield session.send
        finally:
            if session.smtp is not None and len(self._idle) < self.max_idle:
                self._idle.append((time.monotonic(), session))
            else:
                session.close()

    def _take(self) -> _SmtpSession:
        while self._idle:
            since, session = self._idle.pop()
            if time.monotonic() - since < self.idle_seconds:
                return session
            session.close()
        return _SmtpSession(self)

    def close(self) -> None:
        """Say goodbye on every waiting connection (the service is stopping)."""
        idle, self._idle = self._idle, []
        for _, session in idle:
            session.close()

    def connect(self) -> smtplib.SMTP:
        smtp = PipeliningSMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password)
        except BaseException:
            smtp.close()
            raise
        return smtp


class PipeliningSMTP(smtplib.SMTP):
    """``smtplib.SMTP`` that pipelines (RFC 2920) when the server offers it, as Postfix and
    every large relay do: MAIL FROM, the RCPT TOs and DATA go out in one write and their
    replies are read together, then the message; two round trips per mail instead of four.
    Refusals raise the same exceptions as ``smtplib`` (so they are classified the same)."""

    def sendmail(self, from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):
        self.ehlo_or_helo_if_needed()
        if not self.has_extn("pipelining"):
            return super().sendmail(from_addr, to_addrs, msg, mail_options, rcpt_options)
        if isinstance(msg, str):
            msg = smtplib._fix_eols(msg).encode("ascii")
        if isinstance(to_addrs, str):
            to_addrs = [to_addrs]
        options = [*([f"size={len(msg)}"] if self.has_extn("size") else []), *mail_options]
        if any(option.lower() == "smtputf8" for option in mail_options):
            if not self.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server")
            self.command_encoding = "utf-8"
        commands = [f"mail FROM:{smtplib.quoteaddr(from_addr)}{_options(options)}"]
        commands += [f"rcpt TO:{smtplib.quoteaddr(to)}{_options(rcpt_options)}"
                     for to in to_addrs]
        commands.append("data")
        self.send("".join(command + smtplib.CRLF for command in commands))
        mail_reply = self.getreply()
        refused = {}
        for to in to_addrs:
            code, text = self.getreply()
            if code not in (250, 251):
                refused[to] = (code, text)
        data_code, data_text = self.getreply()
        if data_code == 354 and (mail_reply[0] != 250 or len(refused) == len(to_addrs)):
            self.send(b"." + smtplib.bCRLF)  # nothing to deliver: end the empty message
            self.getreply()
        if mail_reply[0] != 250:
            self._rset()
            if mail_reply[0] == 421:
                self.close()
            raise smtplib.SMTPSenderRefused(*mail_reply, from_addr)
        if len(refused) == len(to_addrs):
            self._rset()
            raise smtplib.SMTPRecipientsRefused(refused)
        if data_code != 354:
            self._rset()
            if data_code == 421:
                self.close()
            raise smtplib.SMTPDataError(data_code, data_text)
        body = smtplib._quote_periods(msg)
        if body[-2:] != smtplib.bCRLF:
            body += smtplib.bCRLF
        self.send(body + b"." + smtplib.bCRLF)
        code, text = self.getreply()
        if code != 250:
            if code == 421:
                self.close()
            else:
                self._rset()
            raise smtplib.SMTPDataError(code, text)
        return refused


def _options(options) -> str:
    return (" " + " ".join(options)) if options else ""


class _SmtpSession:
    def __init__(self, transport: SmtpTransport):
        self.transport = transport
        self.smtp: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        reused = self.smtp is not None
        try:
            self._send(message)
        except smtplib.SMTPServerDisconnected:
            self.close()
            if not reused:
                raise
            self._send(message)  # the server closed an idle connection: once more, fresh

    def _send(self, message: EmailMessage) -> None:
        try:
            if self.smtp is None:
                self.smtp = self.transport.connect()
            if isinstance(message, Composed):  # already serialized, plain ASCII addresses
                self.smtp.sendmail(message.sender, [message.recipient], message.raw)
            else:
                self.smtp.send_message(message)
        except smtplib.SMTPServerDisconnected:
            raise
        except smtplib.SMTPAuthenticationError:
            self.close()
            raise  # a configuration problem: retried, so mail flows once it is fixed
        except smtplib.SMTPException as exc:
            code = _smtp_code(exc)
            if code is not None and 500 <= code < 600:
                raise PermanentMailError(f"SMTP {code}: {_smtp_text(exc)}") from None
            self.close()
            raise
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()

    def read(self, message_id: str) -> EmailMessage | None:
        return None


def _smtp_text(exc: smtplib.SMTPException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{addr}: {code} {msg.decode(errors='replace')}"
                         for addr, (code, msg) in exc.recipients.items())
    error = getattr(exc, "smtp_error", b"")
    return error.decode(errors="replace") if isinstance(error, bytes) else str(error or exc)


def transport_from_config(config: dict):
    kind = str(config.get("MAIL_TRANSPORT", "file")).lower()
    if kind == "smtp":
        return SmtpTransport(config.get("SMTP_HOST", "127.0.0.1"), int(config.get("SMTP_PORT", 25)),
                             starttls=str(config.get("SMTP_STARTTLS", "false")).lower() == "true",
                             username=config.get("SMTP_USERNAME", "") or "",
                             password=config.get("SMTP_PASSWORD", "") or "",
                             timeout=float(config.get("SMTP_TIMEOUT_SECONDS", 15)))
    return FileTransport(config.get("MAIL_DIR", "var/mail"))


class Mailer(DependencyProvider):
    """Workers get this provider: ``send(message)``, ``sender`` (an ``Address``),
    ``message_domain`` and, for the dev mail page, ``transport.kind``/``read``."""

    def setup(self):
        self.transport = transport_from_config(self.container.config)
        name, addr = parseaddr(self.container.config.get("MAIL_FROM",
                                                         "Portico <noreply@localhost>"))
        self.sender = Address(display_name=name or "Portico", addr_spec=addr or
                              "noreply@localhost")
        self.message_domain = self.sender.domain or "portico.local"

    def stop(self):
        close = getattr(self.transport, "close", None)
        if close is not None:
            close()

    def get_dependency(self, worker_ctx):
        return self

    def send(self, message: EmailMessage) -> None:
        if "From" not in message:
            message["From"] = self.sender
        self.transport.send(message)

    @contextlib.contextmanager
    def session(self):
        """``send(message)`` reusing one transport connection for a run of messages."""
        with self.transport.session() as send:
            yield send


def dev_mail_page_enabled(config: dict, transport) -> bool:
    """``DEV_MAIL_PAGE``: ``auto`` (default) shows sent mails in the gateway only when mail goes
    to files *and* Portico's public URL is on loopback (someone trying it locally)."""
    if getattr(transport, "kind", None) != "file":
        return False
    value = str(config.get("DEV_MAIL_PAGE", "auto")).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    public_url = str(config.get("PUBLIC_URL", "")).strip().lower()
    return public_url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
