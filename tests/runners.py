"""Job runners for the supervisor tests; imported by name inside real worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from learning_orchestra.core.errors import JobFailed
from learning_orchestra.core.worker import JobContext, Output


def succeed(ctx: JobContext) -> Output:
    print("hello from the job")
    (ctx.output_dir / "out.txt").write_text(str(ctx.parameters.get("value")))
    ctx.progress(step=1)
    return Output(kind="object", format="raw", metadata={"answer": 42})


def add_parent(ctx: JobContext) -> Output:
    """Reads its parent's output file and writes it plus one."""
    parent = ctx.parent(ctx.parameters["parent"])
    source = ctx.volume.artifact_dir(parent["name"], parent["_artifact"]) / "out.txt"
    (ctx.output_dir / "out.txt").write_text(str(int(source.read_text()) + 1))
    return Output(kind="object", format="raw")


def raise_error(ctx: JobContext) -> Output:
    raise ValueError("boom: the value was wrong")


def raise_job_failed(ctx: JobContext) -> Output:
    raise JobFailed("the input has no column 'x'")


def sleep(ctx: JobContext) -> Output:
    ctx.progress(sleeping=True)
    time.sleep(float(ctx.parameters.get("value") or 60))
    return Output(kind="object", format="raw")


def chatty(ctx: JobContext) -> Output:
    """Prints `value` MB, a line at a time, then its last line."""
    line = "x" * 1023 + "\n"
    for _ in range(int(ctx.parameters["value"]) * 1024):
        sys.stdout.write(line)
    print("the last line")
    return Output(kind="object", format="raw")


def exit_abruptly(ctx: JobContext) -> Output:
    os._exit(3)


def hog_memory(ctx: JobContext) -> Output:
    blocks = []
    for _ in range(400):  # up to ~4 GB, 10 MB at a time, touched so it is resident
        blocks.append(bytearray(10 * 1024 * 1024))
        time.sleep(0.02)
    return Output(kind="object", format="raw")


def spawn_grandchild(ctx: JobContext) -> Output:
    """Starts a long-lived child process and records its pid, then sleeps."""
    child = subprocess.Popen(["sleep", "300"])
    Path(ctx.parameters["pidfile"]).write_text(str(child.pid))
    ctx.progress(child=child.pid)
    time.sleep(300)
    return Output(kind="object", format="raw")


def write_json(ctx: JobContext) -> Output:
    """A dict output, for `$name.key` references."""
    (ctx.output_dir / "value.json").write_text(json.dumps(ctx.parameters["value"]))
    return Output(kind="object", format="json")


def describe_references(ctx: JobContext) -> Output:
    """Resolves its `value` parameter and records what each reference became."""
    resolved = ctx.resolve(ctx.parameters["value"])

    def describe(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: describe(v) for k, v in item.items()}
        if isinstance(item, list):
            return [describe(v) for v in item]
        if hasattr(item, "columns"):  # a DataFrame
            return {"dataframe": list(item.columns), "rows": len(item)}
        if hasattr(item, "read"):  # an open file
            return {"file": Path(item.name).name, "head": item.read(11).decode()}
        return item

    described = describe(resolved)
    (ctx.output_dir / "value.json").write_text(json.dumps(described))
    return Output(kind="object", format="json", metadata={"resolved": described})


#: Modules a worker must not import unless its step needs them (issue 6: the API's web
#: framework, and pandas where pyarrow does the work).
HEAVY_MODULES = ("fastapi", "starlette", "uvicorn", "pandas", "pyarrow.dataset")


def write_table(ctx: JobContext) -> Output:
    """A 10-row table output."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from learning_orchestra.core.tableio import TABLE_FILE, table_metadata

    table = pa.table({"a": list(range(10)), "b": [i * 0.5 for i in range(10)]})
    pq.write_table(table, ctx.output_dir / TABLE_FILE)
    return Output(kind="table", format="parquet", metadata=table_metadata(table.schema, 10))


def project_and_report_imports(ctx: JobContext) -> Output:
    """transform/projection's own runner, then which of HEAVY_MODULES the worker holds."""
    from learning_orchestra.steps.transform.jobs import project

    output = project(ctx)
    output.metadata["heavyModules"] = sorted(m for m in HEAVY_MODULES if m in sys.modules)
    return output


def report_progress(ctx: JobContext) -> Output:
    """Publishes `value` progress updates as fast as it can, then sleeps a moment."""
    for i in range(int(ctx.parameters["value"])):
        ctx.progress(done=i + 1)
    time.sleep(0.5)
    return Output(kind="object", format="raw")


def produce_outputs(ctx: JobContext) -> None:
    """A multi-output job: output `{name}{key}` holds `key`, in order. The output of key
    `fail` fails, that of `skip` is never reported, `boom` raises after the first output,
    and with `gate` (a path) each output waits for the file `{gate}.{key}` first."""
    params = ctx.parameters
    for index, (name, key) in enumerate(ctx.outputs.items()):
        ctx.progress(output=key)
        print(f"making {key}")
        while params.get("gate") and not Path(f"{params['gate']}.{key}").exists():
            time.sleep(0.05)
        if key == params.get("fail"):
            ctx.fail_output(name, f"{key} cannot be produced")
            continue
        if key == params.get("skip"):
            continue
        if params.get("boom") and index == 1:
            raise ValueError("boom after the first output")
        (ctx.output_dir_for(name) / "out.txt").write_text(key)
        ctx.commit_output(name, Output(kind="object", format="raw", metadata={"key": key}))
