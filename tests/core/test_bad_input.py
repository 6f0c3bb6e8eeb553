"""Bad input is a 4xx naming what to fix, never a 5xx; field sizes, uploads and logs bounded.

Each case here was a 500 (or unbounded memory or disk) before: NaN/Infinity/1e400 in JSON
(the store's JSON refused them), 100k-deep nesting (RecursionError), integers over 4,300
digits (ValueError), skip=2**63 (OverflowError in SQLite), NUL in file names, a 15 MB
description copied into every metadata version, uploads spooled to /tmp before the limit
was checked, and whole 300 MB logs answered at once.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from learning_orchestra.core.api import create_app
from learning_orchestra.core.routes import MAX_LOG_BYTES
from learning_orchestra.core.service import MAX_DESCRIPTION_BYTES, MAX_PARAMETERS_BYTES
from learning_orchestra.core.settings import Settings
from tests.conftest import BASE, assert_error, wait

FUNCTION = f"{BASE}/function/python"
CSV = f"{BASE}/dataset/csv"
GENERIC = f"{BASE}/dataset/generic"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("bad") / "data", max_upload_mb=1)
    with TestClient(create_app(settings=settings)) as client:
        response = client.post(
            GENERIC, data={"datasetName": "blob"}, files={"file": ("b.bin", b"xyz")}
        )
        assert response.status_code == 201, response.text
        assert wait(client, "blob")["status"] == "finished"
        yield client


def function_body(parameters: str) -> bytes:
    return (
        '{"name": "f", "function": "response = 1", "functionParameters": {"x": ' + parameters + "}}"
    ).encode()


def nothing_created(app: TestClient) -> None:
    assert app.get(FUNCTION).json() == {"result": []}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        ("1e400", "1e400"),
        ("-1e400", "-1e400"),
        ("[" + "1" * 5000 + "]", "digits"),
    ],
)
def test_json_values_the_store_cannot_keep_are_400(
    app: TestClient, value: str, fragment: str
) -> None:
    response = app.post(FUNCTION, content=function_body(value), headers=JSON)
    assert_error(response, 400, fragment)
    nothing_created(app)


def test_deep_nesting_is_400_everywhere(app: TestClient) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for route in (FUNCTION, f"{FUNCTION}/f", f"{BASE}/transform/dataType"):
        method = app.post if route == FUNCTION else app.patch
        response = method(route, content=function_body(deep), headers=JSON)
        assert_error(response, 400, "nested too deeply")
    # deep but within the stack: refused by the depth limit, not a RecursionError later
    response = app.post(FUNCTION, content=function_body("[" * 500 + "]" * 500), headers=JSON)
    assert_error(response, 400, "nested too deeply", "64")
    # a route whose body FastAPI parses
    observe = app.post(f"{BASE}/observe", content=b"[" * 100_000, headers=JSON)
    assert observe.status_code == 400 or observe.status_code == 422, observe.text
    assert_error(observe, observe.status_code)
    nothing_created(app)


def test_huge_skip_and_limits_are_422(app: TestClient) -> None:
    huge = str(2**63)
    for route in (FUNCTION, f"{GENERIC}/blob", f"{BASE}/transform/dataType", f"{GENERIC}"):
        assert_error(app.get(route, params={"skip": huge}), 422, "skip")
    assert_error(app.get(f"{GENERIC}/blob/logs", params={"offset": huge}), 422, "offset")
    assert app.get(FUNCTION, params={"skip": 2**53 - 1}).json() == {"result": []}


def test_bad_queries_are_422(app: TestClient) -> None:
    for query in ('{"a": ' + "1" * 5000 + "}", "[" * 5000 + "]" * 5000, "{nope"):
        response = app.get(f"{GENERIC}/blob", params={"query": query})
        assert_error(response, 422, "query")


def test_nul_in_file_names_is_422(app: TestClient) -> None:
    response = app.get(f"{GENERIC}/blob/files/b%00.bin")
    assert_error(response, 422, "filename", "NUL")
    assert_error(app.get(f"{GENERIC}/blob/files/b%0A.bin"), 404)  # no route matches a newline
    raw = (
        b'--B\r\nContent-Disposition: form-data; name="datasetName"\r\n\r\nnul\r\n'
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="a\x00b.bin"\r\n\r\n'
        b"xyz\r\n--B--\r\n"
    )
    upload = app.post(
        GENERIC, content=raw, headers={"content-type": "multipart/form-data; boundary=B"}
    )
    assert_error(upload, 422, "file", "NUL")
    assert_error(app.get(f"{GENERIC}/nul"), 404)


def test_field_sizes_are_capped(app: TestClient) -> None:
    long = "d" * (MAX_DESCRIPTION_BYTES + 1)
    body = {"name": "f", "function": "response = 1", "functionParameters": {}}
    response = app.post(FUNCTION, json={**body, "description": long})
    body413 = assert_error(response, 413, "description", "64 KB")
    assert body413["error"]["detail"] == {"field": "description"}
    big = {**body, "functionParameters": {"data": "x" * MAX_PARAMETERS_BYTES}}
    response = app.post(FUNCTION, json=big)
    assert assert_error(response, 413, "functionParameters", "1 MB")["error"]["code"] == "too_large"
    nothing_created(app)
    # PATCH merges, then checks the same caps
    changes = {"description": long, "datasetURI": "https://example.com/x.csv"}
    assert_error(app.patch(f"{GENERIC}/blob", json=changes), 413, "description")
    # and uploads' form fields
    upload = app.post(
        GENERIC, data={"datasetName": "described", "description": long}, files={"file": b"x"}
    )
    assert_error(upload, 413, "description")
    assert_error(app.get(f"{GENERIC}/described"), 404)
    fine = app.post(FUNCTION, json={**body, "description": "d" * MAX_DESCRIPTION_BYTES})
    assert fine.status_code == 201, fine.text
    assert app.delete(f"{FUNCTION}/f").status_code == 200


def test_uploads_stream_to_the_volume_not_to_tmp(
    app: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starlette's form parser spools files over 1 MB to /tmp, then we copied them: the
    upload now goes straight to the volume (and a refused one leaves nothing anywhere)."""
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    uploads = Path(app.app.state.settings.data_dir) / "uploads"  # type: ignore[attr-defined]
    content = b"a,b\n" + b"1,2\n" * (250_000 - 1)  # just under 1 MB
    response = app.post(
        CSV, data={"datasetName": "streamed"}, files={"file": ("s.csv", content, "text/csv")}
    )
    assert response.status_code == 201, response.text
    assert list(spool.iterdir()) == []
    assert wait(app, "streamed")["rows"] == 250_000 - 1
    over = app.post(CSV, data={"datasetName": "over"}, files={"file": ("o.csv", content * 2)})
    assert_error(over, 413, "LO_MAX_UPLOAD_MB")
    assert list(spool.iterdir()) == [] and list(uploads.iterdir()) == []
    # malformed multipart: 400, nothing left
    broken = app.post(
        CSV,
        content=b'--B\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nab',
        headers={"content-type": "multipart/form-data; boundary=B"},
    )
    assert broken.status_code in (400, 422), broken.text
    assert_error(broken, broken.status_code)
    no_boundary = app.post(CSV, content=b"x", headers={"content-type": "multipart/form-data"})
    assert_error(no_boundary, 400, "boundary")
    assert list(uploads.iterdir()) == []


