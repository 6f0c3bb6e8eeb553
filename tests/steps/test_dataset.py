"""dataset/csv and dataset/generic through the real embedded app (API.md, "Routes and bodies").

Everything is real: the app, its SQLite store, the worker processes that fetch over HTTP from
the local `files_server`, and the artifact volume on disk. Read-only tests share one app
(`shared`, module scope) holding a few finished datasets; tests that change state get their own.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.conftest import BASE, TITANIC_TYPES, assert_error, data_file, wait

CSV = f"{BASE}/dataset/csv"
GENERIC = f"{BASE}/dataset/generic"

TRAIN_TYPES = TITANIC_TYPES
TEST_TYPES = {k: v for k, v in TRAIN_TYPES.items() if k != "Survived"}
TYPED_ROWS = [
    {"i": 1, "f": 1.5, "b": True, "s": "x", "mixed": "1", "blank": None},
    {"i": 2, "f": None, "b": False, "s": "y", "mixed": "2.5", "blank": None},
    {"i": None, "f": 3.0, "b": True, "s": None, "mixed": "z", "blank": None},
]
# What API.md's "Step metadata" promises every metadata document holds.
METADATA_KEYS = {
    "name", "type", "finished", "status", "exception", "traceback", "timeCreated", "startedAt",
    "finishedAt", "durationSeconds", "parents", "parameters", "description", "runs", "version",
    "stale", "waitingFor", "progress", "libraries",
}  # fmt: skip


# -- helpers ---------------------------------------------------------------------------------
def expected_rows(path: Path, types: dict[str, str]) -> list[dict[str, Any]]:
    """The rows of a CSV file as the API should serve them, parsed independently."""
    cast: dict[str, Callable[[str], Any]] = {"integer": int, "float": float, "string": str}
    with path.open(newline="") as handle:
        return [
            {k: None if v == "" else cast[types[k]](v) for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]


TRAIN_ROWS = expected_rows(data_file("titanic/train.csv"), TRAIN_TYPES)
TEST_ROWS = expected_rows(data_file("titanic/test.csv"), TEST_TYPES)


def create(client: Any, name: str, url: str, route: str = CSV) -> None:
    response = client.post(route, json={"datasetName": name, "datasetURI": url})
    assert response.status_code == 201, response.text
    assert response.json() == {"result": f"{route}/{name}"}
    assert response.headers["location"] == f"{route}/{name}"


def upload(client: Any, name: str, content: bytes, filename: str, route: str = CSV) -> Any:
    return client.post(
        route, data={"datasetName": name}, files={"file": (filename, content, "text/csv")}
    )


def metadata(client: Any, name: str, route: str = CSV) -> dict[str, Any]:
    response = client.get(f"{route}/{name}", params={"limit": 1})
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()["result"][0]
    return doc


def table_rows(client: Any, name: str) -> list[dict[str, Any]]:
    response = client.get(f"{CSV}/{name}/result", params={"format": "json"})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["result"]
    return rows


def wait_downloading(client: Any, name: str, timeout: float = 15) -> None:
    """Wait until the worker of `name` is fetching /slow.csv. Its status says `running` from the
    moment the supervisor claims it, before the worker process exists; the worker's log shows
    that the job is really under way, so a cancel cannot fall in the gap in between."""
    deadline = time.monotonic() + timeout
    while not (
        metadata(client, name)["status"] == "running"
        and "slow.csv" in client.get(f"{CSV}/{name}/logs").json()["result"]
    ):
        assert time.monotonic() < deadline, metadata(client, name)
        time.sleep(0.02)


def data_dir(client: Any) -> Path:
    folder: Path = client.app.state.settings.data_dir
    return folder


def leftovers(client: Any, name: str) -> list[Path]:
    """What the data volume still holds for step `name`."""
    root = data_dir(client)
    found = [root / "artifacts" / name, root / "scratch" / name, root / "logs" / f"{name}.log"]
    found = [p for p in found if p.exists()]
    found += list((root / "staging").glob(f"{name}.*"))
    found += list((root / "uploads").glob(f"{name}.*"))
    return found


def app_client(tmp: Path, **settings: Any) -> TestClient:
    from learning_orchestra.core.api import create_app
    from learning_orchestra.core.settings import Settings

    settings.setdefault("allow_private_urls", True)  # the local files_server (SSRF opt-in)
    config = Settings(data_dir=tmp / "data", lease_seconds=3, job_timeout=120, **settings)
    return TestClient(create_app(settings=config))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, files_server: str) -> Iterator[TestClient]:
    """One app holding finished datasets that tests only read: train, typed, raw (generic)."""
    with app_client(tmp_path_factory.mktemp("dataset")) as client:
        create(client, "train", f"{files_server}/train.csv")
        create(client, "typed", f"{files_server}/typed.csv")
        create(client, "raw", f"{files_server}/test.csv", route=GENERIC)
        for name in ("train", "typed", "raw"):
            assert wait(client, name)["status"] == "finished"
        yield client


# -- ingesting from a URL --------------------------------------------------------------------
def test_csv_from_url_infers_column_types(shared: TestClient, files_server: str) -> None:
    response = shared.get(f"{CSV}/typed")
    assert response.status_code == 200
    meta, *rows = response.json()["result"]
    assert set(meta) >= METADATA_KEYS
    assert not [k for k in meta if k.startswith("_")]
    assert meta["name"] == meta["datasetName"] == "typed"
    assert meta["type"] == "dataset/csv"
    assert meta["status"] == "finished" and meta["finished"] is True
    assert meta["exception"] is None and meta["traceback"] is None
    assert meta["runs"] == 1 and meta["parents"] == [] and meta["stale"] is False
    assert meta["parameters"]["datasetURI"] == f"{files_server}/typed.csv"
    assert meta["fields"] == ["i", "f", "b", "s", "mixed", "blank"]
    assert meta["types"] == {
        "i": "integer", "f": "float", "b": "boolean", "s": "string", "mixed": "string",
        "blank": "string",
    }  # fmt: skip
    assert meta["rows"] == 3
    assert "pyarrow" in meta["libraries"]
    assert meta["durationSeconds"] >= 0 and meta["startedAt"] and meta["finishedAt"]
    assert rows == TYPED_ROWS
    # exact JSON types: an int is not a float nor a bool, and missing values are null
    assert type(rows[0]["i"]) is int and type(rows[0]["f"]) is float
    assert type(rows[0]["b"]) is bool and type(rows[0]["mixed"]) is str
    # missing values are JSON null, never NaN (which strict JSON parsers reject)
    json.loads(response.text, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))


def test_titanic_rows_match_the_file(shared: TestClient) -> None:
    meta = metadata(shared, "train")
    assert meta["fields"] == list(TRAIN_TYPES)
    assert meta["types"] == TRAIN_TYPES
    assert meta["rows"] == len(TRAIN_ROWS) == 891
    assert meta["progress"] == {"rows": 891}
    assert table_rows(shared, "train") == TRAIN_ROWS


def test_post_answers_at_once_with_a_pending_step(api: TestClient, files_server: str) -> None:
    create(api, "fresh", f"{files_server}/typed.csv")
    meta = metadata(api, "fresh")  # read before the job can have finished its work
    assert set(meta) >= METADATA_KEYS
    assert meta["status"] in ("pending", "running", "finished")
    assert meta["version"] >= 1 and meta["timeCreated"]
    done = wait(api, "fresh")
    assert done["status"] == "finished" and done["runs"] == 1
    assert done["version"] > meta["version"] or meta["status"] == "finished"


# -- uploads ---------------------------------------------------------------------------------
def test_upload_test_csv(api: TestClient) -> None:
    content = data_file("titanic/test.csv").read_bytes()
    response = upload(api, "uploaded", content, "test.csv")
    assert response.status_code == 201, response.text
    assert response.json() == {"result": f"{CSV}/uploaded"}
    assert response.headers["location"] == f"{CSV}/uploaded"
    meta = wait(api, "uploaded")
    assert meta["status"] == "finished", meta["exception"]
    assert meta["parameters"]["datasetURI"] == "upload:test.csv"
    assert meta["fields"] == list(TEST_TYPES)
    assert meta["types"] == TEST_TYPES
    assert meta["rows"] == 418
    assert table_rows(api, "uploaded") == TEST_ROWS
    # the staged upload is discarded once the table holds it
    assert list((data_dir(api) / "uploads").iterdir()) == []


def test_upload_to_generic_keeps_the_exact_bytes(api: TestClient) -> None:
    content = b"\x00\x01binary\xff\r\nnot text at all\x80"
    response = upload(api, "blob", content, "weights.bin", route=GENERIC)
    assert response.status_code == 201, response.text
    meta = wait(api, "blob")
    assert meta["status"] == "finished", meta["exception"]
    assert meta["size"] == len(content) and meta["filename"] == "weights.bin"
    result = api.get(f"{GENERIC}/blob/result")
    assert result.status_code == 200 and result.content == content
    assert api.get(f"{GENERIC}/blob/files/weights.bin").content == content


def test_upload_validation_names_the_field(api: TestClient) -> None:
    content = b"a,b\n1,2\n"
    assert_error(upload(api, "../etc", content, "x.csv"), 422, "datasetName")
    assert_error(upload(api, "a.b", content, "x.csv"), 422, "datasetName")
    no_name = api.post(CSV, files={"file": ("x.csv", content, "text/csv")})
    assert_error(no_name, 422, "datasetName", "required")
    extra = api.post(
        CSV, data={"datasetName": "ok", "color": "red"}, files={"file": ("x.csv", content)}
    )
    assert_error(extra, 422, "color")
    no_file = api.post(
        CSV,
        content=b'--B\r\nContent-Disposition: form-data; name="datasetName"\r\n\r\nok\r\n--B--\r\n',
        headers={"content-type": "multipart/form-data; boundary=B"},
    )
    assert_error(no_file, 422, "file")
    # nothing was recorded nor left on the volume
    assert api.get(CSV).json() == {"result": []}
    assert list((data_dir(api) / "uploads").iterdir()) == []


def test_duplicate_names_are_409(api: TestClient, files_server: str) -> None:
    create(api, "taken", f"{files_server}/typed.csv")
    again = api.post(CSV, json={"datasetName": "taken", "datasetURI": f"{files_server}/x.csv"})
    body = assert_error(again, 409, "taken")
    assert body["error"]["code"] == "name_taken"
    # one namespace for every step type, and for uploads too
    other_type = api.post(GENERIC, json={"datasetName": "taken", "datasetURI": files_server})
    assert_error(other_type, 409, "taken")
    assert_error(upload(api, "taken", b"a\n1\n", "a.csv"), 409, "taken")
    assert list((data_dir(api) / "uploads").iterdir()) == []  # the refused upload is gone
    meta = wait(api, "taken")
    assert meta["parameters"]["datasetURI"] == f"{files_server}/typed.csv"
    assert meta["rows"] == 3


def _multipart(name: str, payload: bytes) -> tuple[bytes, str]:
    head = (
        f'--XB\r\nContent-Disposition: form-data; name="datasetName"\r\n\r\n{name}\r\n'
        '--XB\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    return head + payload + b"\r\n--XB--\r\n", "multipart/form-data; boundary=XB"


def test_oversize_upload_is_413_and_leaves_nothing(tmp_path: Path) -> None:
    megabyte = 1024 * 1024
    row = b"1234567,0.5,abcdefgh\n"
    with app_client(tmp_path, max_upload_mb=1) as client:
        uploads = data_dir(client) / "uploads"
        # declared too large by Content-Length: refused before reading
        big = b"a,b,c\n" + row * (2 * megabyte // len(row))
        assert_error(upload(client, "big", big, "big.csv"), 413, "LO_MAX_UPLOAD_MB")
        # just over the limit (within the slack for multipart headers): refused while streaming
        over = b"a,b,c\n" + row * (megabyte // len(row) + 500)
        assert_error(upload(client, "big", over, "big.csv"), 413, "1 MB")
        # no Content-Length at all (chunked): refused while streaming
        body, content_type = _multipart("big", over)
        chunks = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
        chunked = client.post(CSV, content=chunks, headers={"content-type": content_type})
        assert_error(chunked, 413, "LO_MAX_UPLOAD_MB")
        assert list(uploads.iterdir()) == []
        assert_error(client.get(f"{CSV}/big"), 404)
        # the name was not taken and an upload under the limit works
        small = b"a,b,c\n" + row * 1000
        assert upload(client, "big", small, "big.csv").status_code == 201
        meta = wait(client, "big")
        assert meta["status"] == "finished" and meta["rows"] == 1000
        assert list(uploads.iterdir()) == []


# -- paging ----------------------------------------------------------------------------------
def test_paging_applies_to_metadata_plus_rows(shared: TestClient) -> None:
    def page(**params: Any) -> list[Any]:
        response = shared.get(f"{CSV}/train", params=params)
        assert response.status_code == 200, response.text
        items: list[Any] = response.json()["result"]
        return items

    default = page()
    assert len(default) == 20  # limit 20 over [metadata, *rows]: the metadata and 19 rows
    assert default[0]["name"] == "train" and default[1:] == TRAIN_ROWS[:19]
    assert page(skip=1, limit=1) == [TRAIN_ROWS[0]]  # LO's idiom: one row, no metadata
    only_meta = page(limit=1)
    assert len(only_meta) == 1 and only_meta[0]["name"] == "train"
    assert page(skip=5, limit=3) == TRAIN_ROWS[4:7]
    assert page(skip=1, limit=100) == TRAIN_ROWS[:100]
    assert page(skip=891, limit=5) == [TRAIN_ROWS[890]]
    assert page(skip=892, limit=5) == []
    assert page(skip=5000) == []
    full = page(limit=100)
    assert len(full) == 100 and full[1:] == TRAIN_ROWS[:99]
    assert_error(shared.get(f"{CSV}/train", params={"limit": 101}), 422, "limit")
    assert_error(shared.get(f"{CSV}/train", params={"limit": 0}), 422, "limit")
    assert_error(shared.get(f"{CSV}/train", params={"skip": -1}), 422, "skip")
    assert_error(shared.get(f"{CSV}/train", params={"skip": "x"}), 422, "skip")


# -- query -----------------------------------------------------------------------------------
def _matching(client: TestClient, name: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row matching `query`, page by page (skip/limit count after the filter)."""
    text = json.dumps(query)
    first = client.get(f"{CSV}/{name}", params={"query": text, "limit": 100})
    assert first.status_code == 200, (query, first.text)
    meta, *rows = first.json()["result"]
    assert meta["name"] == name  # the metadata stays item 0 whatever the query
    skip = 100
    while True:
        response = client.get(f"{CSV}/{name}", params={"query": text, "skip": skip, "limit": 100})
        assert response.status_code == 200, (query, response.text)
        page = response.json()["result"]
        rows += page
        if len(page) < 100:
            return rows
        skip += 100


