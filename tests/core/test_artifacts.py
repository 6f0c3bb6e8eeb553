"""The artifact volume: atomic commits, signed manifests, safe file access and cleanup."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from learning_orchestra.core import artifacts
from learning_orchestra.core.artifacts import (
    MANIFEST,
    ArtifactVolume,
    TamperedArtifact,
    atomic_write_bytes,
    sha256_file,
)
from learning_orchestra.core.errors import Invalid, NotFound

KEY = b"k" * 32


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LO_SECRET_KEY", raising=False)


@pytest.fixture
def volume(tmp_path: Path) -> ArtifactVolume:
    return ArtifactVolume(tmp_path / "data", KEY)


def stage(volume: ArtifactVolume, name: str, run: str, files: dict[str, bytes]) -> Path:
    staging = volume.staging_dir(name, run)
    for rel, data in files.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_bytes(data)
    return staging


PAYLOAD = {"table.parquet": b"PAR1 rows", "sub/model.bin": b"\x00\x01weights", "empty": b""}


def committed(
    volume: ArtifactVolume, name: str = "titanic", run: str = "r1", fmt: str = "parquet"
) -> Path:
    staging = stage(volume, name, run, PAYLOAD)
    return volume.commit(name, run, staging, kind="table", fmt=fmt, libraries={"pyarrow": "15.0"})


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def edit_manifest(volume: ArtifactVolume, step: str, run: str, **changes: Any) -> None:
    path = volume.artifact_dir(step, run) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


# -- layout -----------------------------------------------------------------------------------


def test_the_volume_creates_its_folders(tmp_path: Path) -> None:
    volume = ArtifactVolume(tmp_path / "new" / "data", KEY)
    for sub in ("artifacts", "staging", "uploads", "logs", "scratch"):
        assert (tmp_path / "new" / "data" / sub).is_dir()
    assert volume.root == (tmp_path / "new" / "data").resolve()


def test_paths(volume: ArtifactVolume) -> None:
    assert volume.artifact_dir("a", "r") == volume.root / "artifacts" / "a" / "r"
    assert volume.log_path("a") == volume.root / "logs" / "a.log"
    assert volume.upload_path("a.123") == volume.root / "uploads" / "a.123"
    scratch = volume.scratch_dir("a", "r1")
    assert scratch == volume.root / "scratch" / "a" / "r1"
    assert scratch.is_dir()


def test_staging_dir_starts_empty(volume: ArtifactVolume) -> None:
    staging = stage(volume, "a", "r1", {"old": b"left over by a crashed run"})
    again = volume.staging_dir("a", "r1")
    assert again == staging == volume.root / "staging" / "a.r1"
    assert list(again.iterdir()) == []


# -- commit -----------------------------------------------------------------------------------


def test_commit_moves_staging_to_its_final_place(volume: ArtifactVolume) -> None:
    staging = stage(volume, "titanic", "r1", PAYLOAD)
    final = volume.commit("titanic", "r1", staging, kind="table", fmt="parquet")
    assert final == volume.root / "artifacts" / "titanic" / "r1"
    assert not staging.exists()
    assert list((volume.root / "staging").iterdir()) == []
    for rel, data in PAYLOAD.items():
        assert (final / rel).read_bytes() == data
    assert tree(final) == {"table.parquet", "sub", "sub/model.bin", "empty", MANIFEST}


def test_the_manifest_lists_every_file_with_its_sha256(volume: ArtifactVolume) -> None:
    final = committed(volume)
    manifest = json.loads((final / MANIFEST).read_text())
    assert manifest["files"] == {rel: hashlib.sha256(d).hexdigest() for rel, d in PAYLOAD.items()}
    assert manifest["name"] == "titanic"
    assert manifest["run"] == "r1"
    assert manifest["type"] == "table"
    assert manifest["format"] == "parquet"
    assert manifest["libraries"] == {"pyarrow": "15.0"}
    assert isinstance(manifest["created"], float)
    assert len(manifest["hmac"]) == 64
    assert volume.manifest("titanic", "r1") == manifest


def test_the_manifest_is_signed_with_the_volume_key(tmp_path: Path) -> None:
    a = ArtifactVolume(tmp_path / "a", b"one key")
    b = ArtifactVolume(tmp_path / "b", b"another key")
    sig_a = committed(a)
    sig_b = committed(b)
    hmac_a = json.loads((sig_a / MANIFEST).read_text())["hmac"]
    hmac_b = json.loads((sig_b / MANIFEST).read_text())["hmac"]
    assert hmac_a != hmac_b


def test_commit_without_libraries_records_an_empty_dict(volume: ArtifactVolume) -> None:
    staging = stage(volume, "a", "r1", {"x": b"1"})
    volume.commit("a", "r1", staging, kind="object", fmt="cloudpickle")
    assert volume.verify("a", "r1")["libraries"] == {}


def test_commit_of_an_empty_output(volume: ArtifactVolume) -> None:
    staging = volume.staging_dir("a", "r1")
    final = volume.commit("a", "r1", staging, kind="object", fmt="none")
    assert tree(final) == {MANIFEST}
    assert volume.verify("a", "r1")["files"] == {}


def test_commit_refuses_a_payload_named_like_the_manifest(volume: ArtifactVolume) -> None:
    # It would be overwritten by the manifest, and the artifact could never verify.
    staging = stage(volume, "a", "r1", {MANIFEST: b'{"user": "data"}'})
    with pytest.raises(Invalid, match=re.escape(MANIFEST)):
        volume.commit("a", "r1", staging, kind="file", fmt="raw")
    assert not volume.artifact_dir("a", "r1").exists()
    assert (staging / MANIFEST).read_bytes() == b'{"user": "data"}'


def test_a_nested_file_named_like_the_manifest_is_a_payload(volume: ArtifactVolume) -> None:
    staging = stage(volume, "a", "r1", {f"sub/{MANIFEST}": b"mine"})
    volume.commit("a", "r1", staging, kind="file", fmt="raw")
    assert volume.verify("a", "r1")["files"] == {
        f"sub/{MANIFEST}": hashlib.sha256(b"mine").hexdigest()
    }
    assert volume.file("a", "r1", f"sub/{MANIFEST}").read_bytes() == b"mine"


def test_runs_of_a_step_live_side_by_side(volume: ArtifactVolume) -> None:
    committed(volume, "a", "r1")
    committed(volume, "a", "r2")
    assert volume.verify("a", "r1")["run"] == "r1"
    assert volume.verify("a", "r2")["run"] == "r2"


# -- verify -----------------------------------------------------------------------------------


def test_verify_passes_on_an_untouched_artifact(volume: ArtifactVolume) -> None:
    committed(volume)
    manifest = volume.verify("titanic", "r1")
    assert set(manifest["files"]) == set(PAYLOAD)


def test_verify_passes_for_a_second_volume_with_the_same_key(volume: ArtifactVolume) -> None:
    committed(volume)
    assert ArtifactVolume(volume.root, KEY).verify("titanic", "r1")["name"] == "titanic"


@pytest.mark.parametrize("rel", ["table.parquet", "sub/model.bin", "empty"])
def test_verify_detects_a_modified_payload_file(volume: ArtifactVolume, rel: str) -> None:
    final = committed(volume)
    with (final / rel).open("ab") as handle:
        handle.write(b"!")
    with pytest.raises(TamperedArtifact, match=re.escape(rel)):
        volume.verify("titanic", "r1")


def test_verify_detects_a_same_size_change(volume: ArtifactVolume) -> None:
    final = committed(volume, fmt="joblib")
    data = bytearray((final / "sub" / "model.bin").read_bytes())
    data[0] ^= 1
    (final / "sub" / "model.bin").write_bytes(bytes(data))
    with pytest.raises(TamperedArtifact):
        volume.verify("titanic", "r1")


def test_verify_checks_a_table_by_its_signed_sizes_without_hashing_it(
    volume: ArtifactVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A table is read by every step that uses it: hashing it each time would cost a read.
    final = committed(volume)
    assert volume.manifest("titanic", "r1")["sizes"]["table.parquet"] == len(b"PAR1 rows")

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"{path} was hashed")

    monkeypatch.setattr(artifacts, "sha256_file", no_hashing)
    assert volume.verify("titanic", "r1")["format"] == "parquet"
    (final / "table.parquet").write_bytes(b"PAR1 rows, and more")
    with pytest.raises(TamperedArtifact, match=r"table\.parquet"):
        volume.verify("titanic", "r1")


def test_verify_detects_a_deleted_payload_file(volume: ArtifactVolume) -> None:
    final = committed(volume)
    (final / "sub" / "model.bin").unlink()
    with pytest.raises(TamperedArtifact, match=re.escape("sub/model.bin")):
        volume.verify("titanic", "r1")


def test_verify_detects_a_file_added_to_the_artifact(volume: ArtifactVolume) -> None:
    # directory formats (Spark models) would load an added file without it being checked
    final = committed(volume)
    (final / "sub" / "part-00001.parquet").write_bytes(b"injected")
    with pytest.raises(TamperedArtifact, match="part-00001"):
        volume.verify("titanic", "r1")


@pytest.mark.parametrize(
    "changes",
    [
        {"type": "object"},
        {"format": "cloudpickle"},
        {"name": "other"},
        {"created": 0.0},
        {"libraries": {}},
        {"extra": "field"},
    ],
)
def test_verify_detects_an_edited_manifest(volume: ArtifactVolume, changes: dict[str, Any]) -> None:
    committed(volume)
    edit_manifest(volume, "titanic", "r1", **changes)
    with pytest.raises(TamperedArtifact, match="not signed"):
        volume.verify("titanic", "r1")


def test_verify_detects_an_edited_checksum_matching_an_edited_file(volume: ArtifactVolume) -> None:
    final = committed(volume)
    (final / "table.parquet").write_bytes(b"evil")
    manifest = volume.manifest("titanic", "r1")
    manifest["files"]["table.parquet"] = hashlib.sha256(b"evil").hexdigest()
    edit_manifest(volume, "titanic", "r1", files=manifest["files"])
    with pytest.raises(TamperedArtifact, match="not signed"):
        volume.verify("titanic", "r1")


def test_verify_detects_a_removed_file_entry(volume: ArtifactVolume) -> None:
    committed(volume)
    files = volume.manifest("titanic", "r1")["files"]
    del files["sub/model.bin"]
    edit_manifest(volume, "titanic", "r1", files=files)
    with pytest.raises(TamperedArtifact):
        volume.verify("titanic", "r1")


@pytest.mark.parametrize(
    "signature",
    [None, "", "0" * 64, 12345, ["x"], pytest.param("é" * 64, id="non-ascii")],
)
def test_verify_refuses_a_missing_or_bogus_signature(
    volume: ArtifactVolume, signature: Any
) -> None:
    committed(volume)
    edit_manifest(volume, "titanic", "r1", hmac=signature)
    with pytest.raises(TamperedArtifact, match="not signed"):
        volume.verify("titanic", "r1")


def test_verify_refuses_an_unsigned_manifest(volume: ArtifactVolume) -> None:
    final = committed(volume)
    manifest = json.loads((final / MANIFEST).read_text())
    del manifest["hmac"]
    (final / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(TamperedArtifact, match="not signed"):
        volume.verify("titanic", "r1")


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '"a string"', "null"])
def test_verify_refuses_a_manifest_that_is_not_an_object(
    volume: ArtifactVolume, content: str
) -> None:
    final = committed(volume)
    (final / MANIFEST).write_text(content)
    with pytest.raises(TamperedArtifact):
        volume.verify("titanic", "r1")


def test_verify_refuses_an_artifact_signed_with_another_key(volume: ArtifactVolume) -> None:
    committed(volume)
    other = ArtifactVolume(volume.root, b"another server's key")
    with pytest.raises(TamperedArtifact, match="not signed by this server"):
        other.verify("titanic", "r1")
    assert volume.verify("titanic", "r1")["name"] == "titanic"


def test_verify_of_a_missing_artifact_is_not_found(volume: ArtifactVolume) -> None:
    with pytest.raises(NotFound, match="missing"):
        volume.verify("nothing", "r1")
    with pytest.raises(NotFound):
        volume.manifest("nothing", "r1")


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "big"
    data = os.urandom((1 << 20) * 2 + 17)  # spans several read chunks
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


# -- file -------------------------------------------------------------------------------------


def test_file_returns_listed_files(volume: ArtifactVolume) -> None:
    final = committed(volume)
    assert volume.file("titanic", "r1", "table.parquet") == final / "table.parquet"
    assert volume.file("titanic", "r1", "sub/model.bin").read_bytes() == PAYLOAD["sub/model.bin"]


@pytest.mark.parametrize(
    "filename",
    [
        MANIFEST,
        "../x",
        "../r1/table.parquet",
        "./table.parquet",
        "sub",
        "sub/../table.parquet",
        "/etc/passwd",
        "missing",
        "",
    ],
)
def test_file_refuses_names_the_manifest_does_not_list(
    volume: ArtifactVolume, filename: str
) -> None:
    committed(volume)
    (volume.artifact_dir("titanic", "x")).mkdir()  # a sibling "../x" exists
    with pytest.raises(NotFound, match="has no file"):
        volume.file("titanic", "r1", filename)


def test_file_refuses_a_listed_name_that_leads_outside_the_artifact(
    volume: ArtifactVolume,
) -> None:
    # a manifest edited on disk (file() does not verify signatures) must not reach the key file
    committed(volume)
    files = volume.manifest("titanic", "r1")["files"]
    files["../../../.secret-key"] = "0" * 64
    edit_manifest(volume, "titanic", "r1", files=files)
    with pytest.raises(NotFound):
        volume.file("titanic", "r1", "../../../.secret-key")


def test_file_refuses_a_symlink_leading_outside_the_artifact(
    volume: ArtifactVolume, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("server only")
    staging = stage(volume, "a", "r1", {"ok": b"1"})
    (staging / "link").symlink_to(secret)
    volume.commit("a", "r1", staging, kind="file", fmt="raw")
    assert "link" in volume.manifest("a", "r1")["files"]
    with pytest.raises(NotFound):
        volume.file("a", "r1", "link")
    assert volume.file("a", "r1", "ok").read_bytes() == b"1"


def test_file_of_a_missing_artifact_is_not_found(volume: ArtifactVolume) -> None:
    with pytest.raises(NotFound):
        volume.file("nothing", "r1", "table.parquet")


# -- cleanup ----------------------------------------------------------------------------------


def test_prune_keeps_only_the_named_run(volume: ArtifactVolume) -> None:
    for run in ("r1", "r2", "r3"):
        committed(volume, "a", run)
    stage(volume, "a", "r4", {"partial": b"x"})
    committed(volume, "ab", "r1")
    stage(volume, "ab", "r2", {"partial": b"x"})
    volume.prune("a", "r2")
    assert [p.name for p in (volume.root / "artifacts" / "a").iterdir()] == ["r2"]
    assert volume.verify("a", "r2")["run"] == "r2"
    assert sorted(p.name for p in (volume.root / "staging").iterdir()) == ["ab.r2"]
    assert volume.verify("ab", "r1")["run"] == "r1"


def test_prune_without_keep_removes_every_run(volume: ArtifactVolume) -> None:
    committed(volume, "a", "r1")
    committed(volume, "a", "r2")
    volume.prune("a", None)
    assert not (volume.root / "artifacts" / "a").exists()


def test_prune_of_an_unknown_step_does_nothing(volume: ArtifactVolume) -> None:
    committed(volume, "a", "r1")
    volume.prune("nothing", None)
    volume.prune("nothing", "r1")
    assert volume.verify("a", "r1")["run"] == "r1"


def fill(volume: ArtifactVolume, name: str) -> None:
    committed(volume, name, "r1")
    stage(volume, name, "r2", {"partial": b"x"})
    volume.log_path(name).write_text(f"log of {name}")
    (volume.scratch_dir(name, "r1") / "work").write_text("scratch")
    volume.upload_path(f"{name}.0123abcd").write_bytes(b"upload")


def holdings(volume: ArtifactVolume, name: str) -> set[str]:
    found = {
        str(p.relative_to(volume.root))
        for sub in ("artifacts", "staging", "uploads", "logs", "scratch")
        for p in (volume.root / sub).iterdir()
        if p.name == name or p.name.startswith(f"{name}.")
    }
    return found


@pytest.mark.parametrize("neighbour", ["ab", "a-b", "a_b", "A", "ba", "0a"])
def test_remove_deletes_everything_of_the_step_and_nothing_of_a_neighbour(
    volume: ArtifactVolume, neighbour: str
) -> None:
    fill(volume, "a")
    fill(volume, neighbour)
    before = holdings(volume, neighbour)
    assert before == {
        f"artifacts/{neighbour}",
        f"staging/{neighbour}.r2",
        f"uploads/{neighbour}.0123abcd",
        f"logs/{neighbour}.log",
        f"scratch/{neighbour}",
    }
    assert len(holdings(volume, "a")) == 5

    volume.remove("a")

    assert holdings(volume, "a") == set()
    assert holdings(volume, neighbour) == before
    assert volume.verify(neighbour, "r1")["name"] == neighbour
    assert volume.log_path(neighbour).read_text() == f"log of {neighbour}"
    assert (volume.scratch_dir(neighbour, "r1") / "work").read_text() == "scratch"
    assert (volume.root / "staging" / f"{neighbour}.r2" / "partial").exists()


def test_remove_of_an_unknown_step_does_nothing(volume: ArtifactVolume) -> None:
    fill(volume, "a")
    snapshot = tree(volume.root)
    volume.remove("b")
    assert tree(volume.root) == snapshot


def test_clear_scratch(volume: ArtifactVolume) -> None:
    (volume.scratch_dir("a", "r1") / "f").write_text("x")
    (volume.scratch_dir("ab", "r1") / "f").write_text("x")
    volume.clear_scratch("a")
    volume.clear_scratch("never-existed")
    assert not (volume.root / "scratch" / "a").exists()
    assert (volume.root / "scratch" / "ab" / "r1" / "f").exists()


# -- key --------------------------------------------------------------------------------------


def test_the_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    first = ArtifactVolume(tmp_path)
    path = tmp_path / ".secret-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.key) == 64
    assert first.key == path.read_text().strip().encode()
    second = ArtifactVolume(tmp_path)
    assert second.key == first.key
    committed(first)
    assert second.verify("titanic", "r1")["name"] == "titanic"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [".secret-key"]


def test_each_data_dir_gets_its_own_key(tmp_path: Path) -> None:
    assert ArtifactVolume(tmp_path / "a").key != ArtifactVolume(tmp_path / "b").key


def test_an_existing_key_file_is_used(tmp_path: Path) -> None:
    (tmp_path / ".secret-key").write_text("my key\n")
    assert ArtifactVolume(tmp_path).key == b"my key"


def test_an_empty_key_file_is_refused_not_used(tmp_path: Path) -> None:
    (tmp_path / ".secret-key").write_text("")
    with pytest.raises(RuntimeError, match="empty"):
        ArtifactVolume(tmp_path)


def test_lo_secret_key_overrides_the_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_file = ArtifactVolume(tmp_path)
    committed(from_file)
    monkeypatch.setenv("LO_SECRET_KEY", "from the environment")
    from_env = ArtifactVolume(tmp_path)
    assert from_env.key == b"from the environment"
    with pytest.raises(TamperedArtifact):
        from_env.verify("titanic", "r1")
    assert ArtifactVolume(tmp_path, b"from the environment").key == b"from the environment"


def test_lo_secret_key_means_no_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LO_SECRET_KEY", "from the environment")
    ArtifactVolume(tmp_path)
    assert not (tmp_path / ".secret-key").exists()


def test_an_explicit_key_wins_over_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LO_SECRET_KEY", "from the environment")
    assert ArtifactVolume(tmp_path, b"explicit").key == b"explicit"


def _key_of(root: str) -> bytes:
    return ArtifactVolume(Path(root)).key


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    roots = [str(tmp_path)] * 6
    with context.Pool(6) as pool:
        keys = pool.map(_key_of, roots)
    assert len(set(keys)) == 1
    assert keys[0] == (tmp_path / ".secret-key").read_text().strip().encode()
    assert len(keys[0]) == 64


# -- atomic_write_bytes -----------------------------------------------------------------------


def test_atomic_write_bytes_writes_and_replaces_without_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    atomic_write_bytes(path, b"first")
    assert path.read_bytes() == b"first"
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_atomic_write_bytes_failing_leaves_the_target_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "occupied"
    target.mkdir()
    (target / "inside").write_text("kept")
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["occupied"]
    assert (target / "inside").read_text() == "kept"


def test_discard_run_removes_only_that_run(volume: ArtifactVolume) -> None:
    for run in ("old", "new"):
        staging = volume.staging_dir("s", run)
        (staging / "f").write_text(run)
        volume.commit("s", run, staging, kind="object", fmt="raw")
    (volume.staging_dir("s", "next") / "g").write_text("in progress")
    volume.discard_run("s", "old")
    assert not volume.artifact_dir("s", "old").exists()
    assert (volume.artifact_dir("s", "new") / "f").read_text() == "new"
    assert (volume.root / "staging" / "s.next" / "g").exists()
    volume.discard_run("s", "new")
    assert not (volume.root / "artifacts" / "s").exists()
