"""The HTTP edge: which requests may reach the routes at all (a pure ASGI middleware).

Browsers let any web page send "simple" requests to any address, the user's own
`127.0.0.1:8080` included: a form or `fetch(..., {mode: "no-cors"})` POSTs `text/plain`,
`application/x-www-form-urlencoded` or `multipart/form-data` bodies without asking first, and
a DNS-rebinding page even reads the answers. `EdgeGuard` refuses, before any route runs:

- a body whose type the route does not take (415): JSON routes take `application/json` or
  `application/*+json` (a body with no Content-Type at all is parsed as JSON, as before);
  multipart only on the upload routes (`StepType.upload`); a request without a body
  (`POST .../cancel`) passes whatever its type. `curl -d` sends form-urlencoded: it now gets
  a 415 saying to send `-H 'Content-Type: application/json'`;
- a request from another origin (403): an `Origin` header that is neither the request's own
  origin (its `Host`) nor one of `LO_CORS_ORIGINS`, or `Sec-Fetch-Site: cross-site` (which
  browsers send even where they leave `Origin` out). `Sec-Fetch-Site: same-origin`, which
  only the browser sets, passes whatever `Origin` says: behind a proxy (the gateway) `Host`
  is the service's name, not the page's. Clients that are not browsers (the Python client,
  curl) send none of these headers and pass;
- on a connection that arrived over loopback, a `Host` that is not a loopback name
  (`localhost`, `127.x.x.x`, `[::1]`, or one of `LO_ALLOWED_HOSTS`) (421): the signature of
  DNS rebinding, where `evil.example` resolves to 127.0.0.1.

It is pure ASGI (not `BaseHTTPMiddleware`), so streaming answers and Server-Sent Events pass
through untouched. Answers use LO's error envelope.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from .settings import Settings

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _error(status: int, message: str, code: str, detail: Any = None) -> tuple[int, bytes]:
    body = {"result": message, "error": {"code": code, "detail": detail}}
    return status, json.dumps(body).encode()


def _is_loopback_ip(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


def _split_host(host: str) -> tuple[str, str]:
    """("name", "port") of a Host header value (port "" when absent); IPv6 keeps brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1 :]
        return name, rest[1:] if rest.startswith(":") else ""
    name, _, port = host.partition(":")
    return name, port


def _is_loopback_name(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost") or _is_loopback_ip(name)


class EdgeGuard:
    """Refuses cross-site requests, body types a route does not take, and rebinding `Host`s.

    `upload_paths`: the exact paths whose POST takes `multipart/form-data` (upload routes)."""

    def __init__(self, app: ASGIApp, settings: Settings, upload_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.cors = settings.cors_origin_list  # read once, not on every request
        self.extra_hosts = settings.allowed_host_list
        self.upload_paths = frozenset(upload_paths)

    def refusal(self, scope: Scope) -> tuple[int, bytes] | None:
        """(status, body) when the request must not reach the routes, else None."""
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", []):
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        cors, extra_hosts = self.cors, self.extra_hosts

        host = headers.get("host", "")
        name, port = _split_host(host)
        server = scope.get("server") or ("", 0)
        if (
            _is_loopback_ip(str(server[0]))
            and not _is_loopback_name(name)
            and "*" not in extra_hosts
            and name not in extra_hosts
            and host.lower() not in extra_hosts
        ):
            return _error(
                421,
                f"Host {host!r} is not a name of this server: on a loopback address it answers "
                "localhost or 127.0.0.1 only (list other names in LO_ALLOWED_HOSTS)",
                "bad_host",
                {"host": host},
            )

        origin = headers.get("origin")
        site = headers.get("sec-fetch-site", "").lower()
        if site == "same-origin":
            # The browser's own word that the page is of the URL's origin (no page can set
            # this header). It holds behind a proxy too, where Host is the service's name and
            # Origin the public URL: the studio through the gateway, at any of its addresses.
            pass
        elif origin is not None:
            origin = origin.strip().rstrip("/")
            own = _same_default_port(origin, name, port)
            if not own and origin not in cors and "*" not in cors:
                return _error(
                    403,
                    f"cross-origin requests from {origin!r} are refused: add it to "
                    "LO_CORS_ORIGINS to let that web page call this API",
                    "cross_origin",
                    {"origin": origin},
                )
        elif site == "cross-site":
            return _error(
                403,
                "cross-site requests from web pages are refused (Sec-Fetch-Site: cross-site)",
                "cross_origin",
                None,
            )

        if scope.get("method") in BODY_METHODS and _has_body(headers):
            refused = self._content_type_refusal(scope, headers.get("content-type"))
            if refused is not None:
                return refused
        return None

    def _content_type_refusal(
        self, scope: Scope, content_type: str | None
    ) -> tuple[int, bytes] | None:
        if content_type is None:
            return None  # no type: parsed as JSON (scripts that leave it out keep working)
        media = content_type.split(";", 1)[0].strip().lower()
        if media == "application/json" or (
            media.startswith("application/") and media.endswith("+json")
        ):
            return None
        path = scope.get("path", "")
        upload = scope.get("method") == "POST" and path.rstrip("/") in self.upload_paths
        if media == "multipart/form-data" and upload:
            return None
        takes = "application/json" + (" or multipart/form-data" if upload else "")
        return _error(
            415,
            f"Content-Type {media or content_type!r} is not accepted here: send {takes}",
            "unsupported_media_type",
            {"contentType": content_type},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, body = refused
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _has_body(headers: dict[str, str]) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in headers


def _same_default_port(origin: str, name: str, port: str) -> bool:
    """`https://host` is the origin of `Host: host:443` (and http of :80)."""
    scheme, _, rest = origin.lower().partition("://")
    origin_name, origin_port = _split_host(rest)
    default = {"http": "80", "https": "443"}.get(scheme, "")
    return origin_name == name and (origin_port or default) == (port or default)
