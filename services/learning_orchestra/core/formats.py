"""Saving and loading a step's output inside a job, in the output's natural format.

    pandas DataFrame          table.parquet   format "parquet"  (kind "table"); a table of
                              several parts (table/part-*.parquet, core/tables.py) loads as one
    numpy array               value.npy       format "npy"      (kind "array")
    JSON-able value           value.json      format "json"     (kind "object")
    dict with str keys        index.json      format "dict"     (kind "dict"): each value in
                              + {i}/...       its own natural format in folder `i`, so that
                                              `$name.key` loads that value alone
    list or tuple (not JSON)  index.json      format "list"     (kind "list"): the same, keys
                              + {i}/...       "0", "1", ...; `$name` is a list, `$name.0` an item
    anything else             object.pkl      format "cloudpickle" (kind "object")

Only jobs call this: it may import pandas or unpickle, which the API process never does.
`load_output` verifies the signed manifest first (`ArtifactVolume.verify`); `read_output` and
`read_item` read a folder that was verified already (a sandboxed child reads the copy of a
parent's output its worker verified, without holding the key).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .artifacts import ArtifactVolume, TamperedArtifact
from .errors import JobFailed
from .model import Doc

INDEX = "index.json"

#: The file each format's reader opens first: what a folder in that format must hold.
MAIN_FILE = {
    "parquet": "table.parquet",
    "npy": "value.npy",
    "json": "value.json",
    "cloudpickle": "object.pkl",
    "joblib": "object.joblib",
    "dict": INDEX,
    "list": INDEX,
}


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
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            return _save_items(folder, value.items(), "dict")
        if isinstance(value, list | tuple) and value:  # e.g. train_test_split's DataFrames
            return _save_items(folder, ((str(i), v) for i, v in enumerate(value)), "list")
        import cloudpickle

        with (folder / "object.pkl").open("wb") as handle:
            cloudpickle.dump(value, handle)
        return "object", "cloudpickle"
    (folder / "value.json").write_text(text)
    return "object", "json"


def _save_items(folder: Path, items: Iterable[tuple[str, Any]], fmt: str) -> tuple[str, str]:
    """Each value in its own folder (`0`, `1`, ...: keys need not be file names); (kind,
    format) are both `fmt` ("dict" or "list")."""
    entries = []
    for index, (key, item_value) in enumerate(items):
        sub = folder / str(index)
        sub.mkdir()
        item_kind, item_format = save_output(sub, item_value)
        entries.append({"key": key, "folder": str(index), "kind": item_kind, "format": item_format})
    (folder / INDEX).write_text(json.dumps({"entries": entries}))
    return fmt, fmt


def verified_output(volume: ArtifactVolume, doc: Doc) -> tuple[Path, dict[str, Any]]:
    """The folder and manifest of step `doc`'s current output, once its signature checks;
    JobFailed when there is no output or it was tampered with."""
    name, run = doc["name"], doc.get("_artifact")
    if run is None:
        raise JobFailed(f"step {name!r} has no output to use (status {doc['status']})")
    try:
        manifest = volume.verify(name, run)
    except TamperedArtifact as exc:
        raise JobFailed(f"refusing to load {name!r}: {exc}") from None
    return volume.artifact_dir(name, run), manifest


def load_output(volume: ArtifactVolume, doc: Doc, key: str | None = None) -> Any:
    """The output of step `doc` (item `key` of it when given): a DataFrame for tables, an
    open binary file for raw files, the value for JSON, a dict for dicts, and the
    deserialised object for pickled formats. Checks the manifest's signature first."""
    name = doc["name"]
    folder, manifest = verified_output(volume, doc)
    if key is None:
        return read_output(folder, manifest["format"], manifest["files"], name)
    return read_item(folder, manifest["format"], manifest["files"], key, name)


