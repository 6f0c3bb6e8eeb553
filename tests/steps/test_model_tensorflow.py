"""The Keras model lifecycle on MNIST through the real HTTP server (issue 8, item 7).

`lo_server` is the real `learning-orchestra serve`; every step runs in its worker processes
and sandboxed children, on TensorFlow for real. The data is the 5,000-digit MNIST subset
(examples/data/mnist/mnist_5k.npz: 4,000 training and 1,000 test digits), uploaded as a
dataset/generic file, normalised by a function/python step, then:

    model/tensorflow    Sequential([Input, Flatten, Dense(128), Dense(10)]) from `#` layers
    train/tensorflow    compile (optimizer, loss, metrics as methodParameters)
    train/tensorflow    fit, 2 epochs, observed epoch by epoch
    predict/tensorflow  predict on x_test         -> a (1000, 10) array
    evaluate/tensorflow evaluate on x_test/y_test -> metrics in the step's metadata

and a PATCH re-train that re-runs that step alone. A small Dense network with batch_size
64 keeps it within seconds on two cores (after the sandbox pool paid TensorFlow's import).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import BASE, data_file
from tests.steps.rest import OBSERVE, TIMEOUT, finished, post, succeeded, unique

GENERIC = f"{BASE}/dataset/generic"
FUNCTION = f"{BASE}/function/python"
MODEL = f"{BASE}/model/tensorflow"
TRAIN = f"{BASE}/train/tensorflow"
PREDICT = f"{BASE}/predict/tensorflow"
EVALUATE = f"{BASE}/evaluate/tensorflow"
MNIST = "mnist/mnist_5k.npz"
TERMINAL = ("finished", "failed", "cancelled")

NORMALISE = """
import numpy as np

with np.load(data) as digits:  # `data`: the uploaded .npz, an open binary file
    response = {
        "x_train": (digits["x_train"] / 255.0).astype("float32"),
        "y_train": digits["y_train"].astype("int64"),
        "x_test": (digits["x_test"] / 255.0).astype("float32"),
        "y_test": digits["y_test"].astype("int64"),
    }
print("normalised", response["x_train"].shape, response["x_test"].shape)
"""

LAYERS = [
    "#tensorflow.keras.layers.Input(shape=(28, 28))",
    "#tensorflow.keras.layers.Flatten()",
    "#tensorflow.keras.layers.Dense(128, activation='relu')",
    "#tensorflow.keras.layers.Dense(10, activation='softmax')",
]


def metadata(client: httpx.Client, route: str, name: str) -> dict[str, Any]:
    response = client.get(f"{route}/{name}", params={"limit": 1})
    assert response.status_code == 200, response.text
    meta: dict[str, Any] = response.json()["result"][0]
    return meta


def files(client: httpx.Client, route: str, name: str) -> dict[str, str]:
    """The stored files of step `name`: {filename: sha256}."""
    response = client.get(f"{route}/{name}/files")
    assert response.status_code == 200, response.text
    return {f["filename"]: f["sha256"] for f in response.json()["result"]}


def method(name: str, model: str, parent: str, called: str, **parameters: Any) -> dict[str, Any]:
    """A train|predict|evaluate body."""
    return {
        "name": name,
        "modelName": model,
        "parentName": parent,
        "method": called,
        "methodParameters": parameters,
    }


def observed_run(client: httpx.Client, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Follow `name` with `observe?since=V` until it ends: (its final metadata, every
    metadata document seen on the way, in order)."""
    seen: list[dict[str, Any]] = []
    version = 0
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        response = client.get(f"{OBSERVE}/{name}", params={"since": version, "timeout": 30})
        if response.status_code == 408:  # nothing changed for 30 s (the import, say)
            continue
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()["result"]
        assert doc["version"] > version, (version, doc)
        version = doc["version"]
        seen.append(doc)
        if doc["status"] in TERMINAL:
            return doc, seen
    pytest.fail(f"{name} did not end within {TIMEOUT} s: {seen[-1:]}")


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    with np.load(data_file(MNIST)) as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture(scope="module")
def client(lo_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lo_server, timeout=TIMEOUT + 30) as http:
        yield http


def digits_as_arrays(
    client: httpx.Client, dataset: str, arrays: str, code: str, parameter: str
) -> None:
    """Upload the MNIST subset as dataset/generic step `dataset`, then start function step
    `arrays` running `code` with the open file bound to `parameter`."""
    upload = client.post(
        GENERIC,
        data={"datasetName": dataset},
        files={"file": ("mnist_5k.npz", data_file(MNIST).read_bytes(), "application/zip")},
    )
    assert upload.status_code == 201, upload.text
    body = {"name": arrays, "function": code, "functionParameters": {parameter: f"${dataset}"}}
    post(client, FUNCTION, body, arrays)


