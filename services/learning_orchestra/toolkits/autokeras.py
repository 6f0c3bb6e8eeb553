"""The AutoKeras adapter: `autokeras.*` tasks (AutoKeras 3.0 on Keras 3) as atomic steps.

An AutoKeras task (`ImageClassifier`, `StructuredDataRegressor`, ..., `AutoModel`) lives in
its search directory, so what each step keeps is what the next one needs to rebuild it:

- `model/autokeras` (`construct`): the class must be an AutoKeras task; it is built once, in
  a temporary directory, to check the class and its `classParameters`, and what is stored
  is a `TaskSpec` — the class and the parameters as resolved, minus `directory` (given, it
  is ignored with a warning in the log). Metadata: `task` (the class), `maxTrials`.
- `train/autokeras` (`invoke`, method `fit`: the search): the task is built in a scratch
  directory outside the step's working folder (removed after: no trial folders become step
  files) and `fit` runs with a callback reporting live progress (`SearchProgress`).
  Kept: a `TrainedTask`, i.e. `export_model()` — the best trial's model, the one AutoKeras
  3.0's own `predict`/`evaluate` use (not the model of its final refit) — with the data
  pipeline the search fitted for it (label encoding, ...). Stored as format "autokeras":
  `model.keras` (Keras' own format; loading it needs only `import autokeras`, which
  registers AutoKeras' layers) beside `pipeline.json` (AutoKeras' pipeline file, what
  `autokeras.pipeline.load_pipeline` reads). Metadata: `trials` (per trial: number, id,
  status, score, hyperparameters, the metrics of its best epoch), `bestParams`,
  `bestScore`, `objective` ({metric, mode}), `history` (per epoch, the History `fit`
  returned: the final refit on training plus validation data when AutoKeras ran one) and,
  for a classifier, `classes` (the labels in the order of the model's output units, as
  AutoKeras encodes them: strings; a binary classifier's one unit is the second's
  probability). The whole trials summary is also the step file `trials.json`.
- `predict/autokeras` and `evaluate/autokeras` (parentName: the train step): the
  `TrainedTask`'s `predict` / `evaluate`, which do what the fitted task's would: the
  pipeline, then the model. So `predict` answers a classifier's labels, as
  `ImageClassifier.predict` does (an array of shape (n, 1) of the label strings AutoKeras
  encodes: "7", not 7; the probabilities are the model's own output, e.g. in a function
  step given `t = $trained`: `t.model.predict(t.pipeline.transform_x(x))`), and `evaluate`
  takes the raw labels and answers `metrics` by name (`return_dict=True` unless given).
  The untrained model step as parentName fails naming parentName. `verbose` defaults to 2
  in fit, predict and evaluate (a line per epoch in the step's log, not a progress bar).

Searches run offline: a block built on a Keras application (`ResNetBlock`, `XceptionBlock`,
`EfficientNetBlock`: `autokeras.blocks.basic.KerasApplicationBlock`) builds without
ImageNet weights, whatever `pretrained` says (given True, or chosen by the search, as the
ImageClassifier's third initial trial does): `pretrained` is forced to False
(`force_offline`), with a warning in the log when it was asked explicitly, and trials
report their `.../pretrained` hyperparameter as False. builder/autokeras scripts get the same
(`builder_prelude`); DataFrames given as `x`/`y` become numpy arrays, which AutoKeras needs.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import math
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.formats import Codec
from ..sandbox.protocol import Failure
from . import Toolkit

TOOLKIT = Toolkit(
    tool="autokeras",
    title="AutoKeras",
    extra="autokeras",
    packages=("autokeras",),
    distributions=("autokeras", "keras", "keras-tuner", "tensorflow-cpu", "tensorflow", "numpy"),
    adapter=__name__,
    env={"TF_CPP_MIN_LOG_LEVEL": "2"},  # keep the step's log readable
    preimport=("autokeras",),
    formats={"autokeras": "model.keras"},
    metadata=(
        "task",
        "maxTrials",
        "trials",
        "bestParams",
        "bestScore",
        "objective",
        "history",
        "classes",
        "metrics",
    ),
)

#: The tasks a model/autokeras step names (any subclass of autokeras.AutoModel is taken).
TASKS = (
    "ImageClassifier, ImageRegressor, StructuredDataClassifier, StructuredDataRegressor, "
    "TextClassifier, TextRegressor or AutoModel"
)
#: The step file holding every trial of a search, in full.
TRIALS_FILE = "trials.json"
#: In the metadata, at most this many hyperparameters per trial, each value this long.
MAX_HYPERPARAMETERS = 40
MAX_VALUE_CHARS = 120
#: The adapter's metadata stays under this many bytes of JSON (the worker drops all of it
#: over 64 KiB): the trials' hyperparameters go first, then all trials but the best.
METADATA_BUDGET = 56 * 1024

Call = Callable[[Any, str, dict[str, Any]], Any]


# -- model/autokeras: a task, checked, kept as the recipe to build it ---------------------------
@dataclass(frozen=True)
class TaskSpec:
    """What model/autokeras keeps: the task's class and its classParameters. A task cannot
    be kept itself: it lives in its search directory, which must be the training's own."""

    module: str  # where the class is defined: "autokeras.tasks.image"
    name: str  # "ImageClassifier"
    parameters: dict[str, Any]  # as resolved, without `directory`
    max_trials: int

    def build(self, directory: str) -> Any:
        """A fresh task searching in `directory`."""
        cls = getattr(importlib.import_module(self.module), self.name)
        return cls(**copy.deepcopy(self.parameters), directory=directory)


