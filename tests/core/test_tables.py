"""Reading stored Parquet tables page by page, filtered by LO's safe `query` subset.

Every operator is checked against a reference filter written in plain Python over the same
rows. The semantics asserted are MongoDB's (core/tables.py documents them): a null or NaN cell
is a missing field; a query value of another type than the column's never matches (so `$ne`
and `$nin` match everything for it).
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from learning_orchestra.core.errors import Invalid, LOError, NotFound
from learning_orchestra.core.tablereader import TableReader
from learning_orchestra.core.tables import (
    OPERATORS,
    TABLE_FILE,
    ScanTimeout,
    csv_chunks,
    dumps,
    parse_query,
    read_page,
    table_files,
    table_location,
    to_expression,
)

NAN = float("nan")

ROWS: list[dict[str, Any]] = [
    {"i": 1, "f": 1.5, "s": "a", "b": True},
    {"i": None, "f": NAN, "s": "b", "b": False},
    {"i": 3, "f": None, "s": None, "b": None},
    {"i": -2, "f": 0.0, "s": "", "b": True},
    {"i": 3, "f": -4.25, "s": "b", "b": False},
    {"i": None, "f": None, "s": "zz", "b": None},
    {"i": 10, "f": NAN, "s": "a", "b": True},
    {"i": 0, "f": 3.0, "s": "B", "b": False},
    {"i": 7, "f": 1.5, "s": None, "b": True},
    {"i": 3, "f": 100.0, "s": "a b", "b": None},
    {"i": 2**40, "f": -0.5, "s": "é", "b": False},
    {"i": -(2**40), "f": NAN, "s": "3", "b": True},
]
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("i", pa.int64()),
        ("f", pa.float64()),
        ("s", pa.string()),
        ("b", pa.bool_()),
    ]
)
COLUMNS = ["id", "i", "f", "s", "b"]


def write(path: Path, rows: list[dict[str, Any]], schema: pa.Schema, group: int) -> Path:
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, path, row_group_size=group)
    return path


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [{"id": n, **row} for n, row in enumerate(ROWS)]
    path = write(tmp_path_factory.mktemp("tables") / "t.parquet", rows, SCHEMA, group=3)
    # NaN must really be stored as NaN (not turned into null) for these tests to mean anything
    f = pq.read_table(path, columns=["f"]).column("f").to_pylist()
    assert sum(isinstance(v, float) and math.isnan(v) for v in f) == 3
    assert f.count(None) == 2
    assert pq.ParquetFile(path).num_row_groups == 4
    return path


def ids(path: Path, query: dict[str, Any]) -> list[int]:
    return [row["id"] for row in read_page(path, skip=0, limit=1000, query=query)]


# -- the reference filter (plain Python, MongoDB semantics) -----------------------------------


def missing(cell: Any) -> bool:
    return cell is None or (isinstance(cell, float) and math.isnan(cell))


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "string" if isinstance(value, str) else "number"


KINDS = {"id": "number", "i": "number", "f": "number", "s": "string", "b": "bool"}


def comparable(column: str, value: Any) -> bool:
    return kind(value) == KINDS[column]


def eq(column: str, cell: Any, value: Any) -> bool:
    if value is None:
        return missing(cell)
    return comparable(column, value) and not missing(cell) and cell == value


ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def condition(column: str, op: str, cell: Any, value: Any) -> bool:
    if op == "$eq":
        return eq(column, cell, value)
    if op == "$ne":
        return not eq(column, cell, value)
    if op == "$in":
        return any(eq(column, cell, v) for v in value)
    if op == "$nin":
        return not any(eq(column, cell, v) for v in value)
    if op == "$exists":
        return not missing(cell) if value else missing(cell)
    if value is None:  # null is only equal to itself: $gte/$lte match it, $gt/$lt nothing
        return op in ("$gte", "$lte") and missing(cell)
    if not comparable(column, value) or missing(cell):
        return False
    return ORDER[op](cell, value)


def matches(row: dict[str, Any], query: dict[str, Any]) -> bool:
    for key, spec in query.items():
        if key == "$and":
            if not all(matches(row, sub) for sub in spec):
                return False
        elif key == "$or":
            if not any(matches(row, sub) for sub in spec):
                return False
        elif isinstance(spec, dict):
            if not all(condition(key, op, row[key], v) for op, v in spec.items()):
                return False
        elif not eq(key, row[key], spec):
            return False
    return True


def expected(query: dict[str, Any]) -> list[int]:
    rows = [{"id": n, **row} for n, row in enumerate(ROWS)]
    return [row["id"] for row in rows if matches(row, query)]


# -- queries against the reference filter ---------------------------------------------------

VALUES: dict[str, list[Any]] = {
    "i": [None, 3, 3.0, 2.5, -2, 0, 2**40, 2**70, -(2**70), "3", True, False],
    "f": [None, 1.5, 0, 0.0, -0.0, 3, -4.25, 1e300, float("inf"), "1.5", True],
    "s": [None, "a", "b", "B", "", "a b", "é", "3", "zz", "zzz", 3, True],
    "b": [None, True, False, 1, 0, "true"],
    "id": [None, 0, 5, 11.5, 12],
}
COMPARISONS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]


def single_queries() -> list[dict[str, Any]]:
    queries: list[dict[str, Any]] = []
    for column, values in VALUES.items():
        for value in values:
            queries.append({column: value})
            queries.extend({column: {op: value}} for op in COMPARISONS)
        queries.append({column: {"$exists": True}})
        queries.append({column: {"$exists": False}})
        for op in ("$in", "$nin"):
            queries.append({column: {op: []}})
            queries.append({column: {op: [None]}})
            queries.append({column: {op: values[1:3]}})
            queries.append({column: {op: [*values[1:3], None]}})
            queries.append({column: {op: values}})
            queries.append({column: {op: values[-2:]}})  # other types only (mostly)
    return queries


SINGLE = single_queries()


@pytest.mark.parametrize("query", SINGLE, ids=[json.dumps(q, default=str) for q in SINGLE])
def test_every_operator_matches_the_reference_filter(table: Path, query: dict[str, Any]) -> None:
    assert ids(table, query) == expected(query)


COMBINED: list[dict[str, Any]] = [
    {},
    {"i": 3, "s": "b"},
    {"i": {"$gte": 0, "$lt": 10}},
    {"i": {"$gt": 0}, "f": {"$ne": 1.5}},
    {"f": {"$gte": 0, "$ne": 3}},
    {"s": {"$in": ["a", "b"], "$ne": "b"}},
    {"$and": [{"i": 3}, {"b": None}]},
    {"$and": [{"i": {"$gt": 0}}, {"i": {"$lt": 5}}, {"f": {"$exists": True}}]},
    {"$or": [{"i": None}, {"f": None}]},
    {"$or": [{"s": "a"}, {"b": False}], "i": {"$ne": 10}},
    {"$or": [{"$and": [{"i": 3}, {"f": None}]}, {"s": {"$nin": ["a", "b", None]}}]},
    {"$and": [{"$or": [{"i": 1}, {"i": 7}]}, {"f": 1.5}]},
    {"$or": [{}, {"i": 1}]},
    {"$and": [{}]},
    {"$or": [{"i": {"$gt": "x"}}, {"s": {"$lt": 1}}]},  # incomparable on both sides
    {"$and": [{"i": {"$ne": "x"}}, {"s": {"$nin": [1, 2]}}]},
    {"i": {"$eq": 3}, "$or": [{"s": "b"}, {"s": None}]},
]


@pytest.mark.parametrize("query", COMBINED, ids=[json.dumps(q) for q in COMBINED])
def test_combinations_match_the_reference_filter(table: Path, query: dict[str, Any]) -> None:
    assert ids(table, query) == expected(query)


def test_the_reference_filter_is_not_trivial(table: Path) -> None:
    # the comparison above means something only if queries select different subsets
    outcomes = {tuple(expected(q)) for q in SINGLE}
    assert len(outcomes) > 60
    assert () in outcomes
    assert tuple(range(len(ROWS))) in outcomes


# -- null, NaN and type semantics spelled out -------------------------------------------------


def test_null_and_nan_cells_are_missing(table: Path) -> None:
    missing_f = [1, 2, 5, 6, 11]  # NaN at 1, 6, 11; null at 2, 5
    assert ids(table, {"f": None}) == missing_f
    assert ids(table, {"f": {"$eq": None}}) == missing_f
    assert ids(table, {"f": {"$exists": False}}) == missing_f
    assert ids(table, {"f": {"$in": [None]}}) == missing_f
    present = [n for n in range(12) if n not in missing_f]
    assert ids(table, {"f": {"$ne": None}}) == present
    assert ids(table, {"f": {"$exists": True}}) == present
    assert ids(table, {"f": {"$nin": [None]}}) == present


def test_ne_and_nin_match_missing_cells(table: Path) -> None:
    assert ids(table, {"i": {"$ne": 3}}) == [0, 1, 3, 5, 6, 7, 8, 10, 11]
    assert ids(table, {"i": {"$nin": [3, 1]}}) == [1, 3, 5, 6, 7, 8, 10, 11]
    assert ids(table, {"i": {"$nin": [3, 1, None]}}) == [3, 6, 7, 8, 10, 11]
    # NaN is missing too, also where the row group statistics (which leave NaN out) would
    # say every value of the group is 1.5 (rows 0-2 hold 1.5, NaN, null)
    assert ids(table, {"f": {"$ne": 1.5}}) == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11]


def test_ordering_against_null(table: Path) -> None:
    assert ids(table, {"i": {"$gt": None}}) == []
    assert ids(table, {"i": {"$lt": None}}) == []
    assert ids(table, {"i": {"$gte": None}}) == [1, 5]
    assert ids(table, {"i": {"$lte": None}}) == [1, 5]


def test_missing_cells_never_order(table: Path) -> None:
    assert 1 not in ids(table, {"i": {"$lt": 100}})
    assert 1 not in ids(table, {"f": {"$gt": -1e300}})
    assert 2 not in ids(table, {"s": {"$gte": ""}})


def test_values_of_another_type_never_match(table: Path) -> None:
    everything = list(range(12))
    assert ids(table, {"i": "3"}) == []
    assert ids(table, {"i": {"$gt": "0"}}) == []
    assert ids(table, {"i": True}) == []  # booleans are not numbers
    assert ids(table, {"b": 1}) == []
    assert ids(table, {"s": 3}) == []
    assert ids(table, {"s": {"$in": [3, "3"]}}) == [11]
    assert ids(table, {"i": {"$ne": "3"}}) == everything
    assert ids(table, {"s": {"$nin": [3]}}) == everything


def test_numbers_compare_across_int_and_float(table: Path) -> None:
    assert ids(table, {"i": 3.0}) == [2, 4, 9]
    assert ids(table, {"i": {"$gt": 2.5, "$lt": 3.5}}) == [2, 4, 9]
    assert ids(table, {"f": 3}) == [7]
    assert ids(table, {"i": {"$in": [1, 3.0, 2.5]}}) == [0, 2, 4, 9]


def test_integer_columns_with_large_values_compare_with_floats(table: Path) -> None:
    # pyarrow would type 3.0 as float32 and cast the column to it, failing on 2**40
    assert ids(table, {"i": {"$gte": 1.0}}) == [0, 2, 4, 6, 8, 9, 10]
    assert ids(table, {"i": {"$lt": 0.5}}) == [3, 7, 11]


def test_integers_beyond_int64(table: Path) -> None:
    assert ids(table, {"i": 2**70}) == []
    assert ids(table, {"i": {"$lt": 2**70}}) == [0, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert ids(table, {"i": {"$gt": -(2**70)}}) == [0, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert ids(table, {"i": {"$in": [2**70, 1]}}) == [0]


def test_a_nan_in_the_query_means_null(table: Path) -> None:
    query = parse_query('{"f": NaN}')
    assert ids(table, query) == ids(table, {"f": None}) == [1, 2, 5, 6, 11]
    assert ids(table, {"f": {"$in": [NAN]}}) == [1, 2, 5, 6, 11]


# -- rows as returned -------------------------------------------------------------------------


def test_rows_come_back_whole_with_nan_as_none(table: Path) -> None:
    rows = read_page(table, skip=0, limit=3)
    assert rows == [
        {"id": 0, "i": 1, "f": 1.5, "s": "a", "b": True},
        {"id": 1, "i": None, "f": None, "s": "b", "b": False},
        {"id": 2, "i": 3, "f": None, "s": None, "b": None},
    ]
    everything = read_page(table, skip=0, limit=100)
    assert len(everything) == 12
    floats = [row["f"] for row in everything]
    assert all(f is None or math.isfinite(f) for f in floats)
    assert json.loads(json.dumps(everything, allow_nan=False)) == everything


def test_infinite_cells_come_back_as_none(tmp_path: Path) -> None:
    path = write(
        tmp_path / "inf.parquet",
        [{"x": float("inf")}, {"x": -float("inf")}, {"x": 2.0}],
        pa.schema([("x", pa.float64())]),
        group=10,
    )
    assert read_page(path, skip=0, limit=10) == [{"x": None}, {"x": None}, {"x": 2.0}]


# -- paging -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [{"n": n, "even": n % 2 == 0} for n in range(2500)]
    schema = pa.schema([("n", pa.int64()), ("even", pa.bool_())])
    path = write(tmp_path_factory.mktemp("tables") / "long.parquet", rows, schema, group=7)
    assert pq.ParquetFile(path).num_row_groups == 358
    return path


@pytest.mark.parametrize(
    ("skip", "limit"),
    [(0, 1), (0, 7), (0, 8), (5, 3), (6, 2), (7, 7), (13, 20), (0, 1500), (1000, 1200)],
)
def test_pages_span_row_groups_in_order(long_table: Path, skip: int, limit: int) -> None:
    rows = read_page(long_table, skip=skip, limit=limit)
    assert [row["n"] for row in rows] == list(range(skip, skip + limit))


def test_pages_tile_the_table(long_table: Path) -> None:
    seen: list[int] = []
    for skip in range(0, 2600, 100):
        seen += [row["n"] for row in read_page(long_table, skip=skip, limit=100)]
    assert seen == list(range(2500))


@pytest.mark.parametrize(
    ("skip", "limit", "expected_ns"),
    [
        (2495, 10, list(range(2495, 2500))),
        (2499, 1, [2499]),
        (2500, 10, []),
        (10_000, 10, []),
        (0, 0, []),
        (3, -1, []),
    ],
)
def test_pages_at_and_beyond_the_end(
    long_table: Path, skip: int, limit: int, expected_ns: list[int]
) -> None:
    assert [row["n"] for row in read_page(long_table, skip=skip, limit=limit)] == expected_ns


@pytest.mark.parametrize(("skip", "limit"), [(0, 5), (3, 4), (6, 11), (1240, 20), (1249, 5)])
def test_skip_and_limit_apply_to_matching_rows(long_table: Path, skip: int, limit: int) -> None:
    rows = read_page(long_table, skip=skip, limit=limit, query={"even": False})
    odd = list(range(1, 2500, 2))
    assert [row["n"] for row in rows] == odd[skip : skip + limit]


def test_a_query_matching_nothing_gives_an_empty_page(long_table: Path) -> None:
    assert read_page(long_table, skip=0, limit=10, query={"n": {"$gt": 10_000}}) == []


def test_a_query_matching_rows_in_far_apart_groups(long_table: Path) -> None:
    query = {"$or": [{"n": 3}, {"n": 1000}, {"n": 2499}]}
    assert [row["n"] for row in read_page(long_table, skip=0, limit=10, query=query)] == [
        3,
        1000,
        2499,
    ]
    assert [row["n"] for row in read_page(long_table, skip=1, limit=1, query=query)] == [1000]


# -- other column types -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def typed_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [
        {
            "day": datetime.date(2020, 1, 1),
            "at": datetime.datetime(2020, 1, 1, 12, 0),
            "price": decimal.Decimal("1.50"),
            "cat": "x",
            "small": 1,
            "tags": ["a"],
            "big": 1,
            "f32": 0.5,
            "f16": 1.5,
        },
        {
            "day": datetime.date(2021, 6, 30),
            "at": None,
            "price": decimal.Decimal("3.00"),
            "cat": "y",
            "small": 200,
            "tags": [],
            "big": 2**63 + 5,
            "f32": float("nan"),
            "f16": 2.0,
        },
        {key: None for key in ("day", "at", "price", "cat", "small", "tags", "big", "f32", "f16")},
    ]
    schema = pa.schema(
        [
            ("day", pa.date32()),
            ("at", pa.timestamp("us")),
            ("price", pa.decimal128(5, 2)),
            ("cat", pa.dictionary(pa.int32(), pa.string())),
            ("small", pa.uint8()),
            ("tags", pa.list_(pa.string())),
            ("big", pa.uint64()),
            ("f32", pa.float32()),
            ("f16", pa.float16()),
        ]
    )
    return write(tmp_path_factory.mktemp("tables") / "typed.parquet", rows, schema, group=2)


@pytest.mark.parametrize(
    ("query", "expected_positions"),
    [
        ({"day": "2020-01-01"}, [0]),
        ({"day": {"$gte": "2020-06-01"}}, [1]),
        ({"day": {"$lt": "2030-01-01"}}, [0, 1]),
        ({"day": "not a date"}, []),
        ({"day": {"$ne": "not a date"}}, [0, 1, 2]),
        ({"day": 5}, []),
        ({"day": None}, [2]),
        ({"at": {"$gt": "2019-12-31T00:00:00"}}, [0]),
        ({"at": None}, [1, 2]),
        ({"price": 1.5}, [0]),
        ({"price": 3}, [1]),
        ({"price": {"$gt": 1}}, [0, 1]),
        ({"price": {"$in": [3, 7]}}, [1]),
        ({"price": "1.5"}, []),
        ({"cat": "y"}, [1]),
        ({"cat": {"$gt": "x"}}, [1]),
        ({"cat": {"$in": ["x", "z"]}}, [0]),
        ({"cat": {"$nin": ["x"]}}, [1, 2]),
        ({"cat": None}, [2]),
        ({"small": 200}, [1]),
        ({"small": 300}, []),
        ({"small": -1}, []),
        ({"small": {"$gt": -1}}, [0, 1]),
        ({"small": {"$lt": 2**70}}, [0, 1]),
        ({"tags": "a"}, []),
        ({"tags": None}, [2]),
        ({"tags": {"$exists": True}}, [0, 1]),
        ({"small": {"$in": [300, 200]}}, [1]),
        ({"big": 2**63 + 5}, [1]),
        ({"big": 1}, [0]),
        ({"big": {"$gt": 2}}, [1]),
        ({"big": {"$gt": -1}}, [0, 1]),
        ({"big": {"$in": [1, -3, 2.5]}}, [0]),
        ({"f32": 0.5}, [0]),
        ({"f32": None}, [1, 2]),
        ({"f32": {"$ne": 0.5}}, [1, 2]),
        ({"f16": 1.5}, [0]),
        ({"f16": {"$gte": 1.75}}, [1]),
    ],
)
def test_other_column_types(
    typed_table: Path, query: dict[str, Any], expected_positions: list[int]
) -> None:
    rows = read_page(typed_table, skip=0, limit=10, query=query)
    everything = read_page(typed_table, skip=0, limit=10)
    assert rows == [everything[n] for n in expected_positions]


# -- rejected queries -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"$where": "this.i > 1"}, "'$where' is not supported"),
        ({"i": {"$where": "1"}}, "'$where' is not supported"),
        ({"s": {"$regex": "^a"}}, "'$regex' is not supported"),
        ({"$nor": [{"i": 1}]}, "'$nor' is not supported"),
        ({"i": {"$not": {"$gt": 1}}}, "'$not' is not supported"),
        ({"i": {"$gt": 1, "other": 2}}, "'other' is not supported"),
        ({"s": {"$expr": 1}}, "'$expr' is not supported"),
        ({"nope": 1}, "no column 'nope'; columns are id, i, f, s, b"),
        ({"$or": [{"nope": 1}]}, "no column 'nope'"),
        ({"i": {"$in": 3}}, "takes a list"),
        ({"i": {"$nin": "abc"}}, "takes a list"),
        ({"i": {"$in": [[1]]}}, "compare with a string, number, boolean or null"),
        ({"i": {"$in": [{"$gt": 1}]}}, "compare with"),
        ({"s": {"a": 1}}, "compare with"),
        ({"s": {}}, "compare with"),
        ({"s": [1, 2]}, "compare with"),
        ({"i": {"$gt": [1]}}, "compare with"),
        ({"i": {"$eq": {"x": 1}}}, "compare with"),
        ({"$and": []}, "non-empty list"),
        ({"$or": {"i": 1}}, "non-empty list"),
        ({"$and": [1]}, "must be a query object"),
        ({"$or": [{"i": 1}, "i"]}, "must be a query object"),
    ],
)
def test_unsupported_queries_are_invalid(table: Path, query: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid) as caught:
        read_page(table, skip=0, limit=10, query=query)
    assert message in caught.value.message
    assert caught.value.status_code == 422


def test_the_unsupported_operator_message_lists_the_supported_ones(table: Path) -> None:
    with pytest.raises(Invalid) as caught:
        read_page(table, skip=0, limit=10, query={"$where": "1"})
    for op in OPERATORS:
        assert op in caught.value.message
    assert set(OPERATORS) == {
        "$eq",
        "$ne",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$in",
        "$nin",
        "$exists",
        "$and",
        "$or",
    }


def test_an_empty_query_is_no_filter() -> None:
    assert to_expression({}, SCHEMA) is None


def test_queries_are_checked_even_for_an_empty_page(table: Path) -> None:
    with pytest.raises(Invalid):
        read_page(table, skip=0, limit=10, query={"$where": "1"})
    with pytest.raises(Invalid):
        to_expression({"nope": 1}, SCHEMA)


# -- parse_query ------------------------------------------------------------------------------


def test_parse_query() -> None:
    assert parse_query(None) == {}
    assert parse_query("") == {}
    assert parse_query("{}") == {}
    assert parse_query('{"Sex": "female", "Age": {"$gt": 60}}') == {
        "Sex": "female",
        "Age": {"$gt": 60},
    }


@pytest.mark.parametrize("text", ["{", "{'a': 1}", "Sex=female", '{"a": }', "{} {}"])
def test_parse_query_refuses_bad_json(text: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_query(text)
    assert "not valid JSON" in caught.value.message
    assert caught.value.detail == {"field": "query"}


@pytest.mark.parametrize("text", ["[1, 2]", '"Sex"', "3", "null", "true"])
def test_parse_query_refuses_non_objects(text: str) -> None:
    with pytest.raises(Invalid, match="must be a JSON object"):
        parse_query(text)


# -- layout: one file or several parts ---------------------------------------------------------


def parts_table(
    folder: Path, rows: list[dict[str, Any]], schema: pa.Schema, sizes: list[int]
) -> Path:
    """The rows as a table of parts (`table/part-00000.parquet`, ...) in output folder
    `folder`, part i holding sizes[i] rows in row groups of 7."""
    (folder / "table").mkdir(parents=True)
    start = 0
    for index, size in enumerate(sizes):
        write(folder / "table" / f"part-{index:05d}.parquet", rows[start : start + size], schema, 7)
        start += size
    assert start == len(rows)
    return folder


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [{"n": n, "even": n % 2 == 0} for n in range(2500)]
    schema = pa.schema([("n", pa.int64()), ("even", pa.bool_())])
    # part names sort as numbers do only with their zeros: 10 parts, one of them empty
    return parts_table(
        tmp_path_factory.mktemp("parts"), rows, schema, [3, 300, 0, 700, 1, 496, 250, 250, 250, 250]
    )


def test_a_table_of_parts_reads_as_one(parts: Path, long_table: Path) -> None:
    assert [p.name for p in table_files(parts)][:3] == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert table_files(parts / "table") == table_files(parts)  # the parts folder itself
    assert table_files(long_table) == [long_table]
    for skip, limit in [(0, 5), (0, 2500), (2, 3), (300, 10), (1003, 2), (1999, 700), (2600, 5)]:
        assert read_page(parts, skip=skip, limit=limit) == read_page(
            long_table, skip=skip, limit=limit
        )
    for query in [{"even": False}, {"n": {"$in": [2, 303, 1004, 2499]}}, {"n": {"$gt": 2497}}]:
        for skip in (0, 1, 2, 700):
            assert read_page(parts, skip=skip, limit=50, query=query) == read_page(
                long_table, skip=skip, limit=50, query=query
            )


def test_an_output_folder_with_one_file(tmp_path: Path, long_table: Path) -> None:
    (tmp_path / TABLE_FILE).write_bytes(long_table.read_bytes())
    assert table_files(tmp_path) == [tmp_path / TABLE_FILE]
    assert table_location(tmp_path) == tmp_path / TABLE_FILE
    assert read_page(tmp_path, skip=10, limit=2) == [
        {"n": 10, "even": True},
        {"n": 11, "even": False},
    ]


def test_parts_must_share_one_schema(tmp_path: Path) -> None:
    (tmp_path / "table").mkdir()
    write(tmp_path / "table" / "part-00000.parquet", [{"a": 1}], pa.schema([("a", pa.int64())]), 1)
    write(
        tmp_path / "table" / "part-00001.parquet", [{"a": "x"}], pa.schema([("a", pa.string())]), 1
    )
    assert table_location(tmp_path) == tmp_path / "table"
    with pytest.raises(Invalid, match="one schema"):
        read_page(tmp_path, skip=0, limit=1)


# -- reading only what a page needs -------------------------------------------------------------


def corrupt_group(path: Path, group: int) -> None:
    """Overwrite the data of row group `group` of the file at `path`, keeping its footer: any
    read of that group fails from then on."""
    meta = pq.read_metadata(path)
    data = bytearray(path.read_bytes())
    for column in range(meta.num_columns):
        chunk = meta.row_group(group).column(column)
        start = chunk.dictionary_page_offset or chunk.data_page_offset
        data[start : start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
    path.write_bytes(bytes(data))


def test_a_skip_jumps_over_row_groups_without_reading_them(tmp_path: Path) -> None:
    rows = [{"n": n, "s": f"row {n}"} for n in range(100)]
    path = write(
        tmp_path / "t.parquet", rows, pa.schema([("n", pa.int64()), ("s", pa.string())]), 10
    )
    assert read_page(path, skip=0, limit=1) == [rows[0]]  # the footer is cached now
    for group in range(5):
        corrupt_group(path, group)
    with pytest.raises(OSError):
        read_page(path, skip=0, limit=1)
    # rows 50.. are in groups 5.. : read from the footer's row counts alone, groups 0-4 unread
    assert read_page(path, skip=50, limit=3) == rows[50:53]
    assert read_page(path, skip=95, limit=10) == rows[95:]
    assert read_page(path, skip=2**63, limit=10) == []  # any skip, nothing read


def test_a_huge_skip_with_a_query_reads_only_its_columns(tmp_path: Path) -> None:
    rows = [{"n": n, "s": f"row {n}"} for n in range(100)]
    path = write(
        tmp_path / "t.parquet", rows, pa.schema([("n", pa.int64()), ("s", pa.string())]), 10
    )
    assert read_page(path, skip=10**18, limit=5, query={"n": {"$gte": 0}}) == []
    assert read_page(path, skip=60, limit=3, query={"n": {"$gte": 0}}) == rows[60:63]


def test_csv_holds_nested_values_as_json(tmp_path: Path) -> None:
    # builder/sparkml's prediction tables have array columns (probability vectors)
    schema = pa.schema([("p", pa.list_(pa.float64())), ("n", pa.int64())])
    path = write(
        tmp_path / "t.parquet", [{"p": [0.25, 0.75], "n": 1}, {"p": None, "n": 2}], schema, 1
    )
    assert b"".join(csv_chunks(path)).decode().splitlines() == ['"p","n"', '"[0.25, 0.75]",1', ",2"]


def test_the_footer_cache_sees_a_changed_file(tmp_path: Path) -> None:
    schema = pa.schema([("n", pa.int64())])
    path = write(tmp_path / "t.parquet", [{"n": 1}], schema, 1)
    assert read_page(path, skip=0, limit=5) == [{"n": 1}]
    write(tmp_path / "other.parquet", [{"n": 2}, {"n": 3}], schema, 1).replace(path)
    assert read_page(path, skip=0, limit=5) == [{"n": 2}, {"n": 3}]
    path.unlink()
    with pytest.raises(NotFound):
        read_page(path, skip=0, limit=5)


# -- the reader processes of the API: bounded in concurrency and time --------------------------


async def collect(chunks: Any) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def test_reader_pages_and_downloads(parts: Path, long_table: Path) -> None:
    reader = TableReader(concurrency=2, timeout=60)

    async def reads() -> None:
        page = await reader.page_json(parts, 5, 3, {"even": True})
        assert json.loads(page) == [{"n": n, "even": True} for n in (10, 12, 14)]
        everything = json.loads(await reader.all_rows_json(parts))
        assert everything == read_page(long_table, skip=0, limit=3000)
        csv = (await collect(reader.csv_chunks(parts))).decode().splitlines()
        assert csv[0] == '"n","even"' and len(csv) == 2501 and csv[1:3] == ["0,true", "1,false"]
        joined = pq.read_table(io.BytesIO(await collect(reader.parquet_chunks(parts))))
        assert joined.equals(pq.read_table(long_table))
        with pytest.raises(Invalid, match="regex"):
            await reader.page_json(parts, 0, 3, {"n": {"$regex": "x"}})
        with pytest.raises(NotFound):
            await reader.page_json(parts.parent / "gone", 0, 3, None)

    try:
        asyncio.run(reads())
        assert len(reader._idle) == 1  # one reader did it all, one read after another
    finally:
        reader.close()


def test_a_read_past_its_deadline_is_a_503(long_table: Path) -> None:
    reader = TableReader(concurrency=1, timeout=1e-9)
    try:
        with pytest.raises(ScanTimeout) as caught:
            asyncio.run(reader.page_json(long_table, 0, 5, None))
        assert reader._idle  # it stopped by itself, and stays for the next read
    finally:
        reader.close()
    assert caught.value.status_code == 503
    assert "LO_SCAN_TIMEOUT=1e-09" in caught.value.message and "format=csv" in caught.value.message


def test_waiting_for_a_reader_counts_against_the_deadline_and_a_left_download_frees_it(
    long_table: Path,
) -> None:
    reader = TableReader(concurrency=1, timeout=0.5)

    async def reads() -> None:
        download = reader.csv_chunks(long_table)
        assert (await anext(download)).startswith(b'"n","even"')  # holds the only reader
        with pytest.raises(ScanTimeout):
            await reader.page_json(long_table, 0, 5, None)
        await download.aclose()  # the client went away: its reader is killed
        assert [r.process.wait(60) for r in reader._dying] == [-signal.SIGKILL]
        page = await reader.page_json(long_table, 0, 1, None)
        assert json.loads(page) == [{"n": 0, "even": True}]

    try:
        asyncio.run(reads())
    finally:
        reader.close()


def test_a_stuck_reader_is_killed_and_replaced(long_table: Path) -> None:
    reader = TableReader(concurrency=1, timeout=0.5)

    async def reads() -> None:
        assert json.loads(await reader.page_json(long_table, 0, 1, None)) == [
            {"n": 0, "even": True}
        ]
        (stuck,) = reader._idle
        os.kill(stuck.process.pid, signal.SIGSTOP)  # it will never answer
        with pytest.raises(ScanTimeout):
            await reader.page_json(long_table, 0, 1, None)
        assert stuck.process.wait(60) == -signal.SIGKILL
        assert json.loads(await reader.page_json(long_table, 1, 1, None)) == [
            {"n": 1, "even": False}
        ]
        assert reader._idle[0].process.pid != stuck.process.pid

    try:
        asyncio.run(reads())
    finally:
        reader.close()


def test_a_reader_that_dies_mid_read_is_a_500_and_is_replaced(long_table: Path) -> None:
    reader = TableReader(concurrency=1, timeout=60)

    async def reads() -> None:
        await reader.page_json(long_table, 0, 1, None)
        (dying,) = reader._idle
        os.kill(dying.process.pid, signal.SIGSTOP)
        read = asyncio.create_task(reader.page_json(long_table, 0, 1, None))
        while reader._idle:  # until the read has taken the reader
            await asyncio.sleep(0.01)
        os.kill(dying.process.pid, signal.SIGKILL)
        with pytest.raises(LOError) as caught:
            await read
        assert caught.value.status_code == 500 and "reader process" in caught.value.message
        assert json.loads(await reader.page_json(long_table, 2, 1, None)) == [
            {"n": 2, "even": True}
        ]

    try:
        asyncio.run(reads())
    finally:
        reader.close()


def test_readers_die_with_the_server(long_table: Path) -> None:
    """A reader's parent is killed (no cleanup at all): the reader goes too."""
    script = (
        "import asyncio, pathlib, sys\n"
        "from learning_orchestra.core.tablereader import TableReader\n"
        "reader = TableReader(1, 60)\n"
        f"asyncio.run(reader.page_json(pathlib.Path({str(long_table)!r}), 0, 1, None))\n"
        "print(reader._idle[0].process.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        parent.kill()
        parent.wait(60)
        for _ in range(600):  # killed by PR_SET_PDEATHSIG, then reaped by init
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists()
    finally:
        parent.kill()


def test_rows_are_written_as_json_like_jsonable_encoder() -> None:
    value = {
        "day": datetime.date(2020, 1, 2),
        "at": datetime.datetime(2020, 1, 2, 3, 4, 5),
        "price": decimal.Decimal("1.50"),
        "whole": decimal.Decimal("3"),
        "raw": b"ab",
        "tags": ["a"],
    }
    assert json.loads(dumps(value)) == {
        "day": "2020-01-02",
        "at": "2020-01-02T03:04:05",
        "price": 1.5,
        "whole": 3,
        "raw": "ab",
        "tags": ["a"],
    }


def test_reading_a_table_imports_neither_pyarrow_dataset_nor_pandas(long_table: Path) -> None:
    """What a reader process does on a page read (the API process reads no table: see
    tests/core/test_api_imports.py)."""
    script = (
        "import sys, pathlib\n"
        "from learning_orchestra.core.tables import read_page\n"
        f"path = pathlib.Path({str(long_table)!r})\n"
        "assert read_page(path, skip=3, limit=2, query={'even': True})\n"
        "assert read_page(path, skip=1000, limit=2)\n"
        "heavy = ('pyarrow.dataset', 'pyarrow.acero', 'pandas')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


def test_a_query_naming_no_column_keeps_every_row(long_table: Path) -> None:
    everything = read_page(long_table, skip=5, limit=20)
    assert read_page(long_table, skip=5, limit=20, query={"$and": [{}]}) == everything
    assert read_page(long_table, skip=5, limit=20, query={"$or": [{}, {"n": 3}]}) == everything
