"""`python -m bench.spark [--quick]`: what Spark costs a run (issue 10).

Two cases, each side in fresh processes, interleaved (direct, server, direct, ...):

- **driver start**: a fresh Python process (pyspark imported first, untimed, as the sandbox
  pool's interpreters have it) starts a Spark session with the server's own settings
  (`toolkits/spark.start`: local[*], the run's own scratch), runs a one-row job and stops it:
  the JVM every run pays, since no driver is shared between runs;
- **builder/sparkml**: Titanic with the feature code of docs/api.md's worked example and two
  classifiers (LR, NB) — POST to both outputs observed `finished` through a real embedded
  server (its sandbox pool warmed first), against the same code and classifiers in a fresh
  process that starts its own Spark on the same Parquet files and writes the predictions the
  same way. The difference is what a step adds: staging, the sandbox, the commits.

One Markdown table on stdout (no goal is judged: the figures are for docs/benchmarks.md and
docs/spark.md); progress on stderr.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, Row, bounded, emit, header, running

DATA = ROOT / "examples" / "data" / "titanic"
CLASSIFIERS = ("LR", "NB")
FEATURES = """\
from pyspark.ml.feature import StringIndexer, VectorAssembler
from pyspark.sql.functions import lit

sex = StringIndexer(inputCol="Sex", outputCol="SexIndex").fit(training_df)
assembler = VectorAssembler(inputCols=["Pclass", "SexIndex", "SibSp", "Parch"],
                            outputCol="features")
labelled = assembler.transform(sex.transform(training_df.withColumnRenamed("Survived", "label")))
features_training, features_evaluation = labelled.randomSplit([0.8, 0.2], seed=33)
features_testing = assembler.transform(sex.transform(testing_df.withColumn("label", lit(0))))
"""

#: A fresh process: Spark started as a run starts it, a one-row job, stopped; the seconds.
START = """\
import sys, time
from pathlib import Path
from learning_orchestra.toolkits.spark import SparkOptions, start, stop
started = time.perf_counter()
spark = start(SparkOptions(), Path(sys.argv[1]), "bench")
spark.range(1).count()
print(time.perf_counter() - started)
stop(spark)
"""

#: A fresh process: the builder's work without the server (Spark started the same way, the
#: code run, each classifier fitted, its predictions written); the seconds.
DIRECT = """\
import json, sys, time
from pathlib import Path
from learning_orchestra.toolkits.spark import SparkOptions, start, stop
from pyspark.ml import classification
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
train, test, scratch, code, *names = sys.argv[1:]
started = time.perf_counter()
spark = start(SparkOptions(), Path(scratch), "bench")
variables = {"spark": spark, "training_df": spark.read.parquet(train),
             "testing_df": spark.read.parquet(test)}
exec(code, variables)
variables["features_training"].persist()
for name in names:
    model = getattr(classification, name)(featuresCol="features", labelCol="label")
    predictions = model.fit(variables["features_training"]).transform(variables["features_testing"])
    vectors = [f.name for f in predictions.schema.fields if isinstance(f.dataType, VectorUDT)]
    for column in vectors:
        predictions = predictions.withColumn(column, vector_to_array(column))
    predictions.write.parquet(str(Path(scratch) / name))
print(time.perf_counter() - started)
stop(spark)
"""
CLASSES = {"LR": "LogisticRegression", "NB": "NaiveBayes"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fresh(script: str, *args: str) -> float:
    """Run `script` in a fresh interpreter; the seconds it printed last."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONHASHSEED": "0", "SPARK_LOCAL_IP": "127.0.0.1", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the direct run failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.split()[-1])


def bench(folder: Path, rounds: int) -> list[Row]:
    from bench.run import Lo, lo_server

    starts: list[float] = []
    direct: list[float] = []
    server_side: list[float] = []
    with running(lo_server(folder, "spark")) as server:
        lo = Lo(server, folder / "spark")
        for name, file in (("train", "train.csv"), ("test", "test.csv")):
            lo.upload(name, DATA / file)
        tables = {
            name: str(next((folder / "spark" / "artifacts" / name).glob("*/table.parquet")))
            for name in ("train", "test")
        }
        body = {
            "trainDatasetName": "train",
            "modelingCode": FEATURES,
            "classifiersList": list(CLASSIFIERS),
        }
        log("warming the sparkml sandbox pool")
        lo.post("builder/sparkml", {**body, "testDatasetName": "test", "classifiersList": ["NB"]})
        lo.wait("testNB")
        lo.http.delete("/builder/sparkml/testNB")
        for round_ in range(rounds):
            log(f"round {round_ + 1}/{rounds}")
            with tempfile.TemporaryDirectory(dir=folder) as scratch:
                starts.append(fresh(START, scratch))
            with tempfile.TemporaryDirectory(dir=folder) as scratch:
                classes = [CLASSES[c] for c in CLASSIFIERS]
                direct.append(
                    fresh(DIRECT, tables["train"], tables["test"], scratch, FEATURES, *classes)
                )
            started = time.perf_counter()
            lo.post("builder/sparkml", {**body, "testDatasetName": "test"})
            for code in CLASSIFIERS:
                lo.wait(f"test{code}")
            server_side.append(time.perf_counter() - started)
            for code in CLASSIFIERS:
                lo.http.delete(f"/builder/sparkml/test{code}")
    return [
        Row("Spark driver start, per run", "start + a 1-row job", "s", starts),
        Row(
            "builder/sparkml, Titanic, LR + NB",
            "POST → both outputs finished (limit: the same run directly)",
            "s",
            server_side,
            limit=direct,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.spark", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--rounds", type=int, help="rounds (default 5, quick 1)")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)

    with (
        bounded(600 + 300 * rounds, "bench.spark"),
        tempfile.TemporaryDirectory(prefix="lo-bench-spark-") as tmp,
    ):
        rows = bench(Path(tmp), rounds)
    lines = header(f"python -m bench.spark{' --quick' if args.quick else ''}")
    emit(lines, rows, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
