"""Waiting for steps through the observe service, written once for sync and async.

Only the observe service's own routes are used (never the database):

- ``GET /observe/{name}?timeout=S`` answers when the step is finished, failed or cancelled,
  or ``408`` after ``S`` seconds ("not yet");
- ``GET /observe/{name}?since=V&timeout=S`` answers on the next change after version ``V``;
- ``GET /observe/{name}/events`` streams Server-Sent Events.

Long waits are a loop of bounded long-polls, so no single request outlives a gateway's
timeout, until the caller's overall timeout (if any) has passed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._transport import (
    Emit,
    Plan,
    Request,
    StreamPlan,
    answer_of,
    long_poll_seconds,
    quote_name,
    result_of,
)
from ..exceptions import (
    LearningOrchestraError,
    NotFound,
    StepCancelled,
    StepFailed,
    WaitTimeout,
)

#: Statuses after which a step no longer changes by itself.
TERMINAL_STATUSES = frozenset({"finished", "failed", "cancelled"})


def status_of(metadata: dict[str, Any]) -> str:
    """The step's status; documents from LO-era servers only carry the `finished` flag."""
    status = metadata.get("status")
    if isinstance(status, str) and status:
        return status
    return "finished" if metadata.get("finished") else "pending"


def settle(name: str, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """`metadata` when the step finished, None while it has not ended.

    Raises:
        StepFailed: the step failed (its `exception` text is carried).
        StepCancelled: the step was cancelled.
    """
    __tracebackhide__ = True  # IPython shows the caller's frames, not these
    status = status_of(metadata)
    if status == "finished":
        return metadata
    if status == "cancelled":
        raise StepCancelled(name, metadata)
    if status == "failed":
        raise StepFailed(name, metadata)
    return None


def _metadata(result: Any) -> dict[str, Any]:
    """The metadata document in an observe answer's `result`."""
    if isinstance(result, list) and result and isinstance(result[0], dict):
        result = result[0]  # tolerate the `[metadata, ...]` shape of GET /{step}/{tool}/{name}
    if not isinstance(result, dict):
        raise LearningOrchestraError(
            f"unexpected observe answer: expected step metadata, got {type(result).__name__}",
            body=result,
        )
    return result


@dataclass
class Deadline:
    """An overall timeout measured on the monotonic clock; None means no limit."""

    timeout: float | None
    at: float | None = field(init=False)

    def __post_init__(self) -> None:
        if self.timeout is not None and self.timeout < 0:
            raise ValueError("timeout must be None or a number of seconds >= 0")
        self.at = None if self.timeout is None else time.monotonic() + self.timeout

    def remaining(self) -> float | None:
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


def _observe_path(name: str) -> str:
    return f"/observe/{quote_name(name)}"


def wait_plan(name: str, timeout: float | None, long_poll: float) -> Plan[dict[str, Any]]:
    """Wait until step `name` ends; return its metadata when it finished.

    A ``408`` answer means "not yet": the plan polls again until `timeout` has passed.

    Raises:
        StepFailed / StepCancelled: the step ended failed / cancelled.
        WaitTimeout: `timeout` seconds passed first.
        NotFound: there is no step named `name`.
    """
    __tracebackhide__ = True  # IPython shows the caller's frames, not these
    deadline = Deadline(timeout)
    last: dict[str, Any] | None = None
    while True:
        seconds = long_poll_seconds(deadline.remaining(), long_poll)
        response = yield Request(
            "GET", _observe_path(name), params={"timeout": seconds}, read_timeout=seconds
        )
        if response.status_code != 408:
            last = _metadata(result_of(response))
            finished = settle(name, last)
            if finished is not None:
                return finished
        if deadline.passed():
            raise WaitTimeout(name, timeout or 0.0, last)


def _observe_once(
    name: str, since: int, deadline: Deadline, long_poll: float
) -> Plan[dict[str, Any]]:
    """The step's metadata at its first version after `since` (loops over 408s)."""
    while True:
        seconds = long_poll_seconds(deadline.remaining(), long_poll)
        response = yield Request(
            "GET",
            _observe_path(name),
            params={"since": since, "timeout": seconds},
            read_timeout=seconds,
        )
        if response.status_code != 408:
            return _metadata(result_of(response))
        if deadline.passed():
            raise WaitTimeout(name, deadline.timeout or 0.0, waiting_for="change")


def observe_plan(
    name: str, since: int, timeout: float | None, long_poll: float
) -> Plan[dict[str, Any]]:
    """Return the step's metadata as soon as its `version` is greater than `since`."""
    return _observe_once(name, since, Deadline(timeout), long_poll)


def observe_pipe_plan(
    name: str, timeout: float | None, long_poll: float
) -> StreamPlan[dict[str, Any]]:
    """Emit the step's metadata now and after every change, until it ends."""
    deadline = Deadline(timeout)
    since = 0
    while True:
        metadata = yield from _observe_once(name, since, deadline, long_poll)
        yield Emit(metadata)
        if status_of(metadata) in TERMINAL_STATUSES:
            return
        version = metadata.get("version")
        if not isinstance(version, int) or version <= since:
            raise LearningOrchestraError(
                f"step '{name}': the observe service answered without a newer `version` "
                f"(got {version!r} after {since}), so changes cannot be followed",
                body=metadata,
            )
        since = version


def events_request(name: str) -> Request:
    """The Server-Sent Events stream of step `name` (``"*"`` for every step)."""
    return Request("GET", f"{_observe_path(name)}/events")


@dataclass
class SSEDecoder:
    """Incremental parser of a ``text/event-stream``, fed one line at a time.

    Only `data` matters to the client: an event's data lines are joined and parsed as
    JSON (the raw text is kept when it is not JSON). Comments (keep-alives) and events
    without data are skipped.
    """

    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> tuple[bool, Any]:
        """Feed one line (without its end-of-line); ``(True, data)`` when an event ends."""
        line = line.rstrip("\r\n")
        if not line:
            if not self._data:
                return False, None
            text = "\n".join(self._data)
            self._data.clear()
            try:
                return True, json.loads(text)
            except ValueError:
                return True, text
        if line.startswith(":"):
            return False, None
        key, _, value = line.partition(":")
        if key == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return False, None

    def flush(self) -> tuple[bool, Any]:
        """End of stream: the last event, if its data was not followed by a blank line."""
        return self.feed("")


def follow_plan(
    names: list[str],
    timeout: float | None,
    long_poll: float,
    on_change: Callable[[dict[str, Any]], None] | None = None,
) -> Plan[dict[str, dict[str, Any]]]:
    """Wait until every step of `names` has finished, over the change feed of every step
    (``GET /observe?since=CURSOR``): one long-poll at a time, however many steps.

    `on_change` sees each step's metadata as it is now and after every change (progress
    included). Returns ``{name: final metadata}``.

    Raises:
        StepFailed / StepCancelled: the first of the steps to end did not finish.
        NotFound: a step does not exist, or was deleted meanwhile.
        WaitTimeout: `timeout` seconds passed first (it names a step still running).
    """
    __tracebackhide__ = True  # IPython shows the caller's frames, not these
    deadline = Deadline(timeout)
    done: dict[str, dict[str, Any]] = {}
    last: dict[str, dict[str, Any]] = {}
    while True:  # (re)start: where the feed is now, then each step's current state
        start = yield Request("GET", "/observe")
        cursor = answer_of(start)["cursor"]
        for name in names:
            if name not in done:
                response = yield Request("GET", f"/steps/{quote_name(name)}")
                _note(name, result_of(response), done, last, on_change)
        while len(done) < len(names):
            if deadline.passed():
                waiting = next(name for name in names if name not in done)
                raise WaitTimeout(waiting, timeout or 0.0, last.get(waiting))
            seconds = long_poll_seconds(deadline.remaining(), long_poll)
            response = yield Request(
                "GET",
                "/observe",
                params={"since": cursor, "timeout": seconds},
                read_timeout=seconds,
            )
            if response.status_code == 410:  # the cursor is too old: start again
                break
            answer = answer_of(response)
            for change in answer["result"]:
                name = change.get("name")
                if name in last and name not in done:
                    if change.get("deleted"):
                        raise NotFound(f"step '{name}' was deleted while it was waited for")
                    _note(name, change, done, last, on_change)
            cursor = answer["cursor"]
        else:
            return done


def _note(
    name: str,
    metadata: dict[str, Any],
    done: dict[str, dict[str, Any]],
    last: dict[str, dict[str, Any]],
    on_change: Callable[[dict[str, Any]], None] | None,
) -> None:
    """Record the metadata of a followed step; raise if it ended without finishing."""
    __tracebackhide__ = True  # IPython shows the caller's frames, not these
    last[name] = metadata
    if on_change is not None:
        on_change(metadata)
    if settle(name, metadata) is not None:
        done[name] = metadata
