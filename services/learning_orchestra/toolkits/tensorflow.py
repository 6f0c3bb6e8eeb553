"""The TensorFlow adapter: `tensorflow.*` and `keras.*` modules; tensors are stored and
plotted as numpy arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
)


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
