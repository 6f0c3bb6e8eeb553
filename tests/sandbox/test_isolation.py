"""What user code can reach, run as real steps on real servers: root, non-root with user
namespaces, and non-root without them (docs/security.md).

The non-root servers run as uid 64123 through tests/sandbox/as_user.py (when the tests run
as root; otherwise the test process's own user is used directly). Each test asserts the
step's `sandbox` metadata first: where a confinement is not available here, the test fails
instead of passing vacuously.
"""

from __future__ import annotations

import glob
import json
import os
import socket
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from learning_orchestra.sandbox import landlock
from tests.conftest import BASE, ROOT, ServerProcess

FUNCTION = f"{BASE}/function/python"
UID = 64123
AS_USER = Path(__file__).with_name("as_user.py")
LANDLOCK = landlock.abi_version()

PROBE = """
import glob, os, socket
results = {"sockets": sorted(glob.glob("/tmp/pymp-*/*") + glob.glob("/tmp/*.sock"))}
results["shm"] = sorted(os.listdir("/dev/shm"))
for path in listeners:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
        results[path] = "connected"
    except OSError as exc:
        results[path] = type(exc).__name__
def open_fds(pid):  # the server's open files (its store, its log) through /proc
    errors = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            open(f"/proc/{pid}/fd/{fd}", "rb").close()
            return "read"
        except OSError as exc:
            errors.add(type(exc).__name__)
    return "PermissionError" if "PermissionError" in errors else sorted(errors)
for pid in pids:  # the server's processes, through /proc (its pooled interpreters too)
    if pid == os.getpid():  # this run's own process, pooled until it got this job
        continue
    for what in ("root/tmp", "fd", "environ"):
        try:
            if what == "fd":
                results[f"{pid}/{what}"] = open_fds(pid)
                continue
            if what == "environ":
                open(f"/proc/{pid}/environ").read()
            else:
                os.listdir(f"/proc/{pid}/root/tmp")
            results[f"{pid}/{what}"] = "read"
        except OSError as exc:
            results[f"{pid}/{what}"] = type(exc).__name__
for host, port in targets:
    try:
        socket.create_connection((host, port), timeout=3).close()
        results[f"{host}:{port}"] = "connected"
    except OSError as exc:
        results[f"{host}:{port}"] = type(exc).__name__
response = results
"""


def run(server: ServerProcess, name: str, source: str, **parameters: Any) -> dict[str, Any]:
    """A function step on `server`, waited for; its metadata (it must finish)."""
    body = {"name": name, "function": textwrap.dedent(source), "functionParameters": parameters}
    with httpx.Client(base_url=server.url, timeout=90) as client:
        response = client.post(FUNCTION, json=body)
        assert response.status_code == 201, response.text
        doc = client.get(f"{BASE}/observe/{name}", params={"timeout": 60}).json()["result"]
        assert doc["status"] == "finished", doc.get("exception")
        value = client.get(f"{FUNCTION}/{name}/files/value.json")
        assert value.status_code == 200, value.text
        doc["value"] = value.json()
    return doc


def warm_up(server: ServerProcess) -> None:
    """Run trivial steps until one runs in a pooled interpreter (sandbox/pool.py): the
    family's zygote starts with the first step, and the probes must meet the pool."""
    for attempt in range(60):
        if run(server, f"warmup{attempt}", "response = 1")["sandbox"]["pooled"]:
            return
    pytest.fail("no step ran in a pooled sandbox interpreter")


