"""Schemathesis against the real embedded server: no 5xx, every 4xx LO's error envelope.

Bounded for CI (the whole module takes about a minute on a 2-core machine): a few
examples per operation, positive and negative, one copy of the routes every toolkit repeats
(`one_per_toolkit_route`), observe timeouts capped at 1 s (the schema is
narrowed before fuzzing), the Server-Sent Events route left out. Jobs the fuzzer creates run
one at a time and fail fast (LO_JOB_TIMEOUT), whatever they are; the server runs with the
default URL policy, so no dataset URL reaches anything local.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from learning_orchestra.core.settings import BASE_PATH
from learning_orchestra.toolkits import TOOLKITS
from tests.conftest import ServerProcess

EXAMPLES = 15  # per operation and mode: about a minute in all
OBSERVE_TIMEOUT_CAP = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"LO_MAX_JOBS": "1", "LO_JOB_TIMEOUT": "3", "LO_MAX_UPLOAD_MB": "1"}
    process = ServerProcess(tmp_path_factory.mktemp("fuzz") / "data", env, private_urls=False)
    process.start()
    yield process.url
    process.stop()


def narrowed(document: dict[str, Any]) -> dict[str, Any]:
    """The app's own schema with every `timeout` parameter at most OBSERVE_TIMEOUT_CAP s."""
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "timeout":
                    parameter["schema"]["maximum"] = OBSERVE_TIMEOUT_CAP
                    parameter["schema"].pop("default", None)
    return document


@pytest.fixture(scope="module")
def api_schema(server: str) -> Any:
    document = httpx.get(f"{server}/openapi.json", timeout=30).json()
    loaded = schemathesis.openapi.from_dict(narrowed(document))
    loaded.config.update(base_url=server, request_timeout=30)
    return loaded.exclude(path_regex=r"/events$")


def lo_envelope(ctx: Any, response: Any, case: Any) -> None:
    """Every 4xx is LO's envelope: {"result": one-line message, "error": {code, detail}}."""
    if not 400 <= response.status_code < 500:
        return
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"result", "error"}, body
    message = body["result"]
    assert isinstance(message, str) and message.strip() and "\n" not in message, body
    assert isinstance(body["error"], dict) and set(body["error"]) == {"code", "detail"}, body


def fuzz(operation: Any, mode: GenerationMode) -> str | None:
    """Run EXAMPLES cases of `operation` in `mode`; the failure, if any, as text."""

    @given(operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(timeout=30)
        case.validate_response(response, checks=[not_a_server_error, lo_envelope])

    try:
        run()
    except Unsatisfiable:
        return None  # no parameters to break: nothing negative to send
    except Exception as exc:  # every failing operation is reported, not just the first
        return f"{operation.label} ({mode.value}): {type(exc).__name__}: {str(exc)[:1500]}"
    return None


#: A toolkit's segment of a route (`/model/pycaret/...`): routes that differ only by it are
#: made by one factory from one request model (toolkits/calls.py, steps/builder).
TOOL_SEGMENT = re.compile(rf"^({BASE_PATH}/\w+)/({'|'.join(TOOLKITS)})(?=/|$)")


def one_per_toolkit_route(operations: list[Any]) -> list[Any]:
    """`operations` without the copies of a route for other toolkits: one operation per
    method, route with the toolkit left out, and request body. The copies run the same
    handler and checks with other data (the toolkit's declaration), and every toolkit added
    would otherwise add its ~40 operations to the fuzzing time."""
    kept: dict[tuple[str, str, str], Any] = {}
    for operation in operations:
        body = json.dumps(operation.definition.raw.get("requestBody"), sort_keys=True)
        route = TOOL_SEGMENT.sub(r"\1/*", operation.path)
        kept.setdefault((operation.method.upper(), route, body), operation)
    return list(kept.values())


def test_no_server_errors_and_enveloped_client_errors(api_schema: Any) -> None:
    failures = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 50  # every service's routes, not an empty schema
    operations = one_per_toolkit_route(operations)
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = fuzz(operation, mode)
            if failure is not None:
                failures.append(failure)
    assert not failures, "\n\n".join(failures)
