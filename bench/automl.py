"""`python -m bench.automl [--quick]`: what running AutoML as atomic steps costs (issue 9).

The same two pipelines run directly, in one Python process, and through a real embedded
server step by step, interleaved (direct, server, direct, server, ...), so whatever else
loads the machine weighs on both:

- PyCaret, Titanic: `ClassificationExperiment.setup` (model/pycaret), `compare_models`
  (train/pycaret), `tune_model` (tune/pycaret), `predict_model` on the hold-out
  (evaluate/pycaret) and on test.csv (predict/pycaret);
- AutoKeras, MNIST 5k: the arrays loaded from the .npz (function/python), `ImageClassifier`
  (model/autokeras), `fit` (train/autokeras), `predict` and `evaluate`.

One declaration per stage (`Stage`) gives both the server's step body and the direct call,
so both sides run the same calls with the same arguments. The direct side is a fresh child
(`--direct PIPELINE`) that imports its toolkit first, untimed (the server's sandbox pool
has imported it too), then times each call, and reports its peak RSS (`getrusage`). The
server side — an embedded server per pipeline, its sandbox pool warmed first — times POST →
observed `finished` of each step, and samples its memory (`StepPeaks`): the peak RSS of the
processes that ran the steps, and the peak of all its processes' PSS summed.

One Markdown table comes out: per stage, the server's seconds against the direct ones and
the seconds the server added (paired by round); per pipeline the totals, with the ratio of
medians judged (≤ 1.02x) when the direct pipeline runs a minute or more, and the memory.
`--quick` uses tiny budgets and one round. Everything is bounded (SIGALRM), the servers and
the direct child are stopped however the run ends; progress goes to stderr, the table alone
to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

from bench.harness import MB, ROOT, Row, bounded, emit, header, ratio_at_most, running

if TYPE_CHECKING:
    from bench.run import Lo

DATA = ROOT / "examples" / "data"
#: A pipeline whose direct run takes this long or more has its ratio of medians judged.
LONG_SECONDS = 60.0
RATIO_GOAL = 1.02
#: The longest wait one observe request may ask for (steps/observe.py MAX_TIMEOUT).
OBSERVE_MAX = 3600


@dataclass(frozen=True)
class Budget:
    """How much each pipeline does: `QUICK` to try the bench, `FULL` for docs/benchmarks.md."""

    include: tuple[str, ...] | None  # compare_models' candidates (None: its default list)
    fold: int  # PyCaret's cross-validation folds (compare and tune)
    n_iter: int  # tune_model's random-search iterations
    max_trials: int  # AutoKeras' search
    epochs: int
    images: int  # MNIST training images (of 4,000); the 1,000 test images always
    rounds: int
    alarm: int  # seconds the whole run may take


QUICK = Budget(include=("lr", "dt"), fold=3, n_iter=2, max_trials=1, epochs=1, images=1000,
               rounds=1, alarm=1200)  # fmt: skip
#: Each pipeline runs a minute or more directly on this project's 2-core machine, even quiet:
#: compare_models' default list, then tune_model with the monograph's n_iter=100, both with
#: PyCaret's default 10 folds (~2 min); AutoKeras' first trial (greedy tuner: the "vanilla"
#: conv net) then its final fit, 15 epochs each (~80 s). A second AutoKeras trial would be
#: the tuner's ResNet50, at ~30 minutes an epoch here.
FULL = Budget(include=None, fold=10, n_iter=100, max_trials=1, epochs=15, images=4000,
              rounds=3, alarm=3 * 3600)  # fmt: skip


# -- the pipelines: one declaration per stage, for both sides ------------------------------
@dataclass(frozen=True)
class Stage:
    """One step of a pipeline. `parameters` may hold `$stage` or `$stage.key` references to
    an earlier stage's result or to a dataset. A stage is one of three call shapes:
    `module` + `cls` (a model step: construct), `parent` + `method` (train, tune, evaluate,
    predict: call a method on the object of stage `parent`), or `code` (function/python)."""

    name: str
    route: str
    parameters: dict[str, Any]
    module: str = ""
    cls: str = ""
    parent: str = ""
    method: str = ""
    code: str = ""


@dataclass(frozen=True)
class Dataset:
    """A file uploaded once to the server, as `route` (dataset/csv or dataset/generic)."""

    route: str
    path: Path


@dataclass(frozen=True)
class Pipeline:
    key: str  # the `--only` and `--direct` value, and the step names' prefix
    title: str
    datasets: Mapping[str, Dataset]
    stages: tuple[Stage, ...]
    #: How the direct side builds the model stage's object from its class, parameters and a
    #: scratch folder, as the server's adapter does.
    construct: Callable[[type, dict[str, Any], Path], Any]
    #: Arguments the direct side gives every method call unless the stage does, as the
    #: server's adapter does (PyCaret's `verbose=False`: its tables go to the metadata).
    method_defaults: Mapping[str, Any] = field(default_factory=dict)


TITANIC = "titanic"
TITANIC_TEST = "titanic_test"
MNIST = "mnist"

#: function/python: the arrays of the uploaded .npz (`data`, an open binary file), as the
#: monograph's Appendix B loads them, the training images cut to the budget's `images`.
LOAD_MNIST = """
import numpy as np

