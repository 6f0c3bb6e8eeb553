"""`FunctionPython`: Python code run by the server, sandboxed (``function/python``).

Method names, parameters and return values are those of the original LO client's
``learning_orchestra_client.function.python.FunctionPython``; a method that returns the
server's answer returns the whole parsed JSON object (``{"result": ...}``), or with
``pretty_response=True`` that object as an indented JSON string. The `timeout` of
`run_function_sync`, `delete_execution` and the asyncio twin `AsyncFunctionPython` are
additions.

The code runs with each of `parameters` bound as a variable and must assign ``response``,
the step's output. A parameter value may be ``"$name"`` (another step's output, e.g. a
dataset as a pandas DataFrame), ``"$name.key"`` (an item of a dict output) or ``"#expr"``
(a Python expression, evaluated by the server's sandbox with ``np``, ``pd`` and the ML
toolkits available). What the code prints is kept per run as ``functionMessage``.
"""

from __future__ import annotations

from typing import Any

from .._step import StepPlans
from .._transport import AsyncService, SyncService, treat

_NAME = "name"
_CODE = "function"
_PARAMETERS = "functionParameters"
_DESCRIPTION = "description"


def _body(name: str, parameters: dict[str, Any], code: str, description: str) -> dict[str, Any]:
    return {_NAME: name, _PARAMETERS: parameters, _CODE: code, _DESCRIPTION: description}


class _FunctionPlans(StepPlans):
    API_PATH = "/function/python"


class FunctionPython(_FunctionPlans, SyncService):
    """Python functions run by the server (blocking client).

    Example:
        >>> function = FunctionPython("http://34.66.75.31")
        >>> function.run_function_sync(
        ...     "survivors",
        ...     parameters={"frame": "$titanic"},
        ...     code="print(len(frame))\\nresponse = frame[frame['Survived'] == 1]",
        ... )
        {'result': '/api/learningOrchestra/v1/function/python/survivors'}

    Constructor arguments are those of every client class: ``cluster_ip`` plus the
    keyword-only ``token``, ``timeout``, ``long_poll`` and ``client``.
    """

    def run_function_sync(
        self,
        name: str,
        parameters: dict[str, Any],
        code: str,
        description: str = "",
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Run `code` and block until it has ended.

        Args:
            name: name of the step and of its output (letters, digits, ``_`` and ``-``).
            parameters: the code's variables, ``{name: value}``; values may be ``"$step"``,
                ``"$step.key"`` or ``"#expression"`` (see the module's docstring).
            code: Python source that assigns ``response``.
            description: free text kept with the step.
            pretty_response: return the answer as an indented JSON string.
            timeout: overall seconds to wait; None for no limit.

        Returns:
            The server's whole answer to the POST, ``{"result": "<the step's URL path>"}``.

        Raises:
            StepFailed: the code failed: ``exc.exception`` says why (e.g. the error and its
                line), ``exc.traceback`` shows where in the code.
            InvalidRequest: e.g. a parameter name that is not a Python variable name, or a
                ``$reference`` to a step that does not exist.
        """
        body = _body(name, parameters, code, description)
        plan = self._send_and_wait("POST", self.api_path, body, name, timeout)
        return treat(self._run(plan), pretty_response)

    def run_function_async(
        self,
        name: str,
        parameters: dict[str, Any],
        code: str,
        description: str = "",
        pretty_response: bool = False,
    ) -> Any:
        """Start running `code` and return at once (call `wait` to block on it); arguments
        as in `run_function_sync`."""
        plan = self._send("POST", self.api_path, _body(name, parameters, code, description))
        return treat(self._run(plan), pretty_response)

    def search_all_executions(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """The metadata of every function step: ``{"result": [metadata, ...]}``."""
        return treat(self._run(self._search_all(skip, limit)), pretty_response)

    def search_execution_content(
        self,
        name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Any:
        """The step's metadata, then its run records, newest first:
        ``{"result": [metadata, run, ...]}``. A run record holds ``functionMessage`` (what
        the code printed), ``exception``, ``traceback`` and the ``parameters`` of that run;
        ``skip=1, limit=1`` is the latest run. `query` filters table rows only, so leave it
        empty here (LO sent ``{}``)."""
        plan = self._search_content(name, query, limit, skip)
        return treat(self._run(plan), pretty_response)

    def delete_execution_async(self, name: str, pretty_response: bool = False) -> Any:
        """Delete the step and its output (cancelling it if it runs):
        ``{"result": "<a one-line message>"}``."""
        return treat(self._run(self._delete(name)), pretty_response)

    #: A plainer name for `delete_execution_async` (the deletion is immediate).
    delete_execution = delete_execution_async

    def wait(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the step has ended; its metadata (see `Observer.wait`)."""
        return self._run(self._wait(name, timeout))


class AsyncFunctionPython(_FunctionPlans, AsyncService):
    """The asyncio twin of `FunctionPython`: the same methods, to be awaited."""

    async def run_function_sync(
        self,
        name: str,
        parameters: dict[str, Any],
        code: str,
        description: str = "",
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Run `code` and wait until it has ended; see `FunctionPython.run_function_sync`."""
        body = _body(name, parameters, code, description)
        plan = self._send_and_wait("POST", self.api_path, body, name, timeout)
        return treat(await self._run(plan), pretty_response)

    async def run_function_async(
        self,
        name: str,
        parameters: dict[str, Any],
        code: str,
        description: str = "",
        pretty_response: bool = False,
    ) -> Any:
        """Start running `code`; see `FunctionPython.run_function_async`."""
        plan = self._send("POST", self.api_path, _body(name, parameters, code, description))
        return treat(await self._run(plan), pretty_response)

    async def search_all_executions(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """The metadata of every function step."""
        return treat(await self._run(self._search_all(skip, limit)), pretty_response)

    async def search_execution_content(
        self,
        name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Any:
        """The step's metadata and run records; see `FunctionPython.search_execution_content`."""
        plan = self._search_content(name, query, limit, skip)
        return treat(await self._run(plan), pretty_response)

    async def delete_execution_async(self, name: str, pretty_response: bool = False) -> Any:
        """Delete the step and its output."""
        return treat(await self._run(self._delete(name)), pretty_response)

    delete_execution = delete_execution_async

    async def wait(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the step has ended; its metadata."""
        return await self._run(self._wait(name, timeout))