def test_logs_answer_a_tail_or_a_range(app: TestClient) -> None:
    log = Path(app.app.state.settings.data_dir) / "logs" / "blob.log"  # type: ignore[attr-defined]
    original = log.read_bytes() if log.exists() else b""
    lines = b"".join(b"line %07d\n" % i for i in range(300_000))  # 3.6 MB
    log.write_bytes(lines)
    try:
        tail: dict[str, Any] = app.get(f"{GENERIC}/blob/logs").json()
        assert tail["size"] == len(lines) and tail["truncated"] is True
        assert tail["result"].encode() == lines[-MAX_LOG_BYTES:]
        assert tail["offset"] == len(lines) - MAX_LOG_BYTES
        first = app.get(f"{GENERIC}/blob/logs", params={"offset": 0, "limit": 26}).json()
        assert first["result"] == "line 0000000\nline 0000001\n" and first["truncated"]
        last = app.get(f"{GENERIC}/blob/logs", params={"offset": len(lines) - 13}).json()
        assert last["result"] == "line 0299999\n"
        beyond = app.get(f"{GENERIC}/blob/logs", params={"offset": 10**9}).json()
        assert beyond["result"] == "" and beyond["size"] == len(lines)
        too_much = app.get(f"{GENERIC}/blob/logs", params={"limit": MAX_LOG_BYTES + 1})
        assert_error(too_much, 422, "limit")
        log.write_bytes(b"short\n")
        whole = app.get(f"{GENERIC}/blob/logs").json()
        assert whole == {"result": "short\n", "offset": 0, "size": 6, "truncated": False}
    finally:
        log.write_bytes(original)
    json.dumps(tail)  # plain JSON
