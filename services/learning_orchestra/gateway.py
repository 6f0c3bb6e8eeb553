"""`gateway/krakend.json`: the KrakenD configuration, generated from the apps' own routes.

`learning-orchestra gateway-config` writes it. Each step service of a Swarm stack runs
`create_app([service])`; every route of that app becomes one KrakenD endpoint proxied to the
service's host. KrakenD CE has no wildcard routes, so nothing is left to a prefix: every method
of every path template is an endpoint of its own, and the API docs' asset files (a static
mount) are listed one by one. The routes every service serves alike (`/health`, `/ready`,
`/openapi.json`, `/docs`, `/redoc`, their assets, `/`) go to one of them, `shared_service`.
The apps are the route table here as they are for `openapi.yaml`, so a route added to a step
(or a step package added to steps/) reaches the gateway by regenerating the file, and
tests/gateway checks that the file, `openapi.yaml` and the apps agree.

`splits` (`--split train/pycaret`): a tool of a step run as a service of its own,
`lo-train-pycaret` running `serve --step train --tool pycaret`, and `lo-train` the step's
other tools (`--tool scikitlearn,tensorflow,autokeras`). The routes of that tool's step type
go to the former; what every app of the step serves (its ROUTERS) to the latter.

Why each setting (gateway/README.md says more):

- `output_encoding` and the backend's `encoding` are `no-op`: otherwise KrakenD decodes each
  answer as JSON and re-encodes it, turning 201/408/409/422 into 200 or 500, dropping headers
  such as `Location` and mangling PNG, CSV, Parquet and `.npy` bodies. `no-op` passes status,
  headers and body as the service sent them, and the request body (JSON or a multipart
  upload) likewise.
- `input_query_strings`: KrakenD forwards no query parameter it is not told of, so each
  endpoint lists those its route takes (`skip`, `limit`, `query`, `timeout`, `since`, ...),
  read from the route's own signature, as its OpenAPI parameters are.
- `input_headers`: likewise for headers. Every endpoint forwards the bearer token (the
  services check it), the body's `Content-Type` and what the services' cross-site check
  reads (`Origin`, `Sec-Fetch-Site`, core/edge.py); a route that reads a header of its own
  (`Last-Event-ID`) forwards it too, and a Server-Sent Events route `Accept`.
- timeouts: longer than the longest long-poll observe allows (its MAX_TIMEOUT), so the
  service answers a long-poll (its 408 included) before the gateway gives up.
- `max_payload`: the services' largest body (an upload of LO_MAX_UPLOAD_MB and its form
  fields). KrakenD Enterprise enforces it; KrakenD CE ignores it and the services answer 413
  themselves, with the message that says what to do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Each step service's URL; `{service}` is its name (dataset, train, ...), `{port}` its port.
#: A Swarm stack names the services `lo-dataset`, `lo-train`, ... on the stack's network.
HOST_PATTERN = "http://lo-{service}:{port}"
SERVICE_PORT = 8080
GATEWAY_PORT = 8080
#: The service answering the routes every service serves: the light one every client polls.
SHARED_SERVICE = "observe"
#: Headers every endpoint forwards (see the module's docstring).
FORWARDED_HEADERS = ("Authorization", "Content-Type", "Origin", "Sec-Fetch-Site")
#: What a Server-Sent Events route forwards besides the headers it reads itself.
STREAM_HEADERS = ("Accept",)
STREAM_MEDIA_TYPE = "text/event-stream"
#: The methods a KrakenD endpoint takes (HEAD and OPTIONS are the router's own).
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: A route's trailing `{name:path}` parameter (a file in a step's folders: `files/score`) spans
#: several segments, where a KrakenD `{name}` matches one: such a route gets one endpoint per
#: number of segments, up to this many, the extra ones named `{name_part2}`, `{name_part3}`, ...
PATH_SEGMENTS = 4
_EXTRA_SEGMENTS = re.compile(r"(/\{[A-Za-z_]\w*_part\d+\})+$")
#: How much longer than observe's longest long-poll the gateway waits for an answer.
TIMEOUT_MARGIN_S = 60
#: The server's write deadline runs from the end of the request's headers: a little longer
#: than the endpoint's, so that the gateway's own timeout answer can still be written.
WRITE_MARGIN_S = 10
READ_HEADER_TIMEOUT = "10s"
IDLE_TIMEOUT = "120s"
#: The services' answers to an unknown route and to a method a route does not take
#: (core/api.py's handlers): KrakenD answers these itself, in the same envelope.
ERROR_BODIES = {
    "404": {"result": "no such route: check the URL", "error": {"code": "http", "detail": None}},
    "405": {
        "result": "method not allowed on this route",
        "error": {"code": "http", "detail": None},
    },
}


@dataclass(frozen=True)
class Route:
    """One method of one path template that an app serves, as the gateway forwards it."""

    method: str
    path: str  # `{name}` placeholders, as KrakenD and OpenAPI write them
    query: tuple[str, ...] = ()  # the query parameters it takes
    headers: tuple[str, ...] = ()  # the request headers it reads besides FORWARDED_HEADERS


def _canonical_header(name: str) -> str:
    """`last-event-id` as HTTP writes it: `Last-Event-Id` (KrakenD matches either case)."""
    return "-".join(part.capitalize() for part in name.split("-"))


def _parameters(dependant: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(query parameters, header names) a route reads, its dependencies' included."""
    query: set[str] = set()
    headers: set[str] = set()
    pending = [dependant] if dependant is not None else []
    while pending:
        current = pending.pop()
        query.update(field.alias for field in current.query_params)
        headers.update(_canonical_header(field.alias) for field in current.header_params)
        pending.extend(current.dependencies)
    return tuple(sorted(query)), tuple(sorted(headers))


