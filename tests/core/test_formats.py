"""Round trips of outputs through the volume in their natural formats."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from learning_orchestra.core import formats
from learning_orchestra.core.artifacts import ArtifactVolume
from learning_orchestra.core.errors import JobFailed
from learning_orchestra.core.formats import (
    MAIN_FILE,
    CannotSave,
    Codec,
    item,
    load_output,
    read_item,
    read_output,
    register,
    save_output,
)
from learning_orchestra.toolkits import declared_toolkits


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


# -- codecs -----------------------------------------------------------------------------------
def tiny_classification() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    return x, (x[:, 0] + x[:, 1] > 0).astype(int)


def test_a_fitted_estimator_is_joblib(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = tiny_classification()
    model = LogisticRegression().fit(x, y)
    volume, doc = committed(tmp_path, model)
    manifest = volume.verify("step", "r1")
    assert (manifest["type"], manifest["format"]) == ("object", "joblib")
    assert "object.joblib" in manifest["files"] and "object.pkl" not in manifest["files"]
    loaded = load_output(volume, doc)
    assert loaded is not model and loaded.predict(x).tolist() == model.predict(x).tolist()
    assert loaded.coef_.tolist() == model.coef_.tolist()


def test_an_estimator_pickle_cannot_store_falls_back_to_cloudpickle(tmp_path: Path) -> None:
    """Classes and functions the user's code defines cannot be pickled by reference: joblib
    gives up, leaves nothing behind, and cloudpickle stores them whole."""
    from sklearn.base import BaseEstimator
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    class Doubler(BaseEstimator):  # a local class, as good as one of `__main__`
        def predict(self, x: Any) -> Any:
            return 2 * x

    for folder, value in (
        ("local", Doubler()),
        ("lambda", make_pipeline(FunctionTransformer(lambda x: x + 1))),
    ):
        fmt, loaded = roundtrip(tmp_path / folder, value)
        assert fmt == "cloudpickle", folder
        staged = tmp_path / folder / "artifacts" / "step" / "r1"
        assert not list(staged.glob("*.joblib"))
    assert loaded.transform(np.array([1])).tolist() == [2]
    assert roundtrip(tmp_path / "class", Doubler)[0] == "cloudpickle"  # the class itself


class Marker:
    def __init__(self, value: int) -> None:
        self.value = value


def marker_codec(fmt: str, give_up: bool = False) -> Codec:
    """Stores a Marker (and claims tables, as -1) as text in `{fmt}.txt`; `give_up`:
    writes, then passes it on."""

    def save(folder: Path, value: Any) -> None:
        (folder / f"{fmt}.txt").write_text(str(getattr(value, "value", -1)))
        if give_up:
            raise CannotSave("not this one")

    return Codec(
        fmt,
        f"{fmt}.txt",
        lambda value: isinstance(value, Marker | pd.DataFrame),
        save,
        lambda folder: Marker(int((folder / f"{fmt}.txt").read_text())),
    )


def test_registered_codecs_come_first_in_their_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "_registered", [])
    shy, first, second = marker_codec("shy", give_up=True), marker_codec("a"), marker_codec("b")
    for codec in (shy, first, second):
        register(codec)
    register(first)  # again: nothing changes
    assert [c.format for c in formats.saving_codecs()][:3] == ["shy", "a", "b"]
    assert formats.saving_codecs()[-1] is formats.JOBLIB  # the built-in ones after them

    volume, doc = committed(tmp_path, Marker(7))
    manifest = volume.verify("step", "r1")
    assert manifest["format"] == "a" and "shy.txt" not in manifest["files"]  # shy gave up
    assert load_output(volume, doc).value == 7 and MAIN_FILE["a"] == "a.txt"
    # before the built-in formats too: this one claims tables
    assert roundtrip(tmp_path / "table", pd.DataFrame({"a": [1]}))[0] == "a"

    with pytest.raises(ValueError, match="'b' has a codec already"):
        register(marker_codec("b"))
    with pytest.raises(ValueError, match="'npy' has a codec already"):
        register(marker_codec("npy"))
    with pytest.raises(ValueError, match="'keras' has a codec already"):
        register(marker_codec("keras"))  # declared by the tensorflow toolkit


TEXT = (
    lambda folder, value: (folder / "model.txt").write_text(repr(value)),
    lambda folder: (folder / "model.txt").read_text(),
)


def test_a_registered_codec_comes_before_joblib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.linear_model import LinearRegression

    monkeypatch.setattr(formats, "_registered", [])
    register(Codec("text", "model.txt", lambda v: isinstance(v, LinearRegression), *TEXT))
    assert roundtrip(tmp_path, LinearRegression()) == ("text", "LinearRegression()")


def test_a_format_nobody_provides_is_refused(tmp_path: Path) -> None:
    (tmp_path / "value.bin").write_bytes(b"?")
    with pytest.raises(JobFailed, match=r"stored as 'nope', which this step cannot load"):
        read_output(tmp_path, "nope", ["value.bin"], "step")
    assert MAIN_FILE.get("nope") is None and "nope" not in MAIN_FILE
    with pytest.raises(JobFailed, match=r"the output of 'step' has no object\.joblib"):
        read_output(tmp_path, "joblib", [], "step")


def test_every_declared_format_has_its_adapters_codec() -> None:
    """What MAIN_FILE tells from the declarations is what the adapters' codecs write."""
    for kit in declared_toolkits():
        codecs = getattr(importlib.import_module(kit.adapter), "CODECS", ())
        assert {c.format: c.main_file for c in codecs} == dict(kit.formats), kit.tool
        for fmt, main in kit.formats.items():
            assert MAIN_FILE[fmt] == main and fmt in MAIN_FILE
    assert MAIN_FILE["keras"] == "model.keras" and MAIN_FILE["joblib"] == "object.joblib"


