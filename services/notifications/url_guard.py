"""Where webhooks may go: the SSRF guard, used at registration and again before every send.

A URL is refused when its host resolves to any address that is not globally routable
(loopback, private, link-local and cloud metadata such as ``169.254.169.254``, carrier-grade
NAT, unspecified, multicast, reserved, and IPv6 forms that embed such an IPv4 address). The
sender connects to the address it checked (see ``delivery.py``), so a DNS answer that changes
between the check and the connection (rebinding) cannot slip through.

Loopback is allowed only in local development (``WEBHOOKS_ALLOW_LOOPBACK``), which also allows
plain ``http``; everywhere else the URL must be ``https``.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

MAX_URL_LENGTH = 2048
LOCAL_PUBLIC_URL_PREFIXES = ("http://127.0.0.1", "http://localhost", "http://[::1]")
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # a NAT64 gateway reaches the embedded IPv4


class UnsafeUrl(ValueError):
    """The URL may not receive webhooks; ``code`` says why, ``str()`` says it in words."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line


def loopback_allowed(config: dict) -> bool:
    """``WEBHOOKS_ALLOW_LOOPBACK``: ``true``/``false``, or ``auto`` (the default): true only when
    Portico's public URL is itself on loopback, i.e. someone is trying it on their machine."""
    value = str(config.get("WEBHOOKS_ALLOW_LOOPBACK", "auto")).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    public_url = str(config.get("PUBLIC_URL", "")).strip().lower()
    return public_url.startswith(LOCAL_PUBLIC_URL_PREFIXES)


def parse(url: str, *, allow_loopback: bool) -> Target:
    """Check the URL's form (no DNS). ``https`` is required unless in local development."""
    if not isinstance(url, str) or not url:
        raise UnsafeUrl("invalid_url", "Enter the URL that should receive webhooks.")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl("invalid_url", f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UnsafeUrl("invalid_url", "The URL contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("invalid_url", "This is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeUrl("invalid_scheme", "The URL must start with https://.")
    if scheme == "http" and not allow_loopback:
        raise UnsafeUrl("https_required", "Webhook URLs must use https://.")
    if not parts.hostname:
        raise UnsafeUrl("invalid_url", "The URL has no host name.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("invalid_url", "The URL must not contain a user name or password.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80),
                  path)


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def address_allowed(address: IPAddress, *, allow_loopback: bool) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (
            address.teredo[1] if address.teredo else None)
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_allowed(embedded, allow_loopback=allow_loopback)
    if address.is_loopback:
        return allow_loopback
    return address.is_global and not address.is_multicast


def resolve(target: Target, *, allow_loopback: bool,
            resolver: Resolver | None = None) -> list[IPAddress]:
    """The target's addresses, all of them allowed; else ``UnsafeUrl``."""
    resolver = resolver or system_resolver
    try:
        literal = ipaddress.ip_address(target.host.strip("[]"))
        raw = [str(literal)]
    except ValueError:
        try:
            raw = resolver(target.host, target.port)
        except (OSError, UnicodeError):
            raise UnsafeUrl("unresolvable", f"The host {target.host} cannot be resolved.") \
                from None
    addresses = []
    for value in raw:
        address = ipaddress.ip_address(value.split("%", 1)[0])  # drop an IPv6 zone index
        if not address_allowed(address, allow_loopback=allow_loopback):
            raise UnsafeUrl("forbidden_address",
                            f"The host {target.host} resolves to {address}, an address "
                            "webhooks may not be sent to (private, loopback, link-local or "
                            "reserved).")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeUrl("unresolvable", f"The host {target.host} cannot be resolved.")
    return addresses


def check(url: str, *, allow_loopback: bool, resolver: Resolver | None = None
          ) -> tuple[Target, list[IPAddress]]:
    target = parse(url, allow_loopback=allow_loopback)
    return target, resolve(target, allow_loopback=allow_loopback, resolver=resolver)
