"""`MongoStore`: step metadata in MongoDB, through PyMongo's native async API.

URL: `mongodb://host[:port][,host2...]/database?options` (or `mongodb+srv://`); the database
defaults to `learning_orchestra` when the URL names none.

**MongoDB must run as a replica set** (a single-node one is enough: `mongod --replSet rs0`, then
`rs.initiate()` once): `watch` uses change streams, which a standalone server does not offer.
Without one, every operation but `watch` works and `watch` raises `StoreUnavailable`.

Layout:

- `steps`: one document per step, `_id` = the step's name (so the unique `_id` index is what
  refuses a taken name), with every key of the port's document besides. `_id` never leaves
  this module.
- `runs`: `{name, seq, record}`, unique on `(name, seq)`; `add_run` takes the next `seq` and
  retries if another writer took it first.

Watching: an update's change event carries the document as it is when the event is read
(`fullDocument: "updateLookup"`), so a burst of updates may be delivered as several copies of
the newest document; an update whose step was deleted before the event was read is skipped (its
deletion follows). Watchers wait on the server (`maxAwaitTimeMS`), so `Changes.next` may
overrun its timeout by up to `AWAIT_SECONDS`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from bson import json_util
from bson.errors import InvalidBSON, InvalidDocument
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from ..errors import BadRequest, CursorExpired, StoreUnavailable
from ..model import Doc
from .base import (
    Changes,
    Expect,
    Store,
    check_position,
    decode_cursor,
    encode_cursor,
    name_taken,
)

DEFAULT_DATABASE = "learning_orchestra"
AWAIT_SECONDS = 0.25
SERVER_SELECTION_MS = 5_000  # unless the URL sets serverSelectionTimeoutMS

DUPLICATE_KEY = 11000
_AUTH_FAILED = {13, 18}  # Unauthorized, AuthenticationFailed
_NOT_A_REPLICA_SET = 40573
_HISTORY_LOST = {280, 286}  # ChangeStreamFatalError, ChangeStreamHistoryLost: oplog rolled over
_WATCHED = ["insert", "update", "replace", "delete"]
_NO_ID = {"_id": False}


@contextmanager
def _reachable() -> Iterator[None]:
    """Turn "cannot reach / cannot log in to MongoDB" into `StoreUnavailable`."""
    try:
        yield
    except ConnectionFailure as exc:
        raise StoreUnavailable(f"MongoDB cannot be reached: {exc}") from exc
    except OperationFailure as exc:
        if exc.code in _AUTH_FAILED:
            raise StoreUnavailable(f"MongoDB refused the store's credentials: {exc}") from exc
        raise


def expect_filter(expect: Expect | None) -> dict[str, Any]:
    """The query that selects documents satisfying `expect` (see `base.matches`).

    A collection of allowed values becomes `$in`; anything else must be equal. Dotted keys are
    MongoDB paths already. As in `matches`, a missing field counts as None. Conditions are meant
    for scalar fields: MongoDB would also match an array field that merely contains the value.
    """
    query: dict[str, Any] = {}
    for key, wanted in (expect or {}).items():
        if isinstance(wanted, Collection) and not isinstance(wanted, str | bytes | dict):
            query[key] = {"$in": list(wanted)}
        else:
            query[key] = wanted
    return query


def update_spec(
    changes: Mapping[str, Any], unset: Collection[str] = (), bump: bool = True
) -> dict[str, Any]:
    """The update document that does what `SqliteStore.update` does: set `changes`, then remove
    `unset`, then (if `bump`) `version` = (its value by then, or 0) + 1."""
    removed = {key for key in unset if key != "_id"}
    to_set = {k: v for k, v in changes.items() if k not in removed and k != "_id"}
    spec: dict[str, Any] = {}
    if "version" in removed:
        removed.discard("version")
        to_set["version"] = 1
    elif "version" in to_set:
        to_set["version"] = to_set["version"] + 1
    elif bump:
        spec["$inc"] = {"version": 1}
    if to_set:
        spec["$set"] = to_set
    if removed:
        spec["$unset"] = dict.fromkeys(sorted(removed), "")
    return spec


def _without_id(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k != "_id"}


def _expired(cursor: str | None) -> CursorExpired:
    return CursorExpired(
        "the changes after this cursor are no longer kept (the oplog moved on): start again "
        "from the current cursor (omit `since`) and re-read the steps you follow",
        {"since": cursor},
    )


class _MongoChanges(Changes):
    def __init__(self, stream: AsyncChangeStream[Doc], since: str | None) -> None:
        self.stream = stream
        self.since = since
        self._cursor = since

    @property
    def cursor(self) -> str:
        # The resume token: an event's `_id`, or the server's post-batch token when a batch
        # ended, so it moves on with the stream even while nothing of ours changes.
        token = self.stream.resume_token
        if token is None:
            if self._cursor is None:
                raise StoreUnavailable("MongoDB gave no resume token: is it older than 4.0.7?")
            return self._cursor
        self._cursor = encode_cursor("mongo", json_util.dumps(token))
        return self._cursor

    async def next(self, timeout: float) -> Doc | None:
        """The next change, waiting about `timeout` seconds (at least one server round trip)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if not self.stream.alive:
                raise StoreUnavailable("the change stream ended: was the steps collection dropped?")
            try:
                with _reachable():
                    event = await self.stream.try_next()
            except OperationFailure as exc:
                if exc.code in _HISTORY_LOST:
                    raise _expired(self.since) from exc
                raise
            if event is not None:
                doc = _event_doc(event)
                if doc is not None:
                    return doc
            elif loop.time() >= deadline:
                return None


