"""function/python through the real embedded app: user code in a sandboxed child process.

Everything is real: the app, its SQLite store, the worker processes and, inside them, the
sandboxed child that runs the code (as `nobody` when the tests run as root, confined by
Landlock where the kernel has it). The hostile functions run against an app with small
limits and secrets in its environment; each must end `failed` with a clear reason, or be
contained, while the service keeps answering.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastapi.testclient import TestClient

from learning_orchestra.core.api import create_app
from learning_orchestra.core.artifacts import ArtifactVolume
from learning_orchestra.core.settings import Settings
from learning_orchestra.sandbox import landlock
from tests.conftest import BASE, assert_error, wait

FUNCTION = f"{BASE}/function/python"
ROOT = os.geteuid() == 0
LANDLOCK = landlock.abi_version()
SECRET_TOKEN = "token-that-must-not-leak-7f3a"
SECRET_KEY = "key-that-must-not-leak-91c2"


def code(source: str) -> str:
    return textwrap.dedent(source).strip() + "\n"


def run(
    client: TestClient, name: str, source: str, timeout: float = 60, **parameters: Any
) -> dict[str, Any]:
    """POST a function step and wait for it to end; its metadata."""
    body = {"name": name, "function": code(source), "functionParameters": parameters}
    response = client.post(FUNCTION, json=body)
    assert response.status_code == 201, response.text
    assert response.json() == {"result": f"{FUNCTION}/{name}"}
    return wait(client, name, timeout)


def latest_run(client: TestClient, name: str) -> dict[str, Any]:
    response = client.get(f"{FUNCTION}/{name}", params={"skip": 1, "limit": 1})
    assert response.status_code == 200, response.text
    (record,) = response.json()["result"]
    return record


def download(client: TestClient, name: str, filename: str) -> bytes:
    response = client.get(f"{FUNCTION}/{name}/files/{filename}")
    assert response.status_code == 200, response.text
    return response.content


def files_of(client: TestClient, name: str) -> set[str]:
    response = client.get(f"{FUNCTION}/{name}/files")
    assert response.status_code == 200, response.text
    return {f["filename"] for f in response.json()["result"]}


def app_client(data_dir: Path, **settings: Any) -> TestClient:
    settings.setdefault("api_tokens", "")  # not LO_API_TOKENS, which `strict` sets
    settings.setdefault("allow_private_urls", True)  # the local files_server (SSRF opt-in)
    config = Settings(data_dir=data_dir, lease_seconds=3, **settings)
    return TestClient(create_app(settings=config))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the tests that do not need limits of their own."""
    with app_client(tmp_path_factory.mktemp("function") / "data", job_timeout=120) as c:
        yield c


# -- what the code gets and gives ------------------------------------------------------------
def test_prints_returns_a_dict_and_is_referenced_by_key(api: TestClient) -> None:
    doc = run(
        api,
        "maker",
        """
        import pandas as pd
        print("making", n, "rows")
        def double(x):
            return x * factor  # a top-level name, visible inside the function
        factor = 2
        response = {"total": double(n), "table": pd.DataFrame({"v": range(n)}), "note": "hi"}
        """,
        n=4,
    )
    assert doc["status"] == "finished", doc["exception"]
    assert doc["responseType"] == "dict" and doc["keys"] == ["total", "table", "note"]
    assert doc["sandbox"]["user"] == ("nobody" if ROOT else None)
    record = latest_run(api, "maker")
    assert record["status"] == "finished" and "making 4 rows" in record["functionMessage"]
    assert "making 4 rows" in api.get(f"{FUNCTION}/maker/logs").json()["result"]
    # Each value in its natural format: `$maker.table` loads that table alone.
    assert {"index.json", "0/value.json", "1/table.parquet", "2/value.json"} <= files_of(
        api, "maker"
    )

    doc = run(
        api,
        "user",
        "response = int(table['v'].sum()) + total + len(note)",
        table="$maker.table",
        total="$maker.total",
        note="$maker.note",
    )
    assert doc["status"] == "finished", doc["exception"]
    assert doc["parents"] == ["maker"]
    assert download(api, "user", "value.json") == b"16"  # 0+1+2+3 + 8 + 2

    doc = run(api, "nokey", "response = x", x="$maker.missing")
    assert doc["status"] == "failed"
    assert "has no key 'missing'" in doc["exception"] and "total, table, note" in doc["exception"]


