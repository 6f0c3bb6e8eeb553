"""observe service: wait for steps without polling the database.

    GET  /observe/{name}?timeout=S          long-poll until the step is finished/failed/cancelled
    GET  /observe/{name}?since=V&timeout=S  long-poll until any change after version V
    GET  /observe/{name}/events             Server-Sent Events, one per change (name=* for all)
    GET  /observe?since=CURSOR&timeout=S    the change feed of every step, long-poll
    GET  /observe/*/events?since=CURSOR     the same feed as Server-Sent Events
    POST /observe                           LO's observer proposal: answers the long-poll URL

Race-free: each request subscribes to the store's changes before it reads the current state.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from ..core import catalog
from ..core.errors import BadRequest, NotFound, ObserveTimeout
from ..core.model import NAME_PATTERN, TERMINAL, Doc, StepMetadata, public
from ..core.routes import ERRORS, answer_doc, error_response_doc, store_of
from ..core.settings import BASE_PATH
from ..core.store import Store

DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 3600.0
MAX_FEED_CHANGES = 500  # per answer of GET /observe: the cursor resumes after the last one

router = APIRouter(prefix="/observe", tags=["observe"], responses=ERRORS)
# The routes across step types read the store only, as observe does: this service serves them.
ROUTERS = [router, catalog.router]

Timeout = Annotated[float, Query(gt=0, le=MAX_TIMEOUT, description="seconds to wait")]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=4096,
        description="an opaque `cursor` from a previous answer; omit it to start from now",
    ),
]


def _done(doc: Doc, since: int | None) -> bool:
    if since is None:
        return doc["status"] in TERMINAL
    return int(doc.get("version", 0)) > since


async def wait_for(store: Store, name: str, timeout: float, since: int | None = None) -> Doc:
    """The step's metadata once it is terminal (or changed after `since`)."""
    async with store.watch(name) as changes:
        doc = await store.get(name)
        if doc is None:
            raise NotFound(f"there is no step named {name!r} to observe", {"name": name})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not _done(doc, since):
            remaining = deadline - loop.time()
            change = await changes.next(remaining) if remaining > 0 else None
            if change is None:
                what = "a change" if since is not None else "the step to end"
                raise ObserveTimeout(
                    f"waited {timeout:g} s for {what}; {name!r} is {doc['status']}: "
                    "observe again to keep waiting",
                    {"status": doc["status"], "version": doc.get("version")},
                )
            if change.get("deleted"):
                raise NotFound(f"step {name!r} was deleted while being observed")
            if change.get("version", 0) <= doc.get("version", 0):
                continue  # logged before the read above (the watch starts first): not news
            doc = change
        return doc


def _feed_entry(doc: Doc) -> Doc:
    """A change as the feed shows it: the public metadata, or `{"name", "deleted": true}`."""
    return {"name": doc["name"], "deleted": True} if doc.get("deleted") else public(doc)


class DeletedStep(BaseModel):
    """A step that was deleted, as the feed shows it."""

    model_config = ConfigDict(defer_build=True)
    name: str
    deleted: Literal[True]


class FeedAnswer(BaseModel):
    """The change feed: the changes after a cursor, and the cursor after them."""

    model_config = ConfigDict(defer_build=True)
    result: list[StepMetadata | DeletedStep] = Field(
        description="changed steps' metadata (or {name, deleted: true}), oldest first"
    )
    cursor: str = Field(description="pass it as `since` to read the changes after these")


#: The answers of these routes that the OpenAPI document describes (core/api.py adds them).
SCHEMAS = (FeedAnswer,)
CURSOR_EXPIRED: dict[int | str, dict[str, Any]] = {
    410: error_response_doc("the cursor is too old: restart")
}


@router.get(
    "",
    summary="The change feed of every step: long-poll for changes after a cursor",
    operation_id="observe_changes",
    response_model=None,
    responses={
        200: answer_doc("the changes, and the cursor after them", "FeedAnswer"),
        **CURSOR_EXPIRED,
    },
)
async def observe_changes(
    request: Request, since: Cursor = None, timeout: Timeout = DEFAULT_TIMEOUT
) -> dict[str, Any]:
    store = store_of(request)
    async with store.watch(None, since=since) as changes:
        found: list[Doc] = []
        if since is not None:  # without a cursor: just where "now" is, so a client starts there
            first = await changes.next(timeout)
            while first is not None and len(found) < MAX_FEED_CHANGES:
                found.append(_feed_entry(first))
                first = await changes.next(0) if len(found) < MAX_FEED_CHANGES else None
        return {"result": found, "cursor": changes.cursor}


