"""transform/{scikitlearn,tensorflow} and explore/{scikitlearn,tensorflow} through the real app.

Real app, SQLite store, worker processes and, inside them, the sandboxed child that imports
the toolkit and calls the class (scikit-learn, TensorFlow and matplotlib for real, on the
Titanic data from the local `files_server`). TensorFlow costs seconds per import: it has
one transform and one explore; the rest of the coverage uses scikit-learn.
"""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import BASE, assert_error, wait
from tests.steps.table_steps import PROJECTION, app_client, ingest

TRANSFORM = f"{BASE}/transform/scikitlearn"
EXPLORE = f"{BASE}/explore/scikitlearn"
TRANSFORM_TF = f"{BASE}/transform/tensorflow"
EXPLORE_TF = f"{BASE}/explore/tensorflow"
FUNCTION = f"{BASE}/function/python"
NUMERIC = ["Pclass", "SibSp", "Parch", "Fare"]  # the Titanic columns without missing values
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def call(
    module_path: str,
    class_name: str,
    method: str,
    class_parameters: dict[str, Any] | None = None,
    **method_parameters: Any,
) -> dict[str, Any]:
    """A toolkit step's body (without its name)."""
    return {
        "modulePath": module_path,
        "class": class_name,
        "classParameters": class_parameters or {},
        "method": method,
        "methodParameters": method_parameters,
    }