QUERIES: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ({"Sex": "female"}, lambda r: r["Sex"] == "female"),
    ({"Pclass": 1, "Survived": 0}, lambda r: r["Pclass"] == 1 and r["Survived"] == 0),
    ({"Sex": {"$eq": "male"}}, lambda r: r["Sex"] == "male"),
    ({"Pclass": {"$ne": 3}}, lambda r: r["Pclass"] != 3),
    ({"Embarked": {"$ne": "S"}}, lambda r: r["Embarked"] != "S"),  # null cells too, as MongoDB
    ({"Age": {"$gt": 60}}, lambda r: r["Age"] is not None and r["Age"] > 60),
    ({"Age": {"$gte": 62}}, lambda r: r["Age"] is not None and r["Age"] >= 62),
    ({"Fare": {"$lt": 5}}, lambda r: r["Fare"] < 5),
    ({"Fare": {"$lte": 7.25}}, lambda r: r["Fare"] <= 7.25),
    ({"Age": {"$gte": 20, "$lt": 21}}, lambda r: r["Age"] is not None and 20 <= r["Age"] < 21),
    ({"Embarked": {"$in": ["C", "Q"]}}, lambda r: r["Embarked"] in ("C", "Q")),
    ({"Embarked": {"$in": ["Q", None]}}, lambda r: r["Embarked"] in ("Q", None)),
    ({"Embarked": {"$nin": ["S", "C"]}}, lambda r: r["Embarked"] not in ("S", "C")),
    ({"Age": None}, lambda r: r["Age"] is None),
    ({"Age": {"$ne": None}}, lambda r: r["Age"] is not None),
    ({"Cabin": {"$exists": True}}, lambda r: r["Cabin"] is not None),
    ({"Cabin": {"$exists": False}}, lambda r: r["Cabin"] is None),
    ({"Age": 22}, lambda r: r["Age"] == 22),  # an integer against a float column
    (
        {"$or": [{"Sex": "female", "Pclass": 1}, {"Age": {"$lt": 5}}]},
        lambda r: (
            (r["Sex"] == "female" and r["Pclass"] == 1) or (r["Age"] is not None and r["Age"] < 5)
        ),
    ),
    (
        {"$and": [{"Survived": 1}, {"$or": [{"Embarked": "Q"}, {"Fare": {"$gt": 200}}]}]},
        lambda r: r["Survived"] == 1 and (r["Embarked"] == "Q" or r["Fare"] > 200),
    ),
    # a value of another type than the column's never matches (MongoDB's type brackets)
    ({"Age": "22"}, lambda r: False),
    ({"Sex": {"$ne": 5}}, lambda r: True),
]


