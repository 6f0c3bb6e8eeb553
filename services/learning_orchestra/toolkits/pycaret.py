"""The PyCaret adapter: `pycaret.*` modules (PyCaret 3.3, classification and regression).

PyCaret as atomic steps, through its object API (docs/api.md, "Routes and bodies"):

- `model/pycaret` builds the experiment (`ClassificationExperiment()`, which takes no
  arguments) and runs its `setup(**classParameters)` (`construct`). The stored output is the
  experiment *with its data*, in the "pycaret" format (`PYCARET`, below): PyCaret's own
  pickling (`save_experiment`) drops the data, and setting it up again in every later step
  would cost the whole preprocessing and could differ; so the later steps load it ready.
- `train|tune|evaluate|predict/pycaret` call a method of that experiment (`parentName` is the
  model step): `compare_models`, `create_model`, `finalize_model`, `tune_model`,
  `predict_model`, ... (`invoke`). What they store is what the method returns (an estimator,
  a list of them, a predictions table), never the experiment; the table PyCaret displays
  (`pull()`) is the step's metadata: `leaderboard`, `cvResults` or `metrics`.

builder/pycaret runs a whole user script (steps/builder); before the script, its sandboxed
child calls `builder_prelude`, which lets scripts written for PyCaret 2 (the monograph's
Appendix A passes `setup(silent=True)`) run on PyCaret 3: `setup` drops the PyCaret-2-only
arguments, with a warning in the step's log, and writes no `logs.log` unless asked to
(`system_log`). model/pycaret drops them the same way.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import math
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.formats import Codec
from ..sandbox.protocol import Failure
from . import Toolkit

#: The main file of the "pycaret" format: the experiment and its data (`PYCARET`).
EXPERIMENT_FILE = "experiment.pkl"

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
    formats={"pycaret": EXPERIMENT_FILE},
    metadata=(
        "sessionId",
        "task",
        "setupSummary",
        "leaderboard",
        "cvResults",
        "metrics",
        "model",
        "tuned",
        "bestParams",
    ),
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


def without_pycaret2_arguments(
    setup: Callable[..., Any], given: dict[str, Any], where: str
) -> dict[str, Any]:
    """`given` less the PyCaret-2-only arguments (`dropped_arguments`), each named in a
    warning on stderr (the step's log)."""
    dropped = dropped_arguments(setup, given)
    if dropped:
        names = ", ".join(f"{name}={given[name]!r}" for name in dropped)
        _warn(f"{where}: ignored PyCaret 2 argument(s) that PyCaret 3 no longer takes: {names}")
    return {name: value for name, value in given.items() if name not in dropped}


def drop_pycaret2_arguments(setup: Callable[..., Any], where: str) -> Callable[..., Any]:
    """`setup` that drops PyCaret-2-only keyword arguments, writing a warning to stderr (the
    step's log), and passes ``system_log=False`` unless it is given (no ``logs.log`` among
    the step's files)."""

    @functools.wraps(setup)
    def compatible(*args: Any, **kwargs: Any) -> Any:
        kwargs = without_pycaret2_arguments(setup, kwargs, where)
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


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


# -- model/pycaret: the experiment, set up ---------------------------------------------------
#: setup arguments model/pycaret always passes, whatever classParameters say: no `logs.log`
#: among the step's files, no HTML or console display (nobody watches the sandbox's screen;
#: the setup summary is the step's `setupSummary` instead).
FORCED_SETUP = {"system_log": False, "html": False, "verbose": False}
#: A session_id drawn for an experiment set up without one: PyCaret draws in this range too.
SESSION_IDS = (150, 9000)

Call = Callable[[Any, str, dict[str, Any]], Any]


def construct(
    step: str, cls: Any, class_parameters: dict[str, Any], new: Callable[..., Any], call: Call
) -> Any:
    """model/pycaret (sandbox/child.py, shape "construct"): `cls()` (an Experiment class takes
    no arguments), then its `setup(**classParameters)`, with `FORCED_SETUP` over the user's
    values, PyCaret-2-only arguments dropped (warned in the log), and a session_id drawn when
    none is given, so that every later step on the experiment is reproducible. Missing data,
    or a `target` that is not a column of `data`, fails naming the field before setup runs."""
    setup = getattr(cls, "setup", None)
    if not callable(setup):
        raise Failure(
            f"class: {cls.__name__} is not a PyCaret experiment: model/pycaret sets up a "
            "ClassificationExperiment or a RegressionExperiment"
        )
    parameters = without_pycaret2_arguments(setup, class_parameters, f"{cls.__name__}.setup")
    _check_data(parameters)
    accepted = inspect.signature(setup).parameters
    for name, value in FORCED_SETUP.items():
        if name not in accepted:
            continue
        if parameters.get(name, value) != value:
            _warn(
                f"classParameters.{name}={parameters[name]!r} is ignored: model/pycaret "
                f"sets {name}={value!r}"
            )
        parameters[name] = value
    if parameters.get("session_id") is None and "session_id" in accepted:
        parameters["session_id"] = SESSION_IDS[0] + secrets.randbelow(
            SESSION_IDS[1] - SESSION_IDS[0]
        )
        sys.stderr.write(
            f"classParameters.session_id not given: drew session_id={parameters['session_id']} "
            "(the step's sessionId), which every later step on this experiment reuses\n"
        )
    experiment = new({})
    call(experiment, "setup", parameters)
    return experiment


def _check_data(parameters: dict[str, Any]) -> None:
    """classParameters must hold the data (`data`, or PyCaret's `data_func`), and `target`,
    when it is a column name, must be a column of `data` (a DataFrame)."""
    target, data = parameters.get("target"), parameters.get("data")
    if data is None and parameters.get("data_func") is None:
        raise Failure(
            'classParameters.data: missing: the table to set up the experiment on ("$dataset")'
        )
    columns = getattr(data, "columns", None)
    if not isinstance(target, str) or columns is None or target in columns:
        return
    names = [str(c) for c in columns]
    close = difflib.get_close_matches(target, names, n=3)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    listed = ", ".join(names[:50]) + (", ..." if len(names) > 50 else "")
    raise Failure(
        f"classParameters.target: column {target!r} is not in the data ({hint}columns: {listed})"
    )


def experiment_metadata(experiment: Any) -> dict[str, Any]:
    """A model/pycaret step's metadata: `sessionId`, `task` ("classification", "regression")
    and `setupSummary`, setup's summary table (Description, Value) as records."""
    usecase = getattr(experiment, "_ml_usecase", None)
    container = getattr(experiment, "_display_container", None) or []
    return {
        "sessionId": _plain(getattr(experiment, "seed", None)),
        "task": str(getattr(usecase, "name", usecase)).lower(),
        "setupSummary": records(container[-1]) if container else [],
    }


# -- train|tune|evaluate|predict/pycaret: a method of the experiment ---------------------------
#: Methods whose table (`pull()`) is a cross-validation table, kept as `cvResults`.
CV_METHODS = frozenset(
    {
        "create_model",
        "tune_model",
        "ensemble_model",
        "blend_models",
        "stack_models",
        "calibrate_model",
    }
)
#: Set on what a train/pycaret step's finalize_model returns: evaluate/pycaret refuses it.
FINALIZED = "_lo_finalized"


@dataclass
class Kept:
    """What a method call on the experiment leaves: the value the step stores, and its
    metadata (`outcome` unpacks it)."""

    value: Any
    metadata: dict[str, Any]


def invoke(step: str, target: Any, method: str, arguments: dict[str, Any], call: Call) -> Kept:
    """The "invoke" shape's call (sandbox/child.py) on the experiment `target`: checks that
    the parent is an experiment and that estimator ids exist (failures naming the field),
    refuses to evaluate a finalized estimator, reports each model compare_models compares as
    progress, and keeps PyCaret's table of the call as metadata. ``verbose=False`` unless
    given: the table is in the metadata, not printed in the log."""
    experiment = _experiment(step, target, method)
    if "verbose" in _parameters(getattr(experiment, method, None)):
        arguments = {"verbose": False, **arguments}
    _check_estimator_ids(experiment, method, arguments)
    if step == "evaluate" and getattr(arguments.get("estimator"), FINALIZED, False):
        raise Failure(
            "methodParameters.estimator: this estimator comes from finalize_model, which "
            "refits it on the hold-out set too: its hold-out metrics would be meaningless; "
            "evaluate the estimator before finalize_model"
        )
    container = experiment._display_container
    last = container[-1] if container else None
    with _comparisons_reported(experiment, method, arguments):
        result = call(experiment, method, arguments)
    if result is experiment:
        raise Failure(
            f"method: {method} returns the experiment itself; {step}/pycaret stores what a "
            "method returns (an estimator, predictions): the experiment is model/pycaret's"
        )
    if method == "finalize_model" and result is not None:
        with contextlib.suppress(AttributeError, TypeError):
            setattr(result, FINALIZED, True)
    table = container[-1] if container and container[-1] is not last else None
    metadata = {"sessionId": _plain(experiment.seed), **_table_metadata(method, table)}
    if method == "tune_model":
        metadata |= _tuning_metadata(arguments.get("estimator"), result)
    return Kept(result, metadata)


def _tuning_metadata(given: Any, kept: Any) -> dict[str, Any]:
    """`tuned` (whether tune_model kept a tuned estimator) and `bestParams` (the kept
    estimator's own parameters). With ``choose_better=True`` tune_model returns the estimator
    it was given when the tuned one scores worse, while its table (`cvResults`) is the tuned
    candidate's: the log says so, as PyCaret's own message would with verbose=True."""
    tuned = kept is not given
    if not tuned:
        _warn(
            "tune_model kept the estimator it was given: the tuned candidate did not score "
            "better (choose_better=True); cvResults are the tuned candidate's. Try more "
            "iterations (n_iter) or choose_better=False to keep the tuned one"
        )
    parameters = getattr(kept, "get_params", None)
    best = _plain(parameters(deep=False)) if callable(parameters) else None
    return {"tuned": tuned, **({"bestParams": best} if isinstance(best, dict) else {})}


def _experiment(step: str, target: Any, method: str) -> Any:
    """`target` when it is a PyCaret experiment; else a Failure naming parentName."""
    module = sys.modules.get(EXPERIMENT_MODULE)
    if module is not None and isinstance(target, module._PyCaretExperiment):
        return target
    what = type(target).__name__
    trained = " (a trained estimator)" if hasattr(target, "fit") else ""
    raise Failure(
        f"parentName: {step}/pycaret calls {method} on a PyCaret experiment, and the parent "
        f"holds a {what}{trained}: the experiment step (model/pycaret) goes in parentName; "
        'pass an estimator as methodParameters.estimator ("$<train step>")'
    )


def _parameters(function: Any) -> Any:
    try:
        return inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}


