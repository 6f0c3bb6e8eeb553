"""`Orchestra` and `Step`: the modern face of the client, beside LO's per-family classes.

::

    from learning_orchestra_client import Orchestra

    orc = Orchestra("http://127.0.0.1:8080")        # or Orchestra(): $LO_URL, else that URL
    titanic = orc.upload("titanic", "train.csv").wait()
    ages = orc.submit("transform/projection", inputDatasetName="titanic",
                      outputDatasetName="ages", names=["Age", "Survived"]).wait()
    ages.result()                                     # a pandas DataFrame
    ages.rerun(names=["Age", "Fare"]).wait()          # PATCH, merge-patch
    ages.logs(), ages.files(), ages.lineage()

`AsyncOrchestra` / `AsyncStep` are the same, to be awaited; both pairs are declared once
(see `_service`). Every step type the server serves is reachable: `submit` takes the type
and its body as docs/api.md lists it, `step(name)` finds a step of any type.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from ._display import ProgressBar, lineage_html, status_html, step_html
from ._service import AsyncDriver, AsyncService, SyncDriver, SyncService, operation
from ._transport import (
    BASE_PATH,
    Plan,
    Request,
    answer_of,
    decode_body,
    quote_name,
    raise_for_answer,
)
from .dataset._dataset import FileSource, insert_plan
from .exceptions import LearningOrchestraError, NotFound, StepFailed
from .observe._plans import follow_plan, status_of

#: Where `Orchestra()` connects without a URL: $LO_URL, else the embedded server's default.
DEFAULT_URL = "http://127.0.0.1:8080"

#: Step types created by another method than POST (LO casts types with PATCH).
CREATE_METHODS = {"transform/dataType": "PATCH"}

#: Page size of `steps()` (the server's maximum).
PAGE = 100

#: What `upload` does with a pandas DataFrame, per dataset kind: (file name suffix, writer).
FRAME_WRITERS: dict[str, tuple[str, Callable[[Any, io.BytesIO], Any]]] = {
    "csv": (".csv", lambda frame, out: frame.to_csv(out, index=False)),
    "generic": (".parquet", lambda frame, out: frame.to_parquet(out, index=False)),
}


def _body(body: dict[str, Any] | None, fields: dict[str, Any]) -> dict[str, Any]:
    """`body` updated with keyword `fields`; a trailing ``_`` is dropped from a keyword
    (``class_=`` for the body key ``class``, a Python keyword)."""
    merged = dict(body or {})
    merged.update({key.removesuffix("_") if key != "_" else key: v for key, v in fields.items()})
    return merged


def _name_and_type(path: str) -> tuple[str, str]:
    """``("name", "step/tool")`` of a step URL path such as ``/api/.../dataset/csv/name``."""
    relative = path.removeprefix(BASE_PATH).strip("/").split("/")
    return urllib.parse.unquote(relative[-1]), "/".join(relative[:-1])


def _needs(module: str) -> Any:
    """Import an optional dependency, saying which extra provides it when it is missing."""
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(
            f"reading this result needs {module}: pip install 'learning-orchestra-client[notebook]'"
        ) from None


def decode_result(response: httpx.Response) -> Any:
    """A `/result` answer as Python: a DataFrame for Parquet, an ndarray for ``.npy``, the
    value for JSON, text for CSV, bytes otherwise (a PNG, a raw file)."""
    kind = response.headers.get("content-type", "").split(";")[0].strip()
    disposition = response.headers.get("content-disposition", "")
    if kind == "application/vnd.apache.parquet" or '.parquet"' in disposition:
        return _needs("pandas").read_parquet(io.BytesIO(response.content))
    if '.npy"' in disposition:
        return _needs("numpy").load(io.BytesIO(response.content), allow_pickle=False)
    if kind == "application/json":
        return response.json()["result"]
    if kind == "text/csv":
        return response.text
    return response.content


class Lineage:
    """The upstream graph of a step: `nodes` (name, type, status, stale, missing), `edges`
    (``{"from": parent, "to": child}``); shown as a table in a notebook."""

    def __init__(self, graph: dict[str, Any]) -> None:
        self.graph = graph
        self.name: str = graph.get("name", "")
        self.nodes: list[dict[str, Any]] = graph.get("nodes", [])
        self.edges: list[dict[str, Any]] = graph.get("edges", [])

    def parents(self, name: str) -> list[str]:
        """The steps `name` was computed from."""
        return [edge["from"] for edge in self.edges if edge["to"] == name]

    def _repr_html_(self) -> str:
        return lineage_html(self.graph)

    def __repr__(self) -> str:
        lines = [f"lineage of {self.name!r}:"]
        for node in self.nodes:
            parents = ", ".join(self.parents(node["name"])) or "-"
            state = "missing" if node.get("missing") else str(node.get("status"))
            state += ", stale" if node.get("stale") else ""
            lines.append(f"  {node['name']} ({node.get('type')}, {state}) <- {parents}")
        return "\n".join(lines)


class Steps(list[Any]):
    """A list of steps that a notebook shows as a table."""

    def _repr_html_(self) -> str:
        head = "<tr><th>step</th><th>type</th><th>status</th><th>duration</th></tr>"
        rows = "".join(
            f"<tr><td><b>{step.name}</b></td><td>{step.type}</td>"
            f"<td>{status_html(step.metadata.get('status'))}</td>"
            f"<td>{_seconds(step.metadata.get('durationSeconds'))}</td></tr>"
            for step in self
        )
        return f"<table>{head}{rows}</table>"


def _seconds(value: Any) -> str:
    return f"{value:.2f} s" if isinstance(value, int | float) else ""


class _StepOperations:
    """What `Step` and `AsyncStep` do, declared once.

    A step object holds its metadata as last read (`metadata`); every operation that reads
    the server refreshes it.
    """

    _long_poll: float
    _progress: bool

    def __init__(self, orchestra: Any, metadata: dict[str, Any]) -> None:
        self.orchestra = orchestra
        self._transport = orchestra._transport
        self._long_poll = orchestra._long_poll
        self._progress = orchestra.progress
        self.metadata: dict[str, Any] = metadata

    @property
    def name(self) -> str:
        """The step's name (unique across every step)."""
        return str(self.metadata["name"])

    @property
    def type(self) -> str:
        """The step's type, ``"{step}/{tool}"`` (e.g. ``"dataset/csv"``)."""
        return str(self.metadata.get("type"))

    @property
    def path(self) -> str:
        """The step's route, relative to the REST base path."""
        return f"/{self.type}/{quote_name(self.name)}"

    def _read(self) -> Plan[dict[str, Any]]:
        response = yield Request("GET", f"/steps/{quote_name(self.name)}")
        self.metadata = answer_of(response)["result"]
        return self.metadata

    @operation
    def refresh(self) -> Plan[Any]:
        """Read the step's metadata again; returns the step."""
        yield from self._read()
        return self

    @operation
    def wait(self, timeout: float | None = None, progress: bool | None = None) -> Plan[Any]:
        """Wait until the step has finished; returns the step.

        Args:
            timeout: a deadline in seconds (None: as long as it takes).
            progress: show a progress bar (tqdm) fed by the step's changes: rows ingested,
                epochs, trials. None: as the `Orchestra` was told (default yes).

        Raises:
            StepFailed: the step failed; the message is the step's error, its `traceback`
                the frames of your code that raised it.
            StepCancelled: it was cancelled.
            WaitTimeout: `timeout` passed first; the message says the last status.
        """
        bar = ProgressBar([self.name], self._progress if progress is None else progress)
        try:
            done = yield from follow_plan([self.name], timeout, self._long_poll, bar.update)
        finally:
            bar.close()
        self.metadata = done[self.name]
        return self

    @operation
    def result(self, format: str | None = None) -> Plan[Any]:
        """The step's output: a pandas DataFrame for a table, a numpy array for an array,
        the value for JSON (dicts, numbers, metrics), bytes for anything else (a raw file).

        Args:
            format: ask for ``"parquet"``, ``"csv"`` (text), ``"json"`` or ``"npy"`` instead
                of the output's natural format.

        Raises:
            StepFailed: the step failed or was cancelled, so it has no output.
            NotFound: the step has no output yet (wait for it first).
        """
        metadata = yield from self._read()
        if format is None and metadata.get("fields") is not None:
            format = "parquet"  # a table: typed, compact, one request
        params = {"format": format} if format else None
        response = yield Request("GET", f"{self.path}/result", params=params)
        if response.status_code == 404 and status_of(metadata) in ("failed", "cancelled"):
            raise StepFailed(self.name, metadata, note="so it has no result")
        if response.status_code == 404 and status_of(metadata) in ("pending", "running"):
            raise NotFound(
                f"step '{self.name}' is {status_of(metadata)} and has no output yet: "
                "call .wait() first",
                status_code=404,
            )
        raise_for_answer(response)
        return decode_result(response)

    @operation
    def rerun(self, changes: dict[str, Any] | None = None, /, **fields: Any) -> Plan[Any]:
        """Run the step again with some parameters changed (``PATCH``); returns the step,
        pending or running (call `wait`).

        The changes are body keys as in docs/api.md, as a dict and/or keywords
        (``class_=`` stands for ``class``). Dict values merge into the stored ones as an
        RFC 7386 merge-patch: ``rerun(methodParameters={"n_components": 3})`` changes that
        one argument and keeps the others; ``None`` removes a key. Inputs are the parents'
        stored outputs: nothing upstream runs again.
        """
        response = yield Request("PATCH", self.path, json=_body(changes, fields))
        answer_of(response)
        yield from self._read()
        return self

    @operation
    def cancel(self) -> Plan[Any]:
        """Stop the step if it is pending or running; returns the step (``cancelled``)."""
        response = yield Request("POST", f"{self.path}/cancel")
        self.metadata = answer_of(response)["result"]
        return self

    @operation
    def delete(self) -> Plan[None]:
        """Delete the step, its output and its files (cancelling it if it runs)."""
        response = yield Request("DELETE", self.path)
        answer_of(response)

    @operation
    def logs(self, offset: int | None = None, limit: int | None = None) -> Plan[str]:
        """What the latest run printed (stdout and stderr): its last MiB by default, or
        `limit` bytes from byte `offset`."""
        params = {k: v for k, v in (("offset", offset), ("limit", limit)) if v is not None}
        response = yield Request("GET", f"{self.path}/logs", params=params)
        return str(answer_of(response)["result"])

    def _files(self) -> Plan[list[dict[str, Any]]]:
        response = yield Request("GET", f"{self.path}/files")
        return list(answer_of(response)["result"])

    @operation
    def files(self) -> Plan[list[dict[str, Any]]]:
        """The files of the step's output: ``[{"filename", "size", "sha256"}, ...]``."""
        return self._files()

    @operation
    def download(self, filename: str | None = None, to: str | os.PathLike[str] = ".") -> Plan[Any]:
        """Download one file of the output (every file when `filename` is None) into the
        folder `to`, checking its SHA-256; returns its path (a list of paths for all)."""
        listed = yield from self._files()
        wanted = [entry for entry in listed if filename in (None, entry["filename"])]
        if filename is not None and not wanted:
            names = ", ".join(entry["filename"] for entry in listed)
            raise NotFound(f"step '{self.name}' has no file {filename!r} (it has: {names})")
        folder = Path(to)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for entry in wanted:
            path = f"{self.path}/files/{quote_name(entry['filename'])}"
            response = yield Request("GET", path)
            raise_for_answer(response)
            if hashlib.sha256(response.content).hexdigest() != entry["sha256"]:
                raise LearningOrchestraError(
                    f"{entry['filename']} of step '{self.name}' arrived damaged (SHA-256 "
                    "mismatch); download it again"
                )
            target = folder / entry["filename"]
            target.write_bytes(response.content)
            paths.append(target)
        return paths[0] if filename is not None else paths

    @operation
    def lineage(self) -> Plan[Lineage]:
        """The steps this one was computed from, recursively, each with its status."""
        response = yield Request("GET", f"/steps/{quote_name(self.name)}", params={"lineage": 1})
        return Lineage(answer_of(response)["result"])

    def _repr_html_(self) -> str:
        return step_html(self.metadata)

    def __repr__(self) -> str:
        status = self.metadata.get("status")
        return f"{type(self).__name__}({self.name!r}, type={self.type!r}, status={status!r})"


