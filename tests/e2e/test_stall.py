"""An API that never stalls (issue 6): metadata GETs answer while long jobs and table scans run.

Before: each running job parked a thread of the event loop's default pool in a blocking
`recv`, and every SQLite call went through that same pool, so six sleeping jobs made
`GET /function/python` take 54 s. Now a job parks no thread (its pipe is read by the event
loop) and the store has a thread of its own. The jobs below sleep in three step families
(function/python, and transform and explore through the scikit-learn toolkit), all `running`
at once, while ten `query` scans of a table run; every metadata GET must still answer within a
generous bound (a hang, not a benchmark: the figures are bench's).
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BASE, ServerProcess

pytestmark = pytest.mark.e2e

SLEEP = 300  # the sleepers are deleted at the end: they never run that long
GET_BOUND = 5.0  # seconds: a stalled API took 54 s
ROWS = 300_000
SLEEPING_EXPRESSION = f"#__import__('time').sleep({SLEEP}) or [[1.0]]"


def _toolkit_sleeper(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "modulePath": "sklearn.preprocessing",
        "class": "MinMaxScaler",
        "classParameters": {},
        "method": "fit_transform",
        "methodParameters": {"X": SLEEPING_EXPRESSION},
    }


SLEEPERS = {
    "function/python": [
        {
            "name": f"fsleep{i}",
            "function": f"import time\ntime.sleep({SLEEP})\nresponse = 1",
            "functionParameters": {},
        }
        for i in range(2)
    ],
    "transform/scikitlearn": [_toolkit_sleeper(f"tsleep{i}") for i in range(2)],
    "explore/scikitlearn": [_toolkit_sleeper(f"esleep{i}") for i in range(2)],
}


def _status(client: httpx.Client, route: str, name: str) -> str:
    path = f"{route}/{name}" + ("/metadata" if route.startswith("/explore") else "")
    response = client.get(path, params={"limit": 1})
    assert response.status_code == 200, response.text
    status: str = response.json()["result"][0]["status"]
    return status


def test_metadata_gets_answer_while_long_jobs_and_scans_run(tmp_path: Path) -> None:
    csv = tmp_path / "big.csv"
    with csv.open("w") as out:
        out.write("id,x,label\n")
        out.writelines(f"{i},{i * 0.5},{'ab'[i % 2]}\n" for i in range(ROWS))
    server = ServerProcess(
        tmp_path / "data", {"LO_MAX_JOBS": "8", "LO_JOB_TIMEOUT": str(SLEEP * 2)}
    )
    server.start()
    client = httpx.Client(base_url=server.url + BASE, timeout=120)
    try:
        with csv.open("rb") as handle:
            response = client.post(
                "/dataset/csv", data={"datasetName": "big"}, files={"file": ("big.csv", handle)}
            )
        assert response.status_code == 201, response.text
        for route, bodies in SLEEPERS.items():
            for body in bodies:
                response = client.post(f"/{route}", json=body)
                assert response.status_code == 201, response.text
        big = client.get("/observe/big", params={"timeout": 120}).json()["result"]
        assert big["status"] == "finished" and big["rows"] == ROWS, big

        # Every sleeper running at once (the toolkit ones import scikit-learn first).
        deadline = time.monotonic() + 180
        waiting = {(route, body["name"]) for route, bodies in SLEEPERS.items() for body in bodies}
        while waiting and time.monotonic() < deadline:
            for route, name in sorted(waiting):
                status = _status(client, f"/{route}", name)
                assert status in ("pending", "running"), (name, status)
                if status == "running":
                    waiting.discard((route, name))
            time.sleep(0.5)
        assert not waiting, f"never all running: {waiting}"

        # Ten full scans (the filter matches the last row only), and metadata GETs meanwhile.
        query = json.dumps({"id": ROWS - 1})

        def scan() -> int:
            with httpx.Client(base_url=server.url + BASE, timeout=300) as scanner:
                return scanner.get("/dataset/csv/big", params={"query": query}).status_code

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            scans = [pool.submit(scan) for _ in range(10)]
            time.sleep(0.5)  # let the scans start
            quick = httpx.Client(base_url=server.url + BASE, timeout=GET_BOUND)
            for _ in range(3):
                for path in (
                    "/function/python",
                    "/transform/scikitlearn/tsleep0",
                    "/explore/scikitlearn",
                    "/dataset/csv",
                    "/function/python/fsleep1",
                ):
                    started = time.monotonic()
                    response = quick.get(path)  # raises ReadTimeout past GET_BOUND
                    assert response.status_code == 200, (path, response.text)
                    assert time.monotonic() - started < GET_BOUND
            quick.close()
            assert [s.result() for s in scans] == [200] * 10
        for route, bodies in SLEEPERS.items():  # still sleeping: nothing timed out meanwhile
            for body in bodies:
                assert _status(client, f"/{route}", body["name"]) == "running"
    finally:
        for route, bodies in SLEEPERS.items():
            for body in bodies:
                client.delete(f"/{route}/{body['name']}")
        client.close()
        server.stop()
