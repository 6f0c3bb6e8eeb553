"""`Transform` / `AsyncTransform`: the client of ``transform/{scikitlearn,tensorflow}``.

Method names are those of the original LO client's ``transform._transform.Transform``
(``create_transform_sync``/``_async``, ``search_all_transformations``,
``search_transform_content``, ``delete_transform``, ``wait``); their parameters follow the
server's body (``modulePath``, ``class``, ``classParameters``, ``method``,
``methodParameters``), which the original client did not send (docs/client.md).
"""

from __future__ import annotations

from typing import Any

from .._service import AsyncService, SyncService, operation
from .._step import StepPlans, call_body
from .._transport import Plan


class _Transforms(StepPlans):
    @operation
    def create_transform_sync(
        self,
        name: str,
        module_path: str,
        class_name: str,
        class_parameters: dict[str, Any] | None,
        method_name: str,
        method_parameters: dict[str, Any] | None,
        description: str = "",
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Plan[Any]:
        """Run ``module_path.class_name(**class_parameters).method_name(**method_parameters)``
        on the server, sandboxed, and block until its result is stored as step `name`.

        Parameter values may be literals, ``"$step"`` / ``"$step.key"`` (another step's
        output; ``"$split.0"`` for an item of a list output) or ``"#expr"`` (a Python
        expression evaluated in the sandbox). Returns the server's whole answer,
        ``{"result": "<the step's URL path>"}``. Raises `StepFailed` when the call fails
        (``exc.exception`` names a bad class, method or parameter), `InvalidRequest` for a
        module outside the toolkit. `timeout`: overall seconds; None for no limit.
        """
        body = call_body(
            name,
            module_path,
            class_name,
            class_parameters,
            method_name,
            method_parameters,
            description,
        )
        return self._submit(body, name, pretty_response, timeout)

    create_transform_async = create_transform_sync.starting(
        """Start a transform and return at once (call `wait` to block on it)."""
    )

    search_all_transformations = StepPlans.search_all

    search_transform_content = StepPlans.search_content

    delete_transform = StepPlans.delete

    wait = StepPlans.wait


class Transform(_Transforms, SyncService):
    """Transform steps of one toolkit (blocking client); see `TransformScikitLearn`."""


class AsyncTransform(_Transforms, AsyncService):
    """The asyncio twin of `Transform`: the same methods, to be awaited."""