def _streams(route: Any) -> bool:
    """Whether the route answers Server-Sent Events (its declared answers say so)."""
    answers = getattr(route, "responses", None) or {}
    return any(STREAM_MEDIA_TYPE in (answer.get("content") or {}) for answer in answers.values())


def _paths(context: Any) -> list[str]:
    """The KrakenD paths of a route: its template, or for a trailing `{name:path}` parameter
    one per number of segments (PATH_SEGMENTS)."""
    from starlette.convertors import PathConvertor

    path = str(context.path_format)
    convertors = getattr(context, "param_convertors", None) or {}
    spanning = [name for name, kind in convertors.items() if isinstance(kind, PathConvertor)]
    if not spanning:
        return [path]
    name = spanning[0]
    if len(spanning) > 1 or not path.endswith(f"{{{name}}}"):
        raise ValueError(
            f"{context.path}: only a last `{{name:path}}` parameter can be spread over "
            "KrakenD endpoints of several segments"
        )
    return [
        path + "".join(f"/{{{name}_part{i}}}" for i in range(2, count + 1))
        for count in range(1, PATH_SEGMENTS + 1)
    ]


def app_path(endpoint: str) -> str:
    """The app's path template of a KrakenD endpoint (the extra segments of a `{name:path}`
    parameter folded back into `{name}`)."""
    return _EXTRA_SEGMENTS.sub("", endpoint)


def _static_files(mount: Any) -> list[str]:
    """The files a static mount serves, as paths relative to it."""
    from starlette.staticfiles import StaticFiles

    if not isinstance(mount.app, StaticFiles):
        raise ValueError(
            f"{mount.path} is a mount of {type(mount.app).__name__}: KrakenD CE has no wildcard "
            "routes, and only a static mount's files can be listed one by one"
        )
    files = {
        path.relative_to(folder).as_posix()
        for folder in map(Path, mount.app.all_directories)
        for path in folder.rglob("*")
        if path.is_file()
    }
    return sorted(files)


