"""model service: `model/{scikitlearn,tensorflow}` — a toolkit object, kept to call methods on.

- `model/scikitlearn`, `model/tensorflow` — `modulePath.class(**classParameters)` in a
  sandboxed process (toolkits/calls.py, shape "construct"); the object itself is the output
  (a scikit-learn estimator, a Keras model built from `#keras.layers...` expressions), read
  by train/tune/evaluate/predict steps through their `parentName`. `classParameters` take
  `$name`/`$name.key` references and `#expr` expressions, so a search estimator can hold its
  estimator: `{"estimator": "#sklearn.linear_model.LogisticRegression()"}`.

The step's name is `modelName` (LO's alias in metadata too). The API process checks the
body and `modulePath` without importing the toolkit; the class and its parameters are checked
in the job, which fails naming the field at fault.
"""

from __future__ import annotations

from typing import Any

from ...toolkits.calls import model_step_type

STEP_TYPES = [
    model_step_type(
        "scikitlearn",
        example={
            "modelName": "titanic_lr",
            "modulePath": "sklearn.linear_model",
            "class": "LogisticRegression",
            "classParameters": {"max_iter": 1000},
        },
    ),
    model_step_type(
        "tensorflow",
        example={
            "modelName": "mnist_net",
            "modulePath": "tensorflow.keras",
            "class": "Sequential",
            "classParameters": {
                "layers": [
                    "#tensorflow.keras.Input(shape=(784,))",
                    "#tensorflow.keras.layers.Dense(64, activation='relu')",
                    "#tensorflow.keras.layers.Dense(10, activation='softmax')",
                ]
            },
        },
    ),
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("model")
    raise AttributeError(name)