def test_a_dataset_is_a_dataframe(client: TestClient, files_server: str) -> None:
    response = client.post(
        f"{BASE}/dataset/csv",
        json={"datasetName": "titanic", "datasetURI": f"{files_server}/train.csv"},
    )
    assert response.status_code == 201, response.text
    doc = run(
        client,
        "women",
        "response = frame[frame['Sex'] == 'female'][['Name', 'Age']]",
        frame="$titanic",
    )
    assert doc["status"] == "finished", doc["exception"]
    assert doc["parents"] == ["titanic"]
    assert doc["responseType"] == "DataFrame" and doc["fields"] == ["Name", "Age"]
    assert doc["rows"] == 314
    rows = client.get(f"{FUNCTION}/women/result", params={"format": "json"}).json()["result"]
    assert len(rows) == 314 and set(rows[0]) == {"Name", "Age"}


def test_result_answers_arrays_as_npy_and_json_values_as_json(client: TestClient) -> None:
    import io

    import numpy as np

    doc = run(client, "arr", "import numpy as np\nresponse = np.arange(6.0).reshape(2, 3)")
    assert doc["status"] == "finished", doc["exception"]
    for params in ({}, {"format": "npy"}):
        response = client.get(f"{FUNCTION}/arr/result", params=params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/octet-stream"
        array = np.load(io.BytesIO(response.content), allow_pickle=False)
        assert array.shape == (2, 3) and array.tolist() == [[0, 1, 2], [3, 4, 5]]
    for other in ("json", "csv", "parquet"):
        assert_error(client.get(f"{FUNCTION}/arr/result", params={"format": other}), 422, "npy")

    values = {
        "scalar": ("response = 2.5", 2.5),
        "listed": ("response = [1, 'two', None]", [1, "two", None]),
        "metrics": ("response = {'accuracy': 0.9, 'labels': ['a', 'b']}", None),
    }
    for name, (source, _) in values.items():
        assert run(client, name, source)["status"] == "finished"
    values["metrics"] = ("", {"accuracy": 0.9, "labels": ["a", "b"]})
    for name, (_, expected) in values.items():
        for params in ({}, {"format": "json"}):
            response = client.get(f"{FUNCTION}/{name}/result", params=params)
            assert response.status_code == 200, response.text
            assert response.json() == {"result": expected}
        assert_error(client.get(f"{FUNCTION}/{name}/result", params={"format": "npy"}), 422, "json")
    # a table is no array either; a dict of non-JSON values is served item by item elsewhere
    doc = run(client, "tbl", "import pandas as pd\nresponse = pd.DataFrame({'v': [1, 2]})")
    assert doc["status"] == "finished", doc["exception"]
    assert_error(client.get(f"{FUNCTION}/tbl/result", params={"format": "npy"}), 422, "csv")
    doc = run(client, "mixed", "import numpy as np\nresponse = {'a': np.zeros(2), 'b': 1}")
    assert doc["status"] == "finished", doc["exception"]
    assert_error(client.get(f"{FUNCTION}/mixed/result"), 422, ".../files")


def test_expressions_are_evaluated_in_the_sandbox(client: TestClient) -> None:
    doc = run(
        client,
        "exprs",
        """
        response = {"sum": int(arr.sum()), "kind": type(frame).__name__,
                    "nested": nested, "literals": [hashes, dollars]}
        """,
        arr="#np.arange(5)",
        frame="#pd.DataFrame({'a': [1]})",
        nested={"square": ["#2 ** 8"]},
        hashes="##not an expression",
        dollars="$$5",
    )
    assert doc["status"] == "finished", doc["exception"]
    assert download(client, "exprs", "value.json") == (
        b'{"sum": 10, "kind": "DataFrame", "nested": {"square": [256]}, '
        b'"literals": ["#not an expression", "$5"]}'
    )
    doc = run(client, "badexpr", "response = x", x="#undefined_name + 1")
    assert doc["status"] == "failed"
    assert doc["exception"].startswith("#undefined_name + 1: NameError")
    if importlib.util.find_spec("tensorflow") is None:
        doc = run(client, "notf", "response = x", x="#tensorflow.constant(1)")
        assert doc["exception"] == (
            "#tensorflow.constant(1): uses tensorflow, which is not installed on this server"
        )


def test_files_the_code_writes_are_step_files(client: TestClient) -> None:
    source = """
        import os, tempfile
        with open("report.txt", "w") as f:
            f.write(f"run {run}")
        os.makedirs("sub", exist_ok=True)
        with open("sub/model.bin", "wb") as f:
            f.write(bytes(range(4)))
        os.symlink("report.txt", "link.txt")  # not a regular file: not kept
        with tempfile.NamedTemporaryFile(delete=False) as f:  # TMPDIR: discarded
            f.write(b"scratch")
        response = os.getcwd() == os.environ["HOME"]
    """
    doc = run(client, "writer", source, run=1)
    assert doc["status"] == "finished", doc["exception"]
    assert doc["files"] == ["files/report.txt", "files/sub/model.bin"]
    assert files_of(client, "writer") == {"value.json", "files/report.txt", "files/sub/model.bin"}
    assert download(client, "writer", "files/sub/model.bin") == bytes(range(4))
    assert download(client, "writer", "value.json") == b"true"
    assert (
        "not kept: link.txt is not a regular file"
        in latest_run(client, "writer")["functionMessage"]
    )

    # PATCH re-runs with the merged parameters; run records come newest first.
    response = client.patch(f"{FUNCTION}/writer", json={"functionParameters": {"run": 2}})
    assert response.status_code == 201, response.text
    doc = wait(client, "writer")
    assert doc["status"] == "finished" and doc["runs"] == 2
    assert download(client, "writer", "files/report.txt") == b"run 2"
    records = client.get(f"{FUNCTION}/writer", params={"skip": 1}).json()["result"]
    assert [r["run"] for r in records] == [2, 1]
    assert records[0]["parameters"]["functionParameters"] == {"run": 2}


# -- failures the user must be able to read ---------------------------------------------------
def test_code_that_does_not_assign_response(client: TestClient) -> None:
    doc = run(client, "noresponse", "x = 1")
    assert doc["status"] == "failed"
    assert doc["exception"] == ("the code must assign `response`: its value is the step's output")
    assert latest_run(client, "noresponse")["exception"] == doc["exception"]


def test_syntax_error_names_the_line(client: TestClient) -> None:
    doc = run(client, "syntax", "a = 1\nb = 2\nc = = 3\n")
    assert doc["status"] == "failed"
    assert doc["exception"].startswith("SyntaxError at line 3: invalid syntax")
    assert 'File "<function>", line 3' in doc["traceback"]


def test_runtime_error_shows_the_users_traceback(client: TestClient) -> None:
    source = """
        def ratio(a, b):
            return a / b
        response = ratio(1, zero)
    """
    doc = run(client, "divide", source, zero=0)
    assert doc["status"] == "failed"
    assert doc["exception"] == "ZeroDivisionError: division by zero (line 2)"
    trace = doc["traceback"]
    assert 'File "<function>", line 3, in <module>' in trace
    assert "return a / b" in trace and "sandbox" not in trace  # none of the runner's frames


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "f", "functionParameters": {}}, "function: required"),
        ({"name": "f", "function": "response = 1"}, "functionParameters: required"),
        ({"name": "f", "function": "", "functionParameters": {}}, "function:"),
        (
            {"name": "f", "function": "response = 1", "functionParameters": {"a b": 1}},
            "'a b' is not a Python variable name",
        ),
        (
            {"name": "f", "function": "pass", "functionParameters": {"response": 1}},
            "'response' is reserved",
        ),
        (
            {"name": "f", "function": "response = x", "functionParameters": {"x": "$nosuch"}},
            "no step named 'nosuch'",
        ),
        ({"name": "a.b", "function": "response = 1", "functionParameters": {}}, "name"),
    ],
)
def test_bad_bodies_are_422(client: TestClient, body: dict[str, Any], fragment: str) -> None:
    response = client.post(FUNCTION, json=body)
    assert response.status_code == 422, response.text
    assert fragment in response.json()["result"]


