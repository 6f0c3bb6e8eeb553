"""The step: its metadata document and status lifecycle.

A step's metadata is a JSON document (API.md, "Step metadata"). Keys that start with an
underscore are the server's bookkeeping (lease, artifact location, cancel requests) and are
never shown to users.

Every status change goes through `transition`, which refuses what the lifecycle (TRANSITIONS)
does not allow and writes the fields that go with the new status. `StepMetadata` and
`RunRecord` describe the documents the API answers; they document responses in the OpenAPI
document (`metadata_schemas`) and are never used to validate answers at run time: the API
answers the JSON it already has.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from .errors import Invalid

MAX_NAME_LENGTH = 128
NAME_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_NAME_LENGTH - 1}}}$"
_NAME_RE = re.compile(NAME_PATTERN)

Doc = dict[str, Any]


class Status(StrEnum):
    """A step's status: `pending` (waiting to run), `running`, then `finished`, `failed` or
    `cancelled` (TRANSITIONS: which may follow which)."""

    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.FINISHED, Status.FAILED, Status.CANCELLED})
ACTIVE = frozenset({Status.PENDING, Status.RUNNING})

#: The lifecycle: the statuses that may follow each status.
TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    # claimed by a supervisor; a parent failed or was deleted; cancelled before it started
    Status.PENDING: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELLED}),
    # the run ended; RUNNING only for a queued job (`_queued`) that a supervisor claims
    Status.RUNNING: frozenset({Status.RUNNING, Status.FINISHED, Status.FAILED, Status.CANCELLED}),
    # a re-run (PATCH), or a job on the step's own output, queued (StepService.start_job)
    **dict.fromkeys(TERMINAL, frozenset({Status.PENDING, Status.RUNNING})),
}
#: A queued job (`running` with `_queued`, no worker yet) is claimed or cancelled, nothing else.
QUEUED_TRANSITIONS = frozenset({Status.RUNNING, Status.CANCELLED})


class IllegalTransition(RuntimeError):
    """A status change the lifecycle does not allow: a bug in the server, never the user's
    (callers check the status first and answer 409, or read it in the store's query)."""


def check_name(name: str, field: str = "name") -> str:
    """Return `name` if it is a valid step name, else raise `Invalid` naming the field."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise Invalid(
            f"{field} {name!r} is not a valid name: use 1-{MAX_NAME_LENGTH} letters, digits, "
            "'_' or '-', starting with a letter or digit",
            {"field": field},
        )
    return name


def now() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def new_step(
    name: str,
    step_type: str,
    *,
    alias: str | None,
    parameters: dict[str, Any],
    parents: list[str],
    waiting_for: list[str],
    description: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Doc:
    """A fresh `pending` metadata document."""
    doc: Doc = {
        "name": name,
        "type": step_type,
        "status": Status.PENDING.value,
        "finished": False,
        "exception": None,
        "traceback": None,
        "timeCreated": iso(now()),
        "startedAt": None,
        "finishedAt": None,
        "durationSeconds": None,
        "parents": parents,
        "parameters": parameters,
        "description": description,
        "runs": 0,
        "version": 1,
        "stale": False,
        "waitingFor": waiting_for,
        "progress": None,
        "libraries": {},
        "_created": now(),
    }
    if alias:
        doc[alias] = name
    if extra:
        doc.update(extra)
    return doc


def public(doc: Doc) -> Doc:
    """The metadata as users see it: without the server's bookkeeping keys."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def status_of(doc: Doc) -> Status:
    return Status(doc["status"])


def transition(
    doc: Doc,
    to: Status,
    *,
    exception: str | None = None,
    traceback: str | None = None,
    waiting_for: list[str] | None = None,
    queued: bool = False,
    at: float | None = None,
) -> dict[str, Any]:
    """The changes that move step `doc` from its status to `to` (the caller writes them, with
    its own bookkeeping and an `expect` on the status it read); IllegalTransition if the
    lifecycle does not allow it.

    - to `running`: a run starts at `at` (default now): `startedAt`, no end, no error, no
      `waitingFor`, `progress` reset. `queued`: a job queued on an ended step, not started
      yet (`_queued`: a supervisor claims it, which is the `running` → `running` change).
    - to `pending`: a re-run, waiting for a supervisor (and for `waiting_for`, its parents
      that are not done); error and `progress` cleared, the last run's times kept.
    - to `finished`/`failed`/`cancelled`: the run ends at `at` with `exception`/`traceback`;
      `durationSeconds` counts from the claim, and is null for a step that never started
      (cancelled while pending or queued, or its parent failed); `progress` is kept, so a
      failed step shows how far it got.
    """
    current = status_of(doc)
    was_queued = current is Status.RUNNING and bool(doc.get("_queued"))
    allowed = QUEUED_TRANSITIONS if was_queued else TRANSITIONS[current]
    if (
        to not in allowed
        or (current is Status.RUNNING and to is Status.RUNNING and not was_queued)
        or (queued and (current not in TERMINAL or to is not Status.RUNNING))
        or (current in TERMINAL and to is Status.RUNNING and not queued)
    ):
        state = "running (queued)" if was_queued else current.value
        raise IllegalTransition(f"step {doc.get('name')!r}: {state} -> {to.value} is not allowed")
    moment = now() if at is None else at
    if to is Status.PENDING:
        return {
            "status": to.value,
            "finished": False,
            "exception": None,
            "traceback": None,
            "waitingFor": list(waiting_for or []),
            "progress": None,
        }
    if to is Status.RUNNING:
        changes: dict[str, Any] = {
            "status": to.value,
            "finished": False,
            "startedAt": iso(moment),
            "finishedAt": None,
            "durationSeconds": None,
            "exception": None,
            "traceback": None,
            "waitingFor": [],
            "progress": None,
        }
        if queued:
            changes["_queued"] = True
        else:
            changes["_started"] = moment
        return changes
    # Only a claimed run has a duration: `_started` of a pending step is an earlier run's.
    started = doc.get("_started") if current is Status.RUNNING and not was_queued else None
    return {
        "status": to.value,
        "finished": to is Status.FINISHED,
        "exception": exception,
        "traceback": traceback,
        "finishedAt": iso(moment),
        "durationSeconds": None if started is None else round(moment - started, 3),
        "waitingFor": [],
    }


# -- the documents the API answers, described for the OpenAPI document ---------------------
# defer_build: nothing validates with these at run time, so their validators are never built
# (a model's schema is built when the OpenAPI document is, not when the server starts).

#: ISO 8601 UTC with milliseconds (`iso`), e.g. 2026-01-31T12:00:00.123Z.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


def _title(name: str, _: Any) -> str:
    return name  # `functionMessage`, not pydantic's `Functionmessage`


_DOCUMENTED = ConfigDict(defer_build=True, field_title_generator=_title)


class StepMetadata(BaseModel):
    """A step's metadata document (docs/api.md, "Step metadata"): LO's fields, extended, plus
    the fields of its step type (`fields`/`rows`/`types` of tables, LO's alias `datasetName`
    or `modelName`, metrics of evaluations, `history` of Keras training, `bestParams` of a
    search, ...)."""

    model_config = ConfigDict(**_DOCUMENTED, extra="allow")

    name: str = Field(description="the step's name, unique across all steps")
    type: str = Field(description="its step type, `{step}/{tool}` (e.g. `dataset/csv`)")
    status: Status = Field(description="where the latest run is in its lifecycle")
    finished: bool = Field(description="true only when the latest run succeeded (LO compat)")
    exception: str | None = Field(description="why the latest run failed or was cancelled")
    traceback: str | None = Field(description="the user code's traceback of a failed run")
    timeCreated: Timestamp = Field(description="when the step was created")
    startedAt: Timestamp | None = Field(description="when the latest run started")
    finishedAt: Timestamp | None = Field(description="when the latest run ended")
    durationSeconds: float | None = Field(
        description="how long the latest run took; null while it runs or if it never started"
    )
    parents: list[str] = Field(description="the steps this output is computed from")
    parameters: dict[str, Any] = Field(description="the request's parameters, as resolved")
    description: str | None = Field(description="the user's free text")
    runs: int = Field(description="how many runs started")
    version: int = Field(description="increases on every change (observe's `since`)")
    stale: bool = Field(description="a parent was re-run or deleted after this output was made")
    waitingFor: list[str] = Field(description="the parents this step is queued behind")
    progress: dict[str, Any] | None = Field(
        description="how far the latest run got (rows, bytes, epochs, trials, ...)"
    )
    libraries: dict[str, str] = Field(description="versions of the libraries that made it")


class ArtifactRecord(BaseModel):
    """The output a run committed."""

    model_config = _DOCUMENTED

    run: str = Field(description="the run's id")
    format: str | None = Field(description="how it is stored (parquet, npy, json, raw, ...)")
    checksum: str = Field(
        description="SHA-256 of its files' names and SHA-256s: equal for equal bytes"
    )


class RunRecord(BaseModel):
    """The record of one run that ended (`GET .../{name}/runs`, newest first)."""

    model_config = _DOCUMENTED

    run: int = Field(description="the run's number (the step's `runs` when it started)")
    status: Status = Field(description="how it ended")
    exception: str | None = Field(description="why it failed or was cancelled")
    traceback: str | None = Field(description="the user code's traceback, if it failed")
    functionMessage: str | None = Field(description="the tail of what the run printed (64 KiB)")
    description: str | None = Field(description="the step's description at the time")
    parameters: dict[str, Any] | None = Field(description="the parameters it ran with")
    type: str | None = Field(
        None,
        description="for a job run on the step's output (e.g. `transform/dataType`): its type",
    )
    startedAt: Timestamp | None = Field(description="when it started")
    finishedAt: Timestamp | None = Field(description="when it ended")
    durationSeconds: float | None = Field(description="how long it ran; null if it never did")
    artifact: ArtifactRecord | None = Field(description="the output it committed, if any")


def metadata_schemas(*extra: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI component schemas of StepMetadata, RunRecord and the models they reference,
    plus `extra` models (e.g. answer envelopes referring to them), by name."""
    from pydantic.json_schema import models_json_schema  # only when the document is built

    models: list[type[BaseModel]] = [StepMetadata, RunRecord, *extra]
    _, schema = models_json_schema(
        [(model, "serialization") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    defs: dict[str, Any] = schema.get("$defs", {})
    return defs
