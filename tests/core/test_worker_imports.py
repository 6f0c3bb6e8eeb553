"""Structural: what a job's worker process imports (issue 6: ~1 s per step was the worker
re-importing the server's `__main__`, which pulled in FastAPI and pandas).

The job below runs in a real worker process started by the real supervisor, from a forkserver
preloaded as `learning-orchestra serve` preloads it (every service's step types), while the
process's `__main__` is `learning_orchestra.cli` as under `python -m learning_orchestra.cli`:
multiprocessing prepares each worker by running that module again. Nothing is timed.
"""

from __future__ import annotations

import sys
from multiprocessing import forkserver
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

import learning_orchestra.cli
from learning_orchestra.core.api import SERVICES, service_module
from learning_orchestra.core.artifacts import ArtifactVolume
from learning_orchestra.core.jobs import Supervisor
from learning_orchestra.core.service import StepService
from learning_orchestra.core.settings import Settings
from learning_orchestra.core.steptype import Content, StepType
from learning_orchestra.core.store import SqliteStore
from learning_orchestra.steps.observe import wait_for
from learning_orchestra.steps.transform import TABLE_PRELOAD, ProjectionRequest


class TableBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


TABLE = StepType(
    step="probe",
    tool="table",
    request=TableBody,
    runner="tests.runners:write_table",
    content=Content.TABLE,
)
# transform/projection's runner, wrapped to report the worker's modules afterwards
PROJECTION = StepType(
    step="probe",
    tool="projection",
    request=ProjectionRequest,
    runner="tests.runners:project_and_report_imports",
    name_field="outputDatasetName",
    content=Content.TABLE,
    parent_fields=("inputDatasetName",),
    preload=TABLE_PRELOAD,
)


async def test_a_projection_worker_imports_neither_the_web_framework_nor_pandas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What multiprocessing reads to prepare each worker: the server's __main__ module.
    monkeypatch.setitem(sys.modules, "__main__", learning_orchestra.cli)
    # A forkserver started now, with the server's preloads (an earlier test may have started
    # one with other preloads).
    forkserver._forkserver._stop()  # type: ignore[attr-defined]
    served = [t for name in SERVICES for t in getattr(service_module(name), "STEP_TYPES", [])]
    settings = Settings(data_dir=tmp_path, lease_seconds=5)
    store = SqliteStore(tmp_path / "store.sqlite3")
    volume = ArtifactVolume(tmp_path)
    supervisor = Supervisor(store, volume, settings, [*served, TABLE, PROJECTION])
    steps = StepService(store, volume, supervisor)
    await store.open()
    await supervisor.start()
    try:
        await steps.create(TABLE, {"name": "ten"})
        assert (await wait_for(store, "ten", 60))["status"] == "finished"
        await steps.create(
            PROJECTION,
            {"inputDatasetName": "ten", "outputDatasetName": "two", "names": ["b", "a"]},
        )
        doc = await wait_for(store, "two", 60)
    finally:
        await supervisor.stop()
        await store.close()
        forkserver._forkserver._stop()  # type: ignore[attr-defined]  # others get their own
    assert doc["status"] == "finished", doc["exception"]
    assert doc["fields"] == ["b", "a"] and doc["rows"] == 10
    assert doc["heavyModules"] == []