# -- hostile code ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app with small limits, whose environment holds secrets (auth on)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("LO_API_TOKENS", SECRET_TOKEN)
    patch.setenv("LO_SECRET_KEY", SECRET_KEY)
    try:
        client = app_client(
            tmp_path_factory.mktemp("strict") / "data",
            job_timeout=4,
            job_cpu_seconds=8,  # the wall clock (4 s) stops a one-thread loop first
            job_memory_mb=500,
            api_tokens=SECRET_TOKEN,
        )
        client.headers["Authorization"] = f"Bearer {SECRET_TOKEN}"
        with client:
            warm_pool(client)  # the hostile code meets a pooled interpreter (sandbox/pool.py)
            yield client
    finally:
        patch.undo()


class Prober:
    """GETs the service while a hostile step runs: the slowest answer, and any failure."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.slowest = 0.0
        self.statuses: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, daemon=True)

    def _probe(self) -> None:
        while True:  # at least once: a pooled sandbox ends a quick failure within 0.2 s
            start = time.monotonic()
            response = self.client.get(FUNCTION)
            self.slowest = max(self.slowest, time.monotonic() - start)
            self.statuses.add(response.status_code)
            if self._stop.wait(0.2):
                return

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        assert self.statuses == {200}
        # A liveness bound, not a speed target (those live in bench/): a stalled API takes
        # the client's whole timeout; a loaded 2-core CI machine takes a few seconds.
        assert self.slowest < 20, f"a GET took {self.slowest:.1f} s during the hostile run"


def hostile(client: TestClient, name: str, source: str, **parameters: Any) -> dict[str, Any]:
    with Prober(client):
        return run(client, name, source, **parameters)


def test_infinite_loop_times_out(strict: TestClient) -> None:
    doc = hostile(strict, "spin", "while True:\n    pass\n")
    assert doc["status"] == "failed"
    assert "timed out" in doc["exception"] and "LO_JOB_TIMEOUT=4" in doc["exception"]
    assert doc["durationSeconds"] < 15


def test_cpu_time_is_limited_too(strict: TestClient) -> None:
    """RLIMIT_CPU is LO_JOB_CPU_SECONDS inside the sandbox (threads burning several cores
    use it faster than the wall clock runs; tests/steps/test_runs_and_progress.py checks the
    message). Read from inside, not raced against
    the clock, which a loaded machine makes flaky."""
    source = """
        import resource
        response = list(resource.getrlimit(resource.RLIMIT_CPU))
    """
    doc = run(strict, "cpulimit", source)
    assert doc["status"] == "finished", doc["exception"]
    assert json.loads(download(strict, "cpulimit", "value.json")) == [8, 9]  # SIGXCPU, SIGKILL


def test_huge_allocations_fail_out_of_memory(strict: TestClient) -> None:
    # One 30 GB block: refused at once (MemoryError) or, where it fits, caught by the watch.
    doc = hostile(strict, "huge", "import numpy\nresponse = numpy.ones(30 * 2**30 // 8)\n")
    assert doc["status"] == "failed" and "out of memory" in doc["exception"], doc["exception"]
    # Growing step by step up to 30 GB: the resident-memory watch kills it near 500 MB.
    source = """
        import time
        chunks = []
        for _ in range(600):
            chunks.append(b"x" * (50 << 20))
            time.sleep(0.01)
        response = len(chunks)
    """
    doc = hostile(strict, "grow", source)
    assert doc["status"] == "failed"
    assert "out of memory" in doc["exception"] and "LO_JOB_MEMORY_MB=500" in doc["exception"]


def test_secrets_are_not_in_the_environment(strict: TestClient) -> None:
    source = """
        import os
        found = dict(os.environ)
        try:  # the worker's own environment, through /proc
            found["parent"] = open(f"/proc/{os.getppid()}/environ").read()
        except OSError as exc:
            found["parent"] = type(exc).__name__
        print(found)
        response = found
    """
    doc = hostile(strict, "snoop", source)
    assert doc["status"] == "finished", doc["exception"]
    assert doc["sandbox"]["pooled"] is True  # its parent is the pooled interpreter
    seen = download(strict, "snoop", "value.json").decode()
    log = latest_run(strict, "snoop")["functionMessage"]
    for text in (seen, log):
        assert SECRET_TOKEN not in text and SECRET_KEY not in text and "LO_" not in text
    assert '"parent": "PermissionError"' in seen


def test_killing_the_worker_is_refused(strict: TestClient) -> None:
    doc = hostile(strict, "killer", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n")
    assert doc["status"] == "failed"
    assert doc["exception"] == "PermissionError: [Errno 1] Operation not permitted (line 2)"
    assert strict.get("/health").status_code == 200


PROBE_FILES = """
    results = {}
    for label, path in targets.items():
        for mode in ("rb", "r+b"):
            try:
                with open(path, mode) as f:
                    f.write(b"owned") if "+" in mode else f.read(1)
                results[f"{label} {mode}"] = "ok"
            except OSError as exc:
                results[f"{label} {mode}"] = type(exc).__name__
    for label, path in outside.items():
        try:
            with open(path, "w") as f:
                f.write("escaped")
            results[label] = "ok"
        except OSError as exc:
            results[label] = type(exc).__name__
    response = results
