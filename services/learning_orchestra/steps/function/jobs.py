"""function/python jobs, run in worker processes: the code itself runs in a sandboxed child.

The worker resolves `$name` and `$name.key` references to verified copies of the parents'
outputs and passes `#expr` values through unevaluated: loading (unpickling) outputs and
evaluating expressions happen in the child, next to the user's code, never here.
"""

from __future__ import annotations

from ...core import references
from ...core.worker import JobContext, Output
from ...sandbox import Request, Sandbox
from ...sandbox.protocol import Expression


def run_python(ctx: JobContext) -> Output:
    """function/python: `response` of the code, persisted in its natural format; files the
    code wrote in its working directory are kept as step files (`files/...`)."""
    sandbox = Sandbox(ctx)
    parameters = references.resolve(ctx.parameters["functionParameters"], sandbox.stage, Expression)
    report = sandbox.run(Request(code=ctx.parameters["function"], parameters=parameters))
    files = sandbox.collect(ctx.output_dir)
    return Output(
        kind=report.kind,
        format=report.format,
        metadata={**report.details, "files": files, "sandbox": sandbox.protections},
    )
