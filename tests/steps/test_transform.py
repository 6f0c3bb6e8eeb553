"""transform/projection and LO's PATCH /transform/dataType through the real embedded app.

Real app, SQLite store, worker processes and artifact volume; the Titanic data comes over HTTP
from the local `files_server`. Tests share one app (`shared`) holding the Titanic dataset
`train`; each test that changes a table works on tables of its own.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import TITANIC_TYPES, ServerProcess, assert_error, wait
from tests.steps.table_steps import (
    CSV,
    DATA_TYPE,
    GENERIC,
    PROJECTION,
    TITANIC,
    app_client,
    ingest,
    metadata,
    page,
    post,
    rows,
    upload,
    wait_until,
)

KEPT = ["Survived", "Sex", "Age"]


def projected(names: list[str]) -> list[dict[str, Any]]:
    return [{name: row[name] for name in names} for row in TITANIC]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, files_server: str) -> Iterator[TestClient]:
    """One app holding the finished Titanic dataset `train` and its projection `kept`."""
    with app_client(tmp_path_factory.mktemp("transform")) as client:
        ingest(client, "train", f"{files_server}/train.csv")
        body = {"inputDatasetName": "train", "outputDatasetName": "kept", "names": KEPT}
        post(client, PROJECTION, body)
        assert wait(client, "kept")["status"] == "finished"
        yield client


# -- transform/projection --------------------------------------------------------------------
def test_projection_keeps_the_listed_columns_in_order(shared: TestClient) -> None:
    meta = metadata(shared, PROJECTION, "kept")
    assert meta["name"] == meta["datasetName"] == "kept"
    assert meta["type"] == "transform/projection"
    assert meta["status"] == "finished" and meta["finished"] is True
    assert meta["parents"] == ["train"] and meta["stale"] is False
    assert meta["parameters"] == {
        "inputDatasetName": "train", "outputDatasetName": "kept", "names": KEPT,
        "description": None,
    }  # fmt: skip
    assert meta["fields"] == KEPT
    assert meta["types"] == {"Survived": "integer", "Sex": "string", "Age": "float"}
    assert meta["rows"] == 891
    assert "pyarrow" in meta["libraries"]
    assert rows(shared, PROJECTION, "kept") == projected(KEPT)


def test_projection_rows_are_paged_and_queried(shared: TestClient) -> None:
    expected = projected(KEPT)
    first = page(shared, PROJECTION, "kept", limit=3)
    assert first[0]["name"] == "kept" and first[1:] == expected[:2]
    assert page(shared, PROJECTION, "kept", skip=5, limit=2) == expected[4:6]
    query = json.dumps({"Sex": "female", "Age": {"$lt": 2}})
    found = page(shared, PROJECTION, "kept", query=query, skip=1, limit=100)
    assert found == [r for r in expected if r["Sex"] == "female" and (r["Age"] or 99) < 2]
    assert found  # the Titanic has infant girls: the query is not vacuous
    assert_error(shared.get(f"{PROJECTION}/kept", params={"query": '{"Name": "x"}'}), 422, "Name")


def test_projection_validation_names_the_field(shared: TestClient, files_server: str) -> None:
    def attempt(**changes: Any) -> Any:
        body = {"inputDatasetName": "train", "outputDatasetName": "p_bad", "names": ["Age"]}
        return shared.post(PROJECTION, json={**body, **changes})

    unknown = assert_error(attempt(names=["Age", "Nope", "Colour"]), 422, "'Nope'", "'Colour'")
    assert "PassengerId" in unknown["result"]  # the message lists the available columns
    assert unknown["error"]["detail"]["missing"] == ["Nope", "Colour"]
    assert_error(attempt(names=[]), 422, "names")
    assert_error(attempt(names=["Age", "Age"]), 422, "names", "twice")
    assert_error(attempt(names="Age"), 422, "names")
    assert_error(attempt(inputDatasetName="ghost"), 422, "ghost")
    assert_error(attempt(outputDatasetName="../x"), 422, "outputDatasetName")
    assert_error(attempt(outputDatasetName="train"), 409, "train")
    assert_error(attempt(colour="red"), 422, "colour")
    no_names = {"inputDatasetName": "train", "outputDatasetName": "p_bad"}
    assert_error(shared.post(PROJECTION, json=no_names), 422, "names", "required")
    assert_error(shared.post(PROJECTION, content=b"{not json"), 400)
    assert_error(shared.get(f"{PROJECTION}/p_bad"), 404)  # nothing was recorded
    # an input that is not a table (it has no `fields`) is refused by the job
    raw = {"datasetName": "raw", "datasetURI": f"{files_server}/test.csv"}
    post(shared, GENERIC, raw)
    assert wait(shared, "raw")["status"] == "finished"
    assert attempt(inputDatasetName="raw").status_code == 201
    failed = wait(shared, "p_bad")
    assert failed["status"] == "failed" and "'raw' is not a table" in failed["exception"]


def test_projection_patch_reruns_with_new_names(shared: TestClient) -> None:
    body = {"inputDatasetName": "train", "outputDatasetName": "p_patch", "names": ["Name"]}
    post(shared, PROJECTION, body)
    assert wait(shared, "p_patch")["status"] == "finished"
    response = shared.patch(f"{PROJECTION}/p_patch", json={"names": ["Fare", "Pclass"]})
    assert response.status_code == 201, response.text
    meta = wait(shared, "p_patch")
    assert meta["status"] == "finished" and meta["runs"] == 2
    assert meta["fields"] == ["Fare", "Pclass"]
    assert meta["parameters"]["names"] == ["Fare", "Pclass"]
    assert rows(shared, PROJECTION, "p_patch") == projected(["Fare", "Pclass"])
    assert_error(shared.patch(f"{PROJECTION}/p_patch", json={"names": ["Nope"]}), 422, "Nope")
    renamed = shared.patch(f"{PROJECTION}/p_patch", json={"outputDatasetName": "other"})
    assert_error(renamed, 422, "outputDatasetName")
    assert metadata(shared, PROJECTION, "p_patch")["runs"] == 2  # refused PATCHes ran nothing


def test_projection_waits_for_its_input(api: TestClient, files_server: str) -> None:
    """A pipeline submitted at once: the projections are accepted while the dataset ingests."""
    post(api, CSV, {"datasetName": "late", "datasetURI": f"{files_server}/train.csv"})
    good = {"inputDatasetName": "late", "outputDatasetName": "late_p", "names": ["Pclass"]}
    post(api, PROJECTION, good)
    # the input's columns are not known yet: an unknown one fails the step, not the request
    bad = {"inputDatasetName": "late", "outputDatasetName": "late_bad", "names": ["Nope"]}
    post(api, PROJECTION, bad)
    queued = metadata(api, PROJECTION, "late_p")
    assert queued["status"] == "pending" and queued["waitingFor"] == ["late"]
    done = wait(api, "late_p")
    assert done["status"] == "finished" and done["waitingFor"] == []
    assert rows(api, PROJECTION, "late_p") == projected(["Pclass"])
    failed = wait(api, "late_bad")
    assert failed["status"] == "failed" and failed["finished"] is False
    assert "'Nope'" in failed["exception"] and "PassengerId" in failed["exception"]
    assert failed["traceback"] is None  # a message for the user, not a crash


# -- transform/dataType ------------------------------------------------------------------------
def cast(client: TestClient, name: str, types: dict[str, str]) -> dict[str, Any]:
    """PATCH /transform/dataType, which answers at once; the metadata right after."""
    response = client.patch(DATA_TYPE, json={"inputDatasetName": name, "types": types})
    assert response.status_code == 200, response.text
    assert response.json() == {"result": f"{CSV}/{name}"}
    assert response.headers["location"] == f"{CSV}/{name}"
    return metadata(client, CSV, name)


def test_cast_to_string_and_back_to_number(shared: TestClient, files_server: str) -> None:
    before = ingest(shared, "t_cast", f"{files_server}/train.csv")
    after_answer = cast(shared, "t_cast", {"Pclass": "string", "Fare": "string"})
    # the cast is under way when the answer arrives: never the old finished state
    assert after_answer["status"] in ("running", "finished")
    assert after_answer["version"] > before["version"]
    if after_answer["status"] == "running":
        assert after_answer["finished"] is False
    meta = wait(shared, "t_cast")
    assert meta["status"] == "finished", meta["exception"]
    assert meta["types"] == {**TITANIC_TYPES, "Pclass": "string", "Fare": "string"}
    assert meta["castTypes"] == {"Pclass": "string", "Fare": "string"}
    assert meta["runs"] == 2 and meta["type"] == "dataset/csv"
    assert meta["parameters"] == before["parameters"]  # still the dataset's own request
    served = rows(shared, CSV, "t_cast")
    assert [r["Pclass"] for r in served] == [str(r["Pclass"]) for r in TITANIC]
    assert served[0]["Fare"] == "7.25" and served[1]["Fare"] == "71.2833"
    # the text columns now hold numbers only: back to number, integers stay integers
    cast(shared, "t_cast", {"Pclass": "number", "Fare": "number", "Survived": "string"})
    meta = wait(shared, "t_cast")
    assert meta["status"] == "finished", meta["exception"]
    assert meta["types"] == {**TITANIC_TYPES, "Survived": "string"}
    assert meta["castTypes"] == {"Pclass": "number", "Fare": "number", "Survived": "string"}
    served = rows(shared, CSV, "t_cast")
    assert [r["Pclass"] for r in served] == [r["Pclass"] for r in TITANIC]
    assert [r["Fare"] for r in served] == [r["Fare"] for r in TITANIC]
    assert [r["Survived"] for r in served] == [str(r["Survived"]) for r in TITANIC]
    # each run left a record: the ingest with the dataset's request, the casts with theirs
    store = shared.app.state.store
    records = shared.portal.call(functools.partial(store.runs, "t_cast"))
    assert [r.get("type") for r in records] == ["transform/dataType", "transform/dataType", None]
    assert records[0]["parameters"]["types"] == {"Pclass": "number", "Fare": "number",
                                                 "Survived": "string"}  # fmt: skip
    assert records[2]["parameters"] == before["parameters"]


def test_cast_text_with_blanks_signs_and_booleans(shared: TestClient) -> None:
    text = 'n,b,s\n" 12 ",true,a\n"+3",false,b\n" ",true,\n4.5,false,c\n'
    meta = upload(shared, "t_text", text)
    assert meta["types"] == {"n": "string", "b": "boolean", "s": "string"}  # the premise
    cast(shared, "t_text", {"n": "number", "b": "number", "s": "string"})
    meta = wait(shared, "t_text")
    assert meta["status"] == "finished", meta["exception"]
    assert meta["types"] == {"n": "float", "b": "integer", "s": "string"}
    assert rows(shared, CSV, "t_text") == [
        {"n": 12.0, "b": 1, "s": "a"},
        {"n": 3.0, "b": 0, "s": "b"},
        {"n": None, "b": 1, "s": None},
        {"n": 4.5, "b": 0, "s": "c"},
    ]


def test_failed_cast_names_column_row_value_and_keeps_the_table(
    shared: TestClient, files_server: str
) -> None:
    ingest(shared, "t_fail", f"{files_server}/train.csv")
    post(shared, PROJECTION, {"inputDatasetName": "t_fail", "outputDatasetName": "t_fail_p",
                              "names": ["Ticket"]})  # fmt: skip
    assert wait(shared, "t_fail_p")["status"] == "finished"
    # Ticket holds numbers first ("113803" is row 4) but "A/5 21171" in row 1
    cast(shared, "t_fail", {"Age": "string", "Ticket": "number"})
    meta = wait_failed(shared, "t_fail")
    assert "'Ticket'" in meta["exception"] and "row 1" in meta["exception"]
    assert "'A/5 21171'" in meta["exception"]
    assert meta["finished"] is False and meta["traceback"] is None
    # the previous table is intact and readable, with its previous types
    assert meta["types"] == TITANIC_TYPES and "castTypes" not in meta
    assert rows(shared, CSV, "t_fail") == TITANIC
    assert page(shared, CSV, "t_fail", skip=3, limit=1) == [TITANIC[2]]
    # the projection made from it is stale from the moment the cast was accepted
    assert metadata(shared, PROJECTION, "t_fail_p")["stale"] is True

    # its metadata is readable there too; it is listed once a cast has succeeded
    def listed() -> list[str]:
        return [d["name"] for d in shared.get(DATA_TYPE, params={"limit": 100}).json()["result"]]

    shown = shared.get(f"{DATA_TYPE}/t_fail")
    assert shown.status_code == 200 and shown.json()["result"][0]["status"] == "failed"
    assert "t_fail" not in listed() and "train" not in listed()
    cast(shared, "t_fail", {"Age": "string"})
    meta = wait(shared, "t_fail")
    assert meta["status"] == "finished", meta["exception"]
    assert meta["types"]["Age"] == "string" and meta["castTypes"] == {"Age": "string"}
    assert shared.get(f"{DATA_TYPE}/t_fail").json()["result"] == [meta]
    assert "t_fail" in listed() and "train" not in listed()


def wait_failed(client: TestClient, name: str) -> dict[str, Any]:
    meta = wait(client, name)
    assert meta["status"] == "failed", meta
    return meta


def test_cast_validation_and_routes(shared: TestClient, files_server: str) -> None:
    def attempt(body: Any) -> Any:
        return shared.patch(DATA_TYPE, json=body)

    unknown = assert_error(attempt({"inputDatasetName": "train", "types": {"Nope": "number"}}),
                           422, "types", "'Nope'", "PassengerId")  # fmt: skip
    assert unknown["error"]["detail"]["missing"] == ["Nope"]
    assert_error(attempt({"inputDatasetName": "train", "types": {"Age": "date"}}), 422, "Age")
    assert_error(attempt({"inputDatasetName": "train", "types": {}}), 422, "types")
    assert_error(attempt({"inputDatasetName": "train"}), 422, "types", "required")
    assert_error(attempt({"inputDatasetName": "train", "types": {"Age": "string"}, "x": 1}),
                 422, "'x'")  # fmt: skip
    assert_error(attempt({"inputDatasetName": "ghost", "types": {"Age": "string"}}), 404, "ghost")
    assert_error(attempt(["train"]), 422)
    assert_error(shared.patch(DATA_TYPE, content=b"{"), 400)
    post(shared, GENERIC, {"datasetName": "t_raw", "datasetURI": f"{files_server}/test.csv"})
    assert wait(shared, "t_raw")["status"] == "finished"
    assert_error(attempt({"inputDatasetName": "t_raw", "types": {"a": "string"}}), 422, "table")
    assert shared.get(f"{DATA_TYPE}/train").json()["result"][0]["name"] == "train"
    assert_error(shared.get(f"{DATA_TYPE}/t_raw"), 404, "not a table")
    assert_error(shared.get(f"{DATA_TYPE}/ghost"), 404, "ghost")
    assert_error(shared.delete(f"{DATA_TYPE}/train"), 405, "delete the table itself")
    assert metadata(shared, CSV, "train")["status"] == "finished"  # nothing happened to it
    assert "castTypes" not in metadata(shared, CSV, "train")


def test_queued_cast_is_running_busy_recoverable_and_cancellable(
    tmp_path: Path, files_server: str
) -> None:
    """With the dataset service's only slot taken by a slow ingest, a cast stays queued:
    `running` already (as API.md wants), yet not started."""
    with app_client(tmp_path, max_jobs=1) as client:
        ingest(client, "table", f"{files_server}/train.csv")
        post(client, CSV, {"datasetName": "slow", "datasetURI": f"{files_server}/slow.csv"})
        wait_until(lambda: metadata(client, CSV, "slow")["status"] == "running")
        queued = cast(client, "table", {"Age": "string"})
        assert queued["status"] == "running" and queued["finished"] is False
        busy = {"inputDatasetName": "table", "types": {"Fare": "string"}}
        assert_error(client.patch(DATA_TYPE, json=busy), 409, "table")
        rerun = client.patch(f"{CSV}/table", json={"datasetURI": f"{files_server}/test.csv"})
        assert_error(rerun, 409, "table")
        # a queued job has no worker and no lease: recovery must leave it alone
        client.portal.call(client.app.state.steps.supervisor.recover)
        assert metadata(client, CSV, "table")["status"] == "running"
        cancelled = client.post(f"{CSV}/table/cancel")
        assert cancelled.status_code == 200, cancelled.text
        meta = cancelled.json()["result"]
        assert meta["status"] == "cancelled"
        assert meta["exception"] == "cancelled: by request before it started"
        assert meta["types"] == TITANIC_TYPES and "castTypes" not in meta
        assert rows(client, CSV, "table") == TITANIC  # the table is as it was
        assert client.post(f"{CSV}/slow/cancel").json()["result"]["status"] == "cancelled"
        # the table can be cast again, now that a slot is free
        cast(client, "table", {"Age": "string"})
        assert wait(client, "table")["types"]["Age"] == "string"


def test_cast_a_projection_in_place(shared: TestClient) -> None:
    body = {"inputDatasetName": "train", "outputDatasetName": "t_proj", "names": ["Pclass"]}
    post(shared, PROJECTION, body)
    assert wait(shared, "t_proj")["status"] == "finished"
    response = shared.patch(DATA_TYPE, json={"inputDatasetName": "t_proj",
                                             "types": {"Pclass": "string"}})  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json() == {"result": f"{PROJECTION}/t_proj"}
    meta = wait(shared, "t_proj")
    assert meta["status"] == "finished" and meta["type"] == "transform/projection"
    assert meta["types"] == {"Pclass": "string"}
    assert meta["parameters"]["names"] == ["Pclass"]
    assert rows(shared, PROJECTION, "t_proj") == [{"Pclass": str(r["Pclass"])} for r in TITANIC]
    # PATCHing the projection itself recomputes it from its input, undoing the cast
    assert shared.patch(f"{PROJECTION}/t_proj", json={}).status_code == 201
    meta = wait(shared, "t_proj")
    assert meta["types"] == {"Pclass": "integer"} and "castTypes" not in meta
    assert rows(shared, PROJECTION, "t_proj") == projected(["Pclass"])


@pytest.mark.e2e
def test_services_on_their_own_cast_and_project(tmp_path: Path, files_server: str) -> None:
    """`serve --step dataset` and `serve --step transform` sharing one data directory, as two
    Swarm services do: the transform service accepts the cast, the dataset service's workers
    run it on the dataset; the projection runs in the transform service."""
    data = tmp_path / "data"
    dataset, transform = ServerProcess(data), ServerProcess(data)
    dataset.start("--step", "dataset")
    transform.start("--step", "transform")

    def status(server: ServerProcess, route: str, name: str) -> dict[str, Any]:
        response = httpx.get(f"{server.url}{route}/{name}", params={"limit": 1})
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()["result"][0]
        return doc

    def settled(server: ServerProcess, route: str, name: str) -> dict[str, Any]:
        wait_until(lambda: status(server, route, name)["status"] not in ("pending", "running"), 60)
        return status(server, route, name)

    try:
        body = {"datasetName": "shared", "datasetURI": f"{files_server}/train.csv"}
        assert httpx.post(f"{dataset.url}{CSV}", json=body).status_code == 201
        assert settled(dataset, CSV, "shared")["status"] == "finished"
        assert httpx.patch(f"{dataset.url}{DATA_TYPE}", json={}).status_code == 404
        cast = {"inputDatasetName": "shared", "types": {"Survived": "string"}}
        answer = httpx.patch(f"{transform.url}{DATA_TYPE}", json=cast)
        assert answer.status_code == 200, answer.text
        assert status(dataset, CSV, "shared")["status"] in ("running", "finished")
        meta = settled(dataset, CSV, "shared")
        assert meta["status"] == "finished", meta["exception"]
        assert meta["types"]["Survived"] == "string"
        project = {"inputDatasetName": "shared", "outputDatasetName": "shared_p",
                   "names": ["Survived"]}  # fmt: skip
        assert httpx.post(f"{transform.url}{PROJECTION}", json=project).status_code == 201
        assert settled(transform, PROJECTION, "shared_p")["types"] == {"Survived": "string"}
    finally:
        dataset.stop()
        transform.stop()
