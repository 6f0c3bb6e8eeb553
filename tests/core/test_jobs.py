"""The supervisor with real worker processes, a real SQLite store and a real volume."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from pydantic import BaseModel, ConfigDict

from learning_orchestra.core.artifacts import ArtifactVolume
from learning_orchestra.core.errors import Conflict, Invalid, MethodNotAllowed
from learning_orchestra.core.jobs import INTERRUPTED, SWEEP_MIN_AGE_SECONDS, Supervisor
from learning_orchestra.core.model import new_step
from learning_orchestra.core.service import StepService
from learning_orchestra.core.settings import Settings
from learning_orchestra.core.steptype import StepType
from learning_orchestra.core.store import SqliteStore
from learning_orchestra.steps.dataset import STEP_TYPES
from learning_orchestra.steps.observe import wait_for

DATASET_TYPES = {t.tool: t for t in STEP_TYPES}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    value: Any = None
    parent: str | None = None
    pidfile: str | None = None


RUNNERS = [
    "write_json",
    "describe_references",
    "succeed",
    "add_parent",
    "raise_error",
    "raise_job_failed",
    "sleep",
    "exit_abruptly",
    "chatty",
    "hog_memory",
    "spawn_grandchild",
    "report_progress",
]
TYPES = {
    r: StepType(
        step="test", tool=r, request=Body, runner=f"tests.runners:{r}", parent_fields=("parent",)
    )
    for r in RUNNERS
}


class MultiBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    keys: list[str]
    parent: str | None = None
    fail: str | None = None
    skip: str | None = None
    boom: bool = False
    gate: str | None = None


# A multi-output job (StepType.outputs): output `{name}{key}` per key (tests.runners).
TYPES["multi"] = StepType(
    step="test",
    tool="multi",
    request=MultiBody,
    runner="tests.runners:produce_outputs",
    parent_fields=("parent",),
    patchable=False,
    outputs=lambda body: {f"{body['name']}{key}": key for key in body["keys"]},
)
# The same runner under another step kind: LO_MAX_JOBS is one budget for every kind.
TYPES["sleep_elsewhere"] = StepType(
    step="elsewhere", tool="sleep", request=Body, runner="tests.runners:sleep"
)


class Harness:
    def __init__(self, root: Path, **settings: Any) -> None:
        # allow_private_urls: datasets come from the local files_server (an SSRF opt-in)
        self.settings = Settings(
            data_dir=root, lease_seconds=1.5, max_jobs=2, allow_private_urls=True, **settings
        )
        self.store = SqliteStore(root / "store.sqlite3")
        self.volume = ArtifactVolume(root)
        self.supervisor = Supervisor(
            self.store, self.volume, self.settings, [*TYPES.values(), *DATASET_TYPES.values()]
        )
        self.steps = StepService(self.store, self.volume, self.supervisor)

    async def submit(self, runner: str, name: str, **params: Any) -> dict[str, Any]:
        return await self.steps.create(TYPES[runner], {"name": name, **params})

    async def wait(self, name: str, timeout: float = 30) -> dict[str, Any]:
        return await wait_for(self.store, name, timeout)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path)
    await h.store.open()
    await h.supervisor.start()
    yield h
    await h.supervisor.stop()
    await h.store.close()


async def test_success_records_output_metadata_and_run(harness: Harness) -> None:
    await harness.submit("succeed", "a", value=7)
    doc = await harness.wait("a")
    assert doc["status"] == "finished" and doc["finished"] is True
    assert doc["answer"] == 42 and doc["runs"] == 1 and doc["progress"] == {"step": 1}
    assert doc["durationSeconds"] >= 0 and doc["startedAt"] and doc["finishedAt"]
    manifest = harness.volume.verify("a", doc["_artifact"])
    assert set(manifest["files"]) == {"out.txt"}
    assert "_lease" not in doc
    (run,) = await harness.store.runs("a")
    assert run["status"] == "finished"
    assert "hello from the job" in run["functionMessage"]
    assert not (harness.volume.root / "scratch" / "a").exists()


async def test_exception_fails_step_with_message_and_traceback(harness: Harness) -> None:
    await harness.submit("raise_error", "bad")
    doc = await harness.wait("bad")
    assert doc["status"] == "failed" and doc["finished"] is False
    assert doc["exception"] == "ValueError: boom: the value was wrong"
    assert "raise ValueError" in doc["traceback"]
    await harness.submit("raise_job_failed", "clear")
    doc = await harness.wait("clear")
    assert doc["exception"] == "the input has no column 'x'" and doc["traceback"] is None


async def test_worker_that_dies_fails_the_step(harness: Harness) -> None:
    await harness.submit("exit_abruptly", "dies")
    doc = await harness.wait("dies")
    assert doc["status"] == "failed"
    assert "worker process died (exit code 3)" in doc["exception"]


async def test_timeout_kills_the_job(tmp_path: Path) -> None:
    h = Harness(tmp_path, job_timeout=1.0)
    await h.store.open()
    await h.supervisor.start()
    try:
        await h.submit("sleep", "slow", value=60)
        doc = await h.wait("slow")
        assert doc["status"] == "failed"
        assert "timed out" in doc["exception"] and "LO_JOB_TIMEOUT=1" in doc["exception"]
        assert doc["durationSeconds"] < 15
    finally:
        await h.supervisor.stop()
        await h.store.close()


async def test_memory_limit_kills_the_job(tmp_path: Path) -> None:
    h = Harness(tmp_path, job_memory_mb=300)
    await h.store.open()
    await h.supervisor.start()
    try:
        await h.submit("hog_memory", "hog")
        doc = await h.wait("hog")
        assert doc["status"] == "failed"
        assert "out of memory" in doc["exception"] and "LO_JOB_MEMORY_MB=300" in doc["exception"]
    finally:
        await h.supervisor.stop()
        await h.store.close()


async def test_captured_output_is_kept_within_the_log_limit(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_log_mb=1)
    await h.store.open()
    await h.supervisor.start()
    try:
        await h.submit("chatty", "chatty", value=20)  # 20 MB printed under a 1 MB limit
        doc = await h.wait("chatty")
        assert doc["status"] == "finished", doc["exception"]
        log = h.volume.log_path("chatty")
        assert log.stat().st_size <= 1024 * 1024
        text = log.read_text()
        assert text.startswith("[... ") and "bytes of earlier output dropped" in text
        assert text.endswith("the last line\n")
    finally:
        await h.supervisor.stop()
        await h.store.close()


async def test_cancel_kills_worker_and_its_children(harness: Harness, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    await harness.submit("spawn_grandchild", "busy", pidfile=str(pidfile))
    async with harness.store.watch("busy") as changes:
        while not pidfile.exists() or not pidfile.read_text():
            await changes.next(0.2)
    child = psutil.Process(int(pidfile.read_text()))
    doc = await harness.steps.cancel(None, "busy")
    assert doc["status"] == "cancelled" and doc["exception"] == "cancelled: by request"
    await asyncio.sleep(0.2)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    with pytest.raises(Conflict):
        await harness.steps.cancel(None, "busy")


async def test_cancel_pending_step(harness: Harness) -> None:
    await harness.submit("sleep", "first", value=30)
    await harness.submit("add_parent", "child", parent="first")
    doc = await harness.steps.cancel(None, "child")
    assert doc["status"] == "cancelled"
    await harness.steps.cancel(None, "first")


async def test_cancel_from_another_replica_through_the_store(tmp_path: Path) -> None:
    """A cancel request recorded by another process reaches the supervisor running the job."""
    h = Harness(tmp_path)
    await h.store.open()
    await h.supervisor.start()
    other = SqliteStore(tmp_path / "store.sqlite3")
    await other.open()
    try:
        await h.submit("sleep", "remote", value=60)
        async with h.store.watch("remote") as changes:
            while (await h.store.get("remote"))["status"] != "running":
                await changes.next(0.5)
        await other.update("remote", {"_cancel": "from elsewhere"}, expect={"status": "running"})
        doc = await h.wait("remote", timeout=10)
        assert doc["status"] == "cancelled" and "from elsewhere" in doc["exception"]
    finally:
        await other.close()
        await h.supervisor.stop()
        await h.store.close()


async def test_child_waits_for_parent_then_runs(harness: Harness) -> None:
    await harness.submit("sleep", "slowparent", value=0.5)
    child = await harness.submit("add_parent", "kid", parent="slowparent")
    assert child["status"] == "pending" and child["waitingFor"] == ["slowparent"]
    assert child["parents"] == ["slowparent"]
    doc = await harness.wait("kid")
    # sleep writes no out.txt, so the child fails reading it: the point is it ran after.
    parent = await harness.store.get("slowparent")
    assert parent["status"] == "finished"
    assert doc["startedAt"] >= parent["finishedAt"]


async def test_chain_of_results(harness: Harness) -> None:
    await harness.submit("succeed", "one", value=1)
    await harness.submit("add_parent", "two", parent="one")
    await harness.submit("add_parent", "three", parent="two")
    doc = await harness.wait("three")
    assert doc["status"] == "finished", doc["exception"]
    out = harness.volume.artifact_dir("three", doc["_artifact"]) / "out.txt"
    assert out.read_text() == "3"


async def test_failed_parent_fails_waiting_child(harness: Harness) -> None:
    await harness.submit("sleep", "p", value=0.3)
    await harness.submit("add_parent", "c", parent="p")
    await harness.steps.cancel(None, "p")
    doc = await harness.wait("c")
    assert doc["status"] == "failed"
    assert "parent step 'p' cancelled" in doc["exception"]


async def test_deleted_parent_fails_waiting_child(harness: Harness) -> None:
    await harness.submit("sleep", "gone", value=30)
    await harness.submit("add_parent", "orphan", parent="gone")
    await harness.steps.delete(None, "gone")
    doc = await harness.wait("orphan")
    assert doc["status"] == "failed" and "'gone' was deleted" in doc["exception"]


async def test_unknown_or_failed_parent_is_rejected_up_front(harness: Harness) -> None:
    with pytest.raises(Invalid, match="no step named 'nope'"):
        await harness.submit("add_parent", "x", parent="nope")
    await harness.submit("raise_error", "broken")
    await harness.wait("broken")
    with pytest.raises(Invalid, match="'broken' is failed"):
        await harness.submit("add_parent", "y", parent="broken")


async def test_rerun_keeps_previous_output_until_success_and_marks_children_stale(
    harness: Harness,
) -> None:
    await harness.submit("succeed", "base", value=1)
    first = await harness.wait("base")
    await harness.submit("add_parent", "derived", parent="base")
    assert (await harness.wait("derived"))["stale"] is False
    await harness.steps.rerun(TYPES["succeed"], "base", {"value": 5})
    second = await harness.wait("base")
    assert second["runs"] == 2 and second["_artifact"] != first["_artifact"]
    assert not harness.volume.artifact_dir("base", first["_artifact"]).exists()
    assert (harness.volume.artifact_dir("base", second["_artifact"]) / "out.txt").read_text() == "5"
    assert (await harness.store.get("derived"))["stale"] is True
    runs = await harness.store.runs("base")
    assert [r["run"] for r in runs] == [2, 1]


async def test_rerun_of_busy_step_conflicts(harness: Harness) -> None:
    await harness.submit("sleep", "busy", value=30)
    with pytest.raises(Conflict):
        await harness.steps.rerun(TYPES["sleep"], "busy", {"value": 1})
    await harness.steps.cancel(None, "busy")


async def test_one_budget_of_jobs_for_every_step_type(harness: Harness) -> None:
    for i in range(4):
        await harness.submit("sleep" if i % 2 else "sleep_elsewhere", f"s{i}", value=30)
    await asyncio.sleep(2)
    running = await harness.store.find(statuses=["running"])
    pending = await harness.store.find(statuses=["pending"])
    assert len(running) == 2 and len(pending) == 2  # LO_MAX_JOBS=2, shared by every step type
    for i in range(4):
        await harness.steps.delete(None, f"s{i}")


async def test_restart_recovery(tmp_path: Path) -> None:
    """A step whose worker died with its server becomes failed 'interrupted' once the lease
    expires; pending steps are run by the next supervisor."""
    store = SqliteStore(tmp_path / "store.sqlite3")
    await store.open()
    orphan = new_step(
        "orphan",
        "test/sleep",
        alias=None,
        parameters={"name": "orphan"},
        parents=[],
        waiting_for=[],
    )
    orphan.update(status="running", _lease={"owner": "dead-host:1:abc", "expires": 0.0})
    await store.insert(orphan)
    queued = new_step(
        "queued",
        "test/succeed",
        alias=None,
        parameters={"name": "queued", "value": 3},
        parents=[],
        waiting_for=[],
    )
    await store.insert(queued)
    await store.close()

    h = Harness(tmp_path)
    await h.store.open()
    await h.supervisor.recover()
    await h.supervisor.start()
    try:
        doc = await h.wait("orphan", timeout=5)
        assert doc["status"] == "failed" and doc["exception"] == INTERRUPTED
        assert (await h.wait("queued"))["status"] == "finished"
        assert (await h.store.runs("orphan"))[0]["exception"] == INTERRUPTED
    finally:
        await h.supervisor.stop()
        await h.store.close()


async def test_live_lease_is_not_taken_over(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite3")
    await store.open()
    busy = new_step(
        "busy", "test/sleep", alias=None, parameters={"name": "busy"}, parents=[], waiting_for=[]
    )
    busy.update(status="running", _lease={"owner": "other:1:x", "expires": 4_000_000_000.0})
    await store.insert(busy)
    await store.close()
    h = Harness(tmp_path)
    await h.store.open()
    try:
        await h.supervisor.recover()
        assert (await h.store.get("busy"))["status"] == "running"
    finally:
        await h.store.close()


async def test_stop_marks_running_jobs_interrupted(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.store.open()
    await h.supervisor.start()
    await h.submit("sleep", "longrun", value=60)
    async with h.store.watch("longrun") as changes:
        while (await h.store.get("longrun"))["progress"] != {"sleeping": True}:
            await changes.next(0.5)
    pid = h.supervisor.jobs["longrun"].process.pid
    await h.supervisor.stop()
    doc = await h.store.get("longrun")
    assert doc["status"] == "failed" and "interrupted" in doc["exception"]
    assert pid is not None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    await h.store.close()


def test_workers_are_not_the_api_process(tmp_path: Path) -> None:
    """The runner executes in another process (what makes a crash survivable)."""

    async def main() -> int:
        h = Harness(tmp_path)
        await h.store.open()
        await h.supervisor.start()
        await h.submit("sleep", "where", value=0.1)
        async with h.store.watch("where") as changes:
            while (
                "where" not in h.supervisor.jobs or h.supervisor.jobs["where"].process.pid is None
            ):
                await changes.next(0.1)
        pid = h.supervisor.jobs["where"].process.pid
        await h.wait("where")
        await h.supervisor.stop()
        await h.store.close()
        assert pid is not None
        return pid

    assert asyncio.run(main()) != os.getpid()


async def test_references_resolve_to_parent_outputs(harness: Harness, files_server: str) -> None:
    """`$name` is a DataFrame for tables and an open file for dataset/generic; `$name.key` an
    item of a dict output; `$$` a literal. The step waits for its pending parents."""
    await harness.steps.create(
        DATASET_TYPES["csv"], {"datasetName": "titanic", "datasetURI": f"{files_server}/train.csv"}
    )
    await harness.steps.create(
        DATASET_TYPES["generic"], {"datasetName": "raw", "datasetURI": f"{files_server}/test.csv"}
    )
    await harness.submit("write_json", "cfg", value={"k": [1, 2], "s": "x"})
    doc = await harness.submit(
        "describe_references",
        "described",
        value={
            "table": "$titanic",
            "file": "$raw",
            "key": "$cfg.k",
            "literal": "$$titanic",
            "nested": ["$cfg.s", {"deep": "$cfg.k"}],
        },
    )
    assert doc["status"] == "pending"
    assert set(doc["waitingFor"]) == {"titanic", "raw", "cfg"}
    assert set(doc["parents"]) == {"titanic", "raw", "cfg"}
    doc = await harness.wait("described")
    assert doc["status"] == "finished", doc["exception"]
    assert doc["resolved"] == {
        "table": {
            "dataframe": [
                "PassengerId",
                "Survived",
                "Pclass",
                "Name",
                "Sex",
                "Age",
                "SibSp",
                "Parch",
                "Ticket",
                "Fare",
                "Cabin",
                "Embarked",
            ],
            "rows": 891,
        },
        "file": {"file": "test.csv", "head": "PassengerId"},
        "key": [1, 2],
        "literal": "$titanic",
        "nested": ["x", {"deep": [1, 2]}],
    }


async def test_missing_key_reference_fails_with_the_keys(harness: Harness) -> None:
    await harness.submit("write_json", "conf", value={"a": 1, "b": 2})
    await harness.submit("describe_references", "broken", value="$conf.missing")
    doc = await harness.wait("broken")
    assert doc["status"] == "failed"
    assert "has no key 'missing' (keys: a, b)" in doc["exception"]


async def test_tampered_parent_output_is_refused(harness: Harness) -> None:
    await harness.submit("write_json", "signed", value={"a": 1})
    parent = await harness.wait("signed")
    path = harness.volume.artifact_dir("signed", parent["_artifact"]) / "value.json"
    path.write_text('{"a": 666}')
    await harness.submit("describe_references", "victim", value="$signed.a")
    doc = await harness.wait("victim")
    assert doc["status"] == "failed" and "refusing to load 'signed'" in doc["exception"]


async def test_steps_that_cannot_be_rerun_answer_405(harness: Harness) -> None:
    fixed = StepType(
        step="test", tool="succeed", request=Body, runner="tests.runners:succeed", patchable=False
    )
    await harness.submit("succeed", "once", value=1)
    await harness.wait("once")
    with pytest.raises(MethodNotAllowed, match="cannot be re-run"):
        await harness.steps.rerun(fixed, "once", {"value": 2})


async def test_a_run_outlived_by_its_step_never_touches_the_new_step(harness: Harness) -> None:
    """Delete a running step and create it again at once: the old run's end must not cancel,
    fail or prune the new one (every write of a run expects its own lease)."""
    await harness.submit("sleep", "phoenix", value=30)
    async with harness.store.watch("phoenix") as changes:
        while (await harness.store.get("phoenix"))["progress"] != {"sleeping": True}:
            await changes.next(0.5)
    await harness.steps.delete(None, "phoenix")
    await harness.submit("succeed", "phoenix", value=9)
    doc = await harness.wait("phoenix")
    assert doc["status"] == "finished" and doc["answer"] == 42, doc["exception"]
    await asyncio.sleep(1)  # let the old run's end, if any, land
    doc = await harness.store.get("phoenix")
    assert doc["status"] == "finished" and doc["runs"] == 1
    assert (harness.volume.artifact_dir("phoenix", doc["_artifact"]) / "out.txt").read_text() == "9"


async def test_lease_renewals_do_not_bump_the_version(tmp_path: Path) -> None:
    h = Harness(tmp_path)  # lease_seconds=1.5: a renewal every 0.5 s
    await h.store.open()
    await h.supervisor.start()
    try:
        await h.submit("sleep", "quiet", value=3)
        async with h.store.watch("quiet") as changes:
            while (await h.store.get("quiet"))["progress"] != {"sleeping": True}:
                await changes.next(0.5)
        before = await h.store.get("quiet")
        await asyncio.sleep(1.6)
        during = await h.store.get("quiet")
        assert during["_lease"]["expires"] > before["_lease"]["expires"]  # renewed
        assert during["version"] == before["version"]  # invisible to observe?since=
        assert (await h.wait("quiet"))["status"] == "finished"
    finally:
        await h.supervisor.stop()
        await h.store.close()


async def test_progress_writes_are_coalesced_and_the_last_value_kept(harness: Harness) -> None:
    """5000 progress messages as fast as the worker can send them: a handful of store writes
    (a new version each), and the last value is what the step shows."""
    await harness.submit("report_progress", "chatty", value=5000)
    doc = await harness.wait("chatty")
    assert doc["status"] == "finished", doc["exception"]
    assert doc["progress"] == {"done": 5000}
    assert doc["version"] < 60  # insert, claim, finish, and progress at most 4 per second


def _running(name: str, owner: str, run: str, **extra: Any) -> dict[str, Any]:
    doc = new_step(
        name, "test/sleep", alias=None, parameters={"name": name}, parents=[], waiting_for=[]
    )
    doc.update(
        status="running",
        runs=1,
        _lease={"owner": owner, "run": run, "expires": 4_000_000_000.0},
        **extra,
    )
    return doc


async def test_a_dead_instances_steps_fail_at_once_a_live_ones_do_not(tmp_path: Path) -> None:
    """On start, a step whose lease belongs to a supervisor that is provably gone (its instance
    lock is free) is failed 'interrupted' at once, though its lease has not expired; one whose
    owner lives (holds its lock) is left running."""
    (tmp_path / "instances").mkdir()
    (tmp_path / "instances" / "0123456789ab.lock").touch()  # left by a crashed instance
    store = SqliteStore(tmp_path / "store.sqlite3")
    await store.open()
    # another replica, alive (it holds its lock), serving other step types: it must leave
    # the crashed instance's lock for the service that runs its steps
    live = Supervisor(store, ArtifactVolume(tmp_path), Settings(data_dir=tmp_path), [])
    await store.insert(_running("crashed", "host:99:0123456789ab", "0001-aa"))
    await store.insert(_running("alive", live.instance, "0001-bb"))
    await live.start()
    assert (tmp_path / "instances" / "0123456789ab.lock").exists()
    h = Harness(tmp_path)
    await h.store.open()
    await h.supervisor.start()
    try:
        doc = await h.store.get("crashed")
        assert doc["status"] == "failed" and doc["exception"] == INTERRUPTED
        assert (await h.store.get("alive"))["status"] == "running"
        assert not (tmp_path / "instances" / "0123456789ab.lock").exists()
    finally:
        await h.supervisor.stop()
        await h.store.close()
        await live.stop()
        await store.close()


async def test_start_sweeps_orphaned_files_and_keeps_live_ones(tmp_path: Path) -> None:
    volume = ArtifactVolume(tmp_path)
    old = 2 * SWEEP_MIN_AGE_SECONDS

    def make(path: Path, age: float = old) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.name in ("uploads", "logs"):
            path.write_text("x")
        else:
            path.mkdir()
        stamp = os.path.getmtime(path) - age
        os.utime(path, (stamp, stamp))
        return path

    orphans = [
        make(tmp_path / "staging" / "gone.0001-aaaa"),
        make(tmp_path / "scratch" / "gone" / "0001-aaaa"),
        make(tmp_path / "artifacts" / "gone" / "0001-aaaa"),
        make(tmp_path / "artifacts" / "kept" / "0001-old0"),  # not the step's current output
        make(tmp_path / "uploads" / "gone.0123"),
        make(tmp_path / "uploads" / ".incoming.4567"),
        make(tmp_path / "logs" / "gone.log"),
    ]
    other_replica = Harness(tmp_path)
    await other_replica.store.open()
    await other_replica.supervisor.start()  # holds its lock: its running job is live
    upload = make(tmp_path / "uploads" / "kept.89ab")
    replaced = make(tmp_path / "uploads" / "renamed.89ab")  # re-run since from a URL
    orphans.append(replaced)
    await other_replica.store.insert(
        _running("live", other_replica.supervisor.instance, "0002-cccc")
    )
    kept = new_step(
        "kept",
        "test/succeed",
        alias=None,
        parameters={"name": "kept", "datasetURI": "upload:kept.csv"},
        parents=[],
        waiting_for=[],
        extra={"_internal": {"upload": str(upload)}},
    )
    kept.update(status="failed", _artifact="0002-cur0")
    await other_replica.store.insert(kept)
    renamed = new_step(
        "renamed",
        "test/succeed",
        alias=None,
        parameters={"name": "renamed", "datasetURI": "https://example.org/a.csv"},
        parents=[],
        waiting_for=[],
        extra={"_internal": {"upload": str(replaced)}},
    )
    await other_replica.store.insert(renamed)
    keep = [
        upload,
        make(tmp_path / "uploads" / "arriving.cdef", age=0),  # may still be streaming in
        make(tmp_path / "staging" / "live.0002-cccc"),
        make(tmp_path / "scratch" / "live" / "0002-cccc"),
        make(tmp_path / "artifacts" / "kept" / "0002-cur0"),
        make(tmp_path / "logs" / "kept.log"),
    ]
    h = Harness(tmp_path)
    await h.store.open()
    await h.supervisor.start()
    try:
        assert [p for p in orphans if p.exists()] == []
        assert [p for p in keep if not p.exists()] == []
    finally:
        await h.supervisor.stop()
        await h.store.close()
        await other_replica.supervisor.stop()
        await other_replica.store.close()
    del volume


async def test_rerun_removes_what_a_crash_left_of_earlier_runs(harness: Harness) -> None:
    await harness.submit("succeed", "again", value=1)
    assert (await harness.wait("again"))["status"] == "finished"
    left = harness.volume.root / "scratch" / "again" / "0001-dead"
    for _ in range(50):  # the finished run's scratch may still be being removed, parent too
        try:
            left.mkdir(parents=True)
            break
        except FileNotFoundError:
            await asyncio.sleep(0.01)
    assert left.is_dir()
    await harness.steps.rerun(TYPES["succeed"], "again", {"value": 2})
    assert not left.exists()
    assert (await harness.wait("again"))["status"] == "finished"


# -- multi-output jobs (builder/sparkml) ---------------------------------------------------------
async def submit_outputs(harness: Harness, name: str, **params: Any) -> list[dict[str, Any]]:
    return await harness.steps.create_outputs(TYPES["multi"], {"name": name, **params})


async def wait_status(harness: Harness, name: str, status: str, **fields: Any) -> dict[str, Any]:
    """Step `name`'s document once it has `status` (and the given `fields`)."""

    def reached(doc: dict[str, Any]) -> bool:
        return doc["status"] == status and all(doc.get(k) == v for k, v in fields.items())

    async with harness.store.watch(name) as changes:
        while not reached(doc := await harness.store.get(name)):
            await changes.next(0.5)
    return doc