with np.load(data) as digits:
    response = {
        "x_train": digits["x_train"][:images],
        "y_train": digits["y_train"][:images],
        "x_test": digits["x_test"],
        "y_test": digits["y_test"],
    }
"""


def pipelines(budget: Budget) -> dict[str, Pipeline]:
    """The two pipelines with `budget`'s values (the bodies of the steps' declared examples,
    services/learning_orchestra/steps/*/__init__.py, with these budgets)."""
    compare: dict[str, Any] = {"fold": budget.fold, "n_select": 1}
    if budget.include is not None:
        compare["include"] = list(budget.include)
    pycaret = Pipeline(
        "pycaret",
        "PyCaret Titanic",
        {
            TITANIC: Dataset("dataset/csv", DATA / "titanic" / "train.csv"),
            TITANIC_TEST: Dataset("dataset/csv", DATA / "titanic" / "test.csv"),
        },
        (
            Stage(
                "model",
                "model/pycaret",
                {
                    "data": f"${TITANIC}",
                    "target": "Survived",
                    "ignore_features": ["Name", "Ticket", "Cabin"],
                    "session_id": 1,
                },
                module="pycaret.classification",
                cls="ClassificationExperiment",
            ),
            Stage("train", "train/pycaret", compare, parent="model", method="compare_models"),
            Stage(
                "tune",
                "tune/pycaret",
                {"estimator": "$train", "n_iter": budget.n_iter, "fold": budget.fold},
                parent="model",
                method="tune_model",
            ),
            Stage(
                "evaluate",
                "evaluate/pycaret",
                {"estimator": "$tune"},
                parent="model",
                method="predict_model",
            ),
            Stage(
                "predict",
                "predict/pycaret",
                {"estimator": "$tune", "data": f"${TITANIC_TEST}"},
                parent="model",
                method="predict_model",
            ),
        ),
        pycaret_experiment,
        {"verbose": False},
    )
    autokeras = Pipeline(
        "autokeras",
        "AutoKeras MNIST",
        {MNIST: Dataset("dataset/generic", DATA / "mnist" / "mnist_5k.npz")},
        (
            Stage(
                "load",
                "function/python",
                {"data": f"${MNIST}", "images": budget.images},
                code=LOAD_MNIST,
            ),
            Stage(
                "model",
                "model/autokeras",
                {"max_trials": budget.max_trials, "overwrite": True, "seed": 1},
                module="autokeras",
                cls="ImageClassifier",
            ),
            Stage(
                "train",
                "train/autokeras",
                {
                    "x": "$load.x_train",
                    "y": "$load.y_train",
                    "epochs": budget.epochs,
                    "validation_split": 0.1,
                },
                parent="model",
                method="fit",
            ),
            Stage(
                "predict",
                "predict/autokeras",
                {"x": "$load.x_test"},
                parent="train",
                method="predict",
            ),
            Stage(
                "evaluate",
                "evaluate/autokeras",
                {"x": "$load.x_test", "y": "$load.y_test"},
                parent="train",
                method="evaluate",
            ),
        ),
        autokeras_task,
        {"verbose": 2},  # a line per epoch, as train/predict/evaluate/autokeras default to
    )
    return {p.key: p for p in (pycaret, autokeras)}


def pycaret_experiment(cls: type, parameters: dict[str, Any], scratch: Path) -> Any:
    """An experiment after its `setup`, quiet as model/pycaret forces it (no display, no HTML,
    no logs.log)."""
    experiment = cls()
    experiment.setup(**parameters, verbose=False, html=False, system_log=False)
    return experiment


def autokeras_task(cls: type, parameters: dict[str, Any], scratch: Path) -> Any:
    """The task, its trials in `scratch` (the server's adapter gives it the step's scratch)."""
    return cls(**parameters, directory=str(scratch))


def resolve(value: Any, lookup: Callable[[str, str | None], Any]) -> Any:
    """`value` with each `$stage` / `$stage.key` string replaced by `lookup(stage, key)`,
    in lists and dicts too."""
    if isinstance(value, str) and value.startswith("$"):
        stage, _, key = value[1:].partition(".")
        return lookup(stage, key or None)
    if isinstance(value, list):
        return [resolve(item, lookup) for item in value]
    if isinstance(value, dict):
        return {name: resolve(item, lookup) for name, item in value.items()}
    return value


# -- the server side -----------------------------------------------------------------------
def step_name(pipeline: Pipeline, run: str, stage: str) -> str:
    """The server's step of `stage` in run `run` (a round, or a warm-up)."""
    return f"{pipeline.key}_{run}_{stage}"


def step_body(pipeline: Pipeline, stage: Stage, run: str) -> dict[str, Any]:
    """The POST body of `stage` in run `run`: references to stages become step names."""

    def reference(name: str, key: str | None) -> str:
        step = name if name in pipeline.datasets else step_name(pipeline, run, name)
        return f"${step}.{key}" if key else f"${step}"

    parameters = resolve(stage.parameters, reference)
    name = step_name(pipeline, run, stage.name)
    if stage.code:
        return {"name": name, "function": stage.code, "functionParameters": parameters}
    model = step_name(pipeline, run, next(s.name for s in pipeline.stages if s.module))
    if stage.module:
        return {"modelName": name, "modulePath": stage.module, "class": stage.cls,
                "classParameters": parameters}  # fmt: skip
    return {"name": name, "modelName": model, "parentName": step_name(pipeline, run, stage.parent),
            "method": stage.method, "methodParameters": parameters}  # fmt: skip


def upload(lo: Lo, name: str, dataset: Dataset) -> None:
    """Upload `dataset` as step `name` (multipart), and wait for it."""
    with dataset.path.open("rb") as handle:
        files = {"file": (dataset.path.name, handle, "application/octet-stream")}
        response = lo.http.post(f"/{dataset.route}", data={"datasetName": name}, files=files)
    if response.status_code != 201:
        raise RuntimeError(f"upload {name}: {response.status_code} {response.text[:500]}")
    lo.wait(name)


def warm_up(lo: Lo, pipeline: Pipeline, tries: int = 40) -> None:
    """Run the stages that need no earlier stage until each runs in a pre-started sandbox
    interpreter: a family's pool starts with its first step (docs/architecture.md), and the
    table measures the steady state, not the import the first steps of a server pay."""
    for stage in pipeline.stages:
        if not references(stage) <= set(pipeline.datasets):
            continue
        for i in range(tries):
            body = step_body(pipeline, stage, f"warm{i}")
            lo.post(stage.route, body)
            meta = lo.wait(body.get("name") or body["modelName"], timeout=900)
            if (meta.get("sandbox") or {}).get("pooled"):
                break
            time.sleep(1)
        else:
            raise RuntimeError(f"{stage.route} never ran in a pooled sandbox interpreter")


class StepPeaks(threading.Thread):
    """The server's memory while in a `with`, two ways (MB):

    - `peak`: the peak RSS of the processes that ran the steps. Every descendant of the
      server is sampled (its kernel high-water mark, VmHWM, so a peak between two samples
      still counts), and those that ended by the end — the one-use sandboxed interpreters
      that ran the steps, their children (joblib's workers), the jobs' workers — make the
      peak; the standing processes (API, forkserver, zygotes, the idle pool) do not.
      (`harness.PeakRss` counts only processes started inside its block, which misses the
      pool's interpreters, forked ahead of need.) A process forked from a zygote counts only
      the pages it touched, while a fresh process counts every page of the libraries it
      loaded: this figure leaves out the shared libraries' untouched pages.
    - `whole`: the peak of the proportional set size (PSS) of the server and all its
      processes, summed — what the machine gives the server, the standing processes
      included, shared pages counted once. PSS splits a page among all the processes that
      map it, this side's or not (the direct child and the server's zygote share
      TensorFlow's libraries while both live): a rough figure.

    Sampling is sparse (VmHWM every `interval` s, PSS every `whole_interval` s: reading a
    TensorFlow process's `smaps_rollup` takes ~8 ms) so that it takes ~1% of a core, not
    the few % that would slow the side it watches. Reading other users' /proc files (the
    sandbox runs as `nobody`) needs root; else `whole` leaves those processes out."""

    def __init__(self, pid: int, interval: float = 0.25, whole_interval: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.root = pid
        self.interval = interval
        self.whole_interval = whole_interval
        self.peaks: dict[int, float] = {}
        self.stopped = threading.Event()
        self.peak = 0.0
        self.whole = 0.0

    def descendants(self) -> set[int]:
        import psutil

        with contextlib.suppress(psutil.Error):
            return {p.pid for p in psutil.Process(self.root).children(recursive=True)}
        return set()

    def root_alive(self) -> bool:
        return Path(f"/proc/{self.root}").exists()

    def run(self) -> None:
        whole_at = 0.0
        while not self.stopped.wait(self.interval):
            pids = self.descendants()
            for pid in pids:
                if (hwm := proc_mb(pid, "status", "VmHWM:")) is not None:
                    self.peaks[pid] = max(self.peaks.get(pid, 0.0), hwm)
            if time.monotonic() - whole_at >= self.whole_interval:
                whole_at = time.monotonic()
                pss = (proc_mb(pid, "smaps_rollup", "Pss:") for pid in pids | {self.root})
                self.whole = max(self.whole, sum(mb or 0.0 for mb in pss))

    def __enter__(self) -> StepPeaks:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.root_alive():
            time.sleep(0.5)  # the step's interpreter exits as its step is seen finished
        self.stopped.set()
        self.join(5)
        alive = self.descendants()
        self.peak = max((mb for pid, mb in self.peaks.items() if pid not in alive), default=0.0)


def proc_mb(pid: int, file: str, field: str) -> float | None:
    """A `field: N kB` line of /proc/`pid`/`file`, in MB (None once the process is gone)."""
    try:
        with open(f"/proc/{pid}/{file}") as lines:
            for line in lines:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024 / MB
    except OSError:
        return None
    return None


@dataclass
class Samples:
    """One side's measurements of a pipeline, a list entry per round: seconds per stage, the
    peak RSS of the process(es) that ran the stages and the whole side's peak memory (PSS of
    all its processes, summed)."""

    seconds: dict[str, list[float]] = field(default_factory=dict)
    peak_mb: list[float] = field(default_factory=list)
    whole_mb: list[float] = field(default_factory=list)

    def add(self, seconds: Mapping[str, float], peak_mb: float, whole_mb: float) -> None:
        for stage, value in seconds.items():
            self.seconds.setdefault(stage, []).append(value)
        self.peak_mb.append(peak_mb)
        self.whole_mb.append(whole_mb)

    def totals(self) -> list[float]:
        return [sum(round_) for round_ in zip(*self.seconds.values(), strict=True)]


def through_server(
    lo: Lo, pipeline: Pipeline, run: str, timeout: float
) -> tuple[dict[str, float], float, float]:
    """One run of `pipeline` step by step (POST, then observe until finished, per stage):
    seconds per stage, the peak RSS of the processes that ran the steps, the server's whole
    peak memory (`StepPeaks`)."""
    seconds: dict[str, float] = {}
    with StepPeaks(lo.server.pid) as peaks:
        for stage in pipeline.stages:
            body = step_body(pipeline, stage, run)
            started = time.perf_counter()
            lo.post(stage.route, body)
            lo.wait(body.get("name") or body["modelName"], timeout=timeout)
            seconds[stage.name] = time.perf_counter() - started
            log(f"  server {pipeline.key} {stage.name}: {seconds[stage.name]:.2f} s")
    return seconds, peaks.peak, peaks.whole


# -- the direct side -----------------------------------------------------------------------
def run_direct(pipeline: Pipeline, scratch: Path) -> dict[str, Any]:
    """Run `pipeline` in this process, as a user's script would: {"seconds": {stage: s},
    "peak_mb": this process's (or a child's) peak RSS}. Imports are paid before, untimed."""
    for stage in pipeline.stages:
        if stage.module:
            importlib.import_module(stage.module)
    loaded: dict[str, Any] = {}
    objects: dict[str, Any] = {}  # the object each stage leaves to call methods on
    values: dict[str, Any] = {}  # what each stage returned

    def lookup(name: str, key: str | None) -> Any:
        if name in pipeline.datasets and name not in loaded:
            loaded[name] = load(pipeline.datasets[name])
        value = loaded[name] if name in pipeline.datasets else values[name]
        return value[key] if key else value

    seconds: dict[str, float] = {}
    for stage in pipeline.stages:
        started = time.perf_counter()
        parameters = resolve(stage.parameters, lookup)  # reading a dataset counts, as on the server
        if stage.code:
            namespace = dict(parameters)
            exec(
                compile(stage.code, stage.name, "exec"), namespace
            )  # the stage's own code, as the sandbox runs it
            values[stage.name] = namespace["response"]
        elif stage.module:
            cls = getattr(importlib.import_module(stage.module), stage.cls)
            objects[stage.name] = values[stage.name] = pipeline.construct(cls, parameters, scratch)
        else:
            target = objects[stage.parent]
            call = getattr(target, stage.method)
            values[stage.name] = call(**{**pipeline.method_defaults, **parameters})
            objects[stage.name] = target
        seconds[stage.name] = time.perf_counter() - started
        log(f"  direct {pipeline.key} {stage.name}: {seconds[stage.name]:.2f} s")
    # ru_maxrss in KiB; RUSAGE_CHILDREN: the largest of the children it waited for (joblib's)
    peak_kb = max(
        resource.getrusage(w).ru_maxrss for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return {"seconds": seconds, "peak_mb": peak_kb * 1024 / MB}


def references(stage: Stage) -> set[str]:
    """The stages and datasets `stage` refers to."""
    found: set[str] = set()
    resolve(stage.parameters, lambda name, key: found.add(name))
    return found | ({stage.parent} if stage.parent else set())


def load(dataset: Dataset) -> Any:
    """A dataset as a step reads it: a CSV as a DataFrame, a generic file as a binary file."""
    if dataset.route == "dataset/csv":
        import pandas as pd

        return pd.read_csv(dataset.path)
    return dataset.path.open("rb")


def direct_child(
    pipeline: Pipeline, quick: bool, folder: Path
) -> tuple[dict[str, float], float, float]:
    """Run `pipeline` directly in a fresh child process (`--direct`), in a scratch folder,
    with the environment the server's sandbox gives that toolkit (quiet logs): seconds per
    stage, its peak RSS, and the peak PSS of it and its children (joblib's) summed."""
    from learning_orchestra.toolkits import toolkit

    scratch = Path(tempfile.mkdtemp(prefix=f"direct-{pipeline.key}-", dir=folder))
    result = scratch / "result.json"
    command = [sys.executable, "-m", "bench.automl", "--direct", pipeline.key]
    command += ["--result", str(result), *(["--quick"] if quick else [])]
    env = {**os.environ, **toolkit(pipeline.key).env, "PYTHONPATH": str(ROOT)}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with (scratch / "log.txt").open("wb") as output:
        child = subprocess.Popen(command, cwd=scratch, env=env, stdout=output, stderr=output,
                                 start_new_session=True)  # fmt: skip
        try:
            with StepPeaks(child.pid) as sampled:  # its PSS and its children's, as the server's
                code = child.wait()
        finally:  # stopped (the alarm, SIGTERM): it and its joblib workers go too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    if code:
        tail = (scratch / "log.txt").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"direct {pipeline.key} exited {code}:\n{tail}")
    report = json.loads(result.read_text())
    return report["seconds"], report["peak_mb"], sampled.whole


# -- the table -----------------------------------------------------------------------------
def rows_of(pipeline: Pipeline, server: Samples, direct: Samples) -> list[Row]:
    """Per stage: server seconds against direct ones, and the seconds added (paired by
    round); the totals, judged by ratio when the direct pipeline runs a minute or more; the
    server's memory (`StepPeaks`: its step processes', and its whole) against the direct
    process's peak RSS, and the MB added."""
    case = pipeline.title
    rows: list[Row] = []

    def pair(what: str, ours: list[float], theirs: list[float], unit: str = "s") -> None:
        added = [a - b for a, b in zip(ours, theirs, strict=True)]
        rows.append(Row(case, f"{what}: server vs direct", unit, ours, limit=theirs))
        rows.append(Row(case, f"{what}: added by the server", unit, added))

    for stage in pipeline.stages:
        pair(f"{stage.route} {stage.method or stage.cls or 'load'}",
             server.seconds[stage.name], direct.seconds[stage.name])  # fmt: skip
    total, direct_total = server.totals(), direct.totals()
    long = median(direct_total) >= LONG_SECONDS
    pair("total", total, direct_total)
    if long:  # the ratio of medians is judged on the pipelines that run a minute or more
        rows[-2] = replace(rows[-2], goal=f"≤ {RATIO_GOAL}x", check=ratio_at_most(RATIO_GOAL))
    pair("peak RSS of the processes running the stages", server.peak_mb, direct.peak_mb, "MB")
    pair("peak memory of all processes (PSS summed)", server.whole_mb, direct.whole_mb, "MB")
    return rows


# -- main ----------------------------------------------------------------------------------
def log(message: str) -> None:
    """Progress goes to stderr; stdout is the table alone."""
    print(f"[bench.automl] {message}", file=sys.stderr, flush=True)


def versions() -> str:
    names = ("pycaret", "scikit-learn", "autokeras", "keras", "tensorflow-cpu")
    found = []
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    return ", ".join(found)


def bench(folder: Path, chosen: list[Pipeline], budget: Budget, quick: bool) -> list[Row]:
    """The interleaved rounds of each pipeline, direct, server, direct, ..., each pipeline on
    a server of its own (so that its memory is that pipeline's only: a sandbox family's
    zygote stays once started)."""
    from bench.run import Lo, lo_server

    timeout = min(budget.alarm, OBSERVE_MAX)  # a step may take what the run may take
    samples = {p.key: (Samples(), Samples()) for p in chosen}
    clients: dict[str, Lo] = {}
    with contextlib.ExitStack() as servers:
        try:
            for pipeline in chosen:
                server = servers.enter_context(running(lo_server(folder, pipeline.key)))
                clients[pipeline.key] = lo = Lo(server, folder / pipeline.key)
                for name, dataset in pipeline.datasets.items():
                    upload(lo, name, dataset)
                log(f"{pipeline.key}: warming the sandbox pool")
                warm_up(lo, pipeline)
            for round_ in range(budget.rounds):
                for pipeline in chosen:
                    lo, (ours, theirs) = clients[pipeline.key], samples[pipeline.key]
                    log(f"round {round_ + 1}/{budget.rounds}: {pipeline.key} direct")
                    seconds, peak, whole = direct_child(pipeline, quick, folder)
                    log("  direct " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()))
                    theirs.add(seconds, peak, whole)
                    log(f"round {round_ + 1}/{budget.rounds}: {pipeline.key} server")
                    ours.add(*through_server(lo, pipeline, f"r{round_}", timeout))
        except Exception:
            for key, lo in clients.items():  # the temp dir, logs included, goes
                log(f"the {key} server's log ends with:\n{lo.server.log_tail()}")
            raise
    return [row for p in chosen for row in rows_of(p, *samples[p.key])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.automl", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny budgets, one round")
    parser.add_argument("--rounds", type=int, help="rounds of each side (default: 3, quick: 1)")
    parser.add_argument("--only", choices=("pycaret", "autokeras"), help="one pipeline")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    parser.add_argument("--direct", choices=("pycaret", "autokeras"), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    if args.rounds:
        budget = replace(budget, rounds=args.rounds)
    if args.direct:  # the child process of the direct side
        with tempfile.TemporaryDirectory(prefix="scratch-", dir=Path.cwd()) as scratch:
            report = run_direct(pipelines(budget)[args.direct], Path(scratch))
        args.result.write_text(json.dumps(report))
        return 0
    chosen = [p for key, p in pipelines(budget).items() if args.only in (None, key)]

    started = time.monotonic()
    with (
        bounded(budget.alarm, "bench.automl"),
        tempfile.TemporaryDirectory(prefix="lo-bench-automl-") as tmp,
    ):
        rows = bench(Path(tmp), chosen, budget, args.quick)
    command = "python -m bench.automl" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    lines = header(command)
    lines[0] += f", {versions()}, {time.monotonic() - started:.0f} s in all"
    emit(lines, rows, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
