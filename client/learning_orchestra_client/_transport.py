"""HTTP plumbing shared by every client class, sync and async.

The client's operations are written once, as *plans*: generators that yield the HTTP
requests they need (`Request`), receive each `httpx.Response`, and return the result
(the "sans-I/O" style). A plan never touches the network or the clock's sleep, so the
same plan is driven by `SyncService._run` over an `httpx.Client` and by
`AsyncService._run` over an `httpx.AsyncClient` (see `_service`). Streaming plans
(progress iterators) also yield `Emit` items, which the drivers hand to the caller.

Everything here is private to the package; the public names live in the step modules.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from .exceptions import ConnectionFailed, LearningOrchestraError, error_for_status

#: REST base path of every route (the gateway and the embedded server alike).
BASE_PATH = "/api/learningOrchestra/v1"

#: Seconds an ordinary request may take (connect, send, answer) unless the caller says.
DEFAULT_TIMEOUT = 30.0

#: Times a request is tried again when the connection could not be made (httpx's retries:
#: connect errors only, so a request the server received is never sent twice).
DEFAULT_RETRIES = 3

#: Longest single long-poll the observers send; a longer wait loops over several.
DEFAULT_LONG_POLL = 60.0

#: Longest long-poll the observe service accepts (API.md: `timeout` max 3600).
MAX_LONG_POLL = 3600

#: Extra seconds the HTTP read timeout allows beyond a long-poll's own `timeout`.
LONG_POLL_MARGIN = 15.0

T = TypeVar("T")


def normalize_cluster_url(cluster_ip: str) -> str:
    """Turn what a user passes as the cluster address into a base URL.

    Accepted forms, as LO users wrote them:

    - ``"http://34.66.75.31"`` or ``"https://lo.example.org"`` (kept as given);
    - ``"http://host:8080"``, ``"host:8080"``, ``"34.66.75.31"``, ``"localhost"``: without a
      scheme, ``http://`` is assumed; without a port, the scheme's default is used (80 for
      http — the port LO's KrakenD gateway listens on);
    - a bare IPv6 address (``"::1"``) or a bracketed one with a port (``"[::1]:8080"``);
    - a URL that already ends with the REST base path ``/api/learningOrchestra/v1``
      (the base path is removed: the client adds it itself). Any other path is kept as a
      prefix, for a server mounted under a reverse-proxy path.

    Returns the URL without a trailing slash, e.g. ``"http://34.66.75.31"``.

    Raises:
        ValueError: the address is empty, has another scheme, has no host, or carries a
            query string or fragment.
    """
    text = cluster_ip.strip() if isinstance(cluster_ip, str) else ""
    if not text:
        raise ValueError("cluster_ip is empty: pass the address of the cluster, e.g. 'http://host'")
    if "://" not in text:
        if text.count(":") >= 2 and not text.startswith("["):
            text = f"[{text}]"  # a bare IPv6 address
        text = f"http://{text}"
    parts = urllib.parse.urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"cluster_ip {cluster_ip!r}: only http:// and https:// are supported")
    if not parts.hostname:
        raise ValueError(f"cluster_ip {cluster_ip!r} has no host name")
    try:
        parts.port  # noqa: B018 - validates the port number
    except ValueError as exc:
        raise ValueError(f"cluster_ip {cluster_ip!r}: {exc}") from None
    if parts.query or parts.fragment:
        raise ValueError(f"cluster_ip {cluster_ip!r} must not carry a query string or fragment")
    path = parts.path.rstrip("/")
    if path.endswith(BASE_PATH):
        path = path[: -len(BASE_PATH)]
    return urllib.parse.urlunsplit((scheme, parts.netloc, path, "", ""))


def quote_name(name: str) -> str:
    """A step name made safe as one path segment (valid names need no quoting at all)."""
    return urllib.parse.quote(str(name), safe="")


@dataclass
class Request:
    """One HTTP request a plan needs, relative to the REST base path."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    data: Mapping[str, Any] | None = None
    files: Mapping[str, Any] | None = None
    #: Seconds to wait for the answer, overriding the client's timeout (long-polls).
    read_timeout: float | None = None


@dataclass
class Emit(Generic[T]):
    """A value a streaming plan hands to its caller (one item of an iterator)."""

    value: T


#: A plan: yields requests, is sent their responses, returns its result.
Plan = Generator[Request, httpx.Response, T]
#: A streaming plan: also yields `Emit` items (and is sent None for them).
StreamPlan = Generator[Request | Emit[T], httpx.Response | None, None]


