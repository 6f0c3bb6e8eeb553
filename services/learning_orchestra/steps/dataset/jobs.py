"""Dataset jobs, run in worker processes: fetch, parse, store.

CSV ingest streams in one pass over the file, so memory stays bounded whatever its size: the
first block (4 MB), read as text, gives every column its narrowest type (boolean, integer,
float, else string) and the rest of the file is converted with those types and written as
Parquet, in row groups as large as `pyarrow.parquet.write_table` makes them. A column
is typed by all of its values, as if inferred over the whole file: when a later value does not
fit the first block's type (a fraction in a column of whole numbers), a full inference pass
finds the narrowest type that holds every value and the conversion starts over — a rare case
that costs what the old two-pass ingest always cost.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ...core.errors import JobFailed
from ...core.fetching import guarded_client
from ...core.tables import TABLE_FILE
from ...core.urls import BlockedURL
from ...core.worker import JobContext, Output

CHUNK = 1 << 20
BLOCK_SIZE = 4 << 20
#: pyarrow.parquet.write_table's default row group length, and a bound on a group's memory
ROW_GROUP_ROWS = 1 << 20
ROW_GROUP_BYTES = 64 << 20
PROGRESS_SECONDS = 1.0
SAMPLE = 1024  # values `_fits` tries first
HEADER_BLOCK = 64 << 10
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
        # Every connection (redirects included) goes only where the settings allow: see
        # core/urls.py (SSRF guard).
        with (
            guarded_client(ctx.settings, follow_redirects=True, timeout=30.0) as client,
            client.stream("GET", url) as response,
        ):
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
    except BlockedURL as exc:
        raise JobFailed(f"could not fetch {url}: {exc}") from None
    except httpx.HTTPError as exc:
        raise JobFailed(f"could not fetch {url}: {type(exc).__name__}: {exc}") from None
    return target, filename, content_type or None


def _safe_filename(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return cleaned[:128] or "file"


@contextmanager
def _open(
    path: Path, types: dict[str, pa.DataType] | None, block_size: int | None = None
) -> Iterator[pacsv.CSVStreamingReader]:
    """A streaming reader of the CSV file at `path`, with column `types` (None: inferred)."""
    convert = pacsv.ConvertOptions(
        column_types=types or {},
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        # exactly the booleans `_fits` accepts: "true"/"false" in any case, and not 1/0
        true_values=TRUE_VALUES,
        false_values=FALSE_VALUES,
    )
    read = pacsv.ReadOptions(block_size=block_size or BLOCK_SIZE)
    # A Python file, not the path: given a path, Arrow reads the file ahead of the parser
    # without bound (over 100 MB while a row group is being written); through a file object
    # it reads a block at a time, and the worker's memory stays flat in the file's size.
    with path.open("rb") as source:
        yield pacsv.open_csv(source, read_options=read, convert_options=convert)


def _cases(word: str) -> list[str]:
    """Every spelling of `word` in upper and lower case letters."""
    spellings = [""]
    for letter in word:
        spellings = [s + c for s in spellings for c in {letter.lower(), letter.upper()}]
    return sorted(spellings)


TRUE_VALUES = _cases("true")
FALSE_VALUES = _cases("false")


def _fits(values: pa.Array, candidate: pa.DataType) -> bool:
    """Whether every one of `values` (text, no nulls) converts to `candidate` as the CSV
    reader converts it (numbers may have spaces around them, booleans may not)."""
    if candidate == pa.string():
        return True
    if len(values) > SAMPLE and not _fits(values.slice(0, SAMPLE), candidate):
        return False  # a failing cast costs as much as the whole array: reject early
    if candidate == pa.bool_():
        lowered = pc.utf8_lower(values)
        return bool(pc.all(pc.is_in(lowered, pa.array(["true", "false"]))).as_py())
    try:
        pc.cast(pc.utf8_trim_whitespace(values), candidate)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _widen(values: pa.Array, state: int) -> int:
    """The index in CANDIDATES of the narrowest type from `state` on that holds `values`."""
    values = values.drop_null()
    if len(values):
        while not _fits(values, CANDIDATES[state]):
            state += 1
    return state


def _column_names(path: Path) -> list[str]:
    """The header's column names, read with a small block first (the reader infers the
    types of a whole block to give its schema)."""
    try:
        with _open(path, None, HEADER_BLOCK) as reader:
            names: list[str] = reader.schema.names
    except pa.ArrowInvalid:  # a header line longer than HEADER_BLOCK, or a malformed line
        with _open(path, None) as reader:
            names = reader.schema.names
    return names


def first_block_types(path: Path) -> dict[str, pa.DataType]:
    """The narrowest type of every column, looking at the first block only; pa.null() for a
    column without a value there (so that any value later makes it fail and be inferred)."""
    names = _column_names(path)
    with _open(path, dict.fromkeys(names, pa.string())) as reader:
        try:
            batch = reader.read_next_batch()
        except StopIteration:  # a header line alone
            return dict.fromkeys(names, pa.null())
    types: dict[str, pa.DataType] = {}
    for index, name in enumerate(names):
        values = batch.column(index).drop_null()
        types[name] = CANDIDATES[_widen(values, 0)] if len(values) else pa.null()
    return types


def infer_types(path: Path, start: dict[str, pa.DataType] | None = None) -> dict[str, pa.DataType]:
    """The narrowest type of every column, looking at all of its values (a pass over the
    whole file), from the types in `start` on (pa.null(): no value seen yet)."""
    names = _column_names(path)
    start = start or {}
    seen = {n: start.get(n, pa.null()) != pa.null() for n in names}
    state = {n: CANDIDATES.index(start[n]) if seen[n] else 0 for n in names}
    with _open(path, dict.fromkeys(names, pa.string())) as reader:
        for batch in reader:
            for index, name in enumerate(names):
                values = batch.column(index).drop_null()
                if len(values):
                    seen[name] = True
                    state[name] = _widen(values, state[name])
    return {n: CANDIDATES[state[n]] if seen[n] else pa.null() for n in names}


class _RowGroups:
    """Batches gathered into row groups of ROW_GROUP_ROWS rows (or ROW_GROUP_BYTES), as
    `pyarrow.parquet.write_table` makes them: few large groups make a smaller file, faster
    to read, than one group per CSV block. A group is encoded in a thread of its own while
    the next one is parsed (both release the GIL); memory stays bounded by two groups."""

    def __init__(self, writer: pq.ParquetWriter, schema: pa.Schema) -> None:
        self.writer = writer
        self.schema = schema  # null-typed columns (no value anywhere) are stored as strings
        self.batches: list[pa.RecordBatch] = []
        self.rows = 0
        self.bytes = 0
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="parquet")
        self.pending: Future[None] | None = None

    def __enter__(self) -> _RowGroups:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.flush()
            self._wait()
        self.thread.shutdown(wait=True, cancel_futures=True)

    def add(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)
        self.rows += batch.num_rows
        self.bytes += batch.nbytes
        if self.rows >= ROW_GROUP_ROWS or self.bytes >= ROW_GROUP_BYTES:
            self.flush(full_only=True)

    def flush(self, full_only: bool = False) -> None:
        if not self.batches:
            return
        table = pa.Table.from_batches(self.batches)
        if table.schema != self.schema:
            table = table.cast(self.schema)
        if full_only and self.bytes < ROW_GROUP_BYTES:  # whole groups; the rest waits
            whole = table.num_rows - table.num_rows % ROW_GROUP_ROWS
            rest, table = table.slice(whole), table.slice(0, whole)
        else:
            rest = table.slice(table.num_rows)
        # the rest is copied: a slice would keep the written group's buffers alive
        self.batches = rest.combine_chunks().to_batches() if rest.num_rows else []
        self.rows = rest.num_rows
        self.bytes = rest.nbytes
        self._wait()
        self.pending = self.thread.submit(self.writer.write_table, table, ROW_GROUP_ROWS)

    def _wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()


def _stored_type(type_: pa.DataType) -> pa.DataType:
    return pa.string() if type_ == pa.null() else type_


def convert(
    path: Path,
    target: Path,
    types: dict[str, pa.DataType],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Parse the CSV file at `path` with column `types` and write it to `target` as Parquet;
    the number of rows. ArrowInvalid when a value does not convert to its column's type."""
    schema = pa.schema([(n, _stored_type(t)) for n, t in types.items()])
    rows = 0
    reported = -PROGRESS_SECONDS  # the first batch is reported at once, then once a second
    with (
        _open(path, types) as reader,
        pq.ParquetWriter(target, schema) as writer,
        _RowGroups(writer, schema) as groups,
    ):
        for batch in reader:
            groups.add(batch)
            rows += batch.num_rows
            if progress is not None and time.monotonic() - reported >= PROGRESS_SECONDS:
                progress(rows)
                reported = time.monotonic()
    return rows


