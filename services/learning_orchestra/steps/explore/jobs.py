"""Explore jobs, run in worker processes: histogram and summary of a table.

Both read the input one column at a time (pyarrow), so memory is bounded by the largest
column, not the table; results are small tables written as the step's output. With
LO_SPARK_MASTER set, a table of more than LO_SPARK_MIN_ROWS rows is read by Spark instead
(steps/spark_tables.py); the metadata's `engine` says which did.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ...core.columns import require_columns_in_job
from ...core.tableio import Table, column_type, save_table
from ...core.worker import JobContext, Output
from ..transform.jobs import on_spark, open_input

QUARTILES = (0.25, 0.5, 0.75)

SUMMARY_SCHEMA = pa.schema(
    [
        ("field", pa.string()),
        ("type", pa.string()),
        ("count", pa.int64()),
        ("missing", pa.int64()),
        ("unique", pa.int64()),
        ("mean", pa.float64()),
        ("std", pa.float64()),
        ("min", pa.float64()),
        ("25%", pa.float64()),
        ("50%", pa.float64()),
        ("75%", pa.float64()),
        ("max", pa.float64()),
        ("top", pa.string()),
        ("freq", pa.int64()),
    ]
)


def _column(table: Table, name: str) -> pa.ChunkedArray:
    """One column of `table`, with floating-point NaN read as missing (null)."""
    values = table.read(columns=[name]).column(0)
    if pa.types.is_floating(values.type):
        values = pc.if_else(pc.is_nan(values), pa.scalar(None, values.type), values)
    return values


def is_numeric(type_: pa.DataType) -> bool:
    return bool(pa.types.is_integer(type_) or pa.types.is_floating(type_))


def _output(ctx: JobContext, table: pa.Table) -> Output:
    """`table` written as the step's output."""
    return Output(
        kind="table",
        format="parquet",
        metadata={**save_table(ctx.output_dir, table), "engine": "pyarrow"},
        libraries={"pyarrow": pa.__version__},
    )


# -- explore/histogram -------------------------------------------------------------------------
def value_type(types: list[pa.DataType]) -> pa.DataType:
    """One type for the `value` column: the columns' common type; float64 for a mix of numeric
    types; otherwise (e.g. text and numbers) string."""
    if all(t == types[0] for t in types):
        return types[0]
    if all(is_numeric(t) for t in types):
        return pa.float64()
    return pa.string()


def _counts(values: pa.ChunkedArray) -> pa.Table:
    """`value`, `count` of a column: values in ascending order, missing (null) last."""
    counted = pc.value_counts(values)
    table = pa.table({"value": counted.field("values"), "count": counted.field("counts")})
    return table.sort_by([("value", "ascending")])


def histogram(ctx: JobContext) -> Output:
    """explore/histogram: rows `{field, value, count}`, the columns in the order listed."""
    input_name, names = ctx.parameters["inputDatasetName"], ctx.parameters["names"]
    location, source = open_input(ctx, input_name)
    require_columns_in_job(source.schema_arrow.names, names, input_name)
    if on_spark(ctx, source):
        from ..spark_tables import histogram as histogram_on_spark

        return histogram_on_spark(ctx, location, source, names)
    parts = [_counts(_column(source, name)) for name in names]
    common = value_type([part.schema.field("value").type for part in parts])
    fields, values, counts = [], [], []
    for name, part in zip(names, parts, strict=True):
        fields.append(pa.array([name] * part.num_rows, pa.string()))
        values.append(pc.cast(part.column("value"), common))
        counts.append(part.column("count"))
    table = pa.table(
        {
            "field": pa.chunked_array(fields, pa.string()),
            "value": pa.chunked_array([c for v in values for c in v.chunks], common),
            "count": pa.chunked_array([c for v in counts for c in v.chunks], pa.int64()),
        }
    )
    return _output(ctx, table)


# -- explore/summary ---------------------------------------------------------------------------
def _scalar(value: pa.Scalar) -> Any:
    return value.as_py() if value.is_valid else None


def _describe(name: str, values: pa.ChunkedArray) -> dict[str, Any]:
    """One summary row: numbers for a numeric column, the most frequent value for others."""
    missing = values.null_count
    row: dict[str, Any] = dict.fromkeys(SUMMARY_SCHEMA.names)
    row.update(
        field=name,
        type=column_type(values.type),
        count=len(values) - missing,
        missing=missing,
        unique=pc.count_distinct(values).as_py(),
    )
    if is_numeric(values.type):
        low_high = pc.min_max(values)
        quartiles = pc.quantile(values, q=list(QUARTILES)).to_pylist()
        row.update(
            {
                "mean": _scalar(pc.mean(values)),
                "std": _scalar(pc.stddev(values, ddof=1)),  # the sample's, as pandas gives
                "min": _scalar(low_high["min"]),
                "25%": quartiles[0],
                "50%": quartiles[1],
                "75%": quartiles[2],
                "max": _scalar(low_high["max"]),
            }
        )
    elif row["count"]:
        counted = pc.value_counts(values.drop_null())
        table = pa.table({"value": counted.field("values"), "count": counted.field("counts")})
        top = table.sort_by([("count", "descending"), ("value", "ascending")]).slice(0, 1)
        row["top"] = pc.cast(top.column("value"), pa.string())[0].as_py()
        row["freq"] = top.column("count")[0].as_py()
    return row


def summarize(ctx: JobContext) -> Output:
    """explore/summary: one row per column of the input, in the table's column order."""
    input_name = ctx.parameters["inputDatasetName"]
    location, source = open_input(ctx, input_name)
    if on_spark(ctx, source):
        from ..spark_tables import summarize as summarize_on_spark

        return summarize_on_spark(ctx, location, source)
    names = source.schema_arrow.names
    rows = [_describe(name, _column(source, name)) for name in names]
    return _output(ctx, pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA))
