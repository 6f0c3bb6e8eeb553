"""Reading stored tables (Parquet) page by page, with LO's `query` filter.

`query` is a JSON filter in a safe subset of MongoDB syntax — field equality,
`$eq $ne $gt $gte $lt $lte $in $nin $exists`, `$and $or` — translated to a pyarrow
expression, so nothing the user sends is ever executed and filtering streams over the file.

Semantics follow MongoDB's, with a table cell that is null (or a floating-point NaN, which is
returned as null) playing the part of a missing field:

- `{"f": null}`, `$eq: null`, `$gte: null`, `$lte: null` and `$exists: false` match missing
  cells; `$ne: null` and `$exists: true` match present ones; `$gt`/`$lt` null match nothing;
- `$ne: v` and `$nin: [...]` also match missing cells (unless `$nin` lists null); `$in` lists
  null to match them;
- a value of another type than the column's (a string for a number column, a boolean for a
  string column, ...) never equals nor orders against its cells, as in MongoDB's type
  brackets: such conditions match nothing (`$ne`/`$nin`: everything) instead of failing;
- date and timestamp columns compare with ISO strings (`{"day": {"$gte": "2020-01-01"}}`).
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
        raise Invalid('query must be a JSON object such as {"Sex": "female"}', {"field": "query"})
    return query


def _scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        if isinstance(value, float) and math.isnan(value):
            return None  # NaN is how a missing value reads; json.loads accepts the literal
        return value
    raise Invalid(f"{where}: compare with a string, number, boolean or null, not {value!r}")


def _field(name: str, schema: pa.Schema) -> ds.Expression:
    if name not in schema.names:
        raise Invalid(
            f"query names no column {name!r}; columns are {', '.join(schema.names)}",
            {"field": "query"},
        )
    return pc.field(name)


def _kind(type_: pa.DataType) -> str | None:
    """The MongoDB type bracket of a column's values, None for other Arrow types."""
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    if pa.types.is_boolean(type_):
        return "bool"
    if pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return "number"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "string"
    if pa.types.is_string_view(type_):
        return "string"
    return None


def _value_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "string" if isinstance(value, str) else "number"


_FLOAT = pa.float64()


def _float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond the float range
        return math.copysign(math.inf, value)


def _operand(type_: pa.DataType, value: Any) -> tuple[pa.DataType | None, pa.Scalar] | None:
    """How to compare a column of `type_` with `value`: the type to cast the column to (None:
    as it is) and the typed value, or None when `value` never compares with the column.

    The value gets an explicit type: left to itself pyarrow gives a Python number the smallest
    type that holds it (3.0 becomes float32) and then casts the column to that type, which
    fails on an integer column holding values above 2**24.
    """
    kind = _kind(type_)
    if kind is None:  # dates, timestamps, ...: compare with a string cast to the column type
        if not isinstance(value, str):
            return None
        try:
            return None, pa.scalar(value).cast(type_)
        except (pa.ArrowException, OverflowError):
            return None
    if _value_kind(value) != kind:
        return None
    if kind == "string":
        return None, pa.scalar(value, pa.string())
    if kind == "bool":
        return None, pa.scalar(value, pa.bool_())
    base = type_.value_type if pa.types.is_dictionary(type_) else type_
    if pa.types.is_integer(base) and isinstance(value, int):
        try:
            return None, pa.scalar(value, base)
        except (OverflowError, pa.ArrowException):
            pass  # beyond the column type's range: compare as floats
    if pa.types.is_floating(base):
        wide = base in (pa.float32(), _FLOAT)
        return (None if wide else _FLOAT), pa.scalar(_float(value), _FLOAT)
    # an integer column against a fraction or a huge integer, or a decimal column: as floats
    return _FLOAT, pa.scalar(_float(value), _FLOAT)


def _lhs(field: ds.Expression, cast: pa.DataType | None) -> ds.Expression:
    return field if cast is None else field.cast(cast, safe=False)


def _missing(field: ds.Expression, type_: pa.DataType) -> ds.Expression:
    return field.is_null(nan_is_null=pa.types.is_floating(type_))


_NOTHING = pc.scalar(False)
_EVERYTHING = pc.scalar(True)


def _compare(op: str, field: ds.Expression, type_: pa.DataType, value: Any) -> ds.Expression:
    missing = _missing(field, type_)
    if value is None:
        if op == "$ne":
            return ~missing
        return _NOTHING if op in ("$gt", "$lt") else missing
    operand = _operand(type_, value)
    if operand is None:
        return _EVERYTHING if op == "$ne" else _NOTHING
    cast, scalar = operand
    expr: ds.Expression = _COMPARE[op](_lhs(field, cast), scalar)
    return expr | missing if op == "$ne" else expr


def _member(field: ds.Expression, type_: pa.DataType, values: list[Any]) -> ds.Expression:
    """Rows whose cell is one of `values` (a None among them matches missing cells)."""
    groups: dict[pa.DataType | None, list[pa.Scalar]] = {}
    for value in values:
        operand = None if value is None else _operand(type_, value)
        if operand is not None:
            groups.setdefault(operand[0], []).append(operand[1])
    expr = _NOTHING
    for cast, scalars in groups.items():
        value_set = pa.array([s.as_py() for s in scalars], type=scalars[0].type)
        expr = expr | _lhs(field, cast).isin(value_set)
    if None in values:
        expr = expr | _missing(field, type_)
    return expr


def _condition(name: str, spec: Any, schema: pa.Schema) -> ds.Expression:
    field = _field(name, schema)
    type_ = schema.field(name).type
    if not isinstance(spec, dict) or not any(k.startswith("$") for k in spec):
        return _compare("$eq", field, type_, _scalar(spec, name))
    parts = []
    for op, value in spec.items():
        if op in _COMPARE:
            parts.append(_compare(op, field, type_, _scalar(value, f"{name}.{op}")))
        elif op in ("$in", "$nin"):
            if not isinstance(value, list):
                raise Invalid(f"{name}.{op} takes a list of values")
            expr = _member(field, type_, [_scalar(v, f"{name}.{op}") for v in value])
            parts.append(expr if op == "$in" else ~expr)
        elif op == "$exists":
            missing = _missing(field, type_)
            parts.append(~missing if value else missing)
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
                raise Invalid(f"{key} takes a non-empty list of queries", {"field": "query"})
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
        raise Invalid(f"every item of {where} must be a query object", {"field": "query"})
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
    if expr is not None:
        try:  # bind once up front, so a filter Arrow cannot evaluate is the user's 422
            dataset.schema.empty_table().filter(expr)
        except pa.ArrowException as exc:
            raise Invalid(f"query cannot be evaluated on this table: {exc}") from None
    skip = max(skip, 0)
    rows: list[dict[str, Any]] = []
    # The filter is applied to each batch rather than pushed into the scan: the scan prunes row
    # groups by their Parquet statistics, which leave NaN out, and so drops rows such as a NaN
    # matching `$ne` or `null`.
    for batch in dataset.to_batches(batch_size=max(limit + skip, 1024)):
        table = pa.Table.from_batches([batch])
        if expr is not None:
            table = table.filter(expr)
        if skip >= table.num_rows:
            skip -= table.num_rows
            continue
        taken = table.slice(skip, limit - len(rows))
        skip = 0
        rows.extend({k: _clean(v) for k, v in row.items()} for row in taken.to_pylist())
        if len(rows) >= limit:
            break
    return rows
