"""`TransformDataType`: cast columns of a table to number or string, in place
(LO's ``PATCH /transform/dataType``).

Method names, parameters and return values are those of the original LO client's
``learning_orchestra_client.transform.data_type.TransformDataType``. The asyncio twin
`AsyncTransformDataType` is an addition.
"""

from __future__ import annotations

from typing import Any

from .._step import StepPlans
from .._transport import AsyncService, SyncService, treat


class _DataTypePlans(StepPlans):
    API_PATH = "/transform/dataType"

    @staticmethod
    def _body(dataset_name: str, types: dict[str, str]) -> dict[str, Any]:
        return {"inputDatasetName": dataset_name, "types": dict(types)}


class TransformDataType(_DataTypePlans, SyncService):
    """Change the types of a table's columns (blocking client).

    Example:
        >>> data_type = TransformDataType("http://34.66.75.31")
        >>> data_type.update_dataset_type_sync("titanic", {"Pclass": "string", "Age": "number"})
        {'result': '/api/learningOrchestra/v1/dataset/csv/titanic'}

    Constructor arguments are those of every client class: ``cluster_ip`` plus the
    keyword-only ``token``, ``timeout``, ``long_poll`` and ``client``.
    """

    def update_dataset_type_sync(
        self,
        dataset_name: str,
        types: dict[str, str],
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Any:
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
        body = self._body(dataset_name, types)
        plan = self._send_and_wait("PATCH", self.api_path, body, dataset_name, timeout)
        return treat(self._run(plan), pretty_response)

    def update_dataset_type_async(
        self, dataset_name: str, types: dict[str, str], pretty_response: bool = False
    ) -> Any:
        """Start casting columns and return at once (call `wait` to block on it)."""
        plan = self._send("PATCH", self.api_path, self._body(dataset_name, types))
        return treat(self._run(plan), pretty_response)

    def wait(self, dataset_name: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the cast is over; the table's metadata (see `Observer.wait`)."""
        return self._run(self._wait(dataset_name, timeout))


class AsyncTransformDataType(_DataTypePlans, AsyncService):
    """The asyncio twin of `TransformDataType`: the same methods, to be awaited."""

    async def update_dataset_type_sync(
        self,
        dataset_name: str,
        types: dict[str, str],
        pretty_response: bool = False,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Cast columns and wait until the new table is stored; see `TransformDataType`."""
        body = self._body(dataset_name, types)
        plan = self._send_and_wait("PATCH", self.api_path, body, dataset_name, timeout)
        return treat(await self._run(plan), pretty_response)

    async def update_dataset_type_async(
        self, dataset_name: str, types: dict[str, str], pretty_response: bool = False
    ) -> Any:
        """Start casting columns; see `TransformDataType.update_dataset_type_async`."""
        plan = self._send("PATCH", self.api_path, self._body(dataset_name, types))
        return treat(await self._run(plan), pretty_response)

    async def wait(self, dataset_name: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the cast is over; the table's metadata."""
        return await self._run(self._wait(dataset_name, timeout))
