"""builder/pycaret and builder/autokeras through the real server (fixture `lo_server`).

A short version of the monograph's Appendix A (tests/examples runs it whole, through the
client) as one builder/pycaret step on the uploaded Titanic train.csv, cast as the appendix
casts it: PyCaret 2's `setup(silent=True)` is kept, to prove it is dropped with a warning
in the step's log; the leaderboard (`score`) and the saved model are step files, and LO's
`GET /explore/getlocaldatapycaret` answers the leaderboard's text. Budget changes from the
appendix: compare_models(include=["lr", "dt"], fold=3) instead of turbo=False over every
model and 10 folds; tune_model(n_iter=2, fold=3) instead of n_iter=100.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import BASE, assert_error, data_file
from tests.steps.rest import TIMEOUT, finished, post, unique

CSV = f"{BASE}/dataset/csv"
DATA_TYPE = f"{BASE}/transform/dataType"
PYCARET = f"{BASE}/builder/pycaret"
AUTOKERAS = f"{BASE}/builder/autokeras"
LOCAL_DATA = f"{BASE}/explore/getlocaldatapycaret"

APPENDIX_A = textwrap.dedent(
    """\
    from pycaret import classification

    clas = classification.setup(
        data=train,
        target='Survived',
        ignore_features=['Ticket'],
        numeric_features=['Age', 'Fare', 'Parch', 'Pclass', 'SibSp'],
        session_id = 1,
        silent=True)

    best = classification.compare_models(include=["lr", "dt"], fold=3)

    best_tuned = classification.tune_model(best, n_iter=2, fold=3)

    score = classification.pull()
    score.to_csv('score', sep='\\t', encoding='utf-8')

    final = classification.finalize_model(best_tuned)

    classification.save_model(final, 'titanic_pycaret')

    response = None
    """
)

AUTOKERAS_SCRIPT = textwrap.dedent(
    """\
    import numpy as np
    import autokeras as ak

    rng = np.random.default_rng(1)
    x = rng.random((64, 4)).astype("float32")
    y = (x[:, 0] > 0.5).astype("int32")
    clf = ak.StructuredDataClassifier(max_trials=1, overwrite=True, directory="search", seed=1)
    clf.fit(x, y, epochs=1, verbose=0)
    model = clf.export_model()
    model.save("best.keras")
    response = {"layers": len(model.layers), "predicted": int(clf.predict(x[:4]).shape[0])}
    """
)


@pytest.fixture(scope="module")
def client(lo_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lo_server, timeout=TIMEOUT + 30) as http:
        yield http


def files_of(client: httpx.Client, route: str, name: str) -> set[str]:
    response = client.get(f"{route}/{name}/files")
    assert response.status_code == 200, response.text
    return {f["filename"] for f in response.json()["result"]}


def log_of(client: httpx.Client, route: str, name: str) -> str:
    response = client.get(f"{route}/{name}/logs")
    assert response.status_code == 200, response.text
    text: str = response.json()["result"]
    return text


@pytest.fixture(scope="module")
def titanic_builder(client: httpx.Client) -> dict[str, Any]:
    """Appendix A (short budgets) run as one builder/pycaret step: (name, metadata)."""
    train = unique("b_train")
    with data_file("titanic/train.csv").open("rb") as handle:
        response = client.post(
            CSV, data={"datasetName": train}, files={"file": ("train.csv", handle)}
        )
    assert response.status_code == 201, response.text
    finished(client, CSV, train)
    types = {name: "number" for name in ("Age", "Fare", "Parch", "Pclass", "SibSp")}
    response = client.patch(DATA_TYPE, json={"inputDatasetName": train, "types": types})
    assert response.status_code == 200, response.text
    finished(client, CSV, train)
    name = unique("titanicPycaret")
    body = {"name": name, "function": APPENDIX_A, "functionParameters": {"train": f"${train}"}}
    post(client, PYCARET, body, name)
    return {"name": name, "meta": finished(client, PYCARET, name)}


def test_builder_pycaret_keeps_the_files_of_appendix_a(
    client: httpx.Client, titanic_builder: dict[str, Any]
) -> None:
    name = titanic_builder["name"]
    files = files_of(client, PYCARET, name)
    assert {"files/score", "files/titanic_pycaret.pkl"} <= files, files
    assert not any(f.endswith("logs.log") for f in files), files  # system_log=False
    assert titanic_builder["meta"]["type"] == "builder/pycaret"
    score = client.get(f"{PYCARET}/{name}/files/files/score")
    assert score.status_code == 200, score.text
    header, *rows = score.text.strip().splitlines()
    assert header.split("\t")[1:] == ["Accuracy", "AUC", "Recall", "Prec.", "F1", "Kappa", "MCC"]
    assert [row.split("\t")[0] for row in rows[-2:]] == ["Mean", "Std"]  # tune_model's folds


def test_builder_pycaret_drops_pycaret2_arguments_with_a_warning(
    client: httpx.Client, titanic_builder: dict[str, Any]
) -> None:
    log = log_of(client, PYCARET, titanic_builder["name"])
    assert "warning: pycaret.classification.setup: ignored PyCaret 2 argument" in log, log
    assert "silent=True" in log, log


def test_getlocaldatapycaret_answers_the_file_as_lo_client_asks(
    client: httpx.Client, titanic_builder: dict[str, Any]
) -> None:
    name = titanic_builder["name"]
    expected = client.get(f"{PYCARET}/{name}/files/files/score").text
    # LO's client: a GET with a JSON body (BuilderPycaret.search_report)
    response = client.request("GET", LOCAL_DATA, json={"filename": "score"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == expected
    by_query = client.get(LOCAL_DATA, params={"filename": "score"})
    assert by_query.status_code == 200, by_query.text
    assert by_query.text == expected


def test_getlocaldatapycaret_names_a_missing_file(client: httpx.Client) -> None:
    missing = unique("nofile")
    response = client.request("GET", LOCAL_DATA, json={"filename": missing})
    assert_error(response, 404, missing)
    assert_error(client.get(LOCAL_DATA), 422, "filename")


def test_builder_autokeras_runs_a_tiny_search(client: httpx.Client) -> None:
    name = unique("b_autokeras")
    body = {"name": name, "function": AUTOKERAS_SCRIPT, "functionParameters": {}}
    post(client, AUTOKERAS, body, name)
    meta = finished(client, AUTOKERAS, name)
    assert meta["type"] == "builder/autokeras"
    files = files_of(client, AUTOKERAS, name)
    assert "files/best.keras" in files, files
    response = client.get(f"{AUTOKERAS}/{name}/result")
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["predicted"] == 4 and result["layers"] > 1, result
