"""Tables the portal service owns: customers, contracts, the account ledger, portal sessions."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.database import UTCDateTime, add_messaging_tables, utcnow


class Base(DeclarativeBase):
    pass


add_messaging_tables(Base.metadata)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(40), index=True)
    data: Mapped[dict] = mapped_column(JSON)  # the customer fields, see common.customer_fields
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Contract(Base):
    __tablename__ = "contracts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(40), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    order_id: Mapped[str] = mapped_column(String(40), unique=True)
    plan_variant_id: Mapped[str] = mapped_column(String(40))
    plan_name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    start_date: Mapped[dt.date] = mapped_column(Date)
    trial_end: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    billing_start: Mapped[dt.date] = mapped_column(Date)
    terms: Mapped[dict] = mapped_column(JSON)
    components: Mapped[list] = mapped_column(JSON, default=list)
    coupon: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    tax: Mapped[dict] = mapped_column(JSON)
    payment_method: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    language: Mapped[str] = mapped_column(String(2), default="en")
    cancellation_requested_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    end_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    ended_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    last_billed_period_start: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    # The first day the lifecycle timer has work for this contract (a period to bill or the end
    # to record); None once it ended. Indexed so the timer never scans every contract.
    next_action_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True, index=True)
    additional_data: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AccountEntry(Base):
    """One line of a contract's account: an issued invoice (+), credit note (−) or payment (−).

    Keyed by the document (or payment) id born in its own service, so a replayed event cannot
    count twice. Amounts are gross, in integer minor units of ``currency``.
    """

    __tablename__ = "account_entries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(40), index=True)
    contract_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # invoice | credit_note | payment
    number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    booked_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PortalSession(Base):
    """A customer's portal session, opened when the tokens service accepted a link's token.

    Only the SHA-256 of the session id is stored (a 256-bit random value, so a fast hash is
    enough); ``id`` is the public ``ses_…`` for logs."""

    __tablename__ = "portal_sessions"
    __table_args__ = (Index("ix_portal_sessions_contract", "merchant_id", "contract_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[str] = mapped_column(String(40))  # the tokens service's public tok_… id
    merchant_id: Mapped[str] = mapped_column(String(40))
    contract_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
