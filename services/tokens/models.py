"""Tables the tokens service owns: self-service tokens, known contracts, failed attempts.

A token is never stored: only its SHA-256 (a 256-bit random value, so a fast hash is enough —
there is nothing to brute-force), plus a short public id for events and logs. Portal sessions
live in the portal service (``services/portal/sessions.py``).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.database import UTCDateTime, add_messaging_tables, utcnow


class Base(DeclarativeBase):
    pass


add_messaging_tables(Base.metadata)


class SelfServiceToken(Base):
    __tablename__ = "self_service_tokens"
    __table_args__ = (Index("ix_self_service_tokens_contract", "merchant_id", "contract_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # public: "tok_…"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    merchant_id: Mapped[str] = mapped_column(String(40))
    contract_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    exchanges: Mapped[int] = mapped_column(Integer, default=0)


class KnownContract(Base):
    """Contracts this service has seen (``ContractCreated``, or a confirmed lookup): which
    merchant each belongs to, so minting a token needs no call to the portal service. A
    contract never changes merchant, so a row never goes stale."""

    __tablename__ = "known_contracts"

    contract_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(40))


class FailedAttempt(Base):
    """Failed token exchanges per client (a keyed hash of its IP) and fixed time window
    (``window_no`` = Unix time // window length)."""

    __tablename__ = "failed_attempts"

    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, default=0)
