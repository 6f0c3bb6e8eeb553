"""PyCaret 3.3 as atomic model-lifecycle steps through the real HTTP server (issue 9, items 1
and 5).

`lo_server` is the real `learning-orchestra serve`; every step runs in its worker processes
and sandboxed children, on PyCaret for real, on the Titanic CSVs uploaded as datasets:

    model/pycaret      ClassificationExperiment().setup(data=$train, target="Survived", ...)
    train/pycaret      compare_models(include=["lr", "dt"], fold=3, n_select=1)
    tune/pycaret       tune_model(estimator=$trained, n_iter=2, fold=3)
    evaluate/pycaret   predict_model(estimator=$tuned)             -> hold-out metrics
    predict/pycaret    predict_model(estimator=$tuned, data=$test) -> 418 predictions

then a PATCH re-tune that re-runs neither setup nor compare, a train re-run on a restarted
server (its own process, same data dir) that gives the same leaderboard, and the inputs the
job refuses naming the field. Budgets: two models, 3 folds, 2 tuning iterations.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BASE, ServerProcess, data_file
from tests.steps.rest import OBSERVE, TIMEOUT, ended, finished, post, unique

pytestmark = pytest.mark.e2e  # the shared server process

CSV = f"{BASE}/dataset/csv"
MODEL = f"{BASE}/model/pycaret"
TRAIN = f"{BASE}/train/pycaret"
TUNE = f"{BASE}/tune/pycaret"
EVALUATE = f"{BASE}/evaluate/pycaret"
PREDICT = f"{BASE}/predict/pycaret"
TERMINAL = ("finished", "failed", "cancelled")
SESSION_ID = 123
COMPARED = ["lr", "dt"]
#: The class of the estimator each compared id stands for.
ESTIMATORS = {"lr": "LogisticRegression", "dt": "DecisionTreeClassifier"}
HOLD_OUT = 268  # PyCaret's default 70/30 split of train.csv's 891 rows
METRICS = {"Accuracy", "AUC", "Recall", "Prec.", "F1", "Kappa", "MCC"}


def upload(client: httpx.Client, file: str, prefix: str) -> str:
    """Upload titanic/`file` as a dataset/csv step; its name, once it finished."""
    name = unique(prefix)
    with data_file(f"titanic/{file}").open("rb") as handle:
        response = client.post(CSV, data={"datasetName": name}, files={"file": (file, handle)})
    assert response.status_code == 201, response.text
    finished(client, CSV, name)
    return name


def experiment(name: str, train: str, **parameters: Any) -> dict[str, Any]:
    """A model/pycaret body: a ClassificationExperiment set up on dataset `train`."""
    return {
        "modelName": name,
        "modulePath": "pycaret.classification",
        "class": "ClassificationExperiment",
        "classParameters": {
            "data": f"${train}",
            "target": "Survived",
            "ignore_features": ["PassengerId", "Name", "Ticket", "Cabin"],
            **parameters,
        },
    }


def method(name: str, model: str, method: str, **parameters: Any) -> dict[str, Any]:
    """A train|tune|evaluate|predict/pycaret body on experiment `model`."""
    parent = parameters.pop("parentName", model)
    return {
        "name": name,
        "modelName": model,
        "parentName": parent,
        "method": method,
        "methodParameters": parameters,
    }


def observe_all(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    """Every version of the step's metadata the observe feed gives, until it ends."""
    seen: list[dict[str, Any]] = []
    since = 0
    while True:
        answer = client.get(f"{OBSERVE}/{name}", params={"since": since, "timeout": TIMEOUT})
        assert answer.status_code == 200, answer.text
        doc: dict[str, Any] = answer.json()["result"]
        seen.append(doc)
        if doc["status"] in TERMINAL:
            return seen
        since = doc["version"]


def runs(client: httpx.Client, route: str) -> list[tuple[int, str]]:
    """(run, artifact checksum) of every run of a step, newest first."""
    response = client.get(f"{route}/runs")
    assert response.status_code == 200, response.text
    return [(run["run"], run["artifact"]["checksum"]) for run in response.json()["result"]]


def without_timing(leaderboard: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "TT (Sec)"} for row in leaderboard]


def failure(client: httpx.Client, route: str, body: dict[str, Any], name: str) -> str:
    """POST a step that the job must refuse: its `exception`."""
    post(client, route, body, name)
    meta = ended(client, name)
    assert meta["status"] == "failed", meta
    exception: str = meta["exception"]
    return exception


