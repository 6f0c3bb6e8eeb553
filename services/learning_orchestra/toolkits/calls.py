"""The toolkit step types: call a toolkit's classes and objects, sandboxed.

Every step type that runs a toolkit's code declares one *call shape*, as its runner:

- `construct_object` (``model/{tool}``): ``modulePath.class(**classParameters)``; the object
  is the output.
- `invoke_method` (``train|tune|evaluate|predict/{tool}``): the stored object of step
  `parentName`, then its ``method(**methodParameters)``.
- `construct_and_call` (``transform/{tool}``) and `construct_call_and_plot`
  (``explore/{tool}``): ``modulePath.class(**classParameters).method(**methodParameters)``;
  explore also keeps a PNG plot of the result.

That is code the user chose (any class of the toolkit), so it runs in the sandboxed child
(learning_orchestra/sandbox, docs/security.md), as function/python does; the worker only
resolves references to verified copies and keeps what the child wrote. What is stored, and
what the step's metadata records (metrics, a Keras History, a search's best parameters), is
the toolkit adapter's decision (`outcome`, toolkits/__init__.py); the output is stored in its
natural format (core/formats.py).

Cheap checks run on POST/PATCH: names are identifiers, `modulePath` lies in one of the
toolkit's packages, which is installed (`find_spec` of the top-level package only: finding a
submodule would import its parents), and `modelName`/`parentName` name steps of this
toolkit that hold an object. Class, method and parameter names need the import, so the job
checks them first and fails naming the field at fault.
"""

from __future__ import annotations

import importlib.util
import keyword
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

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

#: The step kinds whose output is a toolkit object that methods can be called on.
OBJECT_STEPS = ("model", "train", "tune")


def _keyword_names(value: dict[str, Any]) -> dict[str, Any]:
    for name in value:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"{name!r} is not a Python parameter name")
    return value


#: Keyword arguments of a class or method: literals, $name/$name.key references or #expr
#: expressions (evaluated in the sandbox).
KeywordArguments = Annotated[dict[str, Any], AfterValidator(_keyword_names)]
ModulePath = Annotated[
    str,
    Field(
        pattern=MODULE_PATH_PATTERN,
        max_length=300,
        description="the module holding the class, e.g. sklearn.preprocessing",
    ),
]
MethodName = Annotated[
    str, Field(pattern=METHOD_PATTERN, max_length=200, description="the method to call")
]
StepName = Annotated[str, Field(pattern=NAME_PATTERN)]


class ToolkitCallRequest(BaseModel):
    """transform/{tool} and explore/{tool}."""

    model_config = ConfigDict(extra="forbid")

    name: StepName = Field(description="name of the step and its output")
    modulePath: ModulePath
    class_: str = Field(
        alias="class",
        pattern=CLASS_PATTERN,
        max_length=200,
        description="the class to instantiate (or a submodule, for module functions such as "
        "model_selection.train_test_split)",
    )
    classParameters: KeywordArguments = Field(description="keyword arguments of the class")
    method: MethodName
    methodParameters: KeywordArguments = Field(description="keyword arguments of the method")
    description: str | None = None


class ModelRequest(BaseModel):
    """model/{tool}: an object of a toolkit's class, kept to call methods on."""

    model_config = ConfigDict(extra="forbid")

    modelName: StepName = Field(description="name of the model step and its output")
    modulePath: ModulePath
    class_: str = Field(
        alias="class", pattern=CLASS_PATTERN, max_length=200, description="the class"
    )
    classParameters: KeywordArguments = Field(description="keyword arguments of the class")
    description: str | None = None


class MethodRequest(BaseModel):
    """train|tune|evaluate|predict/{tool}: a method of a stored object."""

    model_config = ConfigDict(extra="forbid")

    name: StepName = Field(description="name of the step and its output")
    modelName: StepName = Field(description="the model step this pipeline started from")
    parentName: StepName = Field(
        description="the step whose stored object the method is called on (a model, "
        "trained or tuned step)"
    )
    method: MethodName
    methodParameters: KeywordArguments = Field(description="keyword arguments of the method")
    description: str | None = None


StepCheck = Callable[[Mapping[str, Any], Mapping[str, Any]], None]


def module_path_check(kit: Toolkit) -> StepCheck:
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


def object_parents_check(step: str, kit: Toolkit) -> StepCheck:
    """The up-front check of `modelName` and `parentName`: steps of this toolkit, a model
    step and a step holding an object (model, train, tune) respectively."""
    objects = [f"{kind}/{kit.tool}" for kind in OBJECT_STEPS]

    def check(parameters: Mapping[str, Any], parents: Mapping[str, Any]) -> None:
        for field, allowed in (("modelName", objects[:1]), ("parentName", objects)):
            parent = parents[parameters[field]]
            if parent["type"] not in allowed:
                raise Invalid(
                    f"{field}: {parent['name']!r} is a {parent['type']} step; {step}/"
                    f"{kit.tool} needs a {' or '.join(allowed)} step there",
                    {"field": field, "type": parent["type"]},
                )

    return check


