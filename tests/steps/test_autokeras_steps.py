"""AutoKeras as atomic model-lifecycle steps through the real HTTP server (issue 9, item 5).

The monograph's Appendix B pipeline on the 5,000-digit MNIST subset, each stage a step of
its own, with the bodies the user's script sends:

    dataset/generic     examples/data/mnist/mnist_5k.npz, uploaded (multipart)
    function/python     its arrays, as the script loads them (subsampled: 1,000 training
                        and 500 test digits, to keep the search short)
    model/autokeras     autokeras.tasks.image.ImageClassifier(overwrite=True, max_trials=1)
    train/autokeras     fit(x, y, epochs=1, validation_split=0.1): the search, observed
    predict/autokeras   predict(x)      -> the digits' labels, as ImageClassifier answers
    evaluate/autokeras  evaluate(x, y)  -> `metrics` (accuracy) in the step's metadata

then what must fail clearly: the untrained model step as predict's parent, /tune/autokeras,
a misspelt task. builder/autokeras proves searches run offline: a block asking for ImageNet
weights builds without them.
"""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import BASE, assert_error, data_file
from tests.steps.rest import TIMEOUT, ended, finished, post, succeeded, unique
from tests.steps.test_model_tensorflow import digits_as_arrays, files, method, observed_run

GENERIC = f"{BASE}/dataset/generic"
FUNCTION = f"{BASE}/function/python"
MODEL = f"{BASE}/model/autokeras"
TRAIN = f"{BASE}/train/autokeras"
PREDICT = f"{BASE}/predict/autokeras"
EVALUATE = f"{BASE}/evaluate/autokeras"
BUILDER = f"{BASE}/builder/autokeras"
MNIST = "mnist/mnist_5k.npz"
TRAIN_DIGITS, TEST_DIGITS = 1000, 500
DIGITS = [str(d) for d in range(10)]  # AutoKeras encodes labels as strings

LOAD = f"""
import numpy as np

with np.load(mnist_dataset_autokeras) as f:  # the uploaded .npz, an open binary file
    response = {{
        "train_images": f["x_train"][:{TRAIN_DIGITS}],
        "train_labels": f["y_train"][:{TRAIN_DIGITS}],
        "test_images": f["x_test"][:{TEST_DIGITS}],
        "test_labels": f["y_test"][:{TEST_DIGITS}],
    }}
"""

#: A builder script building a block that asks for ImageNet weights: it only builds
#: offline if the adapter's builder prelude forces pretrained=False.
OFFLINE_BLOCK = textwrap.dedent(
    """\
    import keras
    import keras_tuner
    import autokeras as ak

    block = ak.EfficientNetBlock(pretrained=True, version="b0")
    output = block.build(keras_tuner.HyperParameters(), keras.Input(shape=(32, 32, 3)))
    response = {"shape": [int(n) for n in output.shape[1:]]}
    """
)


@pytest.fixture(scope="module")
def client(lo_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lo_server, timeout=TIMEOUT + 30) as http:
        yield http


@pytest.fixture(scope="module")
def test_labels() -> np.ndarray:
    with np.load(data_file(MNIST)) as npz:
        labels: np.ndarray = npz["y_test"][:TEST_DIGITS]
    return labels


@pytest.fixture(scope="module")
def pipeline(client: httpx.Client) -> dict[str, Any]:
    """The uploaded digits, their arrays and the model step: {role: step name}, and the
    model step's metadata."""
    names = {role: unique(role) for role in ("mnist", "arrays", "model")}
    digits_as_arrays(client, names["mnist"], names["arrays"], LOAD, "mnist_dataset_autokeras")
    model = {
        "modelName": names["model"],
        "modulePath": "autokeras.tasks.image",
        "class": "ImageClassifier",
        "classParameters": {"overwrite": True, "max_trials": 1},
    }
    post(client, MODEL, model, names["model"])
    finished(client, FUNCTION, names["arrays"])
    return {"names": names, "model": finished(client, MODEL, names["model"])}


