"""The step: its metadata document and status lifecycle.

A step's metadata is a JSON document (API.md, "Step metadata"). Keys that start with an
underscore are the server's bookkeeping (lease, artifact location, cancel requests) and are
never shown to users.
"""

from __future__ import annotations

import re
import time
from enum import StrEnum
from typing import Any

from .errors import Invalid

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
_NAME_RE = re.compile(NAME_PATTERN)

Doc = dict[str, Any]


class Status(StrEnum):
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


def check_name(name: str, field: str = "name") -> str:
    """Return `name` if it is a valid step name, else raise `Invalid` naming the field."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise Invalid(
            f"{field} {name!r} is not a valid name: use 1-128 letters, digits, '_' or '-', "
            "starting with a letter or digit",
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
