"""Sandboxed interpreters started ahead of need: one pool per sandbox family (LO_SANDBOX_POOL).

Starting an interpreter and importing numpy, pandas and cloudpickle costs a sandboxed step
~250 ms (scikit-learn or TensorFlow far more); confining it costs ~3 ms. So the supervisor
keeps, per `SandboxFamily` of the step types it serves (declared on the StepType; a toolkit
adapter declares its own, toolkits/__init__.py):

- a zygote: `python -m learning_orchestra.sandbox.child --zygote`, started with the
  sandbox's scrubbed environment (no LO_* variable, token, key or store URL), no open file
  but its control socket, stdin/stdout/stderr on /dev/null, dying with the server. It imports
  the family's modules once, then only forks on request. It never sees a job.
- LO_SANDBOX_POOL pooled interpreters forked from it (default 1): each a fresh copy of that
  clean interpreter, waiting on a socket for exactly one job. It is lent to one job's worker
  (the socket travels with the worker's arguments), which sends the run's config path,
  environment and log fd; the pooled interpreter runs it in a fork of itself that confines
  itself first, exactly as a freshly started child does (sandbox/child.py), then reports
  the exit code and ends. A pooled interpreter never runs a second job, and no user code
  ever runs in the zygote, in the worker (it holds the artifact key) or in the server.

The pool starts lazily: a family's zygote when its first step runs (that step, and any
while the zygote imports, start a fresh interpreter as with LO_SANDBOX_POOL=0), so a server
pays only for the families it uses (docs/architecture.md gives the memory). The lent
interpreter's pid goes with the job (`Supervisor` companions): cancel, the wall-clock limit
and the memory watch kill and measure it and everything under it, as the worker's own
descendants. A pooled interpreter that died or waited longer than POOL_MAX_IDLE_SECONDS
is replaced; a zygote that died is started again; `stop` kills them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psutil

from ..core.settings import Settings
from ..core.steptype import SandboxFamily, StepType
from .protocol import READY, Pooled

if TYPE_CHECKING:
    from ..core.jobs import Supervisor

log = logging.getLogger(__name__)

CHILD = "learning_orchestra.sandbox.child"
#: An idle pooled interpreter older than this is replaced rather than lent.
POOL_MAX_IDLE_SECONDS = 600.0
#: How long a zygote may take to import its family's modules (TensorFlow: seconds).
ZYGOTE_START_SECONDS = 300.0
#: How long a fork of the zygote may take to be answered.
FORK_SECONDS = 10.0


class Lent:
    """A pooled interpreter lent to one job (`Supervisor` side)."""

    def __init__(self, pooled: Pooled, process: psutil.Process | None) -> None:
        self.pid = pooled.pid
        self.handle = pooled
        self._process = process

    def release(self) -> None:
        """The job is over: kill what is left of the interpreter and of its run, and close
        our copy of its socket. The zygote reaps it."""
        self.handle.control.close()
        if self._process is not None:
            _kill_tree(self._process)
            self._process = None


def _kill_tree(process: psutil.Process) -> None:
    with contextlib.suppress(psutil.Error):
        if not process.is_running():
            return
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
        process.kill()


@dataclass
class _Idle:
    pooled: Pooled
    process: psutil.Process | None
    since: float

    def usable(self) -> bool:
        if time.monotonic() - self.since > POOL_MAX_IDLE_SECONDS or self.process is None:
            return False
        try:
            return self.process.is_running() and self.process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def discard(self) -> None:
        """Let it go: it sees the end of its socket and exits (and is killed anyway)."""
        Lent(self.pooled, self.process).release()


@dataclass
class _Family:
    """One family's zygote and its idle pooled interpreters."""

    family: SandboxFamily
    zygote: subprocess.Popen[bytes] | None = None
    control: socket.socket | None = None  # ours; the zygote has the other end
    ready: bool = False
    idle: list[_Idle] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None

    def alive(self) -> bool:
        return self.zygote is not None and self.zygote.poll() is None