def app_routes(app: Any) -> list[Route]:
    """Every route `app` serves: one per method, a static mount's files one by one."""
    from fastapi.routing import iter_route_contexts
    from starlette.routing import Mount

    routes: list[Route] = []
    for context in iter_route_contexts(app.routes):
        route = getattr(context, "original_route", context)
        if isinstance(route, Mount):
            routes += [Route("GET", f"{route.path}/{name}") for name in _static_files(route)]
            continue
        methods = set(context.methods or ()) - {"HEAD", "OPTIONS"}
        if methods - set(METHODS):
            raise ValueError(
                f"{context.path_format} takes {', '.join(sorted(methods - set(METHODS)))}, "
                f"which a KrakenD endpoint cannot: it takes {', '.join(METHODS)}"
            )
        query, headers = _parameters(getattr(context, "dependant", None))
        if _streams(route):
            headers = tuple(sorted({*headers, *STREAM_HEADERS}))
        routes += [
            Route(method, path, query, headers)
            for path in _paths(context)
            for method in sorted(methods)
        ]
    return routes


@dataclass(frozen=True)
class Backend:
    """One service of the stack: a step service, or some tools of one (`splits`)."""

    name: str  # what `{service}` of the host pattern becomes: "train", "train-pycaret"
    step: str  # the step service it runs: `serve --step STEP`
    tools: tuple[str, ...] | None = None  # `--tool ...`; None: all of the step's

    def app(self) -> Any:
        from .core.api import create_app

        return create_app([self.step], tools=self.tools)


def backends(splits: Sequence[str] = ()) -> list[Backend]:
    """The services of a stack: one per step service, except that each `STEP/TOOL` of
    `splits` is a service of its own, `{step}-{tool}`, beside `{step}` serving the step's
    other tools (listed first: it also answers the step's routes of no tool)."""
    from .core.api import SERVICES, check_tools, service_tools

    split: dict[str, list[str]] = {}
    for given in splits:
        step, _, tool = given.partition("/")
        if step not in SERVICES:
            raise ValueError(
                f"--split {given}: write STEP/TOOL, STEP a step service: {', '.join(SERVICES)}"
            )
        try:
            split[step] = check_tools(step, [*split.get(step, []), tool])
        except ValueError as exc:
            raise ValueError(f"--split {given}: {exc}") from None
    result: list[Backend] = []
    for step in SERVICES:
        tools = split.get(step, [])
        rest = tuple(t for t in service_tools(step) if t not in tools)
        if not tools:
            result.append(Backend(step, step))
        elif rest:
            result.append(Backend(step, step, rest))
        result += [Backend(f"{step}-{tool}", step, (tool,)) for tool in tools]
    return result


def gateway_routes(
    shared_service: str = SHARED_SERVICE, splits: Sequence[str] = ()
) -> list[tuple[Route, str]]:
    """Every route of every service of the stack (`backends(splits)`) with the service that
    answers it, in path order.

    A route every service serves goes to `shared_service`; one that several apps of one
    step serve (its routes of no tool, when a tool is split off) to the first of them; one
    that several others serve is an error: KrakenD sends a path to one backend, so the table
    would be ambiguous."""
    from .core.api import SERVICES

    if shared_service not in SERVICES:
        raise ValueError(
            f"unknown step service {shared_service!r} for the shared routes; known: "
            f"{', '.join(SERVICES)}"
        )
    stack = backends(splits)
    if shared_service not in {backend.name for backend in stack}:
        raise ValueError(
            f"--shared-service {shared_service}: every tool of it is split off (--split); "
            "choose another service for the shared routes"
        )
    step_of = {backend.name: backend.step for backend in stack}
    owners: dict[tuple[str, str], dict[Route, list[str]]] = {}
    for backend in stack:
        for route in app_routes(backend.app()):
            owners.setdefault((route.method, route.path), {}).setdefault(route, []).append(
                backend.name
            )
    table: list[tuple[Route, str]] = []
    for (method, path), variants in owners.items():
        services = [service for owners_of in variants.values() for service in owners_of]
        if len(variants) == 1 and len(services) == len(stack):
            table.append((next(iter(variants)), shared_service))
        elif len(variants) == 1 and len({step_of[service] for service in services}) == 1:
            table.append((next(iter(variants)), services[0]))
        else:
            raise ValueError(
                f"{method} {path} is served by {', '.join(services)}"
                + (" with different parameters" if len(variants) > 1 else "")
                + ": the gateway sends a route to one service, or to a shared one when every "
                "service serves it alike"
            )
    return sorted(table, key=lambda item: (item[0].path, METHODS.index(item[0].method)))


