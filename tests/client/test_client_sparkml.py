"""`BuilderSparkMl` (``builder/sparkml``): LO's class, module path and method names.

What the client decides by itself (routes, bodies, which outputs a blocking run waits for) is
checked over `httpx.MockTransport`. Then LO's own Titanic Spark script runs against the
session's real server as its users wrote it, with only the cluster's address and the dataset
URLs changed (`script_changes`): one builder run, five classifiers, each output waited for,
paged and deleted through the client.
"""

# ruff: noqa: E501 - LO_SCRIPT keeps the user's long lines as they wrote them

from __future__ import annotations

import contextlib
import inspect
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

import learning_orchestra_client as lo
from learning_orchestra_client import (
    Conflict,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    Orchestra,
    StepFailed,
)
from learning_orchestra_client.builder.builder import (
    AsyncBuilderSparkMl,
    AsyncBuilderSparkml,
    BuilderSparkMl,
    BuilderSparkml,
)
from tests.conftest import ROOT, printed_json, run_script_source

API = "/api/learningOrchestra/v1"
ROUTE = f"{API}/builder/sparkml"
CLASSIFIERS = ["LR", "DT", "GB", "RF", "NB"]

# --- the client alone ------------------------------------------------------------------------


class Recorder:
    """A MockTransport handler standing in for the server: a builder/sparkml POST answers one
    path per classifier; each output, read by the change-feed wait (``GET /steps/{name}``),
    is finished, or failed when its classifier is in `failing`."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        self.failing = failing
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST":
            body = json.loads(request.content)
            paths = [f"{ROUTE}/{body['testDatasetName']}{c}" for c in body["classifiersList"]]
            return httpx.Response(201, json={"result": paths}, headers={"Location": paths[0]})
        if request.method == "DELETE":
            return httpx.Response(200, json={"result": f"deleted {path.rsplit('/', 1)[1]}"})
        if path == f"{API}/observe":
            return httpx.Response(200, json={"result": [], "cursor": 7})
        if path.startswith((f"{API}/steps/", f"{API}/observe/")):
            name = path.rsplit("/", 1)[1]
            metadata: dict[str, Any] = {"name": name, "status": "finished", "accuracy": 0.8}
            if name.endswith(self.failing):
                metadata.update(status="failed", exception="Py4JJavaError: GBTClassifier died")
            return httpx.Response(200, json={"result": metadata})
        return httpx.Response(200, json={"result": [{"name": path.rsplit("/", 1)[1]}]})

    def sent(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]


def builder(recorder: Recorder) -> BuilderSparkMl:
    return BuilderSparkMl("http://lo", client=httpx.Client(transport=httpx.MockTransport(recorder)))


def test_lo_names_and_signatures() -> None:
    assert lo.BuilderSparkMl is BuilderSparkMl is BuilderSparkml is lo.BuilderSparkml
    assert lo.AsyncBuilderSparkMl is AsyncBuilderSparkMl is AsyncBuilderSparkml
    assert BuilderSparkMl.__module__ == "learning_orchestra_client.builder.builder"
    assert BuilderSparkMl.API_PATH == AsyncBuilderSparkMl.API_PATH == "/builder/sparkml"

    def parameters(method: str) -> list[str]:
        return list(inspect.signature(getattr(BuilderSparkMl, method)).parameters)

    run = ["self", "train_dataset_name", "test_dataset_name", "modeling_code", "model_classifiers"]
    assert parameters("run_spark_ml_sync") == [*run, "pretty_response", "description", "timeout"]
    assert parameters("run_spark_ml_async") == [*run, "pretty_response", "description"]
    assert parameters("search_all_builders")[:2] == ["self", "pretty_response"]
    assert parameters("search_builder_register_predictions") == [
        "self", "builder_name", "query", "limit", "skip", "pretty_response",
    ]  # fmt: skip
    assert parameters("search_builder") == ["self", "builder_name", "pretty_response"]
    assert parameters("delete_builder") == ["self", "builder_name", "pretty_response"]
    assert parameters("wait") == ["self", "dataset_name", "timeout"]


def test_requests_of_every_method() -> None:
    recorder = Recorder()
    with builder(recorder) as spark:
        answer = spark.run_spark_ml_sync("train", "test", "code", ["LR", "NB"], description="d")
        assert answer == {"result": [f"{ROUTE}/testLR", f"{ROUTE}/testNB"]}
        pretty = spark.run_spark_ml_async("train", "test", "code", ["DT"], pretty_response=True)
        assert json.loads(pretty) == {"result": [f"{ROUTE}/testDT"]}
        assert spark.wait(dataset_name="testDT", timeout=1)["accuracy"] == 0.8
        spark.search_all_builders()
        spark.search_builder_register_predictions("testLR", query={"prediction": 1.0}, skip=1)
        assert spark.search_builder("testLR") == {"result": [{"name": "testLR"}]}
        assert spark.delete_builder("testLR") == {"result": "deleted testLR"}

    assert recorder.sent() == [
        ("POST", ROUTE),
        # the blocking run follows both outputs on the change feed, one long-poll for all
        ("GET", f"{API}/observe"),
        ("GET", f"{API}/steps/testLR"),
        ("GET", f"{API}/steps/testNB"),
        ("POST", ROUTE),  # the _async one does not wait
        ("GET", f"{API}/observe/testDT"),
        ("GET", ROUTE),
        ("GET", f"{ROUTE}/testLR"),
        ("GET", f"{ROUTE}/testLR"),
        ("DELETE", f"{ROUTE}/testLR"),
    ]
    sent = recorder.requests
    assert json.loads(sent[0].content) == {
        "trainDatasetName": "train",
        "testDatasetName": "test",
        "modelingCode": "code",
        "classifiersList": ["LR", "NB"],
        "description": "d",
    }
    assert "description" not in json.loads(sent[4].content)
    assert dict(sent[7].url.params) == {"query": '{"prediction": 1.0}', "limit": "10", "skip": "1"}
    assert dict(sent[8].url.params) == {"limit": "1", "skip": "0"}  # LO's search_builder


def test_a_failed_output_raises_from_the_blocking_run() -> None:
    with builder(Recorder(failing=("GB",))) as spark, pytest.raises(StepFailed) as failed:
        spark.run_spark_ml_sync("train", "test", "code", ["LR", "GB"])
    assert failed.value.name == "testGB"
    assert "GBTClassifier died" in str(failed.value)


async def test_the_asyncio_twin_sends_the_same_requests() -> None:
    recorder = Recorder()
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    async with AsyncBuilderSparkMl("http://lo", client=client) as spark:
        answer = await spark.run_spark_ml_async("train", "test", "code", ["RF"])
        assert answer == {"result": [f"{ROUTE}/testRF"]}
        assert (await spark.wait("testRF"))["status"] == "finished"
        await spark.delete_builder("testRF")
    assert recorder.sent() == [
        ("POST", ROUTE),
        ("GET", f"{API}/observe/testRF"),
        ("DELETE", f"{ROUTE}/testRF"),
    ]


# --- LO's Titanic Spark script against the real server ------------------------------------------

#: LO's Titanic Spark script, as its users ran it: the modeling code in a file of its own,
#: read with LO's `python_file_caster` (examples/titanic_modeling_code.py, LO's code verbatim).
LO_SCRIPT = r"""
from learning_orchestra_client.dataset.csv import DatasetCsv
from learning_orchestra_client.transform.projection import TransformProjection
from learning_orchestra_client.transform.data_type import TransformDataType
from learning_orchestra_client.builder.builder import BuilderSparkMl
from learning_orchestra_client.utils.file_caster import python_file_caster
CLUSTER_IP = "http://35.247.197.191"
dataset_csv = DatasetCsv(CLUSTER_IP)
dataset_csv.insert_dataset_async(url="https://filebin.net/48b0fwidk4amp7fa/train.csv", dataset_name="titanic_training")
dataset_csv.insert_dataset_async(url="https://filebin.net/1ewibio2rziv6lrm/test.csv", dataset_name="titanic_testing")
dataset_csv.wait(dataset_name="titanic_training")
dataset_csv.wait(dataset_name="titanic_testing")
print(dataset_csv.search_dataset_content("titanic_training", limit=1, pretty_response=True))
print(dataset_csv.search_dataset_content("titanic_testing", limit=1, pretty_response=True))
transform_projection = TransformProjection(CLUSTER_IP)
required_columns = ["PassengerId","Pclass","Age","SibSp","Parch","Fare","Name","Sex","Embarked","Survived"]
transform_projection.remove_dataset_attributes_async(dataset_name="titanic_training", projection_name="titanic_training_projection", fields=required_columns)
required_columns.remove("Survived")
transform_projection.remove_dataset_attributes_async(dataset_name="titanic_testing", projection_name="titanic_testing_projection", fields=required_columns)
transform_projection.wait(projection_name="titanic_training_projection")
transform_projection.wait(projection_name="titanic_testing_projection")
print(transform_projection.search_projection_content(projection_name="titanic_training_projection", limit=1, pretty_response=True))
print(transform_projection.search_projection_content(projection_name="titanic_testing_projection", limit=1, pretty_response=True))
transform_data_type = TransformDataType(CLUSTER_IP)
type_fields = {"Age": "number","Fare": "number","Parch": "number","PassengerId": "number","Pclass": "number","SibSp": "number"}
transform_data_type.update_dataset_type_async(dataset_name="titanic_testing_projection", types=type_fields)
type_fields.update({"Survived": "number"})
transform_data_type.update_dataset_type_async(dataset_name="titanic_training_projection", types=type_fields)
transform_data_type.wait(dataset_name="titanic_testing_projection")
transform_data_type.wait(dataset_name="titanic_training_projection")
modeling_code = python_file_caster('titanic/modeling_code.py')
builder = BuilderSparkMl(CLUSTER_IP)
result = builder.run_spark_ml_async(train_dataset_name="titanic_training_projection", test_dataset_name="titanic_testing_projection", modeling_code=modeling_code, model_classifiers=["LR", "DT", "GB", "RF", "NB"])
PREDICTION_NAME_INDEX_IN_URL = 6
INDEX_TO_REMOVE_URI_PARAMETERS = 0
for prediction_url in result["result"]:
    prediction_name = prediction_url.split("/")[PREDICTION_NAME_INDEX_IN_URL].split("?")[INDEX_TO_REMOVE_URI_PARAMETERS]
    builder.wait(dataset_name=prediction_name)
    print(builder.search_builder_register_predictions(builder_name=prediction_name, limit=1, pretty_response=True))
