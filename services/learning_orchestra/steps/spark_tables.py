"""Projection, dataType, histogram and summary of tables larger than a node, on Spark
(docs/spark.md, "Tables larger than a node").

With LO_SPARK_MASTER set, the runners of transform/projection, transform/dataType,
explore/histogram and explore/summary (steps/transform/jobs.py, steps/explore/jobs.py) hand an
input table of more than LO_SPARK_MIN_ROWS rows to the functions here. They are trusted server
code: the job's worker process starts a Spark driver of its own (toolkits/spark.start, in the
run's scratch folder) whose executors, on the standalone master's workers, read the input's
Parquet files and write the output's on the data volume (mounted at the same path there); the
driver stops when the run ends.

Results are those of the pyarrow path:

- projection and dataType write their table as parts, `table/part-NNNNN.parquet`
  (core/tables.py), in the input's row order: each input file is a scan of its own and the
  scans are concatenated (a scan keeps its file's row groups in order), nothing is shuffled, and
  part i holds Spark's partition i. Only the parts move into the output: the .crc files and
  temporary folders of Spark's writer are left behind and removed.
- dataType runs the pyarrow path's own functions (steps/transform/jobs.py: `read_numbers`,
  `cast_batch`) on the executors through `mapInArrow`, so a cast writes the same values (floats
  as text read "7.25", "22", "1e+20") and fails on the same kind of value, with the same
  message: at the first one in row order (where several columns fail in one row, the first
  listed), where pyarrow names the first it meets batch by batch.
- histogram counts exactly (one group-by of every listed column), as summary counts count,
  missing, unique, top and freq exactly; summary's mean and std add up the values in another
  order (equal to within 1e-9, relative), and its quartiles are Spark's approximate
  percentiles with relative error QUARTILE_ERROR: a value of the column whose rank is within
  QUARTILE_ERROR x count of the quartile's, where pyarrow interpolates between the two values
  around it. (Spark groups -0.0 with 0.0, which pyarrow counts apart.)

A table with columns Spark would not write back with their type (unsigned integers, dates and
times, nested types, ...) stays on the pyarrow path (`unsupported_columns`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.errors import JobFailed
from ..core.tableio import TABLE_FILE, Table, column_type, save_table, table_metadata
from ..core.tables import TABLE_PARTS, table_files
from ..core.worker import JobContext, Output
from ..toolkits.spark import SparkOptions, start, stop, user_class_archive
from .explore import jobs as explore_jobs
from .transform import jobs as transform_jobs

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

#: Relative error of summary's quartiles (Spark's percentile_approx accuracy is its inverse):
#: a quartile's rank is off by at most this fraction of the column's values, with a sketch of
#: a few thousand values per column and task, whatever the table's size.
QUARTILE_ERROR = 1e-3
#: Where Spark's writer writes, inside the output folder, before the parts move to TABLE_PARTS.
SPARK_OUTPUT = "_spark"
#: Spark's name of the file of task N: part-N-{job uuid}-c000.snappy.parquet
PART_NUMBER = re.compile(r"part-(\d+)")
#: Columns added to the rows of a dataType scan: the input file and the row in it.
FILE, ROW = "__lo_file", "__lo_row"
#: A dataType scan's answer for each text column and batch of rows (steps/transform/jobs.py
#: `read_numbers`).
SCAN_SCHEMA = pa.schema(
    [
        ("column", pa.int32()),
        ("integer", pa.bool_()),
        ("file", pa.int64()),
        ("row", pa.int64()),
        ("value", pa.string()),
    ]
)


def _kept(type_: pa.DataType) -> bool:
    """Whether Spark reads a column of `type_` and writes it back with the same Arrow type."""
    return bool(
        pa.types.is_boolean(type_)
        or pa.types.is_signed_integer(type_)
        or pa.types.is_float32(type_)
        or pa.types.is_float64(type_)
        or pa.types.is_string(type_)
    )


def unsupported_columns(schema: pa.Schema) -> list[str]:
    """The columns of `schema` whose type Spark would not keep (a table with any stays on the
    pyarrow path)."""
    return [field.name for field in schema if not _kept(field.type)]


# -- the Spark session of a run ----------------------------------------------------------------
@contextmanager
def _session(ctx: JobContext, operation: str) -> Iterator[SparkSession]:
    """A Spark driver of this run's own, stopped when the block ends."""
    from py4j.protocol import Py4JJavaError
    from pyspark import cloudpickle
    from pyspark.errors.exceptions.captured import CapturedException

    # the executors run this module's functions and the pyarrow path's: sent by value, so
    # they need pyarrow but not this package
    for module in (sys.modules[__name__], transform_jobs):
        cloudpickle.register_pickle_by_value(module)
    logging.getLogger("py4j").setLevel(logging.WARNING)  # a line per call to the JVM
    options = SparkOptions.from_settings(ctx.settings)
    options = dataclasses.replace(options, class_archive=user_class_archive())
    spark = start(options, ctx.scratch_dir, f"{operation} {ctx.name}")
    try:
        spark.conf.set("spark.sql.caseSensitive", "true")  # "Age" and "age" are two columns
        yield spark
    except (CapturedException, Py4JJavaError) as exc:  # its text needs the JVM, about to stop
        log.exception("Spark failed")
        raise JobFailed(f"Spark failed: {_reason(str(exc))}") from None
    finally:
        stop(spark)


