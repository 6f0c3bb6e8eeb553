"""Running user code contained: a child process of the job's worker (docs/security.md).

The worker is trusted server code: it holds the artifact key and may write the data
directory. User code never runs in it. A `Sandbox` prepares a folder for one run,

    {scratch}/inputs/    the request and verified copies of the parents' outputs (read-only)
    {scratch}/work/      the child's working directory and HOME: files left here are kept
    {scratch}/tmp/       its TMPDIR (discarded)
    {scratch}/out/       its report and `response`, in the response's natural format

where {scratch} is the step's scratch folder in the volume, then starts the child
(`sandbox/child.py`) with

- an environment built from scratch: no LO_* variables, tokens, keys or store URLs;
- stdin at /dev/null, stdout and stderr on the step's log (so `functionMessage` and `/logs`);
- when the server runs as root, the uid/gid of LO_SANDBOX_USER (default `nobody`) and no
  supplementary groups: the volume's folders, the store and the key are closed to it. The
  child drops to it itself, after making the folders it needs (the interpreter, its scratch
  folder) reachable where a closed folder is on the way (`sandbox/mounts.py`);
- in the worker's process group, the worker being its subreaper, so that a cancel, the
  wall-clock timeout or the memory watch of the supervisor kill the child and anything it
  started (also what left the group with setsid);
- RLIMIT_CPU = LO_JOB_CPU_SECONDS (Settings.cpu_seconds) and, where the kernel has it,
  Landlock: reading anything but the data directory (its own scratch folder excepted),
  the SQLite store and the files `LO_*_FILE` variables name (secrets), writing only
  `work/`, `tmp/`, `out/` and /dev/shm, no signals to processes outside its sandbox.

After the child ends, whatever it left running is killed, its report (JSON) is read, and the
files of `out/response/` and `work/` are copied (regular files only: links, devices and
pipes are never followed) into the job's output, which the worker then signs. The worker
never unpickles anything the child wrote.

A toolkit's `Job` (builder/sparkml: several outputs from one run) announces each output as
soon as it is written (`out/outputs.jsonl`): `run_job` follows those events while the child
runs (`OutputTail`: each checked, once per requested key) and hands each to the runner,
which copies that output's files (`take_output`, without following any link, while the
child may still be writing elsewhere) and commits it at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from ..core import references
from ..core.artifacts import MANIFEST, TamperedArtifact
from ..core.errors import JobFailed
from ..core.formats import MAIN_FILE
from ..core.settings import Settings, secret_files
from . import landlock, namespaces, seccomp
from .protocol import (
    ACCEPTED,
    CONFIG,
    EXITED,
    MAX_ADAPTER_METADATA,
    MAX_MESSAGE,
    MAX_OUTPUT_EVENT,
    MAX_PROGRESS,
    MAX_TRACEBACK,
    OUTPUT_EVENTS,
    OUTPUTS,
    PROGRESS,
    PROGRESS_ENV,
    READY,
    REPORT,
    REQUEST,
    RESPONSE,
    Call,
    Job,
    Pooled,
    Request,
    StagedOutput,
)

if TYPE_CHECKING:
    from ..core.worker import JobContext

log = logging.getLogger(__name__)

CHILD = "learning_orchestra.sandbox.child"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding learning_orchestra
PR_SET_CHILD_SUBREAPER = 36
PR_SET_DUMPABLE = 4
#: Variables of the server's environment the child gets; everything else is left out.
KEEP_ENV = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "LD_LIBRARY_PATH",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
)
MAX_REPORT = 1 << 20
MAX_PROCESSES = 4096  # processes and threads of the sandbox user (root mode only)
KILL_GRACE_SECONDS = 30  # the supervisor's wall-clock limit normally comes first
COPY_CHUNK = 1 << 20
KINDS = {"table", "array", "object", "dict", "list"}
SHM = ".shm"  # in the child's private /tmp: its /dev/shm
SHM_HOST = "/dev/shm"


@dataclass(frozen=True)
class SandboxUser:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Plan:
    """How a run of user code is confined on this machine (docs/security.md)."""

    own_user: bool  # the server is not root: the child keeps its user, in a user namespace
    namespaces: bool  # private mount (and user, network) namespaces can be made
    network: str  # "loopback" (own network namespace), "tcp-ports" (Landlock), "host", "none"
    tcp_ports: tuple[int, ...] | None  # the Landlock allow-list, for "tcp-ports"
    landlock: int  # the ABI applied; 0: none

    @property
    def private_tmp(self) -> bool:
        return self.namespaces

    @property
    def block_unix_sockets(self) -> bool:
        """The child keeps the server's user: the server's Unix sockets would be its own."""
        return self.own_user

    def describe(self, user: SandboxUser | None) -> dict[str, Any]:
        """What was applied, for the step's metadata (`sandbox`)."""
        names = ["mount"] if self.namespaces else []
        if self.namespaces and self.own_user:
            names.insert(0, "user")
        if self.network == "loopback":
            names.append("network")
        described: dict[str, Any] = {
            "user": user.name if user else None,
            "landlock": self.landlock or None,
            "namespaces": names,
            "network": self.network,
            "privateTmp": self.private_tmp,
            "unixSockets": "blocked" if self.block_unix_sockets else "allowed",
        }
        if self.tcp_ports is not None:
            described["tcpPorts"] = list(self.tcp_ports)
        return described


