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

from .._service import AsyncService, SyncService, operation
from .._step import StepPlans
from .._transport import Plan


class _Functions(StepPlans):
    API_PATH = "/function/python"

    @operation
    def run_function_sync(
        self,
        name: str,
        parameters: dict[str, Any],
        code: str,
        description: str = "",
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Plan[Any]:
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
        body = {
            "name": name,
            "functionParameters": parameters,
            "function": code,
            "description": description,
        }
        return self._submit(body, name, pretty_response, timeout)

    run_function_async = run_function_sync.starting(
        """Start running `code` and return at once (call `wait` to block on it); arguments
        as in `run_function_sync`."""
    )

    search_all_executions = StepPlans.search_all

    search_execution_content = StepPlans.search_content

    delete_execution_async = StepPlans.delete

    #: A plainer name for `delete_execution_async` (the deletion is immediate).
    delete_execution = delete_execution_async

    wait = StepPlans.wait


class FunctionPython(_Functions, SyncService):
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
    keyword-only ``token``, ``timeout``, ``long_poll``, ``client`` and ``retries``.
    """


class AsyncFunctionPython(_Functions, AsyncService):
    """The asyncio twin of `FunctionPython`: the same methods, to be awaited."""
