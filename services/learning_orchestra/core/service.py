"""What every step service does, independent of HTTP: create, re-run, cancel, delete, read.

Routes (core/routes.py) stay thin and call this; nothing here knows about requests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import references
from .artifacts import ArtifactVolume
from .errors import Conflict, Invalid, MethodNotAllowed, NotFound, TooLarge
from .jobs import Supervisor
from .model import (
    ACTIVE,
    MAX_NAME_LENGTH,
    TERMINAL,
    Doc,
    Status,
    check_name,
    new_step,
    status_of,
    transition,
)
from .steptype import Content, StepType
from .store import Store
from .tablereader import TableReader
from .tables import dumps, table_location

CANCEL_WAIT_SECONDS = 10.0
#: The parameter of an upload step naming its file: `upload:{filename}` for an upload.
UPLOAD_FIELD = "datasetURI"
#: What the request model validates in place of a kept upload's URI on PATCH.
KEPT_UPLOAD_PLACEHOLDER = "https://kept-upload.invalid/"


def validation_message(exc: ValidationError) -> Invalid:
    """A pydantic error as one readable line naming the field at fault."""
    parts = []
    for error in exc.errors():
        # keys come from the user: one that holds a line break must not break the line
        where = ".".join(str(p) for p in error["loc"]).encode("unicode_escape").decode() or "body"
        if error["type"] == "extra_forbidden":
            parts.append(f"unknown key {where!r}: remove it")
        elif error["type"] == "missing":
            parts.append(f"{where}: required")
        else:
            message = error["msg"].removeprefix("Value error, ")
            parts.append(f"{where}: {' '.join(message.splitlines())}")
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return Invalid("; ".join(parts), detail)


#: Every metadata version keeps a full copy of the parameters (a 15 MB description once made
#: 53 versions, 1.7 GB of store): free text and parameters are capped at the API.
MAX_DESCRIPTION_BYTES = 64 * 1024
MAX_PARAMETERS_BYTES = 1024 * 1024


def check_sizes(params: Mapping[str, Any]) -> None:
    """413 naming the field when `description` or the parameters as a whole are too large."""
    description = params.get("description")
    if isinstance(description, str) and len(description.encode()) > MAX_DESCRIPTION_BYTES:
        raise TooLarge(
            f"description: {len(description.encode())} bytes, more than "
            f"{MAX_DESCRIPTION_BYTES // 1024} KB: shorten it",
            {"field": "description"},
        )
    size = len(json.dumps(params, default=str).encode())
    if size > MAX_PARAMETERS_BYTES:
        biggest = max(params, key=lambda k: len(json.dumps(params[k], default=str)))
        raise TooLarge(
            f"the parameters take {size} bytes as JSON, more than "
            f"{MAX_PARAMETERS_BYTES // 2**20} MB (the largest is {biggest!r}): send large data "
            "as a dataset and reference it as $name",
            {"field": biggest},
        )


def parse_body(step_type: StepType, data: Any) -> dict[str, Any]:
    """Validate a request body against the step's model; the parameters as the user wrote them.

    Field sizes are capped (`check_sizes`): 413 naming the field."""
    try:
        model = step_type.request.model_validate(data)
    except ValidationError as exc:
        raise validation_message(exc) from None
    params = model.model_dump(by_alias=True, exclude_unset=False)
    check_sizes(params)
    return params


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge-patch: `patch` applied to `target` (neither is modified).

    A dict patch merges into a dict target key by key — a null value removes the key, a dict
    value merges recursively, anything else replaces — and into anything else as into {}; a
    patch that is not a dict replaces the target. PATCH applies the body so to the stored
    parameters: `{"methodParameters": {"epochs": 5}}` changes one argument and keeps the
    others, as LO's replace-the-given-keys did for flat parameters."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def _pending(
    step_type: StepType,
    name: str,
    params: dict[str, Any],
    parents: list[Doc],
    extra: dict[str, Any] | None,
) -> Doc:
    """The metadata of a new `pending` step `name` of `step_type` with `params`, waiting for
    those of its `parents` that have not ended."""
    return new_step(
        name,
        step_type.type,
        alias=step_type.alias,
        parameters=params,
        parents=[p["name"] for p in parents],
        waiting_for=[p["name"] for p in parents if status_of(p) in ACTIVE],
        description=params.get("description"),
        extra=extra,
    )


def _busy(name: str, hint: str) -> Conflict:
    return Conflict(
        f"{name!r} is busy (pending or running) or changed meanwhile: {hint}, then try again",
        {"name": name},
    )


class StepService:
    """The life of steps, shared by every step type."""

    def __init__(self, store: Store, volume: ArtifactVolume, supervisor: Supervisor) -> None:
        self.store = store
        self.volume = volume
        self.supervisor = supervisor
        settings = supervisor.settings
        self.tables = TableReader(settings.scan_concurrency, settings.scan_timeout)

    # -- reading ----------------------------------------------------------------------------
    async def get(self, step_type: StepType | None, name: str) -> Doc:
        doc = await self.store.get(name)
        if doc is None or (step_type is not None and doc["type"] != step_type.type):
            kind = f"{step_type.type} step" if step_type else "step"
            raise NotFound(f"there is no {kind} named {name!r}", {"name": name})
        return doc

    async def list_steps(self, step_type: StepType, skip: int, limit: int) -> list[Doc]:
        return await self.store.find(types=[step_type.type], skip=skip, limit=limit)

    async def runs(self, step_type: StepType, name: str, skip: int, limit: int) -> list[Doc]:
        """The run records of step `name` (of `step_type`), newest first."""
        await self.get(step_type, name)
        return await self.store.runs(name, skip=skip, limit=limit)

    async def content(
        self, step_type: StepType, doc: Doc, skip: int, limit: int, query: dict[str, Any]
    ) -> str:
        """The JSON array of content items `skip`..`skip+limit` (table rows or run records,
        newest first), serialised once (rows can be many; no jsonable_encoder)."""
        if step_type.content is Content.TABLE:
            path = self.table_path(doc)
            if path is None:
                if query:
                    raise Invalid(f"{doc['name']!r} has no table yet to query: wait for it")
                return "[]"
            return await self.tables.page_json(path, skip, limit, query)
        return dumps(await self.store.runs(doc["name"], skip=skip, limit=limit))

    def artifact(self, doc: Doc) -> tuple[str, dict[str, Any]]:
        """The current output's run id and manifest; NotFound while there is none."""
        run = doc.get("_artifact")
        if run is None:
            raise NotFound(
                f"{doc['name']!r} has no output yet (status {doc['status']}): wait for it to finish"
            )
        return run, self.volume.manifest(doc["name"], run)

    def table_path(self, doc: Doc) -> Path | None:
        """Where the rows of a table step's current output are (one file or a folder of
        parts, see core/tables.py); None while it has none."""
        run = doc.get("_artifact")
        return None if run is None else table_location(self.volume.artifact_dir(doc["name"], run))

    # -- creating and re-running ------------------------------------------------------------
    async def _check_parents(self, step_type: StepType, params: Mapping[str, Any]) -> list[Doc]:
        # Where each input is named: a parent field (inputDatasetName, parentName, ...) or a
        # $reference in a parameter. `description` is free text: "$5 budget" is no reference.
        fields: dict[str, str] = {}
        for field in step_type.parent_fields:
            if params.get(field):
                fields.setdefault(params[field], field)
        names = [
            *fields,
            *references.referenced_names({k: v for k, v in params.items() if k != "description"}),
        ]
        parents: list[Doc] = []
        for name in dict.fromkeys(names):
            parent = await self.store.get(name)
            if parent is None:
                where = f"{fields[name]}: " if name in fields else ""
                raise Invalid(
                    f"{where}there is no step named {name!r} to use as input",
                    {"name": name, **({"field": fields[name]} if name in fields else {})},
                )
            if status_of(parent) in (Status.FAILED, Status.CANCELLED):
                raise Invalid(
                    f"input step {name!r} is {parent['status']}: re-run it (PATCH) or choose "
                    "another input",
                    {"name": name},
                )
            parents.append(parent)
        if step_type.check is not None:
            step_type.check(params, {p["name"]: p for p in parents})
        return parents

    async def create(
        self, step_type: StepType, params: dict[str, Any], internal: dict[str, Any] | None = None
    ) -> Doc:
        """Record a new `pending` step (the supervisor runs it); 409 if the name is taken."""
        name = check_name(params[step_type.name_field], step_type.name_field)
        parents = await self._check_parents(step_type, params)
        extra = {"_internal": internal} if internal else None
        doc = await self.store.insert(_pending(step_type, name, params, parents, extra))
        self.supervisor.wake()
        return doc

    async def create_outputs(self, step_type: StepType, params: dict[str, Any]) -> list[Doc]:
        """Record the steps of a multi-output job (`StepType.outputs`), all `pending` or none:
        409 naming the first name taken; 422 naming `name_field` when a name made from it is
        not a valid step name."""
        assert step_type.outputs is not None
        outputs = step_type.outputs(params)
        field = step_type.name_field
        for name in outputs:
            try:
                check_name(name, field)
            except Invalid:
                raise Invalid(
                    f"{field}: the output name {name!r} made from it is not a valid step name "
                    f"(1-{MAX_NAME_LENGTH} letters, digits, '_' or '-'): shorten {field}",
                    {"field": field, "name": name},
                ) from None
        parents = await self._check_parents(step_type, params)
        group = {"_group": {"outputs": outputs}}
        docs = [_pending(step_type, name, params, parents, group) for name in outputs]
        docs = await self.store.insert_many(docs)
        self.supervisor.wake()
        return docs

    async def rerun(self, step_type: StepType, name: str, changes: dict[str, Any]) -> Doc:
        """PATCH: re-run with `changes` merged into the stored parameters (`merge_patch`)."""
        if not step_type.patchable:
            raise MethodNotAllowed(
                f"{step_type.type} steps cannot be re-run: delete them and create them again"
            )
        doc = await self.get(step_type, name)
        if step_type.name_field in changes and changes[step_type.name_field] != name:
            raise Invalid(f"{step_type.name_field} cannot change: a re-run keeps the step's name")
        body = merge_patch(doc["parameters"], changes)
        kept = self._kept_upload(step_type, doc, body)
        if kept is not None:  # the URI names the kept upload, which the model refuses
            body[UPLOAD_FIELD] = KEPT_UPLOAD_PLACEHOLDER
        params = parse_body(step_type, body)
        if kept is not None:
            params[UPLOAD_FIELD] = kept
        parents = await self._check_parents(step_type, params)
        self._check_ended(doc, "wait for it or cancel it")
        waiting = [p["name"] for p in parents if status_of(p) in ACTIVE]
        return await self._restart(
            doc,
            {
                **transition(doc, Status.PENDING, waiting_for=waiting),
                "parameters": params,
                "description": params.get("description"),
                "parents": [p["name"] for p in parents],
            },
            hint="wait for it or cancel it",
        )

    def _kept_upload(self, step_type: StepType, doc: Doc, body: Mapping[str, Any]) -> str | None:
        """The stored `upload:...` URI when a PATCH re-runs an uploaded dataset whose file is
        still on the volume (its ingest failed or was interrupted: a finished ingest discards
        it), else None. Re-running reads that file again."""
        uri = doc["parameters"].get(UPLOAD_FIELD)
        upload = (doc.get("_internal") or {}).get("upload")
        if not step_type.upload or body.get(UPLOAD_FIELD) != uri or not upload:
            return None
        if not isinstance(uri, str) or not uri.startswith("upload:") or not Path(upload).exists():
            return None
        return uri

    async def start_job(self, doc: Doc, job: dict[str, Any]) -> Doc:
        """Run another runner than its type's on step `doc`, in place (`transform/dataType`).

        `job` is `{"type": "{step}/{tool}" of the operation, "runner": "module:function",
        "parameters": {...}, "keys": [metadata keys the job's runner adds, dropped when the
        step is next recomputed by its own runner]}`. The step is `running` when this returns
        (`_queued` until the supervisor serving its type claims it), so a wait started now
        sees the job's outcome; its `parameters` stay those of the step. The job gets the
        step's current output as its only parent; a failed job leaves that output in place.
        409 while the step is busy.
        """
        self._check_ended(doc, "wait for it")
        return await self._restart(
            doc, {**transition(doc, Status.RUNNING, queued=True), "_job": job}, hint="wait for it"
        )

    @staticmethod
    def _check_ended(doc: Doc, hint: str) -> None:
        """409 unless `doc` has ended: only an ended step runs again (model.TRANSITIONS)."""
        if status_of(doc) not in TERMINAL:
            raise _busy(doc["name"], hint)

    async def _restart(self, doc: Doc, changes: dict[str, Any], *, hint: str) -> Doc:
        """Apply `changes` (a `transition` from its status) to step `doc`, which has ended,
        unless it changed since it was read, so the supervisor runs it again; its children go
        stale. 409 if it is busy meanwhile."""
        name = doc["name"]
        updated = await self.store.update(
            name, changes, expect={"status": list(TERMINAL), "version": doc["version"]}
        )
        if updated is None:
            raise _busy(name, hint)
        # A crash may have left earlier runs' working folders (a run that ends cleans its own).
        self.volume.clear_old_scratch(name, upto=int(updated.get("runs", 0)))
        await self._mark_children_stale(name)
        self.supervisor.wake()
        return updated

    async def _mark_children_stale(self, name: str) -> None:
        """Outputs computed from `name` no longer match it once it is re-run or deleted."""
        for child in await self.store.children(name):
            if not child.get("stale"):
                await self.store.update(child["name"], {"stale": True})

    # -- cancelling and deleting ------------------------------------------------------------
    async def cancel(self, step_type: StepType | None, name: str) -> Doc:
        """Stop a pending or running step; answers with its metadata once it is `cancelled`."""
        doc = await self.get(step_type, name)
        async with self.store.watch(name) as changes:
            if doc["status"] == Status.PENDING or doc.get("_queued"):
                cancelled = await self.store.update(
                    name,
                    transition(
                        doc, Status.CANCELLED, exception="cancelled: by request before it started"
                    ),
                    expect={"status": doc["status"], "_queued": doc.get("_queued")},
                    unset=["_queued", "_job"],
                )
                if cancelled is not None:
                    return cancelled
                doc = await self.get(step_type, name)
            if doc["status"] != Status.RUNNING:
                raise Conflict(f"{name!r} is {doc['status']}: there is nothing to cancel")
            await self.store.update(
                name, {"_cancel": "by request"}, expect={"status": Status.RUNNING}
            )
            self.supervisor.cancel_local(name, "by request")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + CANCEL_WAIT_SECONDS
            while (remaining := deadline - loop.time()) > 0:
                change = await changes.next(remaining)
                if change is None or change.get("deleted"):
                    break
                if change["status"] in TERMINAL:
                    return change
        return await self.get(step_type, name)

    async def delete(self, step_type: StepType | None, name: str) -> Doc:
        """Remove a step's metadata and output together; a running step is cancelled first."""
        doc = await self.get(step_type, name)
        # (A multi-output job goes on for its other outputs: its supervisor sees the deletion.)
        if doc["status"] == Status.RUNNING and not doc.get("_group"):
            await self.store.update(name, {"_cancel": "the step was deleted"})
            self.supervisor.cancel_local(name, "the step was deleted")
        removed = await self.store.delete(name)
        if removed is None:
            raise NotFound(f"there is no step named {name!r}")
        # A multi-output job works in its first output's scratch folder until it ends, which
        # may be after that output is deleted: the job removes it then (a crash: the sweep).
        self.volume.remove(name, scratch=not removed.get("_group"))
        await self._mark_children_stale(name)
        return removed
