"""Which addresses a dataset URL may reach (SSRF guard), and an HTTP client that enforces it.

By default a dataset URL may only reach public addresses: not loopback (`127.0.0.1` in any
spelling: `127.1`, `2130706433`, `0x7f.1`, `[::1]`, `[::ffff:127.0.0.1]`), not private or
link-local networks (`10/8`, `192.168/16`, `169.254.169.254`...), not `0.0.0.0`. Two opt-ins
(`Settings`): `LO_ALLOW_PRIVATE_URLS=1` lifts the rule, and `LO_ALLOWED_URL_HOSTS` lists
`host` or `host:port` entries that may be reached whatever they resolve to.

Two places check:
- the API, on POST/PATCH: a URL whose host is a literal address (any spelling) that is not
  allowed gets a 422 at once (`check_url`);
- the worker, on every connection (each redirect hop included): the host is resolved once,
  every address it resolves to is checked, and the connection goes to one of those checked
  addresses, so a DNS answer that changes between check and connect (rebinding) cannot slip
  through (`core/fetching.py`, `guarded_client`, imported by workers only: httpx costs the
  API process 180 ms of start). The resolver is a parameter so tests run offline.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .errors import Invalid
from .settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: (host, port) -> the addresses to try, as strings; `system_resolver` by default.
Resolver = Callable[[str, int], list[str]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedURL(Exception):
    """A URL, or a redirect it took, leads to an address the settings do not allow."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the system resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def literal_address(host: str) -> IPAddress | None:
    """The address `host` denotes when it is an IP literal in any spelling, else None.

    IPv4 accepts the legacy forms that `inet_aton` (and so most HTTP stacks) accept:
    `127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def why_private(address: IPAddress) -> str | None:
    """What kind of non-public address this is (for the error message), or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if embedded is not None:
            return why_private(embedded)
    for kind, test in (
        ("an unspecified", address.is_unspecified),
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a private", address.is_private),
        ("a reserved", address.is_reserved),
        ("a non-public", not address.is_global),
    ):
        if test:
            return kind
    return None


class UrlPolicy:
    """The settings' rule for which (host, port, address) a dataset URL may reach."""

    def __init__(self, settings: Settings) -> None:
        self.allow_private = settings.allow_private_urls
        self.hosts = set(settings.allowed_url_host_list)

    def host_allowed(self, host: str, port: int) -> bool:
        """Listed in LO_ALLOWED_URL_HOSTS (as `host` or `host:port`), or private URLs allowed."""
        if self.allow_private:
            return True
        host = host.lower().strip("[]")
        names = {host, f"[{host}]"} if ":" in host else {host}
        return any(name in self.hosts or f"{name}:{port}" in self.hosts for name in names)

    def refusal(self, host: str, port: int, address: IPAddress) -> str | None:
        """Why (host, port) may not be reached at `address`, or None if it may."""
        if self.host_allowed(host, port):
            return None
        kind = why_private(address)
        if kind is None:
            return None
        shown = host if host.strip("[]") == str(address) else f"{host} ({address})"
        return (
            f"{shown} is {kind} address: dataset URLs may reach public addresses only "
            "(set LO_ALLOWED_URL_HOSTS=host:port or LO_ALLOW_PRIVATE_URLS=1 to allow it)"
        )


def _port_of(scheme: str, port: int | None) -> int:
    return port if port is not None else (443 if scheme == "https" else 80)


def check_url(url: str, settings: Settings, field: str = "datasetURI") -> None:
    """422 when `url`'s host is a literal address the settings do not allow (API side)."""
    try:
        parts = urlsplit(url)
        port = _port_of(parts.scheme, parts.port)
    except ValueError as exc:
        raise Invalid(f"{field}: not a valid URL: {exc}", {"field": field}) from None
    host = parts.hostname or ""
    address = literal_address(host)
    if address is None:
        return  # a name: the worker resolves and checks it on every connection
    reason = UrlPolicy(settings).refusal(host, port, address)
    if reason is not None:
        raise Invalid(f"{field}: {reason}", {"field": field})


def check_url_fields(values: Mapping[str, Any], settings: Settings) -> None:
    """`check_url` on every URL field of a request body (LO's `datasetURI`)."""
    url = values.get("datasetURI")
    if isinstance(url, str) and not url.startswith("upload:"):
        check_url(url, settings)
