"""`SqliteStore`: the embedded default store (stdlib sqlite3, WAL, synchronous=FULL).

All statements run on one connection in the store's own thread, serialised by a lock, so the
event loop never blocks on disk and store calls never wait behind other work of the server's
default thread pool (the thread is the store's alone: a table scan or a job can't hold it).
Every write also appends the new document to a `changes` log in the same transaction; watchers
read that log. Watchers in this process are woken at once; changes made by other processes
sharing the file are seen within `POLL_SECONDS`.

The log is bounded in rows (`KEEP_CHANGES`) and in bytes (`KEEP_CHANGE_BYTES`; trimmed each
time a quarter of that has been logged, so it holds at most 1.25 times as much): a step whose
document is large (a long description) must not grow the store by a copy per change. A
watcher that falls further behind than the log reaches sees the latest version of each step,
not every intermediate one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

from ..errors import CursorExpired, StoreUnavailable
from ..model import Doc
from .base import (
    Changes,
    Expect,
    Store,
    check_position,
    decode_cursor,
    encode_cursor,
    matches,
    name_taken,
)

T = TypeVar("T")

POLL_SECONDS = 0.25
KEEP_CHANGES = 10_000
KEEP_CHANGE_BYTES = 64 << 20

SCHEMA = """
CREATE TABLE IF NOT EXISTS steps (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS steps_type_created ON steps (type, created);
CREATE INDEX IF NOT EXISTS steps_status ON steps (status);
CREATE TABLE IF NOT EXISTS runs (
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (name, seq)
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    doc TEXT NOT NULL
);
"""


def _dumps(doc: Doc) -> str:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)


class _SqliteChanges(Changes):
    def __init__(self, store: SqliteStore, name: str | None, after_seq: int) -> None:
        self.store = store
        self.name = name
        self.after_seq = after_seq
        self.wakeup = asyncio.Event()

    @property
    def cursor(self) -> str:
        return encode_cursor("sqlite", str(self.after_seq))

    async def next(self, timeout: float) -> Doc | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self.wakeup.clear()
            found = await self.store._run(self._read_next)
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            with suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, POLL_SECONDS)):  # not wait_for:
                    await self.wakeup.wait()  # it can swallow a cancel on 3.11

    def _read_next(self, db: sqlite3.Connection) -> Doc | None:
        if self.name is None:
            row = db.execute(
                "SELECT seq, doc FROM changes WHERE seq > ? ORDER BY seq LIMIT 1",
                (self.after_seq,),
            ).fetchone()
        else:
            row = db.execute(
                "SELECT seq, doc FROM changes WHERE seq > ? AND name = ? ORDER BY seq LIMIT 1",
                (self.after_seq, self.name),
            ).fetchone()
        if row is None:
            return None
        self.after_seq = row[0]
        doc: Doc = json.loads(row[1])
        return doc


def _make_private(path: Path) -> None:
    """Only the server's user may read or write the store (sandboxed code runs as another)."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with suppress(FileNotFoundError, PermissionError):
            if file.stat().st_uid == os.geteuid():
                os.chmod(file, 0o600)


class SqliteStore(Store):
    """Step metadata in one SQLite file; safe to share between processes on one host."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._watchers: set[_SqliteChanges] = set()
        self._writes = 0
        self._logged_bytes = 0  # written to the change log since it was last trimmed
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.keep_changes = KEEP_CHANGES
        self.keep_change_bytes = KEEP_CHANGE_BYTES

    # -- plumbing ---------------------------------------------------------------------------
    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            with self._lock:
                if self._db is None:
                    raise StoreUnavailable("the store is closed")
                try:
                    return fn(self._db)
                except sqlite3.OperationalError as exc:
                    raise StoreUnavailable(f"the embedded store failed: {exc}") from exc

        if self._executor is None:
            raise StoreUnavailable("the store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _write(
        self, fn: Callable[[sqlite3.Connection], T], logged: str | Sequence[str] | None = None
    ) -> T:
        """Run `fn` in a transaction; then wake this process's watchers of the step(s)
        `logged` (whose changes `fn` logged; None: it logged none)."""

        def transaction(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            self._writes += 1
            if self._writes % 1000 == 0 or self._logged_bytes > self.keep_change_bytes // 4:
                self._trim(db)
            return result

        result = await self._run(transaction)
        if logged is not None:  # each woken watcher reads the log: wake only those concerned
            names = {logged} if isinstance(logged, str) else set(logged)
            for watcher in self._watchers:
                if watcher.name is None or watcher.name in names:
                    watcher.wakeup.set()
        return result

    def _log(self, db: sqlite3.Connection, name: str, doc: Doc) -> None:
        text = _dumps(doc)
        self._logged_bytes += len(text)
        db.execute("INSERT INTO changes (name, doc) VALUES (?, ?)", (name, text))

    def _trim(self, db: sqlite3.Connection) -> None:
        """Keep the newest `keep_changes` entries of the change log, and of those only as many
        as fit in `keep_change_bytes` (the newest entry always stays)."""
        self._logged_bytes = 0
        db.execute(
            "DELETE FROM changes WHERE seq <= (SELECT MAX(seq) FROM changes) - ?",
            (self.keep_changes,),
        )
        row = db.execute(
            "SELECT seq FROM (SELECT seq, SUM(LENGTH(CAST(doc AS BLOB))) OVER "
            "(ORDER BY seq DESC) AS newer FROM changes) WHERE newer > ? ORDER BY seq DESC LIMIT 1",
            (self.keep_change_bytes,),
        ).fetchone()
        if row is not None:
            newest = db.execute("SELECT MAX(seq) FROM changes").fetchone()[0]
            db.execute("DELETE FROM changes WHERE seq <= ?", (min(row[0], newest - 1),))

    @staticmethod
    def _row_doc(db: sqlite3.Connection, name: str) -> Doc | None:
        row = db.execute("SELECT doc FROM steps WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    # -- lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        if self._db is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lo-store")
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        _make_private(self.path)  # before WAL: SQLite gives -wal and -shm the file's mode
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a finished step survives power loss too
        db.execute("PRAGMA busy_timeout=30000")
        db.executescript(SCHEMA)
        self._db = db

    async def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    # -- steps ------------------------------------------------------------------------------
    async def insert_many(self, docs: Sequence[Doc]) -> list[Doc]:
        def insert(db: sqlite3.Connection) -> list[Doc]:
            for doc in docs:
                try:
                    db.execute(
                        "INSERT INTO steps (name, type, status, created, doc) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (doc["name"], doc["type"], doc["status"], doc["_created"], _dumps(doc)),
                    )
                except sqlite3.IntegrityError:
                    raise name_taken(doc["name"]) from None
                self._log(db, doc["name"], doc)
            return list(docs)

        return await self._write(insert, [doc["name"] for doc in docs])

    async def get(self, name: str) -> Doc | None:
        return await self._run(lambda db: self._row_doc(db, name))

    async def find(
        self,
        *,
        types: Collection[str] | None = None,
        statuses: Collection[str] | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Doc]:
        where: list[str] = []
        args: list[Any] = []
        for column, values in (("type", types), ("status", statuses)):
            if values is not None:
                values = list(values)
                where.append(f"{column} IN ({','.join('?' * len(values))})" if values else "0")
                args.extend(values)
        sql = "SELECT doc FROM steps"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created, name LIMIT ? OFFSET ?"
        args += [-1 if limit is None else limit, skip]
        rows = await self._run(lambda db: db.execute(sql, args).fetchall())
        return [json.loads(r[0]) for r in rows]

    async def children(self, name: str) -> list[Doc]:
        sql = (
            "SELECT doc FROM steps WHERE EXISTS "
            "(SELECT 1 FROM json_each(steps.doc, '$.parents') WHERE json_each.value = ?) "
            "ORDER BY created"
        )
        rows = await self._run(lambda db: db.execute(sql, (name,)).fetchall())
        return [json.loads(r[0]) for r in rows]

    async def update(
        self,
        name: str,
        changes: Mapping[str, Any],
        *,
        expect: Expect | None = None,
        unset: Collection[str] = (),
        bump: bool = True,
    ) -> Doc | None:
        def update(db: sqlite3.Connection) -> Doc | None:
            doc = self._row_doc(db, name)
            if doc is None or not matches(doc, expect):
                return None
            doc.update(changes)
            for key in unset:
                doc.pop(key, None)
            if bump:
                doc["version"] = doc.get("version", 0) + 1
            db.execute(
                "UPDATE steps SET status = ?, doc = ? WHERE name = ?",
                (doc["status"], _dumps(doc), name),
            )
            if bump:
                self._log(db, name, doc)
            return doc

        return await self._write(update, name if bump else None)

    async def delete(self, name: str) -> Doc | None:
        def delete(db: sqlite3.Connection) -> Doc | None:
            doc = self._row_doc(db, name)
            if doc is None:
                return None
            db.execute("DELETE FROM steps WHERE name = ?", (name,))
            db.execute("DELETE FROM runs WHERE name = ?", (name,))
            self._log(db, name, {"name": name, "deleted": True})
            return doc

        return await self._write(delete, name)

    # -- run records ------------------------------------------------------------------------
    async def add_run(self, name: str, record: Doc) -> None:
        def add(db: sqlite3.Connection) -> None:
            (seq,) = db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM runs WHERE name = ?", (name,)
            ).fetchone()
            db.execute(
                "INSERT INTO runs (name, seq, doc) VALUES (?, ?, ?)", (name, seq, _dumps(record))
            )

        await self._write(add)

    async def runs(self, name: str, *, skip: int = 0, limit: int | None = None) -> list[Doc]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT doc FROM runs WHERE name = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
                (name, -1 if limit is None else limit, skip),
            ).fetchall()
        )
        return [json.loads(r[0]) for r in rows]

    # -- watching ---------------------------------------------------------------------------
    async def _subscribe(self, name: str | None, since: str | None = None) -> Changes:
        oldest, last = await self._run(
            lambda db: db.execute(
                "SELECT COALESCE(MIN(seq), 1), COALESCE(MAX(seq), 0) FROM changes"
            ).fetchone()
        )
        if since is not None:
            position = decode_cursor("sqlite", since)
            if not position.isascii() or not position.isdigit():
                check_position(since, None)
            after = int(position)
            # The log is trimmed (the newest entry always stays, so `last` is the newest seq
            # ever given): a cursor before the oldest kept change would silently skip changes;
            # one beyond `last` belongs to another (or a recreated) store.
            if not oldest - 1 <= after <= last:
                raise CursorExpired(
                    "the changes after this cursor are no longer kept: start again from the "
                    "current cursor (omit `since`) and re-read the steps you follow",
                    {"since": since},
                )
            last = after
        changes = _SqliteChanges(self, name, last)
        self._watchers.add(changes)
        return changes

    async def _unsubscribe(self, changes: Changes) -> None:
        self._watchers.discard(changes)
