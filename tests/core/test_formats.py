"""Round trips of outputs through the volume in their natural formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from learning_orchestra.core.artifacts import ArtifactVolume
from learning_orchestra.core.errors import JobFailed
from learning_orchestra.core.formats import item, load_output, save_output


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
    fmt, loaded = roundtrip(tmp_path / "nan", {"x": float("nan")})
    assert fmt == "cloudpickle" and np.isnan(loaded["x"])


def test_missing_output_and_item_errors() -> None:
    with pytest.raises(JobFailed, match="has no output"):
        load_output(
            ArtifactVolume(Path("/tmp/unused-lo"), key=b"k"), {"name": "x", "status": "failed"}
        )
    with pytest.raises(JobFailed, match="not a dict"):
        item([1], "a", "x")
    assert item({"a": 1}, "a", "x") == 1
