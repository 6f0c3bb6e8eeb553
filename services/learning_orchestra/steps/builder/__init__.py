"""builder service: `builder/pycaret` and `builder/autokeras`, a whole AutoML script as one step;
`builder/sparkml`, LO's Spark MLlib builder: one job, one predictions table per classifier
(steps/builder/sparkml.py).

The body is function/python's (`name`, `function`, `functionParameters`, `description`) and
so is the run: the code runs in a sandboxed child with `functionParameters` bound as
variables, must assign `response`, and the files it writes in its working directory
(`pull().to_csv("score")`, `save_model(...)`) are the step's files (`GET .../files`). The
child is one of the toolkit's own sandbox family (interpreters that imported PyCaret, or
AutoKeras, ahead of need) with the toolkit's environment. Before a builder/pycaret script
runs, PyCaret 2-only `setup` arguments (`silent=True`) are dropped with a warning in the
step's log, and `system_log=False` is passed unless given (toolkits/pycaret.py).

LO's `GET /explore/getlocaldatapycaret` answers a file of the newest builder/pycaret step
that wrote it (steps/builder/files.py).
"""

from __future__ import annotations

from typing import Any

from ...core.steptype import SANDBOX_WORKER_PRELOAD, Content, StepType
from ...toolkits import toolkit
from ..function import FunctionRequest
from . import sparkml

RUNNER = "learning_orchestra.steps.function.jobs:run_python"

PYCARET_EXAMPLE = {
    "name": "titanic_pycaret",
    "functionParameters": {"train": "$titanic"},
    "function": (
        "from pycaret import classification\n"
        "classification.setup(data=train, target='Survived', ignore_features=['Ticket'],"
        " session_id=1)\n"
        "best = classification.compare_models(include=['lr', 'dt'], fold=3)\n"
        "classification.pull().to_csv('score', sep='\\t')\n"
        "classification.save_model(classification.finalize_model(best), 'titanic_pycaret')\n"
        "response = None\n"
    ),
}

AUTOKERAS_EXAMPLE = {
    "name": "digits_autokeras",
    "functionParameters": {"frame": "$digits"},
    "function": (
        "import autokeras as ak\n"
        "x, y = frame.drop(columns=['label']).to_numpy(), frame['label'].to_numpy()\n"
        "clf = ak.StructuredDataClassifier(max_trials=1, overwrite=True)\n"
        "clf.fit(x, y, epochs=1)\n"
        "clf.export_model().save('model.keras')\n"
        "response = None\n"
    ),
}


def builder_step_type(tool: str, example: dict[str, Any]) -> StepType:
    """`builder/{tool}`: function/python's body and runner, in `tool`'s sandbox family."""
    kit = toolkit(tool)
    return StepType(
        step="builder",
        tool=tool,
        request=FunctionRequest,
        runner=RUNNER,
        content=Content.RUNS,
        summary=(
            f"Run a whole {kit.title} script, sandboxed, with functionParameters bound as "
            "variables; what it assigns to `response` is the output and the files it writes "
            "are the step's files (GET .../files)."
        ),
        preload=SANDBOX_WORKER_PRELOAD,
        sandbox=kit.family,
        example=example,
    )


STEP_TYPES = [
    builder_step_type("pycaret", PYCARET_EXAMPLE),
    builder_step_type("autokeras", AUTOKERAS_EXAMPLE),
    *sparkml.STEP_TYPES,
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ...core.api import lazy_app

        return lazy_app("builder")
    if name == "ROUTERS":  # imported on demand: worker processes importing jobs never need it
        from .files import router

        return [router]
    raise AttributeError(name)
