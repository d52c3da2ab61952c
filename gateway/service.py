"""The gateway: hosted pages, the merchant REST API and ops endpoints, over RPC to the services.

Stateless: scale it freely. Routes live in ``gateway/routes/`` (one module per area) and each
loads its input, makes its RPC call(s) and renders; service errors map to HTTP statuses in
one table, ``services.common.errors.HTTP_STATUS``.
"""
from __future__ import annotations

from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy

from services.common.cache import Cache
from services.common.telemetry import Correlation

from .http import MerchantApi
from .routes.documents_api import DocumentsApi
from .routes.notifications_api import NotificationsApi
from .routes.ops import OpsRoutes
from .routes.portal_api import PortalApi
from .routes.portal_pages import PortalPages
from .routes.signup_api import SignupApi
from .routes.signup_pages import SignupPages

REQUIRED_SETTINGS = ["SECRET_KEY"]
SECRET_SETTINGS = ["SECRET_KEY"]
NUMBER_SETTINGS = {"SETTINGS_CACHE_SECONDS": (float, 0), "API_KEY_CACHE_SECONDS": (float, 0),
                   "TRUSTED_PROXIES": (int, 0)}


class GatewayService(OpsRoutes, SignupPages, PortalPages, MerchantApi, SignupApi, PortalApi,
                     DocumentsApi, NotificationsApi):
    name = "gateway"

    signup_rpc = RpcProxy("signup")
    portal_rpc = RpcProxy("portal")
    tokens_rpc = RpcProxy("tokens")
    notifications_rpc = RpcProxy("notifications")
    documents_rpc = RpcProxy("documents")
    correlation = Correlation()
    config = Config()
    # merchants' settings for portal pages (SETTINGS_CACHE_SECONDS; 0 turns it off)
    settings_cache = Cache("SETTINGS_CACHE_SECONDS", default=5)
    # API keys' merchants (API_KEY_CACHE_SECONDS), by the key's hash
    key_cache = Cache("API_KEY_CACHE_SECONDS", default=30)
