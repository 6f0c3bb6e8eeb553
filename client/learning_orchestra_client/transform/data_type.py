"""`TransformDataType`: cast columns of a table to number or string, in place
(LO's ``PATCH /transform/dataType``).

Method names, parameters and return values are those of the original LO client's
``learning_orchestra_client.transform.data_type.TransformDataType``. The asyncio twin
`AsyncTransformDataType` is an addition.
"""

from __future__ import annotations

from typing import Any

from .._service import AsyncService, SyncService, operation
from .._step import StepPlans
from .._transport import Plan


class _DataTypes(StepPlans):
    API_PATH = "/transform/dataType"

    @operation
    def update_dataset_type_sync(
        self,
        dataset_name: str,
        types: dict[str, str],
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Plan[Any]:
        """Cast columns of `dataset_name` and block until the new table is stored.

        Args:
            dataset_name: the table to change (a dataset, projection, ...), changed in place.
            types: ``{column: "number" | "string"}``.
            pretty_response: return the answer as an indented JSON string.
            timeout: overall seconds to wait; None for no limit.

        Returns:
            The server's whole answer to the PATCH, ``{"result": "<the table's URL path>"}``.

        Raises:
            StepFailed: a value could not be cast; ``exc.exception`` names the column, row and
                value. The table keeps its previous content.
            InvalidRequest: a column the table does not have, or a type other than
                ``"number"``/``"string"``.
            Conflict: the table is being computed or cast already.
        """
        body = {"inputDatasetName": dataset_name, "types": dict(types)}
        return self._submit(body, dataset_name, pretty_response, timeout, method="PATCH")

    update_dataset_type_async = update_dataset_type_sync.starting(
        """Start casting columns and return at once (call `wait` to block on it)."""
    )

    @operation
    def wait(self, dataset_name: str, timeout: float | None = None) -> Plan[dict[str, Any]]:
        """Block until the cast is over; the table's metadata (LO's wait: `timeout` is the
        poll interval, see `Observer.wait`)."""
        return self._wait(dataset_name, timeout)


class TransformDataType(_DataTypes, SyncService):
    """Change the types of a table's columns (blocking client).

    Example:
        >>> data_type = TransformDataType("http://34.66.75.31")
        >>> data_type.update_dataset_type_sync("titanic", {"Pclass": "string", "Age": "number"})
        {'result': '/api/learningOrchestra/v1/dataset/csv/titanic'}

    Constructor arguments are those of every client class: ``cluster_ip`` plus the
    keyword-only ``token``, ``timeout``, ``long_poll``, ``client`` and ``retries``.
    """


class AsyncTransformDataType(_DataTypes, AsyncService):
    """The asyncio twin of `TransformDataType`: the same methods, to be awaited."""