async def test_a_multi_output_job_records_each_output_as_soon_as_it_is_committed(
    harness: Harness, tmp_path: Path
) -> None:
    gate = str(tmp_path / "gate")
    docs = await submit_outputs(harness, "m", keys=["A", "B", "C"], gate=gate)
    assert [d["name"] for d in docs] == ["mA", "mB", "mC"]
    assert all(d["status"] == "pending" for d in docs)  # all recorded before the answer
    Path(f"{gate}.A").touch()
    first = await harness.wait("mA")
    assert first["status"] == "finished" and first["key"] == "A"
    # B waits for its gate: the job still runs for it, under the same run and lease
    second = await wait_status(harness, "mB", "running", progress={"output": "B"})
    assert second["_lease"]["run"] == first["_artifact"]
    Path(f"{gate}.B").touch()
    Path(f"{gate}.C").touch()
    for key in "BC":
        doc = await harness.wait(f"m{key}")
        assert doc["status"] == "finished" and doc["key"] == key and doc["runs"] == 1
        folder = harness.volume.artifact_dir(doc["name"], doc["_artifact"])
        assert (folder / "out.txt").read_text() == key
        (record,) = await harness.store.runs(doc["name"])
        assert record["artifact"]["run"] == doc["_artifact"]
        assert "making A" in record["functionMessage"]  # one log for the job
    while "mA" in harness.supervisor.jobs:  # the job ends after its last output
        await asyncio.sleep(0.05)
    assert not (harness.volume.root / "scratch" / "mA").exists()


