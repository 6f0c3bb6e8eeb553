"""Stored tables: their layout on the volume, and reading them page by page with LO's `query`.

Layout. A table output (format "parquet") holds its rows in one of two ways:

    table.parquet                     one Parquet file (what LO's own jobs write), or
    table/part-00000.parquet, ...     several Parquet files with one schema (what a
                                      distributed writer such as Spark produces)

and every reader treats both as one table: the parts in name order, the rows of each part in
its order. `table_files` lists them.

Reading, in reader processes. The API process imports this module (it is light: pyarrow is
imported on the first read, never `pyarrow.dataset` nor pandas) but reads no table itself:
`core/tablereader.py` runs every read in a small pool of reader processes, which call
`page_json`, `all_rows_json`, `csv_chunks` and `parquet_chunks` here. The footer of every file
(its schema and the row count of each row group) is read once and kept by each reader (a
bounded cache keyed by path, checked against the files' size and mtime), so a page jumps
straight to the row group holding its first row without reading the rows it skips; rows are
decoded at most BATCH_ROWS at a time, so memory is bounded whatever `skip` is. A `query` scan
first counts matches reading only the columns the query names, and decodes whole rows only in
the row groups that hold the page. A page or scan checks its `Deadline` (LO_SCAN_TIMEOUT) at
every batch and stops with a 503 telling the user to narrow the query or download the table.

`query` is a JSON filter in a safe subset of MongoDB syntax — field equality,
`$eq $ne $gt $gte $lt $lte $in $nin $exists`, `$and $or` — compiled to pyarrow compute calls
(`core/rowfilter.py`), so nothing the user sends is ever executed.

Semantics follow MongoDB's, with a table cell that is null (or a floating-point NaN, which is
returned as null) playing the part of a missing field:

- `{"f": null}`, `$eq: null`, `$gte: null`, `$lte: null` and `$exists: false` match missing
  cells; `$ne: null` and `$exists: true` match present ones; `$gt`/`$lt` null match nothing;
- `$ne: v` and `$nin: [...]` also match missing cells (unless `$nin` lists null); `$in` lists
  null to match them;
- a value of another type than the column's (a string for a number column, a boolean for a
  string column, ...) never equals nor orders against its cells, as in MongoDB's type
  brackets: such conditions match nothing (`$ne`/`$nin`: everything) instead of failing;
- date and timestamp columns compare with ISO strings (`{"day": {"$gte": "2020-01-01"}}`).
"""

from __future__ import annotations

import datetime
import decimal
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import Invalid, LOError, NotFound

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .rowfilter import RowFilter

OPERATORS = sorted(
    ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$and", "$or"]
)

#: A table stored as one file, in its output folder.
TABLE_FILE = "table.parquet"
#: A table stored as several files: this folder of the output holds them, named PART_GLOB.
TABLE_PARTS = "table"
PART_GLOB = "part-*.parquet"

#: Rows decoded at once: bounds a read's memory whatever its skip (a scan decodes only the
#: columns its query names, so it takes more rows at a time).
BATCH_ROWS = 8 * 1024
SCAN_BATCH_ROWS = 64 * 1024
#: Bytes read from a file at once for a page (a page needs the first pages of each column).
READ_BUFFER = 64 * 1024
#: Footers kept by each reader process (a few KB each).
FOOTER_CACHE = 256
#: Rows `result?format=json` answers at most (then csv or parquet).
MAX_JSON_ROWS = 100_000


class ScanTimeout(LOError):
    """A table read ran past LO_SCAN_TIMEOUT (or waited that long for its turn)."""

    status_code = 503
    code = "scan_timeout"


def parse_query(text: str | None) -> dict[str, Any]:
    """The `query` parameter as a JSON object ({} when absent); Invalid otherwise."""
    if not text:
        return {}
    try:
        query = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer over 4,300 digits (was a 500)
        raise Invalid(f"query is not valid JSON: {exc}", {"field": "query"}) from None
    except RecursionError:
        raise Invalid("query is nested too deeply", {"field": "query"}) from None
    if not isinstance(query, dict):
        raise Invalid('query must be a JSON object such as {"Sex": "female"}', {"field": "query"})
    return query


