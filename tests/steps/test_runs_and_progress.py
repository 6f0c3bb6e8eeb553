"""What every sandboxed step gets from the toolkit protocol (issue 8): progress events the
code reports reach observers live, every run is recorded with the output it committed
(GET .../runs), and the CPU-time limit is its own setting (LO_JOB_CPU_SECONDS)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BASE, ServerProcess
from tests.steps.rest import unique

REPORTS = """
from learning_orchestra.sandbox.child import progress
import time
for i in range(4):
    progress(done=i + 1, total=4, loss=float("nan") if i == 0 else 1.0 / (i + 1))
    time.sleep(0.35)
response = steps
"""


@pytest.fixture
def client(lo_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lo_server + BASE, timeout=60) as http:
        yield http


def observe_all(client: httpx.Client, name: str) -> list[dict]:
    """Every version of the step's metadata, until it ends (observe ?since=V)."""
    seen, since = [], 0
    while True:
        answer = client.get(f"/observe/{name}", params={"since": since, "timeout": 30})
        assert answer.status_code == 200, answer.text
        doc = answer.json()["result"]
        seen.append(doc)
        if doc["status"] in ("finished", "failed", "cancelled"):
            return seen
        since = doc["version"]


def test_progress_the_code_reports_is_observed_live(client: httpx.Client) -> None:
    name = unique("reporting")
    body = {"name": name, "function": REPORTS, "functionParameters": {"steps": 4}}
    assert client.post("/function/python", json=body).status_code == 201
    seen = observe_all(client, name)
    running = [doc["progress"] for doc in seen if doc["status"] == "running" and doc["progress"]]
    assert running, f"no progress seen while it ran: {seen}"
    assert all(p["total"] == 4 for p in running)
    assert {"done", "total", "loss"} <= set(running[0])
    assert running[0]["done"] < 4  # seen before the end, not only at it
    # NaN is not JSON: reported as null; the other losses as numbers
    assert all((p["loss"] is None) == (p["done"] == 1) for p in running)
    assert seen[-1]["status"] == "finished" and seen[-1]["progress"]["done"] == 4


def test_every_run_is_recorded_newest_first_with_its_output_checksum(
    client: httpx.Client,
) -> None:
    name = unique("twice")
    body = {"name": name, "function": "response = value * 2", "functionParameters": {"value": 2}}
    assert client.post("/function/python", json=body).status_code == 201
    client.get(f"/observe/{name}", params={"timeout": 60})
    assert client.patch(f"/function/python/{name}", json={}).status_code == 201
    client.get(f"/observe/{name}", params={"timeout": 60})
    changed = {"functionParameters": {"value": 3}}
    assert client.patch(f"/function/python/{name}", json=changed).status_code == 201
    client.get(f"/observe/{name}", params={"timeout": 60})

    runs = client.get(f"/function/python/{name}/runs").json()["result"]
    assert [run["run"] for run in runs] == [3, 2, 1]
    assert all(run["status"] == "finished" for run in runs)
    assert [run["parameters"]["functionParameters"]["value"] for run in runs] == [3, 2, 2]
    checksums = [run["artifact"]["checksum"] for run in runs]
    assert checksums[1] == checksums[2] != checksums[0]  # same output, same checksum
    assert all(run["artifact"]["format"] == "json" for run in runs)
    assert all(isinstance(run["durationSeconds"], float) for run in runs)
    paged = client.get(f"/function/python/{name}/runs", params={"skip": 1, "limit": 1})
    assert [run["run"] for run in paged.json()["result"]] == [2]
    missing = client.get(f"/function/python/{unique('nope')}/runs")
    assert missing.status_code == 404


def test_cpu_time_has_its_own_limit(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", {"LO_JOB_CPU_SECONDS": "1"})
    server.start()
    try:
        with httpx.Client(base_url=server.url + BASE, timeout=60) as http:
            burn = "import time\nend = time.time() + 30\nwhile time.time() < end:\n    pass"
            body = {"name": "burn", "function": burn, "functionParameters": {}}
            assert http.post("/function/python", json=body).status_code == 201
            started = time.monotonic()
            doc = http.get("/observe/burn", params={"timeout": 60}).json()["result"]
            assert doc["status"] == "failed", doc
            assert "LO_JOB_CPU_SECONDS=1" in doc["exception"], doc["exception"]
            assert time.monotonic() - started < 20
    finally:
        server.stop()
