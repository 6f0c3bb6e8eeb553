"""The step lifecycle (core/model.py `transition`) and the documented answers.

The transition table is checked pair by pair against the lifecycle written out here, not
recomputed from TRANSITIONS. The OpenAPI document must describe the routes' answers by
reference to StepMetadata and RunRecord, and the real server's answers must be valid against
what the document says (JSON Schema, formats included), for every documented route a step
goes through: create, list, read (table rows, run records, lineage), runs, files, logs,
cancel (pending and running), observe, the change feed (a deletion included), re-run, delete.
"""

from __future__ import annotations

import time
from itertools import product
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from jsonschema import Draft202012Validator

from learning_orchestra.core.api import create_app
from learning_orchestra.core.model import (
    IllegalTransition,
    Status,
    iso,
    new_step,
    transition,
)
from tests.conftest import BASE

P, R, F, X, C = (
    Status.PENDING,
    Status.RUNNING,
    Status.FINISHED,
    Status.FAILED,
    Status.CANCELLED,
)
#: (from, queued?, to) that the lifecycle allows.
LEGAL = {
    (P, False, R),  # claimed
    (P, False, X),  # a parent failed or was deleted
    (P, False, C),  # cancelled before it started
    (R, False, F),
    (R, False, X),
    (R, False, C),
    (R, True, R),  # a queued job claimed
    (R, True, C),  # a queued job cancelled
    *((ended, False, P) for ended in (F, X, C)),  # a re-run
}
#: Ended steps go `running` only as a queued job (StepService.start_job).
LEGAL_QUEUED = {(ended, False, R) for ended in (F, X, C)}


def step(status: Status, *, queued: bool = False, started: float | None = None) -> dict[str, Any]:
    doc = new_step("s", "dataset/csv", alias=None, parameters={}, parents=[], waiting_for=[])
    doc["status"] = status.value
    if queued:
        doc["_queued"] = True
    if started is not None:
        doc["_started"] = started
    return doc


STATES = [(s, False) for s in Status] + [(R, True)]


@pytest.mark.parametrize(("current", "queued", "to"), [(*s, t) for s, t in product(STATES, Status)])
def test_the_transition_table(current: Status, queued: bool, to: Status) -> None:
    doc = step(current, queued=queued)
    if (current, queued, to) in LEGAL:
        assert transition(doc, to)["status"] == to.value
    else:
        with pytest.raises(IllegalTransition, match=f"-> {to.value}"):
            transition(doc, to)
    if (current, queued, to) in LEGAL_QUEUED:
        assert transition(doc, to, queued=True)["_queued"] is True
    else:
        with pytest.raises(IllegalTransition):
            transition(doc, to, queued=True)


def test_a_run_starts_ends_and_reruns_with_the_fields_that_go_with_it() -> None:
    claimed = transition(step(P), R, at=1000.0)
    assert claimed == {
        "status": "running",
        "finished": False,
        "startedAt": iso(1000.0),
        "finishedAt": None,
        "durationSeconds": None,
        "exception": None,
        "traceback": None,
        "waitingFor": [],
        "progress": None,
        "_started": 1000.0,
    }
    running = {**step(R), **claimed, "progress": {"rows": 5}}
    ended = transition(running, F, at=1002.5)
    assert ended == {
        "status": "finished",
        "finished": True,
        "exception": None,
        "traceback": None,
        "finishedAt": iso(1002.5),
        "durationSeconds": 2.5,
        "waitingFor": [],
    }  # progress is not touched: a failed step shows how far it got
    failed = transition(running, X, exception="boom", traceback="Traceback ...", at=1001.0)
    assert failed["finished"] is False and failed["durationSeconds"] == 1.0
    assert (failed["exception"], failed["traceback"]) == ("boom", "Traceback ...")

    rerun = transition({**running, **failed}, P, waiting_for=["parent"])
    assert rerun == {
        "status": "pending",
        "finished": False,
        "exception": None,
        "traceback": None,
        "waitingFor": ["parent"],
        "progress": None,
    }
    queued = transition({**running, **failed}, R, queued=True, at=1010.0)
    assert queued["_queued"] is True and "_started" not in queued
    assert queued["startedAt"] == iso(1010.0) and queued["progress"] is None


