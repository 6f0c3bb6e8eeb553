"""Shared fixtures: a real server process, a local file server, in-process apps.

Nothing here mocks the store, the worker processes or HTTP: `lo_server` is the real
`learning-orchestra serve` on a free 127.0.0.1 port; `files_server` serves test data over
real HTTP on 127.0.0.1 (the server must never reach the internet in tests).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
DATA = ROOT / "examples" / "data"
BASE = "/api/learningOrchestra/v1"

#: The types dataset/csv infers for the Titanic training set.
TITANIC_TYPES = {
    "PassengerId": "integer",
    "Survived": "integer",
    "Pclass": "integer",
    "Name": "string",
    "Sex": "string",
    "Age": "float",
    "SibSp": "integer",
    "Parch": "integer",
    "Ticket": "string",
    "Fare": "float",
    "Cabin": "string",
    "Embarked": "string",
}


def assert_error(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    """The response is `status` with LO's error envelope; its message names `fragments`."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"result", "error"}, body
    message = body["result"]
    assert isinstance(message, str) and message.strip() and "\n" not in message, body
    assert set(body["error"]) == {"code", "detail"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    for fragment in fragments:
        assert fragment.lower() in message.lower(), (fragment, message)
    return body


def all_steps(client: httpx.Client) -> list[dict[str, Any]]:
    """Every step's metadata on the server `client` talks to (its root URL), oldest first."""
    steps: list[dict[str, Any]] = []
    while True:
        response = client.get(f"{BASE}/steps", params={"skip": len(steps), "limit": 100})
        assert response.status_code == 200, response.text
        page = response.json()["result"]
        if not page:
            return steps
        steps += page


def data_file(relative: str) -> Path:
    """A test data file: the project's copy, else ../shared/data."""
    for folder in (DATA, SHARED_DATA):
        if (folder / relative).exists():
            return folder / relative
    raise FileNotFoundError(relative)


#: The user's own example scripts (the AutoML monograph's appendices).
USER_EXAMPLES = ROOT.parent / "shared" / "examples"


def run_user_script(
    name: str, changes: list[tuple[str, str]], folder: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run the user's script `name` (USER_EXAMPLES) in `folder` with only `changes` made,
    each ``(original text, replacement)`` found exactly once; it must exit 0."""
    return run_script_source((USER_EXAMPLES / name).read_text(), name, changes, folder, timeout)


def run_script_source(
    source: str, name: str, changes: list[tuple[str, str]], folder: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run the script `source` as `folder/name` with only `changes` made, each ``(original
    text, replacement)`` found exactly once; it must exit 0."""
    for original, replacement in changes:
        assert source.count(original) == 1, original
        source = source.replace(original, replacement)
    (folder / name).write_text(source)
    done = subprocess.run(
        [sys.executable, name], cwd=folder, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def printed_json(out: str) -> list[Any]:
    """The JSON values a script printed (LO's scripts pretty-print each answer), in order."""
    decoder = json.JSONDecoder()
    values, at = [], out.find("{")
    while at != -1:
        value, end = decoder.raw_decode(out, at)
        values.append(value)
        at = out.find("{", end)
    return values


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """`learning-orchestra serve` in a child process, restartable on the same data dir."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, private_urls: bool = True
    ) -> None:
        """`private_urls`: LO_ALLOW_PRIVATE_URLS=1, so datasets can come from the local
        files_server (False: the default SSRF guard)."""
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        opt_in = {"LO_ALLOW_PRIVATE_URLS": "1"} if private_urls else {}
        self.env = {**os.environ, "LO_LEASE_SECONDS": "3", **opt_in, **(env or {})}
        if not private_urls:
            self.env.pop("LO_ALLOW_PRIVATE_URLS", None)
            self.env.pop("LO_ALLOWED_URL_HOSTS", None)
        self.env.pop("LO_STORE_URL", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"
        self.prefix: list[str] = []  # a launcher, e.g. tests/sandbox/as_user.py (non-root)

    def start(self, *extra: str) -> None:
        command = [
            *self.prefix,
            sys.executable,
            "-m",
            "learning_orchestra.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "warning",
            *extra,
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


#: Lines of the shared server's log shown after a session with failures: its errors.
SERVER_LOG_ERRORS = 200


@pytest.fixture(scope="session")
def lo_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The base URL ("http://127.0.0.1:PORT") of one real embedded server for the session.
    When a test failed, the server's error lines are printed at the end (CI keeps no files):
    a step that failed "internally" shows the supervisor's traceback there."""
    server = ServerProcess(tmp_path_factory.mktemp("lo-server") / "data")
    server.start()
    yield server.url
    server.stop()
    if request.session.testsfailed and server.log.exists():
        lines = server.log.read_text(errors="replace").splitlines()
        errors = [i for i, line in enumerate(lines) if "ERROR" in line or "Traceback" in line]
        shown = sorted({j for i in errors for j in range(i, min(i + 30, len(lines)))})
        tail = [lines[j] for j in shown][-SERVER_LOG_ERRORS:]
        if tail:
            print(f"\n--- errors in the shared server's log ({server.log}) ---")
            print("\n".join(tail))


class FilesHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, plus /slow.csv (a CSV that trickles out), /page.html, and
    /redirect?to=URL (a 302 to URL)."""

    slow_rows = 2000
    slow_delay = 0.01

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/slow.csv"):
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(b"id,value\n")
                for i in range(self.slow_rows):
                    self.wfile.write(f"{i},{i * 0.5}\n".encode())
                    self.wfile.flush()
                    time.sleep(self.slow_delay)
            return
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/redirect?to="))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/page.html"):
            body = b"<html><body>not a csv</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@pytest.fixture(scope="session")
def files_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a local HTTP server holding titanic train.csv/test.csv and bad files."""
    folder = tmp_path_factory.mktemp("files")
    for name in ("train.csv", "test.csv"):
        shutil.copy(data_file(f"titanic/{name}"), folder / name)
    (folder / "malformed.csv").write_text("a,b,c\n1,2,3\n4,5\n6,7,8,9\n")
    (folder / "empty.csv").write_text("")
    (folder / "typed.csv").write_text(
        "i,f,b,s,mixed,blank\n1,1.5,true,x,1,\n2,,False,y,2.5,\n,3,TRUE,,z,\n"
    )

    def handler(*args: Any, **kwargs: Any) -> FilesHandler:
        return FilesHandler(*args, directory=str(folder), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Any]:
    """An in-process embedded app (every service) on a fresh data dir, via TestClient.

    Jobs still run in real worker processes and the store is a real SQLite file."""
    from fastapi.testclient import TestClient

    from learning_orchestra.core.api import create_app
    from learning_orchestra.core.settings import Settings

    # allow_private_urls: datasets come from the local files_server (an SSRF opt-in; the SSRF
    # tests build their apps with default settings)
    settings = Settings(
        data_dir=tmp_path / "data", lease_seconds=3, job_timeout=120, allow_private_urls=True
    )
    with TestClient(create_app(settings=settings)) as client:
        yield client


def wait(client: Any, name: str, timeout: float = 60) -> dict[str, Any]:
    """Long-poll the observe service until `name` ends; its metadata."""
    response = client.get(f"{BASE}/observe/{name}", params={"timeout": timeout})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result
