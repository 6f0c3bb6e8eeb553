"""The artifact volume (`LO_DATA_DIR`): every step output as files plus a signed manifest.

Layout under the data directory:

    artifacts/{name}/{run}/        one directory per successful run; the step's metadata
                                   (`_artifact`) names the current one, so committing a run
                                   is a single metadata update and readers never see half of it
    artifacts/{name}/{run}/manifest.json
    staging/{name}.{run}/          where a run writes before it is committed (renamed)
    uploads/                       request bodies streamed to disk before a job parses them
    logs/{name}.log                captured stdout/stderr of the step's latest run
    scratch/{name}/{run}/          a job's working directory
    instances/{token}.lock         held (flock) by each live supervisor (core/jobs.py)

The data directory and `scratch/` are closed to other users except for passing through
(mode 0711), the other folders are private (0700): sandboxed user code, which runs as another
user when the server runs as root, reaches its own scratch folder and nothing else.

The manifest records format, type, creation time, a SHA-256 per file, library versions and an
HMAC over all of that with a key only the server holds; `verify` refuses anything unsigned or
tampered with, which is what makes it safe to unpickle.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import stat
import time
from pathlib import Path
from typing import Any

from .errors import Invalid, NotFound

MANIFEST = "manifest.json"
CHUNK = 1 << 20


#: Formats whose files `verify` checks by their signed sizes rather than by hashing them.
SIZE_CHECKED_FORMATS = frozenset({"parquet"})


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def trim_log(path: Path, limit: int) -> int:
    """Keep the log file at `path` within about `limit` bytes: once it is larger, its last
    half stays, behind a line that says how much was dropped. The bytes dropped (0: none).

    Writers append (O_APPEND), so what they write next lands after the kept part; a line
    written between the read and the truncation can be lost, which a log can afford."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size <= limit:
        return 0
    keep = limit // 2
    with path.open("r+b") as handle:
        handle.seek(size - keep)
        tail = handle.read(keep)
        dropped = size - len(tail)
        marker = f"[... {dropped} bytes of earlier output dropped (LO_MAX_LOG_MB) ...]\n"
        handle.seek(0)
        handle.write(marker.encode() + tail)
        handle.truncate()
    return dropped


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _create_key(path: Path) -> None:
    """Write a new random key to `path` unless another process got there first; the file
    appears whole (hard-linked from a temp file), so no reader ever sees it empty."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process created it first
    except OSError:  # a file system without hard links: create in place
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(tmp.read_text())
    finally:
        tmp.unlink(missing_ok=True)


def _restrict(path: Path, remove: int) -> None:
    """Clear the permission bits `remove` of a folder this process owns."""
    info = path.stat()
    if info.st_uid == os.geteuid() and info.st_mode & remove:
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~remove)


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


class TamperedArtifact(Exception):
    """An artifact whose files do not match its signed manifest."""


class ArtifactVolume:
    """Paths and atomic commits on the data directory."""

    def __init__(self, root: Path, key: bytes | None = None, *, prepare: bool = True) -> None:
        """The volume at `root`; `prepare` creates its folders and sets their modes (a job's
        worker, whose server has done that already, skips it)."""
        self.root = Path(root).resolve()
        if not prepare:
            self.key = key if key is not None else self._load_key()
            return
        self.root.mkdir(parents=True, exist_ok=True)
        # Sandboxed user code runs as another user (docs/security.md): it may pass through
        # the data directory to its own scratch folder, and read or write nothing else here.
        _restrict(self.root, 0o066)
        for sub in ("artifacts", "staging", "uploads", "logs", "scratch"):
            (self.root / sub).mkdir(exist_ok=True)
            _restrict(self.root / sub, 0o066 if sub == "scratch" else 0o077)
        self.key = key if key is not None else self._load_key()

    def _load_key(self) -> bytes:
        """LO_SECRET_KEY (or the file LO_SECRET_KEY_FILE names: a Docker secret), else the
        volume's own key file, made on first use."""
        # here, not at module level: sandboxed children import this module (core/formats.py)
        # and have no use for pydantic-settings
        from .settings import SECRET_KEY, secret_value

        configured = secret_value(SECRET_KEY)
        if configured:
            return configured.encode()
        path = self.root / ".secret-key"
        if not path.exists():
            _create_key(path)
        for _ in range(20):  # a writer without hard links may not have written it yet
            key = path.read_text().strip()
            if key:
                return key.encode()
            time.sleep(0.05)
        raise RuntimeError(
            f"the artifact key file {path} is empty: delete it so the server makes a new one"
        )

    # -- paths ------------------------------------------------------------------------------
    def artifact_dir(self, name: str, run: str) -> Path:
        return self.root / "artifacts" / name / run

    def staging_dir(self, name: str, run: str) -> Path:
        path = self.root / "staging" / f"{name}.{run}"
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def log_path(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def scratch_dir(self, name: str, run: str) -> Path:
        """Run `run` of step `name`'s own working folder (a run never shares it: a step deleted
        and created again may have two runs alive for a moment)."""
        path = self.root / "scratch" / name / run
        path.mkdir(parents=True, exist_ok=True)
        return path

    def upload_path(self, token: str) -> Path:
        return self.root / "uploads" / token

    # -- manifests --------------------------------------------------------------------------
    def _sign(self, manifest: dict[str, Any]) -> str:
        body = json.dumps(
            {k: v for k, v in manifest.items() if k != "hmac"}, sort_keys=True
        ).encode()
        return hmac.new(self.key, body, hashlib.sha256).hexdigest()

    def commit(
        self,
        name: str,
        run: str,
        staging: Path,
        *,
        kind: str,
        fmt: str,
        libraries: dict[str, str] | None = None,
    ) -> Path:
        """Sign what `staging` holds and move it to its final place in one rename."""
        if (staging / MANIFEST).exists():
            raise Invalid(
                f"{name!r} wrote a file named {MANIFEST}, a name the data volume keeps for its "
                "own manifest: give the file another name"
            )
        paths = [p for p in sorted(staging.rglob("*")) if p.is_file()]
        files = {str(p.relative_to(staging)): sha256_file(p) for p in paths}
        manifest: dict[str, Any] = {
            "name": name,
            "run": run,
            "type": kind,
            "format": fmt,
            "created": time.time(),
            "files": files,
            "sizes": {str(p.relative_to(staging)): p.stat().st_size for p in paths},
            "libraries": libraries or {},
        }
        manifest["hmac"] = self._sign(manifest)
        atomic_write_bytes(staging / MANIFEST, json.dumps(manifest, indent=1).encode())
        final = self.artifact_dir(name, run)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, final)
        fsync_dir(final.parent)
        return final

    def manifest(self, name: str, run: str) -> dict[str, Any]:
        path = self.artifact_dir(name, run) / MANIFEST
        try:
            manifest: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise NotFound(f"the output of {name!r} is missing from the data volume") from None
        return manifest

    def verify(self, name: str, run: str) -> dict[str, Any]:
        """The manifest, after checking its signature, every file, and that the folder holds
        no file the manifest does not list.

        Files are checked against their checksums, computed once at commit — except a
        table's (format "parquet", possibly gigabytes in many parts, never deserialised into
        code), whose files are checked against the sizes the signed manifest records: a
        table is read by every step that uses it, and hashing it each time would cost as
        much as reading it."""
        try:
            manifest = self.manifest(name, run)
            signature = manifest.get("hmac")
            signed = isinstance(signature, str) and hmac.compare_digest(
                signature.encode(), self._sign(manifest).encode()
            )
        except (ValueError, AttributeError, TypeError):  # not JSON, not an object, ...
            signed = False
        if not signed:
            raise TamperedArtifact(f"the manifest of {name!r} is not signed by this server")
        folder = self.artifact_dir(name, run)
        sizes = manifest.get("sizes") if manifest["format"] in SIZE_CHECKED_FORMATS else None
        for rel, digest in manifest["files"].items():
            try:
                if sizes is not None:
                    same = (folder / rel).stat().st_size == sizes.get(rel)
                else:
                    same = sha256_file(folder / rel) == digest
            except OSError:
                raise TamperedArtifact(
                    f"{rel} of {name!r} is missing from the data volume"
                ) from None
            if not same:
                raise TamperedArtifact(f"{rel} of {name!r} was changed after it was written")
        extra = (
            {str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir()}
            - set(manifest["files"])
            - {MANIFEST}
        )
        if extra:
            raise TamperedArtifact(
                f"{name!r} holds files its manifest does not list: {', '.join(sorted(extra))}"
            )
        return manifest

    def file(self, name: str, run: str, filename: str) -> Path:
        """A payload file of an artifact, by the name its manifest lists (no path tricks)."""
        folder = self.artifact_dir(name, run)
        path = (folder / filename).resolve()
        # listed, and (a symlink, or a manifest edited on disk, notwithstanding) inside the folder
        if filename not in self.manifest(name, run)["files"] or not path.is_relative_to(folder):
            raise NotFound(f"step {name!r} has no file {filename!r}")
        return folder / filename

    # -- cleanup ----------------------------------------------------------------------------
    def prune(self, name: str, keep: str | None) -> None:
        """Remove every run of `name` but `keep` (all when None), and the step's scratch."""
        folder = self.root / "artifacts" / name
        if folder.exists():
            for run_dir in folder.iterdir():
                if run_dir.name != keep:
                    shutil.rmtree(run_dir, ignore_errors=True)
            if keep is None:
                shutil.rmtree(folder, ignore_errors=True)
        for stale in (self.root / "staging").glob(f"{name}.*"):
            shutil.rmtree(stale, ignore_errors=True)

    def discard_run(self, name: str, run: str) -> None:
        """Remove what run `run` of `name` wrote (committed or staged), nothing else."""
        shutil.rmtree(self.artifact_dir(name, run), ignore_errors=True)
        shutil.rmtree(self.root / "staging" / f"{name}.{run}", ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.root / "artifacts" / name).rmdir()  # only once no other run lives there

    def clear_scratch(self, name: str, run: str | None = None) -> None:
        """Remove one run's working folder (every run's when `run` is None)."""
        folder = self.root / "scratch" / name
        shutil.rmtree(folder if run is None else folder / run, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.rmdir()  # only once no run uses it

    def clear_old_scratch(self, name: str, upto: int) -> None:
        """Remove the working folders of runs numbered `upto` or less (run ids start with the
        run's number): what a crash left of earlier runs, before the step runs again."""
        folder = self.root / "scratch" / name
        if not folder.is_dir():
            return
        for run_dir in folder.iterdir():
            number = run_dir.name.partition("-")[0]
            if number.isdigit() and int(number) <= upto:
                shutil.rmtree(run_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.rmdir()

    def leftovers(self, min_age: float) -> dict[str, list[tuple[str, str]]]:
        """What the volume holds, by kind, for `sweep` to judge against the store:
        `artifacts`, `staging` and `scratch` as (step, run), `uploads` as ("", file name),
        `logs` as (step, ""). Uploads and logs changed in the last `min_age` seconds are
        left out (an upload may still be arriving)."""
        recent = time.time() - min_age
        found: dict[str, list[tuple[str, str]]] = {
            "artifacts": [],
            "staging": [],
            "scratch": [],
            "uploads": [],
            "logs": [],
        }
        for kind in ("artifacts", "scratch"):
            for step_dir in _entries(self.root / kind):
                found[kind] += [(step_dir.name, run.name) for run in _entries(step_dir)]
        for entry in _entries(self.root / "staging"):
            name, _, run = entry.name.rpartition(".")
            found["staging"].append((name, run))
        for kind in ("uploads", "logs"):
            for entry in _entries(self.root / kind):
                with contextlib.suppress(OSError):
                    if entry.lstat().st_mtime < recent:
                        found[kind].append(
                            ("", entry.name) if kind == "uploads" else (entry.stem, "")
                        )
        return found

    def remove_leftovers(self, found: list[tuple[str, str, str]]) -> None:
        """Remove entries `leftovers` listed, as (kind, step, run)."""
        for kind, name, run in found:
            if kind == "artifacts":
                self.discard_run(name, run)
            elif kind == "staging":
                shutil.rmtree(self.root / "staging" / f"{name}.{run}", ignore_errors=True)
            elif kind == "scratch":
                self.clear_scratch(name, run)
            elif kind == "uploads":
                self.upload_path(run).unlink(missing_ok=True)
            elif kind == "logs":
                self.log_path(name).unlink(missing_ok=True)

    def remove(self, name: str, scratch: bool = True) -> None:
        """Everything the volume holds for step `name` (but its scratch folders, which a job
        may still be working in, unless `scratch`)."""
        self.prune(name, None)
        self.log_path(name).unlink(missing_ok=True)
        if scratch:
            self.clear_scratch(name)
        for upload in (self.root / "uploads").glob(f"{name}.*"):
            upload.unlink(missing_ok=True)
