"""The upstream graph of a step: its parents, theirs, and so on (`?lineage=1`).

A step's `parents` name the steps its output was computed from. Following them gives the
graph a notebook draws: nodes (name, type, status, stale) and parent → child edges. The walk
is breadth-first from the step, bounded (MAX_LINEAGE_NODES) and cycle-safe: a PATCH can make
a step reference its own child, so `parents` can loop.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .model import Doc
from .store import Store

#: The most nodes one answer holds; beyond, `truncated` is true (pipelines are far smaller).
MAX_LINEAGE_NODES = 1000


def _node(doc: Doc) -> dict[str, Any]:
    return {
        "name": doc["name"],
        "type": doc["type"],
        "status": doc["status"],
        "stale": bool(doc.get("stale")),
        "missing": False,
    }


def _missing(name: str) -> dict[str, Any]:
    """A parent that no longer exists (deleted after its child was computed)."""
    return {"name": name, "type": None, "status": None, "stale": None, "missing": True}


async def lineage_graph(store: Store, root: Doc, limit: int = MAX_LINEAGE_NODES) -> dict[str, Any]:
    """`{"name", "nodes", "edges", "truncated"}` for `root` and everything upstream of it.

    `nodes` come in breadth-first order from `root` (itself first); each edge is
    `{"from": parent, "to": child}`. A parent that was deleted is a node with `missing` true
    and null type/status. At most `limit` nodes: `truncated` says whether some were left
    out (edges only join nodes that are listed)."""
    nodes: dict[str, dict[str, Any]] = {root["name"]: _node(root)}
    edges: list[dict[str, str]] = []
    queue: deque[Doc] = deque([root])
    truncated = False
    while queue:
        child = queue.popleft()
        for parent in dict.fromkeys(child.get("parents") or []):
            if parent not in nodes:
                if len(nodes) >= limit:
                    truncated = True
                    continue
                doc = await store.get(parent)
                nodes[parent] = _missing(parent) if doc is None else _node(doc)
                if doc is not None:
                    queue.append(doc)
            edges.append({"from": parent, "to": child["name"]})
    return {
        "name": root["name"],
        "nodes": list(nodes.values()),
        "edges": edges,
        "truncated": truncated,
    }
