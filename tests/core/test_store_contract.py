"""The store port's contract, run against every adapter available.

`SqliteStore` always runs (in tmp_path). `MongoStore` runs whenever `LO_TEST_MONGO_URL` points
at a MongoDB replica set (change streams need one), e.g.
`LO_TEST_MONGO_URL=mongodb://127.0.0.1:27017/?replicaSet=rs0`; each test gets a fresh database
that is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from learning_orchestra.core.errors import BadRequest, CursorExpired, NameTaken, StoreUnavailable
from learning_orchestra.core.model import Doc, new_step
from learning_orchestra.core.store import SqliteStore, Store
from learning_orchestra.core.store.base import encode_cursor

MONGO_URL = os.environ.get("LO_TEST_MONGO_URL")
MONGO_SKIP = "LO_TEST_MONGO_URL not set: MongoStore contract tests skipped"

# Generous bound for "is delivered": a watcher must see a change well within this.
DELIVERY = 5.0


def step(
    name: str,
    step_type: str = "dataset/csv",
    *,
    parents: list[str] | None = None,
    created: float | None = None,
    **extra: Any,
) -> Doc:
    if created is not None:
        extra["_created"] = created
    return new_step(
        name,
        step_type,
        alias="datasetName",
        parameters={"url": f"https://example.org/{name}.csv", "nested": {"k": [1, 2.5, None]}},
        parents=parents or [],
        waiting_for=[],
        description=f"step {name}",
        extra=extra,
    )


def _mongo_db_url(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "mongo", marks=[pytest.mark.mongo, pytest.mark.skipif(not MONGO_URL, reason=MONGO_SKIP)]
        ),
    ]
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        sqlite = SqliteStore(tmp_path / "store.sqlite3")
        await sqlite.open()
        yield sqlite
        await sqlite.close()
        return

    from pymongo import AsyncMongoClient

    from learning_orchestra.core.store.mongo import MongoStore

    assert MONGO_URL
    database = f"lo_test_{uuid.uuid4().hex[:12]}"
    mongo = MongoStore(_mongo_db_url(MONGO_URL, database))
    await mongo.open()
    try:
        yield mongo
    finally:
        await mongo.close()
        admin: AsyncMongoClient[Doc] = AsyncMongoClient(MONGO_URL)
        try:
            await admin.drop_database(database)
        finally:
            await admin.close()


def names(docs: list[Doc]) -> list[str]:
    return [d["name"] for d in docs]


# -- lifecycle ----------------------------------------------------------------------------------
async def test_open_is_idempotent_and_ping_answers(store: Store) -> None:
    await store.open()
    await store.ping()


async def test_closed_store_is_unavailable(store: Store) -> None:
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.get("a")
    await store.open()  # and it can be opened again
    await store.ping()


# -- insert / get -------------------------------------------------------------------------------
async def test_insert_get_round_trip(store: Store) -> None:
    doc = step("iris", _lease=None, _artifact={"path": "/data/iris", "format": "parquet"})
    assert await store.insert(doc) == doc
    got = await store.get("iris")
    assert got == doc
    assert "_id" not in got
    assert got["datasetName"] == "iris"
    assert got["version"] == 1
    assert await store.get("missing") is None


async def test_duplicate_name_is_refused(store: Store) -> None:
    await store.insert(step("iris", "dataset/csv"))
    with pytest.raises(NameTaken) as raised:
        await store.insert(step("iris", "model/scikitlearn"))
    assert "'iris' is already taken" in raised.value.message
    assert raised.value.detail == {"name": "iris"}
    got = await store.get("iris")
    assert got is not None and got["type"] == "dataset/csv"  # the first one stays


async def test_concurrent_inserts_exactly_one_wins(store: Store) -> None:
    types = [f"type{i}" for i in range(8)]
    results = await asyncio.gather(
        *(store.insert(step("race", t)) for t in types), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if isinstance(r, NameTaken)]
    assert len(winners) == 1 and len(losers) == len(types) - 1, results
    got = await store.get("race")
    assert got is not None and got["type"] == winners[0]["type"]
    assert names(await store.find()) == ["race"]


async def test_insert_many_records_all_or_none(store: Store) -> None:
    """The outputs of one multi-output job are recorded together, or none of them."""
    async with store.watch() as changes:
        inserted = await store.insert_many([step("outA"), step("outB")])
        assert names(inserted) == ["outA", "outB"]
        assert {(await changes.next(5))["name"] for _ in range(2)} == {"outA", "outB"}
    with pytest.raises(NameTaken) as raised:
        await store.insert_many([step("outC"), step("outB", "model/scikitlearn"), step("outD")])
    assert raised.value.detail == {"name": "outB"}
    assert names(await store.find()) == ["outA", "outB"]  # outC was not left behind
    got = await store.get("outB")
    assert got is not None and got["type"] == "dataset/csv"


# -- find ---------------------------------------------------------------------------------------
async def test_find_in_creation_order_with_filters(store: Store) -> None:
    # Inserted out of order: creation order is `_created`, not insertion order.
    for name, step_type, created in [
        ("c", "dataset/csv", 3.0),
        ("a", "dataset/csv", 1.0),
        ("e", "model/scikitlearn", 5.0),
        ("b", "model/scikitlearn", 2.0),
        ("d", "train/scikitlearn", 4.0),
    ]:
        await store.insert(step(name, step_type, created=created))
    await store.update("b", {"status": "finished"})
    await store.update("d", {"status": "failed"})

    assert names(await store.find()) == ["a", "b", "c", "d", "e"]
    assert names(await store.find(types=["dataset/csv"])) == ["a", "c"]
    assert names(await store.find(types={"model/scikitlearn", "train/scikitlearn"})) == [
        "b",
        "d",
        "e",
    ]
    assert names(await store.find(statuses=["pending"])) == ["a", "c", "e"]
    assert names(await store.find(statuses=("finished", "failed"))) == ["b", "d"]
    assert names(await store.find(types=["model/scikitlearn"], statuses=["pending"])) == ["e"]
    assert await store.find(types=[]) == []
    assert await store.find(statuses=["running"]) == []
    assert names(await store.find(skip=1, limit=2)) == ["b", "c"]
    assert names(await store.find(skip=3)) == ["d", "e"]
    assert names(await store.find(limit=1)) == ["a"]
    assert await store.find(limit=0) == []
    assert await store.find(skip=10) == []
    assert names(await store.find(statuses=["pending"], skip=1, limit=5)) == ["c", "e"]
    assert all("_id" not in d for d in await store.find())


# -- update -------------------------------------------------------------------------------------
async def test_update_bumps_version_and_returns_new_document(store: Store) -> None:
    original = await store.insert(step("s"))
    new = await store.update("s", {"status": "running", "startedAt": "now", "progress": 0.5})
    assert new is not None
    assert new["version"] == 2
    assert new["status"] == "running" and new["startedAt"] == "now" and new["progress"] == 0.5
    assert {k: v for k, v in new.items() if k not in ("status", "startedAt", "progress")} == {
        **{k: v for k, v in original.items() if k not in ("status", "startedAt", "progress")},
        "version": 2,
    }
    assert "_id" not in new
    assert await store.get("s") == new
    again = await store.update("s", {"progress": 1.0})
    assert again is not None and again["version"] == 3


async def test_update_without_bump_keeps_the_version(store: Store) -> None:
    await store.insert(step("quiet"))
    async with store.watch("quiet") as changes:
        quiet = await store.update("quiet", {"_lease": {"expires": 2.0}}, bump=False)
        assert quiet is not None and quiet["version"] == 1 and quiet["_lease"]["expires"] == 2.0
        assert await store.get("quiet") == quiet
        loud = await store.update("quiet", {"progress": 1})
        assert loud is not None and loud["version"] == 2
        # A change stream (Mongo) may also deliver the quiet update; observers tell them
        # apart by `version`, which is what this checks.
        seen = await changes.next(5)
        while seen is not None and seen["version"] == 1:
            seen = await changes.next(5)
        assert seen is not None and seen["version"] == 2


async def test_update_missing_returns_none(store: Store) -> None:
    assert await store.update("missing", {"status": "running"}) is None
    assert await store.get("missing") is None


async def test_update_respects_scalar_expect(store: Store) -> None:
    await store.insert(step("s"))
    assert await store.update("s", {"status": "finished"}, expect={"status": "running"}) is None
    unchanged = await store.get("s")
    assert unchanged is not None
    assert unchanged["status"] == "pending" and unchanged["version"] == 1
    new = await store.update("s", {"status": "running"}, expect={"status": "pending"})
    assert new is not None and new["status"] == "running" and new["version"] == 2


async def test_update_respects_collection_expect(store: Store) -> None:
    await store.insert(step("s"))
    terminal = {"finished", "failed", "cancelled"}
    assert await store.update("s", {"stale": True}, expect={"status": terminal}) is None
    assert await store.update("s", {"stale": True}, expect={"status": ("x", "y")}) is None
    new = await store.update("s", {"status": "running"}, expect={"status": ["pending", "running"]})
    assert new is not None and new["status"] == "running"
    both = await store.update("s", {"runs": 1}, expect={"status": ["running"], "finished": False})
    assert both is not None and both["runs"] == 1 and both["version"] == 3
    assert (
        await store.update("s", {"runs": 2}, expect={"status": ["running"], "finished": True})
        is None
    )


async def test_update_respects_dotted_expect(store: Store) -> None:
    await store.insert(step("s"))
    # No lease yet: a missing value counts as None.
    leased = await store.update(
        "s", {"_lease": {"owner": "a", "until": 10.0}}, expect={"_lease.owner": None}
    )
    assert leased is not None and leased["_lease"] == {"owner": "a", "until": 10.0}
    assert (
        await store.update("s", {"_lease": {"owner": "b"}}, expect={"_lease.owner": None}) is None
    )
    assert await store.update("s", {"status": "running"}, expect={"_lease.owner": "b"}) is None
    renewed = await store.update(
        "s", {"_lease": {"owner": "a", "until": 20.0}}, expect={"_lease.owner": "a"}
    )
    assert renewed is not None and renewed["_lease"]["until"] == 20.0
    taken = await store.update(
        "s", {"_lease": {"owner": "b", "until": 30.0}}, expect={"_lease.owner": ["a", None]}
    )
    assert taken is not None and taken["_lease"]["owner"] == "b" and taken["version"] == 4


async def test_update_unset_removes_keys(store: Store) -> None:
    await store.insert(step("s", _lease={"owner": "a"}, _cancel=True))
    new = await store.update("s", {"status": "failed"}, unset=["_lease", "_cancel", "_absent"])
    assert new is not None
    assert "_lease" not in new and "_cancel" not in new and "_absent" not in new
    assert new["status"] == "failed" and new["version"] == 2
    assert await store.get("s") == new
    only_unset = await store.update("s", {}, unset=["description"])
    assert only_unset is not None and "description" not in only_unset
    assert only_unset["version"] == 3


async def test_concurrent_conditional_updates_exactly_one_wins(store: Store) -> None:
    await store.insert(step("s"))
    results = await asyncio.gather(
        *(
            store.update(
                "s",
                {"status": "running", "_lease": {"owner": f"w{i}"}},
                expect={"status": "pending"},
            )
            for i in range(8)
        )
    )
    won = [r for r in results if r is not None]
    assert len(won) == 1
    final = await store.get("s")
    assert final == won[0] and final["version"] == 2


# -- children -----------------------------------------------------------------------------------
async def test_children_lists_steps_with_that_parent(store: Store) -> None:
    await store.insert(step("a", created=1.0))
    await store.insert(step("c", "model/x", parents=["a", "b"], created=3.0))
    await store.insert(step("b", "model/x", parents=["a"], created=2.0))
    await store.insert(step("d", "model/x", parents=["b"], created=4.0))
    await store.insert(step("ab", "model/x", parents=["aa"], created=5.0))
    assert names(await store.children("a")) == ["b", "c"]
    assert names(await store.children("b")) == ["c", "d"]
    assert await store.children("d") == []
    assert await store.children("missing") == []
    assert all("_id" not in d for d in await store.children("a"))


# -- delete -------------------------------------------------------------------------------------
async def test_delete_returns_document_and_removes_runs(store: Store) -> None:
    doc = await store.insert(step("s"))
    await store.insert(step("other"))
    await store.add_run("s", {"n": 1})
    await store.add_run("other", {"n": 1})
    removed = await store.delete("s")
    assert removed == doc
    assert await store.get("s") is None
    assert await store.runs("s") == []
    assert await store.runs("other") == [{"n": 1}]
    assert names(await store.find()) == ["other"]
    assert await store.delete("s") is None
    # The name is free again, with no run records left over.
    await store.insert(step("s", "model/x"))
    assert await store.runs("s") == []
    await store.add_run("s", {"n": "new"})
    assert await store.runs("s") == [{"n": "new"}]


# -- runs ---------------------------------------------------------------------------------------
async def test_runs_newest_first_with_skip_and_limit(store: Store) -> None:
    await store.insert(step("s"))
    for i in range(5):
        await store.add_run("s", {"n": i, "status": "finished", "detail": {"metrics": [i]}})
    assert [r["n"] for r in await store.runs("s")] == [4, 3, 2, 1, 0]
    assert (await store.runs("s"))[0] == {"n": 4, "status": "finished", "detail": {"metrics": [4]}}
    assert [r["n"] for r in await store.runs("s", skip=1, limit=2)] == [3, 2]
    assert [r["n"] for r in await store.runs("s", skip=3)] == [1, 0]
    assert [r["n"] for r in await store.runs("s", limit=1)] == [4]
    assert await store.runs("s", limit=0) == []
    assert await store.runs("s", skip=5) == []
    assert await store.runs("missing") == []


async def test_concurrent_add_run_keeps_every_record(store: Store) -> None:
    await store.insert(step("s"))
    await asyncio.gather(*(store.add_run("s", {"n": i}) for i in range(10)))
    assert sorted(r["n"] for r in await store.runs("s")) == list(range(10))
    await store.add_run("s", {"n": "last"})
    assert (await store.runs("s", limit=1)) == [{"n": "last"}]


# -- watch --------------------------------------------------------------------------------------
async def test_watch_delivers_change_made_right_after_entering(store: Store) -> None:
    await store.insert(step("s"))
    async with store.watch("s") as changes:
        new = await store.update("s", {"status": "running"})
        got = await changes.next(DELIVERY)
    assert new is not None
    assert got == new
    assert got["version"] == 2 and got["status"] == "running"
    assert "_id" not in got


async def test_watch_wakes_a_waiting_watcher(store: Store) -> None:
    await store.insert(step("s"))

    async def later() -> Doc | None:
        await asyncio.sleep(0.2)
        return await store.update("s", {"progress": 0.5})

    async with store.watch("s") as changes:
        writer = asyncio.create_task(later())
        started = time.monotonic()
        got = await changes.next(DELIVERY)
        waited = time.monotonic() - started
        new = await writer
    assert got == new
    assert waited < DELIVERY


async def test_watch_delivers_insert_of_a_new_step(store: Store) -> None:
    async with store.watch("fresh") as changes:
        doc = await store.insert(step("fresh"))
        got = await changes.next(DELIVERY)
    assert got == doc


async def test_watch_sequence_ends_on_the_latest_version(store: Store) -> None:
    await store.insert(step("s"))
    async with store.watch("s") as changes:
        for i in range(3):
            await store.update("s", {"progress": i})
        seen = [await changes.next(DELIVERY) for _ in range(3)]
    versions = [d["version"] for d in seen if d is not None]
    assert len(versions) == 3
    assert versions == sorted(versions)  # after-images, never older than a previous one
    assert versions[-1] == 4


async def test_watch_delivers_deletion(store: Store) -> None:
    await store.insert(step("s"))
    async with store.watch("s") as changes:
        await store.delete("s")
        got = await changes.next(DELIVERY)
    assert got == {"name": "s", "deleted": True}


async def test_watch_times_out_with_none(store: Store) -> None:
    await store.insert(step("s"))
    await store.insert(step("other"))
    async with store.watch("s") as changes:
        await store.update("other", {"progress": 1})  # not this step's change
        started = time.monotonic()
        assert await changes.next(0.5) is None
        waited = time.monotonic() - started
    assert 0.4 <= waited < 0.5 + 2.0


async def test_watch_filters_other_steps(store: Store) -> None:
    await store.insert(step("s"))
    await store.insert(step("other"))
    async with store.watch("s") as changes:
        await store.update("other", {"progress": 1})
        await store.delete("other")
        mine = await store.update("s", {"progress": 2})
        got = await changes.next(DELIVERY)
    assert got == mine


async def test_watch_all_steps(store: Store) -> None:
    await store.insert(step("a"))
    async with store.watch(None) as changes:
        b = await store.insert(step("b"))
        a = await store.update("a", {"status": "running"})
        await store.delete("b")
        got = [await changes.next(DELIVERY) for _ in range(3)]
    assert got == [b, a, {"name": "b", "deleted": True}]


async def test_two_watchers_both_see_a_change(store: Store) -> None:
    await store.insert(step("s"))
    async with store.watch("s") as one, store.watch(None) as every:
        new = await store.update("s", {"status": "running"})
        assert await one.next(DELIVERY) == new
        assert await every.next(DELIVERY) == new


# -- SqliteStore only: several processes on one file, durability --------------------------------
async def _after(delay: float, write: Callable[[], Awaitable[Any]]) -> Any:
    await asyncio.sleep(delay)
    return await write()


async def test_sqlite_instances_on_one_file_see_each_others_changes(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    first, second = SqliteStore(path), SqliteStore(path)
    await first.open()
    await second.open()
    try:
        async with first.watch("s") as changes:
            # Each change is made by `second` while `first` is already waiting for it.
            doc = step("s")
            writes = [
                lambda: second.insert(doc),
                lambda: second.update("s", {"status": "running"}),
                lambda: second.delete("s"),
            ]
            seen, written = [], []
            for write in writes:
                writer = asyncio.create_task(_after(0.1, write))
                started = time.monotonic()
                seen.append(await changes.next(1.0))
                waited = time.monotonic() - started
                written.append(await writer)
                assert waited < 0.9, f"a change by another instance was seen after {waited:.2f}s"
            assert seen == [doc, written[1], {"name": "s", "deleted": True}]
            assert written[1]["version"] == 2
        await first.insert(step("t"))
        assert await second.get("t") is not None
        with pytest.raises(NameTaken):
            await second.insert(step("t"))  # uniqueness holds across processes
    finally:
        await first.close()
        await second.close()


async def test_sqlite_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "durable.sqlite3"
    store = SqliteStore(path)
    await store.open()
    await store.insert(step("a", created=1.0))
    await store.insert(step("b", parents=["a"], created=2.0))
    updated = await store.update("a", {"status": "finished", "_artifact": {"path": "/x"}})
    await store.add_run("a", {"n": 1})
    await store.add_run("a", {"n": 2})
    await store.close()

    reopened = SqliteStore(path)
    await reopened.open()
    try:
        assert await reopened.get("a") == updated
        assert names(await reopened.find()) == ["a", "b"]
        assert names(await reopened.children("a")) == ["b"]
        assert await reopened.runs("a") == [{"n": 2}, {"n": 1}]
        with pytest.raises(NameTaken):
            await reopened.insert(step("a"))
        # A watcher opened after reopening sees only new changes.
        async with reopened.watch(None) as changes:
            assert await changes.next(0.3) is None
            new = await reopened.update("b", {"status": "running"})
            assert await changes.next(DELIVERY) == new
    finally:
        await reopened.close()


async def test_sqlite_change_log_is_bounded_in_bytes(tmp_path: Path) -> None:
    """Every change logs a full copy of the document: a large document changed many times must
    not grow the store by a copy per change (issue 6: 15 MB x 53 versions = 1.7 GB)."""
    sqlite = SqliteStore(tmp_path / "store.sqlite3")
    sqlite.keep_change_bytes = 1 << 20  # 1 MB of log
    await sqlite.open()
    try:
        await sqlite.insert(step("big", description="x" * 100_000))
        async with sqlite.watch("big") as changes:
            for version in range(60):  # 6 MB of changes
                await sqlite.update("big", {"description": f"{version}" + "y" * 100_000})
            # a watcher that fell behind still gets the latest version
            latest = None
            while (change := await changes.next(0.1)) is not None:
                latest = change
        assert latest is not None and latest["description"].startswith("59")

        def logged(db: Any) -> tuple[int, int]:
            row = db.execute("SELECT COUNT(*), SUM(LENGTH(doc)) FROM changes").fetchone()
            return int(row[0]), int(row[1])

        rows, size = await sqlite._run(logged)
        assert rows < 61 and size <= (1 << 20) * 5 // 4  # trimmed each quarter of the budget
    finally:
        await sqlite.close()


# -- cursors (GET /observe?since=) --------------------------------------------------------------
async def test_watch_since_a_cursor_replays_the_changes_after_it(store: Store) -> None:
    await store.insert(step("a"))
    async with store.watch(None) as changes:
        start = changes.cursor  # "now", before any change
    b = await store.insert(step("b"))
    a = await store.update("a", {"status": "running"})
    await store.delete("b")
    async with store.watch(None, since=start) as changes:
        got = [await changes.next(DELIVERY) for _ in range(3)]
        after = changes.cursor
    assert got == [b, a, {"name": "b", "deleted": True}]
    assert isinstance(after, str) and after != start
    # resuming after the last one delivered: nothing old again, only what comes next
    async with store.watch(None, since=after) as changes:
        assert await changes.next(0.3) is None
        new = await store.update("a", {"progress": 1})
        assert await changes.next(DELIVERY) == new


async def test_watch_since_resumes_right_after_the_change_delivered(store: Store) -> None:
    async with store.watch(None) as changes:
        first = await store.insert(step("a"))
        second = await store.insert(step("b"))
        assert await changes.next(DELIVERY) == first
        middle = changes.cursor
    async with store.watch(None, since=middle) as changes:
        assert await changes.next(DELIVERY) == second


async def test_watch_since_refuses_a_cursor_that_is_not_one(store: Store) -> None:
    for bad in ("nonsense", "", "c3FsaXRlOg", "bW9uZ286eA"):  # "sqlite:", "mongo:x"
        with pytest.raises(BadRequest):
            async with store.watch(None, since=bad):
                pass


async def test_sqlite_cursor_before_the_kept_changes_is_expired(tmp_path: Path) -> None:
    sqlite = SqliteStore(tmp_path / "store.sqlite3")
    sqlite.keep_changes = 5
    await sqlite.open()
    try:
        async with sqlite.watch(None) as changes:
            old = changes.cursor
        await sqlite.insert(step("s"))
        for i in range(20):
            await sqlite.update("s", {"progress": i})
        await sqlite._run(sqlite._trim)  # as every 1000th write does
        with pytest.raises(CursorExpired):
            async with sqlite.watch(None, since=old):
                pass
        # a cursor from beyond this store's log (another, or a recreated, store) too
        with pytest.raises(CursorExpired):
            async with sqlite.watch(None, since=encode_cursor("sqlite", "999999")):
                pass
        async with sqlite.watch(None) as changes:
            now = changes.cursor
        async with sqlite.watch(None, since=now) as changes:
            assert await changes.next(0.1) is None
    finally:
        await sqlite.close()
