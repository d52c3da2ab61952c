"""Signup service: merchants, catalog, self-service settings, the hosted page and orders."""
from __future__ import annotations

import base64
import binascii

from nameko.dependency_providers import Config

from services.common.clock import Clock
from services.common.database import Database
from services.common.entrypoints import rpc, timer
from services.common.errors import InvalidInput, NotFound
from services.common.health import HealthRpc
from services.common.telemetry import Correlation

from . import catalog, idempotency, logos, orders, pages, schemas
from . import settings as merchant_settings
from .models import Base, MerchantLogo

REQUIRED_SETTINGS = ["DB_URL"]


class SignupService(HealthRpc):
    name = "signup"

    db = Database(Base.metadata)
    correlation = Correlation()
    clock = Clock()
    config = Config()

    # -- merchants (ops CLI) -------------------------------------------------------------------
    @rpc
    def create_merchant(self, slug: str, name: str, country: str = "DE",
                        default_language: str = "en", secret_key: str | None = None) -> dict:
        """``create_merchant("acme", "Acme GmbH")`` → ``{"merchant_id", "secret_key",
        "public_key", "slug"}``; the secret key is shown this once and stored only as a hash."""
        data = schemas.MerchantCreate().load({"slug": slug, "name": name, "country": country,
                                              "default_language": default_language})
        return catalog.create_merchant(self.db.session, secret_key=secret_key, **data)

    @rpc
    def rotate_secret_key(self, merchant_id: str, secret_key: str | None = None) -> str:
        return catalog.rotate_secret_key(self.db.session, merchant_id, secret_key)

    @rpc
    def rotate_public_key(self, merchant_id: str) -> str:
        return catalog.rotate_public_key(self.db.session, merchant_id)

    @rpc
    def find_merchant(self, slug: str) -> dict:
        return schemas.Merchant().dump(catalog.merchant_by_slug(self.db.session, slug))

    @rpc
    def authenticate(self, secret_key: str) -> dict:
        """``authenticate("sk_…")`` → ``{"id": "m_…", "slug": …}`` or ``Unauthorized``."""
        return schemas.Merchant().dump(catalog.authenticate(self.db.session, secret_key))

    # -- catalog -------------------------------------------------------------------------------
    # Creates take an optional ``idempotency_key``; lists take ``limit``/``offset``.
    @rpc
    def create_plan(self, merchant_id: str, body: dict, idempotency_key: str | None = None):
        """``create_plan("m_…", {"name": {"en": "Pro"}})`` → the plan."""
        return self._create(merchant_id, "plans", body, idempotency_key, lambda: schemas.Plan(
        ).dump(catalog.create_plan(self.db.session, merchant_id,
                                   **schemas.load(schemas.PlanCreate(), body))))

    @rpc
    def update_plan(self, merchant_id: str, plan_id: str, body: dict) -> dict:
        data = schemas.load(schemas.PlanUpdate(), body)
        return schemas.Plan().dump(catalog.update_plan(self.db.session, merchant_id, plan_id,
                                                       data))

    @rpc
    def get_plan(self, merchant_id: str, plan_id: str) -> dict:
        return schemas.Plan().dump(catalog.get_plan(self.db.session, merchant_id, plan_id))

    @rpc
    def list_plans(self, merchant_id: str, limit: int | None = None, offset: int = 0):
        return schemas.Plan(many=True).dump(
            catalog.list_plans(self.db.session, merchant_id, limit, offset))

    @rpc
    def create_plan_variant(self, merchant_id: str, body: dict,
                            idempotency_key: str | None = None) -> dict:
        """``create_plan_variant("m_…", {"plan_id": "plan_…", "name": {"en": "Pro monthly"},
        "currency": "EUR", "recurring_fee": "29.00"})`` → the variant."""
        return self._create(merchant_id, "plan-variants", body, idempotency_key,
                            lambda: schemas.PlanVariant().dump(catalog.create_variant(
                                self.db.session, merchant_id,
                                schemas.load(schemas.PlanVariantCreate(), body))))

    @rpc
    def update_plan_variant(self, merchant_id: str, variant_id: str, body: dict) -> dict:
        data = schemas.load(schemas.PlanVariantUpdate(), body)
        return schemas.PlanVariant().dump(
            catalog.update_variant(self.db.session, merchant_id, variant_id, data))

    @rpc
    def list_plan_variants(self, merchant_id: str, limit: int | None = None, offset: int = 0,
                           plan_id: str | None = None) -> list[dict]:
        return schemas.PlanVariant(many=True).dump(catalog.list_variants(
            self.db.session, merchant_id, limit, offset, plan_id))

    @rpc
    def get_plan_variant(self, merchant_id: str, variant_id: str) -> dict:
        return schemas.PlanVariant().dump(
            catalog.get_variant(self.db.session, merchant_id, variant_id))

    @rpc
    def create_component(self, merchant_id: str, body: dict,
                         idempotency_key: str | None = None) -> dict:
        return self._create(merchant_id, "components", body, idempotency_key,
                            lambda: schemas.Component().dump(catalog.create_component(
                                self.db.session, merchant_id,
                                schemas.load(schemas.ComponentCreate(), body))))

    @rpc
    def update_component(self, merchant_id: str, component_id: str, body: dict) -> dict:
        data = schemas.load(schemas.ComponentUpdate(), body)
        return schemas.Component().dump(
            catalog.update_component(self.db.session, merchant_id, component_id, data))

    @rpc
    def get_component(self, merchant_id: str, component_id: str) -> dict:
        return schemas.Component().dump(
            catalog.get_component(self.db.session, merchant_id, component_id))

    @rpc
    def list_components(self, merchant_id: str, limit: int | None = None, offset: int = 0):
        return schemas.Component(many=True).dump(
            catalog.list_components(self.db.session, merchant_id, limit, offset))

    @rpc
    def create_coupon(self, merchant_id: str, body: dict,
                      idempotency_key: str | None = None) -> dict:
        return self._create(merchant_id, "coupons", body, idempotency_key,
                            lambda: schemas.Coupon().dump(catalog.create_coupon(
                                self.db.session, merchant_id,
                                schemas.load(schemas.CouponCreate(), body))))

    @rpc
    def update_coupon(self, merchant_id: str, coupon_id: str, body: dict) -> dict:
        data = schemas.load(schemas.CouponUpdate(), body)
        return schemas.Coupon().dump(
            catalog.update_coupon(self.db.session, merchant_id, coupon_id, data))

    @rpc
    def get_coupon(self, merchant_id: str, coupon_id: str) -> dict:
        return schemas.Coupon().dump(catalog.get_coupon(self.db.session, merchant_id,
                                                        coupon_id))

    @rpc
    def list_coupons(self, merchant_id: str, limit: int | None = None, offset: int = 0):
        return schemas.Coupon(many=True).dump(
            catalog.list_coupons(self.db.session, merchant_id, limit, offset))

    @rpc
    def import_catalog(self, merchant_id: str, document: dict) -> dict:
        """Upsert a whole catalog file (see ``catalog.import_catalog``); all or nothing."""
        catalog.get_merchant(self.db.session, merchant_id)
        return catalog.import_catalog(self.db.session, merchant_id, document)

    # -- self-service settings -------------------------------------------------------------------
    @rpc
    def get_settings(self, merchant_id: str) -> dict:
        """The merchant's settings with every default filled in (the contract other areas
        read; see ``settings.resolved``)."""
        return merchant_settings.resolved(catalog.get_merchant(self.db.session, merchant_id),
                                          self._public_url)

    @rpc
    def get_settings_by_slug(self, slug: str) -> dict:
        """Like ``get_settings``, by slug (or public key, as in page URLs)."""
        return merchant_settings.resolved(catalog.merchant_by_ref(self.db.session, slug),
                                          self._public_url)

    @rpc
    def get_self_service_settings(self, merchant_id: str) -> dict:
        """``GET /api/v1/settings/self-service``: the editable document."""
        return merchant_settings.editable_view(catalog.get_merchant(self.db.session,
                                                                    merchant_id),
                                               self._public_url)

    @rpc
    def update_self_service_settings(self, merchant_id: str, body: dict) -> dict:
        """``PUT /api/v1/settings/self-service``: each section in ``body`` replaces the stored
        one; everything is validated before anything is written."""
        merchant = catalog.get_merchant(self.db.session, merchant_id)
        stored, language = merchant_settings.apply_update(merchant.settings or {}, body)
        merchant.settings = stored
        if language:
            merchant.default_language = language
        return merchant_settings.editable_view(merchant, self._public_url)

    @rpc
    def set_logo(self, merchant_id: str, content_b64: str) -> dict:
        """Store a PNG/JPEG logo (re-encoded); ``{"logo_url": "/assets/logos/…"}``."""
        merchant = catalog.get_merchant(self.db.session, merchant_id)
        try:
            data = base64.b64decode(content_b64 or "", validate=True)
            logo = logos.reencode(data)
        except (binascii.Error, ValueError) as exc:
            code = getattr(exc, "code", "unreadable")
            message = getattr(exc, "message", "Upload a PNG or JPEG image.")
            raise InvalidInput("logo refused", {"logo": [{
                "code": code, "message": message,
                "params": dict(getattr(exc, "params", {}))}]}) from None
        row = self.db.session.get(MerchantLogo, merchant_id) or MerchantLogo(
            merchant_id=merchant_id)
        row.content_type, row.digest = logo.content_type, logo.digest
        row.width, row.height, row.data = logo.width, logo.height, logo.data
        row.updated_at = self.clock.now()
        self.db.session.add(row)
        stored = dict(merchant.settings or {})
        stored["logo"] = {"digest": logo.digest, "content_type": logo.content_type}
        merchant.settings = stored
        return {"logo_url": merchant_settings.logo_url(merchant_id, stored["logo"],
                                                       self._public_url)}

    @rpc
    def delete_logo(self, merchant_id: str) -> dict:
        merchant = catalog.get_merchant(self.db.session, merchant_id)
        row = self.db.session.get(MerchantLogo, merchant_id)
        if row is not None:
            self.db.session.delete(row)
        merchant.settings = {k: v for k, v in (merchant.settings or {}).items() if k != "logo"}
        return {"logo_url": None}

    @rpc
    def get_logo(self, merchant_id: str) -> dict:
        """``{"content_type", "digest", "content_b64"}`` for the gateway to serve."""
        row = self.db.session.get(MerchantLogo, merchant_id) if isinstance(
            merchant_id, str) else None
        if row is None:
            raise NotFound("no logo")
        return {"content_type": row.content_type, "digest": row.digest,
                "content_b64": base64.b64encode(row.data).decode()}

    # -- the hosted page -------------------------------------------------------------------------
    @rpc
    def get_signup_page(self, merchant_ref: str, variant_id: str, language: str | None = None,
                        form: dict | None = None) -> dict:
        """What ``/signup/{merchant}/{variant_id}`` shows, priced for ``form`` (prefill or
        what the customer typed); ``merchant_ref`` is the slug or the public key. Variants
        without self-service signup are ``NotFound``."""
        merchant, variant, plan = catalog.page_target(self.db.session, merchant_ref, variant_id)
        language = language if language in schemas.LANGUAGES else merchant.default_language
        parsed, form_errors = pages.parse_page_form(form or {})
        return pages.signup_page(self.db.session, merchant, variant, language, parsed,
                                 self.clock.now(), form_errors, self._public_url, plan)

    @rpc
    def submit_signup(self, merchant_ref: str, variant_id: str, form: dict,
                      language: str | None = None) -> dict:
        """Submit the hosted form: ``{"status": "ok", "contract_id", "order_id",
        "success_url"}`` (the merchant's URL with ``contractId``, or None), or ``{"status":
        "invalid", "page": …}`` with the errors in ``page.preview.errors`` (nothing stored)."""
        merchant, variant, _ = catalog.page_target(self.db.session, merchant_ref, variant_id)
        language = language if language in schemas.LANGUAGES else merchant.default_language
        parsed, form_errors = pages.parse_page_form(form or {})
        parsed["language"] = language
        try:
            if form_errors:
                raise InvalidInput("invalid form", form_errors)
            result = orders.submit(self.db, merchant, variant, parsed, self.clock.now(),
                                   self_service=True)
        except InvalidInput as exc:
            self.db.session.rollback()
            merchant, variant, plan = catalog.page_target(self.db.session, merchant_ref,
                                                          variant_id)
            page = pages.signup_page(self.db.session, merchant, variant, language, parsed,
                                     self.clock.now(), exc.fields, self._public_url, plan)
            return {"status": "invalid", "page": page}
        success = merchant_settings.redirect_url(merchant.settings or {}, "success",
                                                 contractId=result["contract_id"])
        return {"status": "ok", "contract_id": result["contract_id"],
                "order_id": result["order_id"], "success_url": success, "language": language,
                "error_url": merchant_settings.redirect_url(merchant.settings or {}, "error")}

    # -- orders over the API ---------------------------------------------------------------------
    @rpc
    def preview_order(self, merchant_id: str, variant_id: str, form: dict) -> dict:
        """Price ``form`` without storing anything: ``{"price", "errors"}``."""
        variant = catalog.get_variant(self.db.session, merchant_id, variant_id)
        merchant = catalog.get_merchant(self.db.session, merchant_id)
        return orders.preview(self.db.session, merchant, variant, orders.parse_form(form),
                              self.clock.now(), self_service=False)

    @rpc
    def place_order(self, merchant_id: str, body: dict,
                    idempotency_key: str | None = None) -> dict:
        """``POST /api/v1/orders``: ``{"status": 201, "body": {"order_id", "contract_id",
        "customer_id", "price"}, "replayed": bool}``."""
        now = self.clock.now()

        def place():
            form = orders.parse_form(body)
            variant_id = form.get("plan_variant_id")
            if not variant_id:
                raise InvalidInput("plan_variant_id is required", {"plan_variant_id": [
                    {"code": "required", "message": "This field is required.", "params": {}}]})
            variant = catalog.get_variant(self.db.session, merchant_id, variant_id)
            merchant = catalog.get_merchant(self.db.session, merchant_id)
            return orders.submit(self.db, merchant, variant, form, now, self_service=False)

        result, replayed = idempotency.run(self.db.session, merchant_id, idempotency_key,
                                           "orders", body, now, place)
        return {"status": 201, "body": result, "replayed": replayed}

    @rpc
    def submit_order(self, merchant_id: str, variant_id: str, form: dict,
                     self_service: bool = False) -> dict:
        """``submit_order("m_…", "pv_…", {"customer": {...}, "components": {...}})`` →
        ``{"order_id", "contract_id", "customer_id", "price"}``."""
        variant = (self._self_service_variant(merchant_id, variant_id) if self_service
                   else catalog.get_variant(self.db.session, merchant_id, variant_id))
        merchant = catalog.get_merchant(self.db.session, merchant_id)
        form = orders.parse_form({**(form or {}), "plan_variant_id": variant_id})
        return orders.submit(self.db, merchant, variant, form, self.clock.now(),
                             self_service=self_service)

    @rpc
    def get_order(self, merchant_id: str, order_id: str) -> dict:
        return orders.order_view(orders.get_order(self.db.session, merchant_id, order_id))

    @timer(interval=3600)
    def purge_idempotency_keys(self) -> None:
        """Forget ``Idempotency-Key`` responses older than 24 h."""
        idempotency.purge(self.db.session, self.clock.now())

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def _public_url(self) -> str:
        return str(self.config.get("PUBLIC_URL") or "")

    def _create(self, merchant_id, endpoint, body, key, action):
        result, _ = idempotency.run(self.db.session, merchant_id, key, endpoint, body,
                                    self.clock.now(), action)
        return result

    def _self_service_variant(self, merchant_id: str, variant_id: str):
        variant = catalog.get_variant(self.db.session, merchant_id, variant_id)
        if not variant.allow_self_service:
            raise NotFound("plan variant not found")
        return variant
