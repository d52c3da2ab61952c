"""Merchants and catalog: creation, key handling and merchant-scoped look-ups.

Every look-up takes the merchant it is scoped to; another merchant's id is simply not found, so
the API answers 404 exactly as for a missing one.
"""
from __future__ import annotations

import hashlib
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import money
from services.common.errors import InvalidInput, NotFound, Unauthorized

from .models import Merchant, Plan, PlanVariant

SECRET_PREFIX = "sk_"  # noqa: S105  (a prefix, not a secret)
PUBLIC_PREFIX = "pk_"


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def hash_key(key: str) -> str:
    """Keys carry 256 random bits, so one SHA-256 is enough (no slow hash needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_secret_key() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def create_merchant(session: Session, *, slug: str, name: str, country: str = "DE",
                    default_language: str = "en", secret_key: str | None = None) -> dict:
    if session.scalar(select(Merchant.id).where(Merchant.slug == slug)):
        raise InvalidInput("slug taken", {"slug": [{"code": "taken",
                                                    "message": "This slug is taken."}]})
    secret_key = secret_key or new_secret_key()
    merchant = Merchant(
        id=new_id("m"), slug=slug, name=name, secret_key_hash=hash_key(secret_key),
        secret_key_hint=secret_key[-4:], public_key=PUBLIC_PREFIX + secrets.token_urlsafe(24),
        default_language=default_language, country=country, settings={},
    )
    session.add(merchant)
    session.flush()
    return {"merchant_id": merchant.id, "slug": slug, "secret_key": secret_key,
            "public_key": merchant.public_key}


def rotate_secret_key(session: Session, merchant_id: str, secret_key: str | None = None) -> str:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("merchant not found")
    secret_key = secret_key or new_secret_key()
    merchant.secret_key_hash = hash_key(secret_key)
    merchant.secret_key_hint = secret_key[-4:]
    return secret_key


def authenticate(session: Session, secret_key: str) -> Merchant:
    if not secret_key or not secret_key.startswith(SECRET_PREFIX):
        raise Unauthorized("invalid API key")
    merchant = session.scalar(select(Merchant).where(
        Merchant.secret_key_hash == hash_key(secret_key)))
    if merchant is None:
        raise Unauthorized("invalid API key")
    return merchant


def merchant_by_slug(session: Session, slug: str) -> Merchant:
    merchant = session.scalar(select(Merchant).where(Merchant.slug == slug))
    if merchant is None:
        raise NotFound("merchant not found")
    return merchant


def get_variant(session: Session, merchant_id: str, variant_id: str) -> PlanVariant:
    variant = session.scalar(select(PlanVariant).where(
        PlanVariant.id == variant_id, PlanVariant.merchant_id == merchant_id))
    if variant is None:
        raise NotFound("plan variant not found")
    return variant


def list_variants(session: Session, merchant_id: str) -> list[PlanVariant]:
    return list(session.scalars(select(PlanVariant).where(PlanVariant.merchant_id == merchant_id)
                                .order_by(PlanVariant.created_at, PlanVariant.id)))


def get_plan(session: Session, merchant_id: str, plan_id: str) -> Plan:
    plan = session.scalar(select(Plan).where(Plan.id == plan_id, Plan.merchant_id == merchant_id))
    if plan is None:
        raise NotFound("plan not found")
    return plan


def create_plan(session: Session, merchant_id: str, *, name: dict, description=None) -> Plan:
    plan = Plan(id=new_id("plan"), merchant_id=merchant_id, name=name,
                description=description or {})
    session.add(plan)
    session.flush()
    return plan


def create_variant(session: Session, merchant_id: str, data: dict) -> PlanVariant:
    """``data`` as loaded by ``PlanVariantSchema`` (Decimals for fees)."""
    get_plan(session, merchant_id, data["plan_id"])
    currency = money.check_currency(data["currency"])
    variant = PlanVariant(
        id=new_id("pv"), merchant_id=merchant_id, plan_id=data["plan_id"], name=data["name"],
        currency=currency,
        recurring_fee_minor=money.to_minor(money.quantize(data["recurring_fee"], currency),
                                           currency),
        setup_fee_minor=money.to_minor(money.quantize(data.get("setup_fee", 0), currency),
                                       currency),
        billing_period_months=data.get("billing_period_months", 1),
        trial_days=data.get("trial_days", 0),
        notice_period=data.get("notice_period") or {"value": 1, "unit": "month"},
        minimum_term=data.get("minimum_term"),
        allow_self_service=data.get("allow_self_service", True),
        component_ids=data.get("component_ids", []),
    )
    session.add(variant)
    session.flush()
    return variant


def localized(texts: dict, language: str, fallback: str = "en") -> str:
    if not texts:
        return ""
    return texts.get(language) or texts.get(fallback) or next(iter(texts.values()))
