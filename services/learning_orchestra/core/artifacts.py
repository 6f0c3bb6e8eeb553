"""The artifact volume (`LO_DATA_DIR`): every step output as files plus a signed manifest.

Layout under the data directory:

    artifacts/{name}/{run}/        one directory per successful run; the step's metadata
                                   (`_artifact`) names the current one, so committing a run
                                   is a single metadata update and readers never see half of it
    artifacts/{name}/{run}/manifest.json
    staging/{name}.{run}/          where a run writes before it is committed (renamed)
    uploads/                       request bodies streamed to disk before a job parses them
    logs/{name}.log                captured stdout/stderr of the step's latest run
    scratch/{name}/                a job's working directory

The manifest records format, type, creation time, a SHA-256 per file, library versions and an
HMAC over all of that with a key only the server holds; `verify` refuses anything unsigned or
tampered with, which is what makes it safe to unpickle.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from .errors import NotFound

MANIFEST = "manifest.json"
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class TamperedArtifact(Exception):
    """An artifact whose files do not match its signed manifest."""


class ArtifactVolume:
    """Paths and atomic commits on the data directory."""

    def __init__(self, root: Path, key: bytes | None = None) -> None:
        self.root = Path(root).resolve()
        for sub in ("artifacts", "staging", "uploads", "logs", "scratch"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.key = key if key is not None else self._load_key()

    def _load_key(self) -> bytes:
        env = os.environ.get("LO_SECRET_KEY")
        if env:
            return env.encode()
        path = self.root / ".secret-key"
        if not path.exists():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process created it first
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_hex(32))
        return path.read_text().strip().encode()

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

    def scratch_dir(self, name: str) -> Path:
        path = self.root / "scratch" / name
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
        files = {
            str(p.relative_to(staging)): sha256_file(p)
            for p in sorted(staging.rglob("*"))
            if p.is_file()
        }
        manifest: dict[str, Any] = {
            "name": name,
            "run": run,
            "type": kind,
            "format": fmt,
            "created": time.time(),
            "files": files,
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
        """The manifest, after checking its signature and every file's checksum."""
        manifest = self.manifest(name, run)
        if not hmac.compare_digest(manifest.get("hmac", ""), self._sign(manifest)):
            raise TamperedArtifact(f"the manifest of {name!r} is not signed by this server")
        folder = self.artifact_dir(name, run)
        for rel, digest in manifest["files"].items():
            if sha256_file(folder / rel) != digest:
                raise TamperedArtifact(f"{rel} of {name!r} was changed after it was written")
        return manifest

    def file(self, name: str, run: str, filename: str) -> Path:
        """A payload file of an artifact, by the name its manifest lists (no path tricks)."""
        if filename not in self.manifest(name, run)["files"]:
            raise NotFound(f"step {name!r} has no file {filename!r}")
        return self.artifact_dir(name, run) / filename

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

    def clear_scratch(self, name: str) -> None:
        shutil.rmtree(self.root / "scratch" / name, ignore_errors=True)

    def remove(self, name: str) -> None:
        """Everything the volume holds for step `name`."""
        self.prune(name, None)
        self.log_path(name).unlink(missing_ok=True)
        self.clear_scratch(name)
        for upload in (self.root / "uploads").glob(f"{name}.*"):
            upload.unlink(missing_ok=True)
