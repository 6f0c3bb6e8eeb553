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

    @property
    def type(self) -> str:
        return f"{self.step}/{self.tool}"

    @property
    def path(self) -> str:
        return f"/{self.step}/{self.tool}"