def test_query_subset_matches_mongodb_semantics(shared: TestClient) -> None:
    for query, predicate in QUERIES:
        expected = [r for r in TRAIN_ROWS if predicate(r)]
        assert _matching(shared, "train", query) == expected, query
    # skip/limit apply to [metadata, *matching rows]
    female = [r for r in TRAIN_ROWS if r["Sex"] == "female"]
    response = shared.get(
        f"{CSV}/train", params={"query": '{"Sex": "female"}', "skip": 3, "limit": 2}
    )
    assert response.json()["result"] == female[2:4]
    nothing = shared.get(f"{CSV}/train", params={"query": '{"Age": {"$gt": 1000}}'})
    assert [m["name"] for m in nothing.json()["result"]] == ["train"]
    # typed.csv: booleans and null columns
    assert _matching(shared, "typed", {"b": True}) == [TYPED_ROWS[0], TYPED_ROWS[2]]
    assert _matching(shared, "typed", {"blank": {"$exists": False}}) == TYPED_ROWS
    assert _matching(shared, "typed", {"f": {"$in": [3, 1.5]}}) == [TYPED_ROWS[0], TYPED_ROWS[2]]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ('{"Age": {"$regex": "^2"}}', "$regex"),
        ('{"$where": "this.Age > 3"}', "$where"),
        ('{"Name": {"$text": "Mr"}}', "$text"),
        ('{"$nor": [{"Sex": "male"}]}', "$nor"),
        ('{"Nope": 1}', "Nope"),
        ('{"$or": [{"Nope": 1}]}', "Nope"),
        ("{not json", "JSON"),
        ("[1, 2]", "object"),
        ('{"Age": {"$in": 5}}', "list"),
        ('{"$and": []}', "$and"),
        ('{"$or": [1]}', "$or"),
        ('{"Age": {"$gt": [1]}}', "Age"),
    ],
)
def test_bad_query_is_422(shared: TestClient, query: str, fragment: str) -> None:
    response = shared.get(f"{CSV}/train", params={"query": query})
    assert_error(response, 422, fragment)


