"""Table reads out of the API process: a small pool of reader processes.

Why. Decoding Parquet, filtering rows and writing JSON or CSV is CPU work, much of it in
Python: on threads of the API process it held the GIL against the event loop, and pyarrow
with Arrow's memory stayed in the API process once it had read a table (~65 MB more after
pages of a 1M-row table). The API process now never imports pyarrow.

Design. `TableReader` keeps at most LO_SCAN_CONCURRENCY reader processes, started on the
first table read that needs one and kept for the next ones (each keeps its own footer cache,
core/tables.py). A reader is `python -m learning_orchestra.core.tablereader` (a fresh
interpreter: nothing of the API process is forked), given one end of a socket pair; it dies
with the server (PR_SET_PDEATHSIG, and end of file on its socket) and reads one request at a
time:

    API -> reader   one JSON line: {"op": "page"|"rows"|"csv"|"parquet", "location": ...}
    reader -> API   frames of a 1-byte kind and a 4-byte big-endian length, then the payload:
                    b"D" bytes of the answer (at most FRAME_BYTES each), then
                    b"E" the answer is complete, or
                    b"X" a JSON error {"status", "code", "message", "detail"}.

The API awaits frames on the event loop (non-blocking socket, `loop.sock_recv_into`): no
thread is parked per read. A page is the JSON text the reader made, sent on as it is. A
download (csv, or parquet of a table of parts) streams frame by frame: the API asks for the
next frame only when the client has taken the previous one, and the socket's buffer is the
only one in between (backpressure: the reader blocks on a full socket), so the API's memory
stays flat whatever the table's size. A download holds its reader until it ends.

Time. A read has LO_SCAN_TIMEOUT seconds, waiting for a reader included; a download has them
for each frame. The reader stops a page or scan itself at the deadline (a 503 `scan_timeout`,
and it stays for the next read); one that has not answered KILL_GRACE seconds later (stuck in
one long call) is killed, and the read answers the same 503. A reader is also killed when its
read is abandoned (the client went away mid-download). A reader that dies mid-read is a bug:
the read answers 500 saying so. A killed or dead reader is replaced by the next read.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from . import tables
from .errors import BadRequest, Invalid, LOError, NotFound, TooLarge
from .tables import Deadline, ScanTimeout

#: Bytes of an answer in one frame: what the API process holds of a download at once.
FRAME_BYTES = 1 << 20
#: Seconds past its deadline a reader is given to stop by itself before it is killed.
KILL_GRACE = 1.0

HEADER = struct.Struct("!cI")
DATA, END, ERROR = b"D", b"E", b"X"
PR_SET_PDEATHSIG = 1
#: Errors a reader sends, rebuilt as the same class in the API process.
ERRORS: dict[str, type[LOError]] = {
    cls.code: cls for cls in (BadRequest, Invalid, NotFound, TooLarge, ScanTimeout)
}


class ReaderFailed(LOError):
    """An error a reader sent that has no class of its own here, with its status and code."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(message, detail)
        self.status_code = status
        self.code = code


def _rebuilt(payload: bytes) -> LOError:
    error = json.loads(payload)
    cls = ERRORS.get(error["code"])
    if cls is not None and cls.status_code == error["status"]:
        return cls(error["message"], error.get("detail"))
    return ReaderFailed(error["status"], error["code"], error["message"], error.get("detail"))


# -- the API process's side -------------------------------------------------------------------