#: A line naming an exception: "pyarrow.lib.ArrowInvalid: ...", "org.apache.spark.X: ...".
EXCEPTION_LINE = re.compile(r"^:?\s*((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Invalid)): ")
JVM_PACKAGES = ("org.", "java.", "scala.", "py4j.")


def _reason(text: str) -> str:
    """What a Spark error says went wrong: the first exception of Python's (from a task on an
    executor) it names, else the first of the JVM's."""
    named = [line.strip().lstrip(": ") for line in text.splitlines() if EXCEPTION_LINE.match(line)]
    python = [line for line in named if not line.startswith(JVM_PACKAGES)]
    found = python or named or [line for line in text.splitlines() if line.strip()]
    return found[0][:1000] if found else "no message"


def _positional(names: list[str]) -> list[str]:
    """Plain names for columns (c0, c1, ...): `mapInArrow` cannot name a column whose name
    holds a backtick, and an expression reads a dot as a field of a struct."""
    return [f"c{index}" for index in range(len(names))]


def _column(name: str) -> Column:
    """Column `name` of a DataFrame, whatever characters its name holds (dots, backticks)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _read(
    spark: SparkSession,
    location: Path,
    columns: list[str] | None = None,
    *,
    ordered: bool,
    positions: bool = False,
) -> DataFrame:
    """The table at `location` (its `columns`, all when None). `ordered`: its partitions hold
    the rows in the table's order, each file a scan of its own; `positions`: with columns
    FILE and ROW, where each row is (a file's index, the row's index in it)."""
    from pyspark.sql import functions as F

    files = [str(path) for path in table_files(location)]
    selected = [_column(name) for name in columns] if columns is not None else ["*"]
    if not ordered:
        return spark.read.parquet(*files).select(*selected)
    schema = spark.read.parquet(files[0]).schema  # the same in every part (core/tables.py)
    scans = []
    for index, path in enumerate(files):
        where = [F.lit(index).cast("long").alias(FILE), F.col("_metadata.row_index").alias(ROW)]
        scans.append(
            spark.read.schema(schema).parquet(path).select(*selected, *(where if positions else []))
        )
    return functools.reduce(lambda first, second: first.union(second), scans)


def _spark_parts(folder: Path) -> list[Path]:
    """The Parquet files Spark's writer left in `folder`, in partition order."""

    def partition(path: Path) -> tuple[int, str]:
        number = PART_NUMBER.match(path.name)
        return int(number.group(1)) if number else -1, path.name

    return sorted(folder.glob("part-*.parquet"), key=partition)


def _write_parts(frame: DataFrame, folder: Path) -> dict[str, Any]:
    """Write `frame` as the table of output folder `folder`, in parts in partition order; its
    `table_metadata`."""
    written = folder / SPARK_OUTPUT
    frame.write.parquet(str(written))
    target = folder / TABLE_PARTS
    target.mkdir()
    for index, part in enumerate(_spark_parts(written)):
        part.rename(target / f"part-{index:05d}.parquet")
    shutil.rmtree(written)  # .crc files, and an empty _temporary
    table = Table(target)
    return table_metadata(table.schema_arrow, table.num_rows)


def _libraries() -> dict[str, str]:
    import pyspark

    return {"pyspark": pyspark.__version__, "pyarrow": pa.__version__}


def _table_output(metadata: dict[str, Any], engine_key: str = "engine") -> Output:
    """A table output whose metadata says Spark wrote it (a cast says so in `castEngine`: its
    `engine` is the step's own runner's, see steps/transform/jobs.py)."""
    return Output(
        kind="table",
        format="parquet",
        metadata={**metadata, engine_key: "spark"},
        libraries=_libraries(),
    )


# -- transform/projection ----------------------------------------------------------------------
def project(ctx: JobContext, location: Path, names: list[str]) -> Output:
    """transform/projection on Spark: the columns `names`, in that order, rows in order."""
    with _session(ctx, "projection") as spark:
        frame = _read(spark, location, names, ordered=True)
        metadata = _write_parts(frame, ctx.output_dir)
    return _table_output(metadata)