def plan(settings: Settings, user: SandboxUser | None, host_network: bool = False) -> Plan:
    """The confinement this machine allows under `settings`; `JobFailed` where it is not
    enough to run user code and LO_ALLOW_UNCONFINED is not set. `host_network`: this run
    needs the host's network whatever LO_SANDBOX_NETWORK says (a Spark driver of
    LO_SPARK_MASTER, which its master and executors connect to: docs/security.md)."""
    own_user = user is None
    abi = landlock.abi_version()
    can_namespace = namespaces.available(own_user, True)
    unconfined = settings.allow_unconfined
    hint = "(docs/security.md; LO_ALLOW_UNCONFINED=1 runs it anyway)"
    if own_user and not abi and not unconfined:
        raise JobFailed(
            "user code cannot be confined here: the server is not root and this kernel has no "
            f"Landlock, so the code would have every right of the server's user {hint}"
        )
    if own_user and not seccomp.available() and not unconfined:
        raise JobFailed(
            "user code cannot be confined here: no seccomp filter for this architecture, so "
            f"the code could reach the server's Unix sockets {hint}"
        )
    ports: tuple[int, ...] | None = None
    if settings.sandbox_network == "host" or host_network:
        network = "host"
    elif can_namespace:
        network = "loopback"
    elif abi >= 4:
        network, ports = "tcp-ports", tuple(settings.sandbox_ports)
    elif unconfined:
        network = "none"
    else:
        raise JobFailed(
            "the network of user code cannot be confined here: no network namespace can be "
            f"made and Landlock (ABI {abi}) cannot restrict TCP (needs ABI 4, Linux 6.7); set "
            f"LO_SANDBOX_NETWORK=host to give user code the host's network {hint}"
        )
    return Plan(own_user, can_namespace, network, ports, abi)


@dataclass
class Report:
    """What the child reported about a successful run."""

    kind: str
    format: str
    details: dict[str, Any] = field(default_factory=dict)
    # What the toolkit adapter reported for the step's metadata (metrics, history, ...).
    metadata: dict[str, Any] = field(default_factory=dict)