def test_query_on_a_file_output_is_422(shared: TestClient) -> None:
    response = shared.get(f"{GENERIC}/raw", params={"query": '{"a": 1}'})
    assert_error(response, 422, "table")


# -- failures --------------------------------------------------------------------------------
def test_bad_sources_fail_the_step_with_a_readable_reason(
    api: TestClient, files_server: str
) -> None:
    closed = f"http://127.0.0.1:{_closed_port()}/x.csv"
    cases = {
        "malformed": (f"{files_server}/malformed.csv", ["malformed", "columns"]),
        "empty": (f"{files_server}/empty.csv", ["empty"]),
        "missing": (f"{files_server}/missing.csv", ["404", "missing.csv"]),
        "html": (f"{files_server}/page.html", ["text/html", "not a CSV"]),
        "refused": (closed, ["could not fetch", "x.csv"]),
    }
    for name, (url, _) in cases.items():
        create(api, name, url)
    for name, (_, fragments) in cases.items():
        meta = wait(api, name)
        assert meta["status"] == "failed" and meta["finished"] is False, meta
        message = meta["exception"]
        assert "\n" not in message
        for fragment in fragments:
            assert fragment.lower() in message.lower(), (name, message)
        assert meta["traceback"] is None  # a user error, not a crash
        assert api.get(f"{CSV}/{name}").json()["result"] == [meta]
        assert_error(api.get(f"{CSV}/{name}/result"), 404, "no output")
        assert_error(api.get(f"{CSV}/{name}", params={"query": '{"a": 1}'}), 422, "no table")
        assert not (data_dir(api) / "artifacts" / name).exists()


def _closed_port() -> int:
    from tests.conftest import free_port

    return free_port()


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ({"datasetName": "d", "datasetURI": "file:///etc/passwd"}, ["datasetURI", "http"]),
        ({"datasetName": "d", "datasetURI": "ftp://host/x.csv"}, ["datasetURI"]),
        ({"datasetName": "d", "datasetURI": "not a url"}, ["datasetURI"]),
        ({"datasetName": "d", "datasetURI": "http://"}, ["datasetURI"]),
        ({"datasetName": "d", "datasetURI": "/tmp/x.csv"}, ["datasetURI", "multipart"]),
        ({"datasetName": "d", "datasetURI": "upload:x.csv"}, ["datasetURI"]),
        ({"datasetName": "a.b", "datasetURI": "http://h/x.csv"}, ["datasetName"]),
        ({"datasetName": "../x", "datasetURI": "http://h/x.csv"}, ["datasetName"]),
        ({"datasetName": "", "datasetURI": "http://h/x.csv"}, ["datasetName"]),
        ({"datasetName": "-x", "datasetURI": "http://h/x.csv"}, ["datasetName"]),
        ({"datasetName": "x" * 129, "datasetURI": "http://h/x.csv"}, ["datasetName"]),
        ({"datasetName": 5, "datasetURI": "http://h/x.csv"}, ["datasetName"]),
        ({"datasetName": "d", "datasetURI": "http://h/x.csv", "extra": 1}, ["extra", "unknown"]),
        ({"datasetName": "d", "dataset_uri": "http://h/x.csv"}, ["dataset_uri", "datasetURI"]),
        ({"datasetURI": "http://h/x.csv"}, ["datasetName", "required"]),
        ({"datasetName": "d"}, ["datasetURI", "required"]),
        ([{"datasetName": "d"}], []),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(
    shared: TestClient, body: Any, fragments: list[str]
) -> None:
    before = shared.get(f"{BASE}/observe/train").json()["result"]["version"]
    assert_error(shared.post(CSV, json=body), 422, *fragments)
    assert [d["name"] for d in shared.get(CSV).json()["result"]] == ["train", "typed"]
    assert shared.get(f"{BASE}/observe/train").json()["result"]["version"] == before


