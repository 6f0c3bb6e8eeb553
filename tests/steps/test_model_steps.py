"""The scikit-learn model lifecycle through the real HTTP server (issue 8, items 2, 3, 5, 7).

`lo_server` is the real `learning-orchestra serve`; every step runs in its worker processes and
sandboxed children, on scikit-learn for real, on the Titanic CSVs (examples/data/titanic)
uploaded as datasets:

    function/python        numeric features X/y (a training part and a hold-out), test.csv's X
    model/scikitlearn      LogisticRegression(max_iter=1000)
    train/scikitlearn      fit(X, y)                      -> the fitted estimator
    predict/scikitlearn    predict(test.csv's X)          -> 418 predictions
    evaluate/scikitlearn   score(hold-out)                -> metrics.accuracy >= 0.75
    model/scikitlearn      GridSearchCV(estimator=#sklearn.linear_model.LogisticRegression())
    tune/scikitlearn       fit(X, y)                      -> best estimator, bestParams, ...

then a PATCH re-train (parents untouched, children stale), the requests refused up front
(4xx) and the names that only the job can check (a `failed` step naming the field).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import BASE, assert_error, data_file

pytestmark = pytest.mark.e2e  # the shared server process

CSV = f"{BASE}/dataset/csv"
FUNCTION = f"{BASE}/function/python"
MODEL = f"{BASE}/model/scikitlearn"
TRAIN = f"{BASE}/train/scikitlearn"
TUNE = f"{BASE}/tune/scikitlearn"
EVALUATE = f"{BASE}/evaluate/scikitlearn"
PREDICT = f"{BASE}/predict/scikitlearn"
TIMEOUT = 120
HOLD_OUT = 223  # rows of train.csv kept out of training (891 = 668 + 223)

FEATURES = f"""
import numpy as np
import pandas as pd

def features(frame):
    return pd.DataFrame({{
        "Pclass": frame["Pclass"],
        "Female": (frame["Sex"] == "female").astype(int),
        "Age": frame["Age"].fillna(28.0),
        "SibSp": frame["SibSp"],
        "Parch": frame["Parch"],
        "Fare": frame["Fare"].fillna(14.45),
    }})

X, y = features(train), train["Survived"]
cut = len(X) - {HOLD_OUT}
response = {{
    "X": X[:cut], "y": y[:cut], "X_hold": X[cut:], "y_hold": y[cut:],
    "X_test": features(test),
    "w": np.where(X["Female"][:cut] == 1, 3.0, 1.0),  # sample weights for the re-train
}}
"""


class Pipeline:
    """The shared server's client and the names of this module's steps."""

    # the steps of the pipeline fixture, by role
    train_csv: str
    test_csv: str
    data: str  # the function step holding X, y, X_hold, y_hold, X_test, w
    model: str
    trained: str
    predicted: str
    scored: str
    search: str
    tuned: str

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.suffix = uuid.uuid4().hex[:8]
        self.created: list[str] = []

    def name(self, prefix: str) -> str:
        """A step name no other test of the session's server uses."""
        return f"{prefix}_{self.suffix}"

    def post(self, route: str, body: dict[str, Any], name_field: str = "name") -> str:
        """POST a step (201 with its URL); its name."""
        name = body[name_field]
        response = self.client.post(route, json=body)
        assert response.status_code == 201, response.text
        assert response.json() == {"result": f"{route}/{name}"}
        self.created.append(name)
        return str(name)

    def wait(self, name: str) -> dict[str, Any]:
        """Long-poll observe until `name` ends; its metadata."""
        response = self.client.get(f"{BASE}/observe/{name}", params={"timeout": TIMEOUT})
        assert response.status_code == 200, response.text
        meta: dict[str, Any] = response.json()["result"]
        return meta

    def finished(self, name: str) -> dict[str, Any]:
        meta = self.wait(name)
        assert meta["status"] == "finished", (name, meta["exception"], meta["traceback"])
        return meta

    def method(self, route: str, prefix: str, parent: str, method: str, **params: Any) -> str:
        """POST a train/tune/evaluate/predict step on `parent` (of model self.model)."""
        body = {
            "name": self.name(prefix),
            "modelName": params.pop("modelName", self.model),
            "parentName": parent,
            "method": method,
            "methodParameters": params,
        }
        return self.post(route, body)

    def xy(self, key: str) -> str:
        return f"${self.data}.{key}"

    def checksums(self, route: str) -> dict[str, str]:
        """filename -> sha256 of a step's stored files."""
        response = self.client.get(f"{route}/files")
        assert response.status_code == 200, response.text
        return {f["filename"]: f["sha256"] for f in response.json()["result"]}


