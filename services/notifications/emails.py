"""Which e-mail an event causes, and its text (built-in defaults, en/de/fr)."""
from __future__ import annotations

import uuid
from email.message import EmailMessage

from jinja2 import select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from services.common import events

from .models import MailLog

_env = SandboxedEnvironment(autoescape=select_autoescape(default=True, default_for_string=True))
_text_env = SandboxedEnvironment(autoescape=False)

WELCOME = {
    "en": ("Welcome to {{ plan_name }}",
           "Hello {{ name }},\n\nthank you for your order. Your contract for {{ plan_name }} "
           "starts on {{ start_date }}.\n"),
    "de": ("Willkommen bei {{ plan_name }}",
           "Hallo {{ name }},\n\nvielen Dank für Ihre Bestellung. Ihr Vertrag für {{ plan_name }} "
           "beginnt am {{ start_date }}.\n"),
    "fr": ("Bienvenue chez {{ plan_name }}",
           "Bonjour {{ name }},\n\nmerci pour votre commande. Votre contrat {{ plan_name }} "
           "commence le {{ start_date }}.\n"),
}


def welcome_message(event: events.Event) -> EmailMessage | None:
    contract = event.payload
    customer = contract["customer"]
    if not customer.get("email"):
        return None
    language = contract.get("language") if contract.get("language") in WELCOME else "en"
    subject_t, body_t = WELCOME[language]
    values = {
        "name": " ".join(p for p in (customer.get("first_name"), customer.get("last_name")) if p)
        or customer.get("company_name") or customer["email"],
        "plan_name": contract["plan_name"],
        "start_date": contract["start_date"].isoformat(),
    }
    text = _text_env.from_string(body_t).render(values)
    message = EmailMessage()
    message["To"] = customer["email"]
    message["Subject"] = _text_env.from_string(subject_t).render(values)
    message.set_content(text)
    message.add_alternative(_env.from_string("<p>{{ text }}</p>").render(text=text)
                            .replace("\n", "<br>"), subtype="html")
    return message


def log_entry(event: events.Event, kind: str, message: EmailMessage, message_id: str) -> MailLog:
    return MailLog(id=f"mail_{uuid.uuid4().hex}", merchant_id=event.merchant_id,
                   cause_event_id=event.event_id, contract_id=event.payload.get("contract_id"),
                   kind=kind, recipient=message["To"], subject=message["Subject"],
                   message_id=message_id, status="sent")