def _check_estimator_ids(experiment: Any, method: str, arguments: dict[str, Any]) -> None:
    """The estimator ids a call names (create_model's `estimator`, compare_models'
    `include`/`exclude`) must be the experiment's: a Failure naming the field, listing them."""
    public = list(getattr(experiment, "_all_models", {}))
    if method == "create_model":
        known = set(getattr(experiment, "_all_models_internal", {})) | set(public)
        estimator = arguments.get("estimator")
        if isinstance(estimator, str) and estimator not in known:
            raise _not_an_id("estimator", estimator, public)
    if method != "compare_models":
        return
    for field in ("include", "exclude"):
        given = arguments.get(field)
        if not isinstance(given, list):
            continue
        ids = [i for i in given if isinstance(i, str)]
        for estimator in ids:
            if estimator not in public:
                raise _not_an_id(field, estimator, public)
        twice = next((i for n, i in enumerate(ids) if i in ids[:n]), None)
        if twice is not None:
            raise Failure(f"methodParameters.{field}: {twice!r} is listed twice")


def _not_an_id(field: str, given: str, ids: list[str]) -> Failure:
    close = difflib.get_close_matches(given, ids, n=3)
    hint = f"did you mean {', '.join(repr(i) for i in close)}? " if close else ""
    return Failure(
        f"methodParameters.{field}: {given!r} is not a PyCaret estimator id "
        f"({hint}ids: {', '.join(ids)})"
    )


