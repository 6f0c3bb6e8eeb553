"""transform/{tool} and explore/{tool}: call a toolkit's class, sandboxed.

The body names `modulePath`, `class`, `classParameters`, `method`, `methodParameters`; the
job instantiates `modulePath.class(**classParameters)` and calls `method(**methodParameters)`
on it. That is code the user chose (any class of the toolkit), so it runs in the sandboxed
child (learning_orchestra/sandbox, docs/security.md), as function/python does; the worker
only resolves references to verified copies and keeps what the child wrote. The result is
stored in its natural format (core/formats.py); explore steps also keep its PNG plot.

Cheap checks run on POST/PATCH: names are identifiers, and `modulePath` lies in one of the
toolkit's packages, which is installed (`find_spec` of the top-level package only: finding a
submodule would import its parents). Class, method and parameter names need the import, so
the job checks them first and fails naming the field at fault.
"""

from __future__ import annotations

import importlib.util
import keyword
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core import references
from ..core.errors import Invalid
from ..core.model import NAME_PATTERN
from ..core.settings import BASE_PATH
from ..core.steptype import IMAGE_FILE, SANDBOX_WORKER_PRELOAD, Content, StepType
from . import Toolkit, toolkit

if TYPE_CHECKING:
    from ..core.worker import JobContext, Output

MODULE_PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
CLASS_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
METHOD_PATTERN = r"^([A-Za-z][A-Za-z0-9_]*|__call__)$"
RUNNER = f"{__name__}:call_toolkit"
PARAMETER_GROUPS = ("classParameters", "methodParameters")


class ToolkitCallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="name of the step and its output")
    modulePath: str = Field(
        pattern=MODULE_PATH_PATTERN,
        max_length=300,
        description="the module holding the class, e.g. sklearn.preprocessing",
    )
    class_: str = Field(
        alias="class",
        pattern=CLASS_PATTERN,
        max_length=200,
        description="the class to instantiate (or a submodule, for module functions such as "
        "model_selection.train_test_split)",
    )
    classParameters: dict[str, Any] = Field(
        description="keyword arguments of the class: literals, $name/$name.key references "
        "or #expr expressions (evaluated in the sandbox)"
    )
    method: str = Field(
        pattern=METHOD_PATTERN, max_length=200, description="the method to call on the object"
    )
    methodParameters: dict[str, Any] = Field(
        description="keyword arguments of the method, as classParameters"
    )
    description: str | None = None

    @field_validator("classParameters", "methodParameters")
    @classmethod
    def _keyword_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not name.isidentifier() or keyword.iskeyword(name):
                raise ValueError(f"{name!r} is not a Python parameter name")
        return value


def module_path_check(kit: Toolkit) -> Callable[[Mapping[str, Any], Mapping[str, Any]], None]:
    """The up-front check of `modulePath` for `kit` (StepType.check): 422 naming the field."""

    def check(parameters: Mapping[str, Any], _parents: Mapping[str, Any]) -> None:
        path = parameters["modulePath"]
        top = path.partition(".")[0]
        if top not in kit.packages:
            allowed = " or ".join(f"{p}." for p in kit.packages)
            raise Invalid(
                f"modulePath: {path!r} is not a {kit.title} module: these steps call "
                f"classes of modules starting with {allowed}",
                {"field": "modulePath"},
            )
        if importlib.util.find_spec(top) is None:  # top level only: imports nothing
            raise Invalid(
                f"modulePath: {top} is not installed on this server (the '{kit.extra}' extra)",
                {"field": "modulePath"},
            )

    return check


def toolkit_step_type(step: str, tool: str, example: Mapping[str, Any] | None = None) -> StepType:
    """The `{step}/{tool}` step type ("transform" or "explore") calling `tool`'s classes;
    `example` is a valid POST body for the OpenAPI document."""
    kit = toolkit(tool)
    explore = step == "explore"
    what = "stores the result and its PNG plot" if explore else "stores the result"
    return StepType(
        step=step,
        tool=tool,
        request=ToolkitCallRequest,
        runner=RUNNER,
        content=Content.IMAGE if explore else Content.RUNS,
        summary=(
            f"Instantiate a {kit.title} class (modulePath.class(**classParameters)), call "
            f"method(**methodParameters) in a sandboxed process, and {what}."
            + (" GET .../{name} and .../{name}/image answer the PNG." if explore else "")
        ),
        preload=SANDBOX_WORKER_PRELOAD,
        check=module_path_check(kit),
        sandbox=kit.family,
        example=example,
    )


def call_toolkit(ctx: JobContext) -> Output:
    """The job of every transform/{tool} and explore/{tool} step (run in a worker)."""
    from ..core.worker import Output
    from ..sandbox import Call, Sandbox
    from ..sandbox.protocol import Expression

    step, tool = ctx.spec.step_type.split("/")
    kit = toolkit(tool)
    plot = IMAGE_FILE if step == "explore" else None
    sandbox = Sandbox(ctx, env=kit.env)
    params = ctx.parameters
    parameters = references.resolve(
        {group: params[group] for group in PARAMETER_GROUPS}, sandbox.stage, Expression
    )
    call = Call(
        module_path=params["modulePath"],
        class_name=params["class"],
        method=params["method"],
        parameters=parameters,
        adapter=kit.adapter,
        plot=plot,
    )
    report = sandbox.run(call)
    files = sandbox.collect(ctx.output_dir, keep=[plot] if plot else [])
    metadata: dict[str, Any] = {
        **report.details,
        "modulePath": params["modulePath"],
        "class": params["class"],
        "method": params["method"],
        "files": files,
        "sandbox": sandbox.protections,
    }
    if plot:
        metadata["image"] = f"{BASE_PATH}/{step}/{tool}/{ctx.name}/image"
    return Output(
        kind=report.kind, format=report.format, metadata=metadata, libraries=kit.libraries()
    )
