"""What every benchmark case shares: processes on 127.0.0.1, timing, RSS sampling, the table.

Nothing here knows a case. A case measures its subject and its limit interleaved
(`interleaved`), so that whatever else loads the machine weighs on both alike, and returns
`Row`s; `print_table` renders them as one Markdown table.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

import httpx
import psutil

BASE = "/api/learningOrchestra/v1"
MB = 2**20
ROOT = Path(__file__).resolve().parent.parent


# -- timing ---------------------------------------------------------------------------------
def timed(action: Callable[[], object]) -> float:
    """Seconds `action()` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def timed_ms(action: Callable[[], object]) -> float:
    """Milliseconds `action()` took."""
    return timed(action) * 1000


def interleaved(
    n: int,
    subject: Callable[[int], float],
    limit: Callable[[int], float] | None = None,
    seconds: float | None = None,
) -> tuple[list[float], list[float]]:
    """`n` samples of `subject(i)` and of `limit(i)`, alternating, so load affects both alike;
    fewer if `seconds` pass first."""
    ours: list[float] = []
    theirs: list[float] = []
    deadline = time.monotonic() + seconds if seconds is not None else None
    for i in range(n):
        if deadline is not None and time.monotonic() > deadline:
            break
        ours.append(subject(i))
        if limit is not None:
            theirs.append(limit(i))
    return ours, theirs


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100), nearest rank: with few samples p99 is the maximum."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
    return ordered[int(rank) - 1]


# -- the table ------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the table. `values` in `unit`; `limit` likewise (the reference's samples).

    `check(row)` says whether the goal is met (None: no goal, or nothing to judge)."""

    case: str
    what: str
    unit: str
    values: list[float]
    goal: str = ""
    limit: list[float] = field(default_factory=list)
    check: Callable[[Row], bool | None] | None = None
    p99: bool = False

    @property
    def median(self) -> float:
        return median(self.values)

    @property
    def ratio(self) -> float | None:
        return self.median / median(self.limit) if self.limit and median(self.limit) else None

    @property
    def met(self) -> bool | None:
        return self.check(self) if self.check and self.values else None


def at_most(bound: float, p99_factor: float | None = None) -> Callable[[Row], bool]:
    """Goal: median ≤ bound (and p99 ≤ p99_factor x median)."""

    def check(row: Row) -> bool:
        ok = row.median <= bound
        if p99_factor is not None:
            ok = ok and percentile(row.values, 99) <= p99_factor * row.median
        return ok

    return check


def ratio_at_least(bound: float) -> Callable[[Row], bool | None]:
    """Goal: median ≥ bound x the limit's median (throughputs)."""
    return lambda row: None if row.ratio is None else row.ratio >= bound


def ratio_at_most(bound: float) -> Callable[[Row], bool | None]:
    """Goal: median ≤ bound x the limit's median (sizes)."""
    return lambda row: None if row.ratio is None else row.ratio <= bound


def number(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.1f}" if value < 100 else f"{value:,.0f}"
    if unit in ("MB", "s", "x"):
        return f"{value:.2f}" if value < 10 else f"{value:,.0f}"
    return f"{value:,.0f}"


def print_table(rows: Sequence[Row], out: Callable[[str], object] = print) -> None:
    """One Markdown table: a line per row, min/median/max (p99 where the goal is a p99)."""
    out("| case | what | n | min | median | max | p99 | limit median | ratio | goal | met? |")
    out("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        u = row.unit
        cells = [
            row.case,
            f"{row.what} ({u})",
            str(len(row.values)),
            number(min(row.values), u) if row.values else "—",
            number(row.median, u) if row.values else "—",
            number(max(row.values), u) if row.values else "—",
            number(percentile(row.values, 99), u) if row.p99 and row.values else "",
            number(median(row.limit), u) if row.limit else "",
            f"{row.ratio:.2f}x" if row.ratio is not None else "",
            row.goal,
            {True: "yes", False: "**no**", None: "—"}[row.met],
        ]
        out("| " + " | ".join(cells) + " |")


def header(command: str) -> list[str]:
    """Where and what was measured, above a table: `command`, date, commit, machine, and the
    server's code if it is not this tree's (`PYTHONPATH=/elsewhere/services ./run.sh bench`,
    see docs/development.md)."""

    def output(*command: str) -> str:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
        return result.stdout.strip()

    commit = output("git", "-C", str(ROOT), "describe", "--always", "--dirty") or "?"
    code = output(sys.executable, "-c", "import learning_orchestra as m; print(m.__path__[0])")
    if code and not Path(code).is_relative_to(ROOT):
        commit += f" (the server's code: {code})"
    return [
        f"`{command}`: "
        f"{datetime.datetime.now().isoformat(timespec='minutes')}, commit {commit}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end",
        "",
    ]


def emit(lines: list[str], rows: Sequence[Row], output: Path | None) -> None:
    """The header `lines` and the table of `rows` on stdout, and in `output` if given."""
    print_table(rows, lines.append)
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if output:
        output.write_text(text)


@contextlib.contextmanager
def bounded(seconds: int, name: str) -> Iterator[None]:
    """The block ends within `seconds` (SIGALRM) or on SIGTERM, by SystemExit, so that the
    `finally` blocks inside it (servers, children) still clean up."""

    def give_up(signum: int, frame: object) -> None:
        raise SystemExit(f"{name}: stopped by signal {signum} (SIGALRM: over {seconds} s)")

    signal.signal(signal.SIGALRM, give_up)
    signal.signal(signal.SIGTERM, give_up)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)


# -- processes ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """A server process on a free 127.0.0.1 port; `start()` times it to its first 200."""

    def __init__(self, command: list[str], port: int, log: Path, env: dict[str, str]) -> None:
        self.command = command
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.env = env
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, path: str = "/health", timeout: float = 90) -> float:
        """Start it; seconds from the spawn to the first 200 answer on `path`."""
        with self.log.open("ab") as log:
            started = time.perf_counter()
            self.popen = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        deadline = started + timeout
        with httpx.Client(timeout=5) as client:
            while time.perf_counter() < deadline:
                if self.popen.poll() is not None:
                    raise RuntimeError(f"{self.command[0]} exited: {self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + path).status_code == 200:
                        return time.perf_counter() - started
                time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"no 200 from {self.url}{path} in {timeout} s: {self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def rss_mb(self) -> float:
        """Resident memory of the server process itself (not its children)."""
        return float(psutil.Process(self.pid).memory_info().rss) / MB

    def stop(self) -> None:
        """SIGTERM, then SIGKILL of its whole process group after 20 s: nothing outlives it."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(20)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # workers left behind, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)


@contextlib.contextmanager
def running(process: Process) -> Iterator[Process]:
    """`process`, started, and stopped however the block ends."""
    try:
        process.start()
        yield process
    finally:
        process.stop()


class PeakRss(threading.Thread):
    """Peak RSS (MB) of a process's descendants started while in a `with` (the job's worker,
    not the forkserver or pre-started sandboxes), sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak = 0.0
        self.stopped = threading.Event()
        self.before: set[int] = set()

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            with contextlib.suppress(psutil.Error):
                for child in self.root.children(recursive=True):
                    if child.pid not in self.before:
                        with contextlib.suppress(psutil.Error):
                            self.peak = max(self.peak, child.memory_info().rss / MB)

    def __enter__(self) -> PeakRss:
        self.before = {child.pid for child in self.root.children(recursive=True)}
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.join(5)