def decode_body(response: httpx.Response) -> Any:
    """The JSON body of `response`, or None when it has none or it is not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def raise_for_answer(response: httpx.Response, body: Any = None) -> None:
    """Raise the `LearningOrchestraError` subclass for a non-2xx `response`.

    The message is the server's one-line `result`; `code` and `detail` come from its
    `error` object. Answers that are not the server's JSON (e.g. a gateway's HTML page)
    get a message built from the status line and the start of the text.
    """
    if response.is_success:
        return
    if body is None:
        body = decode_body(response)
    code = detail = None
    message = None
    if isinstance(body, dict):
        result = body.get("result")
        if isinstance(result, str) and result:
            message = result
        error = body.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            detail = error.get("detail")
        if message is None and "detail" in body:  # a framework's own error shape
            message = str(body["detail"])
    if message is None:
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        reason = response.reason_phrase or "error"
        message = f"HTTP {response.status_code} {reason}" + (f": {text}" if text else "")
    raise error_for_status(response.status_code)(
        message, status_code=response.status_code, code=code, detail=detail, body=body
    )


def answer_of(response: httpx.Response) -> dict[str, Any]:
    """The decoded `{"result": ...}` envelope of a 2xx `response`; raises for anything else."""
    body = decode_body(response)
    raise_for_answer(response, body)
    if not isinstance(body, dict) or "result" not in body:
        raise LearningOrchestraError(
            f"unexpected answer from {response.request.method} {response.request.url}: "
            f"not a JSON object with a 'result' key",
            status_code=response.status_code,
            body=body,
        )
    return body


def result_of(response: httpx.Response) -> Any:
    """The `result` of a 2xx `response`; raises for anything else."""
    return answer_of(response)["result"]


def treat(envelope: dict[str, Any], pretty_response: bool) -> dict[str, Any] | str:
    """LO's response treatment (``ResponseTreat.treatment``): the whole answer.

    With `pretty_response` the whole parsed answer (``{"result": ...}``) is rendered as a
    JSON string indented by 4 with sorted keys; otherwise that parsed answer itself is
    returned, the dict and not only its `result` value. Both are exactly what the original
    client returned, so LO notebooks that index ``answer["result"]`` keep working.
    """
    if pretty_response:
        return json.dumps(envelope, indent=4, sort_keys=True)
    return envelope


def long_poll_seconds(remaining: float | None, longest: float) -> int:
    """Whole seconds for the next long-poll: at most `longest` (and the server's maximum),
    at most `remaining` rounded up, and at least 1."""
    span = longest if remaining is None else min(longest, remaining)
    return max(1, min(MAX_LONG_POLL, math.ceil(span)))


class _Transport:
    """What the sync and async transports share: base URL, headers, timeouts."""

    def __init__(self, base_url: str, token: str | None, timeout: float | None) -> None:
        self.base_url = base_url
        self.api_url = base_url + BASE_PATH
        self.timeout = timeout
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return self.api_url + path

    def timeout_for(self, request: Request) -> httpx.Timeout:
        if request.read_timeout is None:
            return httpx.Timeout(self.timeout)
        return httpx.Timeout(self.timeout, read=request.read_timeout + LONG_POLL_MARGIN)

    def kwargs(self, request: Request) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "params": request.params,
            "headers": self.headers,
            "timeout": self.timeout_for(request),
        }
        if request.json is not None:
            kwargs["json"] = request.json
        if request.data is not None:
            kwargs["data"] = request.data
        if request.files is not None:
            kwargs["files"] = request.files
        return kwargs

    def connection_failed(self, request: Request, exc: httpx.TransportError) -> ConnectionFailed:
        url = self.url(request.path)
        if isinstance(exc, httpx.TimeoutException):
            return ConnectionFailed(
                f"no answer from {url} within {self.timeout:g} s ({type(exc).__name__}); "
                "a slow server or a large answer may need a longer `timeout=`"
                if self.timeout
                else f"no answer from {url} ({type(exc).__name__})"
            )
        hint = ""
        if isinstance(exc, httpx.ConnectError):
            hint = (
                f"; is the server running at {self.base_url}? Start one with `./run.sh local` "
                "(it listens on 127.0.0.1:8080), or check the host and port"
            )
        return ConnectionFailed(f"could not reach {url}: {exc or type(exc).__name__}{hint}")


class SyncTransport(_Transport):
    """Sends `Request`s over an `httpx.Client`."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        timeout: float | None,
        client: httpx.Client | None = None,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        super().__init__(base_url, token, timeout)
        self.owns_client = client is None
        self.client = client or httpx.Client(transport=httpx.HTTPTransport(retries=retries))

    def send(self, request: Request) -> httpx.Response:
        try:
            return self.client.request(
                request.method, self.url(request.path), **self.kwargs(request)
            )
        except httpx.TransportError as exc:
            raise self.connection_failed(request, exc) from None

    def stream_lines(self, request: Request) -> Iterator[str]:
        """The lines of a streamed answer (Server-Sent Events), raising for non-2xx."""
        kwargs = self.kwargs(request)
        kwargs["timeout"] = httpx.Timeout(self.timeout, read=None)
        try:
            with self.client.stream(request.method, self.url(request.path), **kwargs) as response:
                if not response.is_success:
                    response.read()
                    raise_for_answer(response)
                yield from response.iter_lines()
        except httpx.TransportError as exc:
            raise self.connection_failed(request, exc) from None

    def close(self) -> None:
        if self.owns_client:
            self.client.close()


class AsyncTransport(_Transport):
    """Sends `Request`s over an `httpx.AsyncClient`."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        timeout: float | None,
        client: httpx.AsyncClient | None = None,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        super().__init__(base_url, token, timeout)
        self.owns_client = client is None
        self.client = client or httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(retries=retries)
        )

    async def send(self, request: Request) -> httpx.Response:
        try:
            return await self.client.request(
                request.method, self.url(request.path), **self.kwargs(request)
            )
        except httpx.TransportError as exc:
            raise self.connection_failed(request, exc) from None

    async def stream_lines(self, request: Request) -> AsyncIterator[str]:
        """The lines of a streamed answer (Server-Sent Events), raising for non-2xx."""
        kwargs = self.kwargs(request)
        kwargs["timeout"] = httpx.Timeout(self.timeout, read=None)
        try:
            async with self.client.stream(
                request.method, self.url(request.path), **kwargs
            ) as response:
                if not response.is_success:
                    await response.aread()
                    raise_for_answer(response)
                async for line in response.aiter_lines():
                    yield line
        except httpx.TransportError as exc:
            raise self.connection_failed(request, exc) from None

    async def close(self) -> None:
        if self.owns_client:
            await self.client.aclose()
