"""Tables the notifications service owns.

- ``mail_log``: one row per e-mail to send (a job: queued → sent | retrying → failed | skipped),
  created in the same transaction as the inbox row of the event that caused it.
- ``email_templates``: a merchant's own subject/text/HTML per kind and language.
- ``webhook_endpoints``, ``webhook_deliveries`` (one per endpoint and event, durable retry
  state), ``webhook_attempts`` (every HTTP call with status code, latency and error).
- ``merchant_outbox``: merchant-visible events waiting to be republished to
  ``portico.merchant-events`` with routing key ``<merchant_id>.<EventType>``.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.database import UTCDateTime, add_messaging_tables, utcnow


class Base(DeclarativeBase):
    pass


add_messaging_tables(Base.metadata)


class MailLog(Base):
    __tablename__ = "mail_log"
    __table_args__ = (
        UniqueConstraint("merchant_id", "cause_event_id", "kind", name="uq_mail_log_cause"),
        Index("ix_mail_log_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(40), index=True)
    cause_event_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    cause_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cause: Mapped[str | None] = mapped_column(Text, nullable=True)  # the event envelope, JSON
    contract_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    document_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    kind: Mapped[str] = mapped_column(String(40))
    language: Mapped[str | None] = mapped_column(String(2), nullable=True)
    recipient: Mapped[str | None] = mapped_column(String(254), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(300), nullable=True)
    message_id: Mapped[str] = mapped_column(String(200))
    # queued | retrying | sent | failed | skipped
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class EmailTemplate(Base):
    __tablename__ = "email_templates"
    __table_args__ = (UniqueConstraint("merchant_id", "kind", "language",
                                       name="uq_email_templates_kind_language"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(2))
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(40), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    event_types: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list; None = all
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Signing secrets must be readable to sign; they are random and per endpoint.
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    previous_secret_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(),
                                                                            nullable=True)
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", "replay", name="uq_webhook_delivery"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_merchant_created", "merchant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(40))
    endpoint_id: Mapped[str] = mapped_column(String(40), index=True)
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the exact bytes every attempt and replay sends
    replay: Mapped[int] = mapped_column(Integer, default=0)
    # pending | succeeded | failed (exhausted) | cancelled (endpoint disabled or deleted)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(40), index=True)
    number: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class MerchantOutbox(Base):
    __tablename__ = "merchant_outbox"
    __table_args__ = (Index("ix_merchant_outbox_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    merchant_id: Mapped[str] = mapped_column(String(64))
    routing_key: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    headers: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class IdempotencyKey(Base):
    """A merchant's ``Idempotency-Key`` on a POST and the response it got, kept 24 h."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("merchant_id", "key", name="uq_idempotency_keys"),
                      Index("ix_idempotency_keys_created_at", "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