async def test_outputs_a_job_fails_or_leaves_out_fail_alone(harness: Harness) -> None:
    await submit_outputs(harness, "f", keys=["A", "B", "C"], fail="B", skip="C")
    assert (await harness.wait("fA"))["status"] == "finished"
    failed = await harness.wait("fB")
    assert failed["status"] == "failed" and failed["exception"] == "B cannot be produced"
    left = await harness.wait("fC")
    assert left["status"] == "failed" and "without producing this output" in left["exception"]


async def test_a_job_that_raises_fails_the_outputs_it_did_not_commit(harness: Harness) -> None:
    await submit_outputs(harness, "b", keys=["A", "B", "C"], boom=True)
    assert (await harness.wait("bA"))["status"] == "finished"
    for name in ("bB", "bC"):
        doc = await harness.wait(name)
        assert doc["exception"] == "ValueError: boom after the first output"
        assert "raise ValueError" in doc["traceback"]


async def test_outputs_are_all_recorded_or_none(harness: Harness) -> None:
    await harness.submit("succeed", "tB")
    with pytest.raises(Conflict, match="'tB' is already taken"):
        await submit_outputs(harness, "t", keys=["A", "B", "C"])
    assert await harness.store.get("tA") is None and await harness.store.get("tC") is None
    with pytest.raises(Invalid, match=r"name: the output name 'x+A' made from it") as caught:
        await submit_outputs(harness, "x" * 128, keys=["A"])
    assert caught.value.detail == {"field": "name", "name": "x" * 128 + "A"}


