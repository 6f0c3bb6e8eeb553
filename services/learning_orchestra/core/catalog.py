"""Routes across step types (API.md, "Across step types"), served by the observe service:

    GET /steps?status=&type=&skip=&limit=   every step's metadata, whatever its type
    GET /steps/{name}                       one step's metadata: its type without knowing it
    GET /steps/{name}?lineage=1             its upstream graph (core/lineage.py)

LO has no such routes: a client had to know a step's type to read it, and to ask every type's
list to see every step. They read the store only, as observe does.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from .errors import Invalid, NotFound
from .lineage import lineage_graph
from .model import Status, public
from .routes import DEFAULT_LIMIT, ERRORS, MAX_SKIP, Limit, StepName, answer_doc, store_of

router = APIRouter(prefix="/steps", tags=["steps"], responses=ERRORS)

Skip = Annotated[int, Query(ge=0, le=MAX_SKIP, description="steps to skip")]
Lineage = Annotated[
    bool,
    Query(description="answer the step's upstream graph (nodes and parent → child edges)"),
]
STATUSES = tuple(s.value for s in Status)


@functools.cache
def known_types() -> tuple[str, ...]:
    """Every step type the project serves (of every service, whichever this app runs)."""
    from .api import SERVICES, service_module

    types = (t.type for name in SERVICES for t in getattr(service_module(name), "STEP_TYPES", []))
    return tuple(sorted(types))


def _choices(text: str | None, field: str, allowed: tuple[str, ...]) -> list[str] | None:
    """The comma-separated values of a filter (None: no filter); 422 naming a bad one."""
    values = [v.strip() for v in (text or "").split(",") if v.strip()]
    for value in values:
        if value not in allowed:
            raise Invalid(
                f"{field}: unknown {field} {value[:80]!r}: use one or more of "
                f"{', '.join(allowed)}, comma-separated",
                {"field": field, "allowed": list(allowed)},
            )
    return values or None


@router.get(
    "",
    summary="Every step, whatever its type",
    operation_id="list_all_steps",
    response_model=None,
    responses={200: answer_doc("their metadata, oldest first", "StepList")},
)
async def list_all_steps(
    request: Request,
    status: Annotated[
        str | None, Query(description="only these statuses, comma-separated (running,pending)")
    ] = None,
    step_type: Annotated[
        str | None,
        Query(alias="type", description="only these types, comma-separated (dataset/csv)"),
    ] = None,
    skip: Skip = 0,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Public metadata of every step in creation order (oldest first, as LO's lists)."""
    statuses = _choices(status, "status", STATUSES)
    types = _choices(step_type, "type", known_types())
    docs = await store_of(request).find(types=types, statuses=statuses, skip=skip, limit=limit)
    return {"result": [public(d) for d in docs]}


@router.get(
    "/{name}",
    summary="A step's metadata (its type included), or its upstream graph (lineage=1)",
    operation_id="read_any_step",
    response_model=None,
    responses={200: answer_doc("its metadata, or its upstream graph", "StepOrLineage")},
)
async def read_any_step(
    request: Request, name: StepName, lineage: Lineage = False
) -> dict[str, Any]:
    store = store_of(request)
    doc = await store.get(name)
    if doc is None:
        raise NotFound(f"there is no step named {name!r}", {"name": name})
    return {"result": await lineage_graph(store, doc) if lineage else public(doc)}
