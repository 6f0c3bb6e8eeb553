"""The AutoKeras adapter: `autokeras.*` modules (AutoKeras 3.0 on Keras 3).

builder/autokeras runs a whole user script (steps/builder) in this toolkit's sandbox family,
whose interpreters have imported AutoKeras (and so TensorFlow) before their job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
)


def natural(value: Any) -> Any:
    """Tensors (also inside lists, tuples and dicts) as numpy arrays; the rest as is."""
    from .tensorflow import natural as tensorflow_natural

    return tensorflow_natural(value)


def plot(value: Any, path: Path) -> None:
    from . import plots

    plots.render(natural(value), path)
