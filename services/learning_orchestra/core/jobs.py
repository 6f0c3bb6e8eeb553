"""The job supervisor: runs pending steps in worker processes, never in the API process.

One supervisor lives in each service process that runs jobs. It

- claims `pending` steps of its types whose parents have finished (an atomic compare-and-set
  in the store, so replicas never run a step twice), at most `LO_CONCURRENCY` per service;
- starts a worker process per job (core/worker.py) from a forkserver with the service's heavy
  imports preloaded;
- holds a lease on each running step and renews it (heartbeat) while the worker lives;
- enforces the wall-clock limit `LO_JOB_TIMEOUT` and the resident-memory limit
  `LO_JOB_MEMORY_MB`, and honours cancel requests (also from other replicas, via the store);
- records the outcome: `finished` with the runner's metadata, or `failed`/`cancelled` with a
  readable reason — the previous output, if any, stays intact;
- recovers after restarts: a `running` step whose lease expired is failed as "interrupted";
  so is, at once on start, a step whose lease belongs to a supervisor that is provably dead
  (see `InstanceLock`); then the volume's orphaned staging, scratch and upload files are
  swept (`sweep`). `pending` steps are simply claimed again.

The event loop never parks a thread per job: a worker's pipe is read by the loop itself
(`connect_read_pipe`) and its exit is awaited on the process sentinel, so long jobs leave the
default executor to the rest of the server. Progress messages are coalesced: at most one store
write per `PROGRESS_SECONDS` per job, the last value always written. Hooks (`SupervisorHook`)
start and stop with the supervisor, e.g. a pool of pre-started processes.

A multi-output job (StepType.outputs, e.g. builder/sparkml) produces several steps, created
together and each carrying `_group` (every output's name and key). The supervisor that claims
the first of them claims the others that are still pending in the same pass, under the same
run id and lease, and runs one worker for them all: each output is recorded `finished` (or
`failed`) as soon as the worker reports it, so observers of one output need not wait for the
others; when the job ends, the outputs it did not produce fail with its reason. Cancelling one
output cancels the job; deleting one only drops it (the job goes on while another output is
left). The followers' logs are links to the first output's: one log for the job.

A step may also carry a `_job` (set by `StepService.start_job`): another runner to run on the
step in place, e.g. `transform/dataType` casting a dataset's columns. Such a step is `running`
and `_queued` until claimed; its job reads the step's own current output (given to the runner
as its only parent) and its parameters, and the step's `parameters` stay as they were. The
metadata keys the job lists in `keys` (e.g. `castTypes`) are removed when the step is next
recomputed by its own runner.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import multiprocessing
import os
import pickle
import secrets
import signal
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol

import psutil

from . import worker
from .artifacts import ArtifactVolume, trim_log
from .errors import NotFound
from .model import Doc, Status, now, transition
from .settings import Settings
from .steptype import StepType
from .store import Store

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
LOG_EXCERPT = 64 * 1024
#: At most one progress write per job per this many seconds (the last value always lands).
PROGRESS_SECONDS = 0.25
#: How often a running job's memory is measured and its lease, cancel flag and clock checked.
MONITOR_SECONDS = 0.5
#: Orphaned files younger than this are left alone: an upload may still be arriving.
SWEEP_MIN_AGE_SECONDS = 60.0

INTERRUPTED = (
    "interrupted: the worker running this step stopped before it finished "
    "(the server restarted or crashed); PATCH the step to run it again"
)


@dataclass
class Job:
    name: str
    run: str
    process: BaseProcess
    started: float
    cancel_reason: str | None = None
    kill_reason: str | None = None  # set when the supervisor kills the worker itself
    # Processes working for the job outside the worker's tree (a pooled sandbox interpreter
    # lent to it, sandbox/pool.py): killed and measured with the worker, with their descendants.
    companions: tuple[int, ...] = ()
    messages: list[tuple[Any, ...]] = field(default_factory=list)
    progress: dict[str, Any] | None = None  # the latest progress not yet written
    progress_written: float = 0.0  # monotonic time of the last progress write
    # A multi-output job's outputs, each step's document as claimed (the first is `name`),
    # and those recorded already (finished or failed) or deleted meanwhile. Empty: one
    # output, `name`.
    outputs: dict[str, Doc] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)

    @property
    def names(self) -> list[str]:
        """The steps this job writes."""
        return list(self.outputs) or [self.name]

    @property
    def open_outputs(self) -> list[str]:
        """The steps this job still works for: not recorded yet, not deleted."""
        return [n for n in self.names if n not in self.ended and n not in self.deleted]


class SupervisorHook(Protocol):
    """Something that lives as long as a supervisor (e.g. a pool of pre-started sandbox
    interpreters): started after the supervisor's first recovery, stopped after its jobs."""

    async def start(self, supervisor: Supervisor) -> None: ...

    async def stop(self) -> None: ...


