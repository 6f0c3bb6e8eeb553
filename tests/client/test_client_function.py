"""`FunctionPython` against the real server (`lo_server`), sync and asyncio.

The server is shared by the session, so every name is unique.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from learning_orchestra_client import (
    AsyncFunctionPython,
    DatasetCsv,
    FunctionPython,
    InvalidRequest,
    StepFailed,
)
from learning_orchestra_client.function.python import FunctionPython as LOFunctionPython
from tests.conftest import data_file

pytestmark = pytest.mark.e2e

API = "/api/learningOrchestra/v1"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_run_read_reference_and_delete(lo_server: str) -> None:
    assert LOFunctionPython is FunctionPython  # LO's module path
    titanic, count, ages = unique("titanic"), unique("count"), unique("ages")
    with DatasetCsv(lo_server) as csv, FunctionPython(lo_server) as function:
        csv.insert_dataset_sync(titanic, file=data_file("titanic/train.csv"), timeout=120)
        answer = function.run_function_sync(
            count,
            {"frame": f"${titanic}", "sex": "female"},
            "print('rows:', len(frame))\n"
            "women = frame[frame['Sex'] == sex]\n"
            "response = {'count': len(women), 'ages': women['Age'].dropna().to_numpy()}\n",
            description="women on board",
            timeout=120,
        )
        assert answer == {"result": f"{API}/function/python/{count}"}

        metadata, run = function.search_execution_content(count, skip=0, limit=2)["result"]
        assert metadata["status"] == "finished" and metadata["keys"] == ["count", "ages"]
        assert metadata["description"] == "women on board"
        assert run["functionMessage"] == "rows: 891\n" and run["exception"] is None

        # `$name.key` picks one value of the dict (here an array, stored as .npy).
        function.run_function_async(ages, {"ages": f"${count}.ages"}, "response = len(ages)")
        assert function.wait(ages, timeout=120)["status"] == "finished"
        names = [m["name"] for m in function.search_all_executions(limit=100)["result"]]
        assert {count, ages} <= set(names)

        pretty = function.delete_execution_async(ages, pretty_response=True)
        assert json.loads(pretty) == {"result": f"deleted {ages}"}
        function.delete_execution(count)
        csv.delete_dataset(titanic)


def test_failures_reach_the_caller(lo_server: str) -> None:
    with FunctionPython(lo_server) as function:
        with pytest.raises(StepFailed) as failed:
            function.run_function_sync(unique("noresp"), {}, "x = 1", timeout=120)
        assert "must assign `response`" in str(failed.value.exception)
        with pytest.raises(InvalidRequest, match="not a Python variable name"):
            function.run_function_async(unique("badparam"), {"not valid": 1}, "response = 1")


def test_async_client(lo_server: str) -> None:
    name = unique("async")

    async def main() -> tuple[dict[str, Any], list[Any]]:
        async with AsyncFunctionPython(lo_server) as function:
            await function.run_function_sync(
                name, {"n": "#np.arange(3)"}, "response = int(n.sum())", timeout=120
            )
            page = await function.search_execution_content(name, skip=1, limit=1)
            metadata = await function.wait(name)
            await function.delete_execution(name)
            return metadata, page["result"]

    metadata, (run,) = asyncio.run(main())
    assert metadata["status"] == "finished" and metadata["responseType"] == "int"
    assert run["status"] == "finished" and run["parameters"]["functionParameters"] == {
        "n": "#np.arange(3)"
    }