@pytest.fixture(scope="module")
def pipeline(client: httpx.Client) -> dict[str, Any]:
    """The uploaded digits, their normalised arrays, the model and the compiled model:
    {"names": {role: step name}, "meta": {role: metadata}}."""
    names = {role: unique(role) for role in ("mnist", "norm", "model", "compiled")}
    digits_as_arrays(client, names["mnist"], names["norm"], NORMALISE, "data")
    model = {
        "modelName": names["model"],
        "modulePath": "tensorflow.keras.models",
        "class": "Sequential",
        "classParameters": {"layers": LAYERS},
        "description": "a small dense network for 28x28 digits",
    }
    post(client, MODEL, model, names["model"])
    compiled = method(
        names["compiled"],
        names["model"],
        names["model"],
        "compile",
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    post(client, TRAIN, compiled, names["compiled"])
    meta = {
        "mnist": finished(client, GENERIC, names["mnist"]),
        "norm": finished(client, FUNCTION, names["norm"]),
        "model": finished(client, MODEL, names["model"]),
        "compiled": finished(client, TRAIN, names["compiled"]),
    }
    return {"names": names, "meta": meta}


@pytest.fixture(scope="module")
def trained(client: httpx.Client, pipeline: dict[str, Any]) -> dict[str, Any]:
    """fit(x=$norm.x_train, y=$norm.y_train, epochs=2, batch_size=64) on the compiled model,
    followed through observe: {"name", "meta", "seen"}."""
    names = pipeline["names"]
    name = unique("trained")
    norm = names["norm"]
    body = method(
        name,
        names["model"],
        names["compiled"],
        "fit",
        x=f"${norm}.x_train",
        y=f"${norm}.y_train",
        epochs=2,
        batch_size=64,
        verbose=0,
    )
    post(client, TRAIN, body, name)
    meta, seen = observed_run(client, name)
    return {"name": name, "meta": succeeded(client, TRAIN, name, meta), "seen": seen}


@pytest.fixture(scope="module")
def predicted(client: httpx.Client, pipeline: dict[str, Any], trained: dict[str, Any]) -> str:
    name = unique("predicted")
    x_test = f"${pipeline['names']['norm']}.x_test"
    body = method(name, pipeline["names"]["model"], trained["name"], "predict", x=x_test)
    post(client, PREDICT, {**body, "description": "class probabilities"}, name)
    finished(client, PREDICT, name)
    return name


@pytest.fixture(scope="module")
def evaluated(client: httpx.Client, pipeline: dict[str, Any], trained: dict[str, Any]) -> str:
    name = unique("evaluated")
    norm = pipeline["names"]["norm"]
    body = method(
        name,
        pipeline["names"]["model"],
        trained["name"],
        "evaluate",
        x=f"${norm}.x_test",
        y=f"${norm}.y_test",
        batch_size=64,
        verbose=0,
    )
    post(client, EVALUATE, body, name)
    finished(client, EVALUATE, name)
    return name


def test_the_data_is_normalised_and_the_model_built_from_layer_expressions(
    client: httpx.Client, pipeline: dict[str, Any]
) -> None:
    names, meta = pipeline["names"], pipeline["meta"]
    assert meta["norm"]["parents"] == [names["mnist"]]
    assert sorted(meta["norm"]["keys"]) == ["x_test", "x_train", "y_test", "y_train"]

    model = meta["model"]
    assert model["type"] == "model/tensorflow" and model["modelName"] == names["model"]
    assert (model["modulePath"], model["class"]) == ("tensorflow.keras.models", "Sequential")
    assert model["parents"] == [] and model["runs"] == 1
    assert model["description"] == "a small dense network for 28x28 digits"
    assert model["libraries"]["keras"]  # and tensorflow or tensorflow-cpu, as installed
    assert {"tensorflow", "tensorflow-cpu"} & set(model["libraries"])
    assert "model.keras" in files(client, MODEL, names["model"])  # Keras' own format

    compiled = meta["compiled"]
    assert compiled["type"] == "train/tensorflow" and compiled["method"] == "compile"
    assert compiled["parents"] == [names["model"]]
    assert "model.keras" in files(client, TRAIN, names["compiled"])


def test_training_reports_each_epoch_while_it_runs(
    pipeline: dict[str, Any], trained: dict[str, Any]
) -> None:
    names, meta = pipeline["names"], trained["meta"]
    live = [
        doc["progress"]
        for doc in trained["seen"]
        if doc["status"] == "running" and isinstance(doc.get("progress"), dict)
    ]
    epochs = [event for event in live if "epoch" in event]
    assert epochs, f"no epoch progress seen before the end: {trained['seen']}"
    for event in epochs:
        assert event["epochs"] == 2 and event["epoch"] in (1, 2), event
        assert isinstance(event["loss"], float) and event["loss"] > 0, event
        assert 0 <= event["accuracy"] <= 1, event
    numbers = [event["epoch"] for event in epochs]
    assert numbers == sorted(numbers)  # observed in order
    versions = [doc["version"] for doc in trained["seen"]]
    assert versions == sorted(set(versions))
    # the last event stays with the outcome: the training ran all its epochs
    assert (meta["progress"]["epoch"], meta["progress"]["epochs"]) == (2, 2), meta["progress"]

    assert meta["type"] == "train/tensorflow" and meta["method"] == "fit"
    assert meta["runs"] == 1 and meta["stale"] is False
    assert set(meta["parents"]) == {names["model"], names["compiled"], names["norm"]}
    assert meta["parameters"]["methodParameters"]["x"] == f"${names['norm']}.x_train"
    history = meta["history"]
    assert len(history["loss"]) == 2 and len(history["accuracy"]) == 2, history
    assert history["loss"][1] < history["loss"][0], history  # it learnt something
    assert meta["durationSeconds"] > 0


def test_predictions_are_class_probabilities_of_the_test_digits(
    client: httpx.Client, digits: dict[str, np.ndarray], predicted: str
) -> None:
    meta = metadata(client, PREDICT, predicted)
    assert meta["type"] == "predict/tensorflow" and meta["shape"] == [1000, 10]
    response = client.get(f"{PREDICT}/{predicted}/result", params={"format": "npy"})
    assert response.status_code == 200, response.text
    probabilities = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert probabilities.shape == (1000, 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)  # softmax rows
    accuracy = float((probabilities.argmax(axis=1) == digits["y_test"]).mean())
    assert accuracy >= 0.85, accuracy


def test_evaluation_metrics_are_readable_in_the_metadata(
    client: httpx.Client,
    digits: dict[str, np.ndarray],
    trained: dict[str, Any],
    predicted: str,
    evaluated: str,
) -> None:
    meta = metadata(client, EVALUATE, evaluated)
    assert meta["type"] == "evaluate/tensorflow" and meta["method"] == "evaluate"
    metrics = meta["metrics"]
    assert set(metrics) >= {"loss", "accuracy"}, metrics
    assert metrics["accuracy"] >= 0.85, metrics
    assert 0 < metrics["loss"] < trained["meta"]["history"]["loss"][0], metrics
    # the same model's predictions agree with its evaluation
    response = client.get(f"{PREDICT}/{predicted}/result", params={"format": "npy"})
    probabilities = np.load(io.BytesIO(response.content), allow_pickle=False)
    accuracy = float((probabilities.argmax(axis=1) == digits["y_test"]).mean())
    assert abs(accuracy - metrics["accuracy"]) < 1e-3, (accuracy, metrics)


def test_patch_retrains_only_that_step_and_marks_its_children_stale(
    client: httpx.Client,
    pipeline: dict[str, Any],
    trained: dict[str, Any],
    predicted: str,
    evaluated: str,
) -> None:
    names = pipeline["names"]
    name = trained["name"]
    upstream = [
        (GENERIC, names["mnist"]),
        (FUNCTION, names["norm"]),
        (MODEL, names["model"]),
        (TRAIN, names["compiled"]),
    ]
    before = {
        step: (metadata(client, route, step), files(client, route, step))
        for route, step in upstream
    }
    children = {PREDICT: predicted, EVALUATE: evaluated}
    for route, child in children.items():
        assert metadata(client, route, child)["stale"] is False
    first = metadata(client, TRAIN, name)
    first_files = files(client, TRAIN, name)

    response = client.patch(f"{TRAIN}/{name}", json={"methodParameters": {"epochs": 1}})
    assert response.status_code == 201, response.text
    assert response.json() == {"result": f"{TRAIN}/{name}"}
    again = finished(client, TRAIN, name)

    assert again["runs"] == first["runs"] + 1 and again["version"] > first["version"]
    given = again["parameters"]["methodParameters"]
    assert given["epochs"] == 1 and given["batch_size"] == 64  # merged, not replaced
    assert given["x"] == f"${names['norm']}.x_train"
    assert len(again["history"]["loss"]) == 1, again["history"]
    retrained = files(client, TRAIN, name)
    assert retrained["model.keras"] != first_files["model.keras"]  # a new artifact
    # nothing upstream ran again, and its stored files are byte-identical
    for route, step in upstream:
        meta, stored = before[step]
        now = metadata(client, route, step)
        assert now["runs"] == meta["runs"] and now["version"] == meta["version"], step
        assert now["stale"] is False, step
        assert files(client, route, step) == stored, step
    # the outputs computed from the previous training stay readable but are stale
    for route, child in children.items():
        meta = metadata(client, route, child)
        assert meta["stale"] is True and meta["runs"] == 1 and meta["status"] == "finished"
    lineage = client.get(f"{EVALUATE}/{evaluated}", params={"lineage": 1})
    assert lineage.status_code == 200, lineage.text
    nodes = {node["name"]: node for node in lineage.json()["result"]["nodes"]}
    assert nodes[evaluated]["stale"] is True and nodes[name]["stale"] is False
    assert {names["model"], names["compiled"], names["norm"], names["mnist"]} <= set(nodes)