class InstanceLock:
    """Tells whether the supervisor that owns a lease is still alive.

    Each supervisor holds an exclusive `flock` on `{data_dir}/instances/{token}.lock` for its
    whole life, and its owner id ends with that token. The kernel drops the lock when the
    process dies, however it dies, so a supervisor that can take the lock of a lease's owner
    knows that owner is gone: its `running` steps are failed at once instead of after the lease
    expires. This works across restarts, PID namespaces and containers sharing the volume;
    without the file (another host's volume, an older owner id) the lease expiry decides.
    """

    def __init__(self, root: Path, token: str) -> None:
        self.folder = root / "instances"
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self.token = token
        self.path = self.folder / f"{token}.lock"
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def owner_is_dead(self, owner: str) -> bool:
        """True only when `owner` held an instance lock here that nobody holds any more."""
        token = owner.rpartition(":")[2]
        if not token or token == self.token or not token.isalnum():
            return False
        path = self.folder / f"{token}.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return False  # no lock file: not provably dead
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held: the owner lives
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
        finally:
            os.close(fd)

    def remove_dead(self, owners: Iterable[str]) -> None:
        """Delete the lock files of dead instances that own none of the leases `owners` (a
        supervisor serving other step types than ours may still need to see them dead)."""
        busy = {owner.rpartition(":")[2] for owner in owners}
        for path in self.folder.glob("*.lock"):
            if path.stem not in busy and self.owner_is_dead(f":{path.stem}"):
                path.unlink(missing_ok=True)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.path.unlink(missing_ok=True)