def to_expression(query: dict[str, Any], schema: pa.Schema) -> RowFilter | None:
    """The compiled row filter of `query` (None for the empty query); see `core/rowfilter.py`."""
    from .rowfilter import compile_filter

    return compile_filter(query, schema)


# -- layout -----------------------------------------------------------------------------------


def table_files(location: Path) -> list[Path]:
    """The Parquet files of a table, in row order. `location` is a table's output folder (it
    holds TABLE_FILE or the folder TABLE_PARTS), a Parquet file, or a folder of parts."""
    if location.is_file():
        return [location]
    if (location / TABLE_FILE).is_file():
        return [location / TABLE_FILE]
    folder = location / TABLE_PARTS if (location / TABLE_PARTS).is_dir() else location
    return sorted(folder.glob(PART_GLOB))


def table_location(folder: Path) -> Path:
    """Where the rows of the table in output folder `folder` are: TABLE_FILE or TABLE_PARTS."""
    parts = folder / TABLE_PARTS
    return parts if parts.is_dir() and not (folder / TABLE_FILE).exists() else folder / TABLE_FILE


@dataclass(frozen=True)
class Footer:
    """What a table's files say about themselves: read once, then kept."""

    files: tuple[Path, ...]
    stamps: tuple[tuple[int, int, int], ...]
    metadata: tuple[pq.FileMetaData, ...]
    schema: pa.Schema
    #: every row group in row order: (file index, group index in its file, first row, rows)
    groups: tuple[tuple[int, int, int, int], ...]
    rows: int

    def open(self, index: int) -> pq.ParquetFile:
        import pyarrow.parquet as pq

        # pre_buffer off: a page needs the first pages of each column, not whole column chunks
        # read ahead on another thread (tens of MB for a row group of a million rows)
        return pq.ParquetFile(
            self.files[index],
            metadata=self.metadata[index],
            buffer_size=READ_BUFFER,
            pre_buffer=False,
        )


def _stamps(files: tuple[Path, ...]) -> tuple[tuple[int, int, int], ...]:
    stats = [f.stat() for f in files]
    return tuple((s.st_ino, s.st_size, s.st_mtime_ns) for s in stats)


_footers: OrderedDict[str, Footer] = OrderedDict()
_arrow_ready = False


def _prepare_arrow() -> None:
    """On the first table read: Arrow allocates with the C library's malloc here. Its default
    allocator keeps freed memory for reuse, which left a reading process tens of MB larger after
    serving a few pages; reads here allocate little and briefly."""
    global _arrow_ready
    if not _arrow_ready:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
        _arrow_ready = True


def footer(location: Path) -> Footer:
    """The footer of the table at `location` (see `table_files`), from the cache when its
    files are unchanged. Called by a reader process (core/tablereader.py), one read at a
    time: the cache needs no lock."""
    _prepare_arrow()
    key = str(location)
    cached = _footers.get(key)
    if cached is not None:
        try:
            if _stamps(cached.files) == cached.stamps:
                _footers.move_to_end(key)
                return cached
        except OSError:
            pass  # a file is gone: read again (and fail there if the table is gone)
    loaded = _read_footer(location)
    _footers[key] = loaded
    _footers.move_to_end(key)
    while len(_footers) > FOOTER_CACHE:
        _footers.popitem(last=False)
    return loaded


def _read_footer(location: Path) -> Footer:
    import pyarrow.parquet as pq

    files = tuple(table_files(location))
    if not files:
        raise NotFound("the table's files are missing from the data volume")
    stamps = _stamps(files)
    metadata = tuple(pq.read_metadata(f) for f in files)
    schema = metadata[0].schema.to_arrow_schema()
    groups: list[tuple[int, int, int, int]] = []
    rows = 0
    for index, meta in enumerate(metadata):
        if index and not meta.schema.to_arrow_schema().equals(schema, check_metadata=False):
            raise Invalid(
                f"part {files[index].name} of the table has other columns or types than "
                f"{files[0].name}: every part of a table must have one schema"
            )
        for group in range(meta.num_row_groups):
            count = meta.row_group(group).num_rows
            if count:
                groups.append((index, group, rows, count))
                rows += count
    return Footer(files, stamps, metadata, schema, tuple(groups), rows)