def _duration(seconds: int) -> str:
    return f"{seconds}s"


def krakend_config(
    host_pattern: str = HOST_PATTERN,
    port: int = SERVICE_PORT,
    shared_service: str = SHARED_SERVICE,
    max_upload_mb: int | None = None,
    gateway_port: int = GATEWAY_PORT,
    splits: Sequence[str] = (),
) -> dict[str, Any]:
    """The KrakenD 2.x configuration (format version 3) routing every step service's routes.

    `max_upload_mb`: the services' LO_MAX_UPLOAD_MB (default: that setting's default).
    `splits`: `STEP/TOOL`s run as services of their own (`backends`)."""
    from .core.routes import MAX_JSON_BYTES, UPLOAD_SLACK
    from .core.settings import Settings
    from .steps.observe import MAX_TIMEOUT

    try:
        host_pattern.format(service="dataset", port=port)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"host pattern {host_pattern!r}: write {{service}} and {{port}} where the "
            f"service's name and port go, and no other {{...}} ({type(exc).__name__}: {exc})"
        ) from None
    if max_upload_mb is None:
        max_upload_mb = int(Settings.model_fields["max_upload_mb"].default)
    if max_upload_mb <= 0:
        raise ValueError(f"max upload: {max_upload_mb} MB is not a size: give the services' one")
    timeout = int(MAX_TIMEOUT) + TIMEOUT_MARGIN_S
    max_payload = max(max_upload_mb * 2**20 + UPLOAD_SLACK, MAX_JSON_BYTES)
    endpoints = [
        _endpoint(route, host_pattern.format(service=service, port=port), _duration(timeout))
        for route, service in gateway_routes(shared_service, splits)
    ]
    command = "learning-orchestra gateway-config" + "".join(f" --split {s}" for s in splits)
    return {
        "@comment": (
            f"Generated by `{command}` from the step services' routes: "
            "do not edit, regenerate (gateway/README.md)."
        ),
        "version": 3,
        "name": "Learning Orchestra",
        "port": gateway_port,
        "timeout": _duration(timeout),
        "read_header_timeout": READ_HEADER_TIMEOUT,
        "read_timeout": _duration(timeout),
        "write_timeout": _duration(timeout + WRITE_MARGIN_S),
        "idle_timeout": IDLE_TIMEOUT,
        "extra_config": {
            "router": {
                "@comment": (
                    f"max_payload: an upload of LO_MAX_UPLOAD_MB={max_upload_mb} and its form "
                    "fields (KrakenD Enterprise enforces it; with CE the services answer 413)."
                ),
                "max_payload": max_payload,
                "error_body": ERROR_BODIES,
            }
        },
        "endpoints": endpoints,
    }


def _endpoint(route: Route, host: str, timeout: str) -> dict[str, Any]:
    return {
        "endpoint": route.path,
        "method": route.method,
        "output_encoding": "no-op",
        "timeout": timeout,
        "input_query_strings": list(route.query),
        "input_headers": [
            *FORWARDED_HEADERS,
            *(h for h in route.headers if h not in FORWARDED_HEADERS),
        ],
        "backend": [
            {
                "host": [host],
                "url_pattern": route.path,
                "method": route.method,
                "encoding": "no-op",
            }
        ],
    }


def _dumps(value: Any, depth: int = 0) -> str:
    """JSON indented by two spaces, lists of plain values on one line (an endpoint reads in
    a dozen lines instead of thirty)."""
    pad = "  " * depth
    if isinstance(value, dict) and value:
        items = [f"{pad}  {json.dumps(k)}: {_dumps(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        items = [f"{pad}  {_dumps(item, depth + 1)}" for item in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False)


def krakend_json(**options: Any) -> str:
    """`krakend_config(**options)` as the text of gateway/krakend.json."""
    return _dumps(krakend_config(**options)) + "\n"