@contextlib.contextmanager
def _comparisons_reported(
    experiment: Any, method: str, arguments: dict[str, Any]
) -> Iterator[None]:
    """While compare_models runs: each model it compares reports progress when its
    cross-validation ends, ``{"model": k, "models": n, "estimator": "lr", "name": "Logistic
    Regression"}``. compare_models calls `_create_model(..., refit=False)` once per model
    (once more, with the same estimator, when a model failed: the same k again), then
    without refit=False for the models it returns, which are not counted."""
    if method != "compare_models":
        yield
        return
    from ..sandbox.child import progress

    total = len(_compared(experiment, arguments))
    original = experiment._create_model
    count, previous = 0, None

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal count, previous
        if kwargs.get("refit", True) is not False:
            return original(*args, **kwargs)
        estimator = kwargs["estimator"] if "estimator" in kwargs else args[0]
        if count == 0 or estimator is not previous:  # the same estimator again: a retry
            count += 1
        previous = estimator
        try:
            return original(*args, **kwargs)
        finally:
            progress(
                model=count,
                models=total,
                estimator=estimator if isinstance(estimator, str) else type(estimator).__name__,
                name=_model_name(experiment, estimator),
            )

    experiment._create_model = counted
    try:
        yield
    finally:
        del experiment._create_model  # the class's method again