@pytest.fixture(scope="module")
def pipeline(lo_server: str) -> Iterator[Pipeline]:
    """The whole pipeline submitted at once (each step waits for its parents on the server),
    then waited for; its steps are deleted afterwards."""
    with httpx.Client(base_url=lo_server, timeout=TIMEOUT + 30) as client:
        p = Pipeline(client)
        try:
            p.train_csv, p.test_csv = p.name("m_train"), p.name("m_test")
            for name, file in ((p.train_csv, "train.csv"), (p.test_csv, "test.csv")):
                with data_file(f"titanic/{file}").open("rb") as handle:
                    response = client.post(
                        CSV, data={"datasetName": name}, files={"file": (file, handle)}
                    )
                assert response.status_code == 201, response.text
                p.created.append(name)
            p.data = p.post(
                FUNCTION,
                {
                    "name": p.name("m_xy"),
                    "function": FEATURES,
                    "functionParameters": {"train": f"${p.train_csv}", "test": f"${p.test_csv}"},
                },
            )
            p.model = p.post(
                MODEL,
                {
                    "modelName": p.name("m_lr"),
                    "modulePath": "sklearn.linear_model",
                    "class": "LogisticRegression",
                    "classParameters": {"max_iter": 1000},
                    "description": "logistic regression",
                },
                name_field="modelName",
            )
            p.trained = p.method(TRAIN, "m_fit", p.model, "fit", X=p.xy("X"), y=p.xy("y"))
            p.predicted = p.method(PREDICT, "m_pred", p.trained, "predict", X=p.xy("X_test"))
            p.scored = p.method(
                EVALUATE, "m_score", p.trained, "score", X=p.xy("X_hold"), y=p.xy("y_hold")
            )
            p.search = p.post(
                MODEL,
                {
                    "modelName": p.name("m_grid"),
                    "modulePath": "sklearn.model_selection",
                    "class": "GridSearchCV",
                    "classParameters": {
                        "estimator": "#sklearn.linear_model.LogisticRegression(max_iter=1000)",
                        "param_grid": {"C": [0.01, 1.0, 100.0]},
                        "cv": 3,
                    },
                },
                name_field="modelName",
            )
            p.tuned = p.method(
                TUNE, "m_tuned", p.search, "fit", X=p.xy("X"), y=p.xy("y"), modelName=p.search
            )
            for name in p.created:
                p.finished(name)
            yield p
        finally:
            for name in reversed(p.created):
                step = client.get(f"{BASE}/steps/{name}")
                if step.status_code == 200:
                    response = client.delete(f"{BASE}/{step.json()['result']['type']}/{name}")
                    assert response.status_code in (200, 404), response.text


# -- the pipeline ------------------------------------------------------------------------------
def test_model_train_predict_evaluate(pipeline: Pipeline) -> None:
    p, client = pipeline, pipeline.client
    model = p.finished(p.model)
    assert model["type"] == "model/scikitlearn" and model["modelName"] == p.model
    assert (model["modulePath"], model["class"]) == ("sklearn.linear_model", "LogisticRegression")
    assert model["responseType"] == "LogisticRegression" and model["parents"] == []
    assert model["description"] == "logistic regression"
    assert model["libraries"]["scikit-learn"]
    listed = client.get(MODEL, params={"limit": 100}).json()["result"]
    assert p.model in [m["name"] for m in listed]

    trained = p.finished(p.trained)
    assert trained["type"] == "train/scikitlearn" and trained["method"] == "fit"
    assert trained["parents"] == [p.model, p.data]  # the parent and every referenced step
    assert trained["responseType"] == "LogisticRegression"
    assert trained["durationSeconds"] > 0
    # a new artifact: the model step's unfitted object is not the fitted one
    assert p.checksums(f"{TRAIN}/{p.trained}") != p.checksums(f"{MODEL}/{p.model}")

    scored = p.finished(p.scored)
    assert scored["parents"] == [p.model, p.trained, p.data]
    metrics = scored["metrics"]
    assert metrics["accuracy"] >= 0.75 and metrics["score"] == metrics["accuracy"]
    value = client.get(f"{EVALUATE}/{p.scored}/result").json()["result"]
    assert value == metrics["accuracy"]

    predicted = p.finished(p.predicted)
    assert predicted["shape"] == [418] and predicted["responseType"] == "ndarray"
    npy = client.get(f"{PREDICT}/{p.predicted}/result")
    assert npy.status_code == 200, npy.text
    labels = np.load(io.BytesIO(npy.content))
    assert labels.shape == (418,) and set(np.unique(labels)) <= {0, 1}
    assert 0.2 < labels.mean() < 0.6  # some survive, most do not

    # content: the run records, newest first
    page = client.get(f"{TRAIN}/{p.trained}", params={"skip": 1, "limit": 1}).json()["result"]
    assert page[0]["status"] == "finished" and page[0]["parameters"]["method"] == "fit"


