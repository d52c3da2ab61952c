"""RabbitMQ users for merchants' own AMQP consumers of ``portico.merchant-events``.

Each merchant gets one user, ``merchant-<merchant id>``, through the management HTTP API:

- vhost permissions: configure/write only its own queues (``merchant-<id>.…`` or server-named
  ``amq.gen-…``), read those queues and the ``portico.merchant-events`` exchange (binding a
  queue needs read on the exchange); no other exchange, no publishing anywhere;
- topic permissions on ``portico.merchant-events``: read (which RabbitMQ checks against the
  binding key when a queue is bound) only ``^<merchant id>\\.``, write nothing. A consumer can
  therefore bind ``<merchant id>.#`` or ``<merchant id>.InvoiceIssued``, and binding ``#`` or
  another merchant's prefix is refused with ``ACCESS_REFUSED``.

``portico amqp-user create --merchant m_…`` prints the connection settings (with a new random
password; running it again sets a new one). Settings: ``RABBITMQ_MANAGEMENT_URL``
(``http://127.0.0.1:15672``), ``RABBITMQ_MANAGEMENT_USER``/``_PASSWORD`` (``guest``/``guest``).
"""
from __future__ import annotations

import dataclasses
import os
import re
import secrets
from urllib.parse import quote, urlparse

import requests

from services.common.topology import MERCHANT_EVENTS_EXCHANGE

MERCHANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class AmqpUserError(Exception):
    """The management API refused or could not be reached; the message says what happened."""


@dataclasses.dataclass
class ManagementApi:
    url: str = "http://127.0.0.1:15672"
    user: str = "guest"
    password: str = dataclasses.field(default="guest", repr=False)
    timeout: float = 10.0

    @classmethod
    def from_environment(cls, environ=None) -> ManagementApi:
        environ = os.environ if environ is None else environ
        return cls(url=environ.get("RABBITMQ_MANAGEMENT_URL", cls.url),
                   user=environ.get("RABBITMQ_MANAGEMENT_USER", cls.user),
                   password=environ.get("RABBITMQ_MANAGEMENT_PASSWORD", "guest"))

    def request(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        try:
            response = requests.request(method, self.url.rstrip("/") + path, json=body,
                                        auth=(self.user, self.password), timeout=self.timeout)
        except requests.RequestException as exc:
            raise AmqpUserError(f"RabbitMQ management API at {self.url} unreachable: {exc}") \
                from None
        if response.status_code >= 400 and not (method == "DELETE" and
                                                response.status_code == 404):
            raise AmqpUserError(f"RabbitMQ management API: {method} {path} answered "
                                f"{response.status_code} {response.text[:200]}")
        return response


def username(merchant_id: str) -> str:
    return f"merchant-{merchant_id}"


def permissions(merchant_id: str) -> dict:
    own_queues = rf"amq\.gen-.*|{re.escape(username(merchant_id))}\..*"
    return {"configure": f"^({own_queues})$", "write": f"^({own_queues})$",
            "read": rf"^({re.escape(MERCHANT_EVENTS_EXCHANGE)}|{own_queues})$"}


def topic_permissions(merchant_id: str) -> dict:
    return {"exchange": MERCHANT_EVENTS_EXCHANGE, "write": "^$",
            "read": rf"^{re.escape(merchant_id)}\."}


def _check(merchant_id: str) -> None:
    if not MERCHANT_ID.match(merchant_id or ""):
        raise AmqpUserError(f"{merchant_id!r} is not a merchant id (letters, digits, _ and -)")


def create_user(api: ManagementApi, merchant_id: str, *, amqp_uri: str, vhost: str | None = None,
                amqp_host: str | None = None, password: str | None = None) -> dict:
    """Create (or update) the merchant's user; return the settings its consumer needs."""
    _check(merchant_id)
    parts = urlparse(amqp_uri)
    vhost = vhost if vhost is not None else (parts.path[1:] or "/")
    name = username(merchant_id)
    password = password or secrets.token_urlsafe(24)
    path_vhost, path_user = quote(vhost, safe=""), quote(name, safe="")
    api.request("PUT", f"/api/users/{path_user}", {"password": password, "tags": ""})
    api.request("PUT", f"/api/permissions/{path_vhost}/{path_user}", permissions(merchant_id))
    api.request("PUT", f"/api/topic-permissions/{path_vhost}/{path_user}",
                topic_permissions(merchant_id))
    host = amqp_host or parts.hostname or "127.0.0.1"
    port = parts.port or 5672
    return {
        "merchant_id": merchant_id,
        "username": name,
        "password": password,
        "host": host,
        "port": port,
        "vhost": vhost,
        "amqp_uri": f"amqp://{quote(name, safe='')}:{quote(password, safe='')}@{host}:{port}/"
                    f"{quote(vhost, safe='')}",
        "exchange": MERCHANT_EVENTS_EXCHANGE,
        "binding_key": f"{merchant_id}.#",
        "routing_keys": f"{merchant_id}.<EventType>",
        "queue_name_prefix": f"{name}.",
    }


def delete_user(api: ManagementApi, merchant_id: str) -> None:
    _check(merchant_id)
    api.request("DELETE", f"/api/users/{quote(username(merchant_id), safe='')}")