def read_output(folder: Path, fmt: str, files: Iterable[str], name: str) -> Any:
    """The value stored in `folder` in format `fmt` (`files`: its payload files, relative).

    Does not check signatures: call it on a folder verified already."""
    if fmt == "parquet":
        import pandas as pd

        from .tables import table_files

        parts = table_files(folder)  # one file, or the parts of one table (core/tables.py)
        if len(parts) == 1:
            return pd.read_parquet(parts[0])
        if not parts:
            raise JobFailed(f"the table of {name!r} is missing from the data volume")
        return pd.concat([pd.read_parquet(part) for part in parts], ignore_index=True)
    if fmt == "raw":
        payload = [f for f in files if f != "manifest.json"]
        if len(payload) != 1:
            raise JobFailed(f"step {name!r} should hold one raw file, not {len(payload)}")
        # seekable, at 0, and `.name` is the real path: numpy.load and path-taking code work
        return (folder / payload[0]).open("rb")
    if fmt == "json":
        return json.loads((folder / "value.json").read_text())
    if fmt == "npy":
        import numpy as np

        return np.load(folder / "value.npy", allow_pickle=False)
    if fmt == "dict":
        return {entry["key"]: _read_entry(folder, entry, name) for entry in _entries(folder, name)}
    if fmt == "list":
        return [_read_entry(folder, entry, name) for entry in _entries(folder, name)]
    if fmt == "joblib":
        import joblib

        return joblib.load(folder / "object.joblib")
    if fmt == "cloudpickle":
        import cloudpickle

        with (folder / "object.pkl").open("rb") as handle:
            return cloudpickle.load(handle)
    raise JobFailed(f"step {name!r} is stored as {fmt!r}, which this step cannot load")


def read_item(folder: Path, fmt: str, files: Iterable[str], key: str, name: str) -> Any:
    """`$name.key`: item `key` of the output stored in `folder`. A dict or list output
    ("dict"/"list" format) loads that value alone; any other output is loaded whole, then
    indexed."""
    if fmt not in ("dict", "list"):
        return item(read_output(folder, fmt, files, name), key, name)
    entries = _entries(folder, name)
    for entry in entries:
        if entry["key"] == key:
            return _read_entry(folder, entry, name)
    return item({e["key"]: None for e in entries}, key, name)  # raises, listing the keys


def _entries(folder: Path, name: str) -> list[dict[str, str]]:
    try:
        entries: list[dict[str, str]] = json.loads((folder / INDEX).read_text())["entries"]
        # the index may come from user code: each entry must name a sub-folder, nothing else
        valid = all(
            isinstance(e["key"], str) and isinstance(e["format"], str) and e["folder"].isdigit()
            for e in entries
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        valid = False
    if not valid:
        raise JobFailed(f"the output of {name!r} has no valid {INDEX}")
    return entries


def _read_entry(folder: Path, entry: dict[str, str], name: str) -> Any:
    sub = folder / entry["folder"]
    files = [str(p.relative_to(sub)) for p in sub.rglob("*") if p.is_file()]
    return read_output(sub, entry["format"], files, f"{name}.{entry['key']}")


def item(value: Any, key: str, name: str) -> Any:
    """`$name.key`: item `key` of a dict output (a loaded "json" or "dict" output), or item
    number `key` of a list output (`$split.0`)."""
    if isinstance(value, list | tuple):
        if key.isdigit() and int(key) < len(value):
            return value[int(key)]
        what = "is" if key.isdigit() else "is not a dict but"
        raise JobFailed(
            f"${name}.{key}: the output of {name!r} {what} a list of {len(value)} items"
            + (f": use ${name}.0 to ${name}.{len(value) - 1}" if value else "")
        )
    if not isinstance(value, dict):
        raise JobFailed(f"${name}.{key}: the output of {name!r} is not a dict")
    if key not in value:
        keys = ", ".join(map(str, value)) or "none"
        raise JobFailed(f"${name}.{key}: the output of {name!r} has no key {key!r} (keys: {keys})")
    return value[key]
