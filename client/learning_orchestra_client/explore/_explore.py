"""`Explore` / `AsyncExplore`: the client of ``explore/{scikitlearn,tensorflow}``.

Method names are those of the original LO client's ``explore._explore.Explore``
(``create_explore_sync``/``_async``, ``search_all_explores``, ``search_explore_image``,
``delete_explore``, ``wait``); their parameters follow the server's body (``modulePath``,
``class``, ``classParameters``, ``method``, ``methodParameters``), which the original client
did not send (docs/client.md). ``search_explore_metadata`` is an addition.
"""

from __future__ import annotations

from typing import Any

from .._service import AsyncService, SyncService, operation
from .._step import StepPlans, call_body
from .._transport import Plan, Request, raise_for_answer


class _Explores(StepPlans):
    @operation
    def create_explore_sync(
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
        on the server, sandboxed, and block until its result and its PNG plot are stored
        as step `name` (`search_explore_image` downloads the PNG).

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

    create_explore_async = create_explore_sync.starting(
        """Start an explore step and return at once (call `wait` to block on it)."""
    )

    search_all_explores = StepPlans.search_all

    @operation
    def search_explore_image(self, name: str) -> Plan[bytes]:
        """The PNG plot of explore step `name` (LO's ``GET /explore/{tool}/{name}``), as
        bytes: ``open("plot.png", "wb").write(...)``, or ``IPython.display.Image(...)``."""
        response = yield Request("GET", self._item_path(name))
        raise_for_answer(response)
        return response.content

    @operation
    def search_explore_metadata(
        self, name: str, limit: int = 10, skip: int = 0, pretty_response: bool = False
    ) -> Plan[Any]:
        """``{"result": [metadata, run record, ...]}`` of an explore step (an addition)."""
        path = f"{self._item_path(name)}/metadata"
        return self._get(path, {"limit": limit, "skip": skip}, pretty_response)

    delete_explore = StepPlans.delete

    wait = StepPlans.wait


class Explore(_Explores, SyncService):
    """Explore steps of one toolkit (blocking client); see `ExploreScikitLearn`."""


class AsyncExplore(_Explores, AsyncService):
    """The asyncio twin of `Explore`: the same methods, to be awaited."""