def construct(
    step: str,
    cls: Any,
    class_parameters: dict[str, Any],
    new: Callable[[dict[str, Any]], Any],
    call: Call,
) -> TaskSpec:
    """model/autokeras: `cls(**class_parameters)` built once in a temporary directory (its
    faults name classParameters), kept as a `TaskSpec`."""
    import autokeras

    if not (isinstance(cls, type) and issubclass(cls, autokeras.AutoModel)):
        raise Failure(
            f"class: {getattr(cls, '__name__', cls)!r} is not an AutoKeras task: model/autokeras "
            f"builds a task ({TASKS})"
        )
    parameters = {k: v for k, v in class_parameters.items() if k != "directory"}
    if "directory" in class_parameters:
        _warn(
            f"classParameters.directory={class_parameters['directory']!r} is ignored: the "
            "search runs in the train step's own scratch directory"
        )
    kept = copy.deepcopy(parameters)  # building the task connects its blocks to its nodes
    with tempfile.TemporaryDirectory(prefix="autokeras-") as scratch:
        try:
            task = new({**parameters, "directory": scratch})
        except Failure as failure:  # the task refused them (Keras Tuner takes **kwargs)
            if failure.message.startswith("classParameters"):
                raise
            message = f"classParameters: {failure.message}"
            raise Failure(message, failure.trace, failure.kind) from None
        max_trials = int(task.max_trials)
    return TaskSpec(cls.__module__, cls.__name__, kept, max_trials)


# -- train/autokeras: the search, in scratch -----------------------------------------------------
@dataclass
class TrainedTask:
    """What train/autokeras keeps: the search's best model (`export_model()`) and the data
    pipeline fitted for it. `predict`, `evaluate` and `export_model` answer what the fitted
    task's would (AutoKeras' `AutoModel.predict` / `evaluate`: pipeline, then model)."""

    model: Any  # a keras.Model
    pipeline: Any  # an autokeras.pipeline.Pipeline

    def predict(self, x: Any, batch_size: int = 32, verbose: int = 2, **kwargs: Any) -> Any:
        """The task's predictions: a classifier's labels, a regressor's values."""
        from autokeras.utils import utils

        inputs = self.pipeline.transform_x(_numpy(x))
        y = utils.predict_with_adaptive_batch_size(
            model=self.model, batch_size=batch_size, x=inputs, verbose=verbose, **kwargs
        )
        return self.pipeline.postprocess(y)

    def evaluate(
        self, x: Any, y: Any = None, batch_size: int = 32, verbose: int = 2, **kwargs: Any
    ) -> Any:
        """The model's loss and metrics on `x` and the raw targets `y`."""
        from autokeras.utils import utils

        x, y = self.pipeline.transform((_numpy(x), _numpy(y)))
        return utils.evaluate_with_adaptive_batch_size(
            model=self.model, batch_size=batch_size, x=x, y=y, verbose=verbose, **kwargs
        )

    def export_model(self) -> Any:
        """The Keras model, as AutoKeras' `export_model()`."""
        return self.model

    def classes(self) -> list[str] | None:
        """A single-output classifier's labels, in the order of its output units."""
        from autokeras.preprocessors.encoders import Encoder

        if len(self.pipeline.outputs) != 1:
            return None
        encoders = [p for p in self.pipeline.outputs[0] if isinstance(p, Encoder)]
        return [str(label) for label in encoders[-1].labels] if encoders else None