class Supervisor:
    """Runs the jobs of `step_types` for one service process."""

    def __init__(
        self,
        store: Store,
        volume: ArtifactVolume,
        settings: Settings,
        step_types: Iterable[StepType],
        hooks: Iterable[SupervisorHook] = (),
    ) -> None:
        self.store = store
        self.volume = volume
        self.settings = settings
        self.types = {t.type: t for t in step_types}
        token = secrets.token_hex(6)
        # host:pid for people reading the store; the token names this instance's lock file
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{token}"
        self._instance_lock: InstanceLock | None = None
        self._token = token
        self.hooks: list[SupervisorHook] = list(hooks)
        # One budget of jobs for every step type (LO_MAX_JOBS): a long training of one
        # family and scans of another compete for the same cores.
        self.slots = asyncio.Semaphore(settings.max_jobs)
        self.jobs: dict[str, Job] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._job_tasks: set[asyncio.Task[None]] = set()
        # Memory readings walk /proc (smaps_rollup can take milliseconds for a big process):
        # off the event loop, on a thread of their own rather than the shared default pool.
        self._measure: concurrent.futures.ThreadPoolExecutor | None = None  # made by start
        self._warm_task: asyncio.Task[None] | None = None
        self._recovered_at = 0.0  # monotonic time of the last recovery
        self._mp = multiprocessing.get_context("forkserver")
        preload = {"learning_orchestra.core.worker"}
        for step_type in self.types.values():
            preload.update(step_type.preload)
            preload.add(step_type.runner.partition(":")[0])
        self._mp.set_forkserver_preload(sorted(preload))

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Recover what a dead instance left (steps, then files), start the hooks, then claim
        and run jobs."""
        if self._instance_lock is None:
            self._instance_lock = InstanceLock(self.volume.root, self._token)
            await self.recover()
            self._recovered_at = time.monotonic()
            await self.sweep()
            running = await self.store.find(statuses=[Status.RUNNING])
            self._instance_lock.remove_dead(
                str((doc.get("_lease") or {}).get("owner", "")) for doc in running
            )
            for hook in self.hooks:
                await hook.start(self)
        if self._measure is None:
            self._measure = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lo-mem")
        if self.types and self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="supervisor")
            # Start the forkserver (it imports the services' heavy modules) now, in the
            # background, rather than making the first job wait for it.
            self._warm_task = asyncio.create_task(self._warm_up(), name="forkserver warm-up")

    async def _warm_up(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(forkserver.ensure_running)

    async def stop(self) -> None:
        """Stop claiming, kill running workers and record their steps as interrupted."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        for job in {id(job): job for job in self.jobs.values()}.values():
            job.kill_reason = "interrupted: the server shut down while this step ran"
            self._kill(job)
        if self._job_tasks:
            await asyncio.wait(self._job_tasks, timeout=10)
        if self._warm_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._warm_task, 30)
            self._warm_task = None
        for hook in reversed(self.hooks):
            try:
                await hook.stop()
            except Exception:
                log.exception("stopping %r failed", hook)
        if self._measure is not None:
            self._measure.shutdown(wait=False)
            self._measure = None
        if self._instance_lock is not None:
            self._instance_lock.release()
            self._instance_lock = None

    def wake(self) -> None:
        """Look for claimable steps now (a step was created or re-run in this process)."""
        self._wake.set()

    def cancel_local(self, name: str, reason: str) -> bool:
        """Kill the worker of `name` if this supervisor runs it."""
        job = self.jobs.get(name)
        if job is None:
            return False
        job.cancel_reason = reason
        self._kill(job)
        return True

    # -- the claim loop ---------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            try:
                if time.monotonic() - self._recovered_at > self.settings.lease_seconds / 2:
                    await self.recover()
                    self._recovered_at = time.monotonic()
                await self._claim_ready()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("supervisor loop failed; retrying")
            self._wake.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # arrives as the event fires, and stop() would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wake.wait()

    async def recover(self) -> None:
        """Fail `running` steps whose worker is gone: their lease expired, or its owner is
        provably dead (`InstanceLock`)."""
        for doc in await self.store.find(types=self.types, statuses=[Status.RUNNING]):
            lease = doc.get("_lease") or {}
            if doc.get("_queued") or doc["name"] in self.jobs:
                continue  # queued jobs have no worker yet: they are claimed, not recovered
            owner_dead = self._instance_lock is not None and self._instance_lock.owner_is_dead(
                str(lease.get("owner", ""))
            )
            if lease.get("expires", 0) > now() and not owner_dead:
                continue
            failed = await self.store.update(
                doc["name"],
                transition(doc, Status.FAILED, exception=INTERRUPTED),
                expect={"status": Status.RUNNING, "_lease.expires": lease.get("expires")},
                unset=["_lease", "_cancel", "_job"],
            )
            if failed is not None:
                log.warning("step %s was interrupted; marked failed", doc["name"])
                await self._record_run(failed, doc.get("_job"))

    async def sweep(self) -> None:
        """Remove what no step can use any more from the volume: staging and scratch folders
        of runs that are not running (a crash left them), committed outputs no step points
        to, uploads no step refers to, logs of deleted steps. The volume is listed before the
        store is read, and a run that is running anywhere (another replica's included) is
        kept, so a job started meanwhile is never touched; files younger than
        SWEEP_MIN_AGE_SECONDS are left alone (an upload may still be arriving)."""
        found = await asyncio.to_thread(self.volume.leftovers, SWEEP_MIN_AGE_SECONDS)
        if not any(found.values()):
            return
        docs = {doc["name"]: doc for doc in await self.store.find()}
        live = {
            (name, (doc.get("_lease") or {}).get("run"))
            for name, doc in docs.items()
            if doc["status"] == Status.RUNNING
        }
        live |= {(name, job.run) for job in self.jobs.values() for name in job.names}
        uploads = {  # kept while the step's parameters still name its upload (re-runnable)
            Path(str(upload)).name
            for doc in docs.values()
            if (upload := (doc.get("_internal") or {}).get("upload"))
            and str((doc.get("parameters") or {}).get("datasetURI", "")).startswith("upload:")
        }

        def orphaned(kind: str, name: str, run: str) -> bool:
            if kind == "uploads":
                return run not in uploads
            if kind == "logs":
                return name not in docs
            if (name, run) in live:
                return False
            return kind != "artifacts" or docs.get(name, {}).get("_artifact") != run

        removed = [
            (kind, name, run)
            for kind, entries in found.items()
            for name, run in entries
            if orphaned(kind, name, run)
        ]
        if removed:
            await asyncio.to_thread(self.volume.remove_leftovers, removed)
            log.warning("removed %d orphaned file(s) from the data volume", len(removed))

    async def _claim_ready(self) -> None:
        ready = await self.store.find(types=self.types, statuses=[Status.PENDING, Status.RUNNING])
        groups_seen: set[str] = set()
        for doc in ready:
            if doc["status"] == Status.RUNNING and not doc.get("_queued"):
                continue
            group = list((doc.get("_group") or {}).get("outputs", {}))
            if any(name in self.jobs for name in group or [doc["name"]]):
                # A job here still works under that name (a step deleted, then created again,
                # while its job ends): its folders and log are the name's until it has ended.
                continue
            if group:  # claimed with the first of its job's outputs found pending, or not now
                if group[0] in groups_seen:
                    continue
                groups_seen.add(group[0])
            step_type = self.types[doc["type"]]
            slots = self.slots
            if slots.locked():
                continue
            parents: dict[str, Doc] | None
            if doc.get("_job"):  # a job on the step's own output, which it gets as its parent
                parents, problem = {doc["name"]: doc}, None
            else:
                parents, problem = await self._parents(doc)
            if parents is None:
                if problem is not None:  # (every pending output of a multi-output job)
                    for name in group or [doc["name"]]:
                        await self._fail_pending(name, problem)
                continue
            started = now()
            run = f"{doc.get('runs', 0) + 1:04d}-{secrets.token_hex(4)}"
            claimed = await self.store.update(
                doc["name"],
                {
                    **transition(doc, Status.RUNNING, at=started),
                    "runs": doc.get("runs", 0) + 1,
                    "_lease": self._lease(run),
                },
                expect={"status": doc["status"], "version": doc["version"]},
                unset=["_queued"],
            )
            if claimed is None:
                continue  # another replica took it, or it changed meanwhile
            outputs = {claimed["name"]: claimed}
            for other in group:
                if other not in outputs and (more := await self._claim_output(other, run)):
                    outputs[other] = more
            await slots.acquire()
            task = asyncio.create_task(
                self._run(claimed, run, step_type, parents, slots, outputs if group else {})
            )
            self._job_tasks.add(task)
            task.add_done_callback(self._job_tasks.discard)

    async def _fail_pending(self, name: str, problem: str) -> None:
        """Fail step `name`, if still pending, because it can never run (`problem`)."""
        doc = await self.store.get(name)
        if doc is None or doc["status"] != Status.PENDING:
            return
        failed = await self.store.update(
            name,
            transition(doc, Status.FAILED, exception=problem),
            expect={"status": Status.PENDING, "version": doc["version"]},
        )
        if failed is not None:
            await self._record_run(failed)

    async def _claim_output(self, name: str, run: str) -> Doc | None:
        """Claim another output of a multi-output job for run `run`, if it is still pending
        (not cancelled nor deleted meanwhile, nor claimed by another replica)."""
        doc = await self.store.get(name)
        if doc is None or doc["status"] != Status.PENDING:
            return None
        return await self.store.update(
            name,
            {
                **transition(doc, Status.RUNNING),
                "runs": doc.get("runs", 0) + 1,
                "_lease": self._lease(run),
            },
            expect={"status": Status.PENDING, "version": doc["version"]},
        )

    async def _parents(self, doc: Doc) -> tuple[dict[str, Doc] | None, str | None]:
        """(parent documents, None) when all finished; (None, None) to keep waiting;
        (None, reason) when the step can never run."""
        parents: dict[str, Doc] = {}
        waiting = False
        for name in doc.get("parents", []):
            parent = await self.store.get(name)
            if parent is None:
                return None, f"parent step {name!r} was deleted before this step could run"
            status = parent["status"]
            if status in (Status.FAILED, Status.CANCELLED):
                reason = parent.get("exception") or status
                return None, f"parent step {name!r} {status}: {reason}"
            if status != Status.FINISHED:
                waiting = True
            parents[name] = parent
        return (None, None) if waiting else (parents, None)

    def _lease(self, run: str) -> dict[str, Any]:
        """A lease on a step for one run. Every write of the run expects `_lease.run`, so a
        run outlived by its step (deleted, then created again) never touches the new one."""
        return {"owner": self.instance, "run": run, "expires": now() + self.settings.lease_seconds}

    # -- one job ----------------------------------------------------------------------------
    async def _run(
        self,
        doc: Doc,
        run: str,
        step_type: StepType,
        parents: dict[str, Doc],
        slots: asyncio.Semaphore,
        outputs: dict[str, Doc],
    ) -> None:
        """Run step `doc` (and, for a multi-output job, the other `outputs` claimed with it:
        {name: claimed document}, `doc` first) and record the outcome."""
        name = doc["name"]
        job: dict[str, Any] = doc.get("_job") or {}
        try:
            spec = worker.JobSpec(
                name=name,
                step_type=step_type.type,
                runner=job["runner"] if job else step_type.runner,
                run=run,
                parameters=job["parameters"] if job else doc["parameters"],
                parents=parents,
                data_dir=str(self.volume.root),
                key=self.volume.key,
                settings=self.settings,
                internal=doc.get("_internal", {}),
                outputs={n: doc["_group"]["outputs"][n] for n in outputs},
            )
            outcome = await self._execute(spec, outputs)
            if not outputs:
                await self._finish(doc, run, outcome)
            else:
                await self._finish_outputs(self.jobs[name], outcome)
        except Exception as exc:  # never leave a step `running` because of our own bug
            log.exception("supervising %s failed", name)
            for step in outputs.values() or [doc]:
                failed = await self.store.update(
                    step["name"],
                    transition(
                        step,
                        Status.FAILED,
                        exception=f"internal error while running the step: {exc}",
                    ),
                    expect={"_lease.run": run},
                    unset=["_lease", "_cancel", "_job"],
                )
                if failed is not None:
                    await self._record_run(failed, doc.get("_job"))
        finally:
            job_here = self.jobs.get(name)
            if job_here is not None and job_here.run == run:
                if await _reap(job_here.process, 5) is None:
                    self._kill(job_here)  # finished, yet still alive after 5 s
                    await _reap(job_here.process, 5)
                for output in job_here.names:
                    self.jobs.pop(output, None)
            await asyncio.to_thread(self.volume.clear_scratch, name, run)  # if _finish did not
            slots.release()
            self.wake()

    async def _lend(self, spec: worker.JobSpec) -> Any:
        """A process a hook lends the job (`lend(step_type)`: a pooled sandbox interpreter of
        its step type's family), or None. Only for the step type's own runner."""
        step_type = self.types.get(spec.step_type)
        if step_type is None or step_type.sandbox is None or spec.runner != step_type.runner:
            return None
        for hook in self.hooks:
            lend = getattr(hook, "lend", None)
            if lend is not None:
                try:
                    return await lend(step_type)
                except Exception:  # the job then starts its own interpreter
                    log.exception("lending a sandbox interpreter failed")
        return None

    async def _execute(self, spec: worker.JobSpec, outputs: dict[str, Doc]) -> tuple[Any, ...]:
        lent = await self._lend(spec)
        try:
            return await self._execute_with(spec, lent, outputs)
        finally:
            if lent is not None:
                lent.release()  # kills whatever of it is left

    async def _execute_with(
        self, spec: worker.JobSpec, lent: Any, outputs: dict[str, Doc]
    ) -> tuple[Any, ...]:
        if lent is not None:
            spec = dataclasses.replace(spec, sandbox=lent.handle)
        if outputs:
            await asyncio.to_thread(self._share_log, list(outputs))
        receive, send = self._mp.Pipe(duplex=False)
        process = self._mp.Process(
            target=worker.main,
            args=(spec, send, str(self.volume.log_path(spec.name))),
            name=f"lo-job-{spec.name}",
        )
        # Registered before it starts, so a cancel arriving meanwhile is not lost.
        job = Job(spec.name, spec.run, process, time.monotonic(), outputs=dict(outputs))
        job.companions = (lent.pid,) if lent is not None else ()
        for name in job.names:
            self.jobs[name] = job
        try:
            # A thread only for the start itself: the first start spawns the forkserver.
            await asyncio.to_thread(process.start)
        except BaseException:
            receive.close()
            send.close()
            raise
        send.close()
        if job.cancel_reason is not None:
            self._kill(job)
        monitor = asyncio.create_task(self._monitor(job))
        outcome: tuple[Any, ...] = ("failed", "the supervisor stopped watching the job", None)
        try:
            outcome = await self._receive(job, receive)
        finally:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
            if outcome[0] != "finished" or job.cancel_reason or job.kill_reason:
                await _reap(process, 5)
            # else the output is committed: the step is recorded finished first, and the
            # worker, exiting meanwhile, is reaped after that (`_run`)
        if job.cancel_reason is not None:
            return ("cancelled", job.cancel_reason)
        if job.kill_reason is not None:
            return ("failed", job.kill_reason, None)
        return outcome

    async def _receive(self, job: Job, receive: Connection) -> tuple[Any, ...]:
        """The worker's messages, read by the event loop itself (no thread waits on the pipe):
        progress is written (coalesced), the final message is returned."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 30)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), receive
        )
        # One read at a time, never cancelled half way (a timeout must not drop a header).
        reading: asyncio.Task[Any] | None = None
        try:
            while True:
                due = None
                if job.progress is not None:
                    due = job.progress_written + PROGRESS_SECONDS - time.monotonic()
                    if due <= 0:
                        await self._write_progress(job)
                        continue
                if reading is None:
                    reading = asyncio.ensure_future(_read_message(reader))
                done, _ = await asyncio.wait({reading}, timeout=due)
                if not done:
                    continue  # progress is due: written at the top of the loop
                finished, reading = reading, None
                try:
                    message = finished.result()
                except Exception:  # end of file (the worker died), or a garbled message
                    await self._write_progress(job)
                    code = await _reap(job.process, 5)
                    how = (
                        f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                    )
                    return ("failed", f"the worker process died ({how}) before finishing", None)
                if message[0] == "progress":
                    job.progress = message[1]
                    continue
                if message[0] in ("output", "output_failed") and job.outputs:
                    await self._end_output(job, message)
                    continue
                if message[0] != "finished":
                    await self._write_progress(job)  # a failed step shows how far it got
                elif job.progress is not None:  # the last progress goes with the outcome
                    message = ("finished", {"progress": job.progress, **message[1]})
                    job.progress = None
                return tuple(message)
        finally:
            if reading is not None:
                reading.cancel()
            transport.close()  # closes `receive` too

    async def _write_progress(self, job: Job) -> None:
        if job.progress is None:
            return
        progress, job.progress = job.progress, None
        job.progress_written = time.monotonic()
        for name in job.open_outputs:
            await self.store.update(name, {"progress": progress}, expect={"_lease.run": job.run})

    async def _monitor(self, job: Job) -> None:
        """Renew the lease, enforce limits and watch for cancel requests until cancelled."""
        renew_every = self.settings.lease_seconds / 3
        last_renew = time.monotonic()
        loop = asyncio.get_running_loop()
        # A multi-output job watches every step (and keeps its own outputs' changes).
        async with self.store.watch(None if job.outputs else job.name) as changes:
            # A cancel or delete between the claim and this subscription is seen here.
            for name in job.names:
                change: Doc | None = await self.store.get(name) or {"name": name, "deleted": True}
                if self._stops(job, change):
                    return
            while True:
                change = await changes.next(timeout=MONITOR_SECONDS)
                if self._stops(job, change):
                    return
                elapsed = time.monotonic() - job.started
                if elapsed > self.settings.job_timeout:
                    job.kill_reason = (
                        f"timed out: the job ran longer than LO_JOB_TIMEOUT="
                        f"{self.settings.job_timeout:g} seconds"
                    )
                    self._kill(job)
                    return
                used_mb = await loop.run_in_executor(self._measure, self._check_job, job)
                if used_mb > self.settings.job_memory_mb:
                    job.kill_reason = (
                        f"out of memory: the job used {used_mb:.0f} MB, more than "
                        f"LO_JOB_MEMORY_MB={self.settings.job_memory_mb}"
                    )
                    self._kill(job)
                    return
                if time.monotonic() - last_renew > renew_every:
                    last_renew = time.monotonic()
                    for name in job.open_outputs:
                        await self.store.update(
                            name,
                            {"_lease": self._lease(job.run)},
                            expect={"_lease.run": job.run},
                            bump=False,
                        )

    def _stops(self, job: Job, change: Doc | None) -> bool:
        """Whether `change` of a step cancels `job` (then killed): a cancel request, or the
        deletion of its step. Deleting one output of a multi-output job only drops it, until
        none is left."""
        if change is None or change["name"] not in job.names or change["name"] in job.ended:
            return False
        if change.get("deleted") and job.outputs:
            job.deleted.add(change["name"])
            if job.open_outputs:
                return False
            reason = "the outputs the job had left to produce were deleted"
        elif change.get("deleted"):
            reason = "the step was deleted"
        elif change.get("_cancel"):
            reason = change["_cancel"]
        else:
            return False
        job.cancel_reason = reason
        self._kill(job)
        return True

    @staticmethod
    def _kill(job: Job) -> None:
        pid = job.process.pid
        if pid is None:
            return
        # Processes that left the worker's group (sandboxed user code can call setsid) are
        # still its descendants: the worker is their subreaper (sandbox/__init__.py).
        descendants: list[psutil.Process] = []
        for root in (pid, *job.companions):
            with contextlib.suppress(psutil.Error):
                descendants += psutil.Process(root).children(recursive=True)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # the worker leads its own process group
        with contextlib.suppress(Exception):
            job.process.kill()
        for companion in job.companions:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(companion, signal.SIGKILL)
        for process in descendants:
            with contextlib.suppress(psutil.Error):
                process.kill()

    async def _end_output(self, job: Job, message: tuple[Any, ...]) -> None:
        """Record one output of a multi-output job as the worker reported it, at once."""
        name = message[1]
        if name not in job.outputs or name in job.ended:
            log.warning("job %s reported an output it does not own: %r", job.name, name)
            return
        job.ended.add(name)
        if message[0] == "output":
            outcome: tuple[Any, ...] = ("finished", message[2])
        else:
            outcome = ("failed", message[2], message[3])
        await self._finish(job.outputs[name], job.run, outcome, scratch=False)

    async def _finish_outputs(self, job: Job, outcome: tuple[Any, ...]) -> None:
        """When a multi-output job ends: the outputs it did not report fail (or are
        cancelled) with its reason."""
        await asyncio.to_thread(self.volume.clear_scratch, job.name, job.run)
        if outcome[0] == "finished":
            outcome = (
                "failed",
                "the job ended without producing this output (see the step's log)",
                None,
            )
        for name in job.names:
            if name not in job.ended:
                job.ended.add(name)
                await self._finish(job.outputs[name], job.run, outcome, scratch=False)

    def _share_log(self, names: list[str]) -> None:
        """One log for a multi-output job: the other outputs' log files become links to the
        first one's, which the worker writes (truncating it, so the inode stays)."""
        first = self.volume.log_path(names[0])
        first.touch()
        for name in names[1:]:
            path = self.volume.log_path(name)
            path.unlink(missing_ok=True)
            os.link(first, path)

    async def _finish(
        self, doc: Doc, run: str, outcome: tuple[Any, ...], *, scratch: bool = True
    ) -> None:
        """Record how run `run` of step `doc` ended: `outcome` is the worker's last message
        (or the supervisor's own). `scratch`: the run's working folder can go (a
        multi-output job's outputs end while it still works: `_run` removes it)."""
        name = doc["name"]
        if scratch:  # the worker is done with it (exited, or exiting after its commit)
            await asyncio.to_thread(self.volume.clear_scratch, name, run)
        await asyncio.to_thread(self._trim_log, name)  # what it printed last, within the limit
        unset = ["_lease", "_cancel", "_job"]
        if outcome[0] == "finished":
            changes = transition(doc, Status.FINISHED)
            changes.update(outcome[1])
            changes["_artifact"] = run
            job = doc.get("_job")
            if job:  # its `keys` describe its change to the output until the step is recomputed
                changes["_jobKeys"] = sorted({*doc.get("_jobKeys", []), *job.get("keys", [])})
            else:  # recomputed from the parents: fresh, and no earlier job's change remains
                changes["stale"] = False
                unset += [*doc.get("_jobKeys", []), "_jobKeys"]
        elif outcome[0] == "cancelled":
            changes = transition(doc, Status.CANCELLED, exception=f"cancelled: {outcome[1]}")
        else:
            changes = transition(doc, Status.FAILED, exception=outcome[1], traceback=outcome[2])
        # Read before the step is seen finished, so its run record follows at once. (Missing
        # only when the step was deleted meanwhile: the update below then finds no step.)
        artifact = None
        if outcome[0] == "finished":
            with contextlib.suppress(NotFound):
                artifact = await self._artifact_record(name, run)
        updated = await self.store.update(name, changes, expect={"_lease.run": run}, unset=unset)
        if updated is None:  # deleted meanwhile: drop what this run wrote, and only that
            self.volume.discard_run(name, run)  # (a step of the same name may run already)
            return
        await self._record_run(updated, doc.get("_job"), artifact)
        if outcome[0] == "finished":
            self.volume.prune(name, keep=run)
        else:
            self.volume.prune(name, keep=updated.get("_artifact"))

    def _check_job(self, job: Job) -> float:
        """The job's memory in MB; its log kept within LO_MAX_LOG_MB meanwhile."""
        self._trim_log(job.name)
        return job_memory_mb(job.process.pid, *job.companions)

    def _trim_log(self, name: str) -> None:
        """The step's captured output stays within LO_MAX_LOG_MB (checked as the job runs,
        and once more when it ends)."""
        trim_log(self.volume.log_path(name), self.settings.max_log_mb * 1024 * 1024)

    async def _record_run(
        self, doc: Doc, job: dict[str, Any] | None = None, artifact: dict[str, Any] | None = None
    ) -> None:
        """Append the run record of `doc`'s run that just ended; a `_job` run records the
        job's type and parameters, not the step's. `artifact`: the output the run committed
        (`_artifact_record`), None when it committed none."""
        log_text = None
        path = self.volume.log_path(doc["name"])
        if path.exists():
            with path.open("rb") as handle:
                handle.seek(max(0, path.stat().st_size - LOG_EXCERPT))
                log_text = handle.read().decode("utf-8", "replace")
        await self.store.add_run(
            doc["name"],
            {
                "run": doc.get("runs", 0),
                "status": doc["status"],
                "exception": doc.get("exception"),
                "traceback": doc.get("traceback"),
                "functionMessage": log_text,
                "description": doc.get("description"),
                "parameters": job["parameters"] if job else doc.get("parameters"),
                **({"type": job["type"]} if job else {}),
                "startedAt": doc.get("startedAt"),
                "finishedAt": doc.get("finishedAt"),
                "durationSeconds": doc.get("durationSeconds"),
                "artifact": artifact,
            },
        )

    async def _artifact_record(self, name: str, run: str) -> dict[str, Any]:
        """``{"run", "format", "checksum"}`` of a committed output: the SHA-256 of its files'
        names and SHA-256s, so two runs that stored the same bytes have the same checksum."""
        manifest = await asyncio.to_thread(self.volume.manifest, name, run)
        listing = "".join(
            f"{name}\t{digest}\n" for name, digest in sorted(manifest["files"].items())
        )
        checksum = hashlib.sha256(listing.encode()).hexdigest()
        return {"run": run, "format": manifest.get("format"), "checksum": checksum}


