"""Starting Spark for one run: a JVM of the run's own, never shared (DESIGN.md, "Spark").

Every run that uses Spark — a builder/sparkml job in its sandboxed child, a projection of a
large table in its worker — launches its own driver JVM through PySpark, in `local[*]` mode
or as the driver of the standalone master LO_SPARK_MASTER, and stops it when the run ends
(the JVM is a child of the run's process: a cancel or a crash kills it with the run). No Py4J
gateway outlives a run or is reachable from another one.

Nothing is downloaded: no `spark.jars.packages`, and Ivy's cache is inside the run's scratch
folder, which is also the JVM's temporary folder and Spark's local directory (the sandbox
blocks the shared /tmp). The Spark UI is off: nothing listens but the driver's own ports.

`SparkOptions` travels pickled (into the sandboxed child, which has no settings of its own);
`start` is called where Spark runs. Importing this module imports nothing of Spark's.

A run may name a class archive (`SparkOptions.class_archive`, the JDK's Class Data Sharing):
the first run that names it dumps the classes its driver loaded there when its JVM exits, and
the next ones map them instead of loading Spark's jars class by class, which halves a driver's
start (measured on 2 cores: start and a first small job in 3.5 s instead of 8.5, with 4.5 s of
CPU instead of 9; the run that dumps the archive, about 110 MB, takes some 10 s more). The
archive must be private to the server's user (the JVM runs what it maps): never on the data
volume, which executors share.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from ..core.settings import Settings

#: How long a stopped driver's JVM may take to exit before it is killed (a JVM that dumps its
#: class archive takes some seconds: see the module).
JVM_EXIT_SECONDS = 120

#: Age after which a class archive being dumped is taken for the leftover of a killed run.
STALE_DUMP_SECONDS = 3600

#: Where a local-mode driver binds when the server's environment says nothing (embedded mode).
LOCAL_IP = "127.0.0.1"


@dataclass(frozen=True)
class SparkOptions:
    """How a run starts Spark (from the server's settings, LO_SPARK_*)."""

    master: str = ""  # spark://host:port, or "" for local mode
    driver_memory_mb: int = 1024
    executor_memory_mb: int = 1024
    local_ip: str = LOCAL_IP  # SPARK_LOCAL_IP of the driver
    class_archive: str = ""  # the driver's class archive ("": none), see the module

    @classmethod
    def from_settings(cls, settings: Settings) -> SparkOptions:
        return cls(
            master=settings.spark_master,
            driver_memory_mb=settings.spark_driver_memory_mb,
            executor_memory_mb=settings.spark_executor_memory_mb,
            local_ip=os.environ.get("SPARK_LOCAL_IP", LOCAL_IP),
        )

    @property
    def url(self) -> str:
        """The master URL the driver uses: LO_SPARK_MASTER, or every local core."""
        return self.master or "local[*]"

    def environment(self) -> dict[str, str]:
        """Variables the process that starts the driver needs (the sandbox passes none of the
        server's own)."""
        env = {
            "SPARK_LOCAL_IP": self.local_ip,
            "PYARROW_IGNORE_TIMEZONE": "1",
            # the interpreter of Python code on executors (mapInArrow, UDFs): this one, whose
            # path a standalone master's workers have too when they run the server's image
            "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON") or sys.executable,
        }
        if java_home := os.environ.get("JAVA_HOME"):
            env["JAVA_HOME"] = java_home
        return env

    def conf(self, scratch: Path) -> dict[str, str]:
        """The Spark configuration of a run whose private folder is `scratch`."""
        tmp = scratch / "spark-tmp"
        java = f"-Djava.io.tmpdir={tmp} -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
        if self.class_archive:
            java += _archive_options(Path(self.class_archive))
        conf = {
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.jars.ivy": str(tmp / "ivy"),
            "spark.driver.extraJavaOptions": java,
            "spark.driver.memory": f"{self.driver_memory_mb}m",
            "spark.driver.host": self.local_ip,
            "spark.driver.bindAddress": self.local_ip,
            "spark.executor.memory": f"{self.executor_memory_mb}m",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            # small data on few cores: 200 shuffle partitions would be 200 tiny tasks
            "spark.sql.shuffle.partitions": str(max(2, 2 * (os.cpu_count() or 1))),
            "spark.sql.parquet.compression.codec": "snappy",
            # timestamps as pyarrow and pandas write them (Spark's default is INT96)
            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
            "spark.hadoop.parquet.summary.metadata.level": "NONE",
        }
        return conf


