"""The step-service factory: the REST routes of API.md for one `StepType` declaration.

POST   /{step}/{tool}                      create and run (JSON, or multipart upload)
GET    /{step}/{tool}                      list metadata (skip, limit)
GET    /{step}/{tool}/{name}               [metadata, ...content] (skip, limit, query)
GET    /{step}/{tool}/{name}?lineage=1     the upstream graph (core/lineage.py)
PATCH  /{step}/{tool}/{name}               re-run with changed parameters
DELETE /{step}/{tool}/{name}               cancel if running, remove metadata and output
POST   /{step}/{tool}/{name}/cancel        stop a pending or running step
GET    /{step}/{tool}/{name}/result        the output in a safe format (json|csv|parquet|npy)
GET    /{step}/{tool}/{name}/files         files the step wrote
GET    /{step}/{tool}/{name}/files/{file}  download one
GET    /{step}/{tool}/{name}/logs          captured stdout/stderr of the latest run
GET    /{step}/{tool}/{name}/runs          the step's run records, newest first (skip, limit)

Step types whose content is `Content.IMAGE` (LO's explore/{tool}) answer the PNG plot of
their output at GET /{name} (as LO did) and at GET /{name}/image; their [metadata, ...runs]
page moves to GET /{name}/metadata.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from .artifacts import ArtifactVolume
from .errors import BadRequest, Invalid, LOError, NotFound, TooLarge
from .lineage import lineage_graph
from .model import NAME_PATTERN, Doc, RunRecord, Status, StepMetadata, check_name, public
from .service import MAX_DESCRIPTION_BYTES, StepService, check_sizes, parse_body
from .settings import BASE_PATH, Settings
from .steptype import IMAGE_FILE, Content, StepType
from .store import Store
from .tables import dumps, parse_query, table_location
from .urls import check_url_fields

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
UPLOAD_CHUNK = 1 << 20
UPLOAD_SLACK = 64 * 1024  # multipart headers and form fields around the file
MAX_UPLOAD_PARTS = 8
MAX_FORM_FIELD_BYTES = MAX_DESCRIPTION_BYTES + 1024
MAX_JSON_BYTES = 16 * 2**20
MAX_JSON_DEPTH = 64
MAX_LOG_BYTES = 1 << 20  # the most of a log one GET answers
MAX_JSON_RESULT_BYTES = 16 * 2**20  # the most of a JSON value `.../result` answers inline

StepName = Annotated[str, Path(pattern=NAME_PATTERN, description="the step's name")]
#: The largest skip: any table or list is far smaller, and SQLite's integers are 64-bit (a
#: skip of 2**63 was an OverflowError, a 500).
MAX_SKIP = 2**53 - 1
Skip = Annotated[
    int, Query(ge=0, le=MAX_SKIP, description="items to skip (the metadata counts as one)")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items to return")]


def steps_of(request: Request) -> StepService:
    service: StepService = request.app.state.steps
    return service


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


Steps = Annotated[StepService, Depends(steps_of)]


def step_url(step_type: StepType, name: str) -> str:
    return f"{BASE_PATH}{step_type.path}/{name}"


def created(step_type: StepType, *docs: Doc) -> Response:
    """201 with the URL of the step created (a list of them for a multi-output job's)."""
    urls = [step_url(step_type, doc["name"]) for doc in docs]
    body = json.dumps({"result": urls if step_type.outputs else urls[0]})
    return Response(body, 201, headers={"Location": urls[0]}, media_type="application/json")


async def read_json(request: Request) -> Any:
    """The JSON body, read up to MAX_JSON_BYTES (a 413 beyond: uploads are for big files)."""
    too_large = TooLarge(
        f"the JSON body is larger than {MAX_JSON_BYTES // 2**20} MB: send large data as a "
        "dataset (by URL or multipart upload) and reference it as $name"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_JSON_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise too_large
    return parse_json(bytes(body))


def _no_constant(name: str) -> Any:
    raise BadRequest(f"the body is not valid JSON: {name} is not a JSON number (use null)")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BadRequest(
            f"the body holds {text[:40]}, a number too large for a float: send it as a string"
        )
    return value


def parse_json(body: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no overflowing floats, no integers over 4,300 digits, at
    most MAX_JSON_DEPTH levels of nesting; each a 400 naming what to fix (never a 500 later,
    when the store writes the document)."""
    try:
        data = json.loads(body, parse_constant=_no_constant, parse_float=_finite_float)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(
            f"the body is nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects"
        ) from None
    except ValueError as exc:  # int() past sys.get_int_max_str_digits
        raise BadRequest(
            f"the body holds an integer with too many digits ({exc}): send it as a string"
        ) from None
    if _depth_exceeds(data, MAX_JSON_DEPTH):
        raise BadRequest(
            f"the body is nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects"
        )
    return data


def _depth_exceeds(data: Any, limit: int) -> bool:
    """Whether `data` nests arrays/objects more than `limit` deep (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class _Part:
    """One part of a multipart body while it streams: its headers, then its data."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.field = b""
        self.value = b""
        self.name = ""
        self.filename: str | None = None
        self.data = bytearray()


async def stage_upload(
    request: Request, step_type: StepType, volume: ArtifactVolume, settings: Settings
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stream a multipart upload straight to the volume; (parameters, internal) for the step.

    The body is parsed as it arrives (python-multipart's streaming parser): the `file` part
    goes to the upload path chunk by chunk while it is counted, so nothing is spooled to /tmp
    nor copied, and an upload over LO_MAX_UPLOAD_MB stops at the limit with a 413 and leaves
    nothing behind. The other parts are small form fields (the name, a description)."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    limit = settings.max_upload_mb * 1024 * 1024
    too_large = f"the upload is larger than LO_MAX_UPLOAD_MB={settings.max_upload_mb} MB"
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + UPLOAD_SLACK:
        raise TooLarge(too_large)
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("the multipart body has no boundary in its Content-Type")

    parts: list[_Part] = []
    files: list[_Part] = []
    errors: list[LOError] = []
    size = 0

    def fail(error: LOError) -> None:
        if not errors:
            errors.append(error)

    def on_part_begin() -> None:
        parts.append(_Part())
        if len(parts) > MAX_UPLOAD_PARTS:
            fail(Invalid(f"the upload has more than {MAX_UPLOAD_PARTS} form fields"))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        parts[-1].field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        parts[-1].value += data[start:end]

    def on_header_end() -> None:
        part = parts[-1]
        part.headers[part.field.lower()] = part.value
        part.field = part.value = b""

    def on_headers_finished() -> None:
        part = parts[-1]
        _, disposition = parse_options_header(part.headers.get(b"content-disposition", b""))
        try:
            part.name = disposition.get(b"name", b"").decode()
            filename = disposition.get(b"filename")
            part.filename = None if filename is None else filename.decode()
        except UnicodeDecodeError:
            fail(BadRequest("a multipart field name or filename is not UTF-8"))
            return
        if part.filename is not None:
            if part.name != "file" or files:
                fail(Invalid("an upload takes one file, in the `file` field", {"field": "file"}))
            elif _has_control_characters(part.filename) or len(part.filename) > 255:
                fail(
                    Invalid(
                        "file: the filename has control characters (such as NUL) or is over "
                        "255 characters: rename the file",
                        {"field": "file"},
                    )
                )
            files.append(part)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        nonlocal size
        part = parts[-1]
        part.data += data[start:end]
        if part.filename is not None:
            size += end - start
            if size > limit:
                fail(TooLarge(too_large))
        elif len(part.data) > MAX_FORM_FIELD_BYTES:
            fail(
                TooLarge(
                    f"{part.name or 'a form field'}: more than {MAX_FORM_FIELD_BYTES // 1024} KB",
                    {"field": part.name},
                )
            )

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
        },
    )
    incoming = volume.upload_path(f".incoming.{secrets.token_hex(8)}")
    out = await asyncio.to_thread(incoming.open, "wb")
    try:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                if errors:
                    raise errors[0]
                if files and len(files[0].data) >= UPLOAD_CHUNK:
                    pending, files[0].data = bytes(files[0].data), bytearray()
                    await asyncio.to_thread(out.write, pending)
            parser.finalize()
        except MultipartParseError as exc:
            raise BadRequest(f"the multipart body is malformed: {exc}") from None
        if errors:
            raise errors[0]
        if files:
            await asyncio.to_thread(out.write, bytes(files[0].data))
        await asyncio.to_thread(out.close)
        if not files:
            raise Invalid(
                "a multipart upload needs a `file` field holding the file", {"field": "file"}
            )
        fields: dict[str, str] = {}
        for part in parts:
            if part.filename is None:
                try:
                    fields[part.name] = part.data.decode()
                except UnicodeDecodeError:
                    raise BadRequest(f"form field {part.name!r} is not UTF-8 text") from None
        unknown = set(fields) - {step_type.name_field, "description"}
        if unknown:
            raise Invalid(f"unknown form field(s) {', '.join(sorted(unknown))}: remove them")
        if step_type.name_field not in fields:
            raise Invalid(f"{step_type.name_field}: required", {"field": step_type.name_field})
        filename = files[0].filename or "file"
        name = check_name(fields[step_type.name_field], step_type.name_field)
        params = {
            step_type.name_field: name,
            "datasetURI": f"upload:{filename}",
            "description": fields.get("description"),
        }
        check_sizes(params)
        path = volume.upload_path(f"{name}.{secrets.token_hex(8)}")
        await asyncio.to_thread(incoming.rename, path)
    except BaseException:  # a refusal, a malformed body, or the client went away
        out.close()
        incoming.unlink(missing_ok=True)
        raise
    return params, {"upload": str(path), "filename": filename, "size": size}


def _body_schema(step_type: StepType) -> dict[str, Any]:
    """POST's request body: the step's JSON model (and the multipart upload, if it takes one)."""
    schema = step_type.request.model_json_schema()
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if step_type.example is not None:
        content["application/json"]["example"] = dict(step_type.example)
    if step_type.upload:
        content["multipart/form-data"] = {
            "schema": {
                "type": "object",
                "required": [step_type.name_field, "file"],
                "properties": {
                    step_type.name_field: {"type": "string", "pattern": NAME_PATTERN},
                    "file": {"type": "string", "format": "binary"},
                    "description": {"type": "string"},
                },
            }
        }
    return {"requestBody": {"required": True, "content": content}}


def _patch_schema(step_type: StepType) -> dict[str, Any]:
    """PATCH's request body: POST's keys minus the name, every one optional."""
    schema = step_type.request.model_json_schema()
    schema["properties"] = {
        k: v for k, v in schema.get("properties", {}).items() if k != step_type.name_field
    }
    schema.pop("required", None)
    schema["title"] = f"{schema.get('title', 'Body')}Changes"
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


class ErrorDetail(BaseModel):
    code: str
    detail: Any = None


class ErrorBody(BaseModel):
    """Every error answer: LO's envelope with a one-line message, plus a machine code."""

    result: str
    error: ErrorDetail


# -- answers, as the OpenAPI document describes them ----------------------------------------
# Documentation only (defer_build: never built into validators): the routes answer the JSON
# they have, and these are referenced from the routes' `responses` by name (`answer_doc`).
_DOCUMENTED = ConfigDict(defer_build=True)


class StepAnswer(BaseModel):
    """One step's metadata."""

    model_config = _DOCUMENTED
    result: StepMetadata


class StepList(BaseModel):
    """Steps' metadata, in creation order (oldest first)."""

    model_config = _DOCUMENTED
    result: list[StepMetadata]


class RunList(BaseModel):
    """A step's run records, newest first."""

    model_config = _DOCUMENTED
    result: list[RunRecord]


class TablePage(BaseModel):
    """`[metadata, ...rows]`, paged together by `skip`/`limit`: the metadata document first
    (when `skip` is 0), then the table's rows, each an object of column → value."""

    model_config = _DOCUMENTED
    result: list[StepMetadata | dict[str, Any]]


class RunPage(BaseModel):
    """`[metadata, ...run records]`, paged together by `skip`/`limit`: the metadata document
    first (when `skip` is 0), then the step's run records, newest first."""

    model_config = _DOCUMENTED
    result: list[StepMetadata | RunRecord]


class LineageNode(BaseModel):
    """A step of the graph; a parent deleted since is `missing`, with null type and status."""

    model_config = _DOCUMENTED
    name: str
    type: str | None
    status: Status | None
    stale: bool | None
    missing: bool


class LineageEdge(BaseModel):
    """From a parent to the step computed from it."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)
    parent: str = Field(alias="from")
    child: str = Field(alias="to")


class LineageGraph(BaseModel):
    """A step's upstream graph (`lineage=1`): nodes breadth-first from the step, itself first."""

    model_config = _DOCUMENTED
    name: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    truncated: bool = Field(description="whether nodes were left out (more than 1000)")


class LineageAnswer(BaseModel):
    """A step's upstream graph."""

    model_config = _DOCUMENTED
    result: LineageGraph


class StepOrLineage(BaseModel):
    """A step's metadata, or its upstream graph (`lineage=1`)."""

    model_config = _DOCUMENTED
    result: StepMetadata | LineageGraph


class UrlAnswer(BaseModel):
    """Where the step is: `result` is its URL (also in the `Location` header)."""

    model_config = _DOCUMENTED
    result: str


class UrlsAnswer(BaseModel):
    """Where the steps of a multi-output job are (builder/sparkml): one URL per output, in
    order (the first also in the `Location` header)."""

    model_config = _DOCUMENTED
    result: list[str]


class MessageAnswer(BaseModel):
    """What was done, in words."""

    model_config = _DOCUMENTED
    result: str


class StepFile(BaseModel):
    """A file of a step's current output."""

    model_config = _DOCUMENTED
    filename: str
    size: int
    sha256: str


class FileList(BaseModel):
    """The files of a step's current output."""

    model_config = _DOCUMENTED
    result: list[StepFile]


class LogAnswer(BaseModel):
    """A piece of a step's captured output."""

    model_config = _DOCUMENTED
    result: str = Field(description="the text (undecodable bytes replaced)")
    offset: int = Field(description="where it starts in the log, in bytes")
    size: int = Field(description="the whole log's size in bytes")
    truncated: bool = Field(description="whether bytes of the log were left out")


#: The answers the routes of this module (and the routes across step types) refer to.
ANSWERS: tuple[type[BaseModel], ...] = (
    StepAnswer,
    StepList,
    RunList,
    TablePage,
    RunPage,
    LineageAnswer,
    StepOrLineage,
    UrlAnswer,
    UrlsAnswer,
    MessageAnswer,
    FileList,
    LogAnswer,
)


def schema_ref(name: str) -> dict[str, str]:
    """A reference to component schema `name` (the app's document holds it: core/api.py)."""
    return {"$ref": f"#/components/schemas/{name}"}


def answer_doc(what: str, schema: str | dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI description of a JSON answer whose schema is component `schema` (a name)
    or the given schema, by reference: given as a route's `response_model` or as
    `{"model": M}`, FastAPI would build a pydantic TypeAdapter per route and status code,
    which took most of the server's start (~2 ms each, ~2,000 of them), and validate every
    answer. The app's `openapi()` adds the referenced components (core/api.py)."""
    body = schema_ref(schema) if isinstance(schema, str) else schema
    return {"description": what, "content": {"application/json": {"schema": body}}}


def error_response_doc(what: str) -> dict[str, Any]:
    """The OpenAPI description of an error answer (an `ErrorBody`), by reference."""
    return answer_doc(what, "ErrorBody")


def error_schemas() -> dict[str, Any]:
    """`ErrorBody` and the schemas it references, as OpenAPI components."""
    schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"ErrorBody": schema, **schema.pop("$defs", {})}


ERRORS: dict[int | str, dict[str, Any]] = {
    code: error_response_doc(what)
    for code, what in {
        400: "malformed JSON",
        401: "missing or invalid token (when LO_API_TOKENS is set)",
        403: "a cross-origin request from a web page (see LO_CORS_ORIGINS)",
        404: "no such step or route",
        409: "the name is taken, or the step is busy",
        413: "the body, an upload or a field is too large",
        415: "the body's Content-Type is not one this route takes",
        421: "a Host that is not a loopback name, on a loopback connection (LO_ALLOWED_HOSTS)",
        422: "a parameter is invalid; `result` names it",
    }.items()
}


#: Routes that read tables (core/tables.py: bounded in concurrency and time).
SCAN_ERRORS: dict[int | str, dict[str, Any]] = {
    503: error_response_doc("scan_timeout: reading the table took longer than LO_SCAN_TIMEOUT")
}


def step_router(step_type: StepType) -> APIRouter:
    """All routes of one step type."""
    router = APIRouter(prefix=step_type.path, tags=[step_type.step], responses=ERRORS)
    kind = step_type.type

    @router.post(
        "",
        status_code=201,
        summary=f"Create and run a {kind} step",
        description=step_type.summary,
        openapi_extra=_body_schema(step_type),
        operation_id=f"create_{step_type.step}_{step_type.tool}",
        responses={
            201: answer_doc(
                "created: it runs when its inputs are ready",
                "UrlsAnswer" if step_type.outputs else "UrlAnswer",
            )
        },
    )
    async def create(request: Request, steps: Steps) -> Response:
        content_type = request.headers.get("content-type", "")
        internal = None
        if content_type.startswith("multipart/form-data"):
            if not step_type.upload:
                raise Invalid(f"{kind} takes a JSON body, not an upload")
            params, internal = await stage_upload(
                request, step_type, steps.volume, settings_of(request)
            )
        else:
            params = parse_body(step_type, await read_json(request))
            check_url_fields(params, settings_of(request))
        if step_type.outputs:
            return created(step_type, *await steps.create_outputs(step_type, params))
        try:
            doc = await steps.create(step_type, params, internal)
        except Exception:
            if internal:  # nothing half-written stays behind
                pathlib.Path(internal["upload"]).unlink(missing_ok=True)
            raise
        return created(step_type, doc)

    @router.get(
        "",
        summary=f"List {kind} steps",
        operation_id=f"list_{step_type.step}_{step_type.tool}",
        response_model=None,
        responses={200: answer_doc("their metadata, oldest first", "StepList")},
    )
    async def list_steps(
        steps: Steps, skip: Skip = 0, limit: Limit = DEFAULT_LIMIT
    ) -> dict[str, Any]:
        return {"result": [public(d) for d in await steps.list_steps(step_type, skip, limit)]}

    image = step_type.content is Content.IMAGE
    table = step_type.content is Content.TABLE
    page = answer_doc(
        "[metadata, ...rows]" if table else "[metadata, ...run records]",
        {"anyOf": [schema_ref("TablePage" if table else "RunPage"), schema_ref("LineageAnswer")]},
    )
    page["description"] += "; with lineage=1, the step's upstream graph"

    @router.get(
        "/{name}/metadata" if image else "/{name}",
        summary=f"Metadata and content of a {kind} step",
        operation_id=f"read_{step_type.step}_{step_type.tool}",
        response_model=None,
        responses={200: page, **(SCAN_ERRORS if table else {})},
    )
    async def read(
        name: StepName,
        steps: Steps,
        skip: Skip = 0,
        limit: Limit = DEFAULT_LIMIT,
        query: Annotated[str | None, Query(description="JSON filter over rows")] = None,
        lineage: Annotated[
            bool,
            Query(description="answer the step's upstream graph (nodes, parent → child edges)"),
        ] = False,
    ) -> Response:
        doc = await steps.get(step_type, name)
        if lineage:  # skip, limit and query page content, which this answer has none of
            graph = await lineage_graph(steps.store, doc)
            return Response(json.dumps({"result": graph}), media_type="application/json")
        filters = parse_query(query)
        if filters and step_type.content is not Content.TABLE:
            raise Invalid(f"{kind} outputs are not tables: query applies to table rows only")
        # LO's paging: skip/limit apply to [metadata, *content]. The answer is written as JSON
        # text once (rows can be many): no jsonable_encoder pass over them.
        head = dumps(public(doc)) if skip == 0 else ""
        more = limit - (1 if head else 0)
        content = await steps.content(step_type, doc, max(skip - 1, 0), more, filters)
        items = head + ("," if head and content != "[]" else "") + content[1:-1]
        return Response(f'{{"result":[{items}]}}', media_type="application/json")

    @router.patch(
        "/{name}",
        status_code=201,
        summary=f"Re-run a {kind} step with changed parameters",
        openapi_extra=_patch_schema(step_type),
        operation_id=f"rerun_{step_type.step}_{step_type.tool}",
        responses={
            201: answer_doc("accepted: it runs again when its inputs are ready", "UrlAnswer")
        },
    )
    async def rerun(name: StepName, request: Request, steps: Steps) -> Response:
        changes = await read_json(request)
        if not isinstance(changes, dict):
            raise Invalid("the body must be a JSON object of the parameters to change")
        check_url_fields(changes, settings_of(request))
        doc = await steps.rerun(step_type, name, changes)
        return created(step_type, doc)

    if image:

        async def plot(name: StepName, steps: Steps) -> FileResponse:
            doc = await steps.get(step_type, name)
            run, _ = steps.artifact(doc)
            path = steps.volume.file(name, run, IMAGE_FILE)
            return FileResponse(path, media_type="image/png", filename=f"{name}.png")

        for path, operation in (("/{name}", "plot"), ("/{name}/image", "image")):
            router.add_api_route(
                path,
                plot,
                methods=["GET"],
                summary=f"The PNG plot of a {kind} step's output",
                operation_id=f"{operation}_{step_type.step}_{step_type.tool}",
                response_class=FileResponse,
                responses={200: {"content": {"image/png": {}}, "description": "a PNG image"}},
            )

    @router.delete(
        "/{name}",
        summary=f"Delete a {kind} step and its output",
        operation_id=f"delete_{step_type.step}_{step_type.tool}",
        response_model=None,
        responses={200: answer_doc("deleted", "MessageAnswer")},
    )
    async def delete(name: StepName, steps: Steps) -> dict[str, Any]:
        await steps.delete(step_type, name)
        return {"result": f"deleted {name}"}

    @router.post(
        "/{name}/cancel",
        summary=f"Cancel a pending or running {kind} step",
        operation_id=f"cancel_{step_type.step}_{step_type.tool}",
        response_model=None,
        responses={
            200: answer_doc("its metadata once it is cancelled (or has ended)", "StepAnswer")
        },
    )
    async def cancel(name: StepName, steps: Steps) -> dict[str, Any]:
        return {"result": public(await steps.cancel(step_type, name))}

    @router.get(
        "/{name}/result",
        summary=f"The output of a {kind} step",
        operation_id=f"result_{step_type.step}_{step_type.tool}",
        response_model=None,
        responses=SCAN_ERRORS,
    )
    async def result(
        name: StepName,
        steps: Steps,
        format: Literal["json", "csv", "parquet", "npy"] | None = None,
    ) -> Response | dict[str, Any]:
        doc = await steps.get(step_type, name)
        run, manifest = steps.artifact(doc)
        folder = steps.volume.artifact_dir(name, run)
        stored = manifest["format"]
        if format == "npy" and stored != "npy":
            raise Invalid(
                f"{name!r} is stored as {stored}, not as an array: ask for format=json"
                + (", csv or parquet" if stored == "parquet" else " or download it from .../files")
            )
        if stored == "npy":  # an array: its .npy file, as the job saved it (numpy.load reads it)
            if format not in (None, "npy"):
                raise Invalid(f"{name!r} is an array: ask for format=npy (numpy.load reads it)")
            return FileResponse(
                folder / "value.npy", media_type="application/octet-stream", filename=f"{name}.npy"
            )
        if stored == "json" and format in (None, "json"):  # a small value: {"result": value}
            value = folder / "value.json"
            if value.stat().st_size > MAX_JSON_RESULT_BYTES:
                raise Invalid(
                    f"{name!r} is {value.stat().st_size} bytes of JSON, more than one answer "
                    f"holds ({MAX_JSON_RESULT_BYTES}): download value.json from .../files"
                )
            data = await asyncio.to_thread(value.read_bytes)
            return Response(b'{"result":' + data + b"}", media_type="application/json")
        if stored == "parquet":
            table = table_location(folder)  # one file, or a folder of parts (core/tables.py)
            if format == "parquet":
                if table.is_file():
                    return FileResponse(table, filename=f"{name}.parquet")
                return StreamingResponse(  # the parts joined into one file as it streams
                    steps.tables.parquet_chunks(table),
                    media_type="application/vnd.apache.parquet",
                    headers={"Content-Disposition": f'attachment; filename="{name}.parquet"'},
                )
            if format == "csv":
                return StreamingResponse(
                    steps.tables.csv_chunks(table),
                    media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
                )
            rows = await steps.tables.all_rows_json(table)
            return Response(f'{{"result":{rows}}}', media_type="application/json")
        files = [f for f in manifest["files"] if f != "manifest.json"]
        if len(files) == 1 and format in (None, "json") and manifest["format"] == "raw":
            return FileResponse(folder / files[0], filename=files[0])
        raise Invalid(f"{name!r} is stored as {manifest['format']}: download it from .../files")

    @router.get(
        "/{name}/files",
        summary=f"Files a {kind} step wrote",
        operation_id=f"files_{step_type.step}_{step_type.tool}",
        response_model=None,
        responses={200: answer_doc("the files of its current output", "FileList")},
    )
    async def files(name: StepName, steps: Steps) -> dict[str, Any]:
        doc = await steps.get(step_type, name)
        run, manifest = steps.artifact(doc)
        folder = steps.volume.artifact_dir(name, run)
        return {
            "result": [
                {"filename": f, "size": (folder / f).stat().st_size, "sha256": digest}
                for f, digest in manifest["files"].items()
            ]
        }

    @router.get(
        "/{name}/files/{filename:path}",
        summary=f"Download a file of a {kind} step",
        operation_id=f"file_{step_type.step}_{step_type.tool}",
        response_class=FileResponse,
    )
    async def file(name: StepName, filename: str, steps: Steps) -> FileResponse:
        if _has_control_characters(filename):  # NUL made the path lookup a 500
            raise Invalid(
                "filename: has control characters (such as NUL): use a name from .../files",
                {"field": "filename"},
            )
        doc = await steps.get(step_type, name)
        run, _ = steps.artifact(doc)
        return FileResponse(steps.volume.file(name, run, filename), filename=filename)

    @router.get(
        "/{name}/logs",
        summary=f"Captured output of a {kind} step's latest run",
        operation_id=f"logs_{step_type.step}_{step_type.tool}",
        response_model=None,
        responses={200: answer_doc("a piece of the log", "LogAnswer")},
    )
    async def logs(
        name: StepName,
        steps: Steps,
        offset: Annotated[
            int | None,
            Query(ge=0, le=MAX_SKIP, description="first byte to return; default: the tail"),
        ] = None,
        limit: Annotated[
            int, Query(ge=1, le=MAX_LOG_BYTES, description="bytes to return at most")
        ] = MAX_LOG_BYTES,
    ) -> dict[str, Any]:
        """The log's last `limit` bytes (default 1 MiB), or `limit` bytes from `offset`.

        `size` is the log's whole size and `truncated` says whether bytes were left out
        (page with `offset`): a step that printed 300 MB took the API to 1.5 GB when the
        whole log was answered."""
        await steps.get(step_type, name)
        path = steps.volume.log_path(name)
        return await asyncio.to_thread(_read_log, path, offset, limit)

    @router.get(
        "/{name}/runs",
        summary=f"The run records of a {kind} step, newest first",
        operation_id=f"runs_{step_type.step}_{step_type.tool}",
        response_model=None,
        responses={200: answer_doc("its run records, newest first", "RunList")},
    )
    async def runs(
        name: StepName, steps: Steps, skip: Skip = 0, limit: Limit = DEFAULT_LIMIT
    ) -> dict[str, Any]:
        """One record per run that ended: status, exception, parameters, start, end,
        duration, what it printed (its tail) and the output it committed (`artifact`: run
        id, format, checksum), for every step type (a table step's GET pages rows instead)."""
        return {"result": await steps.runs(step_type, name, skip, limit)}

    return router


def _has_control_characters(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _read_log(path: pathlib.Path, offset: int | None, limit: int) -> dict[str, Any]:
    """`limit` bytes of the log at `path` from `offset` (None: its tail), with its size."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, 2)
            start = max(size - limit, 0) if offset is None else min(offset, size)
            log.seek(start)
            data = log.read(limit)
    except FileNotFoundError:
        size, start, data = 0, 0, b""
    return {
        "result": data.decode(errors="replace"),
        "offset": start,
        "size": size,
        "truncated": start > 0 or start + len(data) < size,
    }


__all__ = ["NotFound", "step_router", "step_url"]
