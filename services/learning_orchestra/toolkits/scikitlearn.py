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
    metadata=("metrics", "bestParams", "bestScore", "cvResults"),
)


#: How many rows of a search's `cv_results_` the step's metadata keeps (best ranks first).
CV_ROWS = 20


def outcome(step: str, target: Any, result: Any) -> tuple[Any, dict[str, Any]]:
    """What a model-lifecycle step keeps: `fit` returns the estimator itself, kept fitted;
    a fitted search (GridSearchCV, RandomizedSearchCV) keeps its best estimator with the
    search's best parameters, score and best-ranked results; `score` is kept as metrics
    (``accuracy`` for a classifier, ``r2`` for a regressor, as scikit-learn defines them)."""
    value = target if result is None else result
    if step == "tune" and hasattr(value, "best_estimator_"):
        return value.best_estimator_, search_metadata(value)
    if step == "evaluate":
        return value, {"metrics": metrics(target, value)}
    return value, {}


def search_metadata(search: Any) -> dict[str, Any]:
    """bestParams, bestScore and the best-ranked rows of cv_results_, JSON-safe."""
    results = search.cv_results_
    ranks = sorted(
        range(len(results["rank_test_score"])), key=results["rank_test_score"].__getitem__
    )
    rows = [
        {
            "params": _plain(results["params"][i]),
            "meanTestScore": _plain(results["mean_test_score"][i]),
            "stdTestScore": _plain(results["std_test_score"][i]),
            "rank": _plain(results["rank_test_score"][i]),
        }
        for i in ranks[:CV_ROWS]
    ]
    return {
        "bestParams": _plain(search.best_params_),
        "bestScore": _plain(search.best_score_),
        "cvResults": rows,
    }


def metrics(estimator: Any, value: Any) -> dict[str, Any]:
    """The metrics of an evaluate step's result: a number (named after what the estimator's
    `score` means), or a dict of numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    kind = getattr(estimator, "_estimator_type", None)
    named = {"classifier": "accuracy", "regressor": "r2"}.get(str(kind))
    number = _plain(value)
    return {"score": number, **({named: number} if named else {})}


def _plain(value: Any) -> Any:
    """numpy scalars and containers as plain JSON values (estimators as their repr)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


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
