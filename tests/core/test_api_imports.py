"""Structural: what the API process of a real `learning-orchestra serve` has loaded (issue 6:
it imported pyarrow.dataset and pandas at start, 2.2 s and 147 MB before its first answer, and
pyarrow stayed once it had read a table).

The check reads the server's /proc/PID/maps: a module of pyarrow or pandas that was imported
has its compiled extension mapped there, whatever imported it. Workers are other processes.
Nothing is timed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import BASE, ServerProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

CSV = f"{BASE}/dataset/csv"
# the compiled extension of each module, as it shows in the maps
PYARROW = "pyarrow/lib.cpython"
HEAVY = {"pyarrow.dataset": "pyarrow/_dataset.cpython", "pandas": "pandas/_libs/"}


def loaded(pid: int) -> set[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    found = {name for name, marker in HEAVY.items() if marker in maps}
    return found | ({"pyarrow"} if PYARROW in maps else set())


def test_the_api_process_never_imports_pyarrow_nor_pandas(tmp_path: Path) -> None:
    """Tables are read in reader processes (core/tablereader.py), jobs in workers."""
    server = ServerProcess(tmp_path / "data")
    server.start()
    try:
        assert server.process is not None
        pid = server.process.pid
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.get(CSV).status_code == 200
            assert loaded(pid) == set()  # started and answering: no pyarrow at all

            csv = "n,x,s\n" + "".join(f"{n},{n / 2},row {n}\n" for n in range(500))
            created = client.post(
                CSV, data={"datasetName": "t"}, files={"file": ("t.csv", csv, "text/csv")}
            )
            assert created.status_code == 201, created.text
            done = client.get(f"{BASE}/observe/t", params={"timeout": 60}).json()["result"]
            assert done["status"] == "finished", done
            assert loaded(pid) == set()  # ingested by a worker

            page = client.get(f"{CSV}/t", params={"skip": 101, "limit": 2})
            assert page.json()["result"] == [
                {"n": 100, "x": 50.0, "s": "row 100"},
                {"n": 101, "x": 50.5, "s": "row 101"},
            ]
            query = client.get(f"{CSV}/t", params={"skip": 1, "query": '{"n": {"$gt": 497}}'})
            assert [row["n"] for row in query.json()["result"]] == [498, 499]
            csv_file = client.get(f"{CSV}/t/result", params={"format": "csv"})
            assert csv_file.text.splitlines()[:2] == ['"n","x","s"', '0,0,"row 0"']
            assert len(client.get(f"{CSV}/t/result").json()["result"]) == 500
            parquet = client.get(f"{CSV}/t/result", params={"format": "parquet"})
            assert parquet.content.startswith(b"PAR1")
            # pages, queries and downloads: read by reader processes, never here
            assert loaded(pid) == set()
    finally:
        server.stop()
