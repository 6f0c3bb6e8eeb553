"""Helpers of the tests that drive the real server over HTTP (fixture `lo_server`): names no
other test uses, creating a step, and waiting for it through observe."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import BASE

OBSERVE = f"{BASE}/observe"
#: Seconds a step may take: the first TensorFlow job may wait for its import.
TIMEOUT = 240


def unique(prefix: str) -> str:
    """A step name no other test of the session's server uses."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def post(client: httpx.Client, route: str, body: dict[str, Any], name: str) -> None:
    """Create step `name` at `route` (a path under the server's root): 201, its path."""
    response = client.post(route, json=body)
    assert response.status_code == 201, response.text
    assert response.json() == {"result": f"{route}/{name}"}


def ended(client: httpx.Client, name: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Long-poll observe until `name` ends; its metadata."""
    response = client.get(f"{OBSERVE}/{name}", params={"timeout": timeout})
    assert response.status_code == 200, response.text
    meta: dict[str, Any] = response.json()["result"]
    assert meta["status"] in ("finished", "failed", "cancelled"), meta
    return meta


def finished(client: httpx.Client, route: str, name: str) -> dict[str, Any]:
    """`name`'s metadata once it ended, which must be a success (else its error and log)."""
    return succeeded(client, route, name, ended(client, name))


def succeeded(client: httpx.Client, route: str, name: str, meta: dict[str, Any]) -> dict[str, Any]:
    """`meta`, the metadata of the ended step `name`, which must be a success: else the test
    fails with its error, traceback and log."""
    if meta["status"] != "finished":
        log = client.get(f"{route}/{name}/logs").json()["result"]
        pytest.fail(f"{name}: {meta['status']}: {meta['exception']}\n{meta['traceback']}\n{log}")
    return meta