# -- reading ----------------------------------------------------------------------------------


class Deadline:
    """When a read must stop; `check` raises ScanTimeout past it."""

    def __init__(self, seconds: float | None, remaining: float | None = None) -> None:
        """`seconds`: LO_SCAN_TIMEOUT (named in the error); `remaining`: of it, what is left
        (the API may have waited for a reader), all of it when None."""
        self.seconds = seconds
        left = seconds if remaining is None else remaining
        self.at = None if left is None else time.monotonic() + left

    def check(self) -> None:
        if self.at is not None and time.monotonic() > self.at:
            raise self.expired()

    def expired(self) -> ScanTimeout:
        return ScanTimeout(
            f"reading the table took longer than LO_SCAN_TIMEOUT={self.seconds:g} seconds "
            "(the query scans much of a large table, or the server is busy with other "
            "scans): narrow the query, or download the table with "
            ".../result?format=csv or format=parquet and filter it yourself"
        )


_NO_DEADLINE = Deadline(None)


def _batches(
    source: pq.ParquetFile, group: int, batch_rows: int, columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    return source.iter_batches(
        batch_size=max(1, min(batch_rows, SCAN_BATCH_ROWS if columns else BATCH_ROWS)),
        row_groups=[group],
        columns=columns,
        # columns decoded in parallel: reads run in reader processes (core/tablereader.py),
        # whose threads never compete with the API's event loop
        use_threads=True,
    )


def _plain_page(info: Footer, skip: int, limit: int, deadline: Deadline) -> list[pa.RecordBatch]:
    """Rows skip..skip+limit: the footer's row counts say which row groups hold them, and only
    those are read."""
    pieces: list[pa.RecordBatch] = []
    need = limit
    sources: dict[int, pq.ParquetFile] = {}
    for index, group, first, count in info.groups:
        if first + count <= skip:
            continue
        source = sources.get(index) or sources.setdefault(index, info.open(index))
        offset = max(skip - first, 0)  # rows of this group before the page
        seen = 0
        for batch in _batches(source, group, offset + need):
            deadline.check()
            if seen + batch.num_rows > offset:
                piece = batch.slice(max(offset - seen, 0), need)
                pieces.append(piece)
                need -= piece.num_rows
                if need == 0:
                    return pieces
            seen += batch.num_rows
    return pieces


def _count(mask: pa.Array) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(mask).as_py() or 0)  # nulls (unknown) are no match, as in filter


def _filtered_page(
    info: Footer,
    skip: int,
    limit: int,
    keep: RowFilter,
    columns: list[str],
    deadline: Deadline,
) -> list[pa.RecordBatch]:
    """Matching rows skip..skip+limit. Each row group's matches are counted first, reading
    only the columns the query names; whole rows are decoded only in groups that hold part of
    the page. The filter runs batch by batch, not pushed into the scan: Parquet's statistics
    leave NaN out, so pruning by them would drop rows such as a NaN matching `$ne` or
    `null`."""
    pieces: list[pa.RecordBatch] = []
    need = limit
    sources: dict[int, pq.ParquetFile] = {}
    for index, group, _, _ in info.groups:
        source = sources.get(index) or sources.setdefault(index, info.open(index))
        matches = 0
        for batch in _batches(source, group, SCAN_BATCH_ROWS, columns):
            deadline.check()
            matches += _count(keep(batch))
        if matches <= skip:  # nothing of the page here (no match at all, often)
            skip -= matches
            continue
        for batch in _batches(source, group, BATCH_ROWS):
            deadline.check()
            selected = batch.filter(keep(batch))
            if skip >= selected.num_rows:
                skip -= selected.num_rows
                continue
            piece = selected.slice(skip, need)
            skip = 0
            pieces.append(piece)
            need -= piece.num_rows
            if need == 0:
                return pieces
    return pieces


def _page(
    location: Path, skip: int, limit: int, query: dict[str, Any] | None, deadline: Deadline
) -> list[pa.RecordBatch]:
    info = footer(location)
    keep = to_expression(query, info.schema) if query else None
    if limit <= 0:
        return []
    skip = max(skip, 0)
    if keep is None:
        return _plain_page(info, skip, limit, deadline)
    from .rowfilter import query_columns

    columns = [n for n in info.schema.names if n in query_columns(query or {})]
    try:
        return _filtered_page(info, skip, limit, keep, columns, deadline)
    except ValueError as exc:  # ArrowException: a filter that fails on these values
        raise Invalid(f"query cannot be evaluated on this table: {exc}") from None


