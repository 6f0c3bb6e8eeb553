"""What a job's worker hands to its sandboxed child, and the names of the files they share.

The worker writes `inputs/request.pkl` (a `Request`, cloudpickled: trusted data going to
untrusted code) and `inputs/sandbox.json` (the confinement to apply, as JSON). The child
answers with `out/report.json` (JSON, which the worker parses with care) and the response
in its natural formats under `out/response/`. Nothing the child writes is ever unpickled by
the worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REQUEST = "request.pkl"
CONFIG = "sandbox.json"
REPORT = "report.json"
RESPONSE = "response"
FILENAME = "<function>"  # the name user code has in tracebacks


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
    """Code to run, with its parameters (references and expressions as markers above)."""

    code: str
    parameters: dict[str, Any] = field(default_factory=dict)
