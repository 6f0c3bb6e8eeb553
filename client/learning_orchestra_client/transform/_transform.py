"""`Transform` / `AsyncTransform`: the client of ``transform/{scikitlearn,tensorflow}``.

Method names are those of the original LO client's ``transform._transform.Transform``
(``create_transform_sync``/``_async``, ``search_all_transformations``,
``search_transform_content``, ``delete_transform``, ``wait``); their parameters follow the
server's body (``modulePath``, ``class``, ``classParameters``, ``method``,
``methodParameters``), which the original client did not send (docs/client.md).
"""

from __future__ import annotations

from typing import Any

from .._toolkit import ToolkitCallPlans, call_body
from .._transport import AsyncService, SyncService, treat


class Transform(ToolkitCallPlans, SyncService):
    """Transform steps of one toolkit (blocking client); see `TransformScikitLearn`."""

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
    ) -> Any:
        """Run ``module_path.class_name(**class_parameters).method_name(**method_parameters)``
        on the server, sandboxed, and block until its result is stored as step `name`.

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

    def create_transform_async(
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
        """Start a transform and return at once (call `wait` to block on it)."""
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

    def search_all_transformations(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """The metadata of every transform of this toolkit: ``{"result": [metadata, ...]}``."""
        return treat(self._run(self._search_all(skip, limit)), pretty_response)

    def search_transform_content(
        self,
        name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Any:
        """``{"result": [metadata, run record, ...]}`` of a transform (newest run first)."""
        return treat(self._run(self._search_content(name, query, limit, skip)), pretty_response)

    def delete_transform(self, name: str, pretty_response: bool = False) -> Any:
        """Delete a transform and its output: ``{"result": "<a one-line message>"}``."""
        return treat(self._run(self._delete(name)), pretty_response)

    def wait(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the transform is stored; its metadata (see `Observer.wait`)."""
        return self._run(self._wait(name, timeout))


class AsyncTransform(ToolkitCallPlans, AsyncService):
    """The asyncio twin of `Transform`: the same methods, to be awaited."""

    async def create_transform_sync(
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
        """Run the call and wait until its result is stored; see `Transform`."""
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

    async def create_transform_async(
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
        """Start a transform; see `Transform.create_transform_async`."""
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

    async def search_all_transformations(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """The metadata of every transform of this toolkit."""
        return treat(await self._run(self._search_all(skip, limit)), pretty_response)

    async def search_transform_content(
        self,
        name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Any:
        """[metadata, run records] of a transform; see `Transform.search_transform_content`."""
        plan = self._search_content(name, query, limit, skip)
        return treat(await self._run(plan), pretty_response)

    async def delete_transform(self, name: str, pretty_response: bool = False) -> Any:
        """Delete a transform and its output."""
        return treat(await self._run(self._delete(name)), pretty_response)

    async def wait(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the transform is stored; its metadata."""
        return await self._run(self._wait(name, timeout))
