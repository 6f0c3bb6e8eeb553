"""What a job's worker hands to its sandboxed child, and the names of the files they share.

The worker writes `inputs/request.pkl` (a `Request`, `Call` or `Job`, cloudpickled: trusted
data going to untrusted code) and `inputs/sandbox.json` (the confinement to apply, as JSON).
The child answers with `out/report.json` (JSON, which the worker parses with care) and the
response in its natural formats under `out/response/` — or, for a `Job`, with each output in
`out/outputs/{key}/`, announced by a JSON line in `out/outputs.jsonl` as soon as it is
written. Nothing the child writes is ever unpickled by the worker.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

REQUEST = "request.pkl"
CONFIG = "sandbox.json"
REPORT = "report.json"
PROGRESS = "progress.jsonl"  # progress events the child appends, which its worker tails
# Where `child.progress` appends: out/PROGRESS of the run. Not an LO_ name: those are the
# server's settings, none of which reaches the child.
PROGRESS_ENV = "STEP_PROGRESS_FILE"
RESPONSE = "response"
OUTPUTS = "outputs"  # a Job's outputs: out/OUTPUTS/{key}/, one folder each
OUTPUT_EVENTS = "outputs.jsonl"  # a Job's events, one JSON line per output: ready or failed
MAX_ADAPTER_METADATA = 64 * 1024  # bytes of JSON
MAX_PROGRESS = 4 * 1024  # bytes of one progress event
MAX_MESSAGE = 8 * 1024  # characters of a failed output's message
MAX_TRACEBACK = 32 * 1024  # characters of a traceback
MAX_OUTPUT_EVENT = MAX_ADAPTER_METADATA + MAX_MESSAGE + MAX_TRACEBACK + 1024  # bytes of a line
FILENAME = "<function>"  # the name user code has in tracebacks
#: What a pooled interpreter (sandbox/pool.py) writes on its control socket:
READY = b"R"  # waiting for its job
ACCEPTED = b"A"  # got its job: the run starts now, in a fork of it
EXITED = b"X"  # then the run's exit code ("!i"): the run is over, nothing of it is left


class Failure(Exception):
    """The child's run fails with this message (and the user's traceback): raised by the
    child and by toolkit adapters. Defined here, not in the child, so that both raise the
    same class: the running child is `__main__`, and an adapter importing
    `learning_orchestra.sandbox.child` would get a second copy of it."""

    def __init__(self, message: str, trace: str | None = None, kind: str | None = None):
        super().__init__(message)
        self.message = message
        self.trace = trace
        self.kind = kind  # the exception's type name, e.g. "MemoryError"


@dataclass(frozen=True)
class StagedOutput:
    """A `$name` / `$name.key` reference: a copy of a parent's verified output."""

    name: str
    key: str | None
    folder: str  # the copy, readable by the child
    format: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class Expression:
    """A `#expr` parameter value, evaluated in the child only."""

    source: str


@dataclass(frozen=True)
class Request:
    """Code to run, with its parameters (references and expressions as markers above).
    `prelude`: ``"module:function"`` names the child calls, without arguments, before it
    runs the code (builder/pycaret's PyCaret 2 compatibility: toolkits/pycaret.py); the
    code keeps its own line numbers."""

    code: str
    parameters: dict[str, Any] = field(default_factory=dict)
    prelude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Call:
    """A toolkit call instead of user source, in one of three shapes (toolkits/calls.py):

    - ``"construct"``: `module_path.class_name(**classParameters)`; the object is the result;
    - ``"invoke"``: `method(**methodParameters)` on ``parameters["target"]`` (a parent
      step's stored object, staged like any reference);
    - ``"construct+call"``: construct, then call `method` on the object.

    `parameters` holds the groups the shape uses (with markers as above). `step` is the
    step kind (``"model"``, ``"train"``, ...). `adapter` is the toolkit adapter's module
    (learning_orchestra.toolkits.*): the child asks it what to keep of the result and what
    metadata to report (`outcome`), for the result's natural form (`natural`), to run an
    "invoke" itself when it defines `invoke` (e.g. TensorFlow's tune runs its trials so) and,
    when `plot`
    names a file, to render it as a PNG into out/`plot` (the worker keeps it with
    `Sandbox.collect(keep=[plot])`)."""

    shape: str
    step: str
    module_path: str | None
    class_name: str | None
    method: str | None
    parameters: dict[str, Any]
    adapter: str
    plot: str | None = None
    # The keys of the step's metadata the adapter may report (its toolkit's declaration,
    # `Toolkit.metadata`): anything else the child reports is dropped, for the child runs
    # user code and its report is not trusted.
    metadata: tuple[str, ...] = ()


@dataclass(frozen=True)
class Job:
    """A toolkit's whole job instead of user source or a call (builder/sparkml: start Spark,
    run the user's feature code, fit one model per output). The child calls `function`
    (``"module:function"``, chosen by the step type's runner, never by the user) with the
    `parameters` as they are (no markers: inputs travel as paths of their staged copies) and
    an `Outputs` writer (sandbox/child.py), which puts each output of `outputs` (their keys)
    in out/OUTPUTS/{key}/ and announces it, ready or failed, in out/OUTPUT_EVENTS; the worker
    commits each output as soon as it is announced, while the job goes on (`OutputTail`).
    `metadata`: the keys an announced output's metadata may hold (the rest is dropped: the
    child runs user code, its events are checked, not trusted)."""

    function: str
    parameters: dict[str, Any]
    outputs: tuple[str, ...]
    metadata: tuple[str, ...] = ()


@dataclass
class Pooled:
    """A pooled interpreter (sandbox/pool.py) lent to a job, as its worker gets it: pickled
    with the worker's arguments, the socket travelling as a file descriptor. Defined here,
    not in pool.py, so that the worker unpickles it without importing asyncio."""

    pid: int
    family: str
    control: socket.socket
