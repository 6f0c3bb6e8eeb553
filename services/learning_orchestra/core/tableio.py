"""Table outputs inside jobs, read and written with pyarrow.

Runners that work on a table column by column or batch by batch (projection, dataType casts,
histogram, summary) open their input with `open_table` — the verified table, one Parquet file
or several parts (core/tables.py describes the layout), where `formats.load_output` would load
a whole pandas DataFrame — and record what they write with `table_metadata` (`fields`,
`types`, `rows`, in the words dataset/csv uses). Jobs write one file, TABLE_FILE. Only jobs
import this module's pyarrow parts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .artifacts import ArtifactVolume
from .errors import JobFailed
from .formats import verified_output
from .model import Doc
from .tables import TABLE_FILE, table_files, table_location

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["TABLE_FILE", "Table", "open_table", "save_table", "table_metadata", "table_path"]


def table_path(volume: ArtifactVolume, doc: Doc) -> Path:
    """Where the rows of table step `doc`'s current output are, once its signature checks:
    its Parquet file, or the folder of its parts (see core/tables.py). JobFailed when the step
    has no output or its output is not a table."""
    folder, manifest = verified_output(volume, doc)
    name = doc["name"]
    if manifest["format"] != "parquet":
        raise JobFailed(
            f"step {name!r} is not a table (its output is stored as {manifest['format']}): "
            "use a table such as a dataset/csv"
        )
    return table_location(folder)


class Table:
    """A stored table, one Parquet file or several parts read as one, with the part of
    `pyarrow.parquet.ParquetFile`'s interface that runners use."""

    def __init__(self, location: Path) -> None:
        import pyarrow.parquet as pq

        self.files = [pq.ParquetFile(f) for f in table_files(location)]
        if not self.files:
            raise JobFailed("the table's files are missing from the data volume")
        self.schema_arrow: pa.Schema = self.files[0].schema_arrow

    @property
    def num_rows(self) -> int:
        return sum(f.metadata.num_rows for f in self.files)

    def iter_batches(
        self, batch_size: int = 64 * 1024, columns: list[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The rows in order, `batch_size` at most at a time."""
        for part in self.files:
            yield from part.iter_batches(batch_size=batch_size, columns=columns)

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """The whole table (or `columns` of it) in memory."""
        import pyarrow as pa

        tables = [part.read(columns=columns) for part in self.files]
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def open_table(volume: ArtifactVolume, doc: Doc) -> Table:
    """Table step `doc`'s current output, once its signature checks (see `table_path`)."""
    return Table(table_path(volume, doc))


def column_type(type_: pa.DataType) -> str:
    """A column's type as tables' `types` metadata names it: boolean, integer, float, string,
    list<...> of those (any other Arrow type by its Arrow name)."""
    import pyarrow as pa

    if pa.types.is_boolean(type_):
        return "boolean"
    if pa.types.is_integer(type_):
        return "integer"
    if pa.types.is_floating(type_):
        return "float"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "string"
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):  # Spark's vectors
        return f"list<{column_type(type_.value_type)}>"
    return str(type_)


def table_metadata(schema: pa.Schema, rows: int) -> dict[str, Any]:
    """The metadata every table output records: `fields` (in order), `types`, `rows`."""
    return {
        "fields": list(schema.names),
        "types": {field.name: column_type(field.type) for field in schema},
        "rows": rows,
    }


def save_table(folder: Path, table: pa.Table) -> dict[str, Any]:
    """Write `table` as the output in `folder`; its `table_metadata`."""
    import pyarrow.parquet as pq

    pq.write_table(table, folder / TABLE_FILE)
    return table_metadata(table.schema, table.num_rows)
