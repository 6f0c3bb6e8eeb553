"""Benchmark: CSV ingest throughput and memory, upload and URL, on the embedded server.

    .venv/bin/python bench/ingest.py --mb 100 200

For each size it writes a synthetic CSV (ints, floats, strings, missing values), starts
`learning-orchestra serve` on a free 127.0.0.1 port, ingests the file by multipart upload and
from a local HTTP server, and prints a Markdown table: wall time, MB/s, rows/s, the API
process's resident memory before and at its peak, and the worker's peak. The claim under test
(docs/benchmarks.md): ingest streams, so neither process needs memory in proportion to the file.
"""

from __future__ import annotations

import argparse
import http.server
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.conftest import BASE, ServerProcess  # noqa: E402

COLUMNS = "id,age,fare,name,city,flag\n"


def make_csv(path: Path, megabytes: int) -> int:
    rng = random.Random(0)
    cities = ["Southampton", "Cherbourg", "Queenstown", ""]
    target = megabytes * 1024 * 1024
    rows = 0
    with path.open("w") as out:
        out.write(COLUMNS)
        while out.tell() < target:
            lines = []
            for _ in range(10_000):
                age = "" if rng.random() < 0.1 else f"{rng.uniform(1, 80):.1f}"
                lines.append(
                    f"{rows},{age},{rng.uniform(0, 500):.4f},passenger number {rows},"
                    f"{rng.choice(cities)},{rng.random() < 0.5}\n"
                )
                rows += 1
            out.write("".join(lines))
    return rows


class Sampler(threading.Thread):
    """Peak resident memory of the server process and of its workers, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.server = psutil.Process(pid)
        self.api_peak = 0
        self.worker_peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                self.api_peak = max(self.api_peak, self.server.memory_info().rss)
                for child in self.server.children(recursive=True):
                    if "resource_tracker" in " ".join(child.cmdline()):
                        continue
                    self.worker_peak = max(self.worker_peak, child.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.02)


def ingest(server: ServerProcess, name: str, how: str, csv: Path, url: str) -> dict[str, Any]:
    assert server.process is not None
    api_before = psutil.Process(server.process.pid).memory_info().rss
    sampler = Sampler(server.process.pid)
    sampler.start()
    started = time.perf_counter()
    with httpx.Client(base_url=server.url + BASE, timeout=600) as client:
        if how == "upload":
            with csv.open("rb") as handle:
                files = {"file": (csv.name, handle, "text/csv")}
                response = client.post("/dataset/csv", data={"datasetName": name}, files=files)
        else:
            response = client.post(
                "/dataset/csv", json={"datasetName": name, "datasetURI": f"{url}/{csv.name}"}
            )
        response.raise_for_status()
        done = client.get(f"/observe/{name}", params={"timeout": 3600}).json()["result"]
    seconds = time.perf_counter() - started
    sampler.running = False
    sampler.join()
    assert done["status"] == "finished", done["exception"]
    size_mb = csv.stat().st_size / 2**20
    return {
        "how": how,
        "MB": f"{size_mb:.0f}",
        "rows": done["rows"],
        "seconds": f"{seconds:.1f}",
        "MB/s": f"{size_mb / seconds:.1f}",
        "rows/s": f"{done['rows'] / seconds:,.0f}",
        "API RSS before (MB)": f"{api_before / 2**20:.0f}",
        "API RSS peak (MB)": f"{sampler.api_peak / 2**20:.0f}",
        "worker RSS peak (MB)": f"{sampler.worker_peak / 2**20:.0f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, nargs="+", default=[50, 200])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def handler(*a: Any, **k: Any) -> http.server.SimpleHTTPRequestHandler:
            return http.server.SimpleHTTPRequestHandler(*a, directory=str(folder), **k)

        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None  # type: ignore
        files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=files.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{files.server_address[1]}"
        # Dataset URLs may not reach loopback by default (SSRF): let them reach this one.
        hosts = {"LO_ALLOWED_URL_HOSTS": f"127.0.0.1:{files.server_address[1]}"}
        server = ServerProcess(folder / "data", env=hosts)
        server.start()
        try:
            for mb in args.mb:
                csv = folder / f"bench_{mb}mb.csv"
                make_csv(csv, mb)
                for how in ("upload", "url"):
                    results.append(ingest(server, f"b{mb}{how}", how, csv, url))
                    print(results[-1], file=sys.stderr)
                csv.unlink()
        finally:
            server.stop()
            files.shutdown()
    header = list(results[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in results:
        print("| " + " | ".join(str(row[h]) for h in header) + " |")


if __name__ == "__main__":
    main()
