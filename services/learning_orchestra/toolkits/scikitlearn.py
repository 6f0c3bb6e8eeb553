"""The scikit-learn adapter: `sklearn.*` modules; plots Display objects as they draw
themselves, anything else through `toolkits.plots`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import Toolkit

TOOLKIT = Toolkit(
    tool="scikitlearn",
    title="scikit-learn",
    extra="sklearn",
    packages=("sklearn",),
    distributions=("scikit-learn", "numpy", "scipy", "pandas", "matplotlib"),
    adapter=__name__,
    preimport=("sklearn", "sklearn.base"),
)


def natural(value: Any) -> Any:
    """scikit-learn returns numpy arrays, DataFrames (`set_output`), lists and estimators:
    all stored as they are (core/formats.py)."""
    return value


def plot(value: Any, path: Path) -> None:
    """A Display (`ConfusionMatrixDisplay.from_predictions`, `RocCurveDisplay`, ...) saves
    the figure it drew; a sparse matrix is plotted dense; the rest as `plots.render` does."""
    from . import plots

    figure = getattr(value, "figure_", None)
    if figure is not None and hasattr(figure, "savefig"):
        plots.save(figure, path)
        return
    if hasattr(value, "toarray") and hasattr(value, "nnz"):  # scipy.sparse
        value = value.toarray()
    plots.render(value, path)
