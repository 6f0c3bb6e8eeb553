"""builder/sparkml through the real server (fixture `lo_server`): LO's Titanic Spark pipeline,
then the inputs it refuses (issue 10, items 2, 3 and 6).

The pipeline is LO's own example, unchanged: train.csv and test.csv uploaded, projected on
LO's `required_columns` (the test table without `Survived`), cast with LO's `type_fields`
(PATCH /transform/dataType), then one builder/sparkml step with LO's modeling code and all
five classifiers. Its 201 answer lists the five outputs `{testDatasetName}{CLS}`; each is
observed until it finishes, holds the predictions (vectors as arrays) and its accuracy, F1
and fit time, and the accuracies equal those of a direct PySpark run (local[*], a
subprocess, no server) of the same code on the same Parquet files, downloaded from the
projections (`result?format=parquet` sends a one-file table as it is stored).

Spark runs in the sandboxed child of each job, its own JVM each time: a run costs a few
seconds before the user's code starts, so the failing cases use two classifiers at most.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BASE, ROOT, assert_error, data_file
from tests.steps.rest import TIMEOUT, ended, finished, post, unique

pytestmark = pytest.mark.e2e  # the shared server process

CSV = f"{BASE}/dataset/csv"
PROJECTION = f"{BASE}/transform/projection"
DATA_TYPE = f"{BASE}/transform/dataType"
SPARKML = f"{BASE}/builder/sparkml"
CLASSIFIERS = ["LR", "DT", "RF", "GB", "NB"]
CLASSES = {
    "LR": "LogisticRegression",
    "DT": "DecisionTreeClassifier",
    "RF": "RandomForestClassifier",
    "GB": "GBTClassifier",
    "NB": "NaiveBayes",
}

# LO's example (learning-orchestra's Titanic Spark notebook), as its users send it.
REQUIRED_COLUMNS = [
    "PassengerId", "Pclass", "Age", "SibSp", "Parch", "Fare", "Name", "Sex", "Embarked",
    "Survived",
]  # fmt: skip
TYPE_FIELDS = {
    "Age": "number",
    "Fare": "number",
    "Parch": "number",
    "PassengerId": "number",
    "Pclass": "number",
    "SibSp": "number",
}
MODELING_CODE = (ROOT / "examples" / "titanic_modeling_code.py").read_text()
#: test.csv's rows (418) less the one without a Fare, which `setHandleInvalid('skip')` drops
PREDICTED_ROWS = 417

#: The same code and classifiers in plain PySpark: what the steps' metrics must equal.
DIRECT_RUN = textwrap.dedent(
    """\
    import json, sys
    from pyspark.sql import SparkSession
    from pyspark.ml import classification
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    train, test, code_file, *classes = sys.argv[1:]
    spark = SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false") \\
        .getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    variables = {"spark": spark, "training_df": spark.read.parquet(train),
                 "testing_df": spark.read.parquet(test)}
    exec(open(code_file).read(), variables)
    scores = {}
    for name in classes:
        model = getattr(classification, name)(featuresCol="features", labelCol="label") \\
            .fit(variables["features_training"])
        predicted = model.transform(variables["features_evaluation"])
        scores[name] = [MulticlassClassificationEvaluator(metricName=metric).evaluate(predicted)
                        for metric in ("accuracy", "f1")]
    print(json.dumps(scores))
    """
)


@pytest.fixture(scope="module")
def client(lo_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lo_server, timeout=TIMEOUT + 30) as http:
        yield http


def upload(client: httpx.Client, file: str) -> str:
    """titanic/`file` uploaded as a dataset/csv step; its name, once it finished."""
    name = unique(Path(file).stem)
    with data_file(f"titanic/{file}").open("rb") as handle:
        response = client.post(CSV, data={"datasetName": name}, files={"file": (file, handle)})
    assert response.status_code == 201, response.text
    finished(client, CSV, name)
    return name


def project(client: httpx.Client, source: str, names: list[str], types: dict[str, str]) -> str:
    """A projection of `source` on `names`, cast in place with `types` (LO's dataType)."""
    name = unique(f"{source}_p")
    body = {"inputDatasetName": source, "outputDatasetName": name, "names": names}
    post(client, PROJECTION, body, name)
    finished(client, PROJECTION, name)
    response = client.patch(DATA_TYPE, json={"inputDatasetName": name, "types": types})
    assert response.status_code == 200, response.text
    finished(client, PROJECTION, name)
    return name


def build(client: httpx.Client, train: str, test: str, code: str, codes: list[str]) -> list[str]:
    """POST a builder/sparkml step; the output names its 201 answer lists, in order."""
    body = {
        "trainDatasetName": train,
        "testDatasetName": test,
        "modelingCode": code,
        "classifiersList": codes,
    }
    response = client.post(SPARKML, json=body)
    assert response.status_code == 201, response.text
    names = [f"{test}{code}" for code in codes]
    assert response.json() == {"result": [f"{SPARKML}/{name}" for name in names]}
    return names


def fresh(client: httpx.Client, test: str) -> str:
    """A copy of table `test` under a new name: the outputs of each build are named after it."""
    name = unique("t")
    body = {"inputDatasetName": test, "outputDatasetName": name, "names": REQUIRED_COLUMNS[:-1]}
    post(client, PROJECTION, body, name)
    finished(client, PROJECTION, name)
    return name


def download(client: httpx.Client, route: str, name: str, folder: Path) -> Path:
    response = client.get(f"{route}/{name}/result", params={"format": "parquet"})
    assert response.status_code == 200, response.text
    path = folder / f"{name}.parquet"
    path.write_bytes(response.content)
    return path


@pytest.fixture(scope="module")
def tables(client: httpx.Client) -> dict[str, str]:
    """LO's Titanic inputs: the uploads and their cast projections (train, test)."""
    train_csv, test_csv = upload(client, "train.csv"), upload(client, "test.csv")
    train = project(client, train_csv, REQUIRED_COLUMNS, {**TYPE_FIELDS, "Survived": "number"})
    test = project(client, test_csv, REQUIRED_COLUMNS[:-1], TYPE_FIELDS)
    return {"train_csv": train_csv, "test_csv": test_csv, "train": train, "test": test}


@pytest.fixture(scope="module")
def titanic(
    client: httpx.Client, tables: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """LO's pipeline with all five classifiers, and, meanwhile, the direct PySpark run of
    the same code on the projections' Parquet files: {names, metas, direct scores}."""
    folder = tmp_path_factory.mktemp("sparkml")
    train = download(client, PROJECTION, tables["train"], folder)
    test = download(client, PROJECTION, tables["test"], folder)
    (folder / "code.py").write_text(MODELING_CODE)
    (folder / "direct.py").write_text(DIRECT_RUN)
    command = [sys.executable, "direct.py", str(train), str(test), "code.py"]
    direct = subprocess.Popen(
        [*command, *(CLASSES[c] for c in CLASSIFIERS)],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # PYTHONHASHSEED as in the step's sandbox: PySpark's default seeds are hash(class name)
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONHASHSEED": "0"},
    )
    names = build(client, tables["train"], tables["test"], MODELING_CODE, CLASSIFIERS)
    metas = {name: finished(client, SPARKML, name) for name in names}
    out, err = direct.communicate(timeout=TIMEOUT)
    assert direct.returncode == 0, err[-3000:]
    scores = json.loads(out.strip().splitlines()[-1])
    return {"names": names, "metas": metas, "direct": scores}


def test_each_output_finishes_with_its_predictions_and_metrics(
    client: httpx.Client, titanic: dict[str, Any]
) -> None:
    for code, name in zip(CLASSIFIERS, titanic["names"], strict=True):
        meta = titanic["metas"][name]
        assert meta["type"] == "builder/sparkml" and meta["classifier"] == CLASSES[code]
        assert meta["rows"] == PREDICTED_ROWS, meta
        assert {"features", "rawPrediction", "probability", "prediction"} <= set(meta["fields"])
        assert meta["types"]["prediction"] == "float"
        assert meta["metricsOn"] == "features_evaluation"
        assert 0.6 < meta["accuracy"] <= 1 and 0.6 < meta["F1"] <= 1, meta
        assert meta["fitTime"] > 0 and meta["sparkStartSeconds"] > 0, meta
        assert meta["libraries"]["pyspark"].startswith("3."), meta["libraries"]
        assert meta["sandbox"]["network"] == "loopback" and meta["sandbox"]["user"] == "nobody"
    # committed one by one, in the order asked
    ends = [titanic["metas"][name]["finishedAt"] for name in titanic["names"]]
    assert ends == sorted(ends), ends


def test_accuracies_equal_a_direct_pyspark_run(titanic: dict[str, Any]) -> None:
    for code, name in zip(CLASSIFIERS, titanic["names"], strict=True):
        meta, (accuracy, f1) = titanic["metas"][name], titanic["direct"][CLASSES[code]]
        assert meta["accuracy"] == pytest.approx(accuracy, abs=0.01), (code, meta, accuracy)
        assert meta["F1"] == pytest.approx(f1, abs=0.01), (code, meta, f1)


def test_predictions_are_pages_of_rows_with_arrays(
    client: httpx.Client, titanic: dict[str, Any]
) -> None:
    name = titanic["names"][0]
    response = client.get(f"{SPARKML}/{name}", params={"skip": 1, "limit": 3})
    assert response.status_code == 200, response.text
    rows = response.json()["result"]  # skip=1: past item 0, the metadata
    assert len(rows) == 3, rows
    for row in rows:
        assert row["prediction"] in (0.0, 1.0)
        assert len(row["probability"]) == 2 and sum(row["probability"]) == pytest.approx(1)
        assert len(row["features"]) == 11 and len(row["rawPrediction"]) == 2
    listed = client.get(f"{SPARKML}/{name}/files").json()["result"]
    assert all(f["filename"].startswith("table/part-") for f in listed), listed


def test_outputs_are_not_rerun_nor_posted_again(
    client: httpx.Client, titanic: dict[str, Any], tables: dict[str, str]
) -> None:
    name = titanic["names"][0]
    patched = client.patch(f"{SPARKML}/{name}", json={"classifiersList": ["LR"]})
    assert_error(patched, 405, "cannot be re-run")
    name = titanic["names"][-1]  # NB: the first of those asked below
    body = {
        "trainDatasetName": tables["train"],
        "testDatasetName": tables["test"],
        "modelingCode": MODELING_CODE,
        "classifiersList": ["NB", "LR"],
    }
    assert_error(client.post(SPARKML, json=body), 409, name)


@pytest.mark.parametrize(
    ("codes", "fragments"),
    [
        (["LR", "RX"], ["classifiersList", "'RX'", "did you mean 'RF'", "LR, DT, RF, GB, NB"]),
        (["lr"], ["classifiersList", "did you mean 'LR'"]),
        (["LR", "LR"], ["classifiersList", "twice"]),
        ([], ["classifiersList"]),
    ],
)
def test_classifiers_must_be_known_codes_each_once(
    client: httpx.Client, tables: dict[str, str], codes: list[str], fragments: list[str]
) -> None:
    body = {
        "trainDatasetName": tables["train"],
        "testDatasetName": unique("never"),
        "modelingCode": "x = 1",
        "classifiersList": codes,
    }
    assert_error(client.post(SPARKML, json=body), 422, *fragments)


def test_output_names_must_fit_the_name_limit(client: httpx.Client, tables: dict[str, str]) -> None:
    test = unique("t" * 118)  # 127 characters: a valid name, but not with "LR" added
    body = {"inputDatasetName": tables["test"], "outputDatasetName": test, "names": ["Pclass"]}
    post(client, PROJECTION, body, test)
    body = {
        "trainDatasetName": tables["train"],
        "testDatasetName": test,
        "modelingCode": "x = 1",
        "classifiersList": ["LR"],
    }
    assert_error(client.post(SPARKML, json=body), 422, "testDatasetName", f"{test}LR")


def test_a_test_table_of_another_schema_is_refused(
    client: httpx.Client, tables: dict[str, str]
) -> None:
    body = {
        "trainDatasetName": tables["train"],
        "testDatasetName": tables["test_csv"],  # all of test.csv: Ticket, Cabin too
        "modelingCode": "x = 1",
        "classifiersList": ["LR"],
    }
    assert_error(client.post(SPARKML, json=body), 422, "testDatasetName", "'Ticket'", "'Cabin'")
    text_class = project(client, tables["test"], ["Pclass", "Name"], {"Pclass": "string"})
    body["testDatasetName"] = text_class
    assert_error(client.post(SPARKML, json=body), 422, "testDatasetName", "'Pclass'", "string")
    not_a_table = unique("function")
    post(client, f"{BASE}/function/python", {"name": not_a_table, "function": "response = 1",
                                             "functionParameters": {}}, not_a_table)  # fmt: skip
    finished(client, f"{BASE}/function/python", not_a_table)
    body["testDatasetName"] = not_a_table
    assert_error(client.post(SPARKML, json=body), 422, "testDatasetName", "not a table")


def test_code_without_features_training_fails_every_output(
    client: httpx.Client, tables: dict[str, str]
) -> None:
    code = "features_testing = testing_df\n"
    for name in build(client, tables["train"], fresh(client, tables["test"]), code, ["LR", "NB"]):
        meta = ended(client, name)
        assert meta["status"] == "failed", meta
        assert "modelingCode must define features_training" in meta["exception"], meta
        assert "'features' and 'label'" in meta["exception"], meta


def test_code_that_raises_fails_with_its_traceback(
    client: httpx.Client, tables: dict[str, str]
) -> None:
    code = "rows = 891\nraise ValueError(f'{rows} rows: not enough')\n"
    for name in build(client, tables["train"], fresh(client, tables["test"]), code, ["DT", "RF"]):
        meta = ended(client, name)
        assert meta["status"] == "failed", meta
        assert meta["exception"] == "modelingCode: ValueError: 891 rows: not enough (line 2)"
        assert 'File "<function>", line 2' in meta["traceback"], meta["traceback"]


def test_a_classifier_that_fails_fails_only_its_output(
    client: httpx.Client, tables: dict[str, str]
) -> None:
    # three classes (Pclass), no evaluation set: GBT is binary only; naive Bayes has no metrics
    code = textwrap.dedent(
        """\
        from pyspark.ml.feature import VectorAssembler
        from pyspark.sql.functions import col
        assembler = VectorAssembler(inputCols=['SibSp', 'Parch'], outputCol='features')
        features_training = assembler.transform(training_df).withColumn('label', col('Pclass') - 1)
        features_testing = assembler.transform(testing_df)
        """
    )
    test = fresh(client, tables["test"])
    boosted, bayes = build(client, tables["train"], test, code, ["GB", "NB"])
    meta = finished(client, SPARKML, bayes)
    assert meta["rows"] == 418 and meta["metricsOn"] is None, meta
    assert meta["accuracy"] is None and meta["F1"] is None, meta
    failed = ended(client, boosted)
    assert failed["status"] == "failed", failed
    assert failed["exception"].startswith("GB (GBTClassifier) failed: "), failed["exception"]
    assert "Labels MUST be in {0, 1}, but got 2.0" in failed["exception"], failed


def test_without_a_network_namespace_spark_is_refused_saying_why(tmp_path: Path) -> None:
    """Non-root without user namespaces: the sandbox falls back to Landlock's TCP rules,
    under which the Spark driver could not listen on its loopback ports. The outputs fail
    at once, saying what would make it work, instead of a JVM that cannot start."""
    from tests.sandbox.test_isolation import LANDLOCK, nonroot_server

    if LANDLOCK < 4:
        pytest.fail(f"Landlock ABI {LANDLOCK} cannot restrict TCP: this test needs ABI 4+")
    server = nonroot_server(tmp_path, "--no-userns")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
            train, test = upload(client, "train.csv"), upload(client, "test.csv")
            for name in build(client, train, test, "x = 1", ["LR", "NB"]):
                meta = ended(client, name)
                assert meta["status"] == "failed", meta
                assert meta["exception"].startswith("Spark cannot run in this sandbox"), meta
                assert "LO_SANDBOX_NETWORK=host" in meta["exception"], meta
    finally:
        server.stop()