class Step(_StepOperations, SyncDriver):
    """A step of any type (blocking client); made by `Orchestra`."""

    @property
    def status(self) -> str:
        """The step's status now (``pending``, ``running``, ``finished``, ``failed``,
        ``cancelled``); reads the server."""
        return status_of(self._run(self._read()))


class AsyncStep(_StepOperations, AsyncDriver):
    """The asyncio twin of `Step`; made by `AsyncOrchestra`."""

    @property
    def status(self) -> str:
        """The status as last read (`await step.refresh()` reads it again)."""
        return status_of(self.metadata)


class _Orchestration:
    """What `Orchestra` and `AsyncOrchestra` do, declared once."""

    _long_poll: float
    _step_class: type[Any]

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        progress: bool = True,
        **options: Any,
    ) -> None:
        """`url`: the server or gateway (default: ``$LO_URL``, else ``http://127.0.0.1:8080``);
        `token`: a bearer token; `progress`: show progress bars while waiting; other
        keyword options (``timeout``, ``retries``, ``long_poll``, ``client``) as
        `SyncService`'s."""
        self.progress = progress
        url = url or os.environ.get("LO_URL") or DEFAULT_URL
        super().__init__(url, token=token, **options)  # type: ignore[call-arg]

    def _step(self, metadata: dict[str, Any]) -> Any:
        return self._step_class(self, metadata)

    @operation
    def steps(
        self, status: str | list[str] | None = None, type: str | list[str] | None = None
    ) -> Plan[Steps]:
        """Every step, any type, oldest first; `status` and `type` filter (one value or a
        list), e.g. ``steps(status="failed")``, ``steps(type=["dataset/csv"])``."""
        params: dict[str, Any] = {"limit": PAGE}
        for key, value in (("status", status), ("type", type)):
            if value:
                params[key] = value if isinstance(value, str) else ",".join(value)
        found = Steps()
        while True:
            response = yield Request("GET", "/steps", params={**params, "skip": len(found)})
            page = answer_of(response)["result"]
            found.extend(self._step(metadata) for metadata in page)
            if len(page) < PAGE:
                return found

    @operation
    def step(self, name: str) -> Plan[Any]:
        """The step called `name`, whatever its type (NotFound if there is none)."""
        response = yield Request("GET", f"/steps/{quote_name(name)}")
        return self._step(answer_of(response)["result"])

    @operation
    def upload(
        self,
        name: str,
        source: FileSource | Any,
        *,
        kind: str = "csv",
        description: str | None = None,
    ) -> Plan[Any]:
        """Upload a local file as dataset `name`; returns the step at once (call `wait`).

        Args:
            name: the dataset's name.
            source: a path, an open binary file, bytes, or a pandas DataFrame (sent as CSV
                for ``kind="csv"``, as Parquet for ``"generic"``).
            kind: ``"csv"`` (parsed into a typed table) or ``"generic"`` (kept as a file).
            description: free text kept with the step.
        """
        if kind not in FRAME_WRITERS:
            raise ValueError(f"kind must be 'csv' or 'generic', not {kind!r}")
        if hasattr(source, "to_csv") and hasattr(source, "columns"):  # a DataFrame
            suffix, write = FRAME_WRITERS[kind]
            buffer = io.BytesIO()
            write(source, buffer)
            buffer.name = f"{name}{suffix}"
            buffer.seek(0)
            source = buffer
        fields = {"description": description} if description else None
        response = yield from insert_plan(f"/dataset/{kind}", name, None, source, fields)
        answer_of(response)
        return self._step({"name": name, "type": f"dataset/{kind}", "status": "pending"})

    @operation
    def submit(
        self, step_type: str, body: dict[str, Any] | None = None, /, **fields: Any
    ) -> Plan[Any]:
        """Create a step of `step_type` (e.g. ``"transform/projection"``); returns it at
        once, pending (call `wait`). A list of steps for a type that makes several.

        The body is the step's JSON body as docs/api.md lists it, as a dict and/or keywords
        (``class_=`` stands for the key ``class``)::

            orc.submit("function/python", name="adults", function="response = t[t.Age > 17]",
                       functionParameters={"t": "$titanic"})
        """
        step_type = step_type.strip("/")
        method = CREATE_METHODS.get(step_type, "POST")
        response = yield Request(method, f"/{step_type}", json=_body(body, fields))
        if response.status_code == 404:  # most likely a misspelt type: say which exist
            yield from self._known_type(step_type)
        created = answer_of(response)["result"]
        steps = [
            self._step(self._pending(path))
            for path in (created if isinstance(created, list) else [created])
        ]
        return steps if isinstance(created, list) else steps[0]

    def _known_type(self, step_type: str) -> Plan[None]:
        """Raise NotFound naming the types the server serves, unless it serves `step_type`
        (GET /steps refuses an unknown `type` with the list of the allowed ones)."""
        response = yield Request("GET", "/steps", params={"type": step_type, "limit": 1})
        allowed = (decode_body(response) or {}).get("error", {}).get("detail", {}).get("allowed")
        if response.status_code == 422 and isinstance(allowed, list):
            close = difflib.get_close_matches(step_type, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise NotFound(
                f"this server has no step type {step_type!r}: {hint}It serves "
                + ", ".join(allowed),
                status_code=404,
            )

    @staticmethod
    def _pending(path: str) -> dict[str, Any]:
        name, step_type = _name_and_type(path)
        return {"name": name, "type": step_type, "status": "pending"}

    @operation
    def wait_all(
        self, *steps: Any, timeout: float | None = None, progress: bool | None = None
    ) -> Plan[Steps]:
        """Wait until every step given (steps or names) has finished; returns them.

        One long-poll on the change feed follows them all. Raises `StepFailed` for the
        first that fails (the others keep running), `WaitTimeout` after `timeout` seconds.
        """
        objects = [self._step({"name": s}) if isinstance(s, str) else s for s in steps]
        names = list(dict.fromkeys(step.name for step in objects))
        bar = ProgressBar(names, self.progress if progress is None else progress)
        try:
            done = yield from follow_plan(names, timeout, self._long_poll, bar.update)
        finally:
            bar.close()
        for step in objects:
            step.metadata = done[step.name]
        return Steps(objects)


class Orchestra(_Orchestration, SyncService):
    """The client of one Learning Orchestra server (blocking); see the module docstring.

    Example:
        >>> orc = Orchestra("http://127.0.0.1:8080")
        >>> orc.upload("titanic", "train.csv").wait().result().shape
        (891, 12)
    """

    _step_class = Step


class AsyncOrchestra(_Orchestration, AsyncService):
    """The asyncio twin of `Orchestra`: the same methods, to be awaited."""

    _step_class = AsyncStep