def test_malformed_json_is_400(api: TestClient) -> None:
    json_type = {"content-type": "application/json"}
    for raw in (b"{bad", b"", b'{"datasetName": "x",}', b"\xff\xfe"):
        assert_error(api.post(CSV, content=raw, headers=json_type), 400, "JSON")
    assert_error(api.post(GENERIC, content=b"{", headers=json_type), 400, "JSON")
    assert api.get(CSV).json() == {"result": []}


def test_unknown_routes_and_names_are_404(api: TestClient) -> None:
    assert_error(api.get(f"{CSV}/nobody"), 404, "nobody")
    assert_error(api.get(f"{BASE}/dataset/xml"), 404)
    assert_error(api.get(f"{BASE}/nothing/here"), 404)
    assert_error(api.get(f"{CSV}/a.b"), 422, "name")  # not a valid name at all


# -- reading the output ----------------------------------------------------------------------
def test_result_formats(shared: TestClient) -> None:
    as_json = shared.get(f"{CSV}/train/result")
    assert as_json.status_code == 200 and as_json.json()["result"] == TRAIN_ROWS
    assert shared.get(f"{CSV}/train/result", params={"format": "json"}).json() == as_json.json()

    as_csv = shared.get(f"{CSV}/train/result", params={"format": "csv"})
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "train.csv" in as_csv.headers["content-disposition"]
    reader = csv.DictReader(io.StringIO(as_csv.text))
    assert reader.fieldnames == list(TRAIN_TYPES)
    cast: dict[str, Callable[[str], Any]] = {"integer": int, "float": float, "string": str}
    parsed = [
        {k: None if v == "" else cast[TRAIN_TYPES[k]](v) for k, v in row.items()} for row in reader
    ]
    assert parsed == TRAIN_ROWS

    as_parquet = shared.get(f"{CSV}/train/result", params={"format": "parquet"})
    assert as_parquet.status_code == 200
    assert "train.parquet" in as_parquet.headers["content-disposition"]
    table = pq.read_table(io.BytesIO(as_parquet.content))
    assert table.column_names == list(TRAIN_TYPES)
    assert table.schema.field("PassengerId").type == pa.int64()
    assert table.schema.field("Age").type == pa.float64()
    assert table.schema.field("Name").type == pa.string()
    assert table.to_pylist() == TRAIN_ROWS

    assert_error(shared.get(f"{CSV}/train/result", params={"format": "xml"}), 422, "format")
    assert_error(shared.get(f"{CSV}/nobody/result"), 404, "nobody")


def test_files_and_downloads(shared: TestClient) -> None:
    listing = shared.get(f"{CSV}/train/files")
    assert listing.status_code == 200
    (entry,) = listing.json()["result"]
    assert entry["filename"] == "table.parquet"
    download = shared.get(f"{CSV}/train/files/table.parquet")
    assert download.status_code == 200
    assert len(download.content) == entry["size"]
    assert hashlib.sha256(download.content).hexdigest() == entry["sha256"]
    assert pq.read_table(io.BytesIO(download.content)).to_pylist() == TRAIN_ROWS
    for bad in (
        "nope.parquet",
        "manifest.json",
        "..%2Fmanifest.json",
        "..%2F..%2F..%2Fstore.sqlite3",
        "..%2F..%2F..%2F.secret-key",
        "%2E%2E",
        "%2E%2E%2F%2E%2E%2Fstore.sqlite3",
    ):  # (httpx would resolve a literal '../' itself, so the tricks are percent-encoded)
        assert_error(shared.get(f"{CSV}/train/files/{bad}"), 404)
    assert_error(shared.get(f"{CSV}/nobody/files"), 404, "nobody")


def test_logs(shared: TestClient, files_server: str) -> None:
    logs = shared.get(f"{CSV}/typed/logs")
    assert logs.status_code == 200
    assert f"{files_server}/typed.csv" in logs.json()["result"]  # the fetch was logged
    assert_error(shared.get(f"{CSV}/nobody/logs"), 404, "nobody")


def test_generic_from_url(shared: TestClient, files_server: str) -> None:
    source = data_file("titanic/test.csv").read_bytes()
    meta, *records = shared.get(f"{GENERIC}/raw").json()["result"]
    assert meta["type"] == "dataset/generic" and meta["datasetName"] == "raw"
    assert meta["filename"] == "test.csv" and meta["size"] == len(source)
    assert meta["contentType"] == "text/csv"
    assert [r["status"] for r in records] == ["finished"]
    (latest,) = shared.get(f"{GENERIC}/raw", params={"skip": 1, "limit": 1}).json()["result"]
    assert latest["run"] == 1 and latest["status"] == "finished"
    assert latest["parameters"]["datasetURI"] == f"{files_server}/test.csv"
    assert latest["exception"] is None and isinstance(latest["functionMessage"], str)

    result = shared.get(f"{GENERIC}/raw/result")
    assert result.status_code == 200 and result.content == source
    (entry,) = shared.get(f"{GENERIC}/raw/files").json()["result"]
    assert entry == {
        "filename": "test.csv",
        "size": len(source),
        "sha256": hashlib.sha256(source).hexdigest(),
    }
    assert shared.get(f"{GENERIC}/raw/files/test.csv").content == source
    assert_error(shared.get(f"{GENERIC}/raw/result", params={"format": "csv"}), 422, "files")


