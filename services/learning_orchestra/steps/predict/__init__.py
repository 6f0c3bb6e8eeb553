"""predict service: `predict/{scikitlearn,tensorflow}` — predictions of a stored model.

- `predict/scikitlearn`, `predict/tensorflow` — the stored object of step `parentName` (a
  trained or tuned model), then its `method(**methodParameters)` (`predict`,
  `predict_proba`, ...) in a sandboxed process (toolkits/calls.py, shape "invoke"). The
  predictions are the output, stored as an array (`.npy`) or a table (Parquet) and read
  through `.../result` or as `$name` by later steps.
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
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("predict")
    raise AttributeError(name)