@pytest.mark.parametrize(
    ("doc", "to"),
    [
        (step(P, started=1.0), C),  # a re-run cancelled before it started: `_started` is old
        (step(P, started=1.0), X),  # a re-run whose parent failed
        (step(R, queued=True, started=1.0), C),  # a queued job cancelled
    ],
)
def test_a_step_that_never_started_has_no_duration(doc: dict[str, Any], to: Status) -> None:
    ended = transition(doc, to, exception="why", at=5000.0)
    assert ended["durationSeconds"] is None and ended["finishedAt"] == iso(5000.0)
    assert ended["exception"] == "why" and ended["waitingFor"] == []


# -- the OpenAPI document -------------------------------------------------------------------
REF = "#/components/schemas/"


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


def answer_schema(document: dict[str, Any], path: str, method: str, status: int) -> Any:
    response = document["paths"][path][method]["responses"][str(status)]
    return response["content"]["application/json"]["schema"]


def reaches(document: dict[str, Any], schema: Any, target: str) -> bool:
    """Whether `schema` refers to component `target`, directly or through other components."""
    seen: set[str] = set()
    todo = [r.removeprefix(REF) for r in refs(schema)]
    while todo:
        name = todo.pop()
        if name == target:
            return True
        if name not in seen:
            seen.add(name)
            todo += [r.removeprefix(REF) for r in refs(document["components"]["schemas"][name])]
    return False


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    result: dict[str, Any] = create_app().openapi()
    return result


