"""Helpers of the tests of steps that make tables from tables (transform, explore).

The Titanic training file is parsed here independently of the server (csv module), so the
tests compare what the API serves with what the file holds.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import BASE, TITANIC_TYPES, data_file, wait

CSV = f"{BASE}/dataset/csv"
GENERIC = f"{BASE}/dataset/generic"
PROJECTION = f"{BASE}/transform/projection"
DATA_TYPE = f"{BASE}/transform/dataType"
HISTOGRAM = f"{BASE}/explore/histogram"
SUMMARY = f"{BASE}/explore/summary"


def _titanic_rows() -> list[dict[str, Any]]:
    cast: dict[str, Callable[[str], Any]] = {"integer": int, "float": float, "string": str}
    with data_file("titanic/train.csv").open(newline="") as handle:
        return [
            {k: None if v == "" else cast[TITANIC_TYPES[k]](v) for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]


#: The rows of titanic/train.csv as the API serves them (891 rows).
TITANIC = _titanic_rows()


def app_client(tmp: Path, **settings: Any) -> TestClient:
    """A new embedded app (every service) on its own data directory."""
    from learning_orchestra.core.api import create_app
    from learning_orchestra.core.settings import Settings

    settings.setdefault("allow_private_urls", True)  # the local files_server (SSRF opt-in)
    config = Settings(data_dir=tmp / "data", lease_seconds=3, job_timeout=120, **settings)
    return TestClient(create_app(settings=config))


def post(client: TestClient, route: str, body: dict[str, Any]) -> str:
    """POST a step that must be accepted; its name."""
    response = client.post(route, json=body)
    assert response.status_code == 201, response.text
    name = body.get("outputDatasetName") or body["datasetName"]
    assert response.json() == {"result": f"{route}/{name}"}
    assert response.headers["location"] == f"{route}/{name}"
    return str(name)


def ingest(client: TestClient, name: str, url: str) -> dict[str, Any]:
    """A dataset/csv from `url`, waited for; its metadata."""
    post(client, CSV, {"datasetName": name, "datasetURI": url})
    meta = wait(client, name)
    assert meta["status"] == "finished", meta["exception"]
    return meta


def upload(client: TestClient, name: str, text: str) -> dict[str, Any]:
    """A dataset/csv uploaded from `text`, waited for; its metadata."""
    files = {"file": (f"{name}.csv", text.encode(), "text/csv")}
    response = client.post(CSV, data={"datasetName": name}, files=files)
    assert response.status_code == 201, response.text
    meta = wait(client, name)
    assert meta["status"] == "finished", meta["exception"]
    return meta


def metadata(client: TestClient, route: str, name: str) -> dict[str, Any]:
    response = client.get(f"{route}/{name}", params={"limit": 1})
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()["result"][0]
    return doc


def rows(client: TestClient, route: str, name: str) -> list[dict[str, Any]]:
    """Every row of table step `name` (its `.../result` as JSON)."""
    response = client.get(f"{route}/{name}/result", params={"format": "json"})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["result"]
    return found


def page(client: TestClient, route: str, name: str, **params: Any) -> list[Any]:
    """`GET {route}/{name}` with `params`: [metadata, *rows] as LO pages them."""
    response = client.get(f"{route}/{name}", params=params)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["result"]
    return items


def wait_until(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)
