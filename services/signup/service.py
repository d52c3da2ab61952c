"""Signup service: merchants, catalog, self-service settings and orders."""
from __future__ import annotations

from services.common.clock import Clock
from services.common.database import Database
from services.common.entrypoints import rpc
from services.common.errors import NotFound
from services.common.health import HealthRpc
from services.common.telemetry import Correlation

from . import catalog, orders, schemas
from .models import Base

REQUIRED_SETTINGS = ["DB_URL"]


class SignupService(HealthRpc):
    name = "signup"

    db = Database(Base.metadata)
    correlation = Correlation()
    clock = Clock()


    # -- merchants (ops CLI) -------------------------------------------------------------------
    @rpc
    def create_merchant(self, slug: str, name: str, country: str = "DE",
                        default_language: str = "en", secret_key: str | None = None) -> dict:
        """``create_merchant("acme", "Acme GmbH")`` → ``{"merchant_id", "secret_key", …}``;
        the secret key is shown this once and stored only as a hash."""
        data = schemas.MerchantCreate().load({"slug": slug, "name": name, "country": country,
                                              "default_language": default_language})
        return catalog.create_merchant(self.db.session, secret_key=secret_key, **data)

    @rpc
    def rotate_secret_key(self, merchant_id: str, secret_key: str | None = None) -> str:
        return catalog.rotate_secret_key(self.db.session, merchant_id, secret_key)

    @rpc
    def find_merchant(self, slug: str) -> dict:
        return schemas.Merchant().dump(catalog.merchant_by_slug(self.db.session, slug))

    @rpc
    def authenticate(self, secret_key: str) -> dict:
        """``authenticate("sk_…")`` → ``{"id": "m_…", "slug": …}`` or ``Unauthorized``."""
        return schemas.Merchant().dump(catalog.authenticate(self.db.session, secret_key))

    # -- catalog -------------------------------------------------------------------------------
    @rpc
    def create_plan(self, merchant_id: str, body: dict) -> dict:
        data = schemas.load(schemas.PlanCreate(), body)
        return schemas.Plan().dump(catalog.create_plan(self.db.session, merchant_id, **data))

    @rpc
    def create_plan_variant(self, merchant_id: str, body: dict) -> dict:
        data = schemas.load(schemas.PlanVariantCreate(), body)
        variant = catalog.create_variant(self.db.session, merchant_id, data)
        return schemas.PlanVariant().dump(variant)

    @rpc
    def list_plan_variants(self, merchant_id: str) -> list[dict]:
        return [schemas.PlanVariant().dump(v)
                for v in catalog.list_variants(self.db.session, merchant_id)]

    @rpc
    def get_plan_variant(self, merchant_id: str, variant_id: str) -> dict:
        return schemas.PlanVariant().dump(
            catalog.get_variant(self.db.session, merchant_id, variant_id))

    # -- the hosted page and orders --------------------------------------------------------------
    @rpc
    def get_signup_page(self, slug: str, variant_id: str, language: str = "en") -> dict:
        """What the hosted signup page shows for ``/signup/{slug}/{variant_id}``."""
        merchant = catalog.merchant_by_slug(self.db.session, slug)
        variant = self._self_service_variant(merchant.id, variant_id)
        return schemas.signup_page(self.db.session, merchant, variant, language)

    @rpc
    def preview_order(self, merchant_id: str, variant_id: str, form: dict) -> dict:
        """Price ``form`` without storing anything; errors come back per field."""
        variant = catalog.get_variant(self.db.session, merchant_id, variant_id)
        merchant = self.db.session.get(orders.Merchant, merchant_id)
        _, errors, price, _ = orders.price(self.db.session, merchant, variant,
                                           schemas.form(form), self.clock.now())
        return {"price": price.as_dict() if price else None, "errors": errors}

    @rpc
    def submit_order(self, merchant_id: str, variant_id: str, form: dict,
                     self_service: bool = False) -> dict:
        """``submit_order("m_…", "pv_…", {"customer": {...}, "components": {...}})`` →
        ``{"order_id", "contract_id", "customer_id", "price", "success_url"}``."""
        variant = (self._self_service_variant(merchant_id, variant_id) if self_service
                   else catalog.get_variant(self.db.session, merchant_id, variant_id))
        merchant = self.db.session.get(orders.Merchant, merchant_id)
        result = orders.submit(self.db, merchant, variant, schemas.form(form), self.clock.now())
        result["success_url"] = (merchant.settings or {}).get("success_url")
        return result

    def _self_service_variant(self, merchant_id: str, variant_id: str):
        variant = catalog.get_variant(self.db.session, merchant_id, variant_id)
        if not variant.allow_self_service:
            raise NotFound("plan variant not found")
        return variant
