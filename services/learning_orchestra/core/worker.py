"""What runs inside a job's worker process.

The supervisor starts one process per job from a forkserver that has already imported the
heavy libraries the service needs. The process dies with its parent (PR_SET_PDEATHSIG), leads
its own process group (so a cancel kills anything it started), writes its stdout/stderr to the
step's log file, and reports to the supervisor over a pipe:

    ("progress", {...})            any time, e.g. {"rows": 10000}
    ("finished", {...})            metadata the runner returned, after the artifact is committed
    ("failed", message, traceback) the runner raised

A multi-output job (`JobSpec.outputs`, e.g. builder/sparkml's one table per classifier) also
reports each output as soon as it is committed or known to have failed, and ends with
("finished", {}) once its runner returns:

    ("output", name, {...})                  output `name` is committed: its metadata
    ("output_failed", name, message, trace)  output `name` will not be produced
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from . import references
from .artifacts import ArtifactVolume
from .errors import JobFailed, LOError
from .formats import item, load_output
from .settings import Settings

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs, sent to it pickled."""

    name: str
    step_type: str
    runner: str
    run: str
    parameters: dict[str, Any]
    parents: dict[str, dict[str, Any]]  # parent name -> its metadata document
    data_dir: str
    key: bytes
    # The server's Settings (pickled as they are: validating them again from a dict costs a
    # worker milliseconds, as pydantic-settings reads the environment), or as JSON.
    settings: Settings | dict[str, Any] = field(default_factory=dict)
    internal: dict[str, Any] = field(default_factory=dict)  # e.g. the staged upload's path
    # A pooled sandbox interpreter lent to this job (sandbox/pool.py `Pooled`), or None.
    sandbox: Any = None
    # A multi-output job's outputs to produce, {step name: output key} (StepType.outputs);
    # empty for a step of one output, `name`.
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Output:
    """What a runner returns: what it wrote to `ctx.output_dir`, and metadata to record."""

    kind: str  # "table", "file", "object", ...
    format: str  # "parquet", "raw", "joblib", ...
    metadata: dict[str, Any] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)


class JobContext:
    """The runner's view of its job."""

    def __init__(self, spec: JobSpec, conn: Connection | None) -> None:
        self.spec = spec
        self.name = spec.name
        self.parameters = spec.parameters
        self.settings = (
            spec.settings
            if isinstance(spec.settings, Settings)
            else Settings.model_validate(spec.settings)
        )
        self.volume = ArtifactVolume(Path(spec.data_dir), spec.key, prepare=False)
        self.output_dir = self.volume.staging_dir(spec.name, spec.run)
        self.scratch_dir = self.volume.scratch_dir(spec.name, spec.run)
        self._conn = conn
        self._loaded: dict[str, Any] = {}
        # A multi-output job's outputs, and the staging folder and the end of each
        self.outputs = dict(spec.outputs)
        self._staging: dict[str, Path] = {}
        self._ended: set[str] = set()
        # Messages may come from several threads (a runner committing while a thread
        # forwards progress): one at a time on the pipe.
        self._send_lock = threading.Lock()

    def _send(self, message: tuple[Any, ...]) -> None:
        if self._conn is not None:
            with self._send_lock:
                self._conn.send(message)

    def progress(self, **fields: Any) -> None:
        """Publish progress (rows so far, epochs, trials); observers see it at once (every
        output not yet ended of a multi-output job)."""
        self._send(("progress", fields))

    # -- a multi-output job's outputs ------------------------------------------------------
    def _pending_output(self, name: str) -> None:
        if name not in self.outputs:
            raise JobFailed(f"{name!r} is not an output of this job ({', '.join(self.outputs)})")
        if name in self._ended:
            raise JobFailed(f"output {name!r} of this job has ended already")

    def output_dir_for(self, name: str) -> Path:
        """The (empty) staging folder of output `name` of a multi-output job."""
        self._pending_output(name)
        self._staging[name] = self.volume.staging_dir(name, self.spec.run)
        return self._staging[name]

    def commit_output(self, name: str, output: Output) -> None:
        """Commit output `name` of a multi-output job (what `output_dir_for(name)` holds, as
        `output` says): the server records that step finished at once."""
        self._pending_output(name)
        staging = self._staging.get(name) or self.output_dir_for(name)
        self.volume.commit(
            name,
            self.spec.run,
            staging,
            kind=output.kind,
            fmt=output.format,
            libraries=output.libraries,
        )
        self._ended.add(name)
        self._send(("output", name, {**output.metadata, "libraries": output.libraries}))

    def fail_output(self, name: str, message: str, trace: str | None = None) -> None:
        """Output `name` of a multi-output job will not be produced: its step fails with
        `message` (and `trace`) at once, while the job goes on with the others."""
        self._pending_output(name)
        self._ended.add(name)
        self._send(("output_failed", name, message, trace))

    def parent(self, name: str) -> dict[str, Any]:
        """The metadata document of a parent step, as it was when this job started."""
        return self.spec.parents[name]

    def load(self, name: str) -> Any:
        """The stored output of parent step `name` (see `formats.load_output`)."""
        if name not in self._loaded:
            self._loaded[name] = load_output(self.volume, self.parent(name))
        return self._loaded[name]

    def resolve(self, value: Any, evaluate: Callable[[str], Any] | None = None) -> Any:
        """`value` with `$name` / `$name.key` references replaced by parents' outputs."""

        def load(ref: references.Reference) -> Any:
            output = self.load(ref.name)
            return output if ref.key is None else item(output, ref.key, ref.name)

        return references.resolve(value, load, evaluate)