def test_tune_with_grid_search(pipeline: Pipeline) -> None:
    p = pipeline
    search = p.finished(p.search)
    assert search["responseType"] == "GridSearchCV"
    tuned = p.finished(p.tuned)
    assert tuned["type"] == "tune/scikitlearn" and tuned["parents"] == [p.search, p.data]
    assert tuned["responseType"] == "LogisticRegression"  # the best estimator is kept
    assert tuned["bestParams"]["C"] in (0.01, 1.0, 100.0)
    rows = tuned["cvResults"]
    assert [row["rank"] for row in rows] == [1, 2, 3]
    assert {row["params"]["C"] for row in rows} == {0.01, 1.0, 100.0}
    assert rows[0]["params"] == tuned["bestParams"]
    assert rows[0]["meanTestScore"] == pytest.approx(tuned["bestScore"])
    assert 0.7 < tuned["bestScore"] < 0.9
    # the tuned step holds an estimator later steps call methods on
    scored = p.method(
        EVALUATE,
        "m_tuned_score",
        p.tuned,
        "score",
        X=p.xy("X_hold"),
        y=p.xy("y_hold"),
        modelName=p.search,
    )
    assert p.finished(scored)["metrics"]["accuracy"] >= 0.75


def test_patch_retrains_from_persisted_parents(pipeline: Pipeline) -> None:
    p, client = pipeline, pipeline.client
    trained = p.method(TRAIN, "m_refit", p.model, "fit", X=p.xy("X"), y=p.xy("y"))
    p.finished(trained)
    predicted = p.method(PREDICT, "m_repred", trained, "predict", X=p.xy("X_hold"))
    scored = p.method(EVALUATE, "m_rescore", trained, "score", X=p.xy("X_hold"), y=p.xy("y_hold"))
    for name in (predicted, scored):
        assert p.finished(name)["stale"] is False
    routes = {
        p.model: f"{MODEL}/{p.model}",
        p.train_csv: f"{CSV}/{p.train_csv}",
        p.data: f"{FUNCTION}/{p.data}",
    }
    before = {name: p.checksums(route) for name, route in routes.items()}
    fitted = p.checksums(f"{TRAIN}/{trained}")

    response = client.patch(
        f"{TRAIN}/{trained}", json={"methodParameters": {"sample_weight": p.xy("w")}}
    )
    assert response.status_code == 201, response.text
    retrained = p.finished(trained)
    assert retrained["runs"] == 2
    # merge-patch: X and y kept, sample_weight added
    assert retrained["parameters"]["methodParameters"] == {
        "X": p.xy("X"),
        "y": p.xy("y"),
        "sample_weight": p.xy("w"),
    }
    assert p.checksums(f"{TRAIN}/{trained}") != fitted  # weighted: other coefficients
    # nothing upstream recomputed nor rewritten
    assert {name: p.checksums(route) for name, route in routes.items()} == before
    assert p.finished(p.model)["runs"] == 1 and p.finished(p.data)["runs"] == 1
    # what was computed from the old model is stale, and lineage shows it
    for name in (predicted, scored):
        assert client.get(f"{BASE}/steps/{name}").json()["result"]["stale"] is True
    graph = client.get(f"{EVALUATE}/{scored}", params={"lineage": 1}).json()["result"]
    nodes = {node["name"]: node for node in graph["nodes"]}
    assert nodes[scored]["stale"] is True and nodes[trained]["stale"] is False
    assert {p.model, trained, p.data, p.train_csv} <= set(nodes)


