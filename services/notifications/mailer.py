"""Sending e-mail: a file transport (local runs, ``var/mail/*.eml``) or SMTP.

``Mailer`` is a nameko dependency handing workers ``send(message) -> message id``.
"""
from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from nameko.extensions import DependencyProvider


class FileTransport:
    def __init__(self, directory: str):
        self.directory = Path(directory)

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = message["Message-ID"].strip("<>").replace("@", "_at_").replace("/", "_")
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(bytes(message))
        tmp.rename(self.directory / f"{name}.eml")  # readers never see half a mail


class SmtpTransport:
    def __init__(self, host: str, port: int, *, starttls: bool = False, username: str = "",
                 password: str = "", timeout: float = 15.0):
        self.host, self.port, self.starttls = host, port, starttls
        self.username, self.password, self.timeout = username, password, timeout

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(message)


def transport_from_config(config: dict):
    kind = str(config.get("MAIL_TRANSPORT", "file")).lower()
    if kind == "smtp":
        return SmtpTransport(config.get("SMTP_HOST", "127.0.0.1"), int(config.get("SMTP_PORT", 25)),
                             starttls=str(config.get("SMTP_STARTTLS", "false")).lower() == "true",
                             username=config.get("SMTP_USERNAME", "") or "",
                             password=config.get("SMTP_PASSWORD", "") or "")
    return FileTransport(config.get("MAIL_DIR", "var/mail"))


class Mailer(DependencyProvider):
    def setup(self):
        self.transport = transport_from_config(self.container.config)
        self.sender = self.container.config.get("MAIL_FROM", "Portico <noreply@localhost>")

    def get_dependency(self, worker_ctx):
        return self

    def send(self, message: EmailMessage) -> str:
        if "From" not in message:
            message["From"] = self.sender
        if "Message-ID" not in message:
            message["Message-ID"] = make_msgid(domain="portico.local")
        self.transport.send(message)
        return message["Message-ID"]
