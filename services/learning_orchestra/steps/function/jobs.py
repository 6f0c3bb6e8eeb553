"""function/python jobs, run in worker processes: the code itself runs in a sandboxed child.

The worker resolves `$name` and `$name.key` references to verified copies of the parents'
outputs and passes `#expr` values through unevaluated: loading (unpickling) outputs and
evaluating expressions happen in the child, next to the user's code, never here.
builder/{pycaret,autokeras} (steps/builder) run the same way, with their toolkit's
environment and, when its adapter defines `builder_prelude`, that called first.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from ...core import references
from ...core.worker import JobContext, Output
from ...sandbox import Request, Sandbox
from ...sandbox.protocol import Expression

#: The hook a toolkit adapter may define, run in the child before a builder's code.
BUILDER_PRELUDE = "builder_prelude"


def run_python(ctx: JobContext) -> Output:
    """function/python (and builder/{tool}): `response` of the code, persisted in its
    natural format; files the code wrote in its working directory are kept as step files
    (`files/...`)."""
    env, prelude = _toolkit_setup(ctx.spec.step_type)
    sandbox = Sandbox(ctx, env=env)
    parameters = references.resolve(ctx.parameters["functionParameters"], sandbox.stage, Expression)
    request = Request(code=ctx.parameters["function"], parameters=parameters, prelude=prelude)
    report = sandbox.run(request)
    files = sandbox.collect(ctx.output_dir)
    return Output(
        kind=report.kind,
        format=report.format,
        metadata={**report.details, "files": files, "sandbox": sandbox.protections},
    )


def _toolkit_setup(step_type: str) -> tuple[Mapping[str, str], tuple[str, ...]]:
    """A builder step's toolkit environment and prelude; none for function/python."""
    step, tool = step_type.split("/")
    if step != "builder":
        return {}, ()
    from ...toolkits import toolkit

    kit = toolkit(tool)
    adapter = importlib.import_module(kit.adapter)  # declarations only: nothing heavy
    prelude = (f"{kit.adapter}:{BUILDER_PRELUDE}",) if hasattr(adapter, BUILDER_PRELUDE) else ()
    return kit.env, prelude
