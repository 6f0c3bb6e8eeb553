"""SSRF: dataset URLs reach public addresses only, unless the settings opt in.

Apps here run with default settings (no LO_ALLOW_PRIVATE_URLS): before the guard, a dataset
URL on loopback in any spelling, a link-local metadata address or a redirect to one was
fetched and its body read back as the dataset's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from learning_orchestra.core.api import create_app
from learning_orchestra.core.settings import Settings
from tests.conftest import BASE, assert_error, wait

CSV = f"{BASE}/dataset/csv"
GENERIC = f"{BASE}/dataset/generic"


def app(tmp: Path, **settings: Any) -> TestClient:
    config = Settings(data_dir=tmp / "data", lease_seconds=3, job_timeout=60, **settings)
    return TestClient(create_app(settings=config))


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app with the default URL policy."""
    with app(tmp_path_factory.mktemp("ssrf")) as client:
        yield client


def test_literal_private_urls_are_422_at_post_and_patch(guarded: TestClient) -> None:
    hosts = ["127.0.0.1:8080", "127.1", "2130706433", "0.0.0.0", "user@127.0.0.1", "[::1]",
             "[::ffff:127.0.0.1]", "169.254.169.254", "10.1.2.3", "192.168.0.10"]  # fmt: skip
    for route in (CSV, GENERIC):
        for host in hosts:
            body = {"datasetName": "inside", "datasetURI": f"http://{host}/latest/meta-data"}
            response = guarded.post(route, json=body)
            body = assert_error(response, 422, "datasetURI", "public addresses only")
            assert body["error"]["detail"] == {"field": "datasetURI"}
    assert guarded.get(CSV).json() == {"result": []}
    assert guarded.get(GENERIC).json() == {"result": []}
    upload = guarded.post(
        CSV, data={"datasetName": "up"}, files={"file": ("a.csv", b"a\n1\n", "text/csv")}
    )
    assert upload.status_code == 201, upload.text
    assert wait(guarded, "up")["status"] == "finished"
    patched = guarded.patch(f"{CSV}/up", json={"datasetURI": "http://127.1:9/x.csv"})
    assert_error(patched, 422, "datasetURI", "loopback")


def test_a_name_resolving_to_loopback_fails_the_step(
    guarded: TestClient, files_server: str
) -> None:
    port = files_server.rsplit(":", 1)[1]
    for route, name in ((CSV, "named"), (GENERIC, "namedraw")):
        url = f"http://localhost:{port}/train.csv"
        assert guarded.post(route, json={"datasetName": name, "datasetURI": url}).status_code == 201
        meta = wait(guarded, name)
        assert meta["status"] == "failed"
        assert "loopback address" in meta["exception"], meta["exception"]
        assert "LO_ALLOWED_URL_HOSTS" in meta["exception"]
        assert_error(guarded.get(f"{route}/{name}/result"), 404)  # nothing was read back
    rows = guarded.get(f"{CSV}/named").json()["result"]
    assert len(rows) == 1  # the metadata, no rows


def test_redirects_are_checked_at_every_hop(tmp_path: Path, files_server: str) -> None:
    port = files_server.rsplit(":", 1)[1]
    # localhost:PORT is allowed; a redirect from it to 127.0.0.1:PORT (not listed) is not
    with app(tmp_path, allowed_url_hosts=f"localhost:{port}") as client:
        target = f"http://127.0.0.1:{port}/train.csv"
        url = f"http://localhost:{port}/redirect?to={target}"
        assert client.post(CSV, json={"datasetName": "hop", "datasetURI": url}).status_code == 201
        meta = wait(client, "hop")
        assert meta["status"] == "failed" and "127.0.0.1 is a loopback" in meta["exception"]
        # the allowed host itself is fetched
        direct = f"http://localhost:{port}/typed.csv"
        response = client.post(CSV, json={"datasetName": "ok", "datasetURI": direct})
        assert response.status_code == 201
        meta = wait(client, "ok")
        assert meta["status"] == "finished" and meta["rows"] == 3