def csv_to_parquet(
    path: Path, target: Path, progress: Callable[[int], None] | None = None
) -> tuple[dict[str, str], int]:
    """The CSV file at `path` as a typed Parquet table at `target`: (column types as the
    `types` metadata names them, rows). `progress(rows)` is called about once a second.

    Every column gets the narrowest of boolean, integer, float and string that holds all of
    its values (string when it has none). One pass over the file unless a value beyond the
    first block does not fit the type the first block gave its column (see the module)."""
    types = first_block_types(path)
    try:
        rows = convert(path, target, types, progress)
    except pa.ArrowInvalid:
        # a value the first block's types cannot hold, or a malformed line: infer over the
        # whole file (which reports a malformed line itself) and convert again
        types = infer_types(path, types)
        rows = convert(path, target, types, progress)
    names = {name: TYPE_NAMES.get(_stored_type(kind), "string") for name, kind in types.items()}
    return names, rows


def _readable(exc: Exception) -> str:
    text = str(exc)
    if "Empty CSV file" in text:
        return "the file is empty: a CSV needs at least a header line"
    return f"malformed CSV: {text}"


def ingest_csv(ctx: JobContext) -> Output:
    """dataset/csv: the source as a typed Parquet table with `fields`, `types` and `rows`."""
    path, filename, _ = fetch(ctx, reject=NOT_CSV)
    try:
        column_types, rows = csv_to_parquet(
            path, ctx.output_dir / TABLE_FILE, lambda rows: ctx.progress(rows=rows)
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise JobFailed(_readable(exc)) from None
    _discard_source(ctx, path)
    return Output(
        kind="table",
        format="parquet",
        metadata={
            "fields": list(column_types),
            "types": dict(column_types),
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
