"""Dataset jobs, run in worker processes: fetch, parse, store.

CSV ingest streams in two passes over the file so memory stays bounded whatever its size:
pass 1 reads every column as text and finds the narrowest type that holds all its values
(boolean, integer, float, else string); pass 2 parses with those types and writes Parquet
batch by batch.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ...core.errors import JobFailed
from ...core.worker import JobContext, Output

CHUNK = 1 << 20
BLOCK_SIZE = 4 << 20
PROGRESS_EVERY_ROWS = 50_000
NOT_CSV = ("text/html", "application/json", "application/xml", "image/", "audio/", "video/")

# Narrowest first; a column moves right until every value fits.
CANDIDATES: list[pa.DataType] = [pa.bool_(), pa.int64(), pa.float64(), pa.string()]
TYPE_NAMES = {pa.bool_(): "boolean", pa.int64(): "integer", pa.float64(): "float"}


def fetch(ctx: JobContext, reject: tuple[str, ...] = ()) -> tuple[Path, str, str | None]:
    """The source file on local disk: the staged upload, or the URL downloaded to scratch.

    Returns (path, filename, content type)."""
    url = ctx.parameters["datasetURI"]
    upload = ctx.spec.internal.get("upload")
    if upload and url.startswith("upload:"):  # a PATCH with a new URL leaves the upload behind
        path = Path(upload)
        if not path.exists():
            raise JobFailed("the uploaded file is gone: upload it again")
        return path, ctx.spec.internal.get("filename") or "upload", None
    limit = ctx.settings.max_upload_mb * 1024 * 1024
    filename = _safe_filename(unquote(Path(urlparse(url).path).name) or "download")
    target = ctx.scratch_dir / filename
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=30.0) as response:
            if response.status_code >= 400:
                raise JobFailed(
                    f"could not fetch {url}: the server answered HTTP "
                    f"{response.status_code} {response.reason_phrase}"
                )
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
            if any(content_type.startswith(bad) for bad in reject):
                raise JobFailed(f"{url} returned {content_type}, not a CSV file: check the URL")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise JobFailed(f"{url} is {int(declared)} bytes, larger than LO_MAX_UPLOAD_MB")
            size = 0
            with target.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise JobFailed(f"{url} is larger than LO_MAX_UPLOAD_MB; stopped")
                    out.write(chunk)
                    ctx.progress(bytes=size)
    except httpx.HTTPError as exc:
        raise JobFailed(f"could not fetch {url}: {type(exc).__name__}: {exc}") from None
    return target, filename, content_type or None


def _safe_filename(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return cleaned[:128] or "file"


def _open(path: Path, types: dict[str, pa.DataType] | None) -> pacsv.CSVStreamingReader:
    convert = pacsv.ConvertOptions(
        column_types=types or {}, strings_can_be_null=True, quoted_strings_can_be_null=True
    )
    return pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE), convert_options=convert
    )


def _fits(values: pa.Array, candidate: pa.DataType) -> bool:
    if candidate == pa.string():
        return True
    if candidate == pa.bool_():
        lowered = pc.utf8_lower(values)
        return bool(pc.all(pc.is_in(lowered, pa.array(["true", "false"]))).as_py())
    try:
        pc.cast(values, candidate)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def infer_types(path: Path) -> dict[str, pa.DataType]:
    """Pass 1: the narrowest type of every column, looking at all of its values."""
    reader = _open(path, None)
    names = reader.schema.names
    reader = _open(path, {n: pa.string() for n in names})
    state = dict.fromkeys(names, 0)
    seen = dict.fromkeys(names, False)
    for batch in reader:
        for index, name in enumerate(names):
            values = batch.column(index).drop_null()
            if len(values) == 0:
                continue
            seen[name] = True
            while not _fits(values, CANDIDATES[state[name]]):
                state[name] += 1
    return {n: CANDIDATES[state[n]] if seen[n] else pa.string() for n in names}


def _readable(exc: Exception) -> str:
    text = str(exc)
    if "Empty CSV file" in text:
        return "the file is empty: a CSV needs at least a header line"
    return f"malformed CSV: {text}"


def ingest_csv(ctx: JobContext) -> Output:
    """dataset/csv: the source as a typed Parquet table with `fields`, `types` and `rows`."""
    path, filename, _ = fetch(ctx, reject=NOT_CSV)
    try:
        types = infer_types(path)
        reader = _open(path, types)
        target = ctx.output_dir / "table.parquet"
        rows = 0
        next_report = PROGRESS_EVERY_ROWS
        with pq.ParquetWriter(target, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
                if rows >= next_report:
                    ctx.progress(rows=rows)
                    next_report += PROGRESS_EVERY_ROWS
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise JobFailed(_readable(exc)) from None
    _discard_source(ctx, path)
    column_types: dict[str, Any] = {
        name: TYPE_NAMES.get(kind, "string") for name, kind in types.items()
    }
    return Output(
        kind="table",
        format="parquet",
        metadata={
            "fields": list(types),
            "types": column_types,
            "rows": rows,
            "source": filename,
            "progress": {"rows": rows},
        },
        libraries={"pyarrow": pa.__version__},
    )


def store_file(ctx: JobContext) -> Output:
    """dataset/generic: the source file kept byte for byte."""
    path, filename, content_type = fetch(ctx)
    target = ctx.output_dir / _safe_filename(filename)
    shutil.copyfile(path, target)
    _discard_source(ctx, path)
    size = target.stat().st_size
    return Output(
        kind="file",
        format="raw",
        metadata={
            "filename": target.name,
            "size": size,
            "contentType": content_type,
            "progress": {"bytes": size},
        },
    )


def _discard_source(ctx: JobContext, path: Path) -> None:
    """The upload or download is no longer needed once the output holds it."""
    path.unlink(missing_ok=True)
