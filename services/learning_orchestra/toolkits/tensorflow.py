"""The TensorFlow adapter: `tensorflow.*` and `keras.*` modules; tensors are stored and
plotted as numpy arrays, Keras models as `.keras` files (format "keras": the architecture,
weights, compile configuration and optimizer state)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

from ..core.formats import Codec
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
)


def extra_arguments(
    step: str, target: Any, method: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """A training's `fit` also reports each epoch as the step's progress; `evaluate`
    answers a dict (``return_dict=True``) unless told otherwise, so metrics keep their
    names (Keras 3's `metrics_names` no longer lists the compiled metrics one by one)."""
    if method == "evaluate" and hasattr(target, "evaluate"):
        return {"return_dict": True, **arguments}
    if method != "fit" or not hasattr(target, "fit"):
        return arguments
    callbacks = list(arguments.get("callbacks") or [])
    callbacks.append(_epoch_progress())
    return {**arguments, "callbacks": callbacks}


def _epoch_progress() -> Any:
    import keras

    from ..sandbox.child import progress

    class EpochProgress(keras.callbacks.Callback):
        """Reports ``epoch``/``epochs`` and the epoch's logs (loss, metrics)."""

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            numbers = {k: float(v) for k, v in (logs or {}).items()}
            progress(epoch=epoch + 1, epochs=self.params.get("epochs"), **numbers)

    return EpochProgress()


def outcome(step: str, target: Any, result: Any) -> tuple[Any, dict[str, Any]]:
    """What a model-lifecycle step keeps: `fit` returns a History, so a training keeps the
    model itself, with the History's per-epoch values as `history`; `evaluate` returns the
    loss and metrics, kept as `metrics` named after the model's metrics."""
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
