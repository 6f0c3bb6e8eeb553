"""LO's `GET /explore/getlocaldatapycaret`: a file a builder/pycaret script wrote, as text.

LO's client (`BuilderPycaret.search_report`) sends the file's name as a JSON body on a GET
(`{"filename": "score"}`); `?filename=score` works too. The answer is the file of the newest
builder/pycaret step (latest run ended last) whose files include it, the step's own
`GET /builder/pycaret/{name}/files/{filename}`; a 404 names the file otherwise.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from ...core.errors import Invalid, NotFound
from ...core.model import Doc
from ...core.routes import ERRORS, Steps, read_json
from ...core.settings import BASE_PATH

STEP_TYPE = "builder/pycaret"
FILES = "files"  # the folder of an output holding the files the code wrote (Sandbox.collect)

router = APIRouter(prefix="/explore", tags=["builder"], responses=ERRORS)


def _filename(value: Any) -> str:
    if not isinstance(value, str) or not value or any(ord(c) < 32 for c in value):
        raise Invalid(
            'filename: the name of a file a builder/pycaret step wrote is needed, e.g. "score" '
            '(a JSON body {"filename": "score"} or ?filename=score)',
            {"field": "filename"},
        )
    return value


async def _requested(request: Request, query: str | None) -> str:
    if query is not None:
        return _filename(query)
    sent = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in (
        request.headers
    )
    body = await read_json(request) if sent else None
    return _filename(body.get("filename") if isinstance(body, dict) else None)


def _newest_first(doc: Doc) -> tuple[str, str]:
    return (str(doc.get("finishedAt") or ""), str(doc.get("_created") or ""))


@router.get(
    "/getlocaldatapycaret",
    summary="LO compat: a file a builder/pycaret step wrote, as text",
    description=(
        'The file named by `filename` (a JSON body {"filename": "score"}, as LO\'s client '
        "sends, or the query parameter) of the newest builder/pycaret step whose files "
        "include it; 404 naming the file when none does."
    ),
    operation_id="getlocaldatapycaret_explore",
    response_class=FileResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "the file's text"}},
)
async def local_data_pycaret(
    request: Request,
    steps: Steps,
    filename: Annotated[
        str | None, Query(description="the file's name; else the JSON body's `filename`")
    ] = None,
) -> FileResponse:
    wanted = await _requested(request, filename)
    listed = f"{FILES}/{wanted}"
    found = [d for d in await steps.store.find(types=[STEP_TYPE]) if d.get("_artifact")]
    for doc in sorted(found, key=_newest_first, reverse=True):
        run = doc["_artifact"]
        if listed in steps.volume.manifest(doc["name"], run)["files"]:
            path = steps.volume.file(doc["name"], run, listed)
            return FileResponse(path, media_type="text/plain; charset=utf-8")
    raise NotFound(
        f"no builder/pycaret step wrote a file named {wanted!r} (see "
        f"{BASE_PATH}/builder/pycaret/{{name}}/files)",
        {"filename": wanted},
    )