def _compared(experiment: Any, arguments: dict[str, Any]) -> list[Any]:
    """The models compare_models compares, as it chooses them: `include`, else the models
    of the experiment (the turbo ones unless ``turbo=False``) less `exclude`."""
    include = arguments.get("include")
    if include:
        return list(include)
    turbo = arguments.get("turbo", True)
    models = experiment._all_models
    exclude = set(arguments.get("exclude") or ())
    return [k for k, v in models.items() if (v.is_turbo or not turbo) and k not in exclude]


def _model_name(experiment: Any, estimator: Any) -> str:
    try:
        return str(experiment._get_model_name(estimator))
    except Exception:  # a name is a nicety: never fail a comparison for it
        return type(estimator).__name__


def _table_metadata(method: str, table: Any) -> dict[str, Any]:
    """The table a call displayed (`pull()`) as the step's metadata: compare_models' as
    `leaderboard` (one record per model, its id as "ID"), a cross-validation's as
    `cvResults` (one per fold, then Mean and Std), predict_model's metric row as `metrics`
    ({metric: value}) with the estimator's name as `model`."""
    if table is None:
        return {}
    if method == "compare_models":
        return {"leaderboard": records(table, index="ID")}
    if method in CV_METHODS:
        return {"cvResults": records(table, index="Fold")}
    if method == "predict_model" and len(table) == 1:
        row = records(table)[0]
        model = row.pop("Model", None)
        return {"metrics": row, **({"model": model} if model is not None else {})}
    return {}


