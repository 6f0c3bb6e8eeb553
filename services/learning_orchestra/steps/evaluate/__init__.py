"""evaluate service: `evaluate/{scikitlearn,tensorflow}` — metrics of a stored model.

- `evaluate/scikitlearn`, `evaluate/tensorflow` — the stored object of step `parentName` (a
  trained or tuned model), then its `method(**methodParameters)` (scikit-learn `score`,
  Keras `evaluate`) in a sandboxed process (toolkits/calls.py, shape "invoke"). The result
  is the output, and also the step's `metrics` metadata, readable without downloading
  anything: `accuracy` (a classifier's score) or `r2` (a regressor's) besides `score`; Keras'
  loss and compiled metrics by name (`loss`, `accuracy`, ...); a returned dict as it is.
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
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("evaluate")
    raise AttributeError(name)