def _clean_floats(batch: pa.RecordBatch) -> pa.RecordBatch:
    """NaN and infinities as null: JSON has neither, and a missing value reads as null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = list(batch.columns)
    changed = False
    for position, column in enumerate(columns):
        if pa.types.is_floating(column.type):
            values = column if column.type != pa.float16() else column.cast(pa.float32())
            # a null made from no Python value: converting `None` would import pandas
            null = pa.nulls(1, values.type)[0]
            columns[position] = pc.if_else(pc.is_finite(values), values, null)
            changed = True
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names) if changed else batch


def to_rows(pieces: list[pa.RecordBatch]) -> list[dict[str, Any]]:
    """Record batches as JSON-ready rows (NaN and infinities as None)."""
    rows: list[dict[str, Any]] = []
    for piece in pieces:
        rows.extend(_clean_floats(piece).to_pylist())
    return rows


def read_page(
    path: Path, *, skip: int, limit: int, query: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Rows `skip`..`skip+limit` of the table at `path` (see `table_files`) that match
    `query`; Invalid when the query does not apply to the table."""
    return to_rows(_page(path, skip, limit, query, _NO_DEADLINE))


def _json_default(value: Any) -> Any:
    """What `json.dumps` cannot write by itself, as FastAPI's jsonable_encoder writes it."""
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """`value` as JSON text: rows and metadata, written once, without jsonable_encoder."""
    return json.dumps(value, default=_json_default, separators=(",", ":"), allow_nan=False)


def _flat(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` with every nested column (lists, structs: e.g. builder/sparkml's probability
    vectors) as JSON text, which CSV can hold."""
    import pyarrow as pa

    if not any(pa.types.is_nested(field.type) for field in batch.schema):
        return batch
    columns = [
        pa.array([None if v is None else json.dumps(v) for v in column.to_pylist()], pa.string())
        if pa.types.is_nested(column.type)
        else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def csv_chunks(location: Path) -> Iterator[bytes]:
    """The table as CSV with a header line, BATCH_ROWS rows at a time; nested values (lists,
    structs) as JSON text."""
    import io

    import pyarrow.csv as pacsv

    info = footer(location)
    header = True
    for index, group, _, _ in info.groups:
        for batch in _batches(info.open(index), group, BATCH_ROWS):
            buffer = io.BytesIO()
            pacsv.write_csv(_flat(batch), buffer, pacsv.WriteOptions(include_header=header))
            header = False
            yield buffer.getvalue()
    if header:
        yield (",".join(info.schema.names) + "\n").encode()


class _Chunks:
    """A write-only file whose bytes are taken out as they come (Parquet written as a stream)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def page_json(
    location: Path, skip: int, limit: int, query: dict[str, Any] | None, deadline: Deadline
) -> bytes:
    """The JSON array of rows `skip`..`skip+limit` matching `query`."""
    return dumps(to_rows(_page(location, skip, limit, query, deadline))).encode()


def all_rows_json(location: Path, deadline: Deadline) -> bytes:
    """The JSON array of every row (Invalid beyond MAX_JSON_ROWS rows)."""
    info = footer(location)
    if info.rows > MAX_JSON_ROWS:
        raise Invalid(
            f"the table has {info.rows} rows: download it with format=csv or format=parquet"
        )
    return dumps(to_rows(_plain_page(info, 0, max(info.rows, 1), deadline))).encode()


def parquet_chunks(location: Path) -> Iterator[bytes]:
    """The table as one Parquet file, written as it goes, one row group at a time (for a
    table of several parts; the API sends a table of one file as it is)."""
    import pyarrow.parquet as pq

    info = footer(location)
    sink = _Chunks()
    writer = pq.ParquetWriter(sink, info.schema)
    for index, group, _, _ in info.groups:
        writer.write_table(info.open(index).read_row_group(group, use_threads=False))
        yield sink.take()
    writer.close()
    yield sink.take()
