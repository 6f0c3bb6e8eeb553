"""Round trips of outputs through the volume in their natural formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from learning_orchestra.core.artifacts import ArtifactVolume
from learning_orchestra.core.errors import JobFailed
from learning_orchestra.core.formats import item, load_output, read_item, read_output, save_output


def roundtrip(tmp_path: Path, value: Any) -> tuple[str, Any]:
    volume = ArtifactVolume(tmp_path, key=b"k")
    staging = volume.staging_dir("step", "r1")
    kind, fmt = save_output(staging, value)
    volume.commit("step", "r1", staging, kind=kind, fmt=fmt)
    doc = {"name": "step", "status": "finished", "_artifact": "r1"}
    return fmt, load_output(volume, doc)


def test_dataframe_is_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2], 3: ["x", None]})
    fmt, loaded = roundtrip(tmp_path, frame)
    assert fmt == "parquet"
    assert list(loaded.columns) == ["a", "3"] and loaded["a"].tolist() == [1, 2]


def test_array_is_npy(tmp_path: Path) -> None:
    fmt, loaded = roundtrip(tmp_path, np.arange(6).reshape(2, 3))
    assert fmt == "npy" and loaded.tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("value", [{"a": [1, 2.5, None]}, [1, "x"], 3, "text", None])
def test_jsonable_is_json(tmp_path: Path, value: Any) -> None:
    assert roundtrip(tmp_path, value) == ("json", value)


def test_other_objects_are_cloudpickled(tmp_path: Path) -> None:
    fmt, loaded = roundtrip(tmp_path, lambda x: x * 2)
    assert fmt == "cloudpickle" and loaded(21) == 42
    fmt, loaded = roundtrip(tmp_path / "keys", {1: np.int64(2)})  # keys that are not text
    assert fmt == "cloudpickle" and loaded == {1: 2}


def committed(tmp_path: Path, value: Any) -> tuple[ArtifactVolume, dict[str, Any]]:
    volume = ArtifactVolume(tmp_path, key=b"k")
    staging = volume.staging_dir("step", "r1")
    kind, fmt = save_output(staging, value)
    volume.commit("step", "r1", staging, kind=kind, fmt=fmt)
    return volume, {"name": "step", "status": "finished", "_artifact": "r1"}


def test_a_list_keeps_each_item_in_its_natural_format(tmp_path: Path) -> None:
    """train_test_split's DataFrames: `$name` is the list, `$name.0` one item."""
    value = (pd.DataFrame({"a": [1, 2]}), np.arange(3), float("nan"))
    volume, doc = committed(tmp_path, value)
    manifest = volume.verify("step", "r1")
    assert manifest["type"] == "list" and manifest["format"] == "list"
    # a NaN is not JSON: cloudpickled
    files = {"index.json", "0/table.parquet", "1/value.npy", "2/object.pkl"}
    assert files <= set(manifest["files"])
    loaded = load_output(volume, doc)
    assert isinstance(loaded, list) and len(loaded) == 3
    assert loaded[0]["a"].tolist() == [1, 2] and np.isnan(loaded[2])
    assert load_output(volume, doc, key="1").tolist() == [0, 1, 2]
    with pytest.raises(JobFailed, match=r"is a list of 3 items: use \$step.0 to \$step.2"):
        item(loaded, "3", "step")
    assert item([10, 20], "1", "step") == 20  # any list output, e.g. a JSON one


def test_a_dict_keeps_each_value_in_its_natural_format(tmp_path: Path) -> None:
    value = {
        "table": pd.DataFrame({"a": [1, 2]}),
        "array": np.arange(3),
        "nested": {"model": lambda x: x + 1, "n": 1},
        "text": "hi",
        "nan": float("nan"),
        "a key/../with dots": 5,
    }
    volume, doc = committed(tmp_path, value)
    manifest = volume.verify("step", "r1")
    assert manifest["type"] == "dict" and manifest["format"] == "dict"
    assert {"index.json", "0/table.parquet", "1/value.npy", "2/index.json", "3/value.json"} <= set(
        manifest["files"]
    )
    loaded = load_output(volume, doc)
    assert list(loaded) == list(value)
    assert loaded["table"]["a"].tolist() == [1, 2] and loaded["array"].tolist() == [0, 1, 2]
    assert loaded["nested"]["model"](1) == 2 and loaded["nested"]["n"] == 1
    assert np.isnan(loaded["nan"]) and loaded["a key/../with dots"] == 5


def test_an_item_of_a_dict_loads_alone(tmp_path: Path) -> None:
    volume, doc = committed(tmp_path, {"small": 1, "big": np.zeros(4), "bad": object()})
    folder = volume.artifact_dir("step", "r1")
    (folder / "2" / "object.pkl").write_bytes(b"not a pickle")  # never read for `small`
    with pytest.raises(JobFailed, match="changed after it was written"):
        load_output(volume, doc, "small")  # the signature covers every value
    files = volume.manifest("step", "r1")["files"]
    assert read_item(folder, "dict", files, "small", "step") == 1
    assert read_item(folder, "dict", files, "big", "step").tolist() == [0, 0, 0, 0]
    with pytest.raises(JobFailed, match=r"has no key 'nope' \(keys: small, big, bad\)"):
        read_item(folder, "dict", files, "nope", "step")


def test_a_json_dict_item_and_a_dict_output(tmp_path: Path) -> None:
    volume, doc = committed(tmp_path, {"a": [1, 2], "b": None})
    assert volume.verify("step", "r1")["format"] == "json"
    assert load_output(volume, doc, "a") == [1, 2]
    with pytest.raises(JobFailed, match="is not a dict"):
        load_output(committed(tmp_path / "list", [1])[0], doc, "a")


@pytest.mark.parametrize(
    "index",
    [
        '{"entries": [{"key": "a", "folder": "../../elsewhere", "format": "json"}]}',
        '{"entries": [{"key": "a", "folder": "0"}]}',
        '{"entries": {"key": "a"}}',
        "not json",
    ],
)
def test_an_index_naming_anything_but_its_sub_folders_is_refused(
    tmp_path: Path, index: str
) -> None:
    (tmp_path / "index.json").write_text(index)
    with pytest.raises(JobFailed, match=r"no valid index\.json"):
        read_output(tmp_path, "dict", [], "step")


def test_missing_output_and_item_errors() -> None:
    with pytest.raises(JobFailed, match="has no output"):
        load_output(
            ArtifactVolume(Path("/tmp/unused-lo"), key=b"k"), {"name": "x", "status": "failed"}
        )
    with pytest.raises(JobFailed, match="not a dict"):
        item([1], "a", "x")
    assert item({"a": 1}, "a", "x") == 1


def test_a_table_of_parts_loads_as_one_dataframe(tmp_path: Path) -> None:
    """core/tables.py's second layout: table/part-*.parquet, read in name order."""
    volume = ArtifactVolume(tmp_path, key=b"k")
    staging = volume.staging_dir("step", "r1")
    (staging / "table").mkdir()
    for index in range(11):  # part-00010 sorts after part-00009
        part = pd.DataFrame({"n": [2 * index, 2 * index + 1], "s": ["a", None]})
        part.to_parquet(staging / "table" / f"part-{index:05d}.parquet", index=False)
    volume.commit("step", "r1", staging, kind="table", fmt="parquet")
    loaded = load_output(volume, {"name": "step", "status": "finished", "_artifact": "r1"})
    assert loaded["n"].tolist() == list(range(22))
    assert loaded.index.tolist() == list(range(22))
    assert loaded["s"].tolist()[:2] == ["a", None]