@pytest.fixture(scope="module")
def trained(client: httpx.Client, pipeline: dict[str, Any]) -> dict[str, Any]:
    """The search (fit, one trial of one epoch), followed through observe:
    {"name", "meta", "seen"}."""
    names = pipeline["names"]
    name = unique("trained")
    arrays = names["arrays"]
    body = method(
        name,
        names["model"],
        names["model"],
        "fit",
        x=f"${arrays}.train_images",
        y=f"${arrays}.train_labels",
        epochs=1,
        validation_split=0.1,
    )
    post(client, TRAIN, body, name)
    meta, seen = observed_run(client, name)
    return {"name": name, "meta": succeeded(client, TRAIN, name, meta), "seen": seen}


def run_on_trained(
    client: httpx.Client, route: str, pipeline: dict[str, Any], parent: str, called: str
) -> dict[str, Any]:
    """predict(x) or evaluate(x, y) on the test digits, with `parent` as parentName: the
    step's metadata once it ended."""
    arrays = pipeline["names"]["arrays"]
    given = {"x": f"${arrays}.test_images"}
    if called == "evaluate":
        given["y"] = f"${arrays}.test_labels"
    name = unique(called)
    post(client, route, method(name, pipeline["names"]["model"], parent, called, **given), name)
    return ended(client, name)


def test_the_model_step_keeps_the_task_to_build(
    client: httpx.Client, pipeline: dict[str, Any]
) -> None:
    meta = pipeline["model"]
    assert meta["type"] == "model/autokeras"
    assert (meta["modulePath"], meta["class"]) == ("autokeras.tasks.image", "ImageClassifier")
    assert (meta["task"], meta["maxTrials"]) == ("ImageClassifier", 1)
    assert meta["responseType"] == "TaskSpec" and meta["files"] == []  # nothing left behind
    assert set(files(client, MODEL, meta["name"])) == {"object.pkl"}
    assert meta["libraries"]["autokeras"] == "3.0.0"


def test_the_search_reports_trials_and_epochs_while_it_runs(
    pipeline: dict[str, Any], trained: dict[str, Any]
) -> None:
    live = [
        doc["progress"]
        for doc in trained["seen"]
        if doc["status"] == "running" and isinstance(doc.get("progress"), dict)
    ]
    search = [event for event in live if event.get("stage") == "search"]
    assert search, f"no search progress seen while it ran: {trained['seen']}"
    for event in search:
        assert (event["trial"], event["trials"]) == (1, 1), event
        assert "epoch" in event or event["status"] == "COMPLETED", event
    # AutoKeras refits the best model on training plus validation data: the last event
    final = trained["meta"]["progress"]
    assert (final["stage"], final["trial"], final["trials"]) == ("final", 1, 1), final
    assert (final["epoch"], final["epochs"]) == (1, 1) and final["loss"] > 0, final

    meta = trained["meta"]
    names = pipeline["names"]
    assert meta["type"] == "train/autokeras" and meta["method"] == "fit"
    assert set(meta["parents"]) == {names["model"], names["arrays"]}
    (trial,) = meta["trials"]
    assert (trial["trial"], trial["status"]) == (1, "COMPLETED"), trial
    assert trial["hyperparameters"]["image_block_1/block_type"] == "vanilla", trial
    assert meta["bestParams"] == trial["hyperparameters"]
    assert meta["objective"] == {"metric": "val_loss", "mode": "min"}
    assert meta["bestScore"] == trial["score"] == trial["metrics"]["val_loss"] > 0
    assert 0 <= trial["metrics"]["val_accuracy"] <= 1, trial
    history = meta["history"]  # fit's History: the final refit, one epoch
    assert len(history["loss"]) == 1 and len(history["accuracy"]) == 1, history
    assert meta["classes"] == DIGITS


def test_the_trained_step_keeps_the_exported_model_and_the_trials_not_their_folders(
    client: httpx.Client, trained: dict[str, Any]
) -> None:
    name = trained["name"]
    assert set(files(client, TRAIN, name)) == {"model.keras", "pipeline.json", "files/trials.json"}
    assert trained["meta"]["files"] == ["files/trials.json"]
    response = client.get(f"{TRAIN}/{name}/files/files/trials.json")
    assert response.status_code == 200, response.text
    (trial,) = json.loads(response.content)
    assert trial["id"] == trained["meta"]["trials"][0]["id"]
    assert trial["hyperparameters"] == trained["meta"]["bestParams"]


