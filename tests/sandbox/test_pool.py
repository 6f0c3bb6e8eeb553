"""The pool of pre-started sandbox interpreters (sandbox/pool.py), on its own: what an idle
pooled interpreter holds, and that it never outlives its pool or its server. (Runs through
the API: tests/steps/test_function.py; confinement in one: tests/sandbox/test_sandbox.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from learning_orchestra.core.settings import Settings
from learning_orchestra.core.steptype import SANDBOX_BASE_MODULES
from learning_orchestra.sandbox.pool import Lent, SandboxPool
from learning_orchestra.steps.function import STEP_TYPES
from learning_orchestra.toolkits.calls import toolkit_step_type

PYTHON = STEP_TYPES[0]
SECRET = "secret-of-the-server-5b1e"


async def lend(pool: SandboxPool) -> Lent:
    """A pooled interpreter, once the family's zygote has imported its modules."""
    for _ in range(1200):
        lent = await pool.lend(PYTHON)
        if lent is not None:
            return lent
        await asyncio.sleep(0.1)
    raise TimeoutError("the pool never lent an interpreter")


def family_processes(pool: SandboxPool) -> list[psutil.Process]:
    """The zygote of the python family and every process under it."""
    zygote = pool._pools["python"].zygote
    assert zygote is not None
    root = psutil.Process(zygote.pid)
    return [root, *root.children(recursive=True)]


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def secrets_in_env() -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    patch.setenv("LO_SECRET_KEY", SECRET)
    patch.setenv("LO_API_TOKENS", SECRET)
    yield
    patch.undo()


def test_idle_interpreters_hold_nothing_and_stop_kills_them(
    tmp_path: Path, secrets_in_env: None
) -> None:
    """Before any job: no LO_* variable (the server's environment has secrets), no open file
    but /dev/null and its socket, nothing of a data directory mapped, cwd /; and a process
    per job: the lent interpreter is not among the idle ones. `stop` ends them all."""

    async def scenario() -> tuple[list[psutil.Process], int]:
        pool = SandboxPool(Settings(data_dir=tmp_path / "data", sandbox_pool=2), [PYTHON])
        lent = await lend(pool)
        for _ in range(100):  # refilled in the background
            if len(pool._pools["python"].idle) == 2:
                break
            await asyncio.sleep(0.1)
        processes = family_processes(pool)
        try:
            # the zygote; the lent interpreter and the two idle ones, each with the fork
            # that waits for its job
            assert len(processes) == 7, processes
            for process in processes:
                environ = Path(f"/proc/{process.pid}/environ").read_bytes()
                assert SECRET.encode() not in environ and b"LO_" not in environ
                assert process.cwd() == "/"
                for fd in os.listdir(f"/proc/{process.pid}/fd"):
                    target = os.readlink(f"/proc/{process.pid}/fd/{fd}")
                    assert target == "/dev/null" or target.startswith("socket:"), target
                maps = Path(f"/proc/{process.pid}/maps").read_text()
                assert str(tmp_path) not in maps
                assert "--zygote" in process.cmdline()  # forks of the zygote, never exec'd
            idle = {i.pooled.pid for i in pool._pools["python"].idle}
            assert lent.pid not in idle and len(idle) == 2
        finally:
            lent.release()
            await pool.stop()
        return processes, lent.pid

    processes, _ = asyncio.run(scenario())
    deadline = time.monotonic() + 10
    while not all(map(gone, processes)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(map(gone, processes))


SERVER = textwrap.dedent(
    """
    import asyncio, sys, time
    from learning_orchestra.core.settings import Settings
    from learning_orchestra.sandbox.pool import SandboxPool
    from learning_orchestra.steps.function import STEP_TYPES

    async def main():
        pool = SandboxPool(Settings(data_dir=sys.argv[1]), STEP_TYPES)
        while (lent := await pool.lend(STEP_TYPES[0])) is None:
            await asyncio.sleep(0.1)
        while not pool._pools["python"].idle:
            await asyncio.sleep(0.1)
        print(pool._pools["python"].zygote.pid, lent.pid, flush=True)
        await asyncio.sleep(600)

    asyncio.run(main())
    """
)


def test_pooled_interpreters_die_with_the_server(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tmp_path / "data")], stdout=subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        zygote_pid, _ = server.stdout.readline().split()
        zygote = psutil.Process(int(zygote_pid))
        processes = [zygote, *zygote.children(recursive=True)]
        assert len(processes) == 5  # the zygote; a lent and an idle interpreter, each with
        # the fork that waits for (or runs) its job
    finally:
        server.send_signal(signal.SIGKILL)  # no clean-up of its own
        server.wait()
    deadline = time.monotonic() + 10
    while not all(map(gone, processes)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(map(gone, processes))


def test_dead_interpreters_and_zygotes_are_replaced(tmp_path: Path) -> None:
    async def scenario() -> None:
        pool = SandboxPool(Settings(data_dir=tmp_path / "data"), [PYTHON])
        try:
            (await lend(pool)).release()
            for _ in range(100):
                if pool._pools["python"].idle:
                    break
                await asyncio.sleep(0.1)
            (idle,) = pool._pools["python"].idle
            dying = psutil.Process(idle.pooled.pid)
            dying.kill()  # an idle interpreter dies
            for _ in range(100):
                if gone(dying):
                    break
                await asyncio.sleep(0.1)
            lent = await pool.lend(PYTHON)
            assert lent is not None and lent.pid != idle.pooled.pid
            assert "--zygote" in psutil.Process(lent.pid).cmdline()
            lent.release()
            zygote = pool._pools["python"].zygote
            assert zygote is not None
            zygote.kill()  # the zygote dies: started again, meanwhile fresh interpreters
            zygote.wait()
            assert await pool.lend(PYTHON) is None
            lent = await lend(pool)
            new_zygote = pool._pools["python"].zygote
            assert new_zygote is not None and new_zygote.pid != zygote.pid
            assert psutil.Process(lent.pid).ppid() == new_zygote.pid
            lent.release()
        finally:
            await pool.stop()

    asyncio.run(scenario())


def test_families_are_declared_on_step_types() -> None:
    assert PYTHON.sandbox is not None and PYTHON.sandbox.name == "python"
    assert set(SANDBOX_BASE_MODULES) <= set(PYTHON.sandbox.modules)
    family = toolkit_step_type("transform", "scikitlearn").sandbox
    assert family is not None and family.name == "scikitlearn"
    assert "sklearn" in family.modules
    assert toolkit_step_type("explore", "scikitlearn").sandbox == family  # one pool for both
    tensorflow = toolkit_step_type("transform", "tensorflow").sandbox
    assert tensorflow is not None and ("TF_CPP_MIN_LOG_LEVEL", "2") in tensorflow.env


def test_pool_size_zero_lends_nothing(tmp_path: Path) -> None:
    async def scenario() -> Lent | None:
        pool = SandboxPool(Settings(data_dir=tmp_path, sandbox_pool=0), [PYTHON])
        try:
            return await pool.lend(PYTHON)
        finally:
            await pool.stop()

    assert asyncio.run(scenario()) is None


def test_the_namespace_probe_runs_once_per_server() -> None:
    """The forkserver imports sandbox.probe (StepType.preload): workers forked from it find
    the answer cached instead of forking to try (3-12 ms per step)."""
    assert "learning_orchestra.sandbox.probe" in PYTHON.preload
    script = (
        "import learning_orchestra.sandbox.probe\n"
        "from learning_orchestra.sandbox import namespaces\n"
        "print(namespaces.available.cache_info().currsize)\n"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert found.stdout.strip() == "1", found.stderr