@dataclass
class Searched:
    """What a search leaves: the trained task and the step's metadata."""

    trained: TrainedTask
    metadata: dict[str, Any]


def invoke(step: str, target: Any, method: str, arguments: dict[str, Any], call: Call) -> Any:
    """The "invoke" shape (sandbox/child.py): a train step runs the search of the model
    step's task (`search`); predict and evaluate call the trained task."""
    if isinstance(target, TaskSpec):
        if step != "train":
            raise Failure(
                f"parentName: the step given is a model/autokeras step, holding the untrained "
                f"{target.name}: {step}/autokeras needs a trained task, so give the "
                "train/autokeras step (the one whose fit ran the search) as parentName"
            )
        if method != "fit":
            raise Failure(
                f"method: train/autokeras runs the search with 'fit'; {method!r} is not fit"
            )
        return search(target, arguments, call)
    if isinstance(target, TrainedTask) and step == "train":
        raise Failure(
            "parentName: the step given holds a trained AutoKeras task: train/autokeras "
            "searches from the model/autokeras step, so give that step as parentName"
        )
    return call(target, method, arguments)


def extra_arguments(
    step: str, target: Any, method: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """`evaluate` answers a dict of metrics by name (``return_dict=True``) unless told
    otherwise."""
    if method == "evaluate" and isinstance(target, TrainedTask):
        return {"return_dict": True, **arguments}
    return arguments


def search(spec: TaskSpec, arguments: dict[str, Any], call: Call) -> Searched:
    """train/autokeras: `spec`'s task built in a scratch directory (removed after), offline
    (`force_offline`), then its `fit(**arguments)` with live progress; the best model, its
    pipeline and the search's metadata. The trials summary is also written to the working
    folder as `TRIALS_FILE`, a step file."""
    force_offline()
    scratch = tempfile.mkdtemp(prefix="autokeras-")  # in TMPDIR: never a step file
    try:
        task = spec.build(scratch)
        tracker = SearchProgress(int(task.max_trials))
        tracker.attach(task.tuner)
        # verbose 2 unless given: a line per epoch in the step's log, not a progress bar
        given = {"verbose": 2, **{key: _numpy(value) for key, value in arguments.items()}}
        given["callbacks"] = [*(arguments.get("callbacks") or []), tracker.callback()]
        history = call(task, "fit", given)
        trained = TrainedTask(task.export_model(), task.tuner.get_best_pipeline())
        oracle = task.tuner.oracle
        trials = [_trial_summary(n, t) for n, t in enumerate(oracle.trials.values(), start=1)]
        best = oracle.get_best_trials(1)
        fitted = getattr(history, "history", None)
        if not fitted and best:  # no final refit: the kept model is the best trial's
            fitted = {name: _trial_history(best[0], name) for name in best[0].metrics.metrics}
        objective = oracle.objective
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    Path(TRIALS_FILE).write_text(json.dumps(trials, indent=1, default=str))
    best_id = str(best[0].trial_id) if best else None
    best_trial = next((_compact(t) for t in trials if t["id"] == best_id), None)
    metadata: dict[str, Any] = {
        "trials": [_compact(t) for t in trials],
        "bestParams": best_trial["hyperparameters"] if best_trial else None,
        "bestScore": best_trial["score"] if best_trial else None,
        "objective": {
            "metric": objective.name,
            "mode": "max" if objective.direction == "max" else "min",
        },
        "history": {str(k): [_number(v) for v in vs] for k, vs in (fitted or {}).items()},
    }
    classes = trained.classes()
    if classes is not None:
        metadata["classes"] = classes
    return Searched(trained, _within_budget(metadata, best_id))


def _trial_summary(number: int, trial: Any) -> dict[str, Any]:
    """One trial for the trials table: its hyperparameters (a `.../pretrained` one as False:
    the trial ran without downloaded weights) and the metrics of its best epoch."""
    values = {
        str(name): False if str(name).endswith("/pretrained") else _plain(value)
        for name, value in trial.hyperparameters.values.items()
    }
    step = trial.best_step
    metrics = {
        str(name): _number(_mean(o.value))
        for name in trial.metrics.metrics
        for o in trial.metrics.get_history(name)
        if o.step == step
    }
    return {
        "trial": number,
        "id": str(trial.trial_id),
        "status": str(trial.status),
        "score": _number(trial.score),
        "bestStep": step,
        "hyperparameters": values,
        "metrics": metrics,
    }


def _trial_history(trial: Any, name: str) -> list[float | None]:
    """A trial's values of metric `name`, one per epoch."""
    return [_number(_mean(o.value)) for o in trial.metrics.get_history(name)]


def _compact(trial: dict[str, Any]) -> dict[str, Any]:
    """A trial for the metadata: at most MAX_HYPERPARAMETERS values, each value short."""
    values = trial["hyperparameters"]
    kept = {
        name: value[:MAX_VALUE_CHARS] if isinstance(value, str) else value
        for name, value in list(values.items())[:MAX_HYPERPARAMETERS]
    }
    if len(values) > MAX_HYPERPARAMETERS:
        kept["..."] = f"{len(values) - MAX_HYPERPARAMETERS} more in {TRIALS_FILE}"
    return {**trial, "hyperparameters": kept}


def _within_budget(metadata: dict[str, Any], best_id: str | None) -> dict[str, Any]:
    """`metadata` under METADATA_BUDGET bytes of JSON: without the trials' hyperparameters
    (bestParams keeps the best's), then with the best trial alone (`TRIALS_FILE` has all)."""

    def size() -> int:
        return len(json.dumps(metadata, default=str))

    if size() > METADATA_BUDGET:
        metadata["trials"] = [
            {k: v for k, v in t.items() if k != "hyperparameters"} for t in metadata["trials"]
        ]
    if size() > METADATA_BUDGET:
        metadata["trials"] = [t for t in metadata["trials"] if t["id"] == best_id]
    return metadata


class SearchProgress:
    """Live progress of a search: each epoch as ``{stage: "search", trial, trials, epoch,
    epochs, loss, accuracy, val_loss, ...}``, each trial's end as ``{stage: "search",
    trial, trials, status, score, bestScore, objective}``, and the epochs of AutoKeras'
    final refit (on training plus validation data) as ``{stage: "final", trial, trials,
    epoch, epochs, ...}``. `trials` is max_trials (a search may stop sooner); `trial`
    counts the trials begun."""

    def __init__(self, trials: int) -> None:
        self.trials = trials
        self.trial = 0
        self.stage = "search"

    def fields(self) -> dict[str, Any]:
        return {"stage": self.stage, "trial": self.trial, "trials": self.trials}

    def attach(self, tuner: Any) -> None:
        """Follow `tuner`'s trials and final fit (its hooks, wrapped on the instance)."""
        begin, end, final_fit = tuner.on_trial_begin, tuner.on_trial_end, tuner.final_fit

        def on_trial_begin(trial: Any) -> Any:
            self.trial += 1
            return begin(trial)

        def on_trial_end(trial: Any) -> Any:
            result = end(trial)
            best = tuner.oracle.get_best_trials(1)
            _progress(
                **self.fields(),
                status=str(trial.status),
                score=_number(trial.score),
                bestScore=_number(best[0].score) if best else None,
                objective=tuner.oracle.objective.name,
            )
            return result

        def final(**kwargs: Any) -> Any:
            self.stage = "final"
            return final_fit(**kwargs)

        tuner.on_trial_begin = on_trial_begin
        tuner.on_trial_end = on_trial_end
        tuner.final_fit = final

    def callback(self) -> Any:
        """A Keras callback reporting each epoch with `fields()`; Keras Tuner deep-copies
        a search's callbacks for every trial: this one stays itself."""
        import keras

        tracker = self

        class EpochProgress(keras.callbacks.Callback):
            def __deepcopy__(self, memo: dict[int, Any]) -> EpochProgress:
                return self

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                numbers = {k: _number(v) for k, v in (logs or {}).items()}
                epochs = self.params.get("epochs")
                _progress(**tracker.fields(), epoch=epoch + 1, epochs=epochs, **numbers)

        return EpochProgress()


# -- offline: no ImageNet weights -----------------------------------------------------------------
_warned: set[str] = set()


def force_offline() -> None:
    """Every Keras-application block (ResNet, Xception, EfficientNet) builds without
    pretrained weights, which would be downloaded: `KerasApplicationBlock.build` runs with
    `pretrained` False, whatever the block or the search's hyperparameters say. Blocks
    made from now on get it (Keras Tuner binds a block's build when the block is made):
    a task's are made as its search builds each trial's model; a builder script's, after
    its prelude."""
    from autokeras.blocks import basic

    block = basic.KerasApplicationBlock
    if getattr(block.build, "__lo_offline__", False):
        return
    original = block.build

    @functools.wraps(original)
    def build(self: Any, hp: Any, inputs: Any = None) -> Any:
        asked = self.pretrained
        if asked:
            _warn_pretrained(self)
        self.pretrained = False
        try:
            return original(self, hp, inputs)
        finally:
            self.pretrained = asked

    build.__lo_offline__ = True  # type: ignore[attr-defined]
    block.build = build


def _warn_pretrained(block: Any) -> None:
    name = type(block).__name__
    if name not in _warned:
        _warned.add(name)
        _warn(
            f"{name}: pretrained=True ignored: searches run offline, so Keras applications "
            "start from random weights (no ImageNet download)"
        )


def builder_prelude() -> None:
    """Run by builder/autokeras' child before the user's script (sandbox/child.py): the
    script's searches run offline too (`force_offline`)."""
    force_offline()


# -- plain values ---------------------------------------------------------------------------------
def _numpy(value: Any) -> Any:
    """A pandas DataFrame or Series as a numpy array (AutoKeras takes arrays only), also
    inside a list or tuple (several inputs, validation_data); anything else as it is."""
    if type(value).__module__.startswith("pandas") and hasattr(value, "to_numpy"):
        return value.to_numpy()
    if isinstance(value, list | tuple):
        return type(value)(_numpy(v) for v in value)
    return value


def _mean(value: Any) -> Any:
    """A Keras Tuner observation's value: a list of one value per execution."""
    if isinstance(value, list | tuple):
        return sum(value) / len(value) if value else None
    return value


def _number(value: Any) -> float | None:
    """A metric as a JSON number; None when missing or not finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _plain(value: Any) -> Any:
    """A hyperparameter value as JSON: numbers, strings and booleans as they are."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _number(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # a numpy scalar
        return _plain(value.item())
    return repr(value)[:MAX_VALUE_CHARS]


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")  # the step's log


def _progress(**fields: Any) -> None:
    from ..sandbox.child import progress

    progress(**fields)


# -- what a step keeps ----------------------------------------------------------------------------
def outcome(step: str, target: Any, result: Any) -> tuple[Any, dict[str, Any]]:
    """model: the `TaskSpec`, with `task` and `maxTrials`; train: the `TrainedTask` and the
    search's metadata; evaluate: the metrics, also as `metrics`; predict: the predictions."""
    from .tensorflow import outcome as keras_outcome

    if isinstance(result, Searched):
        return result.trained, result.metadata
    if step == "model" and isinstance(target, TaskSpec):
        return target, {"task": target.name, "maxTrials": target.max_trials}
    if isinstance(target, TrainedTask):
        return keras_outcome(step, target.model, result)
    return keras_outcome(step, target, result)


def natural(value: Any) -> Any:
    """Tensors (also inside lists, tuples and dicts) as numpy arrays; the rest as is."""
    from .tensorflow import natural as tensorflow_natural

    return tensorflow_natural(value)


def plot(value: Any, path: Path) -> None:
    from . import plots

    plots.render(natural(value), path)


# -- the "autokeras" codec (core/formats.py) -----------------------------------------------------
MODEL_FILE = "model.keras"
PIPELINE_FILE = "pipeline.json"


def _is_trained_task(value: Any) -> bool:
    return isinstance(value, TrainedTask)


def _save_trained(folder: Path, value: TrainedTask) -> None:
    from .tensorflow import KERAS

    KERAS.save(folder, value.model)  # folder/MODEL_FILE, as the "keras" format writes it
    value.pipeline.save(str(folder / PIPELINE_FILE))


def _load_trained(folder: Path) -> TrainedTask:
    import autokeras  # noqa: F401 (registers AutoKeras' layers, which the model holds)
    from autokeras import pipeline

    from .tensorflow import KERAS

    return TrainedTask(KERAS.load(folder), pipeline.load_pipeline(str(folder / PIPELINE_FILE)))


AUTOKERAS = Codec("autokeras", MODEL_FILE, _is_trained_task, _save_trained, _load_trained)

#: This adapter's codecs (core/formats.py), for the formats `TOOLKIT.formats` declares.
CODECS = (AUTOKERAS,)
