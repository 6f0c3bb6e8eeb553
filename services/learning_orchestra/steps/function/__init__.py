"""function service: `function/python` runs user code, contained (docs/security.md).

The code runs with each of `functionParameters` bound as a variable and must assign
`response`, the step's output (a dict's values are `$name.key` outputs). The API process only
validates the body; the code runs in a sandboxed child of the job's worker
(steps/function/jobs.py, learning_orchestra/sandbox/).
"""

from __future__ import annotations

import keyword
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...core.model import NAME_PATTERN
from ...core.steptype import SANDBOX_WORKER_PRELOAD, Content, SandboxFamily, StepType

MAX_CODE_CHARS = 1_000_000


class FunctionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="name of the step and its output")
    function: str = Field(
        min_length=1,
        max_length=MAX_CODE_CHARS,
        description="Python source; it must assign `response`, the step's output",
    )
    functionParameters: dict[str, Any] = Field(
        description="variables for the code: literals, `$name`/`$name.key` references to "
        "other steps' outputs, or `#expr` Python expressions (evaluated in the sandbox)"
    )
    description: str | None = None

    @field_validator("functionParameters")
    @classmethod
    def _variable_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not name.isidentifier() or keyword.iskeyword(name):
                raise ValueError(f"{name!r} is not a Python variable name: rename it")
            if name == "response" or name.startswith("__"):
                raise ValueError(f"{name!r} is reserved: rename the parameter")
        return value


STEP_TYPES = [
    StepType(
        step="function",
        tool="python",
        request=FunctionRequest,
        runner="learning_orchestra.steps.function.jobs:run_python",
        content=Content.RUNS,
        summary=(
            "Run Python code, sandboxed, with functionParameters bound as variables; what it "
            "assigns to `response` is the output. GET pages run records (functionMessage)."
        ),
        preload=SANDBOX_WORKER_PRELOAD,
        sandbox=SandboxFamily("python"),
        example={
            "name": "children",
            "functionParameters": {"frame": "$titanic", "age": 10},
            "function": (
                'print("passengers:", len(frame))\n'
                'young = frame[frame["Age"] < age]\n'
                'response = {"rate": float(young["Survived"].mean()), "young": young}\n'
            ),
        },
    ),
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("function")
    raise AttributeError(name)
