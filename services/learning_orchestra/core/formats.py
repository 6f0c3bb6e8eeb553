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

Before those, the *codecs* are tried, in order: first the ones registered (`register`), then
those of the toolkit adapters whose libraries the process has imported (a Keras model can
only exist once `keras` is), then the built-in ones:

    scikit-learn estimator    object.joblib   format "joblib"   (kind "object")
    Keras model (adapter)     model.keras     format "keras"    (kind "object")

A toolkit declares the formats its adapter provides on its `Toolkit` (`formats={"keras":
"model.keras"}`) and the codecs themselves as its adapter module's `CODECS`: so `MAIN_FILE`
knows every format's main file from the declarations alone (the API process and the job's
worker read it, and never import a toolkit), and loading a format imports the adapter that
provides it, whichever family the loading child belongs to.

Only jobs save or load: that may import pandas or a toolkit, or unpickle, which the API process
never does. `load_output` verifies the signed manifest first (`ArtifactVolume.verify`);
`read_output` and `read_item` read a folder that was verified already (a sandboxed child reads
the copy of a parent's output its worker verified, without holding the key).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import pickle
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artifacts import ArtifactVolume, TamperedArtifact
from .errors import JobFailed
from .model import Doc

INDEX = "index.json"


@dataclass(frozen=True)
class Codec:
    """How one kind of value is stored: `can_save(value)` says whether this codec takes it
    (cheaply, without importing its library: a value of a library not imported cannot
    exist), `save(folder, value)` writes `main_file` (and anything else it needs) into
    `folder`, `load(folder)` reads it back. `save` raises `CannotSave` to hand the
    value on to the next codec (or the built-in formats), e.g. when it cannot be pickled by
    reference."""

    format: str  # recorded in the manifest: "joblib", "keras"
    main_file: str  # what a folder in this format must hold: "object.joblib"
    can_save: Callable[[Any], bool]
    save: Callable[[Path, Any], None]
    load: Callable[[Path], Any]
    kind: str = "object"  # the output's kind in the manifest


class CannotSave(Exception):
    """Raised by a codec's `save`: this value is not for this codec after all."""


def _is_sklearn_estimator(value: Any) -> bool:
    base = sys.modules.get("sklearn.base")  # never imported here: no estimator without it
    return base is not None and isinstance(value, base.BaseEstimator)


def _save_joblib(folder: Path, value: Any) -> None:
    import joblib

    try:
        joblib.dump(value, folder / "object.joblib")
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        # pickle stores classes and functions by reference: those the user's code defined
        # (in its `__main__`, lambdas, local ones) cannot be; cloudpickle stores them whole
        raise CannotSave(str(exc)) from exc


def _load_joblib(folder: Path) -> Any:
    import joblib

    return joblib.load(folder / "object.joblib")


#: scikit-learn's own way of persisting its estimators (plain pickle, numpy arrays inline).
JOBLIB = Codec("joblib", "object.joblib", _is_sklearn_estimator, _save_joblib, _load_joblib)

#: Tried after the registered and the adapters' codecs.
BUILTIN_CODECS: tuple[Codec, ...] = (JOBLIB,)

#: The main file of each format the fixed chain of `save_output` writes (and "raw", which
#: only dataset steps write, is not among them: its one file has the name it came with).
BUILTIN_MAIN_FILE = {
    "parquet": "table.parquet",
    "npy": "value.npy",
    "json": "value.json",
    "cloudpickle": "object.pkl",
    "dict": INDEX,
    "list": INDEX,
}

_registered: list[Codec] = []


def register(codec: Codec) -> None:
    """Add `codec` to the registry: tried before the adapters' and the built-in codecs and
    formats, after the codecs registered before it. Registering the same codec again changes
    nothing; another codec for a format known already (built in, registered, or declared by
    a toolkit) is refused: a format loads one way."""
    if codec in _registered:
        return
    known = {c.format for c in (*_registered, *BUILTIN_CODECS)} | set(BUILTIN_MAIN_FILE)
    if codec.format in known or codec.format in _declared():
        raise ValueError(f"format {codec.format!r} has a codec already")
    _registered.append(codec)


# -- the formats the toolkit adapters declare (toolkits/__init__.py) ------------------------
_declarations: dict[str, tuple[str, str]] | None = None
_adapter_codecs: dict[str, tuple[Codec, ...]] = {}  # adapter module -> its CODECS


def _declared() -> dict[str, tuple[str, str]]:
    """format -> (main file, adapter module), read from the toolkits' declarations (which
    import nothing heavy), once."""
    global _declarations
    if _declarations is None:
        from ..toolkits import declared_toolkits

        _declarations = {
            fmt: (main, kit.adapter)
            for kit in declared_toolkits()
            for fmt, main in kit.formats.items()
        }
    return _declarations


def _adapter(module: str) -> tuple[Codec, ...]:
    """The codecs of adapter `module` (its `CODECS`), importing it once; each must be one
    its toolkit declares, with the same main file (what the worker checks the output by)."""
    if module not in _adapter_codecs:
        codecs = tuple(getattr(importlib.import_module(module), "CODECS", ()))
        declared = _declared()
        for codec in codecs:
            if declared.get(codec.format) != (codec.main_file, module):
                raise RuntimeError(
                    f"{module}: its codec of format {codec.format!r} ({codec.main_file}) is "
                    "not among its toolkit's declared formats"
                )
        _adapter_codecs[module] = codecs
    return _adapter_codecs[module]


def saving_codecs() -> list[Codec]:
    """The codecs `save_output` tries, in order: the registered ones, those of every adapter
    whose toolkit's packages this process has imported (a value of a toolkit never imported
    cannot exist, so no toolkit library is imported for nothing; the adapter modules
    themselves are light), then the built-in ones."""
    from ..toolkits import declared_toolkits

    adapters = [
        codec
        for kit in declared_toolkits()
        if kit.formats and any(package in sys.modules for package in kit.packages)
        for codec in _adapter(kit.adapter)
    ]
    return [*_registered, *adapters, *BUILTIN_CODECS]


def codec_for(fmt: str) -> Codec | None:
    """The codec that loads format `fmt`, importing the adapter that provides it if need
    be; None for the formats of the fixed chain and for unknown ones."""
    for codec in (*BUILTIN_CODECS, *_registered):
        if codec.format == fmt:
            return codec
    declared = _declared().get(fmt)
    if declared is None:
        return None
    return next((c for c in _adapter(declared[1]) if c.format == fmt), None)


class _MainFiles(Mapping[str, str]):
    """format -> the file its reader opens first: what a folder in that format must hold.
    Knows the adapters' formats from their declarations, without importing an adapter."""

    def _all(self) -> dict[str, str]:
        codecs = {c.format: c.main_file for c in (*BUILTIN_CODECS, *_registered)}
        declared = {fmt: main for fmt, (main, _) in _declared().items()}
        return {**declared, **codecs, **BUILTIN_MAIN_FILE}

    def __getitem__(self, fmt: str) -> str:
        if fmt in BUILTIN_MAIN_FILE:  # the usual case: no declaration read
            return BUILTIN_MAIN_FILE[fmt]
        return self._all()[fmt]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


#: The file each format's reader opens first: what a folder in that format must hold.
MAIN_FILE: Mapping[str, str] = _MainFiles()


def save_output(folder: Path, value: Any) -> tuple[str, str]:
    """Write `value` into `folder` in its natural format; (kind, format) for the manifest."""
    for codec in saving_codecs():
        if codec.can_save(value):
            before = set(folder.iterdir())
            try:
                codec.save(folder, value)
            except CannotSave:
                _remove_new(folder, before)  # what it wrote before it gave up
                continue
            return codec.kind, codec.format
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


def _remove_new(folder: Path, before: set[Path]) -> None:
    for path in set(folder.iterdir()) - before:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


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
    if fmt == "cloudpickle":
        import cloudpickle

        with (folder / "object.pkl").open("rb") as handle:
            return cloudpickle.load(handle)
    codec = codec_for(fmt)
    if codec is None:
        raise JobFailed(f"step {name!r} is stored as {fmt!r}, which this step cannot load")
    if not (folder / codec.main_file).is_file():
        raise JobFailed(f"the output of {name!r} has no {codec.main_file}")
    try:
        return codec.load(folder)
    except ImportError as exc:
        raise JobFailed(
            f"step {name!r} is stored as {fmt!r}, which needs {exc.name or exc}: not installed "
            "on this server"
        ) from None


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
