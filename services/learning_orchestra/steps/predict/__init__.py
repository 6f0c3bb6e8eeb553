"""predict service: `predict/{scikitlearn,tensorflow,pycaret,autokeras}`: predictions.

- `predict/scikitlearn`, `predict/tensorflow` — the stored object of step `parentName` (a
  trained or tuned model), then its `method(**methodParameters)` (`predict`,
  `predict_proba`, ...) in a sandboxed process (toolkits/calls.py, shape "invoke"). The
  predictions are the output, stored as an array (`.npy`) or a table (Parquet) and read
  through `.../result` or as `$name` by later steps.
- `predict/pycaret` — `parentName` is the experiment (a model/pycaret step) and `method` is
  `predict_model` with `estimator: "$trained"` and `data: "$dataset"`: the predictions table
  (the data's columns plus `prediction_label`, and `prediction_score` for a classifier) is
  the output, stored as Parquet; `metrics` too when the data holds the target
  (toolkits/pycaret.py).
- `predict/autokeras` — `parentName` is the train/autokeras step and `method` is `predict`:
  the predictions the fitted task gives, a classifier's labels (an (n, 1) array of the label
  strings AutoKeras encodes, e.g. "7") or a regressor's values. The untrained model step as
  parentName fails naming `parentName` (toolkits/autokeras.py).
"""

from __future__ import annotations

from typing import Any

from ...toolkits.calls import method_step_type

STEP_TYPES = [
    method_step_type(
        "predict",
        "scikitlearn",
        example={
            "name": "titanic_lr_predicted",
            "modelName": "titanic_lr",
            "parentName": "titanic_lr_trained",
            "method": "predict",
            "methodParameters": {"X": "$titanic_xy.X_test"},
        },
    ),
    method_step_type(
        "predict",
        "tensorflow",
        example={
            "name": "mnist_predicted",
            "modelName": "mnist_net",
            "parentName": "mnist_trained",
            "method": "predict",
            "methodParameters": {"x": "$mnist.x_test"},
        },
    ),
    method_step_type(
        "predict",
        "pycaret",
        example={
            "name": "titanic_predicted",
            "modelName": "titanic_experiment",
            "parentName": "titanic_experiment",
            "method": "predict_model",
            "methodParameters": {"estimator": "$titanic_tuned", "data": "$titanic_test"},
        },
    ),
    method_step_type(
        "predict",
        "autokeras",
        example={
            "name": "mnist_autokeras_predicted",
            "modelName": "mnist_autokeras",
            "parentName": "mnist_autokeras_trained",
            "method": "predict",
            "methodParameters": {"x": "$mnist.x_test"},
        },
    ),
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("predict")
    raise AttributeError(name)
