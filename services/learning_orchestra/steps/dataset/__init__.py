"""dataset service: `dataset/csv` (a typed table) and `dataset/generic` (the raw file).

Both fetch an http(s) URL or take a multipart upload. The API process only streams uploads to
the volume; fetching and parsing happen in a worker (steps/dataset/jobs.py).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ...core.model import NAME_PATTERN
from ...core.steptype import Content, StepType


def _http_url(value: str) -> str:
    if value.startswith("upload:"):  # what an uploaded dataset's parameters hold
        raise ValueError(
            f"{value!r} was an upload, which is not kept once ingested: to re-run, give an "
            "http(s) URL, or delete the dataset and upload the file again"
        )
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(
            "must be an http:// or https:// URL (to send a local file, POST it as "
            "multipart/form-data with fields datasetName and file)"
        )
    return value


class DatasetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    datasetName: str = Field(pattern=NAME_PATTERN, description="name of the new dataset")
    datasetURI: Annotated[str, AfterValidator(_http_url)] = Field(
        description="http(s) URL of the file"
    )
    description: str | None = None


# The bodies of the OpenAPI examples fetch this copy of the Titanic training data.
TITANIC_URL = "https://raw.githubusercontent.com/datasciencedojo/datasets/master/titanic.csv"

_COMMON: dict[str, Any] = {
    "request": DatasetRequest,
    "name_field": "datasetName",
    "alias": "datasetName",
    "upload": True,
}

STEP_TYPES = [
    StepType(
        step="dataset",
        tool="csv",
        runner="learning_orchestra.steps.dataset.jobs:ingest_csv",
        content=Content.TABLE,
        summary="Fetch (or receive) a CSV file and store it as a typed table; GET pages its rows.",
        # transform.jobs: LO's PATCH /transform/dataType casts these tables in place, in
        # this service's workers (see steps/transform/data_type.py).
        example={"datasetName": "titanic", "datasetURI": TITANIC_URL},
        preload=(
            "pyarrow.csv",
            "pyarrow.parquet",
            "httpx",
            "learning_orchestra.steps.transform.jobs",
        ),
        **_COMMON,
    ),
    StepType(
        step="dataset",
        tool="generic",
        runner="learning_orchestra.steps.dataset.jobs:store_file",
        content=Content.RUNS,
        summary="Fetch (or receive) any file and store it as is; steps get it as an open file.",
        example={"datasetName": "titanic_file", "datasetURI": TITANIC_URL},
        preload=("httpx",),
        **_COMMON,
    ),
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("dataset")
    raise AttributeError(name)