class SandboxPool:
    """The pools of the sandbox families of `step_types` (a `SupervisorHook`; the
    supervisor asks it to `lend` when it starts a job of such a step type)."""

    def __init__(self, settings: Settings, step_types: Iterable[StepType]) -> None:
        self.size = settings.sandbox_pool
        self._pools: dict[str, _Family] = {}
        self._home: str | None = None
        self._stopped = False

    async def start(self, supervisor: Supervisor) -> None:
        """Nothing starts yet: each family's zygote starts with its first job."""

    async def stop(self) -> None:
        """Kill every zygote, pooled interpreter and run of this pool."""
        self._stopped = True
        for pool in self._pools.values():
            await self._shut(pool)
        self._pools.clear()
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    async def lend(self, step_type: StepType) -> Lent | None:
        """A pooled interpreter of `step_type`'s family for one job, or None (no family,
        LO_SANDBOX_POOL=0, or none ready yet: the job then starts a fresh interpreter).
        Call it on the event loop's thread: the zygote dies with the thread that started it."""
        family = step_type.sandbox
        if family is None or self.size == 0 or self._stopped:
            return None
        pool = self._pools.get(family.name)
        if pool is None:
            pool = self._pools[family.name] = _Family(family)
        if not pool.alive():
            self._spawn(pool)
            return None
        lent: Lent | None = None
        while pool.idle and lent is None:
            idle = pool.idle.pop(0)
            if idle.usable():
                lent = Lent(idle.pooled, idle.process)
            else:
                idle.discard()
        if lent is None and pool.ready:
            with contextlib.suppress(OSError, TimeoutError):
                pooled, process = await self._fork(pool)
                lent = Lent(pooled, process)
        self._refill(pool)
        return lent

    # -- the zygote -------------------------------------------------------------------------
    def _spawn(self, pool: _Family) -> None:
        """(Re)start `pool`'s zygote; it becomes ready in the background."""
        if pool.zygote is not None:
            self._forget(pool)
        if self._home is None:
            # HOME and TMPDIR while it imports (a run gets its own): empty, ours only.
            self._home = tempfile.mkdtemp(prefix="lo-sandbox-pool-")
        from . import base_environment

        env = base_environment()
        env.update(HOME=self._home, TMPDIR=self._home)
        env.update(dict(pool.family.env))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        command = [sys.executable, "-s", "-u", "-m", CHILD, "--zygote"]
        command += [str(theirs.fileno()), str(os.getpid()), *pool.family.modules]
        try:
            pool.zygote = subprocess.Popen(
                command,
                cwd="/",
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()],
                start_new_session=True,  # a terminal's Ctrl-C is the server's to handle
                umask=0o077,
            )
        except OSError:
            log.exception("could not start the %s sandbox pool", pool.family.name)
            ours.close()
            return
        finally:
            theirs.close()
        ours.setblocking(False)
        pool.control, pool.ready = ours, False
        pool.task = asyncio.create_task(self._await_ready(pool), name="sandbox zygote")

    async def _await_ready(self, pool: _Family) -> None:
        control = pool.control
        assert control is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(ZYGOTE_START_SECONDS):
                answer = await loop.sock_recv(control, 1)
        except (OSError, TimeoutError):
            answer = b""
        if answer != READY:
            log.warning(
                "the %s sandbox pool did not start: fresh interpreters are used", pool.family.name
            )
            if pool.control is control:  # not a zygote started since
                self._forget(pool)
            return
        pool.ready = True
        await self._fill(pool)

    def _forget(self, pool: _Family) -> None:
        """Drop `pool`'s zygote and idle interpreters (a dead or hung zygote)."""
        for idle in pool.idle:
            idle.discard()
        pool.idle.clear()
        if pool.control is not None:
            pool.control.close()
            pool.control = None
        if pool.zygote is not None:
            with contextlib.suppress(psutil.Error):
                _kill_tree(psutil.Process(pool.zygote.pid))
            with contextlib.suppress(subprocess.TimeoutExpired):
                pool.zygote.wait(1)
        pool.ready = False

    async def _shut(self, pool: _Family) -> None:
        if pool.task is not None:
            pool.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pool.task
        zygote = pool.zygote
        self._forget(pool)
        if zygote is not None and zygote.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(zygote.wait, 5)

    # -- pooled interpreters ----------------------------------------------------------------
    async def _fork(self, pool: _Family) -> tuple[Pooled, psutil.Process | None]:
        """A new pooled interpreter, forked by the zygote."""
        async with pool.lock:
            control = pool.control
            if control is None or not pool.ready:
                raise OSError("the zygote is not ready")
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                socket.send_fds(control, [b"F"], [theirs.fileno()])
                theirs.close()
                answer = b""
                loop = asyncio.get_running_loop()
                async with asyncio.timeout(FORK_SECONDS):
                    while len(answer) < 4:
                        chunk = await loop.sock_recv(control, 4 - len(answer))
                        if not chunk:
                            raise OSError("the zygote ended")
                        answer += chunk
            except (OSError, TimeoutError):
                theirs.close()
                ours.close()
                self._forget(pool)  # started again by the next lend
                raise
        (pid,) = struct.unpack("!i", answer)
        process: psutil.Process | None = None
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
        return Pooled(pid, pool.family.name, ours), process

    def _refill(self, pool: _Family) -> None:
        if pool.ready and (pool.task is None or pool.task.done()):
            pool.task = asyncio.create_task(self._fill(pool), name="sandbox pool refill")

    async def _fill(self, pool: _Family) -> None:
        while not self._stopped and pool.ready and len(pool.idle) < self.size:
            try:
                pooled, process = await self._fork(pool)
            except (OSError, TimeoutError):
                return
            pool.idle.append(_Idle(pooled, process, time.monotonic()))


def pool_for(settings: Settings, step_types: Iterable[StepType]) -> list[Any]:
    """The supervisor hooks for `step_types`: a `SandboxPool` if any runs user code."""
    types = list(step_types)
    return [SandboxPool(settings, types)] if any(t.sandbox for t in types) else []


__all__ = ["Lent", "Pooled", "SandboxPool", "pool_for"]
