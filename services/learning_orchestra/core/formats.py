"""Saving and loading a step's output inside a job, in the output's natural format.

    pandas DataFrame          table.parquet   format "parquet"  (kind "table")
    numpy array               value.npy       format "npy"      (kind "array")
    JSON-able value           value.json      format "json"     (kind "object")
    anything else             object.pkl      format "cloudpickle" (kind "object")

Only workers call this: it may import pandas or unpickle, which the API process never does.
Loading verifies the signed manifest first (`ArtifactVolume.verify`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .artifacts import ArtifactVolume, TamperedArtifact
from .errors import JobFailed
from .model import Doc


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


def load_output(volume: ArtifactVolume, doc: Doc) -> Any:
    """The output of step `doc`: a DataFrame for tables, an open binary file for raw files,
    the value for JSON, and the deserialised object for pickled formats."""
    name, run = doc["name"], doc.get("_artifact")
    if run is None:
        raise JobFailed(f"step {name!r} has no output to use (status {doc['status']})")
    try:
        manifest = volume.verify(name, run)
    except TamperedArtifact as exc:
        raise JobFailed(f"refusing to load {name!r}: {exc}") from None
    folder = volume.artifact_dir(name, run)
    fmt = manifest["format"]
    if fmt == "parquet":
        import pandas as pd

        return pd.read_parquet(folder / "table.parquet")
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
