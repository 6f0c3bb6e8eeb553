"""The TensorFlow adapter: `tensorflow.*` and `keras.*` modules; tensors are stored and
plotted as numpy arrays, Keras models as `.keras` files (format "keras": the architecture,
weights, compile configuration and optimizer state). A tune runs `fit` on fresh clones of
the model, once per combination of its `searchSpace` lists, and keeps the best (`search`)."""

from __future__ import annotations

import difflib
import inspect
import itertools
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.formats import Codec
from ..sandbox.protocol import Failure
from . import Toolkit

TOOLKIT = Toolkit(
    tool="tensorflow",
    title="TensorFlow",
    extra="tensorflow",
    packages=("tensorflow", "keras"),
    distributions=("tensorflow-cpu", "tensorflow", "keras", "numpy", "matplotlib"),
    adapter=__name__,
    env={"TF_CPP_MIN_LOG_LEVEL": "2"},  # keep functionMessage readable
    preimport=("tensorflow",),
    formats={"keras": "model.keras"},
    metadata=("metrics", "history", "bestParams", "bestScore", "trials", "objective"),
)


def extra_arguments(
    step: str, target: Any, method: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """A training's `fit` also reports each epoch as the step's progress; `evaluate`
    answers a dict (``return_dict=True``) unless told otherwise, so metrics keep their
    names (Keras 3's `metrics_names` no longer lists the compiled metrics one by one)."""
    if method == "evaluate" and hasattr(target, "evaluate"):
        return {"return_dict": True, **arguments}
    if step == "tune" or method != "fit" or not hasattr(target, "fit"):
        return arguments  # a tune gives each trial its own progress callback (`search`)
    return _with_progress(arguments)


def _with_progress(arguments: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """`arguments` of fit with a callback reporting each epoch, with `fields`, as progress."""
    callbacks = list(arguments.get("callbacks") or [])
    callbacks.append(_epoch_progress(**fields))
    return {**arguments, "callbacks": callbacks}


def _epoch_progress(**fields: Any) -> Any:
    import keras

    from ..sandbox.child import progress

    class EpochProgress(keras.callbacks.Callback):
        """Reports ``epoch``/``epochs`` and the epoch's logs (loss, metrics), after
        `fields` (a tune's ``trial``/``trials``)."""

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            numbers = {k: float(v) for k, v in (logs or {}).items()}
            progress(**fields, epoch=epoch + 1, epochs=self.params.get("epochs"), **numbers)

    return EpochProgress()


def outcome(step: str, target: Any, result: Any) -> tuple[Any, dict[str, Any]]:
    """What a model-lifecycle step keeps: `fit` returns a History, so a training keeps the
    model itself, with the History's per-epoch values as `history`; `evaluate` returns the
    loss and metrics, kept as `metrics` named after the model's metrics; a tune keeps its
    best trial's model, with the trials table (`search`)."""
    if isinstance(result, Tuned):
        return result.model, result.metadata
    if result is None:
        return target, {}
    if type(result).__name__ == "History" and hasattr(result, "history"):
        history = {k: [float(x) for x in v] for k, v in result.history.items()}
        return target, {"history": history}
    if step == "evaluate":
        return result, {"metrics": _metrics(target, natural(result))}
    return result, {}


def _metrics(model: Any, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items()}
    values = [float(v) for v in (value if isinstance(value, list | tuple) else [value])]
    names = list(getattr(model, "metrics_names", None) or [])
    if len(names) != len(values):
        names = ["loss", *(f"metric_{i}" for i in range(1, len(values)))]
    return dict(zip(names, values, strict=True))


def natural(value: Any) -> Any:
    """Tensors (also inside lists, tuples and dicts) as numpy arrays; the rest as is."""
    if isinstance(value, list | tuple):
        return type(value)(natural(v) for v in value)
    if isinstance(value, dict):
        return {k: natural(v) for k, v in value.items()}
    if type(value).__module__.startswith(("tensorflow", "keras")) and hasattr(value, "numpy"):
        return value.numpy()
    return value


def plot(value: Any, path: Path) -> None:
    from . import plots

    plots.render(natural(value), path)


# -- tune: a search over parameter lists, each trial on a fresh clone --------------------------
#: The keys of a tune's `methodParameters` that are not fit's arguments.
SEARCH_SPACE = "searchSpace"
OBJECTIVE = "objective"
#: A searchSpace key naming an argument of `compile` rather than of `fit`.
COMPILE = "compile."
#: At most this many trials (the product of the searchSpace's list lengths).
MAX_TRIALS = 50
#: A metric whose name contains one of these is better higher (an objective's default mode).
HIGHER_IS_BETTER = ("accuracy", "auc", "precision", "recall", "f1")
SPACE_FIELD = f"methodParameters.{SEARCH_SPACE}"
OBJECTIVE_FIELD = f"methodParameters.{OBJECTIVE}"

Call = Callable[[Any, str, dict[str, Any]], Any]


@dataclass
class Tuned:
    """What a tune's search leaves: the best trial's model and the step's metadata."""

    model: Any
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Objective:
    """The History key trials are compared on, and whether higher is better."""

    metric: str
    mode: str  # "max" or "min"

    def better(self, value: float | None, best: float | None) -> bool:
        """Whether `value` beats `best` (a missing or NaN value never does)."""
        if value is None:
            return False
        if best is None:
            return True
        return value > best if self.mode == "max" else value < best


def invoke(step: str, target: Any, method: str, arguments: dict[str, Any], call: Call) -> Any:
    """The "invoke" shape's call (sandbox/child.py): a tune runs its search (`search`);
    the other steps call `method` on the object as given."""
    if step != "tune":
        return call(target, method, arguments)
    return search(target, method, arguments, call)


def search(model: Any, method: str, arguments: dict[str, Any], call: Call) -> Tuned:
    """tune/tensorflow: `fit` once per combination of the `searchSpace` lists (their
    Cartesian product, in order), each time on a fresh clone of `model` (new weights)
    compiled as `model` was, with the combination's ``compile.<arg>`` values instead; the
    other `arguments` are fit's for every trial. The trial with the best `objective` value
    (its History's last value) is kept, with the trials table as metadata."""
    import keras

    if method != "fit":
        raise Failure(
            f"method: tune/tensorflow calls fit on clones of the model, once per trial of "
            f"{SPACE_FIELD}; {method!r} is not fit"
        )
    if not isinstance(model, keras.Model):
        raise Failure(
            f"parentName: tune/tensorflow needs a Keras model; the parent holds a "
            f"{type(model).__name__}"
        )
    compile_config = model.get_compile_config() if getattr(model, "compiled", False) else None
    if compile_config is None:
        raise Failure(
            "parentName: the parent's model is not compiled: each trial is compiled as the "
            "parent was, so compile it first (a train/tensorflow step whose method is "
            "compile), or tune a trained model"
        )
    fixed = {k: v for k, v in arguments.items() if k not in (SEARCH_SPACE, OBJECTIVE)}
    space = _search_space(arguments.get(SEARCH_SPACE), model, fixed)
    objective = _objective(arguments.get(OBJECTIVE), fixed, space)
    grid = [dict(zip(space, values, strict=True)) for values in itertools.product(*space.values())]
    trials: list[dict[str, Any]] = []
    best: tuple[int, Any, dict[str, list[float]]] | None = None  # (index, model, History)
    best_score: float | None = None
    for index, combination in enumerate(grid):
        number = index + 1
        clone, history = _trial(model, compile_config, fixed, combination, call, number, len(grid))
        if objective.metric not in history:
            raise Failure(
                f"{OBJECTIVE_FIELD}: {objective.metric!r} is not in the History of fit "
                f"(its keys: {', '.join(history) or 'none'})"
                + (
                    "; a val_ metric needs validation_split or validation_data"
                    if objective.metric.startswith("val_")
                    and not any(key.startswith("val_") for key in history)
                    else ""
                )
            )
        value = _last(history[objective.metric])
        trials.append(
            {
                "trial": number,
                "params": {name: _label(v) for name, v in combination.items()},
                "objective": value,
                "history": {key: _last(values) for key, values in history.items()},
            }
        )
        if best is None or objective.better(value, best_score):
            best, best_score = (index, clone, history), value
        del clone  # only the best trial's model is kept in memory
        _progress(
            trial=number,
            trials=len(grid),
            objective=objective.metric,
            value=value,
            bestScore=best_score,
        )
    assert best is not None  # the grid is never empty
    index, kept, history = best
    return Tuned(
        kept,
        {
            "trials": trials,
            "bestParams": trials[index]["params"],
            "bestScore": best_score,
            "objective": {"metric": objective.metric, "mode": objective.mode},
            "history": history,
        },
    )


def _trial(
    model: Any,
    compile_config: dict[str, Any],
    fixed: dict[str, Any],
    combination: dict[str, Any],
    call: Call,
    number: int,
    trials: int,
) -> tuple[Any, dict[str, list[float]]]:
    """One trial: a fresh clone compiled with the combination's compile arguments, fitted
    with its fit arguments; (the clone, its History's values per epoch)."""
    import keras

    clone = keras.models.clone_model(model)  # the same architecture, new weights
    # deserialized again for every trial: each gets its own optimizer, losses and metrics
    compiled = keras.saving.deserialize_keras_object(compile_config)
    for name, value in combination.items():
        if name.startswith(COMPILE):
            compiled[name.removeprefix(COMPILE)] = _fresh(value)
    clone.compile(**compiled)
    given = {**fixed, **{k: v for k, v in combination.items() if not k.startswith(COMPILE)}}
    fit = _with_progress(given, trial=number, trials=trials)
    try:
        result = call(clone, "fit", fit)
    except Failure as failure:
        labels = {name: _label(value) for name, value in combination.items()}
        where = f" (trial {number} of {trials}: {labels})"
        raise Failure(failure.message + where, failure.trace, failure.kind) from None
    history = {str(k): [float(x) for x in v] for k, v in getattr(result, "history", {}).items()}
    return clone, history


def _search_space(given: Any, model: Any, fixed: dict[str, Any]) -> dict[str, list[Any]]:
    """`given`, checked: an object of non-empty lists, keyed by fit's arguments or
    ``compile.<arg>``, not also in `fixed`, making at most MAX_TRIALS combinations."""
    example = '{"epochs": [1, 2], "compile.optimizer": ["adam", "sgd"]}'
    if given is None:
        raise Failure(
            f"{SPACE_FIELD}: missing: tune/tensorflow needs the parameter lists to try, "
            f"e.g. {example}"
        )
    if not isinstance(given, dict) or not given:
        raise Failure(
            f"{SPACE_FIELD}: an object of parameter lists is needed, e.g. {example}; got "
            f"{_kind(given)}"
        )
    for name, values in given.items():
        if not isinstance(values, list) or not values:
            raise Failure(
                f"{SPACE_FIELD}: {name!r} must be a non-empty list of values to try; got "
                f"{_kind(values)}"
            )
        if name.startswith(COMPILE):
            _check_argument(name, name.removeprefix(COMPILE), model.compile, "compile")
        else:
            _check_argument(name, name, model.fit, "fit")
        if name in fixed:
            raise Failure(
                f"{SPACE_FIELD}: {name!r} is also a fixed argument in methodParameters: "
                "give it in one place"
            )
    sizes = [len(values) for values in given.values()]
    if math.prod(sizes) > MAX_TRIALS:
        count = " x ".join(str(n) for n in sizes) + " = " if len(sizes) > 1 else ""
        raise Failure(
            f"{SPACE_FIELD}: {count}{math.prod(sizes)} trials; at most {MAX_TRIALS}: "
            "try fewer values"
        )
    return dict(given)


def _check_argument(key: str, name: str, function: Any, what: str) -> None:
    """A Failure naming the searchSpace unless `name` is an argument of `function`."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [n for n, p in parameters.items() if p.kind is not p.VAR_POSITIONAL]
    if name in accepted and name != "callbacks":
        return
    prefix = COMPILE if what == "compile" else ""
    close = difflib.get_close_matches(name, accepted, n=1)
    hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
    other = "" if prefix else f"; compile's arguments are given as {COMPILE}<name>"
    raise Failure(
        f"{SPACE_FIELD}: {key!r} is not an argument of {what}{hint} (its arguments: "
        f"{', '.join(n for n in accepted if n != 'callbacks')}){other}"
    )


def _objective(given: Any, fixed: dict[str, Any], space: dict[str, list[Any]]) -> Objective:
    """The objective: a History key (mode "max" when its name says accuracy, auc,
    precision, recall or f1, else "min") or ``{"metric": key, "mode": "max"|"min"}``;
    by default "val_loss" when the trials have validation data, else "loss"."""
    if given is None:
        validated = any(
            _validates(key, value)
            for key in ("validation_split", "validation_data")
            for value in [fixed.get(key), *space.get(key, ())]
        )
        given = "val_loss" if validated else "loss"
    if isinstance(given, str) and given:
        higher = any(word in given.lower() for word in HIGHER_IS_BETTER)
        return Objective(given, "max" if higher else "min")
    if (
        isinstance(given, dict)
        and set(given) <= {"metric", "mode"}
        and isinstance(given.get("metric"), str)
        and given["metric"]
    ):
        mode = given.get("mode")
        if mode is None:
            return _objective(given["metric"], fixed, space)
        if mode in ("max", "min"):
            return Objective(given["metric"], mode)
    raise Failure(
        f'{OBJECTIVE_FIELD}: a History key ("val_accuracy") or '
        f'{{"metric": "val_accuracy", "mode": "max"}} (mode "max" or "min") is needed; got '
        f"{given!r}"
    )


def _validates(name: str, value: Any) -> bool:
    """Whether fit's argument `name` = `value` gives the training validation data (truth is
    not asked of the value: an array has none)."""
    if name == "validation_split":
        return isinstance(value, int | float) and value > 0
    return value is not None


def _last(values: list[float]) -> float | None:
    """The last value of a History list; None when empty or not finite (JSON has no NaN)."""
    return values[-1] if values and math.isfinite(values[-1]) else None


def _fresh(value: Any) -> Any:
    """A new copy of a Keras object (an optimizer, a loss, a metric) given as a trial's
    compile argument: one object is never shared by two trials' models."""
    if isinstance(value, list | tuple):
        return type(value)(_fresh(v) for v in value)
    if type(value).__module__.startswith("keras") and hasattr(value, "get_config"):
        import keras

        return keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(value))
    return value


