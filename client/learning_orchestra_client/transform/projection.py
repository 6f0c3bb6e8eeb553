"""`TransformProjection`: a new table with some columns of a table (``transform/projection``).

Method names, parameters and return values are those of the original LO client's
``learning_orchestra_client.transform.projection.TransformProjection`` (see `_step` for the
return values); the asyncio twin `AsyncTransformProjection` is an addition.
"""

from __future__ import annotations

from typing import Any

from .._service import AsyncService, SyncService, operation
from .._step import StepPlans, table_step_body
from .._transport import Plan


class _Projections(StepPlans):
    API_PATH = "/transform/projection"

    @operation
    def remove_dataset_attributes_sync(
        self,
        dataset_name: str,
        projection_name: str,
        fields: list[str],
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Plan[Any]:
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
        return self._submit(body, projection_name, pretty_response, timeout)

    remove_dataset_attributes_async = remove_dataset_attributes_sync.starting(
        """Start a projection and return at once (call `wait` to block on it); arguments as
        in `remove_dataset_attributes_sync`."""
    )

    search_all_projections = StepPlans.search_all

    @operation
    def search_projection_content(
        self,
        projection_name: str,
        query: dict[str, Any] | str | None = None,
        limit: int = 10,
        skip: int = 0,
        pretty_response: bool = False,
    ) -> Plan[Any]:
        """A page of a projection: ``{"result": [metadata, row, ...]}`` (see
        `DatasetCsv.search_dataset_content` for `query`, `limit` and `skip`)."""
        return self._search_content(projection_name, query, limit, skip, pretty_response)

    @operation
    def delete_projection_async(
        self, projection_name: str, pretty_response: bool = False
    ) -> Plan[Any]:
        """Delete a projection: ``{"result": "<a one-line message>"}``."""
        return self._delete(projection_name, pretty_response)

    #: A plainer name for `delete_projection_async` (the deletion is immediate).
    delete_projection = delete_projection_async

    @operation
    def wait(self, projection_name: str, timeout: float | None = None) -> Plan[dict[str, Any]]:
        """Block until the projection is stored; its metadata (LO's wait: `timeout` is
        the poll interval, see `Observer.wait`)."""
        return self._wait(projection_name, timeout)


class TransformProjection(_Projections, SyncService):
    """Projections: tables holding some columns of another table (blocking client).

    Example:
        >>> projection = TransformProjection("http://34.66.75.31")
        >>> projection.remove_dataset_attributes_sync(
        ...     "titanic", "titanic_projection", ["PassengerId", "Survived", "Age"])
        {'result': '/api/learningOrchestra/v1/transform/projection/titanic_projection'}

    Constructor arguments are those of every client class: ``cluster_ip`` plus the
    keyword-only ``token``, ``timeout``, ``long_poll``, ``client`` and ``retries``.
    """


class AsyncTransformProjection(_Projections, AsyncService):
    """The asyncio twin of `TransformProjection`: the same methods, to be awaited."""