def test_wrong_type_is_404_and_touches_nothing(shared: TestClient) -> None:
    before = metadata(shared, "raw", GENERIC)
    responses = [
        shared.get(f"{CSV}/raw"),
        shared.patch(f"{CSV}/raw", json={}),
        shared.delete(f"{CSV}/raw"),
        shared.post(f"{CSV}/raw/cancel"),
        shared.get(f"{CSV}/raw/result"),
        shared.get(f"{CSV}/raw/files"),
        shared.get(f"{CSV}/raw/files/test.csv"),
        shared.get(f"{CSV}/raw/logs"),
        shared.get(f"{GENERIC}/train"),
    ]
    for response in responses:
        assert_error(response, 404, "dataset/")
    assert metadata(shared, "raw", GENERIC) == before


def test_list_with_skip_and_limit(api: TestClient, files_server: str) -> None:
    for name in ("one", "two", "three"):
        create(api, name, f"{files_server}/typed.csv")
    create(api, "file", f"{files_server}/typed.csv", route=GENERIC)
    for name in ("one", "two", "three", "file"):
        wait(api, name)

    def names(route: str = CSV, **params: Any) -> list[str]:
        response = api.get(route, params=params)
        assert response.status_code == 200, response.text
        docs = response.json()["result"]
        assert all(not k.startswith("_") for d in docs for k in d)
        return [d["name"] for d in docs]

    assert names() == ["one", "two", "three"]  # creation order, this type only
    assert names(skip=1) == ["two", "three"]
    assert names(limit=2) == ["one", "two"]
    assert names(skip=1, limit=1) == ["two"]
    assert names(skip=3) == []
    assert names(GENERIC) == ["file"]
    assert_error(api.get(CSV, params={"limit": 101}), 422, "limit")
    assert_error(api.get(CSV, params={"skip": -1}), 422, "skip")


# -- delete, re-run, cancel ------------------------------------------------------------------
def test_delete_removes_metadata_and_output(api: TestClient, files_server: str) -> None:
    create(api, "gone", f"{files_server}/typed.csv")
    wait(api, "gone")
    artifacts = data_dir(api) / "artifacts" / "gone"
    assert artifacts.is_dir() and any(artifacts.iterdir())
    response = api.delete(f"{CSV}/gone")
    assert response.status_code == 200 and response.json() == {"result": "deleted gone"}
    assert leftovers(api, "gone") == []
    assert_error(api.get(f"{CSV}/gone"), 404, "gone")
    assert_error(api.get(f"{CSV}/gone/result"), 404)
    assert_error(api.delete(f"{CSV}/gone"), 404, "gone")
    assert_error(api.get(f"{BASE}/observe/gone", params={"timeout": 0.5}), 404)
    assert api.get(CSV).json() == {"result": []}
    # the name is free again, for a different content
    create(api, "gone", f"{files_server}/train.csv")
    meta = wait(api, "gone")
    assert meta["status"] == "finished" and meta["runs"] == 1 and meta["rows"] == 891
    assert table_rows(api, "gone") == TRAIN_ROWS


def test_patch_reruns_with_a_new_uri(api: TestClient, files_server: str) -> None:
    create(api, "ds", f"{files_server}/typed.csv")
    first = wait(api, "ds")
    response = api.patch(f"{CSV}/ds", json={"datasetURI": f"{files_server}/train.csv"})
    assert response.status_code == 201, response.text
    assert response.json() == {"result": f"{CSV}/ds"}
    assert response.headers["location"] == f"{CSV}/ds"
    second = wait(api, "ds")
    assert second["status"] == "finished", second["exception"]
    assert second["runs"] == 2 and second["version"] > first["version"]
    assert second["parameters"]["datasetURI"] == f"{files_server}/train.csv"
    assert second["fields"] == list(TRAIN_TYPES) and second["rows"] == 891
    assert table_rows(api, "ds") == TRAIN_ROWS
    runs = list((data_dir(api) / "artifacts" / "ds").iterdir())
    assert len(runs) == 1  # the previous run's output was pruned
    # keys omitted keep their stored value
    assert api.patch(f"{CSV}/ds", json={"description": "again"}).status_code == 201
    third = wait(api, "ds")
    assert third["runs"] == 3 and third["description"] == "again" and third["rows"] == 891


def test_patch_validation(api: TestClient, files_server: str) -> None:
    create(api, "ds", f"{files_server}/typed.csv")
    before = wait(api, "ds")
    assert_error(api.patch(f"{CSV}/ds", json={"datasetName": "other"}), 422, "datasetName")
    assert_error(api.patch(f"{CSV}/ds", json={"bogus": 1}), 422, "bogus")
    assert_error(api.patch(f"{CSV}/ds", json={"datasetURI": "ftp://x/y"}), 422, "datasetURI")
    assert_error(api.patch(f"{CSV}/ds", json=[1]), 422, "object")
    bad_json = api.patch(f"{CSV}/ds", content=b"{", headers={"content-type": "application/json"})
    assert_error(bad_json, 400, "JSON")
    assert_error(api.patch(f"{CSV}/nobody", json={}), 404, "nobody")
    assert metadata(api, "ds") == before  # nothing changed


