"""The client against a real server process over real HTTP (fixtures in tests/conftest.py).

`lo_server` is one embedded server for the session and `files_server` a local HTTP server
holding the Titanic CSVs and bad files, so every test uses names of its own.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from learning_orchestra_client import (
    AsyncDatasetCsv,
    AsyncObserver,
    Conflict,
    ConnectionFailed,
    DatasetCsv,
    DatasetGeneric,
    InvalidRequest,
    NotFound,
    Observer,
    Orchestra,
    StepCancelled,
    StepFailed,
    Unauthorized,
    WaitTimeout,
)
from tests.conftest import ServerProcess, data_file, free_port

pytestmark = pytest.mark.e2e

API = "/api/learningOrchestra/v1"
TRAIN = data_file("titanic/train.csv")
TRAIN_ROWS = 891
FEMALES = 314


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def csv(lo_server: str) -> Iterator[DatasetCsv]:
    with DatasetCsv(lo_server) as client:
        yield client


@pytest.fixture
def observer(lo_server: str) -> Iterator[Observer]:
    with Observer(lo_server) as client:
        yield client


def all_pages(csv: DatasetCsv, name: str, query: dict[str, Any], limit: int) -> list[Any]:
    """Every row matching `query`, read page by page (item 0 of each page is metadata)."""
    rows: list[Any] = []
    skip = 1
    while True:
        page = csv.search_dataset_content(name, query=query, limit=limit, skip=skip)["result"]
        rows += page
        if len(page) < limit:
            return rows
        skip += limit


def test_upload_wait_search_and_delete(csv: DatasetCsv) -> None:
    name = unique("upload")
    answer = csv.insert_dataset_sync(name, file=TRAIN, timeout=120)
    assert answer == {"result": f"{API}/dataset/csv/{name}"}

    metadata = csv.wait(name, timeout=10)  # the metadata itself, as LO's wait returned it
    assert metadata["status"] == "finished"
    assert metadata["finished"] is True
    assert metadata["datasetName"] == name
    assert metadata["rows"] == TRAIN_ROWS
    assert "Sex" in metadata["fields"]

    first = csv.search_dataset_content(name, limit=3)["result"]
    assert len(first) == 3
    assert first[0]["name"] == name  # the metadata document comes first
    assert first[1]["PassengerId"] == 1

    second = csv.search_dataset_content(name, skip=3, limit=2)
    assert [row["PassengerId"] for row in second["result"]] == [3, 4]

    females = all_pages(csv, name, {"Sex": "female"}, limit=100)
    assert len(females) == FEMALES
    assert {row["Sex"] for row in females} == {"female"}
    assert len({row["PassengerId"] for row in females}) == FEMALES

    older = csv.search_dataset_content(
        name, query={"$and": [{"Sex": "female"}, {"Age": {"$gt": 60}}]}, skip=1, limit=100
    )["result"]
    assert older and all(row["Age"] > 60 and row["Sex"] == "female" for row in older)

    pretty = csv.search_dataset_content(name, limit=1, pretty_response=True)
    assert isinstance(pretty, str)
    assert pretty.startswith('{\n    "result": [')
    assert json.loads(pretty)["result"][0]["name"] == name
    assert json.loads(pretty) == csv.search_dataset_content(name, limit=1)

    deleted = csv.delete_dataset(name)
    assert isinstance(deleted, dict) and isinstance(deleted["result"], str)
    with pytest.raises(NotFound):
        csv.search_dataset_content(name)
    with pytest.raises(NotFound):
        csv.wait(name, timeout=5)


def test_insert_from_url_sync_and_list(csv: DatasetCsv, files_server: str) -> None:
    name = unique("url")
    csv.insert_dataset_sync(dataset_name=name, url=f"{files_server}/train.csv", timeout=120)
    assert csv.search_dataset_content(name, limit=1)["result"][0]["rows"] == TRAIN_ROWS

    names: list[str] = []
    skip = 0
    while True:
        page = csv.search_all_datasets(skip=skip, limit=50)["result"]
        names += [item["name"] for item in page]
        if len(page) < 50:
            break
        skip += 50
    assert name in names
    assert json.loads(csv.search_all_datasets(True, limit=1))["result"][0].keys() >= {"name"}
    csv.delete_dataset_async(name)


def test_insert_async_then_observe(csv: DatasetCsv, observer: Observer, files_server: str) -> None:
    name = unique("async")
    assert csv.insert_dataset_async(name, url=f"{files_server}/test.csv") == {
        "result": f"{API}/dataset/csv/{name}"
    }
    metadata = observer.wait(name, timeout=120)
    assert metadata["status"] == "finished"

    current = observer.observe(name)  # since=0: answers at once with the current state
    assert current["status"] == "finished"
    assert current["version"] >= 1
    assert [m["status"] for m in observer.observe_pipe(name, timeout=30)] == ["finished"]
    assert [e["status"] for e in observer.events(name)] == ["finished"]
    csv.delete_dataset(name)


def test_url_answering_404_fails_the_step_with_the_server_reason(
    csv: DatasetCsv, observer: Observer, files_server: str
) -> None:
    name = unique("missing")
    with pytest.raises(StepFailed) as caught:
        csv.insert_dataset_sync(name, url=f"{files_server}/missing.csv", timeout=120)
    exc = caught.value
    assert exc.status == "failed"
    assert exc.name == name
    assert exc.exception and "404" in exc.exception
    assert exc.exception in str(exc)
    # the same reason as the server's metadata, also through a fresh Observer
    assert csv.search_dataset_content(name, limit=1)["result"][0]["exception"] == exc.exception
    with pytest.raises(StepFailed) as again:
        observer.wait(name, timeout=10)
    assert again.value.exception == exc.exception
    csv.delete_dataset(name)


def test_malformed_csv_fails_the_step(csv: DatasetCsv, files_server: str) -> None:
    name = unique("malformed")
    with pytest.raises(StepFailed) as caught:
        csv.insert_dataset_sync(name, url=f"{files_server}/malformed.csv", timeout=120)
    assert caught.value.exception
    csv.delete_dataset(name)


def test_lo_wait_outlasts_its_timeout_and_sync_timeout_is_a_deadline(
    lo_server: str, csv: DatasetCsv, files_server: str
) -> None:
    name = unique("slow")
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:  # slow.csv takes ~20 s to send
        csv.insert_dataset_sync(name, url=f"{files_server}/slow.csv", timeout=2)
    assert 2 <= time.monotonic() - started < 10
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.name == name

    # LO's wait(name, 1): 1 s polls, as long as the step runs, until it ends (cancelled here)
    outcome: list[BaseException | dict[str, Any]] = []

    def lo_wait() -> None:
        with Observer(lo_server) as observer:
            try:
                outcome.append(observer.wait(name, 1))
            except BaseException as exc:  # handed to the test's thread
                outcome.append(exc)

    waiter = threading.Thread(target=lo_wait, daemon=True)
    waiting_since = time.monotonic()
    waiter.start()
    with Observer(lo_server) as observer:
        seen = observer.observe(name)  # since=0: at once, the state now
        assert seen["status"] == "running"
        try:  # the next change (download progress comes in large chunks, so rarely one)
            changed = observer.observe(name, since=seen["version"], timeout=1)
            assert changed["version"] > seen["version"]
        except WaitTimeout as exc:
            assert "did not change within 1 s" in str(exc)
    time.sleep(max(0.0, 3.2 - (time.monotonic() - waiting_since)))
    assert waiter.is_alive() and not outcome  # three 1 s polls did not end it

    with Orchestra(lo_server, progress=False) as orc:
        assert orc.step(name).cancel().status == "cancelled"
    waiter.join(30)
    assert not waiter.is_alive()
    assert isinstance(outcome[0], StepCancelled) and outcome[0].name == name

    csv.delete_dataset(name)
    with pytest.raises(NotFound):
        csv.wait(name, timeout=5)


def test_server_refusals_raise_typed_errors(csv: DatasetCsv, files_server: str) -> None:
    name = unique("taken")
    csv.insert_dataset_sync(name, file=b"a,b\n1,2\n", timeout=60)
    with pytest.raises(Conflict) as conflict:
        csv.insert_dataset_async(name, url=f"{files_server}/train.csv")
    assert conflict.value.status_code == 409
    assert conflict.value.code == "name_taken"
    assert name in conflict.value.message and "\n" not in conflict.value.message

    with pytest.raises(InvalidRequest) as invalid:
        csv.insert_dataset_async("bad.name", url=f"{files_server}/train.csv")
    assert invalid.value.status_code == 422

    with pytest.raises(InvalidRequest):
        csv.insert_dataset_async(unique("ftp"), url="ftp://example.org/x.csv")

    with pytest.raises(InvalidRequest):
        csv.search_dataset_content(name, query={"$where": "sleep(1)"})

    with pytest.raises(NotFound) as missing:
        csv.search_dataset_content(unique("nope"))
    assert missing.value.code == "not_found"
    with pytest.raises(NotFound), Observer(csv.cluster_url) as observer:
        observer.wait(unique("nope"), timeout=5)
    csv.delete_dataset(name)


def test_generic_dataset_upload(lo_server: str) -> None:
    name = unique("blob")
    with DatasetGeneric(lo_server) as generic:
        generic.insert_dataset_sync(name, file=b"\x00\x01binary", timeout=60)
        assert generic.wait(name)["status"] == "finished"
        generic.delete_dataset(name)


def test_bare_host_port_address_works(lo_server: str) -> None:
    bare = lo_server.removeprefix("http://")
    with DatasetCsv(bare) as client:
        assert isinstance(client.search_all_datasets(limit=1)["result"], list)


def test_unreachable_server_raises_connection_failed() -> None:
    port = free_port()  # bound, then released: nothing listens there
    with (
        DatasetCsv(f"127.0.0.1:{port}", timeout=5, retries=0) as client,
        pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port}") as caught,
    ):
        client.search_all_datasets()
    assert "./run.sh local" in str(caught.value)


async def test_unreachable_server_raises_connection_failed_asyncio() -> None:
    port = free_port()
    async with AsyncObserver(f"127.0.0.1:{port}", retries=0) as observer:
        with pytest.raises(
            ConnectionFailed, match=f"is the server running at http://127.0.0.1:{port}"
        ):
            await observer.wait("anything")


async def test_async_client_round_trip(lo_server: str, files_server: str) -> None:
    name = unique("aio")
    async with AsyncDatasetCsv(lo_server) as csv, AsyncObserver(lo_server) as observer:
        assert await csv.insert_dataset_sync(name, file=TRAIN, timeout=120) == {
            "result": f"{API}/dataset/csv/{name}"
        }
        answer = await csv.search_dataset_content(name, query={"Sex": "female"}, skip=1, limit=7)
        page = answer["result"]
        assert len(page) == 7 and {row["Sex"] for row in page} == {"female"}
        assert (await observer.wait(name))["rows"] == TRAIN_ROWS
        assert [e["status"] async for e in observer.events(name)] == ["finished"]
        assert [m["status"] async for m in observer.observe_pipe(name)] == ["finished"]

        failing = unique("aio_missing")
        await csv.insert_dataset_async(failing, url=f"{files_server}/missing.csv")
        with pytest.raises(StepFailed, match="404"):
            await observer.wait(failing, timeout=120)
        await csv.delete_dataset(failing)
        await csv.delete_dataset(name)


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second server that requires the bearer token "s3cret"."""
    server = ServerProcess(
        tmp_path_factory.mktemp("lo-token") / "data", env={"LO_API_TOKENS": "s3cret"}
    )
    server.start()
    yield server.url
    server.stop()


def test_token_is_sent_as_bearer(token_server: str) -> None:
    with DatasetCsv(token_server) as anonymous, pytest.raises(Unauthorized) as caught:
        anonymous.search_all_datasets()
    assert caught.value.status_code == 401
    with DatasetCsv(token_server, token="wrong") as wrong, pytest.raises(Unauthorized):
        wrong.search_all_datasets()

    name = unique("authed")
    with DatasetCsv(token_server, token="s3cret") as csv:
        csv.insert_dataset_sync(name, file=b"x,y\n1,2\n", timeout=60)
        assert csv.search_dataset_content(name, skip=1) == {"result": [{"x": 1, "y": 2}]}
    with Observer(token_server, token="s3cret") as observer:
        assert observer.wait(name, timeout=10)["status"] == "finished"
