"""`Observer`: wait for steps and follow their progress (LO's ``observe.observe`` module).

The original client opened a MongoDB change stream itself; this one only speaks to the
observe service's REST routes, so it works through the gateway and with a token.

Return values: unlike the dataset methods, which return the server's whole answer
(``{"result": ...}``), every method here returns (or yields) the step's *metadata* dict
itself, the document inside the answer's `result`. That is what LO's ``Observer.wait``
returned (the step's metadata document from MongoDB), so ``observer.wait(name)["finished"]``
works as it did.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from .._service import AsyncService, SyncService, operation
from .._transport import Plan
from ._plans import SSEDecoder, events_request, observe_pipe_plan, observe_plan, wait_plan


def _pretty(metadata: dict[str, Any], pretty_response: bool) -> Any:
    return json.dumps(metadata, indent=4, sort_keys=True) if pretty_response else metadata


class _Observations:
    """What `Observer` and `AsyncObserver` do, declared once."""

    _long_poll: float

    @operation
    def wait(
        self, name: str, timeout: float | None = None, pretty_response: bool = False
    ) -> Plan[Any]:
        """Block until step `name` ends and return its metadata when it finished.

        As LO's change-stream wait did, this waits as long as the step takes: `timeout`
        is how long each poll lasts (None: the client's `long_poll`), not a limit. For a
        deadline, use `Orchestra.step(name).wait(timeout=...)`.

        Args:
            name: the step's name (a dataset, model, training, ...).
            timeout: seconds each poll lasts.
            pretty_response: return the metadata as an indented JSON string.

        Returns:
            The step's metadata dict (``status``, ``finished``, ``exception``, ``version``,
            ...), as LO's ``Observer.wait`` returned it: the document itself, not wrapped
            in ``{"result": ...}``. With `pretty_response`, that dict as a JSON string.

        Raises:
            StepFailed: the step failed; ``exc.exception`` is the server's reason.
            StepCancelled: the step was cancelled.
            NotFound: no step has that name.
        """
        metadata = yield from wait_plan(name, None, timeout or self._long_poll)
        return _pretty(metadata, pretty_response)

    @operation
    def observe(
        self, name: str, since: int = 0, timeout: float | None = None
    ) -> Plan[dict[str, Any]]:
        """Return step `name`'s metadata once its `version` is greater than `since`.

        With the default ``since=0`` this answers at once with the current metadata; pass
        the `version` of the last metadata you saw to block until the next change (status
        or progress).

        Raises:
            WaitTimeout: no newer version appeared within `timeout` seconds.
            NotFound: no step has that name.
        """
        return observe_plan(name, since, timeout, self._long_poll)


class Observer(_Observations, SyncService):
    """Wait for any step (dataset, transform, train, ...) by name.

    Example:
        >>> observer = Observer("http://34.66.75.31")
        >>> metadata = observer.wait("titanic_training")
        >>> metadata["status"]
        'finished'

    Constructor arguments are those of every client class: ``cluster_ip`` plus the
    keyword-only ``token``, ``timeout``, ``long_poll``, ``client`` and ``retries`` (see
    `SyncService`).
    """

    def observe_pipe(self, name: str, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Iterate over step `name`'s metadata: now, then after every change, until it ends.

        The last item is the metadata in its final state (finished, failed or cancelled);
        a failed step does not raise here — look at ``item["status"]``.

        Args:
            timeout: overall limit in seconds for the whole iteration; None for no limit.

        Raises:
            WaitTimeout: `timeout` passed before the step ended.
        """
        return self._iterate(observe_pipe_plan(name, timeout, self._long_poll))

    def events(self, name: str = "*") -> Iterator[Any]:
        """Iterate over the Server-Sent Events of step `name` (``"*"``: every step).

        Each item is an event's data, parsed from JSON (the step's metadata). The stream
        ends when the server closes it (after a terminal state of a single step). This
        route is meant for direct access to the server: gateways that do not stream
        (KrakenD CE) cannot forward it; use `observe_pipe` there.
        """
        decoder = SSEDecoder()
        for line in self._transport.stream_lines(events_request(name)):
            ready, data = decoder.feed(line)
            if ready:
                yield data
        ready, data = decoder.flush()
        if ready:
            yield data


class AsyncObserver(_Observations, AsyncService):
    """The asyncio twin of `Observer`: same methods, awaited (iterators are async)."""

    def observe_pipe(
        self, name: str, timeout: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Async iterator over step `name`'s metadata changes; see `Observer.observe_pipe`."""
        return self._iterate(observe_pipe_plan(name, timeout, self._long_poll))

    async def events(self, name: str = "*") -> AsyncIterator[Any]:
        """Async iterator over Server-Sent Events; see `Observer.events`."""
        decoder = SSEDecoder()
        async for line in self._transport.stream_lines(events_request(name)):
            ready, data = decoder.feed(line)
            if ready:
                yield data
        ready, data = decoder.flush()
        if ready:
            yield data
