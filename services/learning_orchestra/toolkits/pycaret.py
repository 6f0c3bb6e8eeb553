"""The PyCaret adapter: `pycaret.*` modules (PyCaret 3.3, classification and regression).

builder/pycaret runs a whole user script (steps/builder); before the script, its sandboxed
child calls `builder_prelude`, which lets scripts written for PyCaret 2 (the monograph's
Appendix A passes `setup(silent=True)`) run on PyCaret 3: `setup` drops the PyCaret-2-only
arguments, with a warning in the step's log, and writes no `logs.log` unless asked to
(`system_log`).
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import Toolkit

TOOLKIT = Toolkit(
    tool="pycaret",
    title="PyCaret",
    extra="pycaret",
    packages=("pycaret",),
    distributions=("pycaret", "scikit-learn", "numpy", "pandas", "matplotlib"),
    adapter=__name__,
    # PyCaret's import opens a `logs.log` in the working directory (it would be a step file):
    # its logger writes to /dev/null instead, and only what is critical
    env={"PYCARET_CUSTOM_LOGGING_PATH": "/dev/null", "PYCARET_CUSTOM_LOGGING_LEVEL": "CRITICAL"},
    # ~1.6 s and ~250 MB (RSS) to import: paid once by the family's zygote, not by each step
    preimport=("pycaret.classification", "pycaret.regression"),
)

#: The arguments of PyCaret 2.x `setup` (classification and regression, 2.0 to 2.3). Those
#: that PyCaret 3's `setup` no longer takes are dropped (`drop_pycaret2_arguments`).
PYCARET2_SETUP = frozenset(
    {
        "data", "target", "train_size", "test_data", "preprocess", "imputation_type",
        "iterative_imputation_iters", "categorical_features", "categorical_imputation",
        "categorical_iterative_imputer", "ordinal_features", "high_cardinality_features",
        "high_cardinality_method", "numeric_features", "numeric_imputation",
        "numeric_iterative_imputer", "date_features", "ignore_features", "normalize",
        "normalize_method", "transformation", "transformation_method",
        "handle_unknown_categorical", "unknown_categorical_method", "pca", "pca_method",
        "pca_components", "ignore_low_variance", "combine_rare_levels", "rare_level_threshold",
        "bin_numeric_features", "remove_outliers", "outliers_threshold",
        "remove_multicollinearity", "multicollinearity_threshold",
        "remove_perfect_collinearity", "create_clusters", "cluster_iter",
        "polynomial_features", "polynomial_degree", "trigonometry_features",
        "polynomial_threshold", "group_features", "group_names", "feature_selection",
        "feature_selection_threshold", "feature_selection_method", "feature_interaction",
        "feature_ratio", "interaction_threshold", "fix_imbalance", "fix_imbalance_method",
        "transform_target", "transform_target_method", "data_split_shuffle",
        "data_split_stratify", "fold_strategy", "fold", "fold_shuffle", "fold_groups",
        "n_jobs", "use_gpu", "custom_pipeline", "html", "session_id", "log_experiment",
        "experiment_name", "experiment_custom_tags", "log_plots", "log_profile", "log_data",
        "silent", "verbose", "profile", "profile_kwargs", "display",
    }
)  # fmt: skip

#: The modules whose `setup` (and Experiment class's `setup`) the builder prelude wraps.
SETUP_MODULES = {
    "pycaret.classification": "ClassificationExperiment",
    "pycaret.regression": "RegressionExperiment",
}


def dropped_arguments(setup: Callable[..., Any], given: dict[str, Any]) -> list[str]:
    """The arguments of `given` that PyCaret 2's setup took and `setup` (PyCaret 3's) does not
    (e.g. ``silent``). Arguments neither version knows are left for `setup` to refuse."""
    parameters = inspect.signature(setup).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return []
    return sorted(name for name in given if name in PYCARET2_SETUP and name not in parameters)


def drop_pycaret2_arguments(setup: Callable[..., Any], where: str) -> Callable[..., Any]:
    """`setup` that drops PyCaret-2-only keyword arguments, writing a warning to stderr (the
    step's log), and passes ``system_log=False`` unless it is given (no ``logs.log`` among
    the step's files)."""

    @functools.wraps(setup)
    def compatible(*args: Any, **kwargs: Any) -> Any:
        dropped = dropped_arguments(setup, kwargs)
        if dropped:
            names = ", ".join(f"{name}={kwargs.pop(name)!r}" for name in dropped)
            sys.stderr.write(
                f"warning: {where}: ignored PyCaret 2 argument(s) that PyCaret 3 no longer "
                f"takes: {names}\n"
            )
        kwargs.setdefault("system_log", False)
        return setup(*args, **kwargs)

    compatible.__lo_pycaret2__ = True  # type: ignore[attr-defined]
    return compatible


def builder_prelude() -> None:
    """Run by builder/pycaret's child before the user's script (sandbox/child.py): wraps
    `pycaret.classification.setup`, `pycaret.regression.setup` and their Experiment classes'
    `setup` with `drop_pycaret2_arguments`."""
    import importlib

    for name, experiment in SETUP_MODULES.items():
        module = importlib.import_module(name)
        functional = importlib.import_module(f"{name}.functional")
        setup = module.setup
        if not getattr(setup, "__lo_pycaret2__", False):
            wrapped = drop_pycaret2_arguments(setup, f"{name}.setup")
            setattr(module, "setup", wrapped)  # noqa: B010 (a module attribute, for mypy)
            setattr(functional, "setup", wrapped)  # noqa: B010
        cls = getattr(module, experiment)
        if not getattr(cls.setup, "__lo_pycaret2__", False):
            cls.setup = drop_pycaret2_arguments(cls.setup, f"{experiment}.setup")


def natural(value: Any) -> Any:
    """PyCaret returns DataFrames, pipelines and estimators: stored as they are."""
    return value


def plot(value: Any, path: Path) -> None:
    from . import plots

    plots.render(value, path)
