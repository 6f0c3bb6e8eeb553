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
  `pending` steps are simply claimed again.

A step may also carry a `_job` (set by `StepService.start_job`): another runner to run on the
step in place, e.g. `transform/dataType` casting a dataset's columns. Such a step is `running`
and `_queued` until claimed; its job reads the step's own current output (given to the runner
as its only parent) and its parameters, and the step's `parameters` stay as they were. The
metadata keys the job lists in `keys` (e.g. `castTypes`) are removed when the step is next
recomputed by its own runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import secrets
import signal
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import psutil

from . import worker
from .artifacts import ArtifactVolume
from .model import Doc, Status, iso, now
from .settings import Settings
from .steptype import StepType
from .store import Store

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
LOG_EXCERPT = 64 * 1024

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
    messages: list[tuple[Any, ...]] = field(default_factory=list)


class Supervisor:
    """Runs the jobs of `step_types` for one service process."""

    def __init__(
        self,
        store: Store,
        volume: ArtifactVolume,
        settings: Settings,
        step_types: Iterable[StepType],
    ) -> None:
        self.store = store
        self.volume = volume
        self.settings = settings
        self.types = {t.type: t for t in step_types}
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.slots = {t.step: asyncio.Semaphore(settings.concurrency) for t in self.types.values()}
        self.jobs: dict[str, Job] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._job_tasks: set[asyncio.Task[None]] = set()
        self._mp = multiprocessing.get_context("forkserver")
        preload = {"learning_orchestra.core.worker"}
        for step_type in self.types.values():
            preload.update(step_type.preload)
            preload.add(step_type.runner.partition(":")[0])
        self._mp.set_forkserver_preload(sorted(preload))

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        if self.types and self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="supervisor")

    async def stop(self) -> None:
        """Stop claiming, kill running workers and record their steps as interrupted."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        for job in list(self.jobs.values()):
            job.kill_reason = "interrupted: the server shut down while this step ran"
            self._kill(job)
        if self._job_tasks:
            await asyncio.wait(self._job_tasks, timeout=10)

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
        last_recovery = 0.0
        while True:
            try:
                if time.monotonic() - last_recovery > self.settings.lease_seconds / 2:
                    await self.recover()
                    last_recovery = time.monotonic()
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
        """Fail `running` steps whose worker is gone (their lease expired)."""
        for doc in await self.store.find(types=self.types, statuses=[Status.RUNNING]):
            lease = doc.get("_lease") or {}
            if doc.get("_queued") or doc["name"] in self.jobs or lease.get("expires", 0) > now():
                continue  # queued jobs have no worker yet: they are claimed, not recovered
            failed = await self.store.update(
                doc["name"],
                self._ended(doc, Status.FAILED, INTERRUPTED),
                expect={"status": Status.RUNNING, "_lease.expires": lease.get("expires")},
                unset=["_lease", "_cancel", "_job"],
            )
            if failed is not None:
                log.warning("step %s was interrupted; marked failed", doc["name"])
                await self._record_run(failed, doc.get("_job"))

    async def _claim_ready(self) -> None:
        ready = await self.store.find(types=self.types, statuses=[Status.PENDING, Status.RUNNING])
        for doc in ready:
            if doc["status"] == Status.RUNNING and not doc.get("_queued"):
                continue
            step_type = self.types[doc["type"]]
            slots = self.slots[step_type.step]
            if slots.locked():
                continue
            parents: dict[str, Doc] | None
            if doc.get("_job"):  # a job on the step's own output, which it gets as its parent
                parents, problem = {doc["name"]: doc}, None
            else:
                parents, problem = await self._parents(doc)
            if parents is None:
                if problem is not None:
                    failed = await self.store.update(
                        doc["name"],
                        self._ended(doc, Status.FAILED, problem),
                        expect={"status": Status.PENDING, "version": doc["version"]},
                    )
                    if failed is not None:
                        await self._record_run(failed)
                continue
            started = now()
            run = f"{doc.get('runs', 0) + 1:04d}-{secrets.token_hex(4)}"
            claimed = await self.store.update(
                doc["name"],
                {
                    "status": Status.RUNNING,
                    "finished": False,
                    "startedAt": iso(started),
                    "finishedAt": None,
                    "durationSeconds": None,
                    "exception": None,
                    "traceback": None,
                    "waitingFor": [],
                    "progress": None,
                    "runs": doc.get("runs", 0) + 1,
                    "_started": started,
                    "_lease": self._lease(run),
                },
                expect={"status": doc["status"], "version": doc["version"]},
                unset=["_queued"],
            )
            if claimed is None:
                continue  # another replica took it, or it changed meanwhile
            await slots.acquire()
            task = asyncio.create_task(self._run(claimed, run, step_type, parents, slots))
            self._job_tasks.add(task)
            task.add_done_callback(self._job_tasks.discard)

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
    ) -> None:
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
                settings=self.settings.model_dump(mode="json"),
                internal=doc.get("_internal", {}),
            )
            outcome = await self._execute(spec)
            await self._finish(doc, run, outcome)
        except Exception as exc:  # never leave a step `running` because of our own bug
            log.exception("supervising %s failed", name)
            failed = await self.store.update(
                name,
                self._ended(doc, Status.FAILED, f"internal error while running the step: {exc}"),
                expect={"_lease.run": run},
                unset=["_lease", "_cancel", "_job"],
            )
            if failed is not None:
                await self._record_run(failed, doc.get("_job"))
        finally:
            self.volume.clear_scratch(name, run)
            if name in self.jobs and self.jobs[name].run == run:
                del self.jobs[name]
            slots.release()
            self.wake()

    async def _execute(self, spec: worker.JobSpec) -> tuple[Any, ...]:
        receive, send = self._mp.Pipe(duplex=False)
        process = self._mp.Process(
            target=worker.main,
            args=(spec, send, str(self.volume.log_path(spec.name))),
            name=f"lo-job-{spec.name}",
        )
        # Registered before it starts, so a cancel arriving meanwhile is not lost.
        job = Job(spec.name, spec.run, process, time.monotonic())
        self.jobs[spec.name] = job
        await asyncio.to_thread(process.start)  # the first start spawns the forkserver
        send.close()
        if job.cancel_reason is not None:
            self._kill(job)
        monitor = asyncio.create_task(self._monitor(job))
        try:
            outcome = await self._receive(job, receive)
        finally:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
            receive.close()
            await asyncio.to_thread(process.join, 5)
        if job.cancel_reason is not None:
            return ("cancelled", job.cancel_reason)
        if job.kill_reason is not None:
            return ("failed", job.kill_reason, None)
        return outcome

    async def _receive(self, job: Job, receive: Connection) -> tuple[Any, ...]:
        while True:
            try:
                message = await asyncio.to_thread(receive.recv)
            except (EOFError, OSError):
                code = job.process.exitcode
                if code is None:
                    await asyncio.to_thread(job.process.join, 5)
                    code = job.process.exitcode
                how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                return ("failed", f"the worker process died ({how}) before finishing", None)
            if message[0] == "progress":
                await self.store.update(
                    job.name, {"progress": message[1]}, expect={"_lease.run": job.run}
                )
            else:
                return message

    async def _monitor(self, job: Job) -> None:
        """Renew the lease, enforce limits and watch for cancel requests until cancelled."""
        renew_every = self.settings.lease_seconds / 3
        last_renew = time.monotonic()
        async with self.store.watch(job.name) as changes:
            # A cancel or delete between the claim and this subscription is seen here.
            change: Doc | None = await self.store.get(job.name) or {
                "name": job.name,
                "deleted": True,
            }
            while True:
                if change is not None and (change.get("deleted") or change.get("_cancel")):
                    job.cancel_reason = change.get("_cancel") or "the step was deleted"
                    self._kill(job)
                    return
                change = await changes.next(timeout=0.5)
                elapsed = time.monotonic() - job.started
                if elapsed > self.settings.job_timeout:
                    job.kill_reason = (
                        f"timed out: the job ran longer than LO_JOB_TIMEOUT="
                        f"{self.settings.job_timeout:g} seconds"
                    )
                    self._kill(job)
                    return
                rss_mb = _resident_mb(job.process.pid)
                if rss_mb > self.settings.job_memory_mb:
                    job.kill_reason = (
                        f"out of memory: the job used {rss_mb:.0f} MB, more than "
                        f"LO_JOB_MEMORY_MB={self.settings.job_memory_mb}"
                    )
                    self._kill(job)
                    return
                if time.monotonic() - last_renew > renew_every:
                    last_renew = time.monotonic()
                    await self.store.update(
                        job.name,
                        {"_lease": self._lease(job.run)},
                        expect={"_lease.run": job.run},
                        bump=False,
                    )

    @staticmethod
    def _kill(job: Job) -> None:
        pid = job.process.pid
        if pid is None:
            return
        # Processes that left the worker's group (sandboxed user code can call setsid) are
        # still its descendants: the worker is their subreaper (sandbox/__init__.py).
        descendants: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            descendants = psutil.Process(pid).children(recursive=True)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # the worker leads its own process group
        with contextlib.suppress(Exception):
            job.process.kill()
        for process in descendants:
            with contextlib.suppress(psutil.Error):
                process.kill()

    async def _finish(self, doc: Doc, run: str, outcome: tuple[Any, ...]) -> None:
        name = doc["name"]
        unset = ["_lease", "_cancel", "_job"]
        if outcome[0] == "finished":
            changes = self._ended(doc, Status.FINISHED, None)
            changes.update(outcome[1])
            changes["_artifact"] = run
            job = doc.get("_job")
            if job:  # its `keys` describe its change to the output until the step is recomputed
                changes["_jobKeys"] = sorted({*doc.get("_jobKeys", []), *job.get("keys", [])})
            else:  # recomputed from the parents: fresh, and no earlier job's change remains
                changes["stale"] = False
                unset += [*doc.get("_jobKeys", []), "_jobKeys"]
        elif outcome[0] == "cancelled":
            changes = self._ended(doc, Status.CANCELLED, f"cancelled: {outcome[1]}")
        else:
            changes = self._ended(doc, Status.FAILED, outcome[1], outcome[2])
        updated = await self.store.update(name, changes, expect={"_lease.run": run}, unset=unset)
        if updated is None:  # deleted meanwhile: drop what this run wrote, and only that
            self.volume.discard_run(name, run)  # (a step of the same name may run already)
            return
        await self._record_run(updated, doc.get("_job"))
        if outcome[0] == "finished":
            self.volume.prune(name, keep=run)
        else:
            self.volume.prune(name, keep=updated.get("_artifact"))

    def _ended(
        self, doc: Doc, status: Status, exception: str | None, traceback: str | None = None
    ) -> dict[str, Any]:
        ended = now()
        started = doc.get("_started")
        return {
            "status": status,
            "finished": status == Status.FINISHED,
            "exception": exception,
            "traceback": traceback,
            "finishedAt": iso(ended),
            "durationSeconds": None if started is None else round(ended - started, 3),
            "waitingFor": [],
        }

    async def _record_run(self, doc: Doc, job: dict[str, Any] | None = None) -> None:
        """Append the run record of `doc`'s run that just ended; a `_job` run records the
        job's type and parameters, not the step's."""
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
            },
        )


def _resident_mb(pid: int | None) -> float:
    """Resident memory of a process and all its descendants, in MB (0 if it is gone)."""
    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total / (1024 * 1024)