def gone(pid: int) -> bool:
    """`pid` ended (e.g. the pooled interpreter of the warm-up run, listed while exiting)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def nonroot_server(
    folder: Path, *launcher: str, env: dict[str, str] | None = None
) -> ServerProcess:
    """A server that is not root: as uid UID when the tests run as root."""
    server = ServerProcess(folder / "data", env={"HOME": str(folder), **(env or {})})
    if os.geteuid() == 0:
        os.chown(folder, UID, UID)
        keep = [sys.base_prefix, sys.prefix, str(ROOT), str(folder)]
        server.prefix = [sys.executable, str(AS_USER), str(UID), ":".join(keep), *launcher]
    elif launcher:
        pytest.fail("the fallback without user namespaces is tested when the tests run as root")
    return server


def server_sockets(server: ServerProcess) -> tuple[list[str], list[int]]:
    """The forkserver listener(s) of `server` (in the host's /tmp) and its processes."""
    assert server.process is not None
    uid = UID if os.geteuid() == 0 else os.geteuid()
    listeners = [p for p in glob.glob("/tmp/pymp-*/listener-*") if os.stat(p).st_uid == uid]
    import psutil

    parent = psutil.Process(server.process.pid)
    pids = [parent.pid, *(c.pid for c in parent.children(recursive=True))]
    return listeners, pids


@pytest.fixture(scope="module")
def nonroot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = nonroot_server(tmp_path_factory.mktemp("nonroot"))
    server.start()
    yield server
    server.stop()


def test_nonroot_code_reaches_no_socket_or_process_of_the_server(nonroot: ServerProcess) -> None:
    warm_up(nonroot)  # the forkserver and its listener exist now, and the sandbox pool
    listeners, pids = server_sockets(nonroot)
    assert listeners, "the server's forkserver listener was not found"
    doc = run(
        nonroot,
        "escape",
        PROBE,
        listeners=listeners,
        pids=pids,
        targets=[["169.254.169.254", 80], ["127.0.0.1", nonroot.port]],
    )
    assert doc["sandbox"] == {
        "user": None,
        "landlock": LANDLOCK,
        "namespaces": ["user", "mount", "network"],
        "network": "loopback",
        "privateTmp": True,
        "unixSockets": "blocked",
        "pooled": True,
    }
    found = doc["value"]
    assert found.pop("sockets") == [] and found.pop("shm") == []
    for path in listeners:  # not there (private /tmp), and no Unix socket may be made anyway
        assert found.pop(path) in ("PermissionError", "FileNotFoundError")
    assert len(pids) >= 4, pids  # the server, its forkserver, a zygote, idle interpreters
    for pid in pids:
        for what in ("root/tmp", "fd", "environ"):
            result = found.pop(f"{pid}/{what}", "its own")
            assert result == "PermissionError" or (result != "read" and gone(pid)), (pid, what)
    assert found.pop("169.254.169.254:80") == "OSError"  # no route: only lo exists
    assert found.pop(f"127.0.0.1:{nonroot.port}") == "ConnectionRefusedError"  # its own lo
    assert found == {}


def test_without_user_namespaces_landlock_confines_tcp_and_shm_is_cleaned(
    tmp_path: Path,
) -> None:
    """Non-root on a machine without user namespaces: no private /tmp nor network
    namespace; TCP only to LO_SANDBOX_TCP_PORTS (Landlock ABI 4), Unix sockets blocked,
    /dev/shm cleaned after the run."""
    if LANDLOCK < 4:
        pytest.fail(f"Landlock ABI {LANDLOCK} cannot restrict TCP: this test needs ABI 4+")
    allowed = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=lambda: allowed.accept()[0].close(), daemon=True).start()
    port = allowed.getsockname()[1]
    server = nonroot_server(tmp_path, "--no-userns", env={"LO_SANDBOX_TCP_PORTS": str(port)})
    server.start()
    marker = f"lo-test-shm-{os.getpid()}"
    try:
        warm_up(server)
        listeners, pids = server_sockets(server)
        doc = run(
            server,
            "escape",
            f"open('/dev/shm/{marker}', 'w').write('left')\n" + PROBE,
            listeners=listeners,
            pids=pids[:1],
            targets=[["169.254.169.254", 80], ["127.0.0.1", server.port], ["127.0.0.1", port]],
        )
    finally:
        server.stop()
        allowed.close()
    assert doc["sandbox"] == {
        "user": None,
        "landlock": LANDLOCK,
        "namespaces": [],
        "network": "tcp-ports",
        "tcpPorts": [port],
        "privateTmp": False,
        "unixSockets": "blocked",
        "pooled": True,
    }
    found = doc["value"]
    assert listeners and all(found[path] == "PermissionError" for path in listeners)
    assert found[f"{pids[0]}/root/tmp"] == "PermissionError"
    assert found["169.254.169.254:80"] == "PermissionError"
    assert found[f"127.0.0.1:{server.port}"] == "PermissionError"
    assert found[f"127.0.0.1:{port}"] == "connected"
    assert marker in found["shm"] and not Path("/dev/shm", marker).exists()  # cleaned


def test_root_code_has_only_its_loopback(lo_server: str) -> None:
    server = ServerProcess.__new__(ServerProcess)  # the session's server, by URL
    server.url, server.port = lo_server, int(lo_server.rsplit(":", 1)[1])
    doc = run(
        server,
        "netprobe",
        PROBE,
        listeners=[],
        pids=[],
        targets=[["169.254.169.254", 80], ["127.0.0.1", server.port]],
    )
    assert doc["sandbox"]["namespaces"] == ["mount", "network"], doc["sandbox"]
    assert doc["sandbox"]["network"] == "loopback" and doc["sandbox"]["privateTmp"] is True
    assert doc["value"]["169.254.169.254:80"] == "OSError"
    assert doc["value"][f"127.0.0.1:{server.port}"] == "ConnectionRefusedError"


def test_network_host_opts_out(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", env={"LO_SANDBOX_NETWORK": "host"})
    server.start()
    try:
        source = """
            import socket
            socket.create_connection(("127.0.0.1", port), 5).close()
            response = "connected"
        """
        doc = run(server, "api", source, port=server.port)
    finally:
        server.stop()
    assert doc["sandbox"]["network"] == "host" and "network" not in doc["sandbox"]["namespaces"]
    assert doc["value"] == "connected"
    assert json.dumps(doc["sandbox"])  # recorded as plain JSON
