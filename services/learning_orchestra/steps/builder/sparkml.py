"""`builder/sparkml`: LO's Spark MLlib builder — the user's PySpark feature code, then one
fitted classifier per output table.

POST `{"trainDatasetName", "testDatasetName", "modelingCode", "classifiersList"}` records one
step per classifier code of `classifiersList` (`LR DT RF GB NB`), named
`{testDatasetName}{CLS}`, all `pending` before the 201 answer lists their paths; one job
makes them all. Its worker stages the two tables (verified copies), and the sandboxed child
(the `sparkml` family, toolkits/sparkml.py) starts Spark, runs `modelingCode` with
`training_df`, `testing_df` and `spark` bound, and fits the classifiers one after the other.
As each is done its predictions on `features_testing` are announced, and the worker here
copies them (Spark's Parquet parts, `table/part-*.parquet`, core/tables.py) and commits that
output at once, with `accuracy`, `F1` (on `features_evaluation`, null without it:
`metricsOn`), `fitTime` (seconds) and `classifier` in its metadata: its step is finished while
the next classifier fits. A classifier that fails fails its own output; code that fails, or
defines no `features_training`, fails every output with the reason. The outputs cannot be
re-run (PATCH: 405): delete them and POST again.

With LO_SPARK_MASTER set the child is the driver of that standalone master, and gets the
host's network so that the master and its executors reach it (docs/security.md, "Spark").
"""

from __future__ import annotations

import difflib
import fnmatch
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ...core.errors import Invalid, JobFailed
from ...core.model import NAME_PATTERN, Doc, Status
from ...core.steptype import SANDBOX_WORKER_PRELOAD, Content, StepType
from ...core.tables import PART_GLOB, TABLE_PARTS, table_location
from ...toolkits.sparkml import CLASSIFIERS, JOB, METADATA, TOOLKIT

if TYPE_CHECKING:
    from ...core.worker import JobContext
    from ...sandbox import OutputEvent, Sandbox

RUNNER = f"{__name__}:build_models"
PARENT_FIELDS = ("trainDatasetName", "testDatasetName")
#: Why Spark cannot run where the sandbox has no network namespace (docs/security.md).
NO_LOOPBACK = (
    "Spark cannot run in this sandbox: its driver listens on TCP ports of its own loopback, "
    "and without a network namespace (this server can make none) the sandbox's Landlock "
    "rules refuse every bind and all but LO_SANDBOX_TCP_PORTS; give the server user "
    "namespaces (non-root) or CAP_SYS_ADMIN (root), or set LO_SANDBOX_NETWORK=host "
    '(docs/security.md, "Spark")'
)
#: Column types of tables' `types` metadata that Spark reads as numbers.
NUMBERS = {"integer", "float", "boolean"}


