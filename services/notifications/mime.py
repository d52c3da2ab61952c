"""Writing a customer e-mail's MIME bytes directly, for the common case.

The standard ``email`` package parses every header it is given and walks the message again to
serialize it: about 0.75 ms per mail, the largest part of sending one. The mails here always
have the same shape (``multipart/alternative`` text and HTML, inside ``multipart/mixed`` with
PDFs when there are any), so ``compose`` writes it in one go: headers (non-ASCII words as
RFC 2047 encoded-words), quoted-printable bodies, base64 attachments, CRLF line ends.

It handles only what it can write plainly: ASCII addresses without quoting, ASCII file names
and ASCII header lines that fit in 78 characters (else encoded-words). Anything else (an
internationalized address needing SMTPUTF8, say) returns ``None`` and the caller builds the
message with the ``email`` package as before. Tests compare both ways part by part.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import email
import functools
import re
import secrets
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

CRLF = b"\r\n"
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")  # a display name needing no quotes
_QUOTABLE = re.compile(r"[\x20-\x7e]*")
_FILE_NAME = re.compile(r"[A-Za-z0-9._ -]+")
_ENCODED_WORD_CHARS = 40  # bytes of UTF-8 per encoded-word: 56 in base64, 68 with the frame


class Composed:
    """A message already serialized, with the few headers the senders read. Anything else
    (``get_body``, ``iter_attachments``, …) comes from the message parsed on first use."""

    def __init__(self, raw: bytes, headers: dict[str, str], sender: str, recipient: str):
        self.raw, self.headers = raw, headers
        self.sender, self.recipient = sender, recipient

    def __getitem__(self, name: str):
        if name in self.headers:
            return self.headers[name]
        return self.parsed[name]

    def __contains__(self, name: str) -> bool:
        return name in self.headers or name in self.parsed

    def __bytes__(self) -> bytes:
        return self.raw

    @functools.cached_property
    def parsed(self) -> EmailMessage:
        # as a mail program reads it: local line ends
        return email.message_from_bytes(self.raw.replace(CRLF, b"\n"), policy=policy.default)

    def __getattr__(self, name: str):
        return getattr(self.parsed, name)


def compose(*, subject: str, text: str, html: str, recipient: str, sender: Address,
            message_id: str, date: dt.datetime,
            attachments: list[tuple[str, bytes]] = ()) -> Composed | None:
    """The message as bytes, or None when it needs more than this writer does."""
    if not (_PLAIN_ADDRESS.fullmatch(recipient) and _PLAIN_ADDRESS.fullmatch(sender.addr_spec)
            and all(_FILE_NAME.fullmatch(name) for name, _ in attachments)):
        return None
    from_value = _mailbox(sender.display_name, sender.addr_spec)
    subject_value = _unstructured("Subject", subject)
    if from_value is None or subject_value is None:
        return None
    headers = {"Subject": subject, "Message-ID": message_id, "From": str(sender)}
    lines = [f"From: {from_value}", f"To: {recipient}", f"Subject: {subject_value}",
             f"Date: {format_datetime(date)}", f"Message-ID: {message_id}",
             "Auto-Submitted: auto-generated", "MIME-Version: 1.0"]
    alternative = _boundary()
    body = _alternative(alternative, text, html)
    if attachments:
        mixed = _boundary()
        lines.append(f'Content-Type: multipart/mixed;\r\n boundary="{mixed}"')
        parts = [f'Content-Type: multipart/alternative;\r\n boundary="{alternative}"'.encode()
                 + CRLF + CRLF + body]
        parts += [_attachment(name, content) for name, content in attachments]
        body = _multipart(mixed, parts)
    else:
        lines.append(f'Content-Type: multipart/alternative;\r\n boundary="{alternative}"')
    raw = "\r\n".join(lines).encode("ascii") + CRLF + CRLF + body
    return Composed(raw, headers, sender.addr_spec, recipient)


def _boundary() -> str:
    # "=" never appears unescaped in quoted-printable and "-" never in base64, so no part
    # can contain a line "--" + this
    return "===============" + secrets.token_hex(10) + "=="


def _alternative(boundary: str, text: str, html: str) -> bytes:
    return _multipart(boundary, [_text_part("plain", text), _text_part("html", html)])


def _multipart(boundary: str, parts: list[bytes]) -> bytes:
    separator = b"--" + boundary.encode() + CRLF
    out = b"".join(separator + part + CRLF for part in parts)
    return out + b"--" + boundary.encode() + b"--" + CRLF


def _text_part(subtype: str, content: str) -> bytes:
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if not content.endswith("\n"):
        content += "\n"
    encoded = binascii.b2a_qp(content.encode("utf-8"), quotetabs=False, istext=True,
                              header=False)
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + \
        encoded.replace(b"\n", CRLF)


def _attachment(name: str, content: bytes) -> bytes:
    return ("Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="{name}"\r\n\r\n').encode() + \
        base64.encodebytes(content).replace(b"\n", CRLF)


def _mailbox(display_name: str, addr_spec: str) -> str | None:
    if not display_name:
        return addr_spec
    if _QUOTABLE.fullmatch(display_name):
        if _ATOMS.fullmatch(display_name) and display_name.strip() == display_name:
            phrase = display_name
        else:
            phrase = '"' + display_name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{phrase} <{addr_spec}>" if len(f"From: {phrase} <{addr_spec}>") <= 78 \
            else None
    return f"{_encoded_words(display_name)}\r\n <{addr_spec}>"


def _unstructured(name: str, value: str) -> str | None:
    if "\r" in value or "\n" in value:
        return None
    if value.isascii() and _QUOTABLE.fullmatch(value):
        return value if len(name) + 2 + len(value) <= 78 else None
    return _encoded_words(value)


def _encoded_words(value: str) -> str:
    """RFC 2047 ``=?utf-8?b?…?=`` words, each under 76 characters, folded one per line;
    never splitting a character across two words."""
    words, chunk = [], b""
    for char in value:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _ENCODED_WORD_CHARS:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode()}?=" for w in words)
