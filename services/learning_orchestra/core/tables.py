"""Reading stored tables (Parquet) page by page, with LO's `query` filter.

`query` is a JSON filter in a safe subset of MongoDB syntax — field equality,
`$eq $ne $gt $gte $lt $lte $in $nin $exists`, `$and $or` — translated to a pyarrow
expression, so nothing the user sends is ever executed and filtering streams over the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from .errors import Invalid

_COMPARE = {
    "$eq": lambda f, v: f == v,
    "$ne": lambda f, v: f != v,
    "$gt": lambda f, v: f > v,
    "$gte": lambda f, v: f >= v,
    "$lt": lambda f, v: f < v,
    "$lte": lambda f, v: f <= v,
}
OPERATORS = sorted([*_COMPARE, "$in", "$nin", "$exists", "$and", "$or"])


def parse_query(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        query = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Invalid(f"query is not valid JSON: {exc}", {"field": "query"}) from None
    if not isinstance(query, dict):
        raise Invalid("query must be a JSON object such as {\"Sex\": \"female\"}")
    return query


def _scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise Invalid(f"{where}: compare with a string, number, boolean or null, not {value!r}")


def _field(name: str, schema: pa.Schema) -> ds.Expression:
    if name not in schema.names:
        raise Invalid(
            f"query names no column {name!r}; columns are {', '.join(schema.names)}",
            {"field": "query"},
        )
    return pc.field(name)


def _condition(name: str, spec: Any, schema: pa.Schema) -> ds.Expression:
    field = _field(name, schema)
    if not isinstance(spec, dict) or not any(k.startswith("$") for k in spec):
        value = _scalar(spec, name)
        return field.is_null() if value is None else field == value
    parts = []
    for op, value in spec.items():
        if op in _COMPARE:
            value = _scalar(value, f"{name}.{op}")
            if value is None:
                parts.append(field.is_null() if op == "$eq" else field.is_valid())
            else:
                parts.append(_COMPARE[op](field, value))
        elif op in ("$in", "$nin"):
            if not isinstance(value, list):
                raise Invalid(f"{name}.{op} takes a list of values")
            values = [_scalar(v, f"{name}.{op}") for v in value]
            present = [v for v in values if v is not None]
            expr = field.isin(present) if present else pc.scalar(False)
            if None in values:
                expr = expr | field.is_null()
            parts.append(expr if op == "$in" else ~expr)
        elif op == "$exists":
            parts.append(field.is_valid() if value else field.is_null())
        else:
            raise Invalid(
                f"query operator {op!r} is not supported; use one of {', '.join(OPERATORS)}",
                {"field": "query"},
            )
    expr = parts[0]
    for part in parts[1:]:
        expr = expr & part
    return expr


def to_expression(query: dict[str, Any], schema: pa.Schema) -> ds.Expression | None:
    """The pyarrow filter for a query (None for the empty query)."""
    parts = []
    for key, spec in query.items():
        if key in ("$and", "$or"):
            if not isinstance(spec, list) or not spec:
                raise Invalid(f"{key} takes a non-empty list of queries")
            subs = [to_expression(_object(q, key), schema) for q in spec]
            exprs = [s if s is not None else pc.scalar(True) for s in subs]
            combined = exprs[0]
            for sub in exprs[1:]:
                combined = (combined & sub) if key == "$and" else (combined | sub)
            parts.append(combined)
        elif key.startswith("$"):
            raise Invalid(
                f"query operator {key!r} is not supported; use one of {', '.join(OPERATORS)}",
                {"field": "query"},
            )
        else:
            parts.append(_condition(key, spec, schema))
    if not parts:
        return None
    expr = parts[0]
    for part in parts[1:]:
        expr = expr & part
    return expr


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"every item of {where} must be a query object")
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; missing values are null
    return value


def read_page(
    path: Path, *, skip: int, limit: int, query: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Rows `skip`..`skip+limit` of the table at `path` that match `query`."""
    if limit <= 0:
        return []
    dataset = ds.dataset(path, format="parquet")
    expr = to_expression(query or {}, dataset.schema)
    rows: list[dict[str, Any]] = []
    for batch in dataset.to_batches(filter=expr, batch_size=max(limit + skip, 1024)):
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        taken = batch.slice(skip, limit - len(rows))
        skip = 0
        rows.extend({k: _clean(v) for k, v in row.items()} for row in taken.to_pylist())
        if len(rows) >= limit:
            break
    return rows
