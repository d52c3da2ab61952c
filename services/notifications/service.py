"""Notifications service: e-mails to customers (webhooks and AMQP subscriptions follow)."""
from __future__ import annotations

from services.common.database import Database
from services.common.entrypoints import event_handler
from services.common.health import HealthRpc
from services.common.telemetry import Correlation

from . import emails
from .mailer import Mailer
from .models import Base

REQUIRED_SETTINGS = ["DB_URL"]


class NotificationsService(HealthRpc):
    name = "notifications"

    db = Database(Base.metadata)
    correlation = Correlation()
    mailer = Mailer()


    @event_handler("ContractCreated")
    def handle_contract_created(self, event):
        message = emails.welcome_message(event)
        if message is None:
            return
        # the inbox row commits with the log entry; a crash between send and commit may send
        # twice on redelivery, which is the at-least-once end of e-mail (SMTP has no dedup key)
        message_id = self.mailer.send(message)
        self.db.session.add(emails.log_entry(event, "welcome", message, message_id))