def records(table: Any, index: str | None = None) -> list[dict[str, Any]]:
    """A DataFrame as JSON records: numpy values as plain ones, NaN as null, anything else
    JSON does not have as its text. A meaningful index (model ids, folds) is kept as the
    column `index` (its own name first); a RangeIndex is dropped."""
    import pandas as pd

    if index is not None and not isinstance(table.index, pd.RangeIndex):
        table = table.reset_index(names=table.index.name or index)
    return [
        {str(key): _plain(value) for key, value in row.items()}
        for row in table.to_dict(orient="records")
    ]


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # a numpy scalar
        return _plain(value.item())
    with contextlib.suppress(TypeError, ValueError):
        import pandas as pd

        if pd.isna(value):  # pd.NA, NaT
            return None
    return str(value)


def outcome(step: str, target: Any, result: Any) -> tuple[Any, dict[str, Any]]:
    """What a step keeps: model/pycaret the experiment (with `experiment_metadata`), the
    other steps what `invoke` kept."""
    if isinstance(result, Kept):
        return result.value, result.metadata
    if step == "model":
        return target, experiment_metadata(target)
    return (target if result is None else result), {}


def natural(value: Any) -> Any:
    """PyCaret returns DataFrames, pipelines and estimators: stored as they are."""
    return value


def plot(value: Any, path: Path) -> None:
    from . import plots

    plots.render(value, path)


# -- the "pycaret" codec (core/formats.py): an experiment with its data ------------------------
EXPERIMENT_MODULE = "pycaret.internal.pycaret_experiment.pycaret_experiment"


def _is_experiment(value: Any) -> bool:
    module = sys.modules.get(EXPERIMENT_MODULE)  # never imported here: no experiment without it
    return module is not None and isinstance(value, module._PyCaretExperiment)


def _save_experiment(folder: Path, experiment: Any) -> None:
    """The experiment as `save_experiment` pickles it (without data, test_data and
    data_func: `_attributes_to_not_save`), and those attributes (and setup parameters)
    beside it, in one cloudpickle file. The logger of ``system_log=False`` (PyCaret's
    DummyLogger, which pickle refuses: no `logging.getLogger` knows it) is left out, and
    made again on load."""
    import cloudpickle

    dropped = experiment._attributes_to_not_save
    setup_parameters = experiment._setup_params or {}
    logger = vars(experiment).get("logger")
    silent = type(logger).__name__ == "DummyLogger"
    saved = {
        "experiment": experiment,
        "attributes": {k: v for k, v in vars(experiment).items() if k in dropped},
        "setupParameters": {k: v for k, v in setup_parameters.items() if k in dropped},
        "dummyLogger": silent,
    }
    if silent:
        experiment.logger = None
    try:
        with (folder / EXPERIMENT_FILE).open("wb") as handle:
            cloudpickle.dump(saved, handle)
    finally:
        if silent:
            experiment.logger = logger


def _load_experiment(folder: Path) -> Any:
    """The experiment as it was after setup, data included, without running setup again
    (what PyCaret's `load_experiment(..., preprocess_data=False)` does, with the data it
    dropped). Its transformer cache (setup's `memory`, a joblib cache in the temporary
    folder of the run that set it up, gone since) moves to this run's temporary folder."""
    import cloudpickle

    with (folder / EXPERIMENT_FILE).open("rb") as handle:
        saved = cloudpickle.load(handle)
    experiment = saved["experiment"]
    vars(experiment).update(saved["attributes"])
    if saved["dummyLogger"]:
        from pycaret.internal.logging import create_logger

        experiment.logger = create_logger(False)
    if experiment._setup_params is not None:
        experiment._setup_params.update(saved["setupParameters"])
    location = getattr(getattr(experiment, "memory", None), "location", None)
    if location is not None and not os.access(location, os.W_OK):
        from pycaret.internal.memory import get_memory

        experiment.memory = get_memory(True)
    return experiment


PYCARET = Codec("pycaret", EXPERIMENT_FILE, _is_experiment, _save_experiment, _load_experiment)

#: This adapter's codecs (core/formats.py), for the formats `TOOLKIT.formats` declares.
CODECS = (PYCARET,)
