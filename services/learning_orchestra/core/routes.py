"""The step-service factory: the REST routes of API.md for one `StepType` declaration.

POST   /{step}/{tool}                      create and run (JSON, or multipart upload)
GET    /{step}/{tool}                      list metadata (skip, limit)
GET    /{step}/{tool}/{name}               [metadata, ...content] (skip, limit, query)
PATCH  /{step}/{tool}/{name}               re-run with changed parameters
DELETE /{step}/{tool}/{name}               cancel if running, remove metadata and output
POST   /{step}/{tool}/{name}/cancel        stop a pending or running step
GET    /{step}/{tool}/{name}/result        the output in a safe format (json|csv|parquet)
GET    /{step}/{tool}/{name}/files         files the step wrote
GET    /{step}/{tool}/{name}/files/{file}  download one
GET    /{step}/{tool}/{name}/logs          captured stdout/stderr of the latest run

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
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from .artifacts import ArtifactVolume
from .errors import BadRequest, Invalid, NotFound, TooLarge
from .model import NAME_PATTERN, Doc, check_name, public
from .service import StepService, parse_body
from .settings import BASE_PATH, Settings
from .steptype import IMAGE_FILE, Content, StepType
from .tables import parse_query

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
UPLOAD_CHUNK = 1 << 20
MAX_JSON_BYTES = 16 * 2**20

StepName = Annotated[str, Path(pattern=NAME_PATTERN, description="the step's name")]
Skip = Annotated[int, Query(ge=0, description="items to skip (the metadata counts as one)")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items to return")]


def steps_of(request: Request) -> StepService:
    service: StepService = request.app.state.steps
    return service


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Steps = Annotated[StepService, Depends(steps_of)]


def step_url(step_type: StepType, name: str) -> str:
    return f"{BASE_PATH}{step_type.path}/{name}"


def created(step_type: StepType, doc: Doc) -> Response:
    url = step_url(step_type, doc["name"])
    body = json.dumps({"result": url})
    return Response(body, 201, headers={"Location": url}, media_type="application/json")


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
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


async def stage_upload(
    request: Request, step_type: StepType, volume: ArtifactVolume, settings: Settings
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stream a multipart upload to the volume; (parameters, internal) for the new step."""
    limit = settings.max_upload_mb * 1024 * 1024
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise TooLarge(f"the upload is larger than LO_MAX_UPLOAD_MB={settings.max_upload_mb} MB")
    form = await request.form(max_files=1, max_fields=10)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise Invalid("a multipart upload needs a `file` field holding the file", {"field": "file"})
    fields = {k: v for k, v in form.items() if k != "file"}
    unknown = set(fields) - {step_type.name_field, "description"}
    if unknown:
        raise Invalid(f"unknown form field(s) {', '.join(sorted(unknown))}: remove them")
    if not isinstance(fields.get(step_type.name_field), str):
        raise Invalid(f"{step_type.name_field}: required", {"field": step_type.name_field})
    params = {
        step_type.name_field: check_name(str(fields[step_type.name_field]), step_type.name_field),
        "datasetURI": f"upload:{upload.filename or 'file'}",
        "description": fields.get("description"),
    }
    path = volume.upload_path(f"{params[step_type.name_field]}.{secrets.token_hex(8)}")
    size = 0
    with path.open("wb") as out:
        while chunk := await upload.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > limit:
                out.close()
                path.unlink(missing_ok=True)
                raise TooLarge(
                    f"the upload is larger than LO_MAX_UPLOAD_MB={settings.max_upload_mb} MB"
                )
            await asyncio.to_thread(out.write, chunk)
    await upload.close()
    return params, {"upload": str(path), "filename": upload.filename, "size": size}


