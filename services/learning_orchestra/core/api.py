"""Assembling services into a FastAPI app: lifespan, error mapping, health, auth.

`create_app(["dataset"])` is what a Swarm service runs; `create_app()` (every service) is the
embedded all-in-one server of `learning-orchestra serve`.
"""

from __future__ import annotations

import ast
import functools
import hmac
import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from .artifacts import ArtifactVolume
from .docs import install_docs
from .edge import EdgeGuard
from .errors import LOError, StoreUnavailable, Unauthorized
from .jobs import Supervisor
from .model import metadata_schemas
from .routes import ANSWERS, error_schemas, step_router
from .service import StepService
from .settings import BASE_PATH, Settings, get_settings
from .steptype import StepType
from .store import store_from_url
from .studio import install_studio

log = logging.getLogger(__name__)

#: LO's pipeline order: services are mounted (and listed in /docs) in this order where they
#: have a place in it, any other after them by name. It orders; it does not decide which
#: services exist: `step_services` does.
PIPELINE_ORDER = (
    "dataset",
    "transform",
    "explore",
    "model",
    "train",
    "tune",
    "evaluate",
    "predict",
    "function",
    "builder",
    "observe",
)


#: What a step service declares at its top level (its StepTypes, its plain routers).
SERVICE_DECLARATIONS = frozenset({"STEP_TYPES", "ROUTERS"})


def _declares_service(source: Path) -> bool:
    """Whether the module at `source` assigns STEP_TYPES or ROUTERS at its top level."""
    for node in ast.parse(source.read_text(encoding="utf-8"), str(source)).body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id in SERVICE_DECLARATIONS for t in targets):
            return True
    return False


def step_services() -> tuple[str, ...]:
    """Every step service: each module or package of `learning_orchestra.steps` that declares
    STEP_TYPES or ROUTERS (a package in its `__init__.py`).

    A step package added there is a service (served, documented, routed by the gateway) with
    nothing else to list. The modules are read, not imported: importing would load whatever a
    helper module of steps/ imports (steps/spark_tables.py: pyarrow) into every API process,
    and each service's declarations into every single-service process."""
    from .. import steps

    folder = Path(steps.__file__).parent
    names = [
        module.name
        for module in pkgutil.iter_modules([str(folder)])
        if _declares_service(
            folder / module.name / "__init__.py" if module.ispkg else folder / f"{module.name}.py"
        )
    ]
    rank = {name: i for i, name in enumerate(PIPELINE_ORDER)}
    return tuple(sorted(names, key=lambda name: (rank.get(name, len(rank)), name)))


SERVICES = step_services()


def service_module(name: str) -> Any:
    """The module of step service `name` (its STEP_TYPES, ROUTERS, SCHEMAS)."""
    if name not in SERVICES:
        raise ValueError(f"unknown step service {name!r}; known: {', '.join(SERVICES)}")
    return importlib.import_module(f"learning_orchestra.steps.{name}")


def service_tools(name: str) -> tuple[str, ...]:
    """The tools of step service `name` (train: scikitlearn, tensorflow, pycaret, autokeras):
    those of its step types, in their order. `create_app([name], tools=...)` serves some."""
    return tuple(dict.fromkeys(t.tool for t in getattr(service_module(name), "STEP_TYPES", [])))


def check_tools(service: str, tools: Sequence[str]) -> list[str]:
    """`tools` without repeats, each a tool of step service `service`; else a ValueError
    listing the service's tools (what `serve --tool` and `gateway-config --split` say)."""
    known = service_tools(service)
    unknown = [tool for tool in tools if tool not in known] or ([] if tools else [""])
    if unknown:
        raise ValueError(
            f"{', '.join(map(repr, unknown))}: not a tool of step service {service!r}; its "
            f"tools: {', '.join(known) or 'none'}"
        )
    return list(dict.fromkeys(tools))


def error_body(message: str, code: str, detail: Any = None) -> dict[str, Any]:
    return {"result": message, "error": {"code": code, "detail": detail}}


def error_response(status: int, message: str, code: str, detail: Any = None) -> JSONResponse:
    return JSONResponse(error_body(message, code, detail), status_code=status)


