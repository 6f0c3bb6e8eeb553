"""`Explore` / `AsyncExplore`: the client of ``explore/{scikitlearn,tensorflow}``.

Method names are those of the original LO client's ``explore._explore.Explore``
(``create_explore_sync``/``_async``, ``search_all_explores``, ``search_explore_image``,
``delete_explore``, ``wait``); their parameters follow the server's body (``modulePath``,
``class``, ``classParameters``, ``method``, ``methodParameters``), which the original client
did not send (docs/client.md). ``search_explore_metadata`` is an addition.
"""

from __future__ import annotations

from typing import Any

from .._toolkit import ToolkitCallPlans, call_body
from .._transport import AsyncService, SyncService, treat


class Explore(ToolkitCallPlans, SyncService):
    """Explore steps of one toolkit (blocking client); see `ExploreScikitLearn`."""

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
    ) -> Any:
        """Run ``module_path.class_name(**class_parameters).method_name(**method_parameters)``
        on the server, sandboxed, and block until its result and its PNG plot are stored
        as step `name` (`search_explore_image` downloads the PNG).

        Parameter values may be literals, ``"$step"`` / ``"$step.key"`` (another step's
        output; ``"$split.0"`` for an item of a list output) or ``"#expr"`` (a Python
        expression evaluated in the sandbox). Returns the server's whole answer,
        ``{"result": "<the step's URL path>"}``. Raises `StepFailed` when the call fails
        (``exc.exception`` names a bad class, method or parameter), `InvalidRequest` for a
        module outside the toolkit.
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
        plan = self._send_and_wait("POST", self.api_path, body, name, timeout)
        return treat(self._run(plan), pretty_response)

    def create_explore_async(
        self,
        name: str,
        module_path: str,
        class_name: str,
        class_parameters: dict[str, Any] | None,
        method_name: str,
        method_parameters: dict[str, Any] | None,
        description: str = "",
        pretty_response: bool = False,
    ) -> Any:
        """Start an explore step and return at once (call `wait` to block on it)."""
        body = call_body(
            name,
            module_path,
            class_name,
            class_parameters,
            method_name,
            method_parameters,
            description,
        )
        return treat(self._run(self._send("POST", self.api_path, body)), pretty_response)

    def search_all_explores(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """The metadata of every explore step of this toolkit: ``{"result": [metadata, ...]}``."""
        return treat(self._run(self._search_all(skip, limit)), pretty_response)

    def search_explore_image(self, name: str) -> bytes:
        """The PNG plot of explore step `name` (LO's ``GET /explore/{tool}/{name}``), as
        bytes: ``open("plot.png", "wb").write(...)``, or ``IPython.display.Image(...)``."""
        return self._run(self._image(name))

    def search_explore_metadata(
        self, name: str, limit: int = 10, skip: int = 0, pretty_response: bool = False
    ) -> Any:
        """``{"result": [metadata, run record, ...]}`` of an explore step (an addition)."""
        return treat(self._run(self._metadata_page(name, limit, skip)), pretty_response)

    def delete_explore(self, name: str, pretty_response: bool = False) -> Any:
        """Delete an explore step and its output: ``{"result": "<a one-line message>"}``."""
        return treat(self._run(self._delete(name)), pretty_response)

    def wait(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the explore step is stored; its metadata (see `Observer.wait`)."""
        return self._run(self._wait(name, timeout))


class AsyncExplore(ToolkitCallPlans, AsyncService):
    """The asyncio twin of `Explore`: the same methods, to be awaited."""

    async def create_explore_sync(
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
    ) -> Any:
        """Run the call and wait until its result is stored; see `Explore`."""
        body = call_body(
            name,
            module_path,
            class_name,
            class_parameters,
            method_name,
            method_parameters,
            description,
        )
        plan = self._send_and_wait("POST", self.api_path, body, name, timeout)
        return treat(await self._run(plan), pretty_response)

    async def create_explore_async(
        self,
        name: str,
        module_path: str,
        class_name: str,
        class_parameters: dict[str, Any] | None,
        method_name: str,
        method_parameters: dict[str, Any] | None,
        description: str = "",
        pretty_response: bool = False,
    ) -> Any:
        """Start an explore step; see `Explore.create_explore_async`."""
        body = call_body(
            name,
            module_path,
            class_name,
            class_parameters,
            method_name,
            method_parameters,
            description,
        )
        return treat(await self._run(self._send("POST", self.api_path, body)), pretty_response)

    async def search_all_explores(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """The metadata of every explore step of this toolkit."""
        return treat(await self._run(self._search_all(skip, limit)), pretty_response)

    async def search_explore_image(self, name: str) -> bytes:
        """The PNG plot of explore step `name`, as bytes."""
        return await self._run(self._image(name))

    async def search_explore_metadata(
        self, name: str, limit: int = 10, skip: int = 0, pretty_response: bool = False
    ) -> Any:
        """[metadata, run records] of an explore step."""
        return treat(await self._run(self._metadata_page(name, limit, skip)), pretty_response)

    async def delete_explore(self, name: str, pretty_response: bool = False) -> Any:
        """Delete an explore step and its output."""
        return treat(await self._run(self._delete(name)), pretty_response)

    async def wait(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the explore step is stored; its metadata."""
        return await self._run(self._wait(name, timeout))
