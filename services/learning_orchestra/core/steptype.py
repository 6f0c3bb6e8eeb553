"""The declaration of a step type: everything the factory needs to serve it.

A step module declares its types with `StepType(...)`; `service.step_router` turns each into
the CRUD routes of API.md and the supervisor runs its `runner` in a worker process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class Content(StrEnum):
    """What `GET /{step}/{tool}/{name}` pages through after the metadata document."""

    TABLE = "table"  # rows of the stored table
    RUNS = "runs"  # one record per run, newest first
    # LO's explore/{tool}: the plain GET answers the output's PNG plot (IMAGE_FILE), and
    # GET .../metadata pages [metadata, run records]; GET .../image is the PNG too.
    IMAGE = "image"


#: The file holding the plot of an output whose step type has `Content.IMAGE`.
IMAGE_FILE = "image.png"

#: Modules every sandboxed interpreter imports before its job: what the sandboxed child
#: itself needs to load parameters and store the response (sandbox/child.py).
SANDBOX_BASE_MODULES = ("cloudpickle", "numpy", "pandas", "learning_orchestra.core.formats")
#: What the job's worker of a sandboxed step type preloads (its forkserver imports them once):
#: the sandbox, and its probe of the namespaces available, run once per server.
SANDBOX_WORKER_PRELOAD = (
    "cloudpickle",
    "learning_orchestra.sandbox",
    "learning_orchestra.sandbox.probe",
)


@dataclass(frozen=True)
class SandboxFamily:
    """Step types whose user code runs in the same kind of sandboxed interpreter.

    The server keeps a few interpreters of each family started ahead of need
    (sandbox/pool.py, LO_SANDBOX_POOL); each has imported `modules` (and nothing of any
    user's) and runs exactly one job. `env`: variables the interpreter starts with (they can
    matter at import time, e.g. TF_CPP_MIN_LOG_LEVEL). Declared on the step type (a toolkit
    adapter declares its own: toolkits/__init__.py), never chosen by an if-chain."""

    name: str  # "python", "scikitlearn", "tensorflow"
    modules: tuple[str, ...] = SANDBOX_BASE_MODULES
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class StepType:
    step: str  # "dataset"
    tool: str  # "csv"
    request: type[BaseModel]  # body of POST; PATCH takes the same keys minus the name
    runner: str  # "package.module:function", imported in the worker only
    name_field: str = "name"  # the body key that names the output
    alias: str | None = None  # LO's alias for the name in metadata ("datasetName")
    content: Content = Content.RUNS
    parent_fields: tuple[str, ...] = ()  # body keys that name an input step directly
    upload: bool = False  # POST also accepts multipart/form-data with a `file`
    patchable: bool = True
    summary: str = ""
    # Modules the worker pool imports once, so each job does not pay for them.
    preload: tuple[str, ...] = field(default=())
    # Cheap checks against the parents' metadata, run in the API process on POST and PATCH
    # (e.g. column names against the input's `fields`): check(parameters, {name: parent doc})
    # raises `errors.Invalid` naming the field at fault.
    check: Callable[[Mapping[str, Any], Mapping[str, dict[str, Any]]], None] | None = None
    # The sandbox family its runner runs user code in (pre-started interpreters), if any.
    sandbox: SandboxFamily | None = None
    # A multi-output step type (builder/sparkml): given a validated body, the ordered
    # {output step name: output key} one job produces. POST then records every output as a
    # step of its own (all `pending` before the answer, which lists them), and one job under
    # one lease commits each (core/jobs.py). `name_field` is the body key the names derive
    # from, named when one is invalid.
    outputs: Callable[[Mapping[str, Any]], dict[str, str]] | None = None
    # A valid POST body (docs/api.md's worked example): the OpenAPI request example, which
    # Swagger UI's "Try it out" starts from (tests/test_openapi.py validates it).
    example: Mapping[str, Any] | None = None

    @property
    def type(self) -> str:
        return f"{self.step}/{self.tool}"

    @property
    def path(self) -> str:
        return f"/{self.step}/{self.tool}"
