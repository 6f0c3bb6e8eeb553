"""LO's `query` (a safe subset of MongoDB's filter syntax) compiled to a row filter.

The filter is a function from a record batch to a boolean mask, built from `pyarrow.compute`
kernels and evaluated eagerly: nothing the user sends is ever executed, and neither
`pyarrow.dataset` nor Acero (which `Table.filter(expression)` pulls in, with pandas) is
imported, so the API process stays small. For the same reason the query's values become Arrow
values through raw buffers (`_typed`): converting Python values with `pa.array`/`pa.scalar`
makes pyarrow import pandas. The semantics are documented in `core/tables.py`.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .errors import Invalid
from .tables import OPERATORS

#: A compiled query: the mask of the rows of a batch that match (null counts as no match).
RowFilter = Callable[[pa.RecordBatch], pa.Array]
Column = Callable[[pa.RecordBatch], pa.Array]

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "$eq": pc.equal,
    "$ne": pc.not_equal,
    "$gt": pc.greater,
    "$gte": pc.greater_equal,
    "$lt": pc.less,
    "$lte": pc.less_equal,
}
_FLOAT = pa.float64()


_PACK = {pa.int64(): "q", pa.uint64(): "Q", pa.float64(): "d"}


def _typed(values: list[Any], type_: pa.DataType) -> pa.Array:
    """An Arrow array of Python `values` (no None) of `type_` (boolean, string, float64 or
    an integer type), built from raw buffers. OverflowError or ArrowInvalid when an integer
    does not fit."""
    count = len(values)
    if type_ == pa.bool_():
        bits = sum(1 << i for i, value in enumerate(values) if value)
        buffer = pa.py_buffer(bits.to_bytes(count // 8 + 1, "little"))
        return pa.Array.from_buffers(type_, count, [None, buffer])
    if type_ == pa.string():
        data = [value.encode() for value in values]
        offsets = struct.pack(f"<{count + 1}i", *itertools.accumulate(map(len, data), initial=0))
        return pa.Array.from_buffers(
            type_, count, [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
        )
    if pa.types.is_integer(type_) and type_ not in _PACK:  # via 64 bits, then a checked cast
        wide = pa.uint64() if any(v >= 2**63 for v in values) else pa.int64()
        return _typed(values, wide).cast(type_)
    try:
        packed = struct.pack(f"<{count}{_PACK[type_]}", *values)
    except struct.error:
        raise OverflowError(f"a value does not fit {type_}") from None
    return pa.Array.from_buffers(type_, count, [None, pa.py_buffer(packed)])


def _scalar_of(value: Any, type_: pa.DataType) -> pa.Scalar:
    return _typed([value], type_)[0]


def _constant(value: bool) -> RowFilter:
    scalar = _scalar_of(value, pa.bool_())
    return lambda batch: pa.repeat(scalar, batch.num_rows)


_NOTHING = _constant(False)
_EVERYTHING = _constant(True)


def _and(left: RowFilter, right: RowFilter) -> RowFilter:
    return lambda batch: pc.and_kleene(left(batch), right(batch))


def _or(left: RowFilter, right: RowFilter) -> RowFilter:
    return lambda batch: pc.or_kleene(left(batch), right(batch))


def _not(inner: RowFilter) -> RowFilter:
    return lambda batch: pc.invert(inner(batch))


def _scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        if isinstance(value, float) and math.isnan(value):
            return None  # NaN is how a missing value reads; json.loads accepts the literal
        return value
    raise Invalid(f"{where}: compare with a string, number, boolean or null, not {value!r}")


def _check_field(name: str, schema: pa.Schema) -> None:
    if name not in schema.names:
        raise Invalid(
            f"query names no column {name!r}; columns are {', '.join(schema.names)}",
            {"field": "query"},
        )


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
            return None, _scalar_of(value, pa.string()).cast(type_)
        except (pa.ArrowException, OverflowError):
            return None
    if _value_kind(value) != kind:
        return None
    if kind == "string":
        return None, _scalar_of(value, pa.string())
    if kind == "bool":
        return None, _scalar_of(value, pa.bool_())
    base = type_.value_type if pa.types.is_dictionary(type_) else type_
    if pa.types.is_integer(base) and isinstance(value, int):
        try:
            return None, _scalar_of(value, base)
        except (OverflowError, pa.ArrowException):
            pass  # beyond the column type's range: compare as floats
    if pa.types.is_floating(base):
        wide = base in (pa.float32(), _FLOAT)
        return (None if wide else _FLOAT), _scalar_of(_float(value), _FLOAT)
    # an integer column against a fraction or a huge integer, or a decimal column: as floats
    return _FLOAT, _scalar_of(_float(value), _FLOAT)


def _column(name: str, type_: pa.DataType, cast: pa.DataType | None) -> Column:
    if pa.types.is_dictionary(type_):  # compare the values, not the indices
        value_type = type_.value_type

        def decoded(batch: pa.RecordBatch) -> pa.Array:
            return pc.cast(batch.column(name), cast or value_type, safe=False)

        return decoded
    if cast is None:
        return lambda batch: batch.column(name)
    return lambda batch: pc.cast(batch.column(name), cast, safe=False)


def _missing(name: str, type_: pa.DataType) -> RowFilter:
    nan_is_null = pa.types.is_floating(type_)
    return lambda batch: pc.is_null(batch.column(name), nan_is_null=nan_is_null)


def _compare(op: str, name: str, type_: pa.DataType, value: Any) -> RowFilter:
    missing = _missing(name, type_)
    if value is None:
        if op == "$ne":
            return _not(missing)
        return _NOTHING if op in ("$gt", "$lt") else missing
    operand = _operand(type_, value)
    if operand is None:
        return _EVERYTHING if op == "$ne" else _NOTHING
    cast, scalar = operand
    column, compare = _column(name, type_, cast), _COMPARE[op]

    def compared(batch: pa.RecordBatch) -> pa.Array:
        return compare(column(batch), scalar)

    return _or(compared, missing) if op == "$ne" else compared


def _member(name: str, type_: pa.DataType, values: list[Any]) -> RowFilter:
    """Rows whose cell is one of `values` (a None among them matches missing cells)."""
    groups: dict[pa.DataType | None, list[pa.Scalar]] = {}
    for value in values:
        operand = None if value is None else _operand(type_, value)
        if operand is not None:
            groups.setdefault(operand[0], []).append(operand[1])
    result = _NOTHING
    for cast, scalars in groups.items():
        value_set = _typed([s.as_py() for s in scalars], scalars[0].type)
        column = _column(name, type_, cast)

        def member(
            batch: pa.RecordBatch, column: Column = column, value_set: pa.Array = value_set
        ) -> pa.Array:
            return pc.is_in(column(batch), value_set=value_set)

        result = _or(result, member)
    if None in values:
        result = _or(result, _missing(name, type_))
    return result


def _condition(name: str, spec: Any, schema: pa.Schema) -> RowFilter:
    _check_field(name, schema)
    type_ = schema.field(name).type
    if not isinstance(spec, dict) or not any(k.startswith("$") for k in spec):
        return _compare("$eq", name, type_, _scalar(spec, name))
    parts = []
    for op, value in spec.items():
        if op in _COMPARE:
            parts.append(_compare(op, name, type_, _scalar(value, f"{name}.{op}")))
        elif op in ("$in", "$nin"):
            if not isinstance(value, list):
                raise Invalid(f"{name}.{op} takes a list of values")
            member = _member(name, type_, [_scalar(v, f"{name}.{op}") for v in value])
            parts.append(member if op == "$in" else _not(member))
        elif op == "$exists":
            missing = _missing(name, type_)
            parts.append(_not(missing) if value else missing)
        else:
            raise Invalid(
                f"query operator {op!r} is not supported; use one of {', '.join(OPERATORS)}",
                {"field": "query"},
            )
    result = parts[0]
    for part in parts[1:]:
        result = _and(result, part)
    return result


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"every item of {where} must be a query object", {"field": "query"})
    return value


def _compile(query: dict[str, Any], schema: pa.Schema) -> RowFilter | None:
    parts = []
    for key, spec in query.items():
        if key in ("$and", "$or"):
            if not isinstance(spec, list) or not spec:
                raise Invalid(f"{key} takes a non-empty list of queries", {"field": "query"})
            subs = [_compile(_object(q, key), schema) or _EVERYTHING for q in spec]
            combined = subs[0]
            for sub in subs[1:]:
                combined = _and(combined, sub) if key == "$and" else _or(combined, sub)
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
    result = parts[0]
    for part in parts[1:]:
        result = _and(result, part)
    return result


def compile_filter(query: dict[str, Any], schema: pa.Schema) -> RowFilter | None:
    """The row filter of `query` over tables of `schema` (None for the empty query).

    Invalid (422) when the query is not in the supported subset, names no column of the
    table, or cannot be evaluated on it (checked on an empty batch, before any row is read)."""
    compiled = _compile(query, schema)
    if compiled is not None:
        try:
            empty = [pa.nulls(0, field.type) for field in schema]
            compiled(pa.RecordBatch.from_arrays(empty, schema=schema))
        except pa.ArrowException as exc:
            raise Invalid(f"query cannot be evaluated on this table: {exc}") from None
    return compiled


def query_columns(query: dict[str, Any]) -> set[str]:
    """The columns `query` reads (after `compile_filter` accepted it)."""
    names: set[str] = set()
    for key, spec in query.items():
        if key in ("$and", "$or"):
            for sub in spec:
                names |= query_columns(sub)
        else:
            names.add(key)
    return names