def run(client: TestClient, route: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a step and wait for it to end; its metadata."""
    response = client.post(route, json={"name": name, **body})
    assert response.status_code == 201, response.text
    assert response.json() == {"result": f"{route}/{name}"}
    return wait(client, name, timeout=90)


def finished(client: TestClient, route: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    meta = run(client, route, name, body)
    log = client.get(f"{route}/{name}/logs").json()["result"]
    assert meta["status"] == "finished", (meta["exception"], meta["traceback"], log[-2000:])
    return meta


def function_rows(client: TestClient, name: str, source: str, **parameters: Any) -> Any:
    """A function/python step returning a DataFrame; its rows."""
    body = {"name": name, "function": source, "functionParameters": parameters}
    assert client.post(FUNCTION, json=body).status_code == 201
    meta = wait(client, name, timeout=90)
    assert meta["status"] == "finished", (meta["exception"], meta["traceback"])
    response = client.get(f"{FUNCTION}/{name}/result", params={"format": "json"})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def assert_plot(png: bytes) -> Image.Image:
    """`png` is a PNG that matplotlib drew something on (not a blank canvas)."""
    assert png[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", png[16:24])  # IHDR
    assert width >= 200 and height >= 150
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colors = image.getcolors(maxcolors=1 << 16)
    assert colors is None or len(colors) > 20, "the plot is (nearly) blank"
    return image


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, files_server: str) -> Iterator[TestClient]:
    """One app with the Titanic dataset `train` and `numeric`, its columns without gaps."""
    with app_client(tmp_path_factory.mktemp("toolkits")) as client:
        ingest(client, "train", f"{files_server}/train.csv")
        body = {"inputDatasetName": "train", "outputDatasetName": "numeric", "names": NUMERIC}
        assert client.post(PROJECTION, json=body).status_code == 201
        assert wait(client, "numeric")["status"] == "finished"
        yield client


@pytest.fixture(scope="module")
def scaled(shared: TestClient) -> dict[str, Any]:
    """StandardScaler().fit_transform(X=$numeric): a (891, 4) array."""
    body = call("sklearn.preprocessing", "StandardScaler", "fit_transform", X="$numeric")
    return finished(shared, TRANSFORM, "scaled", {**body, "description": "z-scores"})


# -- transform/scikitlearn ---------------------------------------------------------------------
def test_standard_scaler_output_is_an_array_later_steps_use(
    shared: TestClient, scaled: dict[str, Any]
) -> None:
    assert scaled["type"] == "transform/scikitlearn"
    assert scaled["parents"] == ["numeric"]
    assert (scaled["modulePath"], scaled["class"], scaled["method"]) == (
        "sklearn.preprocessing",
        "StandardScaler",
        "fit_transform",
    )
    assert scaled["shape"] == [891, 4] and scaled["responseType"] == "ndarray"
    assert scaled["description"] == "z-scores"
    assert scaled["libraries"]["scikit-learn"]
    assert scaled["sandbox"]["user"] == ("nobody" if _root() else None)
    source = (
        "import pandas as pd\n"
        "response = pd.DataFrame({'mean': X.mean(axis=0), 'std': X.std(axis=0)})\n"
    )
    stats = function_rows(shared, "scaled_stats", source, X="$scaled")
    assert len(stats) == len(NUMERIC)
    for row in stats:
        assert abs(row["mean"]) < 1e-9 and abs(row["std"] - 1) < 1e-9
    # a run record per run, as for every step whose output is not a table
    page = shared.get(f"{TRANSFORM}/scaled", params={"skip": 1, "limit": 1}).json()["result"]
    assert page[0]["exception"] is None


def test_train_test_split_is_a_list_of_tables(shared: TestClient) -> None:
    body = call(
        "sklearn",
        "model_selection",
        "train_test_split",
        arrays=["$numeric"],
        test_size=0.25,
        random_state=0,
    )
    meta = finished(shared, TRANSFORM, "split", body)
    assert meta["responseType"] == "list" and meta["items"] == 2
    source = (
        "import pandas as pd\n"
        "response = pd.DataFrame({'rows': [len(train), len(test), len(both[0])],\n"
        "                         'columns': [list(train.columns) == names] * 3})\n"
    )
    sizes = function_rows(
        shared,
        "split_sizes",
        source,
        train="$split.0",
        test="$split.1",
        both="$split",
        names=NUMERIC,
    )
    assert [r["rows"] for r in sizes] == [668, 223, 668]
    assert all(r["columns"] for r in sizes)


def test_expressions_are_evaluated_in_the_sandbox(shared: TestClient) -> None:
    body = call(
        "sklearn.preprocessing",
        "MinMaxScaler",
        "fit_transform",
        {"feature_range": "#(0, 10)"},
        X="#np.array([[1.0], [2.0], [3.0]])",
    )
    meta = finished(shared, TRANSFORM, "minmax", body)
    assert meta["shape"] == [3, 1]
    assert meta["parameters"]["classParameters"] == {"feature_range": "#(0, 10)"}


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (
            call("sklearn.preprocessing", "StandardScalr", "fit_transform", X="$numeric"),
            ["class 'StandardScalr' not found in sklearn.preprocessing", "StandardScaler"],
        ),
        (
            call("sklearn.preprocessing", "StandardScaler", "fit_transfrom", X="$numeric"),
            ["method 'fit_transfrom' not found", "fit_transform"],
        ),
        (
            call(
                "sklearn.preprocessing",
                "StandardScaler",
                "fit_transform",
                {"with_meen": False},
                X="$numeric",
            ),
            ["classParameters", "with_meen", "with_mean"],
        ),
        (
            call("sklearn.preprocessing", "StandardScaler", "fit_transform", Y="$numeric"),
            ["methodParameters", "missing a required argument: 'X'"],
        ),
        (
            call("sklearn.preprocessin", "StandardScaler", "fit_transform", X="$numeric"),
            ["modulePath", "sklearn.preprocessin"],
        ),
        (
            call("sklearn", "model_selection", "train_test_split", {"a": 1}, arrays=[[1, 2]]),
            ["classParameters", "sklearn.model_selection is a module"],
        ),
    ],
    ids=["class", "method", "class-parameter", "method-parameter", "module", "module-class"],
)
def test_a_bad_name_fails_the_step_naming_it(
    shared: TestClient, body: dict[str, Any], fragments: list[str]
) -> None:
    name = f"bad_{abs(hash(str(body))) % 10**8}"
    meta = run(shared, TRANSFORM, name, body)
    assert meta["status"] == "failed"
    for fragment in fragments:
        assert fragment in meta["exception"], meta["exception"]
    assert shared.get(f"{TRANSFORM}/{name}/result").status_code == 404


def test_an_exception_of_the_call_fails_the_step_with_its_traceback(shared: TestClient) -> None:
    body = call("sklearn.decomposition", "PCA", "fit_transform", {"n_components": 9}, X="$numeric")
    meta = run(shared, TRANSFORM, "too_many_components", body)
    assert meta["status"] == "failed"
    assert meta["exception"].startswith("sklearn.decomposition.PCA.fit_transform: ValueError")
    assert "n_components=9" in meta["exception"]
    assert "Traceback" in meta["traceback"]


@pytest.mark.parametrize(
    ("route", "module_path", "fragment"),
    [
        (TRANSFORM, "numpy.linalg", "not a scikit-learn module"),
        (TRANSFORM, "os", "not a scikit-learn module"),
        (EXPLORE, "tensorflow.math", "not a scikit-learn module"),
        (TRANSFORM_TF, "sklearn.preprocessing", "not a TensorFlow module"),
        (TRANSFORM, "sklearn..preprocessing", "modulePath"),
        (TRANSFORM, "sklearn.preprocessing; import os", "modulePath"),
    ],
)
def test_a_module_outside_the_toolkit_is_refused_up_front(
    shared: TestClient, route: str, module_path: str, fragment: str
) -> None:
    body = {"name": "refused", **call(module_path, "StandardScaler", "fit", X="$numeric")}
    assert_error(shared.post(route, json=body), 422, "modulePath", fragment)
    assert shared.get(f"{route}/refused/metadata").status_code == 404
    assert shared.get(f"{TRANSFORM}/refused").status_code == 404


def test_bodies_are_checked_up_front(shared: TestClient) -> None:
    good = {"name": "checked", **call("sklearn.preprocessing", "StandardScaler", "fit")}
    for change, fragment in [
        ({"class": "_Private"}, "class"),
        ({"method": "__reduce__"}, "method"),
        ({"methodParameters": {"not a name": 1}}, "not a Python parameter name"),
        ({"extra": 1}, "unknown key 'extra'"),
        ({"methodParameters": {"X": "$nowhere"}}, "nowhere"),
    ]:
        assert_error(shared.post(TRANSFORM, json={**good, **change}), 422, fragment)
    body = dict(good)
    del body["classParameters"]
    assert_error(shared.post(TRANSFORM, json=body), 422, "classParameters")


# -- explore/scikitlearn -----------------------------------------------------------------------
def test_explore_plots_the_result_and_serves_it_as_lo_did(
    shared: TestClient, scaled: dict[str, Any]
) -> None:
    body = call("sklearn.decomposition", "PCA", "fit_transform", {"n_components": 2}, X="$scaled")
    meta = finished(shared, EXPLORE, "pca", body)
    assert meta["type"] == "explore/scikitlearn" and meta["shape"] == [891, 2]
    assert meta["image"] == f"{EXPLORE}/pca/image"
    plain = shared.get(f"{EXPLORE}/pca")  # LO's route: the PNG itself
    assert plain.status_code == 200 and plain.headers["content-type"] == "image/png"
    assert_plot(plain.content)
    assert shared.get(f"{EXPLORE}/pca/image").content == plain.content
    page = shared.get(f"{EXPLORE}/pca/metadata").json()["result"]
    assert page[0]["name"] == "pca" and page[0]["status"] == "finished"
    assert page[1]["exception"] is None  # the run record
    listed = shared.get(EXPLORE).json()["result"]
    assert "pca" in [doc["name"] for doc in listed]
    # the result itself stays an output later steps use
    later = call("sklearn.preprocessing", "MinMaxScaler", "fit_transform", X="$pca")
    assert finished(shared, TRANSFORM, "pca_scaled", later)["shape"] == [891, 2]


def test_explore_plots_a_display_object(shared: TestClient) -> None:
    body = call(
        "sklearn.metrics",
        "ConfusionMatrixDisplay",
        "from_predictions",
        y_true=[0, 1, 1, 0, 1, 1],
        y_pred=[0, 1, 0, 0, 1, 1],
    )
    meta = finished(shared, EXPLORE, "confusion", body)
    assert meta["responseType"] == "ConfusionMatrixDisplay"
    assert_plot(shared.get(f"{EXPLORE}/confusion").content)


def test_explore_fails_clearly_on_what_it_cannot_plot(shared: TestClient) -> None:
    body = call("sklearn.preprocessing", "LabelEncoder", "fit", y=["a", "b"])
    meta = run(shared, EXPLORE, "unplottable", body)
    assert meta["status"] == "failed"
    assert "could not be plotted" in meta["exception"]
    assert_error(shared.get(f"{EXPLORE}/unplottable"), 404, "no output")
    assert_error(shared.get(f"{EXPLORE}/nothing"), 404, "nothing")


# -- TensorFlow: one transform, one explore ------------------------------------------------------
def test_tensorflow_transform_and_explore(shared: TestClient, scaled: dict[str, Any]) -> None:
    body = call("tensorflow", "math", "l2_normalize", x="$scaled", axis=1)
    meta = finished(shared, TRANSFORM_TF, "normalized", body)
    assert meta["shape"] == [891, 4] and meta["responseType"] == "ndarray"
    assert meta["libraries"]["keras"]
    source = (
        "import numpy as np\nimport pandas as pd\n"
        "response = pd.DataFrame({'n': np.linalg.norm(x, axis=1)})\n"
    )
    norms = function_rows(shared, "norms", source, x="$normalized")
    assert all(abs(row["n"] - 1) < 1e-5 for row in norms)
    log = shared.get(f"{TRANSFORM_TF}/normalized/logs").json()["result"]
    assert "cpu_feature_guard" not in log  # TF_CPP_MIN_LOG_LEVEL=2 in the sandbox

    layer = call(
        "keras.layers",
        "Normalization",
        "__call__",
        {"mean": 5.0, "variance": 4.0},
        inputs="#np.arange(200.0).reshape(-1, 1) % 11",
    )
    meta = finished(shared, EXPLORE_TF, "normalized_plot", layer)
    assert meta["shape"] == [200, 1]
    assert_plot(shared.get(f"{EXPLORE_TF}/normalized_plot").content)

    # Once the tensorflow family's zygote has imported TensorFlow (sandbox/pool.py), runs
    # go to interpreters forked from it, and work the same.
    for attempt in range(120):
        meta = finished(shared, TRANSFORM_TF, f"pooled{attempt}", body)
        assert meta["shape"] == [891, 4]
        if meta["sandbox"]["pooled"]:
            break
        time.sleep(0.5)
    assert meta["sandbox"]["pooled"], "no tensorflow step ran in a pooled interpreter"
    log = shared.get(f"{TRANSFORM_TF}/pooled{attempt}/logs").json()["result"]
    assert "cpu_feature_guard" not in log  # the zygote started with TF_CPP_MIN_LOG_LEVEL=2


def _root() -> bool:
    import os

    return os.geteuid() == 0


def test_patch_reruns_with_a_corrected_class(shared: TestClient) -> None:
    body = call("sklearn.preprocessing", "MinMaxScalr", "fit_transform", X="$numeric")
    assert run(shared, TRANSFORM, "corrected", body)["status"] == "failed"
    response = shared.patch(f"{TRANSFORM}/corrected", json={"class": "MinMaxScaler"})
    assert response.status_code == 201, response.text
    meta = wait(shared, "corrected", timeout=90)
    assert meta["status"] == "finished" and meta["class"] == "MinMaxScaler"
    assert meta["runs"] == 2 and meta["shape"] == [891, 4]
