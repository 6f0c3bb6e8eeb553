"""Routes across step types (core/catalog.py), the upstream graph (core/lineage.py) and
PATCH's RFC 7386 merge-patch (core/service.py `merge_patch`).

The routes run in the real embedded app: real uploads ingested by worker processes, a real
SQLite store. The graph's edge cases (cycles, deleted parents, the bound) run against a real
SqliteStore with hand-made documents, which no API sequence can all produce cheaply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from learning_orchestra.core.lineage import lineage_graph
from learning_orchestra.core.model import Doc, new_step
from learning_orchestra.core.service import merge_patch
from learning_orchestra.core.store import SqliteStore
from tests.conftest import BASE, assert_error, wait

STEPS = f"{BASE}/steps"
CSV = f"{BASE}/dataset/csv"
PROJECTION = f"{BASE}/transform/projection"
HISTOGRAM = f"{BASE}/explore/histogram"
FUNCTION = f"{BASE}/function/python"


# -- merge-patch ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7386, Appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, result: Any) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == before  # the stored parameters are not modified in place


# -- the upstream graph, on a real store ------------------------------------------------------
def doc(name: str, parents: list[str] | None = None, **extra: Any) -> Doc:
    return new_step(
        name,
        "dataset/csv",
        alias=None,
        parameters={},
        parents=parents or [],
        waiting_for=[],
        extra=extra,
    )


async def graph_of(store: SqliteStore, name: str, limit: int = 1000) -> dict[str, Any]:
    root = await store.get(name)
    assert root is not None
    return await lineage_graph(store, root, limit)


def edges(graph: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["from"], e["to"]) for e in graph["edges"]}


async def test_lineage_walks_a_diamond_cycles_and_deleted_parents(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite3")
    await store.open()
    try:
        # a → b, a → c, (b, c) → d: a diamond; d → e; x ↔ y loop (a PATCH can make one)
        for step in (
            doc("a"),
            doc("b", ["a"]),
            doc("c", ["a"]),
            doc("d", ["b", "c", "b"], stale=True),
            doc("e", ["d", "gone"]),
            doc("x", ["y"]),
            doc("y", ["x"]),
        ):
            await store.insert(step)

        graph = await graph_of(store, "e")
        assert graph["name"] == "e" and graph["truncated"] is False
        names = [n["name"] for n in graph["nodes"]]
        assert names[0] == "e" and sorted(names) == ["a", "b", "c", "d", "e", "gone"]
        assert edges(graph) == {
            ("d", "e"),
            ("gone", "e"),
            ("b", "d"),
            ("c", "d"),
            ("a", "b"),
            ("a", "c"),
        }
        assert len(graph["edges"]) == 6  # a parent listed twice is one edge
        nodes = {n["name"]: n for n in graph["nodes"]}
        assert nodes["d"] == {
            "name": "d",
            "type": "dataset/csv",
            "status": "pending",
            "stale": True,
            "missing": False,
        }
        assert nodes["gone"] == {
            "name": "gone",
            "type": None,
            "status": None,
            "stale": None,
            "missing": True,
        }

        loop = await graph_of(store, "x")
        assert [n["name"] for n in loop["nodes"]] == ["x", "y"]
        assert edges(loop) == {("y", "x"), ("x", "y")}

        alone = await graph_of(store, "a")
        assert [n["name"] for n in alone["nodes"]] == ["a"] and alone["edges"] == []

        bounded = await graph_of(store, "e", limit=3)
        assert bounded["truncated"] is True and len(bounded["nodes"]) == 3
        listed = {n["name"] for n in bounded["nodes"]}
        assert all(f in listed and t in listed for f, t in edges(bounded))
    finally:
        await store.close()


# -- the routes, in the real app --------------------------------------------------------------
def upload(client: TestClient, name: str, csv: str) -> None:
    response = client.post(
        CSV, data={"datasetName": name}, files={"file": (f"{name}.csv", csv, "text/csv")}
    )
    assert response.status_code == 201, response.text


def listed(client: TestClient, **params: Any) -> list[str]:
    response = client.get(STEPS, params=params)
    assert response.status_code == 200, response.text
    return [d["name"] for d in response.json()["result"]]


def test_steps_list_find_lineage_across_types(api: TestClient) -> None:
    upload(api, "people", "name,age,city\nann,31,Rio\nbob,,Lima\ncid,45,Rio\n")
    assert wait(api, "people")["status"] == "finished"
    upload(api, "broken", "")
    projection = {"inputDatasetName": "people", "outputDatasetName": "ages", "names": ["age"]}
    assert api.post(PROJECTION, json=projection).status_code == 201
    histogram = {"inputDatasetName": "ages", "outputDatasetName": "hist", "names": ["age"]}
    assert api.post(HISTOGRAM, json=histogram).status_code == 201
    for name in ("broken", "ages", "hist"):
        wait(api, name)

    # every step, whatever its type, in creation order; paged; filtered
    assert listed(api) == ["people", "broken", "ages", "hist"]
    assert listed(api, skip=1, limit=2) == ["broken", "ages"]
    assert listed(api, skip=4) == []
    everything = api.get(STEPS).json()["result"]
    assert [d["type"] for d in everything] == [
        "dataset/csv",
        "dataset/csv",
        "transform/projection",
        "explore/histogram",
    ]
    assert not any(k.startswith("_") for d in everything for k in d)  # public metadata only
    broken = api.get(f"{CSV}/broken").json()["result"][0]["status"]
    assert broken == "failed"  # an empty file
    assert listed(api, status="failed") == ["broken"]
    assert listed(api, status="finished") == ["people", "ages", "hist"]
    assert listed(api, status="failed, finished", limit=1) == ["people"]
    assert listed(api, status="running,pending") == []
    assert listed(api, type="dataset/csv") == ["people", "broken"]
    assert listed(api, type="explore/histogram,transform/projection") == ["ages", "hist"]
    assert listed(api, type="dataset/csv", status="finished") == ["people"]
    assert listed(api, status="", type="") == ["people", "broken", "ages", "hist"]
    assert_error(api.get(STEPS, params={"status": "done"}), 422, "status", "'done'", "finished")
    error = assert_error(api.get(STEPS, params={"type": "model/nope"}), 422, "type", "dataset/csv")
    assert "transform/projection" in error["error"]["detail"]["allowed"]
    assert_error(api.get(STEPS, params={"limit": 0}), 422, "limit")

    # a name resolves to its metadata, type included, without knowing the type
    found = api.get(f"{STEPS}/ages")
    assert found.status_code == 200, found.text
    assert found.json()["result"]["type"] == "transform/projection"
    assert found.json()["result"] == api.get(f"{PROJECTION}/ages").json()["result"][0]
    assert_error(api.get(f"{STEPS}/nobody"), 404, "nobody")
    assert_error(api.get(f"{STEPS}/bad.name"), 422)

    # the upstream graph, from either route
    graph = api.get(f"{STEPS}/hist", params={"lineage": 1}).json()["result"]
    assert graph == api.get(f"{HISTOGRAM}/hist", params={"lineage": "true"}).json()["result"]
    assert graph["name"] == "hist" and graph["truncated"] is False
    assert [(n["name"], n["type"], n["status"]) for n in graph["nodes"]] == [
        ("hist", "explore/histogram", "finished"),
        ("ages", "transform/projection", "finished"),
        ("people", "dataset/csv", "finished"),
    ]
    assert graph["edges"] == [{"from": "ages", "to": "hist"}, {"from": "people", "to": "ages"}]
    assert_error(api.get(f"{PROJECTION}/hist", params={"lineage": 1}), 404, "hist")
    assert_error(api.get(f"{STEPS}/hist", params={"lineage": "maybe"}), 422, "lineage")

    # a deleted parent stays in the graph, missing; its child is stale
    assert api.delete(f"{CSV}/people").status_code == 200
    graph = api.get(f"{PROJECTION}/ages", params={"lineage": 1}).json()["result"]
    assert graph["nodes"] == [
        {
            "name": "ages",
            "type": "transform/projection",
            "status": "finished",
            "stale": True,
            "missing": False,
        },
        {"name": "people", "type": None, "status": None, "stale": None, "missing": True},
    ]
    assert listed(api) == ["broken", "ages", "hist"]


def test_patch_merges_dict_parameters(api: TestClient) -> None:
    """RFC 7386 on PATCH: a dict value merges into the stored dict (null removes a key, nested
    dicts merge); other values replace; a top-level null resets a key to its default."""
    source = "response = {'a': a, 'b': b, 'opts': opts}\n"
    body = {
        "name": "fn",
        "function": source,
        "functionParameters": {"a": 1, "b": 2, "opts": {"x": 1, "y": {"z": 1, "w": 2}}},
        "description": "first",
    }
    assert api.post(FUNCTION, json=body).status_code == 201
    assert wait(api, "fn")["status"] == "finished"

    changes = {
        "functionParameters": {"a": 10, "opts": {"x": None, "y": {"z": 3}, "n": [1]}},
        "description": None,
    }
    response = api.patch(f"{FUNCTION}/fn", json=changes)
    assert response.status_code == 201, response.text
    done = wait(api, "fn")
    assert done["status"] == "finished", done["exception"]
    expected = {"a": 10, "b": 2, "opts": {"y": {"z": 3, "w": 2}, "n": [1]}}
    assert done["parameters"]["functionParameters"] == expected
    assert done["parameters"]["function"] == source  # omitted: kept
    assert done["description"] is None  # null: back to its default
    result = api.get(f"{FUNCTION}/fn/files/value.json")
    assert result.status_code == 200 and result.json() == expected

    # removing a key the code needs fails the run, naming it; a required key cannot be nulled
    response = api.patch(f"{FUNCTION}/fn", json={"functionParameters": {"b": None}})
    assert response.status_code == 201, response.text
    failed = wait(api, "fn")
    assert failed["status"] == "failed" and "name 'b' is not defined" in failed["exception"]
    assert_error(api.patch(f"{FUNCTION}/fn", json={"function": None}), 422, "function: required")