def _body_schema(step_type: StepType) -> dict[str, Any]:
    """POST's request body: the step's JSON model (and the multipart upload, if it takes one)."""
    schema = step_type.request.model_json_schema()
    content: dict[str, Any] = {"application/json": {"schema": schema}}
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


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": what}
    for code, what in {
        400: "malformed JSON",
        401: "missing or invalid token (when LO_API_TOKENS is set)",
        404: "no such step or route",
        409: "the name is taken, or the step is busy",
        413: "the body or upload is too large",
        422: "a parameter is invalid; `result` names it",
    }.items()
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
        try:
            doc = await steps.create(step_type, params, internal)
        except Exception:
            if internal:  # nothing half-written stays behind
                pathlib.Path(internal["upload"]).unlink(missing_ok=True)
            raise
        return created(step_type, doc)

    @router.get(
        "", summary=f"List {kind} steps", operation_id=f"list_{step_type.step}_{step_type.tool}"
    )
    async def list_steps(
        steps: Steps, skip: Skip = 0, limit: Limit = DEFAULT_LIMIT
    ) -> dict[str, Any]:
        return {"result": [public(d) for d in await steps.list_steps(step_type, skip, limit)]}

    image = step_type.content is Content.IMAGE

    @router.get(
        "/{name}/metadata" if image else "/{name}",
        summary=f"Metadata and content of a {kind} step",
        operation_id=f"read_{step_type.step}_{step_type.tool}",
    )
    async def read(
        name: StepName,
        steps: Steps,
        skip: Skip = 0,
        limit: Limit = DEFAULT_LIMIT,
        query: Annotated[str | None, Query(description="JSON filter over rows")] = None,
    ) -> dict[str, Any]:
        doc = await steps.get(step_type, name)
        filters = parse_query(query)
        if filters and step_type.content is not Content.TABLE:
            raise Invalid(f"{kind} outputs are not tables: query applies to table rows only")
        # LO's paging: skip/limit apply to [metadata, *content].
        items: list[Any] = [public(doc)] if skip == 0 else []
        more = limit - len(items)
        items += await steps.content(step_type, doc, max(skip - 1, 0), more, filters)
        return {"result": items}

    @router.patch(
        "/{name}",
        status_code=201,
        summary=f"Re-run a {kind} step with changed parameters",
        openapi_extra=_patch_schema(step_type),
        operation_id=f"rerun_{step_type.step}_{step_type.tool}",
    )
    async def rerun(name: StepName, request: Request, steps: Steps) -> Response:
        changes = await read_json(request)
        if not isinstance(changes, dict):
            raise Invalid("the body must be a JSON object of the parameters to change")
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
    )
    async def delete(name: StepName, steps: Steps) -> dict[str, Any]:
        await steps.delete(step_type, name)
        return {"result": f"deleted {name}"}

    @router.post(
        "/{name}/cancel",
        summary=f"Cancel a pending or running {kind} step",
        operation_id=f"cancel_{step_type.step}_{step_type.tool}",
    )
    async def cancel(name: StepName, steps: Steps) -> dict[str, Any]:
        return {"result": public(await steps.cancel(step_type, name))}

    @router.get(
        "/{name}/result",
        summary=f"The output of a {kind} step",
        operation_id=f"result_{step_type.step}_{step_type.tool}",
        response_model=None,
    )
    async def result(
        name: StepName,
        steps: Steps,
        format: Literal["json", "csv", "parquet"] | None = None,
    ) -> Response | dict[str, Any]:
        doc = await steps.get(step_type, name)
        run, manifest = steps.artifact(doc)
        folder = steps.volume.artifact_dir(name, run)
        if manifest["format"] == "parquet":
            table = folder / "table.parquet"
            if format == "parquet":
                return FileResponse(table, filename=f"{name}.parquet")
            if format == "csv":
                return StreamingResponse(
                    _csv_stream(table),
                    media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
                )
            rows = await asyncio.to_thread(_all_rows, table)
            return {"result": rows}
        files = [f for f in manifest["files"] if f != "manifest.json"]
        if len(files) == 1 and format in (None, "json") and manifest["format"] == "raw":
            return FileResponse(folder / files[0], filename=files[0])
        raise Invalid(f"{name!r} is stored as {manifest['format']}: download it from .../files")

    @router.get(
        "/{name}/files",
        summary=f"Files a {kind} step wrote",
        operation_id=f"files_{step_type.step}_{step_type.tool}",
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
        doc = await steps.get(step_type, name)
        run, _ = steps.artifact(doc)
        return FileResponse(steps.volume.file(name, run, filename), filename=filename)

    @router.get(
        "/{name}/logs",
        summary=f"Captured output of a {kind} step's latest run",
        operation_id=f"logs_{step_type.step}_{step_type.tool}",
    )
    async def logs(name: StepName, steps: Steps) -> dict[str, Any]:
        await steps.get(step_type, name)
        path = steps.volume.log_path(name)
        if not path.exists():
            return {"result": ""}
        return {"result": path.read_text(errors="replace")}

    return router


MAX_JSON_ROWS = 100_000


def _all_rows(path: Any) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    from .tables import read_page

    rows = pq.ParquetFile(path).metadata.num_rows
    if rows > MAX_JSON_ROWS:
        raise Invalid(f"the table has {rows} rows: download it with format=csv or format=parquet")
    return read_page(path, skip=0, limit=max(rows, 1))


async def _csv_stream(path: Any) -> Any:
    import io

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    for index in range(parquet.num_row_groups):
        batch = await asyncio.to_thread(parquet.read_row_group, index)
        buffer = io.BytesIO()
        pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=index == 0))
        yield buffer.getvalue()
    if parquet.num_row_groups == 0:
        yield ",".join(parquet.schema_arrow.names).encode() + b"\n"


__all__ = ["NotFound", "step_router", "step_url"]
