"""LO's `transform/dataType`: cast columns of a table to number or string, in place.

    PATCH  /transform/dataType          {inputDatasetName, types: {field: "number"|"string"}}
    GET    /transform/dataType          metadata of the tables that were cast (skip, limit)
    GET    /transform/dataType/{name}   [metadata] of a table
    DELETE /transform/dataType/{name}   405: delete the table itself

A cast is not a step of its own: it re-runs the table's step with the cast runner
(`StepService.start_job`), so the table keeps its name, type and `parameters`. The step is
`running` before the answer is sent, then `finished` with the new `types` (and the casts
applied so far in `castTypes`), or `failed` naming the column, row and value that could not be
cast, with its previous table intact. Each cast leaves a run record holding its request.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...core.columns import require_columns
from ...core.errors import Conflict, Invalid, MethodNotAllowed, NotFound
from ...core.model import ACTIVE, NAME_PATTERN, Doc, public, status_of
from ...core.routes import (
    DEFAULT_LIMIT,
    ERRORS,
    ErrorBody,
    Limit,
    Skip,
    StepName,
    Steps,
    read_json,
)
from ...core.service import StepService, validation_message
from ...core.settings import BASE_PATH
from ...core.store import Store
from . import CAST_RUNNER

OPERATION = "transform/dataType"

router = APIRouter(prefix="/transform/dataType", tags=["transform"], responses=ERRORS)


class DataTypeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputDatasetName: str = Field(
        pattern=NAME_PATTERN, description="the table whose columns are cast, in place"
    )
    types: dict[str, Literal["number", "string"]] = Field(
        min_length=1, description='the new type of each column to cast: "number" or "string"'
    )


def _is_table(steps: StepService, doc: Doc) -> bool:
    """Whether step `doc`'s current output is a table (its metadata lists `fields`, or its
    manifest says Parquet)."""
    if doc.get("fields") is not None:
        return True
    if doc.get("_artifact") is None:
        return False
    _, manifest = steps.artifact(doc)
    return bool(manifest["format"] == "parquet")


def _was_cast(doc: Doc) -> bool:
    return "castTypes" in doc or (doc.get("_job") or {}).get("type") == OPERATION


async def cast_tables(store: Store, skip: int, limit: int) -> list[Doc]:
    """Tables that were cast (or are being cast), in creation order.

    The store has no index on `castTypes`, so this reads every step: fine for the thousands
    of steps a deployment holds, a candidate for an index beyond that."""
    found = [doc for doc in await store.find() if _was_cast(doc)]
    return found[skip : skip + limit]


@router.patch(
    "",
    summary="Cast columns of a table to number or string, in place",
    description=(
        "The table is `running` when the answer is sent, then `finished` with its new `types`, "
        "or `failed` naming the column, row and value that could not be cast (its previous "
        "table stays readable)."
    ),
    operation_id="cast_transform_dataType",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": DataTypeRequest.model_json_schema()}},
        }
    },
)
async def cast(request: Request, steps: Steps) -> JSONResponse:
    try:
        body = DataTypeRequest.model_validate(await read_json(request))
    except ValidationError as exc:
        raise validation_message(exc) from None
    params = body.model_dump()
    name = body.inputDatasetName
    doc = await steps.get(None, name)
    if status_of(doc) in ACTIVE:
        raise Conflict(
            f"{name!r} is {doc['status']}: wait for it to finish, then cast its columns",
            {"name": name},
        )
    if doc.get("_artifact") is None:
        raise Invalid(
            f"inputDatasetName: {name!r} has no output yet: a cast needs its table",
            {"field": "inputDatasetName"},
        )
    if not _is_table(steps, doc):
        raise Invalid(
            f"inputDatasetName: {name!r} is a {doc['type']} step, not a table",
            {"field": "inputDatasetName"},
        )
    require_columns(doc, body.types, "types")
    job = {
        "type": OPERATION,
        "runner": CAST_RUNNER,
        "parameters": params,
        "keys": ["castTypes", "castEngine"],
    }
    await steps.start_job(doc, job)
    url = f"{BASE_PATH}/{doc['type']}/{name}"
    return JSONResponse({"result": url}, headers={"Location": url})


@router.get("", summary="List the tables that were cast", operation_id="list_transform_dataType")
async def list_cast(steps: Steps, skip: Skip = 0, limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    return {"result": [public(d) for d in await cast_tables(steps.store, skip, limit)]}


@router.get(
    "/{name}",
    summary="Metadata of a table (its types and the casts applied)",
    operation_id="read_transform_dataType",
)
async def read(name: StepName, steps: Steps) -> dict[str, Any]:
    doc = await steps.get(None, name)
    if not _is_table(steps, doc) and not _was_cast(doc):
        raise NotFound(f"{name!r} is a {doc['type']} step, not a table", {"name": name})
    return {"result": [public(doc)]}


@router.delete(
    "/{name}",
    summary="Not allowed: a cast cannot be undone; delete the table itself",
    operation_id="delete_transform_dataType",
    status_code=405,
    responses={405: {"model": ErrorBody, "description": "always: delete the table itself"}},
)
async def delete(name: StepName) -> None:
    raise MethodNotAllowed(
        "a cast cannot be undone nor deleted: delete the table itself "
        f"(e.g. DELETE {BASE_PATH}/dataset/csv/{name})"
    )
