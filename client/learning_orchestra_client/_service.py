"""One declaration, two classes: how the sync and the asyncio client classes are made.

A client operation is written once, as a method of a *declaration* class decorated with
`operation`: its signature and docstring are the public method's, and its body returns a
*plan* (see `_transport`) — the HTTP requests it needs and what it makes of the answers.
The blocking class (`SyncService` or `SyncDriver` among its bases) and the asyncio class
(`AsyncService` / `AsyncDriver`) both inherit the declaration; when either is defined, every
`operation` becomes a real method of it that drives the plan over ``httpx.Client`` or
``httpx.AsyncClient``::

    class _Projections(StepPlans):              # the family, declared once
        @operation
        def delete_projection(self, projection_name: str, pretty_response: bool = False
                              ) -> Plan[Any]:
            '''Delete a projection.'''
            return self._delete(projection_name, pretty_response)

    class TransformProjection(_Projections, SyncService): ...       # blocking
    class AsyncTransformProjection(_Projections, AsyncService): ... # awaitable

`help()` and `inspect.signature` see each method's real parameters and docstring, and type
checkers see them too: an `Operation` read from a blocking object is typed as the
declaration's parameters returning the plan's result, from an asyncio object as the same
parameters returning an awaitable of it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from ._transport import (
    DEFAULT_LONG_POLL,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    AsyncTransport,
    Emit,
    Plan,
    StreamPlan,
    SyncTransport,
    normalize_cluster_url,
)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

#: Passed as `timeout` to a waiting declaration by its `starting()` variant: submit only.
START_ONLY: Any = object()


class SyncDriver:
    """Runs plans over a blocking transport (`_transport` is set by the subclass)."""

    _transport: SyncTransport

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _derive(cls, asynchronous=False)

    def _run(self, plan: Plan[T]) -> T:
        """Drive `plan` to completion, sending each request it yields."""
        __tracebackhide__ = True  # IPython: show the caller's frames, not this loop
        try:
            request = next(plan)
            while True:
                request = plan.send(self._transport.send(request))
        except StopIteration as stop:
            return stop.value
        finally:
            plan.close()

    def _iterate(self, plan: StreamPlan[T]) -> Iterator[T]:
        """Drive a streaming plan, yielding what it emits."""
        try:
            item = next(plan)
            while True:
                if isinstance(item, Emit):
                    yield item.value
                    item = plan.send(None)
                else:
                    item = plan.send(self._transport.send(item))
        except StopIteration:
            return
        finally:
            plan.close()


class AsyncDriver:
    """Runs plans over an asyncio transport (`_transport` is set by the subclass)."""

    _transport: AsyncTransport

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _derive(cls, asynchronous=True)

    async def _run(self, plan: Plan[T]) -> T:
        """Drive `plan` to completion, sending each request it yields."""
        __tracebackhide__ = True
        try:
            request = next(plan)
            while True:
                request = plan.send(await self._transport.send(request))
        except StopIteration as stop:
            return stop.value
        finally:
            plan.close()

    async def _iterate(self, plan: StreamPlan[T]) -> AsyncIterator[T]:
        """Drive a streaming plan, yielding what it emits."""
        try:
            item = next(plan)
            while True:
                if isinstance(item, Emit):
                    yield item.value
                    item = plan.send(None)
                else:
                    item = plan.send(await self._transport.send(item))
        except StopIteration:
            return
        finally:
            plan.close()


class Operation(Generic[P, R]):
    """A client method declared once for the blocking and the asyncio class (see module doc).

    `declaration` takes the client object and the public arguments and returns the plan.
    """

    def __init__(self, declaration: Callable[Concatenate[Any, P], Plan[R]]) -> None:
        self.declaration = declaration
        self.signature = inspect.signature(declaration)
        self.module = declaration.__module__
        self.__doc__ = declaration.__doc__

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: SyncDriver, owner: type) -> Callable[P, R]: ...
    @overload
    def __get__(self, obj: AsyncDriver, owner: type) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(self, obj: Any, owner: type) -> Any:
        # Only reached on a declaration class itself: SyncDriver and AsyncDriver subclasses
        # carry real methods instead (`_derive`).
        return self

    def starting(self, doc: str) -> Operation[P, R]:
        """The variant that returns once the server accepted the step (LO's ``*_async``
        methods), documented by `doc`: the declaration is called with
        ``timeout=START_ONLY``, and its public signature loses `timeout`."""
        declaration = self.declaration

        def start(client: Any, /, *args: Any, **kwargs: Any) -> Plan[R]:
            return declaration(client, *args, timeout=START_ONLY, **kwargs)

        variant: Operation[P, R] = Operation(start)
        variant.__doc__ = doc
        variant.module = self.module
        variant.signature = self.signature.replace(
            parameters=[p for p in self.signature.parameters.values() if p.name != "timeout"]
        )
        return variant

    def method(self, name: str, *, asynchronous: bool) -> Callable[..., Any]:
        """This operation as a method named `name` of a blocking or an asyncio class."""
        declaration, signature = self.declaration, self.signature

        async def awaitable(client: Any, /, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            signature.bind(client, *args, **kwargs)  # a TypeError names a wrong argument
            return await client._run(declaration(client, *args, **kwargs))

        def blocking(client: Any, /, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            signature.bind(client, *args, **kwargs)
            return client._run(declaration(client, *args, **kwargs))

        method: Callable[..., Any] = awaitable if asynchronous else blocking
        method.__name__ = name
        method.__qualname__ = name
        method.__doc__ = self.__doc__
        method.__module__ = self.module
        method.__signature__ = signature.replace(  # type: ignore[attr-defined]
            return_annotation=_result_annotation(signature.return_annotation)
        )
        return method


def operation(declaration: Callable[Concatenate[Any, P], Plan[R]]) -> Operation[P, R]:
    """Declare a client method once, for the blocking and the asyncio class (module doc)."""
    return Operation(declaration)


def _result_annotation(annotation: Any) -> Any:
    """``"Plan[X]"`` (what a declaration returns) → ``"X"`` (what the public method returns)."""
    if isinstance(annotation, str):
        match = re.fullmatch(r"Plan\[(.*)\]", annotation)
        if match:
            return match.group(1)
    return annotation


def _derive(cls: type, *, asynchronous: bool) -> None:
    """Give `cls` a real method for every `Operation` it inherits from a declaration."""
    for name in dir(cls):
        found = inspect.getattr_static(cls, name)
        if isinstance(found, Operation):
            setattr(cls, name, found.method(name, asynchronous=asynchronous))


class _Service:
    """What the blocking and the asyncio client classes share: the cluster's address, the
    options, the transport (of `_transport_class`).

    Args:
        cluster_ip: address of the Learning Orchestra gateway or embedded server, e.g.
            ``"http://34.66.75.31"``, ``"localhost:8080"``, ``"10.0.0.5"``
            (see `normalize_cluster_url`).
        token: bearer token, sent as ``Authorization: Bearer <token>`` when given.
        timeout: seconds an ordinary request may take; None for no limit.
        long_poll: longest single long-poll, in seconds, that waits send (they loop).
        client: an `httpx.Client` (`httpx.AsyncClient` for the asyncio classes) to send
            requests with, e.g. to share connections or to configure proxies/TLS; the
            caller keeps ownership and closes it.
        retries: how many times a request is retried when the connection cannot be made
            (not when the server answered); only used when `client` is not given.
    """

    _transport_class: type[SyncTransport] | type[AsyncTransport]

    def __init__(
        self,
        cluster_ip: str,
        *,
        token: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        long_poll: float = DEFAULT_LONG_POLL,
        client: Any = None,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        self.cluster_url = normalize_cluster_url(cluster_ip)
        if not long_poll > 0:
            raise ValueError("long_poll must be a positive number of seconds")
        self._long_poll = float(long_poll)
        self._transport = self._transport_class(self.cluster_url, token, timeout, client, retries)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cluster_url!r})"


class SyncService(_Service, SyncDriver):
    """Base of the blocking client classes (``httpx.Client``); options as `_Service`'s."""

    _transport_class = SyncTransport
    _transport: SyncTransport

    def close(self) -> None:
        """Close the connections this object opened (not a client passed in)."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncService(_Service, AsyncDriver):
    """Base of the asyncio client classes (``httpx.AsyncClient``); options as `_Service`'s."""

    _transport_class = AsyncTransport
    _transport: AsyncTransport

    async def aclose(self) -> None:
        """Close the connections this object opened (not a client passed in)."""
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
