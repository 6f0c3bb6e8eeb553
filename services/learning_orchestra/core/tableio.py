"""Table outputs inside jobs, read and written with pyarrow.

Runners that work on a table column by column or batch by batch (projection, dataType casts,
histogram, summary) open their input with `table_path` — the verified Parquet file, where
`formats.load_output` would load a whole pandas DataFrame — and record what they write with
`table_metadata` (`fields`, `types`, `rows`, in the words dataset/csv uses). Only jobs import
this module's pyarrow parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .artifacts import ArtifactVolume
from .errors import JobFailed
from .formats import verified_output
from .model import Doc

if TYPE_CHECKING:
    import pyarrow as pa

#: The file of a table output (format "parquet").
TABLE_FILE = "table.parquet"


def table_path(volume: ArtifactVolume, doc: Doc) -> Path:
    """The Parquet file of table step `doc`'s current output, once its signature checks;
    JobFailed when the step has no output or its output is not a table."""
    folder, manifest = verified_output(volume, doc)
    name = doc["name"]
    if manifest["format"] != "parquet":
        raise JobFailed(
            f"step {name!r} is not a table (its output is stored as {manifest['format']}): "
            "use a table such as a dataset/csv"
        )
    return folder / TABLE_FILE


def column_type(type_: pa.DataType) -> str:
    """A column's type as tables' `types` metadata names it: boolean, integer, float, string
    (any other Arrow type by its Arrow name)."""
    import pyarrow as pa

    if pa.types.is_boolean(type_):
        return "boolean"
    if pa.types.is_integer(type_):
        return "integer"
    if pa.types.is_floating(type_):
        return "float"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "string"
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