async def test_cancelling_one_output_cancels_the_job(harness: Harness, tmp_path: Path) -> None:
    gate = str(tmp_path / "gate")
    await submit_outputs(harness, "c", keys=["A", "B", "C"], gate=gate)
    Path(f"{gate}.A").touch()
    assert (await harness.wait("cA"))["status"] == "finished"
    doc = await harness.steps.cancel(None, "cC")
    assert doc["status"] == "cancelled" and doc["exception"] == "cancelled: by request"
    assert (await harness.wait("cB"))["status"] == "cancelled"
    assert (await harness.store.get("cA"))["status"] == "finished"  # committed: kept


async def test_deleting_one_output_lets_the_job_go_on(harness: Harness, tmp_path: Path) -> None:
    gate = str(tmp_path / "gate")
    await submit_outputs(harness, "d", keys=["A", "B", "C"], gate=gate)
    await wait_status(harness, "dA", "running", progress={"output": "A"})
    await harness.steps.delete(None, "dB")
    for key in "ABC":
        Path(f"{gate}.{key}").touch()
    assert (await harness.wait("dA"))["status"] == "finished"
    assert (await harness.wait("dC"))["status"] == "finished"
    assert await harness.store.get("dB") is None
    assert not (harness.volume.root / "artifacts" / "dB").exists()