async def _read_message(reader: asyncio.StreamReader) -> Any:
    """One object sent with `Connection.send` (its framing: a signed 4-byte big-endian
    length, or -1 and an 8-byte length for huge messages, then the pickle)."""
    (size,) = struct.unpack("!i", await reader.readexactly(4))
    if size == -1:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    return pickle.loads(await reader.readexactly(size))


async def _reap(process: BaseProcess, timeout: float) -> int | None:
    """Wait (without a thread) up to `timeout` seconds for `process` to exit; its exit code."""
    if process.exitcode is not None or process.pid is None:
        return process.exitcode
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()
    sentinel = process.sentinel

    def on_exit() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(sentinel, on_exit)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await exited
    finally:
        loop.remove_reader(sentinel)
    process.join(0)  # readable sentinel: the exit status is there, this does not block
    return process.exitcode


def _pss_kb(pid: int) -> int | None:
    """Proportional set size of one process in kB (shared pages divided among the processes
    sharing them), or None where the kernel does not tell us (no smaps_rollup, or a process we
    may not inspect, e.g. a non-dumpable sandbox child)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def job_memory_mb(pid: int | None, *companions: int) -> float:
    """Memory of a job: its worker and all its descendants, and what runs under its
    `companions` (Job.companions: a pooled sandbox interpreter, which itself only waits), in
    MB (0 if it is gone).

    Summed PSS, so a page shared copy-on-write by forks counts once in all (RSS would count it
    once per process: a 400 MB array and two idle forks would read as 1.2 GB); RSS for a
    process whose PSS cannot be read."""
    if pid is None:
        return 0.0
    procs: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        procs += [root, *root.children(recursive=True)]
    for companion in companions:  # it only waits: its pages are its zygote's and its run's
        with contextlib.suppress(psutil.Error):
            procs += psutil.Process(companion).children(recursive=True)
    total_kb = 0
    for proc in procs:
        pss = _pss_kb(proc.pid)
        if pss is not None:
            total_kb += pss
            continue
        with contextlib.suppress(psutil.Error):
            total_kb += proc.memory_info().rss // 1024
    return total_kb / 1024
