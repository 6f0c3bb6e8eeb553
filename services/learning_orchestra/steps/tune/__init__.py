"""tune service: `tune/{scikitlearn,tensorflow,pycaret}`: hyper-parameter searches.

- `tune/scikitlearn` — `parentName` is a model step holding a search estimator
  (`sklearn.model_selection.GridSearchCV` or `RandomizedSearchCV`, whose `estimator` is an
  `#sklearn...()` expression or a `$model` reference) and `method` is `fit`, in a sandboxed
  process (toolkits/calls.py, shape "invoke"). What is kept is the search's
  `best_estimator_`, with `bestParams`, `bestScore` and the best-ranked `cvResults` in the
  step's metadata (toolkits/scikitlearn.py `outcome`).
- `tune/tensorflow` — `parentName` is a compiled Keras model and `method` is `fit`;
  `methodParameters` holds fit's arguments plus `searchSpace` (`{argument: [values]}`, fit
  arguments or `compile.<argument>`) and `objective` (a History key): every combination is
  a trial on a fresh clone of the parent, and the best trial's fitted model is kept, with
  `trials`, `bestParams`, `bestScore` and `objective` in the metadata
  (toolkits/tensorflow.py; docs/api.md, "Model steps").
- `tune/pycaret` — `parentName` is the experiment (a model/pycaret step, loaded with its
  data: setup and the train step do not run again) and `method` is `tune_model` with
  `estimator: "$trained"`; the tuned estimator is kept, with PyCaret's CV table (`pull()`)
  as `cvResults` and the experiment's `sessionId` in the metadata (toolkits/pycaret.py).
- `tune/autokeras` answers 404 on every method, saying that AutoKeras searches in
  `train/autokeras` (steps/tune/autokeras.py).
"""

from __future__ import annotations

from typing import Any

from ...toolkits.calls import method_step_type

STEP_TYPES = [
    method_step_type(
        "tune",
        "scikitlearn",
        example={
            "name": "titanic_lr_tuned",
            "modelName": "titanic_search",
            "parentName": "titanic_search",
            "method": "fit",
            "methodParameters": {"X": "$titanic_xy.X", "y": "$titanic_xy.y"},
        },
    ),
    method_step_type(
        "tune",
        "tensorflow",
        example={
            "name": "mnist_tuned",
            "modelName": "mnist_net",
            "parentName": "mnist_compiled",
            "method": "fit",
            "methodParameters": {
                "x": "$mnist.x",
                "y": "$mnist.y",
                "validation_split": 0.2,
                "searchSpace": {"epochs": [1, 2], "compile.optimizer": ["adam", "sgd"]},
                "objective": "val_accuracy",
            },
        },
    ),
    method_step_type(
        "tune",
        "pycaret",
        example={
            "name": "titanic_tuned",
            "modelName": "titanic_experiment",
            "parentName": "titanic_experiment",
            "method": "tune_model",
            "methodParameters": {"estimator": "$titanic_best", "fold": 3, "n_iter": 5},
        },
    ),
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("tune")
    if name == "ROUTERS":  # imported on demand: worker processes importing jobs never need it
        from .autokeras import router

        return [router]
    raise AttributeError(name)
