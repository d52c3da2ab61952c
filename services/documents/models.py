"""Tables the documents service owns: its copy of each contract, the issued documents, number
sequences, payments, and each merchant's document settings.

Money is stored in integer minor units of the row's currency. A document row is written, with
its number, in the same transaction that allocates the number (so numbers have no gaps); its
PDF and XML are rendered afterwards and their storage keys and SHA-256 digests filled in once
(``status`` goes ``rendering`` → ``issued``). ``content`` keeps everything the renderer needs, so
a document can always be rendered again from its row.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.database import UTCDateTime, add_messaging_tables, utcnow


class Base(DeclarativeBase):
    pass


add_messaging_tables(Base.metadata)


class DocumentSettings(Base):
    """How one merchant's documents look and are numbered; defaults apply until set."""

    __tablename__ = "document_settings"

    merchant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seller: Mapped[dict] = mapped_column(JSON)  # name, company, street, …, country, vat_id
    number_formats: Mapped[dict] = mapped_column(JSON)  # kind → pattern
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=14)
    dunning: Mapped[list] = mapped_column(JSON)  # [{"days_after_due": 7, "fee": "0.00"}, …]
    branding: Mapped[dict] = mapped_column(JSON)  # primary_color, accent_color, logo_sha256
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Contract(Base):
    """What billing needs from ``ContractCreated`` (kept here: services share no tables)."""

    __tablename__ = "contracts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    language: Mapped[str] = mapped_column(String(2))
    billing_start: Mapped[dt.date] = mapped_column(Date)
    data: Mapped[dict] = mapped_column(JSON)  # the ContractCreated payload (as on the wire)
    end_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PendingBilling(Base):
    """A ``BillingDue`` that arrived before its ``ContractCreated`` (different queues): billed
    as soon as the contract is known."""

    __tablename__ = "pending_billing"

    contract_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period_start: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    period_end: Mapped[dt.date] = mapped_column(Date)
    merchant_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NumberSequence(Base):
    """The last number given to a merchant's documents of one kind (row-locked while a
    transaction allocates, so concurrent workers queue and nobody skips or repeats)."""

    __tablename__ = "number_sequences"

    merchant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("merchant_id", "kind", "number", name="uq_documents_number"),
        # One invoice per billed period, one credit note per correction, one reminder per level:
        # a redelivered or replayed event can never issue a document twice.
        UniqueConstraint("contract_id", "kind", "billing_key", name="uq_documents_billing_key"),
        Index("ix_documents_merchant_kind_issued", "merchant_id", "kind", "issue_date"),
        Index("ix_documents_open_invoices", "kind", "payment_status", "due_date"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # invoice | credit_note | reminder
    number: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(BigInteger)
    contract_id: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    billing_key: Mapped[str] = mapped_column(String(120))
    issue_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    period_start: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    period_end: Mapped[dt.date | None] = mapped_column(Date, nullable=True)  # exclusive
    currency: Mapped[str] = mapped_column(String(3))
    net_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    # credit notes: the invoice corrected; reminders: the overdue invoice
    refers_to_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"), nullable=True,
                                                     index=True)
    reminder_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fee_minor: Mapped[int] = mapped_column(BigInteger, default=0)  # a reminder's fee
    # invoices only: what has been paid, credited and charged in reminder fees, and the state
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    credited_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    fees_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    payment_status: Mapped[str | None] = mapped_column(String(16), nullable=True)  # open | paid
    dunning_level: Mapped[int] = mapped_column(Integer, default=0)
    content: Mapped[dict] = mapped_column(JSON)  # the renderable document + billing details
    # rendering → issued; "failed" after repeated render failures (kept, never renumbered)
    status: Mapped[str] = mapped_column(String(16), default="rendering")
    pdf_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pdf_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pdf_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    xml_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    xml_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    einvoice_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    render_attempts: Mapped[int] = mapped_column(Integer, default=0)
    render_error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    issued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key", name="uq_payments_idempotency"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(64), index=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    paid_on: Mapped[dt.date] = mapped_column(Date)
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
