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

from .._service import AsyncService, SyncService
from .._step import CodeStepPlans


class _Functions(CodeStepPlans):
    API_PATH = "/function/python"

    run_function_sync = CodeStepPlans.run_sync
    run_function_async = CodeStepPlans.run_async


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
