"""The transform and explore client classes against the real server (`lo_server`).

One pipeline per client flavour, sync and asyncio, over the Titanic training file uploaded
from here; every name is unique, since the server is shared by the session.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from learning_orchestra_client import (
    AsyncDatasetCsv,
    AsyncExploreHistogram,
    AsyncExploreSummary,
    AsyncTransformDataType,
    AsyncTransformProjection,
    DatasetCsv,
    ExploreHistogram,
    ExploreSummary,
    InvalidRequest,
    StepFailed,
    TransformDataType,
    TransformProjection,
)
from learning_orchestra_client.explore.histogram import ExploreHistogram as LOHistogram
from learning_orchestra_client.transform.data_type import TransformDataType as LODataType
from learning_orchestra_client.transform.projection import TransformProjection as LOProjection
from tests.conftest import data_file

pytestmark = pytest.mark.e2e

API = "/api/learningOrchestra/v1"
TRAIN = data_file("titanic/train.csv")
PCLASS = [{"field": "Pclass", "value": v, "count": n} for v, n in (("1", 216), ("2", 184),
                                                                   ("3", 491))]  # fmt: skip


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_lo_module_paths() -> None:
    assert (LOProjection, LODataType, LOHistogram) == (
        TransformProjection,
        TransformDataType,
        ExploreHistogram,
    )


def test_pipeline_with_the_blocking_clients(lo_server: str) -> None:
    name, kept, hist, summ = (unique(p) for p in ("titanic", "kept", "hist", "summ"))
    with (
        DatasetCsv(lo_server) as csv,
        TransformProjection(lo_server) as projection,
        TransformDataType(lo_server) as data_type,
        ExploreHistogram(lo_server) as histogram,
        ExploreSummary(lo_server) as summary,
    ):
        csv.insert_dataset_sync(name, file=TRAIN, timeout=120)

        answer = projection.remove_dataset_attributes_sync(name, kept, ["Sex", "Pclass", "Age"])
        assert answer == {"result": f"{API}/transform/projection/{kept}"}
        page = projection.search_projection_content(kept, query={"Sex": "female"}, limit=3)
        meta, *rows = page["result"]
        assert meta["fields"] == ["Sex", "Pclass", "Age"] and meta["rows"] == 891
        assert len(rows) == 2 and all(r["Sex"] == "female" for r in rows)
        listed = projection.search_all_projections(limit=100)["result"]
        assert kept in [m["name"] for m in listed]
        with pytest.raises(InvalidRequest) as unknown:
            projection.remove_dataset_attributes_async(name, unique("bad"), ["Colour"])
        assert "'Colour'" in unknown.value.message and "PassengerId" in unknown.value.message

        answer = data_type.update_dataset_type_sync(kept, {"Pclass": "string"}, timeout=60)
        assert answer == {"result": f"{API}/transform/projection/{kept}"}
        assert data_type.wait(kept)["types"]["Pclass"] == "string"
        with pytest.raises(StepFailed) as failed:
            data_type.update_dataset_type_sync(kept, {"Sex": "number"}, timeout=60)
        assert "'Sex'" in str(failed.value.exception) and "row 1" in str(failed.value.exception)
        # the table is intact but `failed`: a cast that succeeds makes it usable again
        data_type.update_dataset_type_sync(kept, {"Pclass": "string"}, timeout=60)

        text = histogram.run_histogram_sync(kept, hist, ["Pclass"], pretty_response=True)
        assert json.loads(text) == {"result": f"{API}/explore/histogram/{hist}"}
        assert histogram.search_histogram_content(hist, skip=1)["result"] == PCLASS

        summary.run_summary_sync(name, summ, timeout=60)
        age = summary.search_summary_content(summ, query={"field": "Age"}, skip=1)["result"]
        assert [(r["count"], r["missing"], r["max"]) for r in age] == [(714, 177, 80.0)]

        assert summary.delete_summary(summ) == {"result": f"deleted {summ}"}
        assert histogram.delete_histogram(hist) == {"result": f"deleted {hist}"}
        assert projection.delete_projection_async(kept) == {"result": f"deleted {kept}"}


def test_pipeline_with_the_asyncio_clients(lo_server: str) -> None:
    name, kept, hist, summ = (unique(p) for p in ("titanic", "kept", "hist", "summ"))

    async def pipeline() -> None:
        async with (
            AsyncDatasetCsv(lo_server) as csv,
            AsyncTransformProjection(lo_server) as projection,
            AsyncTransformDataType(lo_server) as data_type,
            AsyncExploreHistogram(lo_server) as histogram,
            AsyncExploreSummary(lo_server) as summary,
        ):
            # submitted at once: each step waits for its input on the server
            await csv.insert_dataset_async(name, file=TRAIN)
            await projection.remove_dataset_attributes_async(name, kept, ["Pclass"])
            await histogram.run_histogram_async(kept, hist, ["Pclass"])
            await summary.run_summary_async(kept, summ)
            assert (await summary.wait(summ, timeout=120))["rows"] == 1
            assert (await histogram.wait(hist))["rows"] == 3
            await data_type.update_dataset_type_async(kept, {"Pclass": "string"})
            assert (await data_type.wait(kept, timeout=60))["types"] == {"Pclass": "string"}
            await histogram.delete_histogram(hist)
            await histogram.run_histogram_sync(kept, hist, ["Pclass"], timeout=60)
            content = await histogram.search_histogram_content(hist, skip=1)
            assert content["result"] == PCLASS
            summaries = await summary.search_all_summaries(limit=100)
            assert summ in [m["name"] for m in summaries["result"]]

    asyncio.run(pipeline())
