"""The plans every step type's client class shares: create, list, read a page, delete, wait.

Written once (see `_transport`: plans are driven by the sync and the async services alike);
each step module adds the requests of its own body and LO's method names on top.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from ._transport import BASE_PATH, Plan, Request, answer_of, quote_name
from .observe._plans import wait_plan


def table_step_body(
    input_name: str, output_name: str, names: list[str] | None = None
) -> dict[str, Any]:
    """The body of a step that makes a table from a table (projection, histogram, ...)."""
    body: dict[str, Any] = {"inputDatasetName": input_name, "outputDatasetName": output_name}
    if names is not None:
        body["names"] = list(names)
    return body


class StepPlans:
    """Plans of the operations on the steps of one type, for a sync and an async class."""

    #: Route of the step type, relative to the REST base path (set by subclasses).
    API_PATH: ClassVar[str] = ""

    _api_path: str | None = None
    _long_poll: float

    @property
    def api_path(self) -> str:
        """The route requests go to: `API_PATH`, unless the constructor was given another."""
        return self._api_path or self.API_PATH

    def _set_api_path(self, api_path: str | None) -> None:
        path = api_path or self.API_PATH
        if not path:
            raise ValueError("api_path is required, e.g. '/dataset/csv'")
        if path.startswith(BASE_PATH):  # LO passed the full path
            path = path[len(BASE_PATH) :]
        self._api_path = "/" + path.strip("/")

    def _item_path(self, name: str) -> str:
        return f"{self.api_path}/{quote_name(name)}"

    def _send(self, method: str, path: str, body: dict[str, Any]) -> Plan[dict[str, Any]]:
        """One JSON request; the server's whole answer (`{"result": ...}`)."""
        response = yield Request(method, path, json=body)
        return answer_of(response)

    def _send_and_wait(
        self, method: str, path: str, body: dict[str, Any], name: str, timeout: float | None
    ) -> Plan[dict[str, Any]]:
        """`_send`, then wait until step `name` has finished (StepFailed if it failed)."""
        envelope = yield from self._send(method, path, body)
        yield from wait_plan(name, timeout, self._long_poll)
        return envelope

    def _get(self, path: str, params: dict[str, Any]) -> Plan[dict[str, Any]]:
        response = yield Request("GET", path, params=params)
        return answer_of(response)

    def _search_all(self, skip: int, limit: int | None) -> Plan[dict[str, Any]]:
        params: dict[str, Any] = {"skip": skip}
        if limit is not None:
            params["limit"] = limit
        return self._get(self.api_path, params)

    def _search_content(
        self, name: str, query: dict[str, Any] | str | None, limit: int, skip: int
    ) -> Plan[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, "skip": skip}
        if query:
            params["query"] = query if isinstance(query, str) else json.dumps(query)
        return self._get(self._item_path(name), params)

    def _delete(self, name: str) -> Plan[dict[str, Any]]:
        response = yield Request("DELETE", self._item_path(name))
        return answer_of(response)

    def _wait(self, name: str, timeout: float | None) -> Plan[dict[str, Any]]:
        return wait_plan(name, timeout, self._long_poll)
