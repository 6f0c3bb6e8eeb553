"""`./run.sh bench [--quick] [--output FILE]`: LO's speed against its limits, one Markdown table.

It starts a real embedded server (`learning-orchestra serve` on a free 127.0.0.1 port, fresh
data dir in a temp folder) and runs each case of issue 6 interleaved with its limit — the
reference it is compared with, measured in the same run on the same machine:

- start and idle: seconds to the first 200 of `/health`, API RSS after start and after
  serving pages (limit: a bare FastAPI app under uvicorn, `bench/bare.py`);
- per-step overhead: POST → observed finished of a 10-row `transform/projection` (limit:
  pandas doing it in-process), of `function/python` `response = 1` (limit: starting a fresh
  interpreter that runs it), and per step of a chain of trivial projections;
- CSV ingest: upload → finished of a synthetic Nx10 CSV in rows/s (limit: pyarrow's
  `read_csv` + `write_table` of the same file), Parquet size, worker peak RSS;
- reading pages: `GET ...?skip=S&limit=100` of the ingested table in req/s (limit: the bare
  app reading the same Parquet files with the footer's row counts and `json.dumps`);
- stall: GET metadata while long jobs and query scans run (limit: the same GET, idle).

`--quick` (CI) uses tiny sizes and a few iterations; its figures are printed, never asserted.
Errors (a step that fails, a server that does not start) fail the run. Everything is bounded:
every request has a timeout, the whole run an alarm, and the servers are killed on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench.harness import (
    BASE,
    MB,
    ROOT,
    PeakRss,
    Process,
    Row,
    at_most,
    bounded,
    emit,
    free_port,
    header,
    interleaved,
    percentile,
    ratio_at_least,
    ratio_at_most,
    running,
    timed,
    timed_ms,
)


@dataclass(frozen=True)
class Sizes:
    """How much each case does: `QUICK` for CI, `FULL` for the table in docs/benchmarks.md."""

    starts: int  # fresh server starts (and as many bare ones)
    projections: int  # single-step samples
    functions: int
    chains: int  # chains of `chain_length` projections
    chain_length: int
    ingest_rows: tuple[int, ...]  # the first size is also the table pages and scans read
    ingests: int  # uploads per size
    pages: int  # requests per skip
    long_jobs: int
    scans: int
    stall_gets: int
    alarm: int  # seconds the whole run may take


QUICK = Sizes(
    starts=2, projections=5, functions=3, chains=1, chain_length=5, ingest_rows=(100_000,),
    ingests=1, pages=20, long_jobs=4, scans=3, stall_gets=30, alarm=300,
)  # fmt: skip
FULL = Sizes(
    starts=5, projections=100, functions=30, chains=5, chain_length=10,
    ingest_rows=(1_000_000, 5_000_000), ingests=3, pages=200, long_jobs=8, scans=10,
    stall_gets=200, alarm=3600,
)  # fmt: skip


def log(message: str) -> None:
    """Progress goes to stderr; stdout is the table alone."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- LO through HTTP ------------------------------------------------------------------------
