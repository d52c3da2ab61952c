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
