"""model service: `model/{scikitlearn,tensorflow,pycaret,autokeras}`: objects to call methods on.

- `model/scikitlearn`, `model/tensorflow` — `modulePath.class(**classParameters)` in a
  sandboxed process (toolkits/calls.py, shape "construct"); the object itself is the output
  (a scikit-learn estimator, a Keras model built from `#keras.layers...` expressions), read
  by train/tune/evaluate/predict steps through their `parentName`. `classParameters` take
  `$name`/`$name.key` references and `#expr` expressions, so a search estimator can hold its
  estimator: `{"estimator": "#sklearn.linear_model.LogisticRegression()"}`.
- `model/pycaret` — a PyCaret experiment (`pycaret.classification.ClassificationExperiment`,
  `pycaret.regression.RegressionExperiment`), built without arguments, then set up:
  `setup(**classParameters)` (`data: "$dataset"`, `target`, `session_id`, ...), with
  `system_log`, `html` and `verbose` forced to False whatever classParameters say (the log
  says so; nobody sees the sandbox's display), PyCaret-2-only arguments dropped with a
  warning, and a session_id drawn when none is given (so every later step reproduces). The
  output is the experiment with its data (format "pycaret"): train/tune/evaluate/predict
  load it ready, without running setup again. Metadata: `sessionId`, `task`
  ("classification", "regression") and `setupSummary` (setup's table as records). Missing
  `data`, or a `target` that is not a column of it, fails naming the field
  (toolkits/pycaret.py).
- `model/autokeras` — an AutoKeras task: `class` `ImageClassifier`, `ImageRegressor`,
  `StructuredDataClassifier`, `StructuredDataRegressor`, `TextClassifier`, `TextRegressor`
  or `AutoModel`, from `modulePath` `autokeras` or the task's own module
  (`autokeras.tasks.image`). It is built once, in a temporary directory, to check the class
  and `classParameters` (`max_trials`, `overwrite`, `seed`, ...; `directory` is ignored with
  a warning: the search runs in the train step's scratch); the output is that recipe (the
  class and its parameters), not a searched model. Metadata: `task`, `maxTrials`. A class
  that is no task fails naming `class`, parameters the task refuses `classParameters`
  (toolkits/autokeras.py).

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
    model_step_type(
        "pycaret",
        example={
            "modelName": "titanic_experiment",
            "modulePath": "pycaret.classification",
            "class": "ClassificationExperiment",
            "classParameters": {
                "data": "$titanic",
                "target": "Survived",
                "ignore_features": ["Name", "Ticket", "Cabin"],
                "session_id": 1,
            },
        },
    ),
    model_step_type(
        "autokeras",
        example={
            "modelName": "mnist_autokeras",
            "modulePath": "autokeras",
            "class": "ImageClassifier",
            "classParameters": {"max_trials": 1, "overwrite": True},
        },
    ),
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("model")
    raise AttributeError(name)
