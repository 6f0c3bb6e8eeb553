"""evaluate service: `evaluate/{scikitlearn,tensorflow,pycaret,autokeras}`: metrics of a model.

- `evaluate/scikitlearn`, `evaluate/tensorflow` — the stored object of step `parentName` (a
  trained or tuned model), then its `method(**methodParameters)` (scikit-learn `score`,
  Keras `evaluate`) in a sandboxed process (toolkits/calls.py, shape "invoke"). The result
  is the output, and also the step's `metrics` metadata, readable without downloading
  anything: `accuracy` (a classifier's score) or `r2` (a regressor's) besides `score`; Keras'
  loss and compiled metrics by name (`loss`, `accuracy`, ...); a returned dict as it is.
- `evaluate/pycaret` — `parentName` is the experiment (a model/pycaret step) and `method` is
  `predict_model` with `estimator: "$trained"`: the hold-out set's predictions are the output
  (a table), and PyCaret's metric row (`pull()`) is `metrics` (`{"Accuracy": ..., "AUC":
  ...}`; MAE ... R2 for a regression), with the estimator's name as `model`. An estimator
  from a train/pycaret finalize_model is refused (naming `methodParameters.estimator`): it
  was refitted on the hold-out set (toolkits/pycaret.py).
- `evaluate/autokeras` — `parentName` is the train/autokeras step and `method` is
  `evaluate` with `x` and the raw labels `y` (encoded as the search encoded them): the loss
  and metrics by name are the output and `metrics` (`{"loss": ..., "accuracy": ...}`). The
  untrained model step as parentName fails naming `parentName` (toolkits/autokeras.py).
"""

from __future__ import annotations

from typing import Any

from ...toolkits.calls import method_step_type

STEP_TYPES = [
    method_step_type(
        "evaluate",
        "scikitlearn",
        example={
            "name": "titanic_lr_score",
            "modelName": "titanic_lr",
            "parentName": "titanic_lr_trained",
            "method": "score",
            "methodParameters": {"X": "$titanic_xy.X_hold", "y": "$titanic_xy.y_hold"},
        },
    ),
    method_step_type(
        "evaluate",
        "tensorflow",
        example={
            "name": "mnist_evaluated",
            "modelName": "mnist_net",
            "parentName": "mnist_trained",
            "method": "evaluate",
            "methodParameters": {"x": "$mnist.x_test", "y": "$mnist.y_test"},
        },
    ),
    method_step_type(
        "evaluate",
        "pycaret",
        example={
            "name": "titanic_holdout",
            "modelName": "titanic_experiment",
            "parentName": "titanic_experiment",
            "method": "predict_model",
            "methodParameters": {"estimator": "$titanic_tuned"},
        },
    ),
    method_step_type(
        "evaluate",
        "autokeras",
        example={
            "name": "mnist_autokeras_evaluated",
            "modelName": "mnist_autokeras",
            "parentName": "mnist_autokeras_trained",
            "method": "evaluate",
            "methodParameters": {"x": "$mnist.x_test", "y": "$mnist.y_test"},
        },
    ),
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("evaluate")
    raise AttributeError(name)
