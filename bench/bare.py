"""The limit for the API cases: a bare FastAPI app under uvicorn, nothing of LO imported.

    BENCH_TABLE=/path/to/table python -m uvicorn bench.bare:app --port PORT

`/health` answers at once (the start-up limit). `/page?skip=S&limit=L` answers rows like
LO's `GET /{step}/{tool}/{name}?skip=S&limit=L` (item 0 there is the metadata, so rows start
at `skip - 1`), doing only the Parquet read a careful handler needs: the footer's row counts
pick the row group that holds the page's first row, batches of it are decoded up to the
page's end (rows before `skip` in that group are decoded too: Parquet cannot seek to a row
inside a row group without an offset index), sliced and sent with `json.dumps`.
`BENCH_TABLE` is one Parquet file or a folder of them, read in name order. pyarrow is
imported by the first page, so that the start-up limit is FastAPI and uvicorn alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response

app = FastAPI()
BATCH_ROWS = 8192  # decoded at a time inside a row group: small pages, few Python iterations


def _files() -> list[Path]:
    table = Path(os.environ.get("BENCH_TABLE", ""))
    return sorted(table.rglob("*.parquet")) if table.is_dir() else [table]


def read_rows(start: int, count: int) -> list[dict[str, Any]]:
    """Rows [start, start + count) of the table: row groups before `start` are skipped by the
    footer's row counts; inside the group that holds it, batches are decoded only up to the
    page's end."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    offset = 0  # index of the next row of the table not yet passed
    for path in _files():
        parquet = pq.ParquetFile(path)
        for group in range(parquet.metadata.num_row_groups):
            size = parquet.metadata.row_group(group).num_rows
            if offset + size <= start:
                offset += size
                continue
            for batch in parquet.iter_batches(BATCH_ROWS, row_groups=[group]):
                first = max(start - offset, 0)
                if first < batch.num_rows:
                    rows.extend(batch.slice(first, count - len(rows)).to_pylist())
                offset += batch.num_rows
                if len(rows) >= count:
                    return rows
    return rows


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/page")
def page(skip: int = 1, limit: int = 100) -> Response:
    rows = read_rows(max(skip - 1, 0), limit)
    return Response(json.dumps({"result": rows}), media_type="application/json")