def test_main_files_and_codecs_are_found_without_importing_a_toolkit() -> None:
    """The worker (Sandbox._report) reads MAIN_FILE, and a child of any family finds the
    codec of a format it loads: none of that may import TensorFlow, Keras or scikit-learn."""
    code = """
        import json, sys
        from learning_orchestra.core.formats import MAIN_FILE, codec_for
        found = {fmt: MAIN_FILE.get(fmt) for fmt in ("keras", "joblib", "parquet")}
        codec = codec_for("keras")
        found["codec"] = [codec.format, codec.main_file, codec.load.__module__]
        heavy = ("tensorflow", "keras", "sklearn", "pandas", "pyarrow", "joblib")
        found["imported"] = sorted(m for m in heavy if m in sys.modules)
        print(json.dumps(found))
    """
    answer = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(answer.stdout) == {
        "keras": "model.keras",
        "joblib": "object.joblib",
        "parquet": "table.parquet",
        "codec": ["keras", "model.keras", "learning_orchestra.toolkits.tensorflow"],
        "imported": [],
    }


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="needs the TensorFlow extra")
def test_keras_models_round_trip_as_keras_files(tmp_path: Path) -> None:
    """A compiled Sequential (not built yet, as a model step stores it) and a fitted one,
    through the signed volume, in a process of their own (TensorFlow's threads stay out of
    the test process, which forks)."""
    code = """
        import json, sys
        from pathlib import Path
        import numpy as np
        import keras
        from learning_orchestra.core.artifacts import ArtifactVolume
        from learning_orchestra.core.formats import load_output, save_output

        volume = ArtifactVolume(Path(sys.argv[1]), key=b"k")

        def roundtrip(name, model):
            staging = volume.staging_dir(name, "r1")
            kind, fmt = save_output(staging, model)
            volume.commit(name, "r1", staging, kind=kind, fmt=fmt)
            files = volume.verify(name, "r1")["files"]
            doc = {"name": name, "status": "finished", "_artifact": "r1"}
            return [kind, fmt, sorted(files)], load_output(volume, doc)

        rng = np.random.default_rng(0)
        x = rng.normal(size=(32, 4)).astype("float32")
        y = (x[:, 0] > 0).astype("int32")
        model = keras.Sequential([keras.layers.Dense(3, activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        stored, compiled = roundtrip("compiled", model)
        found = {"compiled": [*stored, type(compiled).__name__, compiled.compiled]}
        compiled.fit(x, y, epochs=1, verbose=0)  # it trains as it came
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        stored, fitted = roundtrip("fitted", model)
        found["fitted"] = stored
        found["same"] = bool(np.array_equal(model.predict(x, verbose=0),
                                            fitted.predict(x, verbose=0)))
        found["steps"] = [int(model.optimizer.iterations), int(fitted.optimizer.iterations)]
        print(json.dumps(found))
    """
    answer = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert answer.returncode == 0, answer.stderr[-3000:]
    found = json.loads(answer.stdout.splitlines()[-1])
    files = ["model.keras"]
    assert found["compiled"] == ["object", "keras", files, "Sequential", True]
    assert found["fitted"] == ["object", "keras", files]
    assert found["same"] and found["steps"] == [8, 8]  # optimizer state kept