bearer = HTTPBearer(auto_error=False, description="opaque token, when LO_API_TOKENS is set")


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Bearer-token check, active when LO_API_TOKENS is set."""
    tokens = request.app.state.settings.tokens
    if not tokens:
        return
    token = credentials.credentials if credentials else ""
    if not any(hmac.compare_digest(token.encode(), t.encode()) for t in tokens):
        raise Unauthorized("missing or invalid token: send 'Authorization: Bearer <token>'")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LOError)
    async def lo_error(_: Request, exc: LOError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, exc.code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            return error_response(400, "the body is not valid JSON", "bad_request")
        parts, detail = [], []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"] if p not in ("query", "path", "body"))
            parts.append(f"{where or 'request'}: {error['msg']}")
            detail.append({"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]})
        return error_response(422, "; ".join(parts), "invalid", detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "no such route: check the URL", 405: "method not allowed on this route"}
        message = exc.detail if isinstance(exc.detail, str) else messages.get(exc.status_code, "")
        if exc.status_code == 404 and message == "Not Found":
            message = messages[404]
        if exc.status_code == 405 and message == "Method Not Allowed":
            message = messages[405]
        return error_response(exc.status_code, message, "http", None)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, f"internal error: {type(exc).__name__}", "internal")


_REF = "#/components/schemas/"


def _references(node: Any) -> Iterator[str]:
    """The component schemas `node` refers to (`$ref`s), wherever they are in it."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF):
                yield ref.removeprefix(_REF)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _document_schemas(app: FastAPI, models: Sequence[type[BaseModel]]) -> None:
    """Add the schemas the routes refer to by name (core/routes.py, `answer_doc`: the error
    envelope, StepMetadata, RunRecord and the answers around them, `models`) to the app's
    OpenAPI document when it is generated: those its paths refer to, and theirs in turn."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            known = {**error_schemas(), **metadata_schemas(*models)}
            wanted = list(_references(document["paths"]))
            while wanted:
                name = wanted.pop()
                if name not in schemas and name in known:
                    schemas[name] = known[name]
                    wanted.extend(_references(known[name]))
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


@functools.cache
def _whole_api_document() -> dict[str, Any]:
    from .openapi import openapi_document

    return openapi_document()


def create_app(
    services: Sequence[str] | None = None,
    settings: Settings | None = None,
    tools: Sequence[str] | None = None,
) -> FastAPI:
    """An app serving `services` (default: all) under the API base path.

    `tools` (with one service): only the step types of those tools of it, served and run by
    its supervisor: `serve --step train --tool pycaret`, a heavy tool split off into a Swarm
    service of its own (gateway/README.md). The service's other routes (its ROUTERS: LO's
    transform/dataType, the tune/autokeras notice, builder's file route) belong to no step
    type's tool, and every app of the service serves them."""
    names = list(services or SERVICES)
    modules = [service_module(n) for n in names]
    if tools is not None and len(names) != 1:
        raise ValueError(f"tools {list(tools)}: name the one step service they are tools of")
    only = None if tools is None else check_tools(names[0], tools)
    step_types: list[StepType] = [
        t for m in modules for t in getattr(m, "STEP_TYPES", []) if only is None or t.tool in only
    ]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or get_settings()
        app.state.settings = config
        volume = ArtifactVolume(config.data_dir)
        store = store_from_url(config.resolved_store_url)
        await store.open()
        from ..sandbox.pool import pool_for  # pre-started sandbox interpreters, if needed

        supervisor = Supervisor(store, volume, config, step_types, pool_for(config, step_types))
        app.state.store = store
        app.state.steps = StepService(store, volume, supervisor)
        await supervisor.start()  # recovers first
        try:
            yield
        finally:
            await supervisor.stop()
            await store.close()
            app.state.steps.tables.close()

    title = "Learning Orchestra" + ("" if services is None else f" — {', '.join(names)}")
    if only is not None:
        title += f" ({', '.join(only)})"
    app = FastAPI(
        title=title,
        version="1.0.0",
        description="REST API for machine-learning pipeline steps (see docs/api.md).",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load Swagger UI/ReDoc from a CDN: core/docs.py's don't
        redoc_url=None,
    )
    _install_error_handlers(app)
    install_docs(app)
    install_studio(app)  # the web view of pipelines, served by every app like /docs
    _document_schemas(app, [*ANSWERS, *(m for mod in modules for m in getattr(mod, "SCHEMAS", ()))])
    if set(names) != set(SERVICES):
        # Behind the gateway (gateway/krakend.json) one service answers /openapi.json and
        # /docs for all: each documents the whole API, the one the gateway presents.
        app.openapi = _whole_api_document  # type: ignore[method-assign]
    # Added last = runs first: the edge guard refuses cross-site requests, body types a route
    # does not take and rebinding Hosts before CORS or any route sees them (core/edge.py).
    edge_settings = settings or get_settings()
    origins = edge_settings.cors_origin_list
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            expose_headers=["Location"],
        )
    uploads = [f"{BASE_PATH}{t.path}" for t in step_types if t.upload]
    app.add_middleware(EdgeGuard, settings=edge_settings, upload_paths=uploads)

    @app.get("/health", tags=["health"], summary="Liveness")
    async def health() -> dict[str, Any]:
        if only is not None:
            return {"result": "ok", "services": names, "tools": only}
        return {"result": "ok", "services": names}

    @app.get("/ready", tags=["health"], summary="Readiness: the store answers")
    async def ready(request: Request) -> JSONResponse:
        try:
            await request.app.state.store.ping()
        except StoreUnavailable as exc:
            return error_response(503, exc.message, exc.code)
        return JSONResponse({"result": "ready"})

    auth = [Depends(require_token)]
    for step_type in step_types:
        app.include_router(step_router(step_type), prefix=BASE_PATH, dependencies=auth)
    for module in modules:
        for router in getattr(module, "ROUTERS", []):
            app.include_router(router, prefix=BASE_PATH, dependencies=auth)
    return app


def lazy_app(service: str) -> Any:
    """`app` for a step module's `__getattr__`: built on first access only, so that worker
    processes importing a module's jobs never build a web app."""
    return create_app([service])