"""


def test_other_outputs_the_store_and_the_key_are_out_of_reach(client: TestClient) -> None:
    assert run(client, "victim", "response = {'secret': 42}")["status"] == "finished"
    data: Path = client.app.state.settings.data_dir.resolve()  # type: ignore[attr-defined]
    (run_dir,) = (data / "artifacts" / "victim").iterdir()
    targets = {
        "artifact": run_dir / "value.json",
        "manifest": run_dir / "manifest.json",
        "store": data / "store.sqlite3",
        "key": data / ".secret-key",
    }
    before = {label: sha256(path) for label, path in targets.items()}
    escape = Path("/tmp") / f"lo-escape-{os.getpid()}"
    outside = {"tmp": str(escape), "parent": "../escaped", "data": str(data / "planted")}
    try:
        doc = hostile(
            client,
            "intruder",
            PROBE_FILES,
            targets={k: str(v) for k, v in targets.items()},
            outside=outside,
        )
        assert doc["status"] == "finished", doc["exception"]
        results = json.loads(download(client, "intruder", "value.json"))
        escaped_tmp = escape.exists()
    finally:
        escape.unlink(missing_ok=True)
    for label in targets:
        for mode in ("rb", "r+b"):
            assert results[f"{label} {mode}"] in ("PermissionError", "FileNotFoundError")
    assert results["parent"] == "PermissionError" and results["data"] != "ok"
    assert not (data / "planted").exists() and not (data / "scratch" / "escaped").exists()
    # The code's /tmp is a private tmpfs (docs/security.md): nothing reaches the host's /tmp.
    # Here the data directory lies under /tmp, so the scratch folder is mounted back there
    # and Landlock keeps /tmp read-only. Never skipped: no private /tmp fails the test.
    assert doc["sandbox"]["privateTmp"] is True, doc["sandbox"]
    assert results["tmp"] == "PermissionError" and not escaped_tmp
    assert {label: sha256(path) for label, path in targets.items()} == before
    key = targets["key"].read_text().strip().encode()
    ArtifactVolume(data, key).verify("victim", run_dir.name)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_escaped_processes_are_killed(strict: TestClient) -> None:
    source = """
        import os, time
        pid = os.fork()
        if pid == 0:  # leaves the process group and outlives the code
            os.setsid()
            time.sleep(600)
            os._exit(0)
        response = pid
    """
    doc = hostile(strict, "escape", source)
    assert doc["status"] == "finished", doc["exception"]
    assert doc["sandbox"]["pooled"] is True  # killed by the pooled interpreter, its subreaper
    pid = int(download(strict, "escape", "value.json"))
    deadline = time.monotonic() + 5
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_dev_shm_is_private_to_each_run_and_bounded(strict: TestClient) -> None:
    """Each run has its own /dev/shm: a tmpfs of LO_JOB_MEMORY_MB (500 here), gone after
    the run; another run (and the host) never sees what it left there."""
    marker = f"lo-shm-{os.getpid()}"
    source = f"""
        import errno
        with open("/dev/shm/{marker}", "w") as f:
            f.write("secret of the first run")
        written = 0
        try:
            with open("/dev/shm/fill", "wb") as f:
                while written < 800:
                    f.write(b"x" * (1 << 20))
                    written += 1
                    f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        response = written
    """
    doc = run(strict, "shmfill", source)
    assert doc["status"] == "finished", doc["exception"]
    assert doc["sandbox"]["privateTmp"] is True, doc["sandbox"]
    assert 400 <= json.loads(download(strict, "shmfill", "value.json")) <= 500
    assert not Path("/dev/shm", marker).exists()
    doc = run(strict, "shmread", "import os\nresponse = sorted(os.listdir('/dev/shm'))\n")
    assert doc["status"] == "finished", doc["exception"]
    assert json.loads(download(strict, "shmread", "value.json")) == []


# -- pooled sandbox interpreters (sandbox/pool.py) --------------------------------------------
def warm_pool(client: TestClient) -> None:
    """Run trivial steps until one runs in a pooled interpreter: the family's zygote starts
    with the first step of the server (and imports numpy and pandas meanwhile)."""
    for _ in range(60):
        if run(client, f"warm{time.monotonic_ns()}", "response = 1")["sandbox"]["pooled"]:
            return
    pytest.fail("no step ran in a pooled sandbox interpreter")


def test_each_run_gets_an_interpreter_of_its_own(client: TestClient) -> None:
    """One use per pooled interpreter: what a run imports, defines or sets is not there for
    the next run, which runs in other processes."""
    warm_pool(client)
    taint = """
        import builtins, os
        with open("tainted_module.py", "w") as handle:
            handle.write("VALUE = 1\\n")
        import tainted_module  # from the working directory, as in a fresh interpreter
        builtins.tainted = tainted_module.VALUE
        os.environ["TAINTED"] = "1"
        response = [os.getpid(), os.getppid()]
    """
    first = run(client, "taint", taint)
    assert first["status"] == "finished", first["exception"]
    probe = """
        import builtins, os, sys
        response = {
            "pids": [os.getpid(), os.getppid()],
            "modules": sorted(m for m in sys.modules if "taint" in m),
            "builtin": hasattr(builtins, "tainted"),
            "env": sorted(k for k in os.environ if k.startswith(("LO_", "TAINTED"))),
        }
    """
    second = run(client, "clean", probe)
    assert second["status"] == "finished", second["exception"]
    assert first["sandbox"]["pooled"] and second["sandbox"]["pooled"]
    before = json.loads(download(client, "taint", "value.json"))
    after = json.loads(download(client, "clean", "value.json"))
    assert set(before).isdisjoint(after.pop("pids")), "a process ran two jobs"
    assert after == {"modules": [], "builtin": False, "env": []}


def test_cancelling_a_pooled_run_leaves_no_process(client: TestClient) -> None:
    warm_pool(client)
    source = """
        import os, time
        print("pids", os.getpid(), os.getppid(), flush=True)
        time.sleep(300)
        response = 1
    """
    body = {"name": "sleeper", "function": code(source), "functionParameters": {}}
    assert client.post(FUNCTION, json=body).status_code == 201
    log: Path = client.app.state.steps.volume.log_path("sleeper")  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    text = ""
    while "pids" not in text and time.monotonic() < deadline:
        time.sleep(0.1)
        text = log.read_text() if log.exists() else ""
    pid, pooled = (int(n) for n in text.split("pids", 1)[1].split()[:2])
    # The run's parent is a pooled interpreter (a fork of its family's zygote), not a worker.
    assert "--zygote" in psutil.Process(pooled).cmdline()
    assert client.post(f"{FUNCTION}/sleeper/cancel").status_code == 200
    doc = wait(client, "sleeper")
    assert doc["status"] == "cancelled", doc
    deadline = time.monotonic() + 10
    while any(map(alive, (pid, pooled))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid) and not alive(pooled)
    # The pool carries on with fresh interpreters.
    assert run(client, "after", "response = 2")["sandbox"]["pooled"]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
