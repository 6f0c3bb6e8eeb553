"""The store port: where step metadata and run records live.

Two adapters implement it — `SqliteStore` (embedded default) and `MongoStore` — and one
contract test suite (tests/core/test_store_contract.py) runs against every adapter available.

Every write bumps the document's `version` and is published to watchers, which is what the
observe service and the job supervisor wait on.
"""

from __future__ import annotations

import abc
import base64
import binascii
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ..errors import BadRequest, NameTaken
from ..model import Doc

# `expect` conditions of `update`: a key maps to the value it must have, or to a collection of
# allowed values. Dotted keys reach into nested documents ("_lease.owner").
Expect = Mapping[str, Any]


def matches(doc: Doc, expect: Expect | None) -> bool:
    """True when `doc` satisfies every condition of `expect` (the adapters' shared semantics)."""
    for key, wanted in (expect or {}).items():
        value: Any = doc
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(wanted, Collection) and not isinstance(wanted, str | bytes | dict):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


def name_taken(name: str) -> NameTaken:
    """The error of an insert whose name exists (both adapters word it so)."""
    return NameTaken(
        f"the name {name!r} is already taken: choose another name, or delete that step first",
        {"name": name},
    )


def encode_cursor(kind: str, position: str) -> str:
    """An opaque observe cursor for an adapter's position (`kind` tells adapters apart): users
    pass it back verbatim, and must not read meaning into it."""
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> str:
    """The position inside `cursor`; `BadRequest` unless `encode_cursor(kind, …)` made it."""
    return check_position(cursor, _decode(kind, cursor))


def check_position(cursor: str, position: str | None) -> str:
    """`position`, or `BadRequest` when it is None (`cursor` is not a cursor of ours)."""
    if position is None:
        raise BadRequest(
            f"{cursor!r} is not an observe cursor of this server: pass back the `cursor` an "
            "answer of /observe gave, or omit `since` to start from now",
            {"since": cursor},
        )
    return position


def _decode(kind: str, cursor: str) -> str | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    found, sep, position = text.partition(":")
    return position if sep and found == kind and position else None


class Changes(abc.ABC):
    """A subscription to step changes, opened before the current state is read (race-free)."""

    @property
    @abc.abstractmethod
    def cursor(self) -> str:
        """The opaque position after the last change `next` delivered (or where the
        subscription started): `watch(since=cursor)` resumes right after it."""

    @abc.abstractmethod
    async def next(self, timeout: float) -> Doc | None:
        """The next changed document (after the change), `{"name": n, "deleted": True}` for a
        deletion, or None when `timeout` seconds pass first."""


class Store(abc.ABC):
    """Persistence of step metadata documents and their run records."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create tables/indexes. Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the store answers."""

    async def insert(self, doc: Doc) -> Doc:
        """Insert a new step; raise `NameTaken` if the name exists (enforced by the store)."""
        return (await self.insert_many([doc]))[0]

    @abc.abstractmethod
    async def insert_many(self, docs: Sequence[Doc]) -> list[Doc]:
        """Insert new steps, all or none (the outputs of one multi-output job): `NameTaken`
        naming the first name that exists, and then none of `docs` is left inserted."""

    @abc.abstractmethod
    async def get(self, name: str) -> Doc | None: ...

    @abc.abstractmethod
    async def find(
        self,
        *,
        types: Collection[str] | None = None,
        statuses: Collection[str] | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Doc]:
        """Steps in creation order, optionally of the given types and statuses."""

    @abc.abstractmethod
    async def children(self, name: str) -> list[Doc]:
        """Steps that list `name` among their parents."""

    @abc.abstractmethod
    async def update(
        self,
        name: str,
        changes: Mapping[str, Any],
        *,
        expect: Expect | None = None,
        unset: Collection[str] = (),
        bump: bool = True,
    ) -> Doc | None:
        """Atomically set top-level keys (and remove `unset` keys) of `name` if it matches
        `expect`; bump `version` (unless `bump` is False: bookkeeping users never see, such as
        lease renewals, must not wake `observe?since=`); return the new document, or None if
        absent or unmatched."""

    @abc.abstractmethod
    async def delete(self, name: str) -> Doc | None:
        """Remove a step and its run records; return what was removed."""

    @abc.abstractmethod
    async def add_run(self, name: str, record: Doc) -> None:
        """Append a run record (one per execution of the step)."""

    @abc.abstractmethod
    async def runs(self, name: str, *, skip: int = 0, limit: int | None = None) -> list[Doc]:
        """Run records of a step, newest first."""

    @abc.abstractmethod
    async def _subscribe(self, name: str | None, since: str | None = None) -> Changes:
        """Start listening; changes after this call returns must all be delivered, and with
        `since` (a `Changes.cursor`) every change after that position first. Raise
        `CursorExpired` when the store no longer keeps the changes right after `since`, and
        `BadRequest` when `since` is no cursor of this store."""

    @abc.abstractmethod
    async def _unsubscribe(self, changes: Changes) -> None: ...

    @asynccontextmanager
    async def watch(
        self, name: str | None = None, *, since: str | None = None
    ) -> AsyncIterator[Changes]:
        """Subscribe to changes of one step (or all with None) for the block's duration; from
        the cursor `since` on when given (see `_subscribe`), else from now."""
        changes = await self._subscribe(name, since)
        try:
            yield changes
        finally:
            await self._unsubscribe(changes)