def test_answers_refer_to_step_metadata_and_run_records(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    metadata = schemas["StepMetadata"]
    assert metadata["additionalProperties"] is True  # tool-specific fields
    contract = [
        "name",
        "type",
        "status",
        "finished",
        "exception",
        "traceback",
        "timeCreated",
        "startedAt",
        "finishedAt",
        "durationSeconds",
        "parents",
        "parameters",
        "description",
        "runs",
        "version",
        "stale",
        "waitingFor",
        "progress",
        "libraries",
    ]
    assert sorted(metadata["required"]) == sorted(contract)
    assert all(metadata["properties"][field].get("description") for field in contract)
    assert schemas["Status"]["enum"] == ["pending", "running", "finished", "failed", "cancelled"]
    assert "artifact" in schemas["RunRecord"]["required"]
    assert {r for r in refs(document) if r.startswith(REF)} <= {REF + n for n in schemas}

    routes = 0
    for path, operations in document["paths"].items():
        if not path.startswith(f"{BASE}/") or "/dataType" in path:
            continue  # transform/dataType's own routes are documented by that module
        for method, operation in operations.items():
            key = operation["operationId"].split("_")[0]
            expected = {
                "list": "StepMetadata",
                "read": "StepMetadata",
                "cancel": "StepMetadata",
                "runs": "RunRecord",
                "observe": "StepMetadata",
            }.get(key)
            if expected is None or operation["operationId"] in ("observe_events", "observe_url"):
                continue
            schema = answer_schema(document, path, method, 200)
            assert reaches(document, schema, expected), f"{method.upper()} {path}: {schema}"
            routes += 1
    # list, read, cancel, runs of every step type; /steps and /steps/{name}; observe's two
    assert routes > 4 * 20


def test_route_answers_build_no_validators_at_start() -> None:
    """Answers are documented by reference, not as response models: no pydantic
    TypeAdapter per route (they made the server's start slow) and no validation per answer."""
    checked = [
        (path, route)
        for context in iter_route_contexts(create_app().routes)
        if isinstance(route := getattr(context, "original_route", context), APIRoute)
        and (path := str(context.path)).startswith(f"{BASE}/")
        and "/dataType" not in path  # transform/dataType's own routes: not these
    ]
    assert len(checked) > 10 * 20  # every step type's routes, observe's and /steps
    for path, route in checked:
        assert route.response_field is None, f"{path} has a response model"
        assert not route.response_fields, f"{path} has response models"


# -- the real server's answers against the document -----------------------------------------
class Checked:
    """An HTTP client whose every answer is validated against the OpenAPI document."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.document = self.http.get("/openapi.json").json()
        self.checked: list[str] = []

    def call(self, method: str, route: str, expect: int = 200, **kwargs: Any) -> Any:
        """`method` on `route` (its OpenAPI path, `{name}` filled from kwargs["name"])."""
        name = kwargs.pop("name", None)
        url = BASE + route.replace("{name}", name or "")
        response = self.http.request(method, url, **kwargs)
        assert response.status_code == expect, response.text
        schema = answer_schema(self.document, BASE + route, method.lower(), expect)
        validator = Draft202012Validator(
            {**schema, "components": self.document["components"]},
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(response.json())]
        assert not errors, f"{method} {url}: {errors[:5]}"
        self.checked.append(f"{method} {route}")
        return response.json()


def test_the_servers_answers_are_what_the_document_says(lo_server: str) -> None:
    api = Checked(lo_server)
    csv = "name,age,city\nann,31,Rio\nbob,,Lima\n"
    api.call(
        "POST",
        "/dataset/csv",
        201,
        data={"datasetName": "doc_people"},
        files={"file": ("people.csv", csv, "text/csv")},
    )
    cursor = api.call("GET", "/observe")["cursor"]
    people = api.call("GET", "/observe/{name}", name="doc_people")["result"]
    assert people["status"] == "finished" and people["fields"] == ["name", "age", "city"]
    assert people["durationSeconds"] >= 0

    page = api.call("GET", "/dataset/csv/{name}", name="doc_people")["result"]
    assert page[0] == people and page[1:] == [
        {"name": "ann", "age": 31, "city": "Rio"},
        {"name": "bob", "age": None, "city": "Lima"},
    ]
    assert api.call("GET", "/dataset/csv/{name}", name="doc_people", params={"skip": 1})
    lineage = api.call("GET", "/dataset/csv/{name}", name="doc_people", params={"lineage": 1})
    assert lineage["result"]["nodes"][0]["name"] == "doc_people"
    listed = api.call("GET", "/dataset/csv", params={"limit": 100})["result"]
    assert "doc_people" in [d["name"] for d in listed]
    [run] = api.call("GET", "/dataset/csv/{name}/runs", name="doc_people")["result"]
    assert run["status"] == "finished" and len(run["artifact"]["checksum"]) == 64
    assert api.call("GET", "/dataset/csv/{name}/files", name="doc_people")["result"]
    api.call("GET", "/dataset/csv/{name}/logs", name="doc_people")
    api.call("GET", "/steps", params={"limit": 100})
    assert api.call("GET", "/steps/{name}", name="doc_people")["result"] == people
    api.call("GET", "/steps/{name}", name="doc_people", params={"lineage": 1})

    # a running step, and a step pending behind it: cancelled, each answering its metadata
    sleeper = {"name": "doc_sleep", "function": "import time\ntime.sleep(300)\nresponse = 1\n"}
    api.call("POST", "/function/python", 201, json={**sleeper, "functionParameters": {}})
    inputs = {"x": "$doc_sleep"}
    child = {"name": "doc_child", "function": "response = x\n", "functionParameters": inputs}
    api.call("POST", "/function/python", 201, json=child)
    deadline = time.monotonic() + 60
    while api.call("GET", "/steps/{name}", name="doc_sleep")["result"]["status"] != "running":
        assert time.monotonic() < deadline, "doc_sleep never started"
        time.sleep(0.1)
    pending = api.call("POST", "/function/python/{name}/cancel", name="doc_child")["result"]
    assert pending["status"] == "cancelled" and pending["durationSeconds"] is None
    assert pending["finishedAt"] is not None and pending["waitingFor"] == []
    running = api.call("POST", "/function/python/{name}/cancel", name="doc_sleep")["result"]
    assert running["status"] == "cancelled" and running["durationSeconds"] > 0
    runs = api.call("GET", "/function/python/{name}", name="doc_sleep")["result"]
    assert runs[0]["name"] == "doc_sleep" and runs[1]["status"] == "cancelled"
    api.call("GET", "/function/python/{name}/runs", name="doc_sleep")

    # a re-run, a deletion, and the feed that saw them all
    patch = {"functionParameters": {"x": 1}}  # the cancelled parent is no input any more
    api.call("PATCH", "/function/python/{name}", 201, name="doc_child", json=patch)
    api.call("DELETE", "/function/python/{name}", name="doc_child")
    changes: list[dict[str, Any]] = []
    while not any(c.get("deleted") for c in changes):
        feed = api.call("GET", "/observe", params={"since": cursor, "timeout": 10})
        assert feed["result"], "the feed saw no deletion"
        changes += feed["result"]
        cursor = feed["cursor"]
    assert {"name": "doc_child", "deleted": True} in changes
    assert {c["name"] for c in changes} >= {"doc_people", "doc_sleep", "doc_child"}
    api.call("POST", "/observe", json={"filename": "doc_people"})
    assert len(set(api.checked)) == 17  # documented routes whose answers were validated
