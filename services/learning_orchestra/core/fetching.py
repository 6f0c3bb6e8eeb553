"""An HTTP client for dataset URLs that reaches only what the settings allow (SSRF guard).

Every connection, each redirect hop included, resolves the host once, checks every address
(`core/urls.py`, `UrlPolicy`) and connects to a checked address: no window for DNS rebinding.
Imported by workers only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from .settings import Settings
from .urls import BlockedURL, Resolver, UrlPolicy, literal_address, system_resolver


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves once, checks every address, connects to a checked one."""

    def __init__(self, policy: UrlPolicy, resolver: Resolver) -> None:
        self.policy = policy
        self.resolver = resolver
        self.backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = [
                    ipaddress.ip_address(a.split("%", 1)[0]) for a in self.resolver(host, port)
                ]
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        # A name with one refused address is refused whole: which address a client ends up
        # on must not decide whether the guard holds.
        for address in addresses:
            reason = self.policy.refusal(host, port, address)
            if reason is not None:
                raise BlockedURL(reason)
        error: Exception | None = None
        for address in addresses:
            try:
                return self.backend.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise BlockedURL("dataset URLs cannot reach Unix sockets")

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose every connection is checked."""

    def __init__(self, policy: UrlPolicy, resolver: Resolver) -> None:
        super().__init__()
        # HTTPTransport takes no network backend: give it a pool that has ours (same
        # defaults: certificate verification on, HTTP/1.1).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_GuardedBackend(policy, resolver),
        )


def guarded_client(
    settings: Settings, resolver: Resolver | None = None, **kwargs: Any
) -> httpx.Client:
    """An `httpx.Client` that reaches only what `settings` allow, on every hop and connection.

    Environment proxies are not used (a proxy would resolve names out of our sight)."""
    transport = _GuardedTransport(UrlPolicy(settings), resolver or system_resolver)
    return httpx.Client(transport=transport, trust_env=False, **kwargs)
