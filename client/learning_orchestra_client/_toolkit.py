"""What the toolkit steps' client classes share (transform/explore x scikitlearn/tensorflow):
the body of a toolkit call and the request of an explore step's PNG."""

from __future__ import annotations

from typing import Any

from ._step import StepPlans
from ._transport import Plan, Request, raise_for_answer


def call_body(
    name: str,
    module_path: str,
    class_name: str,
    class_parameters: dict[str, Any] | None,
    method_name: str,
    method_parameters: dict[str, Any] | None,
    description: str,
) -> dict[str, Any]:
    """`modulePath.class(**classParameters).method(**methodParameters)`, named `name`."""
    return {
        "name": name,
        "modulePath": module_path,
        "class": class_name,
        "classParameters": dict(class_parameters or {}),
        "method": method_name,
        "methodParameters": dict(method_parameters or {}),
        "description": description,
    }


class ToolkitCallPlans(StepPlans):
    """Plans of transform/{tool} and explore/{tool} steps."""

    def _image(self, name: str) -> Plan[bytes]:
        """The PNG of explore step `name` (LO's ``GET /explore/{tool}/{name}``)."""
        response = yield Request("GET", self._item_path(name))
        raise_for_answer(response)
        return response.content

    def _metadata_page(self, name: str, limit: int, skip: int) -> Plan[dict[str, Any]]:
        """``GET .../{name}/metadata``: [metadata, run records] of an explore step."""
        return self._get(f"{self._item_path(name)}/metadata", {"limit": limit, "skip": skip})
