"""Transform jobs, run in worker processes: projection and LO's dataType cast.

Both stream the input table batch by batch (pyarrow), so memory stays bounded by a batch
whatever the table's size, and keep every column's exact type (no round trip through pandas,
which turns integer columns holding a null into floats). With LO_SPARK_MASTER set, a table of
more than LO_SPARK_MIN_ROWS rows goes to Spark instead (`on_spark`, steps/spark_tables.py),
which runs this module's cast functions on its executors; every output records its `engine`
(a cast: `castEngine`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ...core.columns import require_columns_in_job
from ...core.errors import JobFailed
from ...core.tableio import TABLE_FILE, Table, table_metadata, table_path
from ...core.worker import JobContext, Output

log = logging.getLogger(__name__)

BATCH_ROWS = 64 * 1024

# What "number" accepts in a text column (after trimming blanks and a leading '+').
INTEGER = r"^-?[0-9]+$"
NUMBER = r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _libraries() -> dict[str, str]:
    return {"pyarrow": pa.__version__}


def on_spark(ctx: JobContext, source: Table) -> bool:
    """Whether this run's input table goes to Spark (steps/spark_tables.py): LO_SPARK_MASTER
    is set, the table has more rows than LO_SPARK_MIN_ROWS, and Spark writes its column types
    back as they are (otherwise pyarrow reads it, as without a master)."""
    settings = ctx.settings
    if not settings.spark_master or source.num_rows <= settings.spark_min_rows:
        return False
    from ..spark_tables import unsupported_columns

    unsupported = unsupported_columns(source.schema_arrow)
    if unsupported:
        log.info("not on Spark: Spark would change the type of columns %s", unsupported)
    return not unsupported


def open_input(ctx: JobContext, name: str) -> tuple[Path, Table]:
    """Where parent table `name`'s rows are (see core/tables.py), and the table there."""
    location = table_path(ctx.volume, ctx.parent(name))
    return location, Table(location)


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
    location, source = open_input(ctx, input_name)
    require_columns_in_job(source.schema_arrow.names, names, input_name)
    if on_spark(ctx, source):
        from ..spark_tables import project as project_on_spark

        return project_on_spark(ctx, location, names)
    schema = pa.schema([source.schema_arrow.field(name) for name in names])
    batches = source.iter_batches(batch_size=BATCH_ROWS, columns=names)
    rows = _write(ctx.output_dir / TABLE_FILE, schema, batches)
    return Output(
        kind="table",
        format="parquet",
        metadata={**table_metadata(schema, rows), "engine": "pyarrow"},
        libraries=_libraries(),
    )


# -- transform/dataType ------------------------------------------------------------------------
def clean_text(values: pa.Array) -> pa.Array:
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
            bad, integer[name] = read_numbers(raw, integer[name])
            if bad is not None:
                raise not_a_number(name, offset + bad + 1, raw[bad].as_py())
        offset += batch.num_rows
    return {name: pa.int64() if integer[name] else pa.float64() for name in columns}


def read_numbers(raw: pa.Array, integer: bool = True) -> tuple[int | None, bool]:
    """What pass 1 learns from some values of a text column: the index of the first that is
    not a number (None: every one is), and, when `integer` (still possible), whether every one
    is an integer that fits int64."""
    values = clean_text(raw)
    bad = pc.invert(pc.fill_null(pc.match_substring_regex(values, NUMBER), True))
    if pc.any(bad).as_py():
        return pc.index(bad, True).as_py(), False
    if integer:
        whole = pc.fill_null(pc.match_substring_regex(values, INTEGER), True)
        integer = bool(pc.all(whole).as_py()) and fits_int64(values)
    return None, integer


def not_a_number(name: str, row: int, value: str) -> JobFailed:
    """The failure of a cast to number at `value`, in row `row` (counted from 1)."""
    return JobFailed(
        f"cannot cast column {name!r} to number: row {row} holds {value!r}, which is not a "
        "number; the table is unchanged"
    )


def fits_int64(values: pa.Array) -> bool:
    try:
        pc.cast(values, pa.int64())
    except pa.ArrowInvalid:  # beyond the int64 range: a float column then
        return False
    return True


#: Pass 1 of a cast (`_number_types` or Spark's): the type of each text column cast to number.
NumberTypes = Callable[[list[str]], dict[str, pa.DataType]]


def target_types(
    schema: pa.Schema, types: Mapping[str, str], number_types: NumberTypes
) -> dict[str, pa.DataType]:
    """The new type of every column to cast; `number_types` reads the text columns cast to
    number."""
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
    targets.update(number_types(text_to_number) if text_to_number else {})
    return targets


def cast_schema(schema: pa.Schema, targets: Mapping[str, pa.DataType]) -> pa.Schema:
    """`schema` with the cast columns' new types."""
    return pa.schema([f.with_type(targets.get(f.name, f.type)) for f in schema])


def cast_batch(
    batch: pa.RecordBatch, targets: Mapping[str, pa.DataType], schema: pa.Schema
) -> pa.RecordBatch:
    columns = []
    for name, values in zip(batch.schema.names, batch.columns, strict=True):
        target = targets.get(name)
        if target is not None and values.type != target:
            if _is_text(values.type) and target != pa.string():
                values = clean_text(values)
            values = pc.cast(values, target)
        columns.append(values)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _cast(ctx: JobContext, source: Table, types: Mapping[str, str]) -> Output:
    """The pyarrow path of a cast: two passes over `source`, batch by batch."""
    schema = source.schema_arrow
    targets = target_types(schema, types, lambda columns: _number_types(source, columns))
    new_schema = cast_schema(schema, targets)
    batches = (
        cast_batch(batch, targets, new_schema)
        for batch in source.iter_batches(batch_size=BATCH_ROWS)
    )
    rows = _write(ctx.output_dir / TABLE_FILE, new_schema, batches)
    metadata = {**table_metadata(new_schema, rows), "castEngine": "pyarrow"}
    return Output(kind="table", format="parquet", metadata=metadata, libraries=_libraries())


def cast_types(ctx: JobContext) -> Output:
    """transform/dataType: the step's own table with columns cast to number or string.

    "number": numeric columns stay as they are, booleans become 0/1, text is parsed (blank
    cells become null) into integers when every value is one, else floats. "string": values
    as text (`true`, `3`, `7.25`); null cells stay null. The metadata's `castEngine` says
    which engine cast (`engine` is left to the step's own runner)."""
    name = ctx.name
    current = ctx.parent(name)
    types: dict[str, str] = ctx.parameters["types"]
    location, source = open_input(ctx, name)
    require_columns_in_job(source.schema_arrow.names, types, name)
    if on_spark(ctx, source):
        from ..spark_tables import cast as cast_on_spark

        output = cast_on_spark(ctx, location, source, types)
    else:
        output = _cast(ctx, source, types)
    output.metadata["castTypes"] = {**(current.get("castTypes") or {}), **types}
    return output