def user_class_archive() -> str:
    """The driver's class archive in the server user's own cache folder (XDG_CACHE_HOME, else
    ~/.cache, then learning-orchestra/), or "": when there is no such folder that only this user
    can write, when a folder on Spark's class path holds files (the JDK archives classes from
    jars only: a spark-defaults.conf in SPARK_CONF_DIR rules it out), or when dumping it failed
    once (a file ARCHIVE.failed says so; remove it to try again)."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder /= "learning-orchestra"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        status = folder.stat()
    except (OSError, RuntimeError):  # RuntimeError: no home folder
        return ""
    if status.st_uid != os.getuid() or status.st_mode & 0o022:
        return ""
    if any(path.is_dir() and any(path.iterdir()) for path in _class_path_folders()):
        return ""
    archive = class_archive(folder)
    return "" if _failed(archive).exists() else str(archive)


def _class_path_folders() -> list[Path]:
    """The folders spark-class puts on the driver's class path before Spark's jars: Spark's
    configuration, and Hadoop's and YARN's when set."""
    import pyspark

    home = os.environ.get("SPARK_HOME") or str(Path(pyspark.__file__).parent)
    named = [os.environ.get("SPARK_CONF_DIR") or f"{home}/conf"]
    named += [os.environ.get(name, "") for name in ("HADOOP_CONF_DIR", "YARN_CONF_DIR")]
    return [Path(folder) for folder in named if folder]


def _failed(archive: Path) -> Path:
    return archive.with_name(f"{archive.name}.failed")


def class_archive(folder: Path) -> Path:
    """The driver's class archive in `folder` for this Spark and this JDK (an archive from
    another would be refused by the JVM, which then starts without it)."""
    import importlib.metadata

    home = os.environ.get("JAVA_HOME")
    java = (home and shutil.which("java", path=os.path.join(home, "bin"))) or shutil.which("java")
    version = importlib.metadata.version("pyspark")
    key = hashlib.sha256(f"{os.path.realpath(java or 'java')} {version}".encode()).hexdigest()[:16]
    return folder / f"spark-driver-{key}.jsa"


def _dumping(archive: Path) -> Path:
    """Where a driver dumps its classes before the archive is published: created by the one
    run that dumps them (the others start without an archive meanwhile)."""
    return archive.with_name(f"{archive.name}.dumping")


def _archive_options(archive: Path) -> str:
    """The driver's Java options for `archive`: map it, else dump it if no other run is, else
    none."""
    if archive.is_file():
        return f" -XX:SharedArchiveFile={archive} -Xlog:cds=off"
    dumping = _dumping(archive)
    with contextlib.suppress(OSError):  # a run killed while dumping left this
        if time.time() - dumping.stat().st_mtime > STALE_DUMP_SECONDS:
            dumping.unlink()
    try:
        os.close(os.open(dumping, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError:  # another run dumps the classes (or the folder is gone)
        return ""
    return f" -XX:ArchiveClassesAtExit={dumping} -Xlog:cds=off"


def start(options: SparkOptions, scratch: Path, app: str) -> SparkSession:
    """A new Spark session (and driver JVM) for one run whose private folder is `scratch`."""
    for folder in (scratch / "spark-local", scratch / "spark-tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    os.environ.update(options.environment())
    # Spark's local directory: as a variable, which spark.local.dir would warn it overrides
    os.environ["SPARK_LOCAL_DIRS"] = str(scratch / "spark-local")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(options.url).appName(app)
    for key, value in options.conf(scratch).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    # Spark's local file system writes a .crc beside every file: not part of a table.
    hadoop = session.sparkContext._jsc.hadoopConfiguration()
    session.sparkContext._jvm.org.apache.hadoop.fs.FileSystem.getLocal(  # type: ignore[union-attr]
        hadoop
    ).setWriteChecksum(False)
    return session


def stop(session: SparkSession) -> None:
    """Stop `session` and end its driver JVM now, not when the run's process exits (a job
    that ran Spark still commits its output, with the JVM's memory given back)."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    archive = session.sparkContext.getConf().get("spark.driver.extraJavaOptions", "") or ""
    session.stop()
    if gateway is None:
        return
    process = getattr(gateway, "proc", None)  # set by pyspark's launch_gateway
    gateway.shutdown()
    SparkContext._gateway = None
    SparkContext._jvm = None
    if process is not None:
        process.stdin.close()  # the JVM's gateway server exits when its stdin closes
        try:
            process.wait(JVM_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    _publish(archive, process is not None and process.returncode == 0)


def _publish(java_options: str, exited: bool) -> None:
    """Publish the class archive a driver with `java_options` dumped, if it did and `exited`
    normally; otherwise drop what it dumped and mark the archive failed (no run tries again)."""
    for option in java_options.split():
        if option.startswith("-XX:ArchiveClassesAtExit="):
            dumped = Path(option.partition("=")[2])
            final = dumped.with_name(dumped.name.removesuffix(".dumping"))
            if exited and dumped.is_file() and dumped.stat().st_size:
                os.replace(dumped, final)  # atomic: a reader maps a whole archive or none
            else:
                with contextlib.suppress(FileNotFoundError):
                    dumped.unlink()
                _failed(final).touch()


__all__ = ["SparkOptions", "class_archive", "start", "stop", "user_class_archive"]
