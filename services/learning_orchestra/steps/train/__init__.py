"""train service: `train/{scikitlearn,tensorflow}` — fit a stored model, keep the fitted one.

- `train/scikitlearn`, `train/tensorflow` — the stored object of step `parentName` (a model,
  trained or tuned step of the same toolkit), then its `method(**methodParameters)`
  (`fit(X=..., y=...)`), in a sandboxed process (toolkits/calls.py, shape "invoke"). `fit`
  returns the estimator itself or a Keras History: what is kept is the fitted model, as a new
  output (the parent's is never changed), with the History's per-epoch values as `history`
  in the metadata and each Keras epoch reported as the step's `progress` while it trains.
  A method returning None (Keras `compile`) keeps the object it was called on.

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
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("train")
    raise AttributeError(name)
