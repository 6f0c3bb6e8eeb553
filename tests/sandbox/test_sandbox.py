"""The sandbox on its own: Landlock without a user switch, and the worker-side helpers.

When the server does not run as root the child keeps the server's user, and Landlock is
what confines it. These tests run that mode as root, which makes them strict: root passes
every permission check, so whatever the code is refused here is refused by Landlock alone.
(Reading the worker's /proc/<pid>/environ is the exception: Landlock allows it, the worker's
non-dumpable flag refuses it to another non-root process, and root passes that check; see
tests/steps/test_function.py for the root mode and docs/security.md.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from learning_orchestra.core.errors import JobFailed
from learning_orchestra.sandbox import (
    SandboxUser,
    closed_folders,
    copy_tree,
    landlock,
    readable_except,
)

LANDLOCK = landlock.abi_version()

# Runs in a fresh interpreter: the worker side of a sandbox, without a user switch.
WORKER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import learning_orchestra.sandbox as sandbox
    from learning_orchestra.core.artifacts import ArtifactVolume
    from learning_orchestra.core.worker import JobContext, JobSpec

    data = Path(sys.argv[1])
    volume = ArtifactVolume(data)
    staging = volume.staging_dir("victim", "r1")
    (staging / "value.json").write_text("42")
    volume.commit("victim", "r1", staging, kind="object", fmt="json")
    spec = JobSpec(name="probe", step_type="function/python", runner="", run="r9",
                   parameters={}, parents={}, data_dir=str(data), key=volume.key,
                   settings={"data_dir": str(data), "job_timeout": 30})
    if sys.argv[3] != "fresh":  # lent a pooled interpreter, as a server's supervisor does
        import asyncio, dataclasses
        from learning_orchestra.core.settings import Settings
        from learning_orchestra.sandbox.pool import SandboxPool
        from learning_orchestra.steps.function import STEP_TYPES

        pool = SandboxPool(Settings(data_dir=data), STEP_TYPES)  # kept: its zygote lives

        async def lend():
            for _ in range(1200):  # its zygote imports numpy and pandas first
                lent = await pool.lend(STEP_TYPES[0])
                if lent is not None:
                    return lent
                await asyncio.sleep(0.1)
            raise TimeoutError("no pooled interpreter")

        lent = asyncio.run(lend())
        if sys.argv[3] == "dead":  # it died before its job: the run starts a fresh one
            import psutil
            for process in psutil.Process(lent.pid).children(recursive=True):
                process.kill()
            psutil.Process(lent.pid).kill()
            psutil.Process(lent.pid).wait(10)
        spec = dataclasses.replace(spec, sandbox=lent.handle)
    sandbox.sandbox_user = lambda name: None  # as when the server is not root
    box = sandbox.Sandbox(JobContext(spec, None))
    report = box.run(sandbox.Request(code=sys.stdin.read(), parameters={"data": str(data)}))
    box.collect(Path(sys.argv[2]))
    print(json.dumps(box.protections))
    """
)

PROBE = """
import os, signal
results = {}
def attempt(label, action):
    try:
        action()
        results[label] = "ok"
    except OSError as exc:
        results[label] = type(exc).__name__
def write(path):
    with open(path, "a") as f:
        f.write("x")
def read(path):
    with open(path, "rb") as f:
        f.read(1)
attempt("read key", lambda: read(f"{data}/.secret-key"))
attempt("read artifact", lambda: read(f"{data}/artifacts/victim/r1/value.json"))
attempt("write artifact", lambda: write(f"{data}/artifacts/victim/r1/value.json"))
attempt("write data dir", lambda: write(f"{data}/planted"))
attempt("write tmp", lambda: write("/tmp/lo-landlock-escape"))
attempt("write parent", lambda: write("../escaped"))
attempt("write home", lambda: write("mine.txt"))
attempt("signal worker", lambda: os.kill(os.getppid(), 0))
attempt("read system", lambda: read("/etc/hostname"))
response = results
"""