async def test_deleting_every_output_left_stops_the_job(harness: Harness, tmp_path: Path) -> None:
    gate = str(tmp_path / "gate")
    await submit_outputs(harness, "e", keys=["A", "B"], gate=gate)
    await wait_status(harness, "eA", "running", progress={"output": "A"})
    job = harness.supervisor.jobs["eA"]
    await harness.steps.delete(None, "eA")
    await harness.steps.delete(None, "eB")
    await asyncio.wait_for(asyncio.to_thread(job.process.join, 10), 15)
    assert job.cancel_reason == "the outputs the job had left to produce were deleted"


async def test_a_pending_output_cancelled_before_the_start_is_left_out(harness: Harness) -> None:
    await harness.submit("sleep", "slow", value=1)
    await submit_outputs(harness, "p", keys=["A", "B", "C"], parent="slow")
    await harness.steps.cancel(None, "pB")
    assert (await harness.wait("pA"))["status"] == "finished"
    assert (await harness.wait("pC"))["status"] == "finished"
    (record,) = await harness.store.runs("pA")
    assert "making B" not in record["functionMessage"]
    assert (await harness.store.get("pB"))["status"] == "cancelled"


async def test_a_failed_parent_fails_every_waiting_output(harness: Harness) -> None:
    await harness.submit("sleep", "doomed", value=30)
    await submit_outputs(harness, "w", keys=["A", "B"], parent="doomed")
    await harness.steps.cancel(None, "doomed")
    for name in ("wA", "wB"):
        doc = await harness.wait(name)
        assert doc["status"] == "failed" and "parent step 'doomed' cancelled" in doc["exception"]


