"""The Spark MLlib adapter: builder/sparkml's whole job, run in its sandboxed child.

builder/sparkml (steps/builder/sparkml.py) is LO's Spark builder: the user's PySpark code
prepares features from two tables, then each requested classifier of pyspark.ml is fitted
and its predictions stored as a table of its own, `{testDatasetName}{CLS}`. Its worker hands
the child a `sandbox.Job` naming `build` (below), which, in the child:

1. starts a Spark driver of the run's own (toolkits/spark.py: `local[*]`, or the driver of
   LO_SPARK_MASTER), its folders in the child's TMPDIR (the sandbox closes the shared /tmp);
2. reads the two tables' staged Parquet copies as `training_df` and `testing_df`, and runs
   the user's `modelingCode` with them and the session (`spark`) bound as variables (its
   errors name modelingCode, their tracebacks start in the user's code);
3. checks what the code must define: `features_training` (a DataFrame with a vector column
   `features` and a numeric `label`), `features_testing` (with `features`) and, optionally,
   `features_evaluation` (as features_training);
4. for each classifier asked (`CLASSIFIERS`, default parameters, featuresCol="features",
   labelCol="label"), in order: fits it on features_training (`fitTime`, seconds), writes
   its predictions on features_testing with Spark's own writer (vector columns as arrays of
   doubles, so the table readers and JSON pages can show them), measures `accuracy` and
   `F1` on features_evaluation (null without it: `metricsOn` says which set), and announces
   the output at once, so the worker commits it while the next classifier fits. A classifier
   that fails (GBT on a multiclass label, naive Bayes on negative features) fails only its
   own output, with Spark's reason.

The JVM starts per run and is never shared (DESIGN.md, "Spark"). The family's pre-started
interpreters import pyspark's Python modules ahead of need (`TOOLKIT.preimport`), not the JVM.
This module is read by the API process and workers for `TOOLKIT`: it imports nothing of
Spark's at module level.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..sandbox.protocol import Failure
from . import Toolkit
from .spark import LOCAL_IP, SparkOptions, start

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from ..sandbox.child import Outputs

#: The codes of `classifiersList` and the pyspark.ml.classification class each stands for.
CLASSIFIERS = {
    "LR": "LogisticRegression",
    "DT": "DecisionTreeClassifier",
    "RF": "RandomForestClassifier",
    "GB": "GBTClassifier",
    "NB": "NaiveBayes",
}
#: What the user's code defines (features_evaluation is optional), with the columns each
#: must have.
FEATURES = {
    "features_training": ("features", "label"),
    "features_testing": ("features",),
    "features_evaluation": ("features", "label"),
}
#: The metadata each output's event may carry (the worker keeps only these).
METADATA = ("accuracy", "F1", "fitTime", "metricsOn", "sparkStartSeconds")

TOOLKIT = Toolkit(
    tool="sparkml",
    title="Spark MLlib",
    extra="spark",
    packages=("pyspark",),
    distributions=("pyspark",),
    adapter=__name__,
    # PySpark gives its Python workers PYTHONHASHSEED=0; the driver gets it too, for its
    # classifiers' default `seed` is hash(class name): random per process otherwise, so a
    # random forest would differ from one run to the next (and from the user's own run).
    env={
        **SparkOptions(local_ip=os.environ.get("SPARK_LOCAL_IP", LOCAL_IP)).environment(),
        "PYTHONHASHSEED": "0",
    },
    # pyspark's Python side (~1 s to import), not the JVM, which each run starts its own
    preimport=(
        "pyspark.sql",
        "pyspark.ml",
        "pyspark.ml.classification",
        "pyspark.ml.evaluation",
        "pyspark.ml.feature",
        "pyspark.ml.functions",
    ),
    metadata=METADATA,
    plots=False,
)

#: The function the child runs (`sandbox.Job.function`).
JOB = f"{__name__}:build"


def build(parameters: dict[str, Any], outputs: Outputs) -> None:
    """builder/sparkml in the sandboxed child (see the module's docstring). `parameters`:
    `train`/`test` (the staged tables' Parquet, a file or a folder of parts), `code`
    (modelingCode), `spark` (SparkOptions), `app` (the Spark application's name); one output
    per classifier code in `outputs.keys`."""
    from ..sandbox.child import compiled, execute, progress

    try:  # a syntax error shows at once, before a JVM starts
        compiled(parameters["code"])
    except Failure as failure:
        raise Failure(f"modelingCode: {failure.message}", failure.trace) from None
    count = len(outputs.keys)
    progress(stage="starting Spark", fitted=0, classifiers=count)
    started = time.monotonic()
    spark = start(parameters["spark"], Path(tempfile.gettempdir()) / "spark", parameters["app"])
    seconds = round(time.monotonic() - started, 3)
    sys.stderr.write(f"Spark {spark.version} ({parameters['spark'].url}) started in {seconds} s\n")
    try:
        variables = {
            "spark": spark,
            "training_df": spark.read.parquet(parameters["train"]),
            "testing_df": spark.read.parquet(parameters["test"]),
        }
        progress(stage="modelingCode", fitted=0, classifiers=count)
        try:
            defined = execute(parameters["code"], variables)
        except Failure as failure:
            raise Failure(f"modelingCode: {failure.message}", failure.trace, failure.kind) from None
        training, testing = (
            required(defined, "features_training"),
            required(defined, "features_testing"),
        )
        evaluation = frame(defined, "features_evaluation")
        for features in (training, testing, evaluation):
            if features is not None:
                features.persist()  # computed once for every classifier, not once each
        for done, key in enumerate(outputs.keys):
            progress(stage="fitting", classifier=key, fitted=done, classifiers=count)
            try:
                metadata = fit(key, training, testing, evaluation, outputs.folder(key))
            except Exception as exc:
                outputs.failed(key, failure_reason(key, exc), traceback.format_exc()[-16384:])
            else:
                outputs.ready(key, **metadata, sparkStartSeconds=seconds)
    finally:
        with contextlib.suppress(Exception):  # a JVM that died says why in the log already
            spark.stop()


def frame(defined: dict[str, Any], name: str) -> DataFrame | None:
    """The DataFrame the user's code defined as `name`, checked against what `FEATURES`
    asks of it, or None if it defined none. A `Failure` naming modelingCode and what to fix
    otherwise."""
    from pyspark.sql import DataFrame
    from pyspark.sql.types import NumericType

    value = defined.get(name)
    if value is None:
        return None
    columns = FEATURES[name]
    wanted = _wanted(name)
    if not isinstance(value, DataFrame):
        raise Failure(f"modelingCode: {name} must be {wanted}, not a {type(value).__name__}")
    missing = [c for c in columns if c not in value.columns]
    if missing:
        listed = ", ".join(value.columns) or "none"
        raise Failure(
            f"modelingCode: {name} must be {wanted}; it has no {', '.join(map(repr, missing))} "
            f"(its columns: {listed})"
        )
    types = {f.name: f.dataType for f in value.schema.fields}
    if not _is_vector(types["features"]):
        raise Failure(
            f"modelingCode: {name}'s 'features' must be a vector column (as "
            f"pyspark.ml.feature.VectorAssembler makes), not {types['features'].simpleString()}"
        )
    if "label" in columns and not isinstance(types["label"], NumericType):
        raise Failure(
            f"modelingCode: {name}'s 'label' must be numeric (class indexes 0, 1, ...), not "
            f"{types['label'].simpleString()}: StringIndexer turns a text label into indexes"
        )
    return value


def required(defined: dict[str, Any], name: str) -> DataFrame:
    """`frame(defined, name)`, which the user's code must define."""
    value = frame(defined, name)
    if value is None:
        raise Failure(f"modelingCode must define {name} ({_wanted(name)})")
    return value


def _wanted(name: str) -> str:
    return f"a DataFrame with {' and '.join(repr(c) for c in FEATURES[name])} columns"


def fit(
    key: str, training: DataFrame, testing: DataFrame, evaluation: DataFrame | None, folder: Path
) -> dict[str, Any]:
    """Fit classifier `key` on `training`, write its predictions on `testing` as Parquet
    into `folder`, score it on `evaluation`; the output's metadata."""
    from pyspark.ml import classification
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    estimator = getattr(classification, CLASSIFIERS[key])(featuresCol="features", labelCol="label")
    started = time.perf_counter()
    model = estimator.fit(training)
    fit_time = time.perf_counter() - started
    with_arrays(model.transform(testing)).write.mode("overwrite").parquet(str(folder))
    metrics: dict[str, Any] = {"accuracy": None, "F1": None, "metricsOn": None}
    if evaluation is not None:
        predicted = model.transform(evaluation).select("label", "prediction").persist()
        accuracy = MulticlassClassificationEvaluator(metricName="accuracy")
        metrics["accuracy"] = accuracy.evaluate(predicted)
        metrics["F1"] = MulticlassClassificationEvaluator(metricName="f1").evaluate(predicted)
        predicted.unpersist()
        metrics["metricsOn"] = "features_evaluation"
    return {**metrics, "fitTime": round(fit_time, 3)}


def with_arrays(frame: DataFrame) -> DataFrame:
    """`frame` with its vector columns (features, rawPrediction, probability) as arrays of
    doubles: Parquet readers outside Spark know no vectors (Spark stores them as structs)."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql.functions import col

    def column(name: str, type_: Any) -> Any:
        quoted = col(f"`{name.replace('`', '``')}`")
        return vector_to_array(quoted).alias(name) if _is_vector(type_) else quoted

    return frame.select(*(column(f.name, f.dataType) for f in frame.schema.fields))


def _is_vector(type_: Any) -> bool:
    from pyspark.ml.linalg import VectorUDT
    from pyspark.mllib.linalg import VectorUDT as OldVectorUDT

    return isinstance(type_, VectorUDT | OldVectorUDT)


def failure_reason(key: str, exc: BaseException) -> str:
    """Why classifier `key` failed, in a line or a few: Spark's own message without the JVM's
    stack trace (pyspark's captured exceptions carry it after a blank line); for an error of
    a Spark task (a `Py4JJavaError` wrapping "Job aborted due to stage failure: ..."), the
    exception at its root, which says what was wrong with the data."""
    from py4j.protocol import Py4JJavaError

    name = type(exc).__name__
    text = str(exc).strip().split("\n\n")[0].strip() or name
    if isinstance(exc, Py4JJavaError):
        with contextlib.suppress(Exception):  # the JVM is gone: keep Python's message
            cause = exc.java_exception
            while cause.getCause() is not None:
                cause = cause.getCause()
            name, _, text = str(cause.toString()).partition(": ")
            name = name.rpartition(".")[2]
    if len(text) > 2000:
        text = text[:2000] + " ..."
    return f"{key} ({CLASSIFIERS[key]}) failed: {name}: {text}"


__all__ = ["CLASSIFIERS", "JOB", "TOOLKIT", "build"]