def sandbox_user(name: str) -> SandboxUser | None:
    """The user that runs user code: LO_SANDBOX_USER when the server is root, else None
    (the child keeps the server's user; Landlock is then what confines it)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise JobFailed(
            f"LO_SANDBOX_USER={name!r} is not a user of this system: create it or choose "
            "another unprivileged user"
        ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise JobFailed(f"LO_SANDBOX_USER={name!r} is root: choose an unprivileged user")
    return SandboxUser(name, entry.pw_uid, entry.pw_gid)


def _passable(folder: Path, user: SandboxUser) -> bool:
    info = folder.stat()
    if info.st_uid == user.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == user.gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def closed_folders(paths: Iterable[Path], user: SandboxUser) -> dict[str, list[str]]:
    """{closed folder: [paths under it]} for the `paths` `user` cannot reach: for each, the
    topmost folder on its way that `user` (without supplementary groups) cannot pass."""
    covers: dict[str, list[str]] = {}
    for path in sorted({p.resolve() for p in paths}):
        if any(path.is_relative_to(p) for ps in covers.values() for p in map(Path, ps)):
            continue  # inside a path made reachable already
        closed = next((f for f in reversed(path.parents) if not _passable(f, user)), None)
        if closed is not None:
            covers.setdefault(str(closed), []).append(str(path))
    return covers


def needed_paths() -> list[Path]:
    """What the child must read: the interpreter, the project, the modules the worker sees."""
    paths = {Path(sys.base_prefix), Path(sys.prefix), Path(sys.exec_prefix), PACKAGE_ROOT}
    paths.update(Path(p) for p in sys.path if p and os.path.isdir(p))
    return sorted(paths)


def readable_except(hidden: Iterable[Path]) -> list[str]:
    """Paths whose subtrees hold everything on the file system but the `hidden` ones.

    Landlock only grants: "all but the data directory" becomes the siblings of each folder
    on the way down to it. A sibling that is a symlink into (or above) a hidden folder is
    left out. (Plain strings, not pathlib: this runs for every job, over folders such as
    /tmp that can hold thousands of entries.)"""
    hidden_paths = [h.resolve() for h in hidden]
    on_the_way = {str(p) for h in hidden_paths for p in (h, *h.parents)}
    folders = {str(p) for h in hidden_paths for p in h.parents}
    hidden_strs = [str(h) for h in hidden_paths]

    def within(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip("/") + "/")

    paths: list[str] = []
    for folder in sorted(f for f in folders if not any(within(f, h) for h in hidden_strs)):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            path = entry.path
            if path in on_the_way:
                continue
            target = path  # `folder` is resolved: only a symlink can lead elsewhere
            if entry.is_symlink():
                try:
                    target = os.path.realpath(path, strict=True)
                except (OSError, RuntimeError):
                    continue
            if any(within(target, h) or within(h, target) for h in hidden_strs):
                continue
            paths.append(path)
    return paths


def base_environment() -> dict[str, str]:
    """The environment every sandboxed interpreter starts from: the KEEP_ENV variables of the
    server's and what Python needs; no LO_* variable, token, key or store URL."""
    env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        PYTHONPATH=str(PACKAGE_ROOT),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        MPLBACKEND="Agg",
    )
    return env


def _prctl(option: int, value: int) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