def test_patch_after_upload(api: TestClient, files_server: str) -> None:
    assert upload(api, "up", b"a,b\n1,2\n", "small.csv").status_code == 201
    assert wait(api, "up")["rows"] == 1
    # the upload is not kept, so a bare re-run cannot work: say what to do instead
    assert_error(api.patch(f"{CSV}/up", json={}), 422, "datasetURI", "upload")
    response = api.patch(f"{CSV}/up", json={"datasetURI": f"{files_server}/typed.csv"})
    assert response.status_code == 201, response.text
    meta = wait(api, "up")
    assert meta["status"] == "finished", meta["exception"]
    assert meta["runs"] == 2 and meta["rows"] == 3
    assert table_rows(api, "up") == TYPED_ROWS


def test_cancel_a_running_rerun_keeps_the_previous_output(
    api: TestClient, files_server: str
) -> None:
    create(api, "ds", f"{files_server}/typed.csv")
    wait(api, "ds")
    assert (
        api.patch(f"{CSV}/ds", json={"datasetURI": f"{files_server}/slow.csv"}).status_code == 201
    )
    wait_downloading(api, "ds")
    busy = api.patch(f"{CSV}/ds", json={"datasetURI": f"{files_server}/typed.csv"})
    assert_error(busy, 409, "busy")
    # while it runs, the previous table is still what GET serves
    assert api.get(f"{CSV}/ds", params={"skip": 1}).json()["result"] == TYPED_ROWS
    assert table_rows(api, "ds") == TYPED_ROWS

    started = time.monotonic()
    response = api.post(f"{CSV}/ds/cancel")
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 5
    meta = response.json()["result"]
    assert meta["status"] == "cancelled" and meta["finished"] is False
    assert "cancelled" in meta["exception"]
    assert wait(api, "ds", timeout=1)["status"] == "cancelled"  # terminal: answers at once
    # the previous output stays intact and readable
    assert api.get(f"{CSV}/ds", params={"skip": 1}).json()["result"] == TYPED_ROWS
    assert table_rows(api, "ds") == TYPED_ROWS
    assert_error(api.post(f"{CSV}/ds/cancel"), 409, "cancelled")
    # and it can be re-run again
    assert (
        api.patch(f"{CSV}/ds", json={"datasetURI": f"{files_server}/train.csv"}).status_code == 201
    )
    meta = wait(api, "ds")
    assert meta["status"] == "finished" and meta["runs"] == 3 and meta["rows"] == 891


def test_cancel_a_first_run(api: TestClient, files_server: str) -> None:
    create(api, "slow", f"{files_server}/slow.csv")
    wait_downloading(api, "slow")
    response = api.post(f"{CSV}/slow/cancel")
    assert response.status_code == 200
    meta = response.json()["result"]
    assert meta["status"] == "cancelled" and meta["finished"] is False
    assert api.get(f"{CSV}/slow").json()["result"] == [metadata(api, "slow")]
    assert_error(api.get(f"{CSV}/slow/result"), 404, "no output")
    assert not list((data_dir(api) / "staging").glob("slow.*"))
    assert_error(api.post(f"{CSV}/nobody/cancel"), 404, "nobody")


def test_delete_a_running_step(api: TestClient, files_server: str) -> None:
    create(api, "slow", f"{files_server}/slow.csv")
    wait_downloading(api, "slow")
    started = time.monotonic()
    response = api.delete(f"{CSV}/slow")
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 5
    assert_error(api.get(f"{CSV}/slow"), 404)
    deadline = time.monotonic() + 5
    supervisor = api.app.state.steps.supervisor
    # The killed worker's files go with it. (Also wait for the supervisor to be done with the old
    # run: core/jobs.py's `_finish` matches the step by name and lease owner only, so an old run
    # ending after a same-named new step was claimed marks the new one cancelled — a known race.)
    while leftovers(api, "slow") or "slow" in supervisor.jobs:
        assert time.monotonic() < deadline, leftovers(api, "slow")
        time.sleep(0.05)
    # the name is reusable, and the old run's end does not touch the new step
    create(api, "slow", f"{files_server}/typed.csv")
    meta = wait(api, "slow")
    assert meta["status"] == "finished", meta["exception"]
    assert meta["runs"] == 1 and meta["rows"] == 3
    time.sleep(0.3)
    assert metadata(api, "slow") == meta
    assert table_rows(api, "slow") == TYPED_ROWS


# -- the CSV parser itself (steps/dataset/jobs.py), on small blocks -----------------------------
# One pass with the first block's types, a full inference pass only when a later value does
# not fit. BLOCK_SIZE is made tiny so the first block is a few lines.


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> Any:
    from learning_orchestra.steps.dataset import jobs

    monkeypatch.setattr(jobs, "BLOCK_SIZE", 64)
    return jobs


