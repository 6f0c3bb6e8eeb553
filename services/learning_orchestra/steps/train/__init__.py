"""train service: `train/{scikitlearn,tensorflow,pycaret,autokeras}`: fit a model.

- `train/scikitlearn`, `train/tensorflow` — the stored object of step `parentName` (a model,
  trained or tuned step of the same toolkit), then its `method(**methodParameters)`
  (`fit(X=..., y=...)`), in a sandboxed process (toolkits/calls.py, shape "invoke"). `fit`
  returns the estimator itself or a Keras History: what is kept is the fitted model, as a new
  output (the parent's is never changed), with the History's per-epoch values as `history`
  in the metadata and each Keras epoch reported as the step's `progress` while it trains.
  A method returning None (Keras `compile`) keeps the object it was called on.
- `train/pycaret` — `parentName` is the experiment (a model/pycaret step) and `method` is
  `compare_models`, `create_model` or `finalize_model` (or another of its methods). What the
  method returns is kept (an estimator, a list of them when `n_select` > 1, finalize_model's
  pipeline), never the experiment, with PyCaret's table (`pull()`) in the metadata:
  compare_models' as `leaderboard` (a record per model, its id as `ID`), create_model's as
  `cvResults` (a record per fold, then Mean and Std), and the experiment's `sessionId`.
  compare_models reports each model it compared as the step's `progress`:
  `{"model": k, "models": n, "estimator": "lr", "name": "Logistic Regression"}`. An unknown
  estimator id fails naming `methodParameters.estimator` (or `include`, `exclude`), and a
  parent that is not an experiment naming `parentName` (toolkits/pycaret.py).
- `train/autokeras` — `parentName` is the model/autokeras step and `method` is `fit` (`x`,
  `y`, `epochs`, `validation_split`, ...): the architecture search, in a scratch directory
  left out of the step's files, offline (Keras-application blocks never download ImageNet
  weights: `pretrained` is forced False). Progress: each epoch as `{"stage": "search",
  "trial": i, "trials": max_trials, "epoch": k, "epochs": m, "loss": ..., ...}`, each
  trial's end with its `status`, `score` and `bestScore`, AutoKeras' final refit as
  `"stage": "final"`. Kept: the best model (`export_model()`, as `model.keras`) with the
  data pipeline AutoKeras fitted for it (`pipeline.json`), so predict and evaluate answer as
  the task would; metadata `trials`, `bestParams`, `bestScore`, `objective`, `history` (the
  History fit returned) and a classifier's `classes`; every trial also in the step file
  `trials.json` (toolkits/autokeras.py).

`modelName` names the model step the pipeline started from; PATCH with
`{"methodParameters": {...}}` re-trains from the persisted parent without re-creating it.
"""

from __future__ import annotations

from typing import Any

from ...toolkits.calls import method_step_type

STEP_TYPES = [
    method_step_type(
        "train",
        "scikitlearn",
        example={
            "name": "titanic_lr_trained",
            "modelName": "titanic_lr",
            "parentName": "titanic_lr",
            "method": "fit",
            "methodParameters": {"X": "$titanic_xy.X", "y": "$titanic_xy.y"},
        },
    ),
    method_step_type(
        "train",
        "tensorflow",
        example={
            "name": "mnist_trained",
            "modelName": "mnist_net",
            "parentName": "mnist_compiled",
            "method": "fit",
            "methodParameters": {"x": "$mnist.x", "y": "$mnist.y", "epochs": 2},
        },
    ),
    method_step_type(
        "train",
        "pycaret",
        example={
            "name": "titanic_best",
            "modelName": "titanic_experiment",
            "parentName": "titanic_experiment",
            "method": "compare_models",
            "methodParameters": {"include": ["lr", "dt", "rf"], "fold": 3, "n_select": 1},
        },
    ),
    method_step_type(
        "train",
        "autokeras",
        example={
            "name": "mnist_autokeras_trained",
            "modelName": "mnist_autokeras",
            "parentName": "mnist_autokeras",
            "method": "fit",
            "methodParameters": {
                "x": "$mnist.x_train",
                "y": "$mnist.y_train",
                "epochs": 1,
                "validation_split": 0.1,
            },
        },
    ),
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("train")
    raise AttributeError(name)