class Sandbox:
    """One run of user code for the job `ctx`: its folders, its inputs and its child.

    `env`: variables added to the child's environment (a toolkit's settings, e.g.
    TF_CPP_MIN_LOG_LEVEL); the server's own environment is never passed on. `host_network`:
    the child gets the host's network (see `plan`)."""

    def __init__(
        self, ctx: JobContext, env: Mapping[str, str] | None = None, host_network: bool = False
    ) -> None:
        self.ctx = ctx
        self.extra_env = dict(env or {})
        self.user = sandbox_user(ctx.settings.sandbox_user)
        self.plan = plan(ctx.settings, self.user, host_network)
        self.root = root = ctx.scratch_dir
        os.chmod(root, 0o711)
        self.inputs = self._folder("inputs", private=False)
        self.work = self._folder("work")
        self.tmp = self._folder("tmp")
        self.out = self._folder("out")
        self._staged: dict[str, StagedOutput] = {}
        self.pooled = False  # the run went to a pooled interpreter (sandbox/pool.py)

    def _folder(self, name: str, private: bool = True) -> Path:
        path = self.root / name
        shutil.rmtree(path, ignore_errors=True)  # left by an interrupted run
        path.mkdir(mode=0o700 if private else 0o755)
        os.chmod(path, 0o700 if private else 0o755)
        if private and self.user is not None:
            os.chown(path, self.user.uid, self.user.gid)
        return path

    @property
    def protections(self) -> dict[str, Any]:
        """How the code is confined, for the step's metadata; `pooled`: whether it ran in
        an interpreter started ahead of need (sandbox/pool.py) or a fresh one."""
        return {**self.plan.describe(self.user), "pooled": self.pooled}

    # -- inputs -----------------------------------------------------------------------------
    def stage(self, ref: references.Reference) -> StagedOutput:
        """A parent's output for the child: checked against its signed manifest, then
        linked (or copied) into `inputs/`. Loading it is left to the child."""
        if ref.name not in self._staged:
            self._staged[ref.name] = self._copy_of(ref.name)
        staged = self._staged[ref.name]
        return StagedOutput(ref.name, ref.key, staged.folder, staged.format, staged.files)

    def _copy_of(self, name: str) -> StagedOutput:
        parent = self.ctx.parent(name)
        run = parent.get("_artifact")
        if run is None:
            raise JobFailed(f"step {name!r} has no output to use (status {parent['status']})")
        try:
            manifest = self.ctx.volume.verify(name, run)
        except TamperedArtifact as exc:
            raise JobFailed(f"refusing to use {name!r}: {exc}") from None
        files = tuple(f for f in manifest["files"] if f != MANIFEST)
        source, target = self.ctx.volume.artifact_dir(name, run), self.inputs / name
        target.mkdir(mode=0o755)
        for rel in files:
            (target / rel).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            _link_or_copy(source / rel, target / rel)
        return StagedOutput(name, None, str(target), manifest["format"], files)

    # -- running ----------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """The child's whole environment (nothing else of the server's is passed on)."""
        env = base_environment()
        # Libraries' caches and settings (matplotlib's font list, keras.json) go to TMPDIR,
        # not into HOME, whose files are kept as the step's files.
        tmp = str(self.tmp)
        env.update(HOME=str(self.work), TMPDIR=tmp, XDG_CACHE_HOME=tmp, KERAS_HOME=tmp)
        env[PROGRESS_ENV] = str(self.out / PROGRESS)  # sandbox.child.progress appends there
        env.update(self.extra_env)
        return env

    def config(self) -> dict[str, Any]:
        plan, user = self.plan, self.user
        covers, binds = self._mounts()
        rules = None
        if self.plan.landlock:
            hidden = [self.ctx.volume.root]
            store = self.ctx.settings.resolved_store_url
            if store.startswith("sqlite://"):  # also when it lies outside the data directory
                db = Path(store[len("sqlite://") :])
                hidden += [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
            # LO_*_FILE: Docker secrets (tokens, the artifact key, the store's URL) are
            # world-readable files as Docker mounts them by default
            hidden += secret_files()
            read = [*readable_except(hidden), str(self.root)]
            write = [str(self.work), str(self.tmp), str(self.out), "/dev/shm"]
            if plan.private_tmp:  # its own tmpfs: readable; writable unless a path the
                read.append("/tmp")  # child needs (its inputs!) is mounted back beneath it
                if not covers[0]["keep"]:
                    write.append("/tmp")
            rules = {
                "read": read,
                "write": write,
                "write_files": ["/dev"],  # existing device nodes: /dev/null, GPUs
                "tcp_ports": list(plan.tcp_ports) if plan.tcp_ports is not None else None,
            }
        return {
            "unshare": (
                {"user": plan.own_user, "network": plan.network == "loopback"}
                if plan.namespaces
                else None
            ),
            "mounts": covers,
            "binds": binds,
            "user": None if user is None else {"uid": user.uid, "gid": user.gid},
            "work": str(self.work),
            "parent": os.getpid(),
            "cpu_seconds": self.ctx.settings.cpu_seconds(),
            "max_processes": MAX_PROCESSES if self.user is not None else None,
            "block_unix_sockets": plan.block_unix_sockets,
            "landlock": rules,
            "request": str(self.inputs / REQUEST),
            "out": str(self.out),
        }

    def _mounts(self) -> tuple[list[dict[str, Any]], list[list[str]]]:
        """The tmpfs covers of the child's mount namespace (sandbox/mounts.py) and its binds:
        a private /tmp holding /dev/shm, and the folders closed to the sandbox user."""
        needed = [p.resolve() for p in (*needed_paths(), self.root)]
        covers: list[dict[str, Any]] = []
        binds: list[list[str]] = []
        if self.plan.private_tmp:
            tmp = Path("/tmp").resolve()
            inside = [p for p in needed if p.is_relative_to(tmp)]
            needed = [p for p in needed if p not in inside]
            keep = [
                p for p in sorted(inside) if not any(p.is_relative_to(q) and p != q for q in inside)
            ]
            covers.append(
                {
                    "folder": str(tmp),
                    "options": f"mode=1777,size={self.ctx.settings.job_memory_mb}m",
                    "keep": [str(p) for p in keep],
                    "folders": [str(tmp / SHM)],
                }
            )
            binds.append([str(tmp / SHM), "/dev/shm"])
        if self.user is not None:
            closed = closed_folders(needed, self.user)
            covers += [
                {"folder": folder, "options": "mode=0711,size=1m", "keep": paths}
                for folder, paths in closed.items()
            ]
        return covers, binds

    def run(self, request: Request | Call) -> Report:
        """Run `request` (user source, or a toolkit `Call`) in the child and wait for it;
        the report of a successful run.
        Raises `JobFailed` with the user's error (and traceback) otherwise."""
        code = self._start(request)
        return self._report(code, request.metadata if isinstance(request, Call) else ())

    def run_job(self, job: Job, on_output: Callable[[OutputEvent], None]) -> None:
        """Run a toolkit's `Job` in the child and wait for it; each output it announces goes
        to `on_output` at once, on another thread, while the child goes on (the last ones
        after it ended, before this returns). Raises `JobFailed` with the job's error (and
        traceback) when the job as a whole failed."""
        tail = OutputTail(self.out / OUTPUT_EVENTS, job.outputs, job.metadata, on_output)
        try:
            code = self._start(job)
        finally:
            tail.stop()
        self._outcome(code)

    def take_output(self, key: str, target: Path, accept: Callable[[str], bool]) -> list[str]:
        """Copy the regular files directly in the folder of a `Job`'s output `key`
        (out/outputs/{key}/) whose names `accept` takes into `target` (made if needed); their
        names, sorted. Called while the child still runs: every folder on the way is opened
        without following links, so the code cannot swap one for a link to files it may not
        read. Anything else (subfolders, links, devices, hard-linked files) is skipped."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        fds: list[int] = []
        try:
            fds.append(os.open(self.out, flags))
            for part in (OUTPUTS, key):
                fds.append(os.open(part, flags, dir_fd=fds[-1]))
            names = sorted(n for n in os.listdir(fds[-1]) if accept(n))
            return [n for n in names if _copy_file(n, target / n, dir_fd=fds[-1])]
        except OSError as exc:
            raise JobFailed(f"output {key}: its folder could not be read: {exc}") from None
        finally:
            for fd in fds:
                os.close(fd)

    def _start(self, request: Request | Call | Job) -> int:
        """Run `request` in a child (pooled or fresh) and wait for it; its exit code. What
        it left running is killed."""
        import cloudpickle

        with (self.inputs / REQUEST).open("wb") as handle:
            cloudpickle.dump(request, handle)
        (self.inputs / CONFIG).write_text(json.dumps(self.config()))
        for path in self.inputs.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        if self.user is None and not self.plan.landlock:
            log.warning(
                "no sandbox user (the server is not root) and no Landlock in this kernel: "
                "the code runs with the server user's rights (docs/security.md)"
            )
        if self.plan.network == "none":
            log.warning("LO_ALLOW_UNCONFINED: the code's network is not confined")
        shm_before = None if self.plan.private_tmp else _shm_entries()
        # Orphans of the child become ours, not init's: the supervisor then finds and kills
        # them with the worker. And the worker's /proc files stay closed to the child.
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        _prctl(PR_SET_DUMPABLE, 0)
        sys.stdout.flush()
        sys.stderr.flush()
        tail = ProgressTail(self.out / PROGRESS, self.ctx.progress)
        try:
            pooled = getattr(self.ctx.spec, "sandbox", None)
            code = None if pooled is None else self._run_pooled(pooled)
            if code is None:  # none lent, or it ended before taking the job: a fresh one
                code = self._run_fresh()
        finally:
            tail.stop()
            kill_descendants()
            if shm_before is not None:
                _clean_shm(shm_before, self.user.uid if self.user else os.getuid())
        return code

    def _run_fresh(self) -> int:
        """Run the child in a freshly started interpreter; its exit code."""
        command = [sys.executable, "-s", "-u", "-m", CHILD, str(self.inputs / CONFIG)]
        # Started as the server's user: the child confines itself (child.confine) before it
        # reads anything the user sent.
        child = subprocess.Popen(
            command,
            cwd=self.work,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            close_fds=True,
            umask=0o077,
        )
        try:
            return child.wait(self.ctx.settings.job_timeout + KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait()

    def _run_pooled(self, pooled: Pooled) -> int | None:
        """Run the child in the pooled interpreter the supervisor lent this job (sandbox/
        pool.py): send it the run (config, environment, and our stdout, the step's log) and
        wait for the exit code it reports. None when it ended before taking the job. What
        it answers is only parsed as these few bytes: after ACCEPTED it runs user code in
        a fork, which holds none of this socket."""
        sock = pooled.control
        job = {
            "config": str(self.inputs / CONFIG),
            "env": self.environment(),
            "cwd": str(self.work),
        }
        accepted = False
        received = b""
        try:
            sock.settimeout(self.ctx.settings.job_timeout + KILL_GRACE_SECONDS)
            socket.send_fds(sock, [json.dumps(job).encode()], [sys.stdout.fileno()])
            while True:
                if not accepted:  # READY, sent when it was ready, is still unread
                    received = received.lstrip(READY)
                if received.startswith(ACCEPTED):
                    accepted, received = True, received[len(ACCEPTED) :]
                    self.pooled = True  # (known before the run ends: a Job's outputs say it)
                    continue
                if accepted and received.startswith(EXITED) and len(received) >= 5:
                    (code,) = struct.unpack("!i", received[1:5])
                    return int(code)
                chunk = sock.recv(64)
                if not chunk:
                    break
                received += chunk
        except OSError:  # a timeout: the supervisor's clock stops the job first
            pass
        finally:
            sock.close()
        if not accepted:
            log.info("the pooled interpreter %d ended before its job: starting one", pooled.pid)
            return None
        return -signal.SIGKILL  # it was killed (by the OOM killer?) before it reported

    def _report(self, code: int, metadata: tuple[str, ...]) -> Report:
        report = self._outcome(code)
        kind, fmt = report.get("kind"), report.get("format")
        main = MAIN_FILE.get(fmt) if isinstance(fmt, str) else None
        if kind not in KINDS or main is None or not (self.out / RESPONSE / main).is_file():
            raise JobFailed("the sandboxed code left an invalid report: the step has no output")
        return Report(str(kind), str(fmt), _details(report), _adapter_metadata(report, metadata))

    def _outcome(self, code: int) -> dict[str, Any]:
        """The child's report of a successful run; `JobFailed` with its error otherwise."""
        report = _read_report(self.out / REPORT)
        if report is None:
            raise JobFailed(self._death(code))
        if not report.get("ok"):
            message = str(report.get("message") or "the code failed")
            if report.get("exception") == "MemoryError":
                message = (
                    f"out of memory: the code raised {message} (LO_JOB_MEMORY_MB="
                    f"{self.ctx.settings.job_memory_mb})"
                )
            trace = report.get("traceback")
            raise JobFailed(message, trace if isinstance(trace, str) else None)
        return report

    def _death(self, code: int) -> str:
        if code < 0:
            number = -code
            if number == signal.SIGXCPU:
                return (
                    "timed out: the code used more than LO_JOB_CPU_SECONDS="
                    f"{self.ctx.settings.cpu_seconds()} seconds of CPU time"
                )
            name = signal.Signals(number).name if number in signal.valid_signals() else number
            hint = " (by the kernel's out-of-memory killer?)" if number == signal.SIGKILL else ""
            return f"the code's process was killed by signal {name}{hint} before it finished"
        return (
            f"the code's process exited with code {code} before it finished "
            "(see functionMessage for what it printed)"
        )

    # -- outputs ----------------------------------------------------------------------------
    def collect(self, output_dir: Path, keep: Sequence[str] = ()) -> list[str]:
        """Copy the response into `output_dir` and the files the code left in its working
        directory into `output_dir/files/`; the names of those files. `keep`: files of
        `out/` copied next to the response too (e.g. a plot); each must be there."""
        copy_tree(self.out / RESPONSE, output_dir, strict=True)
        for name in keep:
            if not _copy_file(self.out / name, output_dir / name):
                raise JobFailed(f"the sandboxed code left no regular file {name}")
        return [f"files/{name}" for name in copy_tree(self.work, output_dir / "files")]


def _details(report: dict[str, Any]) -> dict[str, Any]:
    """The facts about the response the child reported, if well-formed (they go into the
    step's metadata)."""

    def names(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    details: dict[str, Any] = {}
    if isinstance(report.get("type"), str):
        details["responseType"] = report["type"][:200]
    for key in ("keys", "fields"):
        if names(report.get(key)):
            details[key] = [v[:200] for v in report[key][:1000]]
    for key in ("rows", "items"):
        if isinstance(report.get(key), int):
            details[key] = report[key]
    shape = report.get("shape")
    if isinstance(shape, list) and len(shape) <= 32 and all(isinstance(n, int) for n in shape):
        details["shape"] = shape
    return details


def _adapter_metadata(report: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The toolkit adapter's metadata in the report (or a `Job`'s output event): only `keys`
    (those its toolkit declares), within MAX_ADAPTER_METADATA bytes of JSON (the child runs
    user code: the report is checked, not trusted)."""
    given = report.get("metadata")
    if not isinstance(given, dict):
        return {}
    kept = {key: given[key] for key in keys if key in given}
    if len(json.dumps(kept, default=str)) > MAX_ADAPTER_METADATA:
        log.warning("the step's reported metadata is over %d bytes: dropped", MAX_ADAPTER_METADATA)
        return {}
    return kept


class ProgressTail:
    """Forwards the latest progress event the child appended to `path` (one JSON object a
    line, sandbox.child.progress) to `publish`, every 0.25 s, on a thread of the worker."""

    INTERVAL = 0.25

    def __init__(self, path: Path, publish: Any) -> None:
        self.path = path
        self.publish = publish
        self.offset = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._follow, name="progress-tail", daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        while not self.stopping.wait(self.INTERVAL):
            self._forward()
        self._forward()  # what came last

    def _forward(self) -> None:
        chunk = _read_events(self.path, self.offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        self.offset += end + 1
        for line in reversed(chunk[:end].splitlines()):  # the newest complete event
            if len(line) > MAX_PROGRESS:
                continue
            try:
                fields = json.loads(line)
            except ValueError:
                continue
            if isinstance(fields, dict) and fields:
                self.publish(**{str(k)[:100]: v for k, v in fields.items()})
                return

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)


@dataclass(frozen=True)
class OutputEvent:
    """A `Job`'s output, announced by the child (sandbox/child.py `Outputs`) and checked:
    ready (`ok`, with the `metadata` keys the Job allows) or failed (`message`, `traceback`).
    Its files are still in the child's out/outputs/{key}/ (`Sandbox.take_output`)."""

    key: str
    ok: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    traceback: str | None = None


class OutputTail(ProgressTail):
    """Hands each output event a `Job`'s child appends to `path` (one JSON object a line) to
    `on_output`, on a thread of the worker, every 0.25 s and once more when stopped. The
    events come from untrusted code: a line over MAX_OUTPUT_EVENT bytes, not an object, for
    a key not in `keys` or announced before is dropped (and logged); metadata keeps only
    `metadata` keys within MAX_ADAPTER_METADATA bytes; messages are cut to their bounds."""

    def __init__(
        self,
        path: Path,
        keys: Sequence[str],
        metadata: tuple[str, ...],
        on_output: Callable[[OutputEvent], None],
    ) -> None:
        self.waiting = set(keys)
        self.metadata = metadata
        self.on_output = on_output
        super().__init__(path, None)

    def _forward(self) -> None:
        while True:
            chunk = _read_events(self.path, self.offset)
            end = chunk.rfind(b"\n")
            if end < 0:
                if len(chunk) > MAX_OUTPUT_EVENT:  # a line that can only be too long
                    self.offset += len(chunk)
                return
            self.offset += end + 1
            for line in chunk[:end].splitlines():
                event = self._checked(line)
                if event is not None:
                    try:
                        self.on_output(event)
                    except Exception:  # the runner's own fault: the output fails later
                        log.exception("output %s could not be handled", event.key)

    def _checked(self, line: bytes) -> OutputEvent | None:
        try:
            given = json.loads(line) if len(line) <= MAX_OUTPUT_EVENT else None
        except ValueError:
            given = None
        key = given.get("key") if isinstance(given, dict) else None
        if not isinstance(given, dict) or not isinstance(key, str) or key not in self.waiting:
            log.warning("ignored an output event: not one of a requested output, once")
            return None
        self.waiting.discard(key)
        if given.get("ok") is True:
            return OutputEvent(key, True, _adapter_metadata(given, self.metadata))
        message, trace = given.get("message"), given.get("traceback")
        return OutputEvent(
            key,
            False,
            message=str(message)[:MAX_MESSAGE] if message else f"output {key} failed",
            traceback=trace[:MAX_TRACEBACK] if isinstance(trace, str) else None,
        )

    def stop(self) -> None:
        """Stop following, once the last events are handed over (no time limit: they may
        take the copy and the commit of a large output)."""
        self.stopping.set()
        self.thread.join()


def _read_events(path: Path, offset: int) -> bytes:
    """Up to 1 MiB of the child's event file `path` from `offset`; nothing while it is not
    there or not a regular file (a link or a pipe the code made in its place is not opened
    and cannot block the worker)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # not written yet
        return b""
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        handle.seek(offset)
        return handle.read(1 << 20)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _read_report(path: Path) -> dict[str, Any] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_REPORT:
            return None
        try:
            report = json.loads(handle.read(MAX_REPORT))
        except ValueError:
            return None
    return report if isinstance(report, dict) else None


def _shm_entries() -> set[str]:
    try:
        return set(os.listdir(SHM_HOST))
    except OSError:
        return set()


def _clean_shm(before: set[str], uid: int) -> None:
    """Where the child had no private /dev/shm: remove what appeared there during the run
    and belongs to the user the code ran as (docs/security.md: a concurrent job of that
    user may lose a file it made meanwhile; that job fails, nothing leaks)."""
    for name in _shm_entries() - before:
        path = Path(SHM_HOST) / name
        with contextlib.suppress(OSError):
            if path.lstat().st_uid != uid:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink()


def kill_descendants() -> None:
    """Kill every process this one started, directly or not, and reap them."""
    try:
        processes = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=5)


def copy_tree(source: Path, target: Path, strict: bool = False) -> list[str]:
    """Copy the regular files under `source` into `target` (made if needed); their relative
    names. Symlinks, hard links, devices, pipes and sockets are never followed nor copied:
    `strict` fails the job on one, otherwise it is skipped with a note in the log."""
    copied: list[str] = []
    if source.is_symlink() or not source.is_dir():  # replaced by the code: nothing to keep
        if strict:
            raise JobFailed(f"{source.name}/ is not a folder any more: the code replaced it")
        return copied
    for folder, dirs, files in os.walk(source):
        here = Path(folder)
        for name in sorted(dirs):
            if (here / name).is_symlink():
                dirs.remove(name)
                files.append(name)  # reported below as not a regular file
        for name in sorted(files):
            path = here / name
            rel = path.relative_to(source)
            if not _copy_file(path, target / rel):
                if strict:
                    raise JobFailed(f"the response holds {rel}, which is not a regular file")
                log.warning("not kept: %s is not a regular file", rel)
                continue
            copied.append(str(rel))
    return copied


def _copy_file(source: Path | str, target: Path, dir_fd: int | None = None) -> bool:
    """Copy `source` (relative to `dir_fd` when given) to the new file `target` if it is a
    regular file with one link, opened without following a link; whether it was."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(source, flags, dir_fd=dir_fd)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as reader:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("xb") as writer:
            shutil.copyfileobj(reader, writer, COPY_CHUNK)
    return True


__all__ = [
    "Call",
    "Job",
    "OutputEvent",
    "Report",
    "Request",
    "Sandbox",
    "SandboxUser",
    "copy_tree",
    "sandbox_user",
]