# A multi-output job's runner returns None: it commits its outputs itself (`commit_output`).
Runner = Callable[[JobContext], Output | None]


def load_runner(path: str) -> Runner:
    module, _, attr = path.partition(":")
    runner: Runner = getattr(importlib.import_module(module), attr)
    return runner


def _die_with_parent() -> None:
    # The forkserver hands each child a copy of the pipe end that keeps the forkserver alive
    # while "clients" remain. Holding it, a worker would keep its forkserver parent running
    # after the service dies, and PR_SET_PDEATHSIG would never fire. Drop it.
    alive_fd = getattr(forkserver._forkserver, "_forkserver_alive_fd", None)
    if alive_fd is not None:
        with contextlib.suppress(OSError):
            os.close(alive_fd)
        setattr(forkserver._forkserver, "_forkserver_alive_fd", None)  # noqa: B010
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _capture_output(log_path: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True)


def main(spec: JobSpec, conn: Connection, log_path: str) -> None:
    """Entry point of a worker process."""
    # Everything inherited from the forkserver (the preloaded libraries' objects) leaves the
    # garbage collector's view: a full collection would otherwise walk, and so copy on write,
    # every page of them (~40 ms of CPU measured here). The job's own objects are collected as
    # usual.
    gc.freeze()
    _die_with_parent()
    os.setsid()
    _capture_output(log_path)
    try:
        ctx = JobContext(spec, conn)
        output = load_runner(spec.runner)(ctx)
        if spec.outputs:  # committed one by one (`commit_output`); the others fail now
            conn.send(("finished", {}))
            return
        if output is None:
            raise JobFailed(f"the runner of {spec.step_type} returned no output")
        ctx.volume.commit(
            spec.name,
            spec.run,
            ctx.output_dir,
            kind=output.kind,
            fmt=output.format,
            libraries=output.libraries,
        )
        conn.send(("finished", {**output.metadata, "libraries": output.libraries}))
    except (JobFailed, LOError) as exc:
        conn.send(("failed", str(exc), getattr(exc, "traceback", None)))
    except MemoryError:
        conn.send(("failed", "the job ran out of memory", traceback.format_exc()))
    except Exception as exc:  # the user sees the message; the traceback is kept for them
        log.exception("step %s failed", spec.name)
        conn.send(("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    finally:
        conn.close()
        sys.stdout.flush()
        sys.stderr.flush()