# -- transform/dataType ------------------------------------------------------------------------
def _scan_numbers(
    columns: list[str], batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """On an executor: what `read_numbers` says of each text column in each batch of rows."""
    for batch in batches:
        answers = []
        for index, name in enumerate(columns):
            raw = batch.column(name)
            bad, integer = transform_jobs.read_numbers(raw)
            where = {} if bad is None else {
                "file": batch.column(FILE)[bad].as_py(),
                "row": batch.column(ROW)[bad].as_py(),
                "value": raw[bad].as_py(),
            }  # fmt: skip
            answers.append({"column": index, "integer": integer, **where})
        yield pa.RecordBatch.from_pylist(answers, schema=SCAN_SCHEMA)


def _number_types(
    spark: SparkSession, location: Path, source: Table, columns: list[str]
) -> dict[str, pa.DataType]:
    """Pass 1 of a cast on Spark (as steps/transform/jobs.py `_number_types`): int64 for a text
    column whose every value is an integer that fits, else float64; fails at the first value
    in row order that is not a number."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    plain = _positional(columns)
    frame = _read(spark, location, columns, ordered=True, positions=True)
    scanned = frame.toDF(*plain, FILE, ROW).mapInArrow(
        functools.partial(_scan_numbers, plain), from_arrow_schema(SCAN_SCHEMA)
    )
    first_bad = F.when(F.col("file").isNotNull(), F.struct("file", "row", "column", "value"))
    found = (
        scanned.groupBy("column")
        .agg(F.bool_and("integer").alias("integer"), F.min(first_bad).alias("bad"))
        .collect()
    )
    bad = min((row["bad"] for row in found if row["bad"] is not None), default=None)
    if bad is not None:
        before = sum(part.metadata.num_rows for part in source.files[: bad["file"]])
        name = columns[bad["column"]]
        raise transform_jobs.not_a_number(name, before + bad["row"] + 1, bad["value"])
    integer = {columns[row["column"]]: row["integer"] for row in found}
    return {name: pa.int64() if integer.get(name, True) else pa.float64() for name in columns}


def _cast_batches(
    targets: Mapping[str, pa.DataType], schema: pa.Schema, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """On an executor: the rows with their columns cast, as the pyarrow path casts them."""
    for batch in batches:
        yield transform_jobs.cast_batch(batch, targets, schema)


def cast(ctx: JobContext, location: Path, source: Table, types: Mapping[str, str]) -> Output:
    """transform/dataType on Spark: the table with columns cast, rows in order."""
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = source.schema_arrow
    with _session(ctx, "dataType") as spark:
        number_types = functools.partial(_number_types, spark, location, source)
        targets = transform_jobs.target_types(schema, types, number_types)
        plain = _positional(schema.names)
        renamed = dict(zip(schema.names, plain, strict=True))
        new_schema = pa.schema(
            [f.with_name(renamed[f.name]) for f in transform_jobs.cast_schema(schema, targets)]
        )
        casting = functools.partial(
            _cast_batches, {renamed[name]: type_ for name, type_ in targets.items()}, new_schema
        )
        frame = _read(spark, location, ordered=True).toDF(*plain)
        cast = frame.mapInArrow(casting, from_arrow_schema(new_schema)).toDF(*schema.names)
        metadata = _write_parts(cast, ctx.output_dir)
    return _table_output(metadata, "castEngine")


# -- explore/histogram -------------------------------------------------------------------------
def _present(name: str, type_: pa.DataType) -> Column:
    """Column `name` with floating-point NaN as missing (null), as the pyarrow path reads it."""
    from pyspark.sql import functions as F

    column = _column(name)
    if pa.types.is_floating(type_):
        return F.when(~F.isnan(column), column)
    return column


def _part_batches(folder: Path) -> Iterator[pa.RecordBatch]:
    """The rows Spark wrote to `folder`, in partition order."""
    for part in _spark_parts(folder):
        yield from pq.ParquetFile(part).iter_batches()


def histogram(ctx: JobContext, location: Path, source: Table, names: list[str]) -> Output:
    """explore/histogram on Spark: one group-by of (column, value) over every listed column,
    sorted in one task and written to the run's scratch folder, then read back here in order
    (memory bounded by a batch) and written as the step's table with the values cast to one
    type as pyarrow casts them. A value keeps its column's type through Spark: each type has a
    slot of its own in the grouped cells, null in the others."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_type

    types = [source.schema_arrow.field(name).type for name in names]
    common = explore_jobs.value_type(types)
    kinds = list(dict.fromkeys(types))
    slots = [f"v{index}" for index in range(len(kinds))]
    counted = ctx.scratch_dir / "histogram"
    with _session(ctx, "histogram") as spark:
        frame = _read(spark, location, names, ordered=False)
        cells = F.explode(
            F.array(
                *[
                    F.struct(
                        F.lit(index).alias("column"),
                        *[
                            (
                                _present(name, type_)
                                if kind == type_
                                else F.lit(None).cast(from_arrow_type(kind))
                            ).alias(slot)
                            for kind, slot in zip(kinds, slots, strict=True)
                        ],
                    )
                    for index, (name, type_) in enumerate(zip(names, types, strict=True))
                ]
            )
        )
        (
            frame.select(cells.alias("cell"))
            .select("cell.*")
            .groupBy("column", *slots)
            .count()
            .coalesce(1)
            .sortWithinPartitions("column", *[F.col(slot).asc_nulls_last() for slot in slots])
            .write.parquet(str(counted))
        )
    schema = pa.schema([("field", pa.string()), ("value", common), ("count", pa.int64())])
    rows = 0
    with pq.ParquetWriter(ctx.output_dir / TABLE_FILE, schema) as writer:
        for batch in _part_batches(counted):
            columns = batch.column("column")
            for index in pc.unique(columns).to_pylist():  # ascending: the rows are sorted
                mine = pc.equal(columns, index)
                slot = slots[kinds.index(types[index])]
                values = pc.cast(batch.column(slot).filter(mine), common)
                field = pa.array([names[index]] * len(values), pa.string())
                counts = batch.column("count").filter(mine)
                writer.write_batch(pa.record_batch([field, values, counts], schema))
                rows += len(values)
    return _table_output(table_metadata(schema, rows))


# -- explore/summary ---------------------------------------------------------------------------
def summarize(ctx: JobContext, location: Path, source: Table) -> Output:
    """explore/summary on Spark: one pass for counts, means, deviations, extremes and
    quartiles of every column, and one group-by of (column, value) for each column's distinct
    values and its most frequent one. Values are grouped as text: Spark's text of a number
    (Java's) tells every two apart, and the columns whose `top` is shown (booleans and text)
    read as pyarrow writes them ("true", "false")."""
    from pyspark.sql import functions as F

    schema = source.schema_arrow
    total = source.num_rows
    numeric = [explore_jobs.is_numeric(field.type) for field in schema]
    names = _positional(schema.names)
    accuracy = round(1 / QUARTILE_ERROR)
    with _session(ctx, "summary") as spark:
        quartiles = F.array(*[F.lit(q) for q in explore_jobs.QUARTILES])
        frame = _read(spark, location, ordered=False).select(
            *[_present(f.name, f.type).alias(c) for f, c in zip(schema, names, strict=True)]
        )
        stats: list[Column] = []
        for name, is_number in zip(names, numeric, strict=True):
            stats.append(F.count(name).alias(f"{name}_count"))
            if is_number:
                stats += [
                    F.avg(name).alias(f"{name}_mean"),
                    F.stddev_samp(name).alias(f"{name}_std"),  # the sample's, as pyarrow's
                    F.min(name).alias(f"{name}_min"),
                    F.max(name).alias(f"{name}_max"),
                    F.percentile_approx(name, quartiles, accuracy).alias(f"{name}_q"),
                ]
        found = frame.agg(*stats).first()
        assert found is not None  # an aggregate without grouping has one row
        cells = F.explode(
            F.array(
                *[
                    F.struct(F.lit(i).alias("column"), F.col(c).cast("string").alias("value"))
                    for i, c in enumerate(names)
                ]
            )
        )
        most = F.struct((-F.col("count")).alias("freq"), F.col("value").alias("top"))
        distinct = {
            row["column"]: row
            for row in frame.select(cells.alias("cell"))
            .select("cell.column", "cell.value")
            .where(F.col("value").isNotNull())
            .groupBy("column", "value")
            .count()
            .groupBy("column")
            .agg(F.count("*").alias("unique"), F.min(most).alias("most"))
            .collect()
        }
        rows = []
        for index, (field, name, is_number) in enumerate(zip(schema, names, numeric, strict=True)):
            count = found[f"{name}_count"]
            values = distinct.get(index)
            row: dict[str, Any] = dict.fromkeys(explore_jobs.SUMMARY_SCHEMA.names)
            row.update(
                field=field.name,
                type=column_type(field.type),
                count=count,
                missing=total - count,
                unique=values["unique"] if values else 0,
            )
            if is_number:
                q = found[f"{name}_q"] or [None] * len(explore_jobs.QUARTILES)
                row.update(
                    {
                        "mean": found[f"{name}_mean"],
                        "std": found[f"{name}_std"],
                        "min": found[f"{name}_min"],
                        "25%": q[0],
                        "50%": q[1],
                        "75%": q[2],
                        "max": found[f"{name}_max"],
                    }
                )
            elif values:
                row.update(top=values["most"]["top"], freq=-values["most"]["freq"])
            rows.append(row)
    table = pa.Table.from_pylist(rows, schema=explore_jobs.SUMMARY_SCHEMA)
    return _table_output(save_table(ctx.output_dir, table))