@pytest.mark.skipif(LANDLOCK == 0, reason="this kernel has no Landlock")
@pytest.mark.parametrize("interpreter", ["fresh", "pooled", "dead"])
def test_landlock_alone_confines_the_code(tmp_path: Path, interpreter: str) -> None:
    """In a freshly started child, and in a pooled interpreter (sandbox/pool.py) the same;
    a pooled interpreter that died before its job is replaced by a fresh child."""
    data, out = tmp_path / "data", tmp_path / "out"
    finished = subprocess.run(
        [sys.executable, "-c", WORKER, str(data), str(out), interpreter],
        input=PROBE,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    # Emulated non-root (as root): a user namespace of its own, like a real non-root server
    # (tests/sandbox/test_isolation.py runs one). Asserted, so that CI fails without it.
    assert json.loads(finished.stdout.splitlines()[-1]) == {
        "user": None,
        "landlock": LANDLOCK,
        "namespaces": ["user", "mount", "network"],
        "network": "loopback",
        "privateTmp": True,
        "unixSockets": "blocked",
        "pooled": interpreter == "pooled",
    }
    results = json.loads((out / "value.json").read_text())
    refused = {k: v for k, v in results.items() if v != "ok"}
    # The data directory lies under /tmp here, which is the child's own tmpfs: only its
    # scratch folder is mounted back there, so the rest is not even found.
    expected = {
        "read key": "FileNotFoundError",
        "read artifact": "FileNotFoundError",
        "write artifact": "FileNotFoundError",
        "write tmp": "PermissionError",  # writable /tmp would cover the mounted-back inputs
        "write data dir": "PermissionError",
        "write parent": "PermissionError",
    }
    if LANDLOCK >= 6:  # signals scoped to the sandbox (Linux 6.12+)
        expected["signal worker"] = "PermissionError"
    assert refused == expected
    assert (out / "files" / "mine.txt").read_text() == "x"
    assert (data / "artifacts" / "victim" / "r1" / "value.json").read_text() == "42"
    # /tmp is the code's own tmpfs: writing there works and reaches nothing outside
    assert not (data / "planted").exists() and not Path("/tmp/lo-landlock-escape").exists()


@pytest.fixture
def passable_dir() -> Iterator[Path]:
    """A folder every user may pass through (pytest's own temp folders are closed)."""
    path = Path(tempfile.mkdtemp(prefix="lo-sandbox-test-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path)


def test_closed_folders_are_the_topmost_ones_on_the_way(passable_dir: Path) -> None:
    user = SandboxUser("nobody", 65534, 65534)
    closed, deep = passable_dir / "closed", passable_dir / "closed" / "inner" / "deep"
    deep.mkdir(parents=True, mode=0o755)
    (passable_dir / "open").mkdir(mode=0o755)
    closed.chmod(0o700)
    (closed / "inner").chmod(0o700)
    covers = closed_folders([deep, deep / "x", passable_dir / "open"], user)
    assert covers == {str(closed): [str(deep)]}  # deep/x is inside deep; open is reachable


def test_readable_except_leaves_out_the_hidden_folder(tmp_path: Path) -> None:
    hidden = tmp_path / "a" / "hidden"
    (hidden / "secret").mkdir(parents=True)
    (tmp_path / "a" / "sibling").mkdir()
    (tmp_path / "a" / "link").symlink_to(hidden)
    (tmp_path / "a" / "up").symlink_to(tmp_path)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "store.db").write_text("")
    (tmp_path / "b" / "other.txt").write_text("")
    store = tmp_path / "b" / "store.db"
    paths = readable_except([hidden, hidden / "secret" / "inner.db", store])
    assert str(tmp_path / "a" / "sibling") in paths and str(tmp_path / "b" / "other.txt") in paths
    assert str(store) not in paths
    assert not any(p.startswith(str(hidden)) for p in paths)
    assert str(tmp_path / "a" / "link") not in paths and str(tmp_path / "a" / "up") not in paths
    assert "/usr" in paths and "/" not in paths


def test_copy_tree_keeps_regular_files_only(tmp_path: Path) -> None:
    source, target = tmp_path / "work", tmp_path / "out"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("a")
    (source / "sub" / "b.bin").write_bytes(b"b")
    (source / "link").symlink_to("/etc/hostname")
    (source / "dirlink").symlink_to("/etc")
    os.mkfifo(source / "pipe")
    os.link(source / "a.txt", source / "hard.txt")  # a second name: could be anyone's file
    assert copy_tree(source, target) == ["sub/b.bin"]
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == ["sub", "sub/b.bin"]
    with pytest.raises(JobFailed, match="not a regular file"):
        copy_tree(source, tmp_path / "strict", strict=True)
    (tmp_path / "swapped").symlink_to(source)  # a folder the code replaced with a link
    assert copy_tree(tmp_path / "swapped", tmp_path / "via-link") == []
    with pytest.raises(JobFailed, match="not a folder any more"):
        copy_tree(tmp_path / "swapped", tmp_path / "via-link", strict=True)
