"""tune/tensorflow through the real HTTP server: a search over parameter lists (issue 8, item 3).

`lo_server` is the real `learning-orchestra serve`; every step runs in its worker processes
and sandboxed children, on TensorFlow for real. The data are two Gaussian blobs (200 rows,
two features, shuffled) made by a function/python step; the model is a tiny Dense network,
compiled by a train/tensorflow step. The tune tries `epochs` [1, 2] x `compile.optimizer`
["adam", "sgd"] with `validation_split` 0.2, each trial on a fresh clone of the compiled
model, and keeps the trial with the lowest `val_loss` (the default objective with
validation data). A bad `searchSpace` and an uncompiled parent fail the step, naming the
field.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import BASE
from tests.steps.rest import TIMEOUT, ended, finished, post, unique

FUNCTION = f"{BASE}/function/python"
MODEL = f"{BASE}/model/tensorflow"
TRAIN = f"{BASE}/train/tensorflow"
TUNE = f"{BASE}/tune/tensorflow"
PREDICT = f"{BASE}/predict/tensorflow"

BLOBS = """
import numpy as np

rng = np.random.default_rng(8)
x = np.concatenate([rng.normal(-1.5, 1.0, (100, 2)), rng.normal(1.5, 1.0, (100, 2))])
y = np.repeat([0, 1], 100)
order = rng.permutation(200)  # validation_split takes the last rows: both classes there
response = {"x": x[order].astype("float32"), "y": y[order].astype("int64")}
"""

LAYERS = [
    "#tensorflow.keras.Input(shape=(2,))",
    "#tensorflow.keras.layers.Dense(8, activation='relu')",
    "#tensorflow.keras.layers.Dense(2, activation='softmax')",
]
EPOCHS = [1, 2]
OPTIMIZERS = ["adam", "sgd"]
SPACE: dict[str, list[Any]] = {"epochs": EPOCHS, "compile.optimizer": OPTIMIZERS}


def tune_body(name: str, model: str, parent: str, data: str, **parameters: Any) -> dict[str, Any]:
    return {
        "name": name,
        "modelName": model,
        "parentName": parent,
        "method": "fit",
        "methodParameters": {
            "x": f"${data}.x",
            "y": f"${data}.y",
            "batch_size": 32,
            "verbose": 0,
            **parameters,
        },
    }


@pytest.fixture(scope="module")
def client(lo_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lo_server, timeout=TIMEOUT + 30) as http:
        yield http


@pytest.fixture(scope="module")
def pipeline(client: httpx.Client) -> dict[str, str]:
    """The blobs, the model and the compiled model: {role: step name}."""
    names = {role: unique(role) for role in ("blobs", "net", "compiled")}
    blobs = {"name": names["blobs"], "function": BLOBS, "functionParameters": {}}
    post(client, FUNCTION, blobs, names["blobs"])
    model = {
        "modelName": names["net"],
        "modulePath": "tensorflow.keras.models",
        "class": "Sequential",
        "classParameters": {"layers": LAYERS},
    }
    post(client, MODEL, model, names["net"])
    compiled = {
        "name": names["compiled"],
        "modelName": names["net"],
        "parentName": names["net"],
        "method": "compile",
        "methodParameters": {
            "optimizer": "adam",
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
        },
    }
    post(client, TRAIN, compiled, names["compiled"])
    finished(client, FUNCTION, names["blobs"])
    finished(client, MODEL, names["net"])
    finished(client, TRAIN, names["compiled"])
    return names


@pytest.fixture(scope="module")
def tuned(client: httpx.Client, pipeline: dict[str, str]) -> dict[str, Any]:
    """The search over SPACE with validation_split 0.2: its metadata."""
    name = unique("tuned")
    body = tune_body(
        name,
        pipeline["net"],
        pipeline["compiled"],
        pipeline["blobs"],
        validation_split=0.2,
        searchSpace=SPACE,
    )
    post(client, TUNE, body, name)
    return finished(client, TUNE, name)


def test_every_combination_is_a_trial_and_the_lowest_val_loss_is_kept(
    client: httpx.Client, pipeline: dict[str, str], tuned: dict[str, Any]
) -> None:
    assert tuned["type"] == "tune/tensorflow" and tuned["method"] == "fit"
    assert set(tuned["parents"]) == {pipeline["net"], pipeline["compiled"], pipeline["blobs"]}
    assert tuned["objective"] == {"metric": "val_loss", "mode": "min"}  # the default
    trials = tuned["trials"]
    assert [trial["trial"] for trial in trials] == [1, 2, 3, 4]
    expected = [
        {"epochs": epochs, "compile.optimizer": optimizer}
        for epochs, optimizer in itertools.product(EPOCHS, OPTIMIZERS)
    ]
    assert [trial["params"] for trial in trials] == expected
    for trial in trials:
        history = trial["history"]
        assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}, trial
        assert trial["objective"] == history["val_loss"] > 0, trial
    best = min(trials, key=lambda trial: trial["objective"])
    assert tuned["bestParams"] == best["params"]
    assert tuned["bestScore"] == best["objective"]
    # the best trial's own History, epoch by epoch, as a training step keeps it
    history = tuned["history"]
    assert len(history["val_loss"]) == best["params"]["epochs"], history
    assert history["val_loss"][-1] == best["objective"]
    # the last progress event tells the search is over
    progress = tuned["progress"]
    assert (progress["trial"], progress["trials"]) == (4, 4), progress
    assert progress["bestScore"] == best["objective"], progress
    files = client.get(f"{TUNE}/{tuned['name']}/files")
    assert files.status_code == 200, files.text
    assert "model.keras" in {f["filename"] for f in files.json()["result"]}


def test_the_kept_model_predicts(
    client: httpx.Client, pipeline: dict[str, str], tuned: dict[str, Any]
) -> None:
    name = unique("tuned_predicted")
    body = {
        "name": name,
        "modelName": pipeline["net"],
        "parentName": tuned["name"],
        "method": "predict",
        "methodParameters": {"x": f"${pipeline['blobs']}.x", "verbose": 0},
    }
    post(client, PREDICT, body, name)
    meta = finished(client, PREDICT, name)
    assert meta["shape"] == [200, 2]
    response = client.get(f"{PREDICT}/{name}/result", params={"format": "npy"})
    assert response.status_code == 200, response.text
    probabilities = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)  # softmax rows


def test_an_explicit_objective_to_maximise(client: httpx.Client, pipeline: dict[str, str]) -> None:
    name = unique("tuned_accuracy")
    body = tune_body(
        name,
        pipeline["net"],
        pipeline["compiled"],
        pipeline["blobs"],
        epochs=2,
        validation_split=0.2,
        searchSpace={"compile.optimizer": ["sgd", "#tensorflow.keras.optimizers.Adam(0.05)"]},
        objective={"metric": "val_accuracy", "mode": "max"},
    )
    post(client, TUNE, body, name)
    meta = finished(client, TUNE, name)
    assert meta["objective"] == {"metric": "val_accuracy", "mode": "max"}
    trials = meta["trials"]
    assert [trial["params"]["compile.optimizer"] for trial in trials] == [
        "sgd",
        "Adam(learning_rate=0.05)",
    ]
    scores = [trial["objective"] for trial in trials]
    assert scores == [trial["history"]["val_accuracy"] for trial in trials]
    assert meta["bestScore"] == max(scores)
    assert meta["bestParams"] == trials[scores.index(max(scores))]["params"]


@pytest.mark.parametrize(
    ("space", "fragments"),
    [
        ({"epochs": 2}, ["methodParameters.searchSpace", "'epochs' must be a non-empty list"]),
        ([1, 2], ["methodParameters.searchSpace", "an object of parameter lists"]),
        (
            {"compile.optimiser": ["adam"]},
            ["methodParameters.searchSpace", "not an argument of compile", "compile.optimizer"],
        ),
        ({"epoch": [1]}, ["methodParameters.searchSpace", "not an argument of fit", "'epochs'"]),
    ],
)
def test_a_bad_search_space_fails_the_step_naming_it(
    client: httpx.Client, pipeline: dict[str, str], space: Any, fragments: list[str]
) -> None:
    name = unique("bad_space")
    body = tune_body(name, pipeline["net"], pipeline["compiled"], pipeline["blobs"])
    body["methodParameters"]["searchSpace"] = space
    post(client, TUNE, body, name)
    meta = ended(client, name)
    assert meta["status"] == "failed", meta
    for fragment in fragments:
        assert fragment in meta["exception"], (fragment, meta["exception"])


def test_an_uncompiled_parent_fails_the_step_naming_it(
    client: httpx.Client, pipeline: dict[str, str]
) -> None:
    name = unique("uncompiled")
    body = tune_body(name, pipeline["net"], pipeline["net"], pipeline["blobs"], searchSpace=SPACE)
    post(client, TUNE, body, name)
    meta = ended(client, name)
    assert meta["status"] == "failed", meta
    assert meta["exception"].startswith("parentName: the parent's model is not compiled"), meta