"""

TRAIN, TEST = "titanic_training_projection", "titanic_testing_projection"
#: The script's classifiers but GB and RF, the slow ones (the five run in
#: tests/steps/test_builder_sparkml.py and the notebook): the one change made to its code.
SCRIPT_CLASSIFIERS = ["LR", "DT", "NB"]
OUTPUTS = [f"{TEST}{code}" for code in SCRIPT_CLASSIFIERS]
#: Every step the script makes, removed after the test (the server is the session's).
STEPS = ["titanic_training", "titanic_testing", TRAIN, TEST, *OUTPUTS]


def script_changes(lo_server: str, files_server: str) -> list[tuple[str, str]]:
    """Every change made to the script, ``(original text, replacement)``: the cluster's
    address, the datasets' URLs (the Titanic files over local HTTP: no internet), and the
    classifiers (`SCRIPT_CLASSIFIERS`)."""
    return [
        (
            'model_classifiers=["LR", "DT", "GB", "RF", "NB"]',
            f"model_classifiers={SCRIPT_CLASSIFIERS}",
        ),
        ('CLUSTER_IP = "http://35.247.197.191"', f'CLUSTER_IP = "{lo_server}"'),
        ("https://filebin.net/48b0fwidk4amp7fa/train.csv", f"{files_server}/train.csv"),
        ("https://filebin.net/1ewibio2rziv6lrm/test.csv", f"{files_server}/test.csv"),
    ]


def run_script(changes: list[tuple[str, str]], folder: Path) -> str:
    """Run `LO_SCRIPT` with only `changes` made, each found exactly once, beside the feature
    code it reads; what it printed."""
    (folder / "titanic").mkdir()
    shutil.copy(
        ROOT / "examples" / "titanic_modeling_code.py", folder / "titanic" / "modeling_code.py"
    )
    return run_script_source(LO_SCRIPT, "titanic_sparkml.py", changes, folder, 400).stdout


@pytest.mark.e2e
def test_lo_titanic_spark_script_runs(lo_server: str, files_server: str, tmp_path: Path) -> None:
    try:
        out = run_script(script_changes(lo_server, files_server), tmp_path)
        # two datasets, two projections, then one page per output: its metadata alone
        pages = printed_json(out)[4:]
        assert [page["result"][0]["name"] for page in pages] == OUTPUTS
        for page in pages:
            (metadata,) = page["result"]
            assert metadata["status"] == "finished", metadata
            assert 0.6 <= metadata["accuracy"] <= 1 and 0 < metadata["F1"] <= 1, metadata
            assert metadata["fitTime"] > 0 and metadata["type"] == "builder/sparkml"

        with BuilderSparkMl(lo_server) as spark:
            listed = {m["name"] for m in spark.search_all_builders(limit=100)["result"]}
            assert set(OUTPUTS) <= listed
            # the rows: one prediction per test passenger, LO's page after the metadata
            rows = spark.search_builder_register_predictions(OUTPUTS[0], limit=3, skip=1)
            assert len(rows["result"]) == 3
            assert all({"PassengerId", "prediction"} <= set(row) for row in rows["result"])
            assert spark.search_builder(OUTPUTS[1])["result"][0]["classifier"] == (
                "DecisionTreeClassifier"
            )
            pretty = spark.search_builder(OUTPUTS[2], pretty_response=True)
            assert isinstance(pretty, str) and pretty.startswith('{\n    "result": [')
            assert json.loads(pretty)["result"][0]["name"] == OUTPUTS[2]

            # bad input: the server's own messages
            with pytest.raises(
                InvalidRequest, match=r"unknown classifier 'XG'.*LR, DT, RF, GB, NB"
            ):
                spark.run_spark_ml_async(TRAIN, TEST, "x = 1", ["LR", "XG"])
            with pytest.raises(Conflict, match=OUTPUTS[2]):
                spark.run_spark_ml_async(TRAIN, TEST, "x = 1", ["NB"])
            with Orchestra(lo_server, progress=False) as orchestra:
                output = orchestra.step(OUTPUTS[2])
                with pytest.raises(MethodNotAllowed, match="cannot be re-run"):
                    output.rerun()

            # delete one output: the others stay; its name is free again
            assert OUTPUTS[0] in spark.delete_builder(OUTPUTS[0])["result"]
            with pytest.raises(NotFound):
                spark.search_builder(OUTPUTS[0])
            assert spark.search_builder(OUTPUTS[1])["result"][0]["status"] == "finished"
            # ... and a run whose code defines no features_training fails with the reason,
            # raised by the blocking run (never a hang)
            with pytest.raises(StepFailed, match="features_training") as failed:
                spark.run_spark_ml_sync(TRAIN, TEST, "x = 1\n", ["LR"], timeout=300)
            assert failed.value.name == OUTPUTS[0]
    finally:
        with Orchestra(lo_server, progress=False) as orchestra:
            for name in reversed(STEPS):
                with contextlib.suppress(NotFound):
                    orchestra.step(name).delete()
