"""`TransformProjection`: a new table with some columns of a table (``transform/projection``).

Method names, parameters and return values are those of the original LO client's
``learning_orchestra_client.transform.projection.TransformProjection``; a method that returns
the server's answer returns the whole parsed JSON object (``{"result": ...}``), or with
``pretty_response=True`` that object as an indented JSON string. The asyncio twin
`AsyncTransformProjection` is an addition.
"""

from __future__ import annotations

from typing import Any

from .._step import StepPlans, table_step_body
from .._transport import AsyncService, SyncService, treat


class _ProjectionPlans(StepPlans):
    API_PATH = "/transform/projection"


class TransformProjection(_ProjectionPlans, SyncService):
    """Projections: tables holding some columns of another table (blocking client).

    Example:
        >>> projection = TransformProjection("http://34.66.75.31")
        >>> projection.remove_dataset_attributes_sync(
        ...     "titanic", "titanic_projection", ["PassengerId", "Survived", "Age"])
        {'result': '/api/learningOrchestra/v1/transform/projection/titanic_projection'}

    Constructor arguments are those of every client class: ``cluster_ip`` plus the
    keyword-only ``token``, ``timeout``, ``long_poll`` and ``client``.
    """

    def remove_dataset_attributes_sync(
        self,
        dataset_name: str,
        projection_name: str,
        fields: list[str],
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Create a projection of `dataset_name` keeping `fields`, and block until it is stored.

        Args:
            dataset_name: the input table (a dataset or any step whose output is a table).
            projection_name: name of the new table.
            fields: the columns to keep, in this order.
            pretty_response: return the answer as an indented JSON string.
            timeout: overall seconds to wait; None for no limit.

        Returns:
            The server's whole answer to the POST, ``{"result": "<the projection's URL path>"}``.

        Raises:
            StepFailed: the projection failed (``exc.exception`` says why).
            InvalidRequest: e.g. a column the dataset does not have (the message lists them).
        """
        body = table_step_body(dataset_name, projection_name, fields)
        plan = self._send_and_wait("POST", self.api_path, body, projection_name, timeout)
        return treat(self._run(plan), pretty_response)

    def remove_dataset_attributes_async(
        self,
        dataset_name: str,
        projection_name: str,
        fields: list[str],
        pretty_response: bool = False,
    ) -> Any:
        """Start a projection and return at once (call `wait` to block on it)."""
        body = table_step_body(dataset_name, projection_name, fields)
        plan = self._send("POST", self.api_path, body)
        return treat(self._run(plan), pretty_response)

    def search_all_projections(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """The metadata of every projection: ``{"result": [metadata, ...]}``."""
        return treat(self._run(self._search_all(skip, limit)), pretty_response)

    def search_projection_content(
        self,
        projection_name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Any:
        """A page of a projection: ``{"result": [metadata, row, ...]}`` (see
        `DatasetCsv.search_dataset_content` for `query`, `limit` and `skip`)."""
        plan = self._search_content(projection_name, query, limit, skip)
        return treat(self._run(plan), pretty_response)

    def delete_projection_async(self, projection_name: str, pretty_response: bool = False) -> Any:
        """Delete a projection: ``{"result": "<a one-line message>"}``."""
        return treat(self._run(self._delete(projection_name)), pretty_response)

    #: A plainer name for `delete_projection_async` (the deletion is immediate).
    delete_projection = delete_projection_async

    def wait(self, projection_name: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the projection is stored; its metadata (see `Observer.wait`)."""
        return self._run(self._wait(projection_name, timeout))


class AsyncTransformProjection(_ProjectionPlans, AsyncService):
    """The asyncio twin of `TransformProjection`: the same methods, to be awaited."""

    async def remove_dataset_attributes_sync(
        self,
        dataset_name: str,
        projection_name: str,
        fields: list[str],
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Create a projection and wait until it is stored; see `TransformProjection`."""
        body = table_step_body(dataset_name, projection_name, fields)
        plan = self._send_and_wait("POST", self.api_path, body, projection_name, timeout)
        return treat(await self._run(plan), pretty_response)

    async def remove_dataset_attributes_async(
        self,
        dataset_name: str,
        projection_name: str,
        fields: list[str],
        pretty_response: bool = False,
    ) -> Any:
        """Start a projection; see `TransformProjection.remove_dataset_attributes_async`."""
        body = table_step_body(dataset_name, projection_name, fields)
        plan = self._send("POST", self.api_path, body)
        return treat(await self._run(plan), pretty_response)

    async def search_all_projections(
        self, pretty_response: bool = False, skip: int = 0, limit: int | None = None
    ) -> Any:
        """The metadata of every projection."""
        return treat(await self._run(self._search_all(skip, limit)), pretty_response)

    async def search_projection_content(
        self,
        projection_name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Any:
        """A page of a projection; see `TransformProjection.search_projection_content`."""
        plan = self._search_content(projection_name, query, limit, skip)
        return treat(await self._run(plan), pretty_response)

    async def delete_projection_async(
        self, projection_name: str, pretty_response: bool = False
    ) -> Any:
        """Delete a projection."""
        return treat(await self._run(self._delete(projection_name)), pretty_response)

    delete_projection = delete_projection_async

    async def wait(self, projection_name: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the projection is stored; its metadata."""
        return await self._run(self._wait(projection_name, timeout))