def _label(value: Any) -> Any:
    """A trial's parameter value as JSON for the trials table: plain values as they are, a
    Keras object as its class name (with its learning rate, for an optimizer)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_label(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _label(v) for k, v in value.items()}
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return _label(value.item())
    name = type(value).__name__
    if hasattr(value, "get_config"):
        rate = value.get_config().get("learning_rate")
        return f"{name}(learning_rate={rate:g})" if isinstance(rate, int | float) else name
    if hasattr(value, "shape"):
        return f"{name}{tuple(value.shape)}"
    return repr(value)[:200]


def _kind(value: Any) -> str:
    """`value` in a message: its JSON type and (the start of) its text."""
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    return f"{names.get(type(value), type(value).__name__)} {value!r:.80}"


def _progress(**fields: Any) -> None:
    from ..sandbox.child import progress

    progress(**fields)


# -- the "keras" codec (core/formats.py) ------------------------------------------------------
KERAS_FILE = "model.keras"


def _is_keras_model(value: Any) -> bool:
    keras = sys.modules.get("keras")  # never imported here: no Keras model without it
    return keras is not None and isinstance(value, keras.Model)


def _save_keras(folder: Path, value: Any) -> None:
    import keras

    with warnings.catch_warnings():
        # a model step stores a model before it has seen data, by design: its config and
        # compile config are what is kept (no functionMessage noise about it)
        warnings.filterwarnings("ignore", message="You are saving a model that has not yet")
        keras.saving.save_model(value, folder / KERAS_FILE)


def _load_keras(folder: Path) -> Any:
    import keras

    # safe_mode=False: a Lambda layer's code loads too, as a cloudpickled output's would;
    # only a signed artifact, verified by the worker, is ever loaded, in the sandbox.
    return keras.saving.load_model(folder / KERAS_FILE, safe_mode=False)


KERAS = Codec("keras", KERAS_FILE, _is_keras_model, _save_keras, _load_keras)

#: This adapter's codecs (core/formats.py), for the formats `TOOLKIT.formats` declares.
CODECS = (KERAS,)