async def test_stopping_the_server_interrupts_every_output_left(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    await h.store.open()
    await h.supervisor.start()
    await submit_outputs(h, "s", keys=["A", "B"], gate=str(tmp_path / "gate"))
    await wait_status(h, "sB", "running", progress={"output": "A"})
    await h.supervisor.stop()
    for name in ("sA", "sB"):
        doc = await h.store.get(name)
        assert doc["status"] == "failed" and "interrupted" in doc["exception"]
    await h.store.close()


async def test_a_name_a_job_still_works_under_waits_for_that_job(
    harness: Harness, tmp_path: Path
) -> None:
    # The job works in its first output's scratch folder, under that name's log: deleting
    # that output leaves them to the job, and a new step of the same name waits for its end.
    gate = str(tmp_path / "gate")
    await submit_outputs(harness, "n", keys=["A", "B"], gate=gate)
    await wait_status(harness, "nA", "running", progress={"output": "A"})
    await harness.steps.delete(None, "nA")
    assert (harness.volume.root / "scratch" / "nA").exists()
    await harness.submit("succeed", "nA", value=1)
    await asyncio.sleep(1.5)  # claim passes go by: the job of the old "nA" still runs
    assert (await harness.store.get("nA"))["status"] == "pending"
    for key in "AB":
        Path(f"{gate}.{key}").touch()
    assert (await harness.wait("nB"))["status"] == "finished"  # the job went on
    assert (await harness.wait("nA"))["status"] == "finished"