class Lo:
    """A client of the server under test that fails loudly: a bench measures what works."""

    def __init__(self, server: Process, data_dir: Path) -> None:
        self.server = server
        self.data_dir = data_dir
        self.http = httpx.Client(base_url=server.url + BASE, timeout=120)

    def post(self, route: str, body: dict[str, Any]) -> None:
        response = self.http.post(f"/{route}", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"POST {route}: {response.status_code} {response.text[:500]}")

    def wait(self, name: str, timeout: float = 600) -> dict[str, Any]:
        """Observe `name` until it ends; its metadata. Raises unless it finished."""
        response = self.http.get(
            f"/observe/{name}", params={"timeout": timeout}, timeout=timeout + 30
        )
        if response.status_code != 200:
            raise RuntimeError(f"observe {name}: {response.status_code} {response.text[:500]}")
        meta: dict[str, Any] = response.json()["result"]
        if meta["status"] != "finished":
            raise RuntimeError(f"step {name} {meta['status']}: {meta.get('exception')}")
        return meta

    def run(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        self.post(route, body)
        return self.wait(body.get("name") or body["outputDatasetName"])

    def upload(self, name: str, csv: Path) -> dict[str, Any]:
        with csv.open("rb") as handle:
            files = {"file": (csv.name, handle, "text/csv")}
            response = self.http.post(
                "/dataset/csv", data={"datasetName": name}, files=files, timeout=600
            )
        if response.status_code != 201:
            raise RuntimeError(f"upload {name}: {response.status_code} {response.text[:500]}")
        return self.wait(name)

    def status(self, route: str, name: str) -> str:
        # explore/{toolkit} answer their PNG at /{name}, their metadata at /{name}/metadata.
        image = route in ("explore/scikitlearn", "explore/tensorflow")
        url = f"/{route}/{name}/metadata" if image else f"/{route}/{name}"
        try:
            response = self.http.get(url, params={"limit": 1}, timeout=10)
        except httpx.TimeoutException:
            return "?"
        return str(response.json()["result"][0]["status"]) if response.is_success else "?"


def lo_server(folder: Path, name: str) -> Process:
    """The embedded server on a fresh data dir, jobs run with room for the stall case."""
    port = free_port()
    script = Path(sys.executable).with_name("learning-orchestra")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "learning_orchestra.cli"]
    command += ["serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--data-dir", str(folder / name), "--log-level", "warning"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LO_")}
    env["LO_MAX_JOBS"] = "16"  # the stall case runs 8 long jobs across 3 step families
    return Process(command, port, folder / f"{name}.log", env)


def bare_app(folder: Path, name: str, table: Path | None = None) -> Process:
    """The bare FastAPI app of bench/bare.py under uvicorn (the limit of the API cases)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.bare:app", "--port", str(port)]
    command += ["--host", "127.0.0.1", "--log-level", "warning"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_TABLE": str(table or "")}
    return Process(command, port, folder / f"{name}.log", env)


def table_files(data_dir: Path, name: str) -> Path:
    """The folder holding the Parquet file(s) of `name`'s current output."""
    runs = [p for p in (data_dir / "artifacts" / name).iterdir() if p.is_dir()]
    return max(runs, key=lambda p: p.stat().st_mtime)


def parquet_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.parquet"))


# -- data ----------------------------------------------------------------------------------
CITIES = pa.array(["Southampton", "Cherbourg", "Queenstown", "Belfast", "New York"])


def make_csv(path: Path, rows: int) -> Path:
    """A synthetic CSV of `rows` x 10 columns: integers, floats (some missing), strings,
    booleans — written in 1M-row chunks so memory stays flat whatever `rows` is."""
    rng = np.random.default_rng(rows)
    writer: pacsv.CSVWriter | None = None
    for start in range(0, rows, 1_000_000):
        n = min(1_000_000, rows - start)
        ids = pa.array(np.arange(start, start + n))
        table = pa.table(
            {
                "id": ids,
                "age": pa.array(rng.uniform(1, 80, n).round(1), mask=rng.random(n) < 0.1),
                "fare": rng.uniform(0, 500, n).round(4),
                "pclass": rng.integers(1, 4, n),
                "score": rng.normal(size=n).round(6),
                "count": rng.integers(0, 1_000_000, n),
                "name": pc.binary_join_element_wise("passenger ", pc.cast(ids, pa.string()), ""),
                "city": CITIES.take(pa.array(rng.integers(0, len(CITIES), n))),
                "flag": rng.random(n) < 0.5,
                "ratio": pa.array(rng.random(n).round(3), mask=rng.random(n) < 0.1),
            }
        )
        writer = writer or pacsv.CSVWriter(str(path), table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    return path


def make_tiny(folder: Path) -> tuple[Path, Path]:
    """A 10-row CSV and the same table as Parquet (the pandas limit reads that)."""
    csv = folder / "tiny.csv"
    csv.write_text("a,b,c\n" + "".join(f"{i},{i * 0.5},x{i}\n" for i in range(10)))
    parquet = folder / "tiny.parquet"
    pq.write_table(pacsv.read_csv(csv), parquet)
    return csv, parquet


# -- cases ---------------------------------------------------------------------------------
def start_and_idle(folder: Path, sizes: Sizes) -> list[Row]:
    """Fresh starts of LO and of the bare app, alternating: time to first 200, RSS after."""
    rss: dict[str, list[float]] = {"lo": [], "bare": []}

    def start(kind: str, i: int) -> float:
        process = lo_server(folder, f"start{i}") if kind == "lo" else bare_app(folder, "bare")
        try:
            seconds = process.start()
            time.sleep(0.5)  # "right after start": once start-up work settled
            rss[kind].append(process.rss_mb())
            return seconds * 1000
        finally:
            process.stop()

    ours, bare = interleaved(sizes.starts, lambda i: start("lo", i), lambda i: start("bare", i))
    case = "start and idle"
    return [
        Row(case, "first 200 of /health", "ms", ours, "≤ 1,000 ms", bare, at_most(1000)),
        Row(case, "API RSS 0.5 s after start", "MB", rss["lo"], "≤ 80 MB", rss["bare"],
            at_most(80)),
    ]  # fmt: skip


def warm_up_pool(lo: Lo, body: dict[str, Any]) -> None:
    """Run sandboxed steps until one is served by a pre-started interpreter: the pool of a
    sandbox family starts with its first step (docs/architecture.md), and the figures
    measure the steady state, not the server's first steps."""
    for i in range(40):
        meta = lo.run("function/python", {"name": f"warm{i}", **body})
        if (meta.get("sandbox") or {}).get("pooled"):
            return
        time.sleep(0.25)
    raise RuntimeError("no function/python step was served by the sandbox pool")


def step_overhead(lo: Lo, folder: Path, sizes: Sizes) -> list[Row]:
    """POST → observed finished of trivial steps, vs the same work done in-process."""
    csv, parquet = make_tiny(folder)
    lo.upload("tiny", csv)
    names = ["a", "b"]

    def pandas_projection(i: int) -> None:
        pd.read_parquet(parquet)[names].to_parquet(folder / f"pandas{i % 2}.parquet")

    def projection(name: str, source: str) -> dict[str, Any]:
        return {"inputDatasetName": source, "outputDatasetName": name, "names": names}

    def chain(i: int) -> float:
        def submit_and_wait() -> None:
            for k in range(sizes.chain_length):
                source = f"chain{i}_{k - 1}" if k else "tiny"
                lo.post("transform/projection", projection(f"chain{i}_{k}", source))
            lo.wait(f"chain{i}_{sizes.chain_length - 1}")

        return timed_ms(submit_and_wait) / sizes.chain_length

    def pandas_chain(i: int) -> float:
        def run() -> None:
            for _ in range(sizes.chain_length):
                pandas_projection(i)

        return timed_ms(run) / sizes.chain_length

    fresh = [sys.executable, "-I", "-c", "response = 1"]
    function = {"function": "response = 1", "functionParameters": {}}
    proj, proj_limit = interleaved(
        sizes.projections,
        lambda i: timed_ms(lambda: lo.run("transform/projection", projection(f"p{i}", "tiny"))),
        lambda i: timed_ms(lambda: pandas_projection(i)),
    )
    log(f"projection p50 {np.median(proj):.0f} ms")
    warm_up_pool(lo, function)
    func, func_limit = interleaved(
        sizes.functions,
        lambda i: timed_ms(lambda: lo.run("function/python", {"name": f"f{i}", **function})),
        lambda i: timed_ms(lambda: subprocess.run(fresh, check=True, timeout=60)),
    )
    log(f"function p50 {np.median(func):.0f} ms")
    chained, chained_limit = interleaved(sizes.chains, chain, pandas_chain)
    case = "per-step overhead"
    p99 = "p50 ≤ {} ms, p99 ≤ 3x p50"
    return [
        Row(case, "transform/projection, 10 rows, POST → finished", "ms", proj,
            p99.format(30), proj_limit, at_most(30, 3), p99=True),
        Row(case, "function/python `response = 1`, POST → finished", "ms", func,
            p99.format(100), func_limit, at_most(100, 3), p99=True),
        Row(case, f"chain of {sizes.chain_length} projections, per step", "ms", chained,
            "≤ 30 ms per step", chained_limit, at_most(30)),
    ]  # fmt: skip


def ingest(lo: Lo, folder: Path, sizes: Sizes) -> list[Row]:
    """Upload → finished of Nx10 CSVs, vs pyarrow reading the file and writing Parquet."""
    out: list[Row] = []
    first_peaks: list[float] = []
    for rows in sizes.ingest_rows:
        csv = make_csv(folder / f"rows{rows}.csv", rows)
        try:
            out += ingest_one(lo, folder, csv, rows, sizes.ingests, first_peaks)
        finally:
            csv.unlink()
        first_peaks = first_peaks or out[-1].values
    return out


def ingest_one(
    lo: Lo, folder: Path, csv: Path, rows: int, n: int, first_peaks: list[float]
) -> list[Row]:
    """The rows of one file size; `first_peaks`: the worker peaks at the first size, if any."""
    label = f"{rows / 1e6:g}M rows x 10"
    peaks: list[float] = []
    size: dict[str, float] = {}

    def upload(i: int) -> float:
        name = f"ingest{rows}" if i == 0 else f"ingest{rows}_{i}"
        with PeakRss(lo.server.pid) as rss:
            seconds = timed(lambda: lo.upload(name, csv))
        peaks.append(rss.peak)
        size["lo"] = parquet_bytes(table_files(lo.data_dir, name)) / MB
        return rows / seconds

    def pyarrow_ingest(i: int) -> float:
        parquet = folder / "pyarrow.parquet"
        seconds = timed(lambda: pq.write_table(pacsv.read_csv(csv), parquet))
        size["limit"] = parquet.stat().st_size / MB
        parquet.unlink()
        return rows / seconds

    speed, limit = interleaved(n, upload, pyarrow_ingest)
    log(f"ingest {label}: {np.median(speed):,.0f} rows/s vs {np.median(limit):,.0f}")
    # Flat: at a larger size the peak stays within 20% (+50 MB of noise) of the first size's.
    flat = at_most(1.2 * float(np.median(first_peaks)) + 50) if first_peaks else None
    case = "CSV ingest"
    return [
        Row(case, f"{label}, upload → finished", "rows/s", speed, "≥ 0.7x limit", limit,
            ratio_at_least(0.7)),
        Row(case, f"{label}, Parquet size", "MB", [size["lo"]], "≤ 1.1x limit",
            [size["limit"]], ratio_at_most(1.1)),
        Row(case, f"{label}, worker peak RSS", "MB", peaks, "flat in file size", [], flat),
    ]  # fmt: skip


def pages(lo: Lo, folder: Path, sizes: Sizes) -> list[Row]:
    """GET pages of the first ingested table, vs the bare app reading the same Parquet."""
    rows = sizes.ingest_rows[0]
    name = f"ingest{rows}"
    bare = bare_app(folder, "bare-pages", table_files(lo.data_dir, name))
    ours = f"{lo.server.url}{BASE}/dataset/csv/{name}"
    with running(bare), httpx.Client(timeout=60) as http:
        out = [
            page_row(http, ours, f"{bare.url}/page", skip, rows, sizes.pages)
            for skip in (1, rows - rows // 10 + 1)
        ]
        bare_rss = bare.rss_mb()
    rss = Row("start and idle", "API RSS after serving pages", "MB", [lo.server.rss_mb()],
              "≤ 120 MB", [bare_rss], at_most(120))  # fmt: skip
    return [*out, rss]


def page_row(http: httpx.Client, ours: str, bare: str, skip: int, rows: int, n: int) -> Row:
    """req/s of `GET ours?skip=skip&limit=100` vs the bare app's same page."""

    def get(url: str) -> list[Any]:
        response = http.get(url, params={"skip": skip, "limit": 100})
        response.raise_for_status()
        result: list[Any] = response.json()["result"]
        return result

    if get(ours) != get(bare):
        log(f"pages: LO and the bare app answer different rows at skip={skip}")
    speed, limit = interleaved(
        n, lambda i: 1 / timed(lambda: get(ours)), lambda i: 1 / timed(lambda: get(bare))
    )
    log(f"pages skip={skip}: {np.median(speed):.0f} req/s vs {np.median(limit):.0f}")
    what = f"GET ?skip={skip:,}&limit=100 of {rows / 1e6:g}M rows"
    return Row("reading pages", what, "req/s", speed, "≥ 0.8x limit", limit, ratio_at_least(0.8))


LONG_FUNCTION = "import time\ntime.sleep(600)\nresponse = 1\n"
LONG_PARAMETER = "#__import__('time').sleep(600) or [[1.0]]"


def long_job(lo: Lo, i: int) -> tuple[str, str]:
    """Start the i-th long job, cycling through step families; its (route, name)."""
    name = f"long{i}"
    if i % 3 == 0:
        route, body = "function/python", {"function": LONG_FUNCTION, "functionParameters": {}}
    else:
        route = "transform/scikitlearn" if i % 3 == 1 else "explore/scikitlearn"
        body = {
            "modulePath": "sklearn.preprocessing",
            "class": "StandardScaler",
            "classParameters": {},
            "method": "fit_transform",
            "methodParameters": {"X": LONG_PARAMETER},
        }
    lo.post(route, {"name": name, **body})
    return route, name


@contextlib.contextmanager
def scanning(lo: Lo, name: str, threads: int) -> Iterator[None]:
    """`threads` loops of query scans over the whole table (a filter nothing matches)."""
    stop = threading.Event()
    query = json.dumps({"city": "Atlantis"})

    def loop() -> None:
        with httpx.Client(base_url=lo.http.base_url, timeout=30) as http:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    http.get(f"/dataset/csv/{name}", params={"query": query, "limit": 100})

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        stop.set()
        for worker in workers:
            worker.join(40)


def stall(lo: Lo, sizes: Sizes) -> list[Row]:
    """GET metadata while long jobs and scans run, vs the same GET on the idle server."""
    window = min(60, sizes.alarm / 20)  # seconds of GETs under load (quick: 15)
    timeouts = 0

    def get_metadata() -> None:
        nonlocal timeouts
        try:
            lo.http.get("/dataset/csv/tiny", params={"limit": 1}, timeout=window)
        except httpx.TimeoutException:  # counted, and as long as the window: a lower bound
            timeouts += 1

    def sample(i: int) -> float:
        return timed_ms(get_metadata)

    idle, _ = interleaved(sizes.stall_gets, sample)
    jobs = [long_job(lo, i) for i in range(sizes.long_jobs)]
    loaded: list[float] = []
    states: list[str] = []
    try:
        deadline = time.monotonic() + min(120, sizes.alarm / 10)  # quick: 30 s for all to run
        while True:
            states = [lo.status(route, name) for route, name in jobs]
            if all(s == "running" for s in states) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        log(f"stall: {states.count('running')}/{len(jobs)} long jobs running ({states})")
        # Jobs alone first, then jobs and scans: which of the two stalls the API, if any.
        jobs_only, _ = interleaved(sizes.stall_gets // 2, sample, seconds=window / 2)
        with scanning(lo, f"ingest{sizes.ingest_rows[0]}", sizes.scans):
            time.sleep(1)  # let the scans start
            loaded, _ = interleaved(sizes.stall_gets, sample, seconds=window)
    finally:
        for route, name in jobs:
            with contextlib.suppress(httpx.HTTPError):
                lo.http.post(f"/{route}/{name}/cancel", timeout=10)
    what = f"GET metadata, {states.count('running')}/{len(jobs)} long jobs running"
    late = f", {timeouts} GETs timed out at {window:.0f} s" if timeouts else ""

    def row(what: str, values: list[float]) -> Row:
        return Row("stall", what, "ms", values, "p99 ≤ 50 ms", idle,
                   lambda row: percentile(row.values, 99) <= 50, p99=True)  # fmt: skip

    return [row(what, jobs_only), row(f"{what} + {sizes.scans} scans{late}", loaded)]


# -- main ----------------------------------------------------------------------------------
def run_cases(folder: Path, sizes: Sizes) -> list[Row]:
    log("start and idle")
    rows = start_and_idle(folder, sizes)
    server = lo_server(folder, "data")
    with running(server):
        lo = Lo(server, folder / "data")
        try:
            log("per-step overhead")
            rows += step_overhead(lo, folder, sizes)
            log("CSV ingest")
            rows += ingest(lo, folder, sizes)
            log("reading pages")
            rows += pages(lo, folder, sizes)
            log("stall")
            rows += stall(lo, sizes)
        except Exception:
            log(f"the server's log ends with:\n{server.log_tail()}")  # the temp dir goes
            raise
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run.sh bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI (< 1 min)")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL

    with bounded(sizes.alarm, "bench"), tempfile.TemporaryDirectory(prefix="lo-bench-") as tmp:
        rows = run_cases(Path(tmp), sizes)
    lines = header(f"./run.sh bench{' --quick' if args.quick else ''}")
    emit(lines, rows, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
