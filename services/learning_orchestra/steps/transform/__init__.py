"""transform service: `transform/projection`, LO's `PATCH /transform/dataType`, and
`transform/{scikitlearn,tensorflow}`.

- `transform/projection` — a new table holding the listed columns of its input, in that order.
- `transform/scikitlearn`, `transform/tensorflow` — `modulePath.class(**classParameters)`,
  then `method(**methodParameters)`, in a sandboxed process; the result is the output
  (toolkits/calls.py: one implementation shared with explore, toolkit adapters in toolkits/).
- `transform/dataType` — casts columns of an existing table to number or string *in place*:
  not a step type of its own but a job run on the table's own step (steps/transform/data_type.py
  serves its routes). Its runner is preloaded by every step type whose output is a table that
  LO clients cast (dataset/csv, projections, histograms, summaries).

The projection and cast runners are in steps/transform/jobs.py and use pyarrow only.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...core.columns import ColumnNames, input_table_check
from ...core.model import NAME_PATTERN
from ...core.steptype import Content, StepType
from ...toolkits.calls import toolkit_step_type

JOBS = "learning_orchestra.steps.transform.jobs"
#: The runner of `transform/dataType` casts, run on the cast table's own step.
CAST_RUNNER = f"{JOBS}:cast_types"
#: The modules a service whose steps may be cast preloads (see StepType.preload).
TABLE_PRELOAD = ("pyarrow.parquet", "pyarrow.compute", JOBS)


class ProjectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputDatasetName: str = Field(pattern=NAME_PATTERN, description="the table to project")
    outputDatasetName: str = Field(pattern=NAME_PATTERN, description="name of the new table")
    names: ColumnNames = Field(description="the columns to keep, in this order")
    description: str | None = None


STEP_TYPES = [
    StepType(
        step="transform",
        tool="projection",
        request=ProjectionRequest,
        runner=f"{JOBS}:project",
        name_field="outputDatasetName",
        alias="datasetName",
        content=Content.TABLE,
        parent_fields=("inputDatasetName",),
        summary="A new table with the listed columns of the input table; GET pages its rows.",
        example={
            "inputDatasetName": "titanic",
            "outputDatasetName": "titanic_kept",
            "names": ["Survived", "Pclass", "Sex", "Age"],
        },
        preload=TABLE_PRELOAD,
        check=input_table_check(),
    ),
    toolkit_step_type(
        "transform",
        "scikitlearn",
        example={
            "name": "titanic_scaled",
            "modulePath": "sklearn.preprocessing",
            "class": "StandardScaler",
            "classParameters": {},
            "method": "fit_transform",
            "methodParameters": {"X": "$titanic_numeric"},
        },
    ),
    toolkit_step_type(
        "transform",
        "tensorflow",
        example={
            "name": "titanic_unit",
            "modulePath": "tensorflow",
            "class": "math",
            "classParameters": {},
            "method": "l2_normalize",
            "methodParameters": {"x": "$titanic_scaled", "axis": 1},
        },
    ),
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("transform")
    if name == "ROUTERS":  # imported on demand: worker processes importing jobs never need it
        from .data_type import router

        return [router]
    raise AttributeError(name)