def test_predict_answers_the_labels_and_evaluate_the_metrics_of_the_same_model(
    client: httpx.Client,
    pipeline: dict[str, Any],
    trained: dict[str, Any],
    test_labels: np.ndarray,
) -> None:
    predicted = run_on_trained(client, PREDICT, pipeline, trained["name"], "predict")
    evaluated = run_on_trained(client, EVALUATE, pipeline, trained["name"], "evaluate")
    for meta in (predicted, evaluated):
        assert meta["status"] == "finished", (meta["exception"], meta["traceback"])
    assert predicted["type"] == "predict/autokeras" and predicted["shape"] == [TEST_DIGITS, 1]
    response = client.get(f"{PREDICT}/{predicted['name']}/result", params={"format": "npy"})
    assert response.status_code == 200, response.text
    labels = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert labels.shape == (TEST_DIGITS, 1) and set(labels.ravel()) <= set(DIGITS)
    accuracy = float((labels.ravel().astype(int) == test_labels).mean())
    assert accuracy > 0.5, accuracy  # one short trial learns far more than chance (0.1)

    metrics = evaluated["metrics"]
    assert set(metrics) == {"loss", "accuracy"}, metrics
    # evaluate encoded the raw labels as the search did: it agrees with the labels
    assert abs(metrics["accuracy"] - accuracy) < 1e-3, (metrics, accuracy)
    assert metrics["loss"] > 0


def test_the_untrained_model_step_as_parent_fails_naming_parentName(
    client: httpx.Client, pipeline: dict[str, Any]
) -> None:
    meta = run_on_trained(client, PREDICT, pipeline, pipeline["names"]["model"], "predict")
    assert meta["status"] == "failed"
    assert meta["exception"].startswith("parentName: "), meta["exception"]
    assert "train/autokeras" in meta["exception"], meta["exception"]


def test_tune_autokeras_answers_404_naming_train(client: httpx.Client) -> None:
    body = {"name": "x", "modelName": "m", "parentName": "m", "method": "fit"}
    response = client.post(f"{BASE}/tune/autokeras", json={**body, "methodParameters": {}})
    assert_error(response, 404, "tune/autokeras", "train/autokeras")


@pytest.mark.parametrize(
    ("module_path", "task", "parameters", "fragments"),
    [
        (
            "autokeras.tasks.image",
            "ImageClasifier",
            {"max_trials": 1},
            ["class 'ImageClasifier' not found", "did you mean 'ImageClassifier'"],
        ),
        ("autokeras", "ConvBlock", {}, ["class: 'ConvBlock' is not an AutoKeras task"]),
        (
            "autokeras",
            "ImageClassifier",
            {"max_trial": 1},
            ["classParameters: ", "ImageClassifier", "max_trial"],
        ),
    ],
    ids=["misspelt-task", "not-a-task", "misspelt-parameter"],
)
def test_a_bad_task_fails_the_model_step_naming_the_field(
    client: httpx.Client,
    module_path: str,
    task: str,
    parameters: dict[str, Any],
    fragments: list[str],
) -> None:
    name = unique("badTask")
    body = {
        "modelName": name,
        "modulePath": module_path,
        "class": task,
        "classParameters": parameters,
    }
    post(client, MODEL, body, name)
    meta = ended(client, name)
    assert meta["status"] == "failed"
    for fragment in fragments:
        assert fragment in meta["exception"], meta["exception"]


def test_builder_scripts_build_pretrained_blocks_offline(client: httpx.Client) -> None:
    name = unique("offline")
    post(client, BUILDER, {"name": name, "function": OFFLINE_BLOCK, "functionParameters": {}}, name)
    meta = finished(client, BUILDER, name)
    assert meta["type"] == "builder/autokeras"
    log = client.get(f"{BUILDER}/{name}/logs").json()["result"]
    assert "EfficientNetBlock: pretrained=True ignored" in log, log
