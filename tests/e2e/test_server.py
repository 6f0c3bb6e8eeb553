"""End to end: the real `learning-orchestra serve` process, real HTTP, the real client.

Covers what a crash does: a server killed with SIGKILL mid-ingest is restarted on the same
data directory; the finished dataset is intact, the interrupted one is `failed` as soon as the
server is back (not when its lease expires), and nothing the dead runs wrote stays on disk.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psutil
import pytest

from learning_orchestra_client import DatasetCsv, Observer, StepFailed
from tests.conftest import BASE, ServerProcess, data_file

pytestmark = pytest.mark.e2e


def _rows(url: str, name: str, skip: int, limit: int) -> list[dict]:
    response = httpx.get(f"{url}{BASE}/dataset/csv/{name}", params={"skip": skip, "limit": limit})
    assert response.status_code == 200, response.text
    items: list[dict] = response.json()["result"]
    return items


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_ingest_crash_and_restart(tmp_path: Path, files_server: str) -> None:
    # A lease far longer than the test: the restarted server must not wait for it to expire.
    # One dataset job at a time, so an upload can wait, pending, behind the slow ingest.
    data = tmp_path / "data"
    server = ServerProcess(data, {"LO_LEASE_SECONDS": "600", "LO_MAX_JOBS": "1"})
    server.start()
    try:
        observer = Observer(server.url)
        csv = DatasetCsv(server.url)

        # Titanic from a local HTTP server and by upload, waited for through the client.
        csv.insert_dataset_async("titanic_train", f"{files_server}/train.csv")
        csv.insert_dataset_sync("titanic_test", file=str(data_file("titanic/test.csv")))
        train = observer.wait("titanic_train", timeout=60)
        assert train["rows"] == 891 and train["types"]["Age"] == "float"
        assert observer.wait("titanic_test", timeout=60)["rows"] == 418

        # Paging: [metadata, rows...] with skip/limit over the combined list.
        first = _rows(server.url, "titanic_train", 0, 5)
        assert first[0]["name"] == "titanic_train" and len(first) == 5
        assert [r["PassengerId"] for r in first[1:]] == [1, 2, 3, 4]
        page = _rows(server.url, "titanic_train", 5, 3)
        assert [r["PassengerId"] for r in page] == [5, 6, 7]
        before = _rows(server.url, "titanic_train", 1, 100)

        # Start a slow ingest, and kill the server while it runs.
        csv.insert_dataset_async("slow", f"{files_server}/slow.csv")
        metadata = observer.observe("slow", since=0, timeout=10)
        while metadata["status"] != "running":
            metadata = observer.observe("slow", since=metadata["version"], timeout=10)
        # An upload queued behind it, cancelled before it started: its file is kept, so that
        # it can be re-run.
        csv.insert_dataset_async("uploaded", file=str(data_file("titanic/test.csv")))
        assert (
            httpx.get(f"{server.url}{BASE}/dataset/csv/uploaded").json()["result"][0]["status"]
            == "pending"
        )
        cancel = httpx.post(f"{server.url}{BASE}/dataset/csv/uploaded/cancel")
        assert cancel.status_code == 200 and cancel.json()["result"]["status"] == "cancelled"
        assert len(_files(data / "uploads")) == 1
        assert _files(data / "scratch") and _files(data / "staging")  # the slow ingest's
        assert server.process is not None
        workers = psutil.Process(server.process.pid).children(recursive=True)
        assert workers, "jobs run in worker processes"
        server.kill()
        # Workers die with the server (PR_SET_PDEATHSIG), none is left behind.
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]

        server.start()
        # Failed at once: the dead server's lease would last ten more minutes.
        slow = httpx.get(f"{server.url}{BASE}/dataset/csv/slow").json()["result"][0]
        assert slow["status"] == "failed" and slow["finished"] is False
        assert "interrupted" in slow["exception"]
        with pytest.raises(StepFailed) as failure:
            Observer(server.url).wait("slow", timeout=1)
        assert "interrupted" in failure.value.exception
        # What the dead run wrote is gone; the cancelled upload's file is kept.
        assert _files(data / "scratch") == [] and _files(data / "staging") == []
        assert len(_files(data / "uploads")) == 1
        response = httpx.patch(f"{server.url}{BASE}/dataset/csv/uploaded", json={})
        assert response.status_code == 201, response.text
        assert Observer(server.url).wait("uploaded", timeout=60)["rows"] == 418
        assert _files(data / "uploads") == []  # ingested: the upload is not kept

        intact = httpx.get(f"{server.url}{BASE}/dataset/csv/titanic_train").json()["result"][0]
        assert intact["status"] == "finished" and intact["rows"] == 891
        assert _rows(server.url, "titanic_train", 1, 100) == before

        # The interrupted step can be re-run with PATCH once the server is back.
        response = httpx.patch(
            f"{server.url}{BASE}/dataset/csv/slow",
            json={"datasetURI": f"{files_server}/test.csv"},
        )
        assert response.status_code == 201, response.text
        assert Observer(server.url).wait("slow", timeout=60)["rows"] == 418
    finally:
        server.stop()


def test_each_service_runs_on_its_own(tmp_path: Path, files_server: str) -> None:
    """`serve --step dataset` and `serve --step observe` as two processes sharing one data
    directory, as two Swarm services share the store and the volume."""
    data = tmp_path / "data"
    dataset = ServerProcess(data)
    observe = ServerProcess(data)
    dataset.start("--step", "dataset")
    observe.start("--step", "observe")
    try:
        assert httpx.get(f"{dataset.url}{BASE}/observe/x").status_code == 404
        assert httpx.get(f"{observe.url}{BASE}/dataset/csv").status_code == 404
        created = httpx.post(
            f"{dataset.url}{BASE}/dataset/csv",
            json={"datasetName": "shared", "datasetURI": f"{files_server}/train.csv"},
        )
        assert created.status_code == 201
        assert created.json()["result"] == f"{BASE}/dataset/csv/shared"
        started = time.monotonic()
        done = Observer(observe.url).wait("shared", timeout=30)
        assert done["status"] == "finished" and done["rows"] == 891
        assert time.monotonic() - started < 30
        health = httpx.get(f"{observe.url}/health").json()
        assert health["services"] == ["observe"]
    finally:
        dataset.stop()
        observe.stop()
