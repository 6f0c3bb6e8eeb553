"""Transform jobs, run in worker processes: projection and LO's dataType cast.

Both stream the input table batch by batch (pyarrow), so memory stays bounded by a batch
whatever the table's size, and keep every column's exact type (no round trip through pandas,
which turns integer columns holding a null into floats).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ...core.columns import require_columns_in_job
from ...core.errors import JobFailed
from ...core.tableio import TABLE_FILE, Table, open_table, table_metadata
from ...core.worker import JobContext, Output

BATCH_ROWS = 64 * 1024

# What "number" accepts in a text column (after trimming blanks and a leading '+').
INTEGER = r"^-?[0-9]+$"
NUMBER = r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _libraries() -> dict[str, str]:
    return {"pyarrow": pa.__version__}


def _write(path: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> int:
    """Write `batches` as a Parquet table with `schema`; the number of rows written."""
    rows = 0
    with pq.ParquetWriter(path, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


# -- transform/projection ----------------------------------------------------------------------
def project(ctx: JobContext) -> Output:
    """transform/projection: the columns `names` of the input table, in that order."""
    input_name, names = ctx.parameters["inputDatasetName"], ctx.parameters["names"]
    source = open_table(ctx.volume, ctx.parent(input_name))
    require_columns_in_job(source.schema_arrow.names, names, input_name)
    schema = pa.schema([source.schema_arrow.field(name) for name in names])
    batches = source.iter_batches(batch_size=BATCH_ROWS, columns=names)
    rows = _write(ctx.output_dir / TABLE_FILE, schema, batches)
    return Output(
        kind="table",
        format="parquet",
        metadata=table_metadata(schema, rows),
        libraries=_libraries(),
    )


# -- transform/dataType ------------------------------------------------------------------------
def _clean_text(values: pa.Array) -> pa.Array:
    """Text as "number" reads it: blanks trimmed, a leading '+' dropped, blank cells null."""
    trimmed = pc.replace_substring_regex(pc.utf8_trim_whitespace(values), r"^\+", "")
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _is_text(type_: pa.DataType) -> bool:
    return bool(pa.types.is_string(type_) or pa.types.is_large_string(type_))


def _is_number(type_: pa.DataType) -> bool:
    return bool(pa.types.is_integer(type_) or pa.types.is_floating(type_))


def _number_types(source: Table, columns: list[str]) -> dict[str, pa.DataType]:
    """Pass 1 over the text columns cast to "number": int64 for a column whose every value is
    an integer that fits, else float64. Fails at the first value that is not a number."""
    integer = dict.fromkeys(columns, True)
    offset = 0
    for batch in source.iter_batches(batch_size=BATCH_ROWS, columns=columns):
        for name in columns:
            raw = batch.column(name)
            values = _clean_text(raw)
            bad = pc.invert(pc.fill_null(pc.match_substring_regex(values, NUMBER), True))
            if pc.any(bad).as_py():
                index = pc.index(bad, True).as_py()
                raise JobFailed(
                    f"cannot cast column {name!r} to number: row {offset + index + 1} holds "
                    f"{raw[index].as_py()!r}, which is not a number; the table is unchanged"
                )
            if integer[name]:
                whole = pc.fill_null(pc.match_substring_regex(values, INTEGER), True)
                integer[name] = bool(pc.all(whole).as_py()) and _fits_int64(values)
        offset += batch.num_rows
    return {name: pa.int64() if integer[name] else pa.float64() for name in columns}


def _fits_int64(values: pa.Array) -> bool:
    try:
        pc.cast(values, pa.int64())
    except pa.ArrowInvalid:  # beyond the int64 range: a float column then
        return False
    return True


def _target_types(
    schema: pa.Schema, types: Mapping[str, str], source: Table
) -> dict[str, pa.DataType]:
    """The new type of every column to cast."""
    targets: dict[str, pa.DataType] = {}
    text_to_number = []
    for name, kind in types.items():
        current = schema.field(name).type
        if kind == "string":
            targets[name] = pa.string()
        elif _is_number(current):
            targets[name] = current  # already a number
        elif pa.types.is_boolean(current):
            targets[name] = pa.int64()  # true -> 1, false -> 0
        elif _is_text(current):
            text_to_number.append(name)
        else:
            raise JobFailed(f"cannot cast column {name!r} of type {current} to number")
    targets.update(_number_types(source, text_to_number) if text_to_number else {})
    return targets


def _cast_batch(
    batch: pa.RecordBatch, targets: Mapping[str, pa.DataType], schema: pa.Schema
) -> pa.RecordBatch:
    columns = []
    for name, values in zip(batch.schema.names, batch.columns, strict=True):
        target = targets.get(name)
        if target is not None and values.type != target:
            if _is_text(values.type) and target != pa.string():
                values = _clean_text(values)
            values = pc.cast(values, target)
        columns.append(values)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def cast_types(ctx: JobContext) -> Output:
    """transform/dataType: the step's own table with columns cast to number or string.

    "number": numeric columns stay as they are, booleans become 0/1, text is parsed (blank
    cells become null) into integers when every value is one, else floats. "string": values
    as text (`true`, `3`, `7.25`); null cells stay null."""
    name = ctx.name
    current = ctx.parent(name)
    types: dict[str, str] = ctx.parameters["types"]
    source = open_table(ctx.volume, current)
    schema = source.schema_arrow
    require_columns_in_job(schema.names, types, name)
    targets = _target_types(schema, types, source)
    new_schema = pa.schema([f.with_type(targets.get(f.name, f.type)) for f in schema])
    batches = (
        _cast_batch(batch, targets, new_schema)
        for batch in source.iter_batches(batch_size=BATCH_ROWS)
    )
    rows = _write(ctx.output_dir / TABLE_FILE, new_schema, batches)
    metadata: dict[str, Any] = table_metadata(new_schema, rows)
    metadata["castTypes"] = {**(current.get("castTypes") or {}), **types}
    return Output(kind="table", format="parquet", metadata=metadata, libraries=_libraries())
