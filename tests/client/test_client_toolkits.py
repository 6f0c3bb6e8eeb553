"""The toolkit client classes (transform/explore x scikitlearn) against the real server.

`lo_server` is the session's real embedded server: each call runs a sandboxed child that
imports scikit-learn (and matplotlib for explore). Data comes from `#expr` values, so no
dataset is needed; every name is unique, since the server is shared by the session.
"""

from __future__ import annotations

import uuid

import pytest

from learning_orchestra_client import (
    AsyncExploreScikitLearn,
    AsyncTransformScikitLearn,
    ExploreScikitLearn,
    InvalidRequest,
    StepFailed,
    TransformScikitLearn,
)
from learning_orchestra_client.explore.scikitlearn import ExploreScikitLearn as LOExplore
from learning_orchestra_client.transform.scikitlearn import TransformScikitLearn as LOTransform

pytestmark = pytest.mark.e2e

API = "/api/learningOrchestra/v1"
POINTS = "#np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0], [4.0, 3.0], [5.0, 4.0]])"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_transform_then_explore_it_with_the_blocking_clients(lo_server: str) -> None:
    assert LOTransform is TransformScikitLearn and LOExplore is ExploreScikitLearn
    scaled, plot = unique("scaled"), unique("plot")
    with TransformScikitLearn(lo_server) as transform, ExploreScikitLearn(lo_server) as explore:
        answer = transform.create_transform_sync(
            scaled, "sklearn.preprocessing", "StandardScaler", {}, "fit_transform", {"X": POINTS}
        )
        assert answer == {"result": f"{API}/transform/scikitlearn/{scaled}"}
        page = transform.search_transform_content(scaled)["result"]
        assert page[0]["shape"] == [5, 2] and page[0]["class"] == "StandardScaler"
        assert scaled in [d["name"] for d in transform.search_all_transformations()["result"]]

        explore.create_explore_async(
            plot, "sklearn.decomposition", "PCA", {"n_components": 2}, "fit_transform",
            {"X": f"${scaled}"}, description="PCA of the scaled points",
        )  # fmt: skip
        assert explore.wait(plot, timeout=120)["status"] == "finished"
        png = explore.search_explore_image(plot)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000
        (metadata, run) = explore.search_explore_metadata(plot, limit=2)["result"]
        assert metadata["description"] == "PCA of the scaled points"
        assert run["exception"] is None

        with pytest.raises(StepFailed, match="StandardScalr"):
            transform.create_transform_sync(
                unique("typo"), "sklearn.preprocessing", "StandardScalr", {}, "fit", {}
            )
        with pytest.raises(InvalidRequest, match="modulePath"):
            transform.create_transform_async(unique("os"), "os", "path", {}, "join", {})
        assert "deleted" in explore.delete_explore(plot)["result"]
        assert "deleted" in transform.delete_transform(scaled)["result"]


async def test_the_asyncio_clients(lo_server: str) -> None:
    split = unique("split")
    async with AsyncTransformScikitLearn(lo_server) as transform:
        await transform.create_transform_sync(
            split, "sklearn", "model_selection", {}, "train_test_split",
            {"arrays": [POINTS], "test_size": 2, "random_state": 0},
        )  # fmt: skip
        (metadata, *_) = (await transform.search_transform_content(split))["result"]
        assert metadata["responseType"] == "list" and metadata["items"] == 2
    async with AsyncExploreScikitLearn(lo_server) as explore:
        plot = unique("split_plot")
        await explore.create_explore_sync(
            plot, "sklearn.preprocessing", "MinMaxScaler", {}, "fit_transform",
            {"X": f"${split}.0"},
        )  # fmt: skip
        assert (await explore.search_explore_image(plot)).startswith(b"\x89PNG")
