"""Rendering a step's result as a PNG with matplotlib (Agg), in the sandboxed child.

matplotlib Figure / Axes            saved as drawn
DataFrame                           its numeric columns, as a 2-D array below
2-D array, up to 50 x 50, > 2 cols  heatmap (a confusion matrix, a correlation matrix)
2-D array, 2 columns                scatter of the first against the second
2-D array, 1 column / 1-D array     histogram (more than 50 values), else bars
2-D array, other                    one line per column (the first 10)
scalar                              a bar
list / tuple / dict                 one panel per item (the first 9), titled by its key
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

MAX_PANELS = 9
MAX_LINES = 10
HEATMAP_MAX = 50
BARS_MAX = 50
DPI = 100


class NotPlottable(TypeError):
    pass


def save(figure: Any, path: Path) -> None:
    figure.savefig(path, format="png", dpi=DPI, bbox_inches="tight")


def render(value: Any, path: Path) -> None:
    """Draw `value` as fits its shape (see the module's docstring) and save it to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    if isinstance(value, Figure):
        save(value, path)
        return
    if isinstance(value, Axes):
        save(value.figure, path)
        return
    items = _panels(value)
    columns = min(3, len(items))
    rows = math.ceil(len(items) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 4 * rows), squeeze=False)
    for ax in axes.flat[len(items) :]:
        ax.set_visible(False)
    for ax, (title, item) in zip(axes.flat, items, strict=False):
        draw(ax, item, figure)
        if title is not None:
            ax.set_title(title)
    save(figure, path)
    plt.close(figure)


def _panels(value: Any) -> list[tuple[str | None, Any]]:
    if isinstance(value, dict):
        return [(str(k), v) for k, v in list(value.items())[:MAX_PANELS]]
    if isinstance(value, list | tuple) and value and not _is_numbers(value):
        return [(f"[{i}]", v) for i, v in enumerate(value[:MAX_PANELS])]
    return [(None, value)]


def _is_numbers(value: list[Any] | tuple[Any, ...]) -> bool:
    """A plain list of numbers or of rows of numbers (drawn as an array, not as panels)."""
    import numpy as np

    try:
        return bool(np.asarray(value).dtype.kind in "biuf")
    except (ValueError, TypeError):
        return False


def _numeric(value: Any) -> tuple[Any, list[str] | None]:
    """`value` as a float numpy array, with column names for tables; NotPlottable if it
    holds no numbers."""
    import numpy as np

    if type(value).__module__.startswith("pandas"):
        frame = value.to_frame() if hasattr(value, "to_frame") else value
        numbers = frame.select_dtypes("number")
        if numbers.shape[1] == 0:
            raise NotPlottable("the table has no numeric column to plot")
        return numbers.to_numpy(dtype=float), [str(c) for c in numbers.columns]
    try:
        array = np.asarray(value)
    except Exception:
        array = None
    if array is None or array.dtype.kind not in "biuf":
        raise NotPlottable(f"a {type(value).__name__} is not numbers that can be plotted")
    return array.astype(float), None


def draw(ax: Any, value: Any, figure: Any) -> None:
    """One panel: `value` drawn on the axes `ax`."""
    array, labels = _numeric(value)
    if array.ndim == 0:
        ax.bar(["value"], [float(array)])
        return
    if array.ndim > 2:
        array = array.reshape(array.shape[0], -1)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 1:
        if array.size > BARS_MAX:
            ax.hist(array[~_nan(array)], bins="auto")
            ax.set_ylabel("count")
        else:
            ax.bar(range(array.size), array)
            ax.set_xlabel("index")
        return
    rows, columns = array.shape
    if columns > 2 and rows <= HEATMAP_MAX and columns <= HEATMAP_MAX:
        image = ax.imshow(array, cmap="viridis", aspect="auto")
        figure.colorbar(image, ax=ax)
        if rows * columns <= 100:
            for (i, j), number in _cells(array):
                ax.text(j, i, f"{number:.3g}", ha="center", va="center", color="white")
        return
    if columns == 2:
        ax.scatter(array[:, 0], array[:, 1], s=8)
        if labels:
            ax.set_xlabel(labels[0])
            ax.set_ylabel(labels[1])
        return
    for j in range(min(columns, MAX_LINES)):
        ax.plot(array[:, j], label=labels[j] if labels else f"column {j}")
    ax.legend(fontsize="small")


def _nan(array: Any) -> Any:
    import numpy as np

    return np.isnan(array)


def _cells(array: Any) -> Any:
    import numpy as np

    return np.ndenumerate(array)