def _toolkit_step_type(
    step: str,
    tool: str,
    *,
    request: type[BaseModel],
    runner: str,
    summary: str,
    check: StepCheck,
    example: Mapping[str, Any] | None,
    **declared: Any,
) -> StepType:
    kit = toolkit(tool)
    return StepType(
        step=step,
        tool=tool,
        request=request,
        runner=f"{__name__}:{runner}",
        summary=summary,
        preload=SANDBOX_WORKER_PRELOAD,
        check=check,
        sandbox=kit.family,
        example=example,
        **declared,
    )


def toolkit_step_type(step: str, tool: str, example: Mapping[str, Any] | None = None) -> StepType:
    """`transform/{tool}` or `explore/{tool}`: `modulePath.class(**classParameters)`, then
    `method(**methodParameters)`; explore keeps a PNG of the result. `example` is a valid
    POST body for the OpenAPI document."""
    kit = toolkit(tool)
    explore = step == "explore"
    what = "stores the result and its PNG plot" if explore else "stores the result"
    return _toolkit_step_type(
        step,
        tool,
        request=ToolkitCallRequest,
        runner="construct_call_and_plot" if explore else "construct_and_call",
        content=Content.IMAGE if explore else Content.RUNS,
        summary=(
            f"Instantiate a {kit.title} class (modulePath.class(**classParameters)), call "
            f"method(**methodParameters) in a sandboxed process, and {what}."
            + (" GET .../{name} and .../{name}/image answer the PNG." if explore else "")
        ),
        check=module_path_check(kit),
        example=example,
    )


def model_step_type(tool: str, example: Mapping[str, Any] | None = None) -> StepType:
    """`model/{tool}`: `modulePath.class(**classParameters)`, stored to call methods on."""
    kit = toolkit(tool)
    return _toolkit_step_type(
        "model",
        tool,
        request=ModelRequest,
        runner="construct_object",
        name_field="modelName",
        alias="modelName",
        summary=(
            f"Instantiate a {kit.title} class (modulePath.class(**classParameters)) in a "
            "sandboxed process and store the object, for train/tune/evaluate/predict steps."
        ),
        check=module_path_check(kit),
        example=example,
    )


def method_step_type(step: str, tool: str, example: Mapping[str, Any] | None = None) -> StepType:
    """`{step}/{tool}` for step train, tune, evaluate or predict: `method(**methodParameters)`
    on the stored object of step `parentName`."""
    kit = toolkit(tool)
    return _toolkit_step_type(
        step,
        tool,
        request=MethodRequest,
        runner="invoke_method",
        parent_fields=("modelName", "parentName"),
        summary=(
            f"Call method(**methodParameters) on the stored {kit.title} object of step "
            "parentName, in a sandboxed process; store what the toolkit adapter keeps of it "
            "(a fitted model, metrics, predictions), with its metadata."
        ),
        check=object_parents_check(step, kit),
        example=example,
    )


# -- runners: one per call shape, run in a job's worker -----------------------------------------
def construct_object(ctx: JobContext) -> Output:
    """model/{tool}: the object `modulePath.class(**classParameters)`."""
    return _call(ctx, "construct", ("classParameters",))


def invoke_method(ctx: JobContext) -> Output:
    """train|tune|evaluate|predict/{tool}: `parentName`'s object's `method(**methodParameters)`."""
    return _call(ctx, "invoke", ("methodParameters",), target=ctx.parameters["parentName"])


def construct_and_call(ctx: JobContext) -> Output:
    """transform/{tool}: `modulePath.class(**classParameters).method(**methodParameters)`."""
    return _call(ctx, "construct+call", ("classParameters", "methodParameters"))


def construct_call_and_plot(ctx: JobContext) -> Output:
    """explore/{tool}: as transform, and a PNG plot of the result."""
    return _call(ctx, "construct+call", ("classParameters", "methodParameters"), plot=True)


def _call(
    ctx: JobContext,
    shape: str,
    groups: tuple[str, ...],
    *,
    target: str | None = None,
    plot: bool = False,
) -> Output:
    from ..core.worker import Output
    from ..sandbox import Call, Sandbox
    from ..sandbox.protocol import Expression

    step, tool = ctx.spec.step_type.split("/")
    kit = toolkit(tool)
    image = IMAGE_FILE if plot else None
    sandbox = Sandbox(ctx, env=kit.env)
    params = ctx.parameters
    given = {group: params[group] for group in groups}
    if target is not None:
        given["target"] = f"${target}"  # staged like any reference: a verified copy
    call = Call(
        shape=shape,
        step=step,
        module_path=params.get("modulePath"),
        class_name=params.get("class"),
        method=params.get("method"),
        parameters=references.resolve(given, sandbox.stage, Expression),
        adapter=kit.adapter,
        plot=image,
        metadata=kit.metadata,
    )
    report = sandbox.run(call)
    files = sandbox.collect(ctx.output_dir, keep=[image] if image else [])
    metadata: dict[str, Any] = {
        **report.details,
        **report.metadata,
        **{key: params[key] for key in ("modulePath", "class", "method") if key in params},
        "files": files,
        "sandbox": sandbox.protections,
    }
    if image:
        metadata["image"] = f"{BASE_PATH}/{step}/{tool}/{ctx.name}/image"
    return Output(
        kind=report.kind, format=report.format, metadata=metadata, libraries=kit.libraries()
    )
