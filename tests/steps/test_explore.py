"""explore/histogram and explore/summary through the real embedded app.

Expected values are computed here independently: value counts with `collections.Counter` over
the CSV file, statistics with pandas over the same file.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.conftest import TITANIC_TYPES, assert_error, data_file, wait
from tests.steps.table_steps import (
    CSV,
    GENERIC,
    HISTOGRAM,
    SUMMARY,
    TITANIC,
    app_client,
    ingest,
    metadata,
    page,
    post,
    rows,
    upload,
)

SUMMARY_FIELDS = [
    "field", "type", "count", "missing", "unique", "mean", "std", "min", "25%", "50%", "75%",
    "max", "top", "freq",
]  # fmt: skip


def histogram_rows(names: list[str], as_text: bool = False) -> list[dict[str, Any]]:
    """The expected histogram: per column, values ascending with the missing (None) last."""
    expected = []
    for name in names:
        counts = Counter(row[name] for row in TITANIC)
        present = sorted(v for v in counts if v is not None)
        for value in [*present, *([None] if None in counts else [])]:
            shown = str(value) if as_text and value is not None else value
            expected.append({"field": name, "value": shown, "count": counts[value]})
    return expected


def histogram(client: TestClient, name: str, names: list[str]) -> dict[str, Any]:
    post(client, HISTOGRAM, {"inputDatasetName": "train", "outputDatasetName": name,
                             "names": names})  # fmt: skip
    meta = wait(client, name)
    assert meta["status"] == "finished", meta["exception"]
    return meta


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, files_server: str) -> Iterator[TestClient]:
    """One app holding the Titanic dataset `train` and its summary `described`."""
    with app_client(tmp_path_factory.mktemp("explore")) as client:
        ingest(client, "train", f"{files_server}/train.csv")
        post(client, SUMMARY, {"inputDatasetName": "train", "outputDatasetName": "described"})
        assert wait(client, "described")["status"] == "finished"
        yield client


# -- explore/histogram -----------------------------------------------------------------------
def test_histogram_counts_values_of_text_columns(shared: TestClient) -> None:
    meta = histogram(shared, "h_text", ["Sex", "Embarked"])
    assert meta["name"] == meta["datasetName"] == "h_text"
    assert meta["type"] == "explore/histogram" and meta["parents"] == ["train"]
    assert meta["fields"] == ["field", "value", "count"]
    assert meta["types"] == {"field": "string", "value": "string", "count": "integer"}
    expected = histogram_rows(["Sex", "Embarked"])
    assert rows(shared, HISTOGRAM, "h_text") == expected
    assert meta["rows"] == len(expected) == 2 + 4  # female, male; C, Q, S and 2 missing
    # every passenger counted once per column, and nothing else (LO counted its metadata)
    for name in ("Sex", "Embarked"):
        assert sum(r["count"] for r in expected if r["field"] == name) == len(TITANIC)
    assert {"field": "Embarked", "value": None, "count": 2} in expected


def test_histogram_keeps_number_types(shared: TestClient) -> None:
    meta = histogram(shared, "h_int", ["Pclass", "SibSp"])
    assert meta["types"]["value"] == "integer"
    assert rows(shared, HISTOGRAM, "h_int") == histogram_rows(["Pclass", "SibSp"])
    meta = histogram(shared, "h_num", ["Pclass", "Age"])  # integers and floats: floats
    assert meta["types"]["value"] == "float"
    assert rows(shared, HISTOGRAM, "h_num") == histogram_rows(["Pclass", "Age"])
    meta = histogram(shared, "h_mixed", ["Sex", "Pclass"])  # text and numbers: text
    assert meta["types"]["value"] == "string"
    assert rows(shared, HISTOGRAM, "h_mixed") == histogram_rows(["Sex", "Pclass"], as_text=True)


def test_histogram_is_paged_queried_and_patched(shared: TestClient) -> None:
    histogram(shared, "h_page", ["Pclass", "Sex"])
    expected = histogram_rows(["Pclass", "Sex"], as_text=True)
    assert page(shared, HISTOGRAM, "h_page", skip=1, limit=2) == expected[:2]
    query = json.dumps({"field": "Sex", "count": {"$gt": 400}})
    assert page(shared, HISTOGRAM, "h_page", query=query, skip=1) == [
        {"field": "Sex", "value": "male", "count": 577}
    ]
    response = shared.patch(f"{HISTOGRAM}/h_page", json={"names": ["Survived"]})
    assert response.status_code == 201, response.text
    meta = wait(shared, "h_page")
    assert meta["status"] == "finished" and meta["runs"] == 2
    assert rows(shared, HISTOGRAM, "h_page") == histogram_rows(["Survived"])


def test_histogram_validation(shared: TestClient, files_server: str) -> None:
    def attempt(**changes: Any) -> Any:
        body = {"inputDatasetName": "train", "outputDatasetName": "h_bad", "names": ["Sex"]}
        return shared.post(HISTOGRAM, json={**body, **changes})

    assert_error(attempt(names=["Sex", "Colour"]), 422, "names", "'Colour'", "PassengerId")
    assert_error(attempt(names=[]), 422, "names")
    assert_error(attempt(names=[""]), 422, "names")
    assert_error(attempt(inputDatasetName="ghost"), 422, "ghost")
    assert_error(attempt(bins=10), 422, "bins")
    post(shared, GENERIC, {"datasetName": "h_raw", "datasetURI": f"{files_server}/test.csv"})
    assert wait(shared, "h_raw")["status"] == "finished"
    assert_error(shared.get(f"{HISTOGRAM}/h_bad"), 404)  # nothing was recorded
    assert attempt(inputDatasetName="h_raw").status_code == 201
    failed = wait(shared, "h_bad")
    assert failed["status"] == "failed" and "'h_raw' is not a table" in failed["exception"]


# -- explore/summary -------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def expected_summary() -> list[dict[str, Any]]:
    """pandas' describe() of the file, column by column, in the summary's shape."""
    frame = pd.read_csv(data_file("titanic/train.csv"))
    expected = []
    for name, kind in TITANIC_TYPES.items():
        column = frame[name]
        row: dict[str, Any] = dict.fromkeys(SUMMARY_FIELDS)
        row.update(field=name, type=kind, count=int(column.count()),
                   missing=int(column.isna().sum()), unique=int(column.nunique()))  # fmt: skip
        if kind in ("integer", "float"):
            stats = column.describe()
            for key in ("mean", "std", "min", "25%", "50%", "75%", "max"):
                row[key] = _number(float(stats[key]))
        else:
            counts = column.value_counts()
            top = counts[counts == counts.max()].sort_index().index[0]  # ties: smallest
            row.update(top=str(top), freq=int(counts.max()))
        expected.append(row)
    return expected


def test_summary_describes_every_column(shared: TestClient) -> None:
    meta = metadata(shared, SUMMARY, "described")
    assert meta["type"] == "explore/summary" and meta["datasetName"] == "described"
    assert meta["fields"] == SUMMARY_FIELDS and meta["rows"] == len(TITANIC_TYPES)
    served = rows(shared, SUMMARY, "described")
    expected = expected_summary()
    assert [r["field"] for r in served] == list(TITANIC_TYPES)
    for got, want in zip(served, expected, strict=True):
        assert set(got) == set(SUMMARY_FIELDS)
        for key in SUMMARY_FIELDS:
            if isinstance(want[key], float):
                assert got[key] == pytest.approx(want[key], rel=1e-12), (got["field"], key)
            else:
                assert got[key] == want[key], (got["field"], key)
    age = next(r for r in served if r["field"] == "Age")
    assert (age["count"], age["missing"], age["min"], age["max"]) == (714, 177, 0.42, 80.0)
    assert age["top"] is None and age["freq"] is None  # numbers have quartiles instead
    sex = next(r for r in served if r["field"] == "Sex")
    assert (sex["top"], sex["freq"], sex["unique"]) == ("male", 577, 2)
    assert sex["mean"] is None and sex["50%"] is None


def test_summary_of_odd_columns(shared: TestClient) -> None:
    # a boolean column, an all-missing column, a one-value number column
    upload(shared, "odd", "b,empty,one\ntrue,,5\nfalse,,\ntrue,,\n")
    post(shared, SUMMARY, {"inputDatasetName": "odd", "outputDatasetName": "odd_s"})
    assert wait(shared, "odd_s")["status"] == "finished"
    by_field = {r["field"]: r for r in rows(shared, SUMMARY, "odd_s")}
    assert by_field["b"] == {
        "field": "b", "type": "boolean", "count": 3, "missing": 0, "unique": 2, "mean": None,
        "std": None, "min": None, "25%": None, "50%": None, "75%": None, "max": None,
        "top": "true", "freq": 2,
    }  # fmt: skip
    assert by_field["empty"]["count"] == 0 and by_field["empty"]["missing"] == 3
    assert by_field["empty"]["top"] is None and by_field["empty"]["freq"] is None
    one = by_field["one"]
    assert (one["count"], one["mean"], one["min"], one["50%"], one["max"]) == (1, 5, 5, 5, 5)
    assert one["std"] is None  # the sample deviation of one value is undefined: null, not NaN
    query = json.dumps({"type": "boolean"})
    assert page(shared, SUMMARY, "odd_s", query=query, skip=1) == [by_field["b"]]


def test_explore_steps_wait_for_their_input(api: TestClient, files_server: str) -> None:
    post(api, CSV, {"datasetName": "late", "datasetURI": f"{files_server}/train.csv"})
    post(api, SUMMARY, {"inputDatasetName": "late", "outputDatasetName": "late_s"})
    post(api, HISTOGRAM, {"inputDatasetName": "late", "outputDatasetName": "late_h",
                          "names": ["Sex"]})  # fmt: skip
    for name, route in (("late_s", SUMMARY), ("late_h", HISTOGRAM)):
        queued = metadata(api, route, name)
        assert queued["status"] == "pending" and queued["waitingFor"] == ["late"]
    assert wait(api, "late_s")["status"] == "finished"
    assert wait(api, "late_h")["status"] == "finished"
    assert rows(api, HISTOGRAM, "late_h") == histogram_rows(["Sex"])
    # deleting the input marks both stale; their outputs stay readable
    assert api.delete(f"{CSV}/late").status_code == 200
    assert metadata(api, SUMMARY, "late_s")["stale"] is True
    assert len(rows(api, SUMMARY, "late_s")) == len(TITANIC_TYPES)
