"""Tables the signup service owns: merchants, catalog, orders, idempotency keys, logos.

Money is stored as integer minor units next to its currency (never floats, never SQLite's
lossy NUMERIC); ``services.common.money`` converts at the edges.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.database import UTCDateTime, add_messaging_tables, utcnow


class Base(DeclarativeBase):
    pass


add_messaging_tables(Base.metadata)


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    secret_key_hint: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    default_language: Mapped[str] = mapped_column(String(2), default="en")
    country: Mapped[str] = mapped_column(String(2), default="DE")
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("merchant_id", "ref", name="uq_plans_merchant_ref"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    ref: Mapped[str | None] = mapped_column(String(64), nullable=True)  # merchant's own key
    name: Mapped[dict] = mapped_column(JSON)  # {"en": "Pro", "de": "Pro"}
    description: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PlanVariant(Base):
    __tablename__ = "plan_variants"
    __table_args__ = (UniqueConstraint("merchant_id", "ref", name="uq_plan_variants_merchant_ref"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"))
    name: Mapped[dict] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3))
    recurring_fee_minor: Mapped[int] = mapped_column(BigInteger)
    setup_fee_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    billing_period_months: Mapped[int] = mapped_column(Integer, default=1)
    trial_days: Mapped[int] = mapped_column(Integer, default=0)
    notice_period: Mapped[dict] = mapped_column(JSON)  # {"value": 1, "unit": "month"}
    minimum_term: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    allow_self_service: Mapped[bool] = mapped_column(Boolean, default=True)
    component_ids: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    plan_variant_id: Mapped[str] = mapped_column(ForeignKey("plan_variants.id"))
    contract_id: Mapped[str] = mapped_column(String(40), unique=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    customer: Mapped[dict] = mapped_column(JSON)
    lines: Mapped[dict] = mapped_column(JSON)  # the priced order as the customer saw it
    language: Mapped[str] = mapped_column(String(2))
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    coupon_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IdempotencyKey(Base):
    """A merchant's ``Idempotency-Key`` and the response it got, kept 24 h."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("merchant_id", "key"),
                      Index("ix_idempotency_keys_created_at", "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer, default=200, server_default="200")
    response: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Component(Base):
    __tablename__ = "components"
    __table_args__ = (UniqueConstraint("merchant_id", "ref", name="uq_components_merchant_ref"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[dict] = mapped_column(JSON)
    kind: Mapped[str] = mapped_column(String(10))  # quantity | onoff | metered
    currency: Mapped[str] = mapped_column(String(3))
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    min_quantity: Mapped[int] = mapped_column(Integer, default=0)
    max_quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    show_in_signup: Mapped[bool] = mapped_column(Boolean, default=True)
    show_as_price_information: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (UniqueConstraint("merchant_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))  # stored upper-case
    kind: Mapped[str] = mapped_column(String(10))  # percent | fixed
    value: Mapped[str] = mapped_column(String(32))  # Decimal as text: percent or amount
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    periods: Mapped[int | None] = mapped_column(Integer, nullable=True)
    valid_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    valid_to: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    max_redemptions: Mapped[int | None] = mapped_column(Integer, nullable=True)
    redemptions: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MerchantLogo(Base):
    """The merchant's logo as re-encoded by ``logos.reencode`` (PNG or JPEG, never SVG)."""

    __tablename__ = "merchant_logos"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(20))
    digest: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