# -- refused up front, in the API process -------------------------------------------------------
def test_bad_requests_are_refused_naming_the_field(pipeline: Pipeline) -> None:
    p, client = pipeline, pipeline.client
    model = {
        "modelName": p.name("m_bad"),
        "modulePath": "numpy.linalg",
        "class": "LogisticRegression",
        "classParameters": {},
    }
    body = assert_error(client.post(MODEL, json=model), 422, "modulePath", "scikit-learn")
    assert body["error"]["detail"] == {"field": "modulePath"}
    model["modulePath"] = "sklearn..linear_model"
    assert_error(client.post(MODEL, json=model), 422, "modulePath")
    assert_error(client.post(MODEL, json={**model, "epochs": 3}), 422, "epochs")

    def method(**changes: Any) -> dict[str, Any]:
        return {
            "name": p.name("m_bad"),
            "modelName": p.model,
            "parentName": p.model,
            "method": "fit",
            "methodParameters": {"X": p.xy("X"), "y": p.xy("y")},
            **changes,
        }

    assert_error(client.post(TRAIN, json=method(parentName="nowhere")), 422, "nowhere")
    assert_error(client.post(TRAIN, json=method(modelName="nowhere")), 422, "nowhere")
    body = assert_error(
        client.post(TRAIN, json=method(parentName=p.train_csv)), 422, "parentName", "dataset/csv"
    )
    assert body["error"]["detail"]["field"] == "parentName"
    # an evaluation holds metrics, not an object to call methods on
    assert_error(client.post(PREDICT, json=method(parentName=p.scored)), 422, "parentName")
    # modelName must be a model step
    assert_error(client.post(TRAIN, json=method(modelName=p.trained)), 422, "modelName")
    # another toolkit's model
    tensorflow = f"{BASE}/train/tensorflow"
    assert_error(client.post(tensorflow, json=method()), 422, "modelName", "model/tensorflow")
    assert_error(client.post(TRAIN, json=method(epochs=3)), 422, "epochs")
    assert_error(client.post(TRAIN, json=method(method="os.system")), 422, "method")
    bad_key = method(methodParameters={"not a name": 1})
    assert_error(client.post(TRAIN, json=bad_key), 422, "methodParameters")
    assert_error(client.post(TRAIN, json=method(name=p.trained)), 409)
    assert client.get(f"{BASE}/steps/{p.name('m_bad')}").status_code == 404


# -- checked by the job: the step fails at once, naming the field -------------------------------
def test_bad_names_fail_the_step_naming_the_field(pipeline: Pipeline) -> None:
    p = pipeline
    model = {"modulePath": "sklearn.linear_model", "classParameters": {}}
    bad_class = p.post(
        MODEL, {**model, "modelName": p.name("m_typo"), "class": "LogisticRegresion"}, "modelName"
    )
    bad_parameter = p.post(
        MODEL,
        {
            **model,
            "modelName": p.name("m_param"),
            "class": "LogisticRegression",
            "classParameters": {"max_iters": 10},
        },
        "modelName",
    )
    bad_method = p.method(TRAIN, "m_fitt", p.model, "fitt", X=p.xy("X"), y=p.xy("y"))
    bad_argument = p.method(TRAIN, "m_args", p.model, "fit", X=p.xy("X"), labels=p.xy("y"))
    failing = p.method(TRAIN, "m_nan", p.model, "fit", X="#[[1.0], [float('nan')]]", y=[0, 1])
    expected = {
        bad_class: ("class 'LogisticRegresion' not found", "did you mean 'LogisticRegression'"),
        bad_parameter: ("classParameters", "max_iters", "max_iter"),
        bad_method: ("method 'fitt' not found", "did you mean 'fit'"),
        bad_argument: ("methodParameters", "LogisticRegression.fit"),
        failing: ("LogisticRegression.fit: ValueError", "NaN"),
    }
    for name, fragments in expected.items():
        meta = p.wait(name)
        assert meta["status"] == "failed", meta
        for fragment in fragments:
            assert fragment in meta["exception"], (fragment, meta["exception"])