def parse(jobs: Any, tmp_path: Path, text: str) -> tuple[dict[str, str], pa.Table]:
    source = tmp_path / "in.csv"
    source.write_text(text)
    types, rows = jobs.csv_to_parquet(source, tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert rows == table.num_rows
    return types, table


def test_a_late_value_widens_its_column_as_if_inferred_over_the_whole_file(
    small_blocks: Any, tmp_path: Path
) -> None:
    lines = ["i,b,empty_first,never,f,t"]
    lines += [f"{n},true,,,{n},x" for n in range(40)]  # the first blocks: narrow types
    lines += ["2.5,yes,7,,1e3,y", "3,FaLsE, 8 ,,2,z"]
    types, table = parse(small_blocks, tmp_path, "\n".join(lines) + "\n")
    assert types == {
        "i": "float",  # a fraction late in a column of whole numbers
        "b": "string",  # a word late in a column of booleans
        "empty_first": "integer",  # no value in the first block, integers later
        "never": "string",  # no value anywhere
        "f": "float",  # 1e3 is a number but not an integer
        "t": "string",
    }
    assert table.schema.field("i").type == pa.float64()
    assert table.column("i").to_pylist()[-3:] == [39.0, 2.5, 3.0]
    assert table.column("b").to_pylist()[-2:] == ["yes", "FaLsE"]
    assert table.column("empty_first").to_pylist()[-3:] == [None, 7, 8]  # spaces around
    assert table.column("never").null_count == 42
    assert table.column("f").to_pylist()[-2:] == [1000.0, 2.0]


def test_types_that_hold_in_the_first_block_are_kept(small_blocks: Any, tmp_path: Path) -> None:
    lines = ["i,b,f,s"] + [f"{n},{'TRUE' if n % 2 else 'false'},{n / 4},s{n}" for n in range(60)]
    types, table = parse(small_blocks, tmp_path, "\n".join(lines) + "\n")
    assert types == {"i": "integer", "b": "boolean", "f": "float", "s": "string"}
    assert table.column("b").to_pylist()[:3] == [False, True, False]
    assert table.column("i").to_pylist() == list(range(60))


def test_ones_and_zeros_are_integers_not_booleans(small_blocks: Any, tmp_path: Path) -> None:
    lines = ["flag,mixed"] + ["1,true"] * 20 + ["0,1"]
    types, table = parse(small_blocks, tmp_path, "\n".join(lines) + "\n")
    assert types == {"flag": "integer", "mixed": "string"}
    assert table.column("mixed").to_pylist()[-2:] == ["true", "1"]


def test_a_header_alone_and_a_malformed_line(small_blocks: Any, tmp_path: Path) -> None:
    types, table = parse(small_blocks, tmp_path, "a,b\n")
    assert types == {"a": "string", "b": "string"} and table.num_rows == 0
    bad = "a,b\n" + "1,2\n" * 30 + "1,2,3\n"
    with pytest.raises(pa.ArrowInvalid, match="Expected 2 columns"):
        parse(small_blocks, tmp_path, bad)


def test_rows_are_written_in_large_row_groups(
    small_blocks: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As pyarrow.parquet.write_table groups them (ROW_GROUP_ROWS), not one group per block,
    or smaller when a group would exceed ROW_GROUP_BYTES; progress about once a second."""
    monkeypatch.setattr(small_blocks, "ROW_GROUP_ROWS", 100)
    monkeypatch.setattr(small_blocks, "PROGRESS_SECONDS", 0.0)
    source = tmp_path / "in.csv"
    source.write_text("n,s\n" + "".join(f"{n},text {n}\n" for n in range(1050)))
    reported: list[int] = []
    _, rows = small_blocks.csv_to_parquet(source, tmp_path / "out.parquet", reported.append)
    meta = pq.read_metadata(tmp_path / "out.parquet")
    groups = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    assert rows == 1050 and groups == [100] * 10 + [50]
    assert reported and reported == sorted(reported) and reported[-1] <= 1050
    assert pq.read_table(tmp_path / "out.parquet").column("n").to_pylist() == list(range(1050))

    monkeypatch.setattr(small_blocks, "ROW_GROUP_BYTES", 2000)  # about 150 rows of this table
    small_blocks.csv_to_parquet(source, tmp_path / "bytes.parquet")
    meta = pq.read_metadata(tmp_path / "bytes.parquet")
    assert 1050 / 100 < meta.num_row_groups <= 1050 / 10
    assert pq.read_table(tmp_path / "bytes.parquet").column("n").to_pylist() == list(range(1050))


# -- a table stored as several parts, through every route that reads tables ------------------


def test_a_table_of_parts_reads_as_one_everywhere(shared: TestClient) -> None:
    """core/tables.py's second layout (table/part-*.parquet, what a Spark job writes): a copy
    of the "train" dataset whose output is rewritten as three parts and re-signed reads back
    exactly as "train" does, through pages, queries and every result format."""
    from learning_orchestra.core.tables import TABLE_FILE

    female = {"skip": 5, "limit": 50, "query": '{"Sex": "female"}'}
    content = data_file("titanic/train.csv").read_bytes()
    assert upload(shared, "parts", content, "train.csv").status_code == 201
    assert wait(shared, "parts")["status"] == "finished"
    volume = shared.app.state.steps.volume
    (run_dir,) = (data_dir(shared) / "artifacts" / "parts").iterdir()
    table = pq.read_table(run_dir / TABLE_FILE)
    staging = volume.staging_dir("parts", "new")
    (staging / "table").mkdir()
    for index, (start, stop) in enumerate([(0, 300), (300, 301), (301, table.num_rows)]):
        part = staging / "table" / f"part-{index:05d}.parquet"
        pq.write_table(table.slice(start, stop - start), part, row_group_size=64)
    shutil.rmtree(run_dir)
    volume.commit("parts", run_dir.name, staging, kind="table", fmt="parquet")
    assert sorted(p.name for p in (run_dir / "table").iterdir())[0] == "part-00000.parquet"
    try:
        for params in ({"skip": 300, "limit": 100}, {"skip": 1, "limit": 1}, female):
            assert (
                shared.get(f"{CSV}/parts", params=params).json()["result"]
                == shared.get(f"{CSV}/train", params=params).json()["result"]
            )
        assert table_rows(shared, "parts") == table_rows(shared, "train")
        as_csv = {
            name: shared.get(f"{CSV}/{name}/result", params={"format": "csv"}).content
            for name in ("parts", "train")
        }
        assert as_csv["parts"] == as_csv["train"]
        # format=parquet: the parts joined into one file as it streams
        as_parquet = shared.get(f"{CSV}/parts/result", params={"format": "parquet"})
        assert as_parquet.status_code == 200
        assert pq.read_table(io.BytesIO(as_parquet.content)).equals(table)
    finally:
        assert shared.delete(f"{CSV}/parts").status_code == 200