def _classifiers(codes: list[str]) -> list[str]:
    """Known codes, each once: `classifiersList` names the classifiers to fit."""
    allowed = ", ".join(CLASSIFIERS)
    for code in codes:
        if code not in CLASSIFIERS:
            close = difflib.get_close_matches(code.upper(), CLASSIFIERS, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown classifier {code!r}{hint}: the codes are {allowed}")
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise ValueError(f"{', '.join(map(repr, repeated))} listed twice: each output once")
    return codes


ClassifierCodes = Annotated[
    list[str],
    Field(
        min_length=1,
        description="the classifiers to fit, each one output table "
        "`{testDatasetName}{code}`: "
        + ", ".join(f"{code} ({name})" for code, name in CLASSIFIERS.items()),
        json_schema_extra={"items": {"enum": list(CLASSIFIERS)}, "uniqueItems": True},
    ),
    AfterValidator(_classifiers),
]


class SparkMlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trainDatasetName: str = Field(
        pattern=NAME_PATTERN, description="the table bound as `training_df` (a Spark DataFrame)"
    )
    testDatasetName: str = Field(
        pattern=NAME_PATTERN,
        description="the table bound as `testing_df`; also the prefix of the output names",
    )
    modelingCode: str = Field(
        min_length=1,
        description="PySpark code run with `training_df`, `testing_df` and `spark` bound; it "
        "must define `features_training` (a DataFrame with a vector column `features` and a "
        "numeric `label`), `features_testing` (with `features`) and may define "
        "`features_evaluation` (as features_training), on which accuracy and F1 are measured",
    )
    classifiersList: ClassifierCodes
    description: str | None = None


def outputs(params: Mapping[str, Any]) -> dict[str, str]:
    """{output step name: classifier code}, in the order asked."""
    return {f"{params['testDatasetName']}{code}": code for code in params["classifiersList"]}


def check(params: Mapping[str, Any], parents: Mapping[str, Doc]) -> None:
    """Both inputs must be tables, and the test table's columns those of the training
    table, each as a number or a string in both (the modeling code treats them alike), as
    far as the inputs' metadata already says (a pending input is checked by the job)."""
    known = {}
    for field in PARENT_FIELDS:
        parent = parents[params[field]]
        if parent["status"] != Status.FINISHED:
            continue
        if parent.get("fields") is None:
            raise Invalid(
                f"{field}: step {parent['name']!r} ({parent.get('type')}) is not a table: "
                "use a dataset/csv or a table made from one",
                {"field": field},
            )
        known[field] = parent
    if len(known) < 2:
        return
    train, test = known["trainDatasetName"], known["testDatasetName"]
    missing = [c for c in test["fields"] if c not in train["fields"]]
    if missing:
        raise Invalid(
            f"testDatasetName: {', '.join(map(repr, missing))} of {test['name']!r} "
            f"{'is' if len(missing) == 1 else 'are'} not in {train['name']!r} (its columns: "
            f"{', '.join(train['fields'])}): the test table needs the training table's schema",
            {"field": "testDatasetName", "columns": missing},
        )
    types = (train.get("types") or {}, test.get("types") or {})
    clashes = [c for c in test["fields"] if _kind(types[0].get(c)) != _kind(types[1].get(c))]
    if clashes:
        described = ", ".join(
            f"{c!r} ({types[1].get(c)} here, {types[0].get(c)} in {train['name']!r})"
            for c in clashes
        )
        raise Invalid(
            f"testDatasetName: column types differ from the training table's: {described}; "
            "cast them alike (PATCH /transform/dataType)",
            {"field": "testDatasetName", "columns": clashes},
        )


def _kind(type_: str | None) -> str | None:
    """number, string, or None (not known, or another type: not compared)."""
    if type_ in NUMBERS:
        return "number"
    return "string" if type_ == "string" else None


STEP_TYPES = [
    StepType(
        step="builder",
        tool="sparkml",
        request=SparkMlRequest,
        runner=RUNNER,
        name_field="testDatasetName",
        alias="datasetName",
        content=Content.TABLE,
        parent_fields=PARENT_FIELDS,
        patchable=False,
        summary=(
            "Run PySpark feature code on two tables, then fit each classifier of "
            "classifiersList: one predictions table per classifier, `{testDatasetName}{code}`, "
            "with accuracy, F1 and fitTime in its metadata. The answer lists every output."
        ),
        preload=(*SANDBOX_WORKER_PRELOAD, "pyarrow.parquet"),
        check=check,
        sandbox=TOOLKIT.family,
        outputs=outputs,
        example={
            "trainDatasetName": "titanic_training",
            "testDatasetName": "titanic_testing",
            "modelingCode": (
                "from pyspark.ml.feature import VectorAssembler\n"
                "from pyspark.sql.functions import lit\n"
                "assembler = VectorAssembler(inputCols=['Pclass', 'SibSp', 'Parch'],"
                " outputCol='features', handleInvalid='skip')\n"
                "labelled = assembler.transform(training_df.withColumnRenamed('Survived',"
                " 'label'))\n"
                "features_training, features_evaluation = labelled.randomSplit([0.8, 0.2],"
                " seed=33)\n"
                "features_testing = assembler.transform(testing_df)\n"
            ),
            "classifiersList": ["LR", "DT"],
        },
    )
]


# -- the job (in a worker) -------------------------------------------------------------------
def build_models(ctx: JobContext) -> None:
    """builder/sparkml's job: stage both tables, run `toolkits.sparkml.build` in the sandbox
    and commit each output as the child announces it (`_settle`, on the tail's thread)."""
    from ...sandbox import Job, Sandbox
    from ...toolkits.spark import SparkOptions

    options = SparkOptions.from_settings(ctx.settings)
    # a driver of LO_SPARK_MASTER is reached by the master and the executors: host network
    sandbox = Sandbox(ctx, env=TOOLKIT.env, host_network=bool(options.master))
    if sandbox.plan.network == "tcp-ports":
        raise JobFailed(NO_LOOPBACK)
    tables = {field: _staged_table(sandbox, field) for field in PARENT_FIELDS}
    names = {key: name for name, key in ctx.outputs.items()}
    job = Job(
        function=JOB,
        parameters={
            "train": tables["trainDatasetName"],
            "test": tables["testDatasetName"],
            "code": ctx.parameters["modelingCode"],
            "spark": options,
            "app": f"learning-orchestra {ctx.spec.step_type} {ctx.name}",
        },
        outputs=tuple(names),
        metadata=METADATA,
    )
    sandbox.run_job(job, lambda event: _settle(ctx, sandbox, names[event.key], event))


def _staged_table(sandbox: Sandbox, field: str) -> str:
    """Where the child reads the table named by request field `field`: its staged copy's
    Parquet file or folder of parts."""
    from ...core.references import Reference

    name = sandbox.ctx.parameters[field]
    staged = sandbox.stage(Reference(name))
    if staged.format != "parquet":
        raise JobFailed(f"{field}: step {name!r} is not a table (stored as {staged.format})")
    return str(table_location(Path(staged.folder)))


def _settle(ctx: JobContext, sandbox: Sandbox, name: str, event: OutputEvent) -> None:
    """Commit output `name` the child announced ready (its Parquet parts as the table's
    parts, `table_metadata` read from them, the event's metrics), or fail it with the
    child's reason."""
    if not event.ok:
        ctx.fail_output(name, event.message, event.traceback)
        return
    try:
        metadata = _take_table(sandbox, event.key, ctx.output_dir_for(name))
    except (JobFailed, OSError, ValueError) as exc:  # pyarrow's errors are ValueErrors too
        ctx.fail_output(name, f"the predictions of {event.key} could not be stored: {exc}")
        return
    metadata.update(event.metadata)
    metadata.update(classifier=CLASSIFIERS[event.key], sandbox=sandbox.protections)
    # its own last word (the job's progress has moved on to the next classifier meanwhile)
    metadata["progress"] = {"stage": "stored", "classifier": event.key}
    from ...core.worker import Output

    ctx.commit_output(name, Output("table", "parquet", metadata, TOOLKIT.libraries()))


def _take_table(sandbox: Sandbox, key: str, staging: Path) -> dict[str, Any]:
    """Copy the Parquet parts Spark wrote for output `key` into `staging` as a table of
    parts (table/part-00000.parquet, ...: core/tables.py); its `table_metadata`."""
    from ...core.tableio import Table, table_metadata

    taken = staging / ".taken"
    files = sandbox.take_output(key, taken, lambda n: fnmatch.fnmatch(n, PART_GLOB))
    if not files:
        raise JobFailed("Spark wrote no Parquet part")
    parts = staging / TABLE_PARTS
    parts.mkdir()
    for number, file in enumerate(files):  # Spark's names carry a job id: numbered instead
        (taken / file).rename(parts / f"part-{number:05d}.parquet")
    shutil.rmtree(taken)
    table = Table(parts)
    schema = table.schema_arrow
    if any(not part.schema_arrow.equals(schema) for part in table.files):
        raise JobFailed("its Parquet parts have different schemas")
    return table_metadata(schema, table.num_rows)
