"""A Spark standalone cluster on 127.0.0.1 for tests: a master and one worker, the JVMs of the
pyspark wheel (`bin/spark-class`, SPARK_HOME = the installed pyspark package).

`standalone_cluster` starts them, waits until the worker has registered, and on exit kills
both process groups (the master, the worker and every executor and Python worker it started):
no JVM outlives it. Ports are free ones, the web UIs listen on random ports (0), and the
worker offers `cores` cores and `memory_mb` MB to applications. Fixture `spark_cluster` is one
cluster for the test module that asks for it (import it into the module).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

#: Heap of the master's and the worker's own JVMs (they only schedule).
DAEMON_MEMORY = "256m"
#: Seconds to wait for the worker to register with the master.
START_TIMEOUT = 60
REGISTERED = "Successfully registered with master"


def spark_home() -> Path:
    """The pyspark package's folder: its `bin/spark-class` and `jars/` are a Spark install."""
    import pyspark

    return Path(pyspark.__file__).parent


@dataclass
class SparkCluster:
    """A running master (`url`) and worker; their logs are in `folder`."""

    url: str
    folder: Path
    processes: list[subprocess.Popen[bytes]]

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name} ---\n{log.read_text(errors='replace')[-3000:]}"
            for log in sorted(self.folder.glob("*.log"))
        )


def _daemon(folder: Path, name: str, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """`spark-class` running `args` in a process group of its own, its output in NAME.log."""
    with (folder / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End `process` and everything in its group (executors, Python workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(15)
    # an executor may outlive the worker's TERM for a moment: the whole group goes
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(15)


@contextlib.contextmanager
def standalone_cluster(
    folder: Path, cores: int = 2, memory_mb: int = 1024
) -> Iterator[SparkCluster]:
    """A master and a worker on 127.0.0.1, stopped on exit (see the module)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        "SPARK_LOG_DIR": str(folder),
        "SPARK_WORKER_DIR": str(folder / "work"),
        "SPARK_CONF_DIR": str(folder / "conf"),  # none: defaults, whatever the wheel holds
    }
    master = _daemon(
        folder,
        "master",
        env,
        "org.apache.spark.deploy.master.Master",
        *("--host", "127.0.0.1", "--port", str(port), "--webui-port", "0"),
    )
    cluster = SparkCluster(url, folder, [master])
    try:
        cluster.processes.append(
            _daemon(
                folder,
                "worker",
                env,
                "org.apache.spark.deploy.worker.Worker",
                url,
                *("--host", "127.0.0.1", "--port", "0", "--webui-port", "0"),
                *("--cores", str(cores), "--memory", f"{memory_mb}m"),
                *("--work-dir", str(folder / "work")),
            )
        )
        deadline = time.monotonic() + START_TIMEOUT
        worker_log = folder / "worker.log"
        while REGISTERED not in worker_log.read_text(errors="replace"):
            for process in cluster.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a Spark daemon exited:\n{cluster.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Spark worker did not register:\n{cluster.logs()}")
            time.sleep(0.1)
        yield cluster
    finally:
        for process in reversed(cluster.processes):
            _stop(process)


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    """A standalone master and worker (2 cores, 1 GB for executors) for the test module."""
    with standalone_cluster(tmp_path_factory.mktemp("spark-cluster")) as cluster:
        yield cluster