class Titanic:
    """The shared server's client and the names of the pipeline's steps."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.train_csv = upload(client, "train.csv", "pc_train")
        self.test_csv = upload(client, "test.csv", "pc_test")
        self.model = unique("pc_experiment")
        self.trained = unique("pc_best")
        self.tuned = unique("pc_tuned")
        self.holdout = unique("pc_holdout")
        self.predicted = unique("pc_predicted")
        self.train_seen: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def titanic(lo_server: str) -> Iterator[Titanic]:
    """The whole pipeline submitted at once (each step waits for its parents on the
    server); the train step observed version by version while it runs."""
    with httpx.Client(base_url=lo_server, timeout=TIMEOUT + 30) as client:
        t = Titanic(client)
        # `silent` is PyCaret 2's (dropped, with a warning); `html` is forced to False
        body = experiment(t.model, t.train_csv, session_id=SESSION_ID, silent=True, html=True)
        post(client, MODEL, body, t.model)
        compare = {"include": COMPARED, "fold": 3, "n_select": 1}
        post(client, TRAIN, method(t.trained, t.model, "compare_models", **compare), t.trained)
        tune = {"estimator": f"${t.trained}", "n_iter": 2, "fold": 3}
        post(client, TUNE, method(t.tuned, t.model, "tune_model", **tune), t.tuned)
        holdout = method(t.holdout, t.model, "predict_model", estimator=f"${t.tuned}")
        post(client, EVALUATE, holdout, t.holdout)
        test = {"estimator": f"${t.tuned}", "data": f"${t.test_csv}"}
        post(client, PREDICT, method(t.predicted, t.model, "predict_model", **test), t.predicted)
        t.train_seen = observe_all(client, t.trained)
        yield t


# -- the pipeline ------------------------------------------------------------------------------
def test_model_step_holds_the_set_up_experiment(titanic: Titanic) -> None:
    client = titanic.client
    meta = finished(client, MODEL, titanic.model)
    assert meta["type"] == "model/pycaret" and meta["responseType"] == "ClassificationExperiment"
    assert meta["sessionId"] == SESSION_ID and meta["task"] == "classification"
    summary = {row["Description"]: row["Value"] for row in meta["setupSummary"]}
    assert summary["Session id"] == SESSION_ID and summary["Target"] == "Survived"
    assert summary["Original data shape"] == [891, 12]
    assert runs(client, f"{MODEL}/{titanic.model}")[0][0] == 1
    log = client.get(f"{MODEL}/{titanic.model}/logs").json()["result"]
    assert "ignored PyCaret 2 argument(s) that PyCaret 3 no longer takes: silent=True" in log
    assert "classParameters.html=True is ignored" in log


def test_compare_models_keeps_the_best_estimator_and_the_leaderboard(titanic: Titanic) -> None:
    meta = finished(titanic.client, TRAIN, titanic.trained)
    board = meta["leaderboard"]
    assert sorted(row["ID"] for row in board) == sorted(COMPARED)
    assert METRICS | {"Model", "TT (Sec)"} <= set(board[0])
    accuracies = [row["Accuracy"] for row in board]
    assert accuracies == sorted(accuracies, reverse=True) and 0.6 < accuracies[0] < 0.95
    # the stored output is the estimator ranked first, never the experiment
    assert meta["responseType"] == ESTIMATORS[board[0]["ID"]]
    assert meta["sessionId"] == SESSION_ID


def test_compare_models_reports_each_model_as_progress(titanic: Titanic) -> None:
    seen = titanic.train_seen
    assert seen[-1]["status"] == "finished", seen[-1]
    events = [doc["progress"] for doc in seen if doc.get("progress")]
    assert events, f"no progress observed: {seen}"
    for event in events:
        assert event["models"] == len(COMPARED) and 1 <= event["model"] <= len(COMPARED)
        assert event["estimator"] in COMPARED and isinstance(event["name"], str)
    # the last model compared is model n of n, and the feed shows it
    assert events[-1]["model"] == len(COMPARED)
    assert [e["model"] for e in events] == sorted(e["model"] for e in events)


def test_tune_evaluate_and_predict(titanic: Titanic) -> None:
    client = titanic.client
    tuned = finished(client, TUNE, titanic.tuned)
    assert tuned["responseType"] in ESTIMATORS.values()
    assert [row["Fold"] for row in tuned["cvResults"]] == [0, 1, 2, "Mean", "Std"]
    assert set(tuned["cvResults"][0]) >= METRICS
    assert isinstance(tuned["tuned"], bool) and isinstance(tuned["bestParams"], dict)
    # choose_better (PyCaret's default here) may keep the estimator given: the log says so
    log = client.get(f"{TUNE}/{titanic.tuned}/logs").json()["result"]
    assert ("tune_model kept the estimator it was given" in log) is not tuned["tuned"]

    holdout = finished(client, EVALUATE, titanic.holdout)
    metrics = holdout["metrics"]
    assert set(metrics) == METRICS and 0.6 < metrics["Accuracy"] <= 1.0
    assert all(isinstance(value, float) for value in metrics.values())
    assert holdout["model"] in ("Logistic Regression", "Decision Tree Classifier")
    assert holdout["rows"] == HOLD_OUT and "prediction_label" in holdout["fields"]

    predicted = finished(client, PREDICT, titanic.predicted)
    assert predicted["rows"] == 418
    assert {"prediction_label", "prediction_score"} <= set(predicted["fields"])
    table = client.get(f"{PREDICT}/{titanic.predicted}/result", params={"format": "json"})
    assert table.status_code == 200, table.text
    labels = [row["prediction_label"] for row in table.json()["result"]]
    assert len(labels) == 418 and set(labels) <= {0, 1} and 0.1 < sum(labels) / 418 < 0.7


def test_retune_by_patch_reruns_neither_setup_nor_compare(titanic: Titanic) -> None:
    client = titanic.client
    finished(client, TUNE, titanic.tuned)
    upstream = {f"{MODEL}/{titanic.model}", f"{TRAIN}/{titanic.trained}"}
    before = {route: runs(client, route) for route in upstream}
    assert all(len(recorded) == 1 for recorded in before.values()), before

    patch = {"methodParameters": {"n_iter": 3, "choose_better": False}}
    response = client.patch(f"{TUNE}/{titanic.tuned}", json=patch)
    assert response.status_code == 201, response.text
    retuned = finished(client, TUNE, titanic.tuned)
    assert retuned["runs"] == 2 and retuned["parameters"]["methodParameters"]["n_iter"] == 3
    assert [row["Fold"] for row in retuned["cvResults"]][-2:] == ["Mean", "Std"]
    assert retuned["tuned"] is True  # choose_better=False: the tuned estimator is kept
    # the experiment and the compared model were loaded, not made again
    assert {route: runs(client, route) for route in upstream} == before
    assert finished(client, MODEL, titanic.model)["runs"] == 1
    assert finished(client, TRAIN, titanic.trained)["runs"] == 1


# -- refused by the job, naming the field -----------------------------------------------------
def test_missing_data_or_target_column_fails_naming_the_field(titanic: Titanic) -> None:
    name = unique("pc_typo")
    body = experiment(name, titanic.train_csv, target="Survivd")
    exception = failure(titanic.client, MODEL, body, name)
    assert "classParameters.target: column 'Survivd' is not in the data" in exception
    assert "did you mean 'Survived'?" in exception and "columns: PassengerId" in exception
    name = unique("pc_no_data")
    body = experiment(name, titanic.train_csv)
    del body["classParameters"]["data"]
    exception = failure(titanic.client, MODEL, body, name)
    assert exception.startswith("classParameters.data: missing"), exception


def test_bad_estimator_ids_fail_naming_the_field(titanic: Titanic) -> None:
    client, model = titanic.client, titanic.model
    created = unique("pc_bogus")
    exception = failure(
        client, TRAIN, method(created, model, "create_model", estimator="bogus"), created
    )
    assert "methodParameters.estimator: 'bogus' is not a PyCaret estimator id" in exception
    assert "ids: lr, knn," in exception
    compared = unique("pc_bogus_include")
    body = method(compared, model, "compare_models", include=["lr", "rff"], fold=3)
    exception = failure(client, TRAIN, body, compared)
    assert "methodParameters.include: 'rff' is not a PyCaret estimator id" in exception
    assert "did you mean 'rf'?" in exception


def test_a_parent_that_is_not_the_experiment_fails_naming_parent_name(titanic: Titanic) -> None:
    client = titanic.client
    finished(client, TRAIN, titanic.trained)
    name = unique("pc_wrong_parent")
    body = method(name, titanic.model, "tune_model", parentName=titanic.trained, n_iter=2)
    exception = failure(client, TUNE, body, name)
    assert exception.startswith("parentName: ") and "model/pycaret" in exception
    assert f"holds a {finished(client, TRAIN, titanic.trained)['responseType']}" in exception


def test_evaluating_a_finalized_estimator_is_refused(titanic: Titanic) -> None:
    client, model = titanic.client, titanic.model
    final = unique("pc_final")
    post(
        client,
        TRAIN,
        method(final, model, "finalize_model", estimator=f"${titanic.trained}"),
        final,
    )
    assert finished(client, TRAIN, final)["responseType"] == "Pipeline"
    name = unique("pc_final_holdout")
    body = method(name, model, "predict_model", estimator=f"${final}")
    exception = failure(client, EVALUATE, body, name)
    assert exception.startswith("methodParameters.estimator: ") and "finalize_model" in exception


# -- a re-run on a restarted server --------------------------------------------------------------
def test_train_rerun_after_a_restart_gives_the_same_leaderboard(tmp_path: Path) -> None:
    """The experiment is rebuilt from what the model step persisted, in a new server
    process: compare_models gives the same leaderboard (but its timings) and session id."""
    server = ServerProcess(tmp_path / "data")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT + 30) as client:
            train_csv = upload(client, "train.csv", "pc_train")
            post(client, MODEL, experiment("exp", train_csv), "exp")  # a session_id drawn
            compare = {"include": COMPARED, "fold": 3}
            post(client, TRAIN, method("best", "exp", "compare_models", **compare), "best")
            first = finished(client, TRAIN, "best")
            session = finished(client, MODEL, "exp")["sessionId"]
        server.stop()
        server.start()
        with httpx.Client(base_url=server.url, timeout=TIMEOUT + 30) as client:
            response = client.patch(f"{TRAIN}/best", json={})
            assert response.status_code == 201, response.text
            again = finished(client, TRAIN, "best")
            assert again["runs"] == 2
            assert isinstance(session, int) and again["sessionId"] == first["sessionId"] == session
            assert without_timing(again["leaderboard"]) == without_timing(first["leaderboard"])
            assert finished(client, MODEL, "exp")["runs"] == 1
    finally:
        server.stop()