class _Reader:
    """One reader process and the API's end of its socket."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            command = [sys.executable, "-m", __name__, str(theirs.fileno()), str(os.getpid())]
            # close_fds (the default): the reader inherits no listening socket nor store file
            self.process = subprocess.Popen(
                command, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self.socket = ours

    async def send(self, request: dict[str, Any]) -> None:
        line = json.dumps(request, separators=(",", ":")) + "\n"
        await asyncio.get_running_loop().sock_sendall(self.socket, line.encode())

    async def _exactly(self, size: int) -> bytes:
        loop = asyncio.get_running_loop()
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            count = await loop.sock_recv_into(self.socket, view[got:])
            if count == 0:
                raise EOFError("the reader closed its socket")
            got += count
        return bytes(buffer)

    async def frame(self) -> tuple[bytes, bytes]:
        """The next frame: its kind and payload (EOFError when the reader is gone)."""
        kind, size = HEADER.unpack(await self._exactly(HEADER.size))
        return kind, await self._exactly(size) if size else b""

    def kill(self) -> None:
        """Kill the process (it is reaped later, by `poll`, never waited for here)."""
        self.socket.close()
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    def ended(self) -> str:
        code = self.process.poll()
        if code is None:
            return "ended"
        return f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"


class TableReader:
    """Table reads of the API process, run in at most `concurrency` reader processes, each
    read stopped after `timeout` seconds (waiting for a reader included) with ScanTimeout."""

    def __init__(self, concurrency: int = 2, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._turns = asyncio.Semaphore(concurrency)
        self._idle: list[_Reader] = []
        self._busy: set[_Reader] = set()
        self._dying: list[_Reader] = []  # killed, not yet reaped

    def _take(self) -> _Reader:
        """An idle reader still alive, or a new one."""
        self._dying = [r for r in self._dying if r.process.poll() is None]
        while self._idle:
            reader = self._idle.pop()
            if reader.process.poll() is None:
                return reader
            reader.kill()  # it died while idle (killed from outside): its socket is closed
        return _Reader()

    def _discard(self, reader: _Reader) -> None:
        reader.kill()
        self._dying.append(reader)

    async def _frames(self, request: dict[str, Any]) -> AsyncIterator[bytes]:
        """The data frames of the answer to `request`; raises the error the reader sent, or
        ScanTimeout, or a 500 when the reader died."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        expired = Deadline(self.timeout).expired
        try:
            async with asyncio.timeout_at(deadline):
                await self._turns.acquire()
        except TimeoutError:
            raise expired() from None
        reader: _Reader | None = None
        reusable = False
        try:
            reader = self._take()
            self._busy.add(reader)
            remaining = max(deadline - loop.time(), 0.0)
            try:
                await reader.send({**request, "timeout": self.timeout, "remaining": remaining})
                while True:
                    async with asyncio.timeout_at(deadline + KILL_GRACE):
                        kind, payload = await reader.frame()
                    if kind == DATA:
                        yield payload
                        deadline = loop.time() + self.timeout  # each frame has its own time
                    elif kind == END:
                        reusable = True
                        return
                    else:
                        reusable = True
                        raise _rebuilt(payload)
            except TimeoutError:
                raise expired() from None
            except (EOFError, OSError):
                raise LOError(
                    f"the table reader process {reader.ended()} during the read: this is a "
                    "bug of the server (its log may say more); the next read starts a new "
                    "reader"
                ) from None
        finally:
            # No await here: this also runs when a client went away mid-download.
            if reader is not None:
                self._busy.discard(reader)
                if reusable:
                    self._idle.append(reader)
                else:
                    self._discard(reader)
            self._turns.release()

    async def _answer(self, request: dict[str, Any]) -> str:
        return b"".join([frame async for frame in self._frames(request)]).decode()

    def close(self) -> None:
        """Stop every reader (the server stops: reads under way end with it)."""
        for reader in [*self._idle, *self._busy, *self._dying]:
            reader.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                reader.process.wait(5)
        self._idle, self._busy, self._dying = [], set(), []

    async def page_json(
        self, location: Path, skip: int, limit: int, query: dict[str, Any] | None
    ) -> str:
        """The JSON array of rows `skip`..`skip+limit` matching `query`."""
        if limit <= 0 and not query:
            # `GET /{name}?limit=1` (the metadata alone) must not wait behind scans for a
            # reader; a query is still checked against the table (422 when it does not apply)
            return "[]"
        return await self._answer(
            {"op": "page", "location": str(location), "skip": skip, "limit": limit, "query": query}
        )

    async def all_rows_json(self, location: Path) -> str:
        """The JSON array of every row (Invalid beyond MAX_JSON_ROWS rows)."""
        return await self._answer({"op": "rows", "location": str(location)})

    def csv_chunks(self, location: Path) -> AsyncIterator[bytes]:
        """The table as CSV with a header line, as it is read."""
        return self._frames({"op": "csv", "location": str(location)})

    def parquet_chunks(self, location: Path) -> AsyncIterator[bytes]:
        """The table (of parts) as one Parquet file, written as it streams."""
        return self._frames({"op": "parquet", "location": str(location)})


# -- the reader process ---------------------------------------------------------------------


def _answers(request: dict[str, Any]) -> Iterator[bytes]:
    location = Path(request["location"])
    deadline = Deadline(request["timeout"], request["remaining"])
    op = request["op"]
    if op == "page":
        yield tables.page_json(
            location, request["skip"], request["limit"], request["query"], deadline
        )
    elif op == "rows":
        yield tables.all_rows_json(location, deadline)
    elif op == "csv":
        yield from tables.csv_chunks(location)
    elif op == "parquet":
        yield from tables.parquet_chunks(location)
    else:
        raise ValueError(f"unknown request {op!r}")


def _send(connection: socket.socket, kind: bytes, payload: bytes = b"") -> None:
    connection.sendall(HEADER.pack(kind, len(payload)) + payload)


def _serve(connection: socket.socket, request: dict[str, Any]) -> None:
    """Answer one request. Errors are answers too: the reader goes on."""
    try:
        for data in _answers(request):
            for start in range(0, len(data), FRAME_BYTES):
                _send(connection, DATA, data[start : start + FRAME_BYTES])
    except OSError:
        raise  # the socket: the API went away or gave up on this read
    except Exception as exc:
        if isinstance(exc, LOError):
            status, code, message = exc.status_code, exc.code, exc.message
            detail = exc.detail
        else:  # a bug: the user gets a 500 that says so, the server's log the traceback
            traceback.print_exc()
            status, code, detail = 500, "internal", None
            message = f"reading the table failed: {type(exc).__name__}: {exc}"
        error = {"status": status, "code": code, "message": message, "detail": detail}
        _send(connection, ERROR, tables.dumps(error).encode())
        return
    _send(connection, END)


def main(argv: list[str]) -> None:
    """Entry point of a reader process: `python -m learning_orchestra.core.tablereader FD
    PARENT_PID`."""
    fd, parent = int(argv[1]), int(argv[2])
    # Killed when the thread that started it ends: the server's event loop, which lives as
    # long as the server.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the server died before prctl took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C in a terminal is the server's to handle
    connection = socket.socket(fileno=fd)
    with contextlib.suppress(OSError), connection.makefile("rb") as requests:
        for line in requests:  # until the server closes its end
            _serve(connection, json.loads(line))


if __name__ == "__main__":
    main(sys.argv)