def _event_doc(event: Doc) -> Doc | None:
    """What a change event means in the port's terms (None: nothing to deliver)."""
    kind = event.get("operationType")
    if kind == "delete":
        return {"name": event["documentKey"]["_id"], "deleted": True}
    if kind in ("insert", "update", "replace") and event.get("fullDocument") is not None:
        return _without_id(event["fullDocument"])
    return None  # an update of a step deleted since, or an invalidate event


class MongoStore(Store):
    """Step metadata in a MongoDB replica set; shared by any number of service replicas."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: AsyncMongoClient[Doc] | None = None
        self._steps_coll: AsyncCollection[Doc] | None = None
        self._runs_coll: AsyncCollection[Doc] | None = None

    @property
    def _steps(self) -> AsyncCollection[Doc]:
        if self._steps_coll is None:
            raise StoreUnavailable("the store is closed")
        return self._steps_coll

    @property
    def _runs(self) -> AsyncCollection[Doc]:
        if self._runs_coll is None:
            raise StoreUnavailable("the store is closed")
        return self._runs_coll

    # -- lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and create the indexes. Idempotent."""
        if self._client is not None:
            return
        options: dict[str, Any] = {}
        if "serverselectiontimeoutms" not in self.url.lower():
            options["serverSelectionTimeoutMS"] = SERVER_SELECTION_MS
        client: AsyncMongoClient[Doc] = AsyncMongoClient(self.url, **options)
        db = client.get_default_database(DEFAULT_DATABASE)
        steps, runs = db["steps"], db["runs"]
        try:
            with _reachable():
                await steps.create_index([("_created", ASCENDING), ("_id", ASCENDING)])
                await steps.create_index([("type", ASCENDING), ("_created", ASCENDING)])
                await steps.create_index([("status", ASCENDING)])
                await steps.create_index([("parents", ASCENDING)])
                await runs.create_index([("name", ASCENDING), ("seq", ASCENDING)], unique=True)
        except BaseException:
            await client.close()
            raise
        self._client, self._steps_coll, self._runs_coll = client, steps, runs

    async def close(self) -> None:
        """Disconnect (open change streams end with the client)."""
        client, self._client = self._client, None
        self._steps_coll = self._runs_coll = None
        if client is not None:
            await client.close()

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the server answers."""
        steps = self._steps
        with _reachable():
            await steps.database.command("ping")

    # -- steps ------------------------------------------------------------------------------
    async def insert_many(self, docs: Sequence[Doc]) -> list[Doc]:
        """Insert new steps in order; the unique `_id` refuses a taken name with `NameTaken`,
        and the steps inserted before it are removed again (all or none)."""
        try:
            with _reachable():
                await self._steps.insert_many(
                    [{"_id": doc["name"], **doc} for doc in docs], ordered=True
                )
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or [{}]
            failed = int(errors[0].get("index", 0))
            if errors[0].get("code") != DUPLICATE_KEY:
                raise
            with _reachable():
                await self._steps.delete_many({"_id": {"$in": [d["name"] for d in docs[:failed]]}})
            raise name_taken(docs[failed]["name"]) from None
        return list(docs)

    async def get(self, name: str) -> Doc | None:
        """The step's document, or None."""
        with _reachable():
            return await self._steps.find_one({"_id": name}, _NO_ID)

    async def find(
        self,
        *,
        types: Collection[str] | None = None,
        statuses: Collection[str] | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Doc]:
        """Steps in creation order, optionally of the given types and statuses."""
        query: dict[str, Any] = {}
        if types is not None:
            query["type"] = {"$in": list(types)}
        if statuses is not None:
            query["status"] = {"$in": list(statuses)}
        return await self._list(self._steps, query, [("_created", 1), ("_id", 1)], skip, limit)

    async def children(self, name: str) -> list[Doc]:
        """Steps that list `name` among their parents, in creation order."""
        return await self._list(self._steps, {"parents": name}, [("_created", 1), ("_id", 1)])

    async def update(
        self,
        name: str,
        changes: Mapping[str, Any],
        *,
        expect: Expect | None = None,
        unset: Collection[str] = (),
        bump: bool = True,
    ) -> Doc | None:
        """Atomically set `changes`, remove `unset` and (if `bump`) bump `version` if the step
        matches `expect`; the new document, or None if absent or unmatched."""
        with _reachable():
            return await self._steps.find_one_and_update(
                {**expect_filter(expect), "_id": name},
                update_spec(changes, unset, bump),
                projection=_NO_ID,
                return_document=ReturnDocument.AFTER,
            )

    async def delete(self, name: str) -> Doc | None:
        """Remove a step and its run records; return the step's document, or None."""
        with _reachable():
            doc = await self._steps.find_one_and_delete({"_id": name}, projection=_NO_ID)
            if doc is not None:
                await self._runs.delete_many({"name": name})
        return doc

    # -- run records ------------------------------------------------------------------------
    async def add_run(self, name: str, record: Doc) -> None:
        """Append a run record with the step's next `seq` (the unique index settles races)."""
        with _reachable():
            while True:
                last = await self._runs.find_one(
                    {"name": name}, {"seq": True}, sort=[("seq", DESCENDING)]
                )
                seq = 1 if last is None else last["seq"] + 1
                try:
                    await self._runs.insert_one({"name": name, "seq": seq, "record": record})
                    return
                except DuplicateKeyError:
                    continue  # another writer took this seq: take the next one

    async def runs(self, name: str, *, skip: int = 0, limit: int | None = None) -> list[Doc]:
        """Run records of a step, newest first."""
        rows = await self._list(self._runs, {"name": name}, [("seq", -1)], skip, limit)
        return [row["record"] for row in rows]

    @staticmethod
    async def _list(
        coll: AsyncCollection[Doc],
        query: Mapping[str, Any],
        sort: list[tuple[str, int]],
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Doc]:
        if limit == 0:  # MongoDB reads limit 0 as "no limit"
            return []
        cursor = coll.find(query, _NO_ID, sort=sort, skip=skip, limit=limit or 0)
        with _reachable():
            return await cursor.to_list()

    # -- watching ---------------------------------------------------------------------------
    async def _subscribe(self, name: str | None, since: str | None = None) -> Changes:
        match: dict[str, Any] = {"operationType": {"$in": _WATCHED}}
        if name is not None:
            match["documentKey._id"] = name
        resume: Any = None
        if since is not None:
            try:
                resume = json_util.loads(decode_cursor("mongo", since))
            except (ValueError, TypeError, InvalidBSON, InvalidDocument):
                resume = None
            if not isinstance(resume, dict):
                check_position(since, None)
        try:
            with _reachable():
                # Awaiting `watch` runs the aggregate that opens the stream on the server, so
                # every change after this returns is delivered.
                stream = await self._steps.watch(
                    [{"$match": match}],
                    full_document="updateLookup",
                    max_await_time_ms=int(AWAIT_SECONDS * 1000),
                    resume_after=resume,
                )
        except OperationFailure as exc:
            if since is not None and exc.code in _HISTORY_LOST:
                raise _expired(since) from exc
            if since is not None and exc.code not in _AUTH_FAILED | {_NOT_A_REPLICA_SET}:
                raise BadRequest(
                    f"MongoDB refused to resume from {since!r}: pass back the `cursor` an "
                    f"answer of /observe gave, or omit `since` to start from now ({exc})",
                    {"since": since},
                ) from exc
            if exc.code == _NOT_A_REPLICA_SET:
                raise StoreUnavailable(
                    "MongoStore needs MongoDB to run as a replica set (change streams): start "
                    "mongod with --replSet and run rs.initiate() once"
                ) from exc
            raise
        return _MongoChanges(stream, since)

    async def _unsubscribe(self, changes: Changes) -> None:
        assert isinstance(changes, _MongoChanges)
        with suppress(PyMongoError):
            await changes.stream.close()
