"""Saving and loading a step's output inside a job, in the output's natural format.

    pandas DataFrame          table.parquet   format "parquet"  (kind "table")
    numpy array               value.npy       format "npy"      (kind "array")
    JSON-able value           value.json      format "json"     (kind "object")
    anything else             object.pkl      format "cloudpickle" (kind "object")

Only workers call this: it may import pandas or unpickle, which the API process never does.
Loading verifies the signed manifest first (`ArtifactVolume.verify`). Runners that work on
tables column by column or batch by batch read them with pyarrow through `table_path` and
describe what they write with `table_metadata`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .artifacts import ArtifactVolume, TamperedArtifact
from .errors import JobFailed
from .model import Doc

if TYPE_CHECKING:
    import pyarrow as pa

TABLE_FILE = "table.parquet"


def save_output(folder: Path, value: Any) -> tuple[str, str]:
    """Write `value` into `folder` in its natural format; (kind, format) for the manifest."""
    module = type(value).__module__
    if module.startswith("pandas") and type(value).__name__ == "DataFrame":
        frame = value.copy()
        frame.columns = [str(c) for c in frame.columns]
        frame.to_parquet(folder / "table.parquet", index=False)
        return "table", "parquet"
    if module == "numpy" and type(value).__name__ == "ndarray" and value.dtype != object:
        import numpy as np

        np.save(folder / "value.npy", value, allow_pickle=False)
        return "array", "npy"
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        import cloudpickle

        with (folder / "object.pkl").open("wb") as handle:
            cloudpickle.dump(value, handle)
        return "object", "cloudpickle"
    (folder / "value.json").write_text(text)
    return "object", "json"


def _verified(volume: ArtifactVolume, doc: Doc) -> tuple[Path, dict[str, Any]]:
    """The folder and manifest of step `doc`'s current output, once its signature checks."""
    name, run = doc["name"], doc.get("_artifact")
    if run is None:
        raise JobFailed(f"step {name!r} has no output to use (status {doc['status']})")
    try:
        manifest = volume.verify(name, run)
    except TamperedArtifact as exc:
        raise JobFailed(f"refusing to load {name!r}: {exc}") from None
    return volume.artifact_dir(name, run), manifest


def table_path(volume: ArtifactVolume, doc: Doc) -> Path:
    """The verified Parquet file of table step `doc`; JobFailed if its output is no table."""
    folder, manifest = _verified(volume, doc)
    if manifest["format"] != "parquet":
        raise JobFailed(
            f"step {doc['name']!r} is not a table (its output is stored as "
            f"{manifest['format']}): use a table such as a dataset/csv"
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


def load_output(volume: ArtifactVolume, doc: Doc) -> Any:
    """The output of step `doc`: a DataFrame for tables, an open binary file for raw files,
    the value for JSON, and the deserialised object for pickled formats."""
    name = doc["name"]
    folder, manifest = _verified(volume, doc)
    fmt = manifest["format"]
    if fmt == "parquet":
        import pandas as pd

        return pd.read_parquet(folder / TABLE_FILE)
    if fmt == "raw":
        (filename,) = manifest["files"]
        # seekable, at 0, and `.name` is the real path: numpy.load and path-taking code work
        return (folder / filename).open("rb")
    if fmt == "json":
        return json.loads((folder / "value.json").read_text())
    if fmt == "npy":
        import numpy as np

        return np.load(folder / "value.npy", allow_pickle=False)
    if fmt == "joblib":
        import joblib

        return joblib.load(folder / "object.joblib")
    if fmt == "cloudpickle":
        import cloudpickle

        with (folder / "object.pkl").open("rb") as handle:
            return cloudpickle.load(handle)
    raise JobFailed(f"step {name!r} is stored as {fmt!r}, which this step cannot load")


def item(value: Any, key: str, name: str) -> Any:
    """`$name.key`: item `key` of a dict output."""
    if not isinstance(value, dict):
        raise JobFailed(f"${name}.{key}: the output of {name!r} is not a dict")
    if key not in value:
        keys = ", ".join(map(str, value)) or "none"
        raise JobFailed(f"${name}.{key}: the output of {name!r} has no key {key!r} (keys: {keys})")
    return value[key]