@router.get(
    "/{name}",
    summary="Wait for a step to end, or for its next change (since=V)",
    operation_id="observe_step",
    response_model=None,
    responses={
        200: answer_doc("its metadata, once it ended (or changed after `since`)", "StepAnswer"),
        408: error_response_doc("the timeout passed first"),
    },
)
async def observe(
    request: Request,
    name: Annotated[str, Path(pattern=NAME_PATTERN)],
    timeout: Timeout = DEFAULT_TIMEOUT,
    since: Annotated[int | None, Query(ge=0, description="answer on a version above V")] = None,
) -> dict[str, Any]:
    return {"result": public(await wait_for(store_of(request), name, timeout, since))}


@router.get(
    "/{name}/events",
    summary="Server-Sent Events for a step's changes (name=* for all)",
    operation_id="observe_events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "change events"},
        **CURSOR_EXPIRED,
    },
)
async def events(
    request: Request,
    name: Annotated[str, Path(pattern=r"^(\*|" + NAME_PATTERN[1:-1] + ")$")],
    since: Cursor = None,
    last_event_id: Annotated[str | None, Header(max_length=4096)] = None,
) -> EventSourceResponse:
    store = store_of(request)
    watch_all = name == "*"
    # The feed of every step resumes after a cursor: `since`, or the id of the last event an
    # EventSource received (browsers send it as Last-Event-ID when they reconnect).
    since = since or last_event_id or None
    if since is not None and not watch_all:
        raise BadRequest(
            "`since` (a cursor) applies to the feed of every step, /observe/*/events: "
            "a single step's stream starts with its current metadata",
            {"since": since},
        )
    changes_cm = store.watch(None if watch_all else name, since=since)
    changes = await changes_cm.__aenter__()
    first = None if watch_all else await store.get(name)
    if not watch_all and first is None:
        await changes_cm.__aexit__(None, None, None)
        raise NotFound(f"there is no step named {name!r} to observe", {"name": name})

    async def stream() -> AsyncIterator[dict[str, Any]]:
        try:
            doc = first
            sent: dict[str, int] = {}  # the version each step's last event carried
            if doc is not None:
                sent[doc["name"]] = doc.get("version", 0)
                yield {"event": "change", "data": json.dumps(public(doc))}
            while doc is None or watch_all or doc["status"] not in TERMINAL:
                if await request.is_disconnected():
                    return
                change = await changes.next(15.0)
                if change is None:
                    continue  # sse-starlette sends keep-alive pings meanwhile
                if change.get("deleted"):
                    sent.pop(change["name"], None)
                    gone = {"event": "deleted", "data": json.dumps({"name": change["name"]})}
                    if watch_all:
                        gone["id"] = changes.cursor
                    yield gone
                    if not watch_all:
                        return
                    continue
                if change.get("version", 0) <= sent.get(change["name"], 0):
                    continue  # logged before `first` was read (the watch starts first): sent
                sent[change["name"]] = change.get("version", 0)
                doc = change
                event = {"event": "change", "data": json.dumps(public(doc))}
                if watch_all:  # the feed's events carry the cursor to resume after them
                    event["id"] = changes.cursor
                yield event
        finally:
            await changes_cm.__aexit__(None, None, None)

    return EventSourceResponse(stream(), ping=10)


class ObserveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str = Field(pattern=NAME_PATTERN, description="the step to observe")
    observe_type: Literal["wait", "observe"] = "wait"
    timeout: float | None = Field(None, gt=0, le=MAX_TIMEOUT)


@router.post(
    "",
    summary="LO's observer proposal: the URL to long-poll for a step",
    operation_id="observe_url",
    response_model=None,
    responses={200: answer_doc("the URL to long-poll (GET) for the step", "UrlAnswer")},
)
async def observer_url(
    request: Request,
    body: Annotated[
        ObserveRequest,
        Body(
            openapi_examples={
                "wait": {
                    "summary": "the URL that answers when the step ends",
                    "value": {"filename": "titanic", "observe_type": "wait", "timeout": 60},
                },
                "observe": {
                    "summary": "the URL that answers on the step's next change",
                    "value": {"filename": "titanic", "observe_type": "observe"},
                },
            }
        ),
    ],
) -> dict[str, Any]:
    if await store_of(request).get(body.filename) is None:
        raise NotFound(f"there is no step named {body.filename!r} to observe")
    url = f"{BASE_PATH}/observe/{body.filename}"
    query = []
    if body.timeout is not None:
        query.append(f"timeout={body.timeout:g}")
    if body.observe_type == "observe":
        doc = await store_of(request).get(body.filename)
        query.append(f"since={(doc or {}).get('version', 0)}")
    return {"result": url + ("?" + "&".join(query) if query else "")}


def __getattr__(name: str) -> Any:
    if name == "app":
        from ..core.api import lazy_app

        return lazy_app("observe")
    raise AttributeError(name)
