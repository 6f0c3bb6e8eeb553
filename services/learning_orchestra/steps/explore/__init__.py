"""explore service: `explore/histogram` (value counts), `explore/summary` (describe) and
`explore/{scikitlearn,tensorflow}` (a toolkit call whose result is plotted).

- `explore/histogram` — for each listed column, how often each value occurs: table rows
  `{field, value, count}` (missing values are counted under `value: null`).
- `explore/summary` — one row per column of the input: its type, count, missing, unique, mean,
  std, min, quartiles, max (numeric columns) or most frequent value and its count (others).

- `explore/scikitlearn`, `explore/tensorflow` — as transform/{tool} (toolkits/calls.py), and
  the result is also rendered as a PNG: `GET /explore/{tool}/{name}` answers it, as LO did
  (and `.../image`); the metadata is at `.../metadata`.

Histogram and summary outputs are tables (GET pages their rows, `query` filters them); their
runners are in steps/explore/jobs.py and use pyarrow only.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...core.columns import ColumnNames, input_table_check
from ...core.model import NAME_PATTERN
from ...core.steptype import Content, StepType
from ...toolkits.calls import toolkit_step_type
from ..transform import TABLE_PRELOAD

JOBS = "learning_orchestra.steps.explore.jobs"


class HistogramRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputDatasetName: str = Field(pattern=NAME_PATTERN, description="the table to count")
    outputDatasetName: str = Field(pattern=NAME_PATTERN, description="name of the histogram")
    names: ColumnNames = Field(description="the columns whose values are counted")
    description: str | None = None


class SummaryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputDatasetName: str = Field(pattern=NAME_PATTERN, description="the table to describe")
    outputDatasetName: str = Field(pattern=NAME_PATTERN, description="name of the summary")
    description: str | None = None


_COMMON: dict[str, Any] = {
    "step": "explore",
    "name_field": "outputDatasetName",
    "alias": "datasetName",
    "content": Content.TABLE,
    "parent_fields": ("inputDatasetName",),
    "preload": TABLE_PRELOAD,
}

STEP_TYPES = [
    StepType(
        tool="histogram",
        request=HistogramRequest,
        runner=f"{JOBS}:histogram",
        summary="Value counts of the listed columns, as table rows {field, value, count}.",
        example={
            "inputDatasetName": "titanic",
            "outputDatasetName": "titanic_histogram",
            "names": ["Sex", "Embarked"],
        },
        check=input_table_check(),
        **_COMMON,
    ),
    StepType(
        tool="summary",
        request=SummaryRequest,
        runner=f"{JOBS}:summarize",
        summary=(
            "One row per column of the input table: type, count, missing, unique, mean, std, "
            "min, 25%, 50%, 75%, max, top, freq."
        ),
        check=input_table_check(names_field=None),
        example={"inputDatasetName": "titanic", "outputDatasetName": "titanic_summary"},
        **_COMMON,
    ),
    toolkit_step_type(
        "explore",
        "scikitlearn",
        example={
            "name": "titanic_pca",
            "modulePath": "sklearn.decomposition",
            "class": "PCA",
            "classParameters": {"n_components": 2},
            "method": "fit_transform",
            "methodParameters": {"X": "$titanic_scaled"},
        },
    ),
    toolkit_step_type(
        "explore",
        "tensorflow",
        example={
            "name": "normalized",
            "modulePath": "keras.layers",
            "class": "Normalization",
            "classParameters": {"mean": 5.0, "variance": 4.0},
            "method": "__call__",
            "methodParameters": {"inputs": "#np.arange(200.0).reshape(-1, 1) % 11"},
        },
    ),
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("explore")
    raise AttributeError(name)
