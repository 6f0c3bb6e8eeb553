"""Loading a step's stored output inside a job, by the format its manifest records.

Only workers call this: it may import pandas or unpickle, which the API process never does.
Everything is verified against the signed manifest first (`ArtifactVolume.verify`).
"""

from __future__ import annotations

import json
from typing import Any

from .artifacts import ArtifactVolume, TamperedArtifact
from .errors import JobFailed
from .model import Doc


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
