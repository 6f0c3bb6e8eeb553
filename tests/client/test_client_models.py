"""The model-lifecycle client classes: model, train, tune, evaluate and predict steps.

The first part checks what the client decides by itself, over `httpx.MockTransport`: LO's
module paths, class names, method names and parameter names, the routes and the bodies it
sends. The last part runs a scikit-learn pipeline through the real server (`lo_server`).
"""

from __future__ import annotations

import importlib
import inspect
import json
import uuid
from typing import Any

import httpx
import pytest

import learning_orchestra_client as lo
from learning_orchestra_client import StepFailed, WaitTimeout
from learning_orchestra_client.evaluate.scikitlearn import EvaluateScikitLearn
from learning_orchestra_client.evaluate.tensorflow import EvaluateTensorflow
from learning_orchestra_client.model.scikitlearn import ModelScikitLearn
from learning_orchestra_client.model.tensorflow import ModelTensorflow
from learning_orchestra_client.predict.scikitlearn import PredictScikitLearn
from learning_orchestra_client.predict.tensorflow import PredictTensorflow
from learning_orchestra_client.train.scikitlearn import TrainScikitLearn
from learning_orchestra_client.train.tensorflow import TrainTensorflow
from learning_orchestra_client.tune.scikitlearn import TuneScikitLearn
from learning_orchestra_client.tune.tensorflow import TuneTensorflow

API = "/api/learningOrchestra/v1"
TOOLS = ("scikitlearn", "tensorflow")

#: (step, LO's class name stem, create, search all, search content, delete, old delete name)
FAMILIES: list[tuple[Any, ...]] = [
    ("train", "Train", "create_training", "search_all_trainings", "search_training_content",
     "delete_training", "delete_training_async"),
    ("tune", "Tune", "create_tune", "search_all_tunes", "search_tune_content", "delete_tune",
     None),
    ("evaluate", "Evaluate", "create_evaluate", "search_all_evaluates",
     "search_evaluate_content", "delete_evaluate", "delete_evaluate_async"),
    ("predict", "Predict", "create_prediction", "search_all_predictions",
     "search_prediction_content", "delete_prediction", "delete_prediction_async"),
]  # fmt: skip

#: LO's parameters of the create methods, in LO's order (the ``_sync`` ones add ``timeout``).
MODEL_PARAMETERS = [
    "name", "module_path", "class_name", "class_parameters", "description", "pretty_response",
]  # fmt: skip
CALL_PARAMETERS = [
    "name", "model_name", "parent_name", "method_name", "parameters", "description",
    "pretty_response",
]  # fmt: skip


def answer(status: int, result: Any) -> httpx.Response:
    return httpx.Response(status, json={"result": result})


def meta(name: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "status": status, "finished": status == "finished", **extra}


class Recorder:
    """A MockTransport handler that records requests: POST/PATCH/DELETE are accepted,
    observe long-polls answer `status`, other GETs an empty page."""

    def __init__(self, status: str = "finished", **extra: Any) -> None:
        self.status, self.extra = status, extra
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if request.method == "POST":
            body = json.loads(request.content)
            return answer(201, f"{request.url.path}/{body.get('name', body.get('modelName'))}")
        if request.method == "DELETE":
            return answer(200, "deleted")
        if request.url.path.startswith(f"{API}/observe/"):
            if self.status == "running":
                not_yet = {"code": "timeout", "detail": {"status": "running", "version": 2}}
                return httpx.Response(408, json={"result": "not yet", "error": not_yet})
            name = request.url.path.rsplit("/", 1)[1]
            return answer(200, meta(name, self.status, **self.extra))
        return answer(200, [])

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    def sent(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]


def lo_class(stem: str, tool: str) -> Any:
    return getattr(lo, stem + {"scikitlearn": "ScikitLearn", "tensorflow": "Tensorflow"}[tool])


# --- LO's names --------------------------------------------------------------------------


def test_lo_module_paths_and_class_names() -> None:
    assert (ModelScikitLearn, ModelTensorflow) == (lo.ModelScikitLearn, lo.ModelTensorflow)
    assert (TrainScikitLearn, TrainTensorflow) == (lo.TrainScikitLearn, lo.TrainTensorflow)
    assert (TuneScikitLearn, TuneTensorflow) == (lo.TuneScikitLearn, lo.TuneTensorflow)
    assert (EvaluateScikitLearn, EvaluateTensorflow) == (
        lo.EvaluateScikitLearn,
        lo.EvaluateTensorflow,
    )
    assert (PredictScikitLearn, PredictTensorflow) == (
        lo.PredictScikitLearn,
        lo.PredictTensorflow,
    )
    for step, stem, *_ in [("model", "Model"), *FAMILIES]:
        for tool in TOOLS:
            cls = lo_class(stem, tool)
            assert f"/{step}/{tool}" == cls.API_PATH
            assert cls.__module__ == f"learning_orchestra_client.{step}.{tool}"
            assert getattr(lo, f"Async{cls.__name__}").API_PATH == cls.API_PATH


#: The AutoML classes, as the monograph's scripts and LO's client name them: (step, tool,
#: class names; the first is LO's, the others the same class under another spelling).
AUTOML_CLASSES = [
    ("model", "pycaret", "ModelPycaret"),
    ("train", "pycaret", "TrainPycaret"),
    ("tune", "pycaret", "TunePycaret"),
    ("evaluate", "pycaret", "EvaluatePycaret"),
    ("predict", "pycaret", "PredictPycaret"),
    ("model", "autokeras", "ModelAutoKeras", "ModelAutokeras"),
    ("train", "autokeras", "TrainAutokeras", "TrainAutoKeras"),
    ("evaluate", "autokeras", "EvaluateAutokeras", "EvaluateAutoKeras"),
    ("predict", "autokeras", "PredictAutokeras", "PredictAutoKeras"),
]


@pytest.mark.parametrize(("step", "tool", "names"), [(s, t, n) for s, t, *n in AUTOML_CLASSES])
def test_automl_classes_keep_lo_module_paths_and_both_spellings(
    step: str, tool: str, names: list[str]
) -> None:
    """`from learning_orchestra_client.train.autokeras import TrainAutokeras` (and the
    spelling Appendix B instantiates, TrainAutoKeras) are one class of `train/autokeras`."""
    module = importlib.import_module(f"learning_orchestra_client.{step}.{tool}")
    first = getattr(module, names[0])
    assert first.__module__ == module.__name__
    assert f"/{step}/{tool}" == first.API_PATH
    for name in names:
        assert getattr(module, name) is first
        assert getattr(lo, name) is first
        assert getattr(lo, f"Async{name}").API_PATH == first.API_PATH
    create = {"model": "create_model"} | {family[0]: family[2] for family in FAMILIES}
    assert callable(getattr(first, f"{create[step]}_async"))


def parameter_names(method: Any) -> list[str]:
    return list(inspect.signature(method).parameters)[1:]  # without self


def test_model_methods_have_lo_names_and_parameters() -> None:
    for cls in (ModelScikitLearn, lo.AsyncModelTensorflow):
        assert parameter_names(cls.create_model_sync) == [*MODEL_PARAMETERS, "timeout"]
        assert parameter_names(cls.create_model_async) == MODEL_PARAMETERS
        assert parameter_names(cls.search_all_models) == ["pretty_response", "skip", "limit"]
        assert parameter_names(cls.search_model) == ["name", "pretty_response"]
        assert parameter_names(cls.search_model_content) == [
            "name", "query", "limit", "skip", "pretty_response",
        ]  # fmt: skip
        for delete in (cls.delete_model, cls.delete_model_async):
            assert parameter_names(delete) == ["name", "pretty_response"]
        assert parameter_names(cls.wait) == ["name", "timeout"]
    method: Any = ModelScikitLearn.create_model_sync  # as help() reads it
    create = inspect.signature(method).parameters
    assert create["timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    assert (create["description"].default, create["pretty_response"].default) == ("", False)


@pytest.mark.parametrize("family", FAMILIES, ids=[f[0] for f in FAMILIES])
@pytest.mark.parametrize("tool", TOOLS)
def test_method_call_families_have_lo_names_and_parameters(
    family: tuple[Any, ...], tool: str
) -> None:
    _, stem, create, search_all, content, delete, old_delete = family
    for cls in (lo_class(stem, tool), getattr(lo, f"Async{lo_class(stem, tool).__name__}")):
        assert parameter_names(getattr(cls, f"{create}_sync")) == [*CALL_PARAMETERS, "timeout"]
        assert parameter_names(getattr(cls, f"{create}_async")) == CALL_PARAMETERS
        assert parameter_names(getattr(cls, search_all)) == ["pretty_response", "skip", "limit"]
        assert parameter_names(getattr(cls, content)) == [
            "name", "query", "limit", "skip", "pretty_response",
        ]  # fmt: skip
        deletes = [delete] + ([old_delete] if old_delete else [])
        for name in deletes:
            assert parameter_names(getattr(cls, name)) == ["name", "pretty_response"]
        assert parameter_names(cls.wait) == ["name", "timeout"]
        assert "parent_name" in inspect.getdoc(getattr(cls, f"{create}_sync"))  # type: ignore[operator]


def test_the_lo_example_calls_bind() -> None:
    """Appendix B's calls (../shared/examples), made on the scikit-learn/TensorFlow classes."""
    call = {"name": "t", "model_name": "m", "parent_name": "m", "method_name": "fit"}
    bindings: list[tuple[Any, dict[str, Any]]] = [
        (
            ModelTensorflow.create_model_async,
            {
                "name": "m",
                "module_path": "tensorflow.keras",
                "class_name": "Sequential",
                "class_parameters": {"layers": []},
            },
        ),
        (TrainTensorflow.create_training_async, {**call, "parameters": {"epochs": 6}}),
        (PredictTensorflow.create_prediction_async, {**call, "parameters": {}}),
        (EvaluateTensorflow.create_evaluate_async, {**call, "parameters": {}}),
        (TrainTensorflow.wait, {"name": "t"}),
    ]
    for method, kwargs in bindings:
        inspect.signature(method).bind(None, **kwargs)


# --- requests ----------------------------------------------------------------------------


@pytest.mark.parametrize("tool", TOOLS)
def test_create_model_sends_lo_body_under_model_name(tool: str) -> None:
    rec = Recorder()
    model = lo_class("Model", tool)("h", client=rec.client())
    done = model.create_model_async(
        "net", "sklearn.linear_model", "LogisticRegression", {"C": 0.5}, "first try"
    )
    assert done == {"result": f"{API}/model/{tool}/net"}
    assert rec.sent() == [("POST", f"{API}/model/{tool}")]
    assert json.loads(rec.requests[0].content) == {
        "modelName": "net",
        "modulePath": "sklearn.linear_model",
        "class": "LogisticRegression",
        "classParameters": {"C": 0.5},
        "description": "first try",
    }


def test_model_sync_waits_reads_and_deletes() -> None:
    rec = Recorder()
    model = ModelScikitLearn("h", client=rec.client())
    assert model.create_model_sync("lr", "sklearn.linear_model", "LogisticRegression", None) == {
        "result": f"{API}/model/scikitlearn/lr"
    }
    assert json.loads(rec.requests[0].content)["classParameters"] == {}
    model.search_all_models(limit=5)
    model.search_model("lr")
    model.search_model_content("lr", query={"a": 1}, limit=2, skip=1)
    assert "deleted" in model.delete_model("lr")["result"]
    model.delete_model_async("lr")
    assert model.wait("lr", 1)["status"] == "finished"
    path = f"{API}/model/scikitlearn"
    assert rec.sent() == [
        ("POST", path),
        ("GET", f"{API}/observe/lr"),
        ("GET", path),
        ("GET", f"{path}/lr"),
        ("GET", f"{path}/lr"),
        ("DELETE", f"{path}/lr"),
        ("DELETE", f"{path}/lr"),
        ("GET", f"{API}/observe/lr"),
    ]
    params = [dict(r.url.params) for r in rec.requests[2:5]]
    assert params == [
        {"skip": "0", "limit": "5"},
        {"limit": "10", "skip": "0"},  # LO's search_model: the first page
        {"limit": "2", "skip": "1", "query": '{"a": 1}'},
    ]


@pytest.mark.parametrize("family", FAMILIES, ids=[f[0] for f in FAMILIES])
@pytest.mark.parametrize("tool", TOOLS)
def test_method_call_families_send_lo_body_and_routes(family: tuple[Any, ...], tool: str) -> None:
    step, stem, create, search_all, content, delete, old_delete = family
    rec = Recorder()
    client = lo_class(stem, tool)("h", client=rec.client())
    path = f"{API}/{step}/{tool}"

    started = getattr(client, f"{create}_async")(
        "out", "lr", "lr_trained", "predict", {"X": "$test"}, description="d"
    )
    assert started == {"result": f"{path}/out"}
    assert json.loads(rec.requests[0].content) == {
        "name": "out",
        "modelName": "lr",
        "parentName": "lr_trained",
        "method": "predict",
        "methodParameters": {"X": "$test"},
        "description": "d",
    }
    done = getattr(client, f"{create}_sync")("out2", "lr", "lr", "fit", None, pretty_response=True)
    assert json.loads(done) == {"result": f"{path}/out2"}
    assert json.loads(rec.requests[1].content)["methodParameters"] == {}
    getattr(client, search_all)()
    getattr(client, content)("out", limit=1)
    getattr(client, delete)("out")
    if old_delete:
        getattr(client, old_delete)("out2")
    assert rec.sent() == [
        ("POST", path),
        ("POST", path),
        ("GET", f"{API}/observe/out2"),
        ("GET", path),
        ("GET", f"{path}/out"),
        ("DELETE", f"{path}/out"),
    ] + ([("DELETE", f"{path}/out2")] if old_delete else [])


def test_training_sync_raises_when_the_step_fails_and_keeps_its_deadline() -> None:
    failing = Recorder("failed", exception="AttributeError: no method 'fitt'")
    train = TrainScikitLearn("h", client=failing.client())
    with pytest.raises(StepFailed, match="fitt"):
        train.create_training_sync("t", "lr", "lr", "fitt", {})

    slow = TrainScikitLearn("h", client=Recorder("running").client())
    with pytest.raises(WaitTimeout, match=r"within 0\.05 s"):
        slow.create_training_sync("t", "lr", "lr", "fit", {}, timeout=0.05)


async def test_the_asyncio_twins_send_the_same_requests() -> None:
    rec = Recorder(metrics={"score": 0.8})
    async with lo.AsyncEvaluateTensorflow("h", client=rec.async_client()) as evaluate:
        await evaluate.create_evaluate_sync("ev", "net", "net_trained", "evaluate", {"x": 1})
        assert (await evaluate.wait("ev"))["metrics"] == {"score": 0.8}
    async with lo.AsyncModelScikitLearn("h", client=rec.async_client()) as model:
        await model.create_model_async("m", "sklearn.svm", "SVC", {})
    assert rec.sent() == [
        ("POST", f"{API}/evaluate/tensorflow"),
        ("GET", f"{API}/observe/ev"),
        ("GET", f"{API}/observe/ev"),
        ("POST", f"{API}/model/scikitlearn"),
    ]
    assert json.loads(rec.requests[3].content)["modelName"] == "m"


# --- against the real server -------------------------------------------------------------

#: A function step's code making a small, noisy binary classification problem.
DATA = """\
import numpy as np
rng = np.random.default_rng(0)
X = rng.normal(size=(160, 3))
y = (X[:, 0] + 0.5 * X[:, 1] + 0.4 * rng.normal(size=160) > 0).astype(int)
response = {"X_train": X[:120], "y_train": y[:120], "X_test": X[120:], "y_test": y[120:]}
"""


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.mark.e2e
def test_a_scikit_learn_pipeline_through_the_lo_classes_and_the_facade(lo_server: str) -> None:
    """model -> train -> predict -> evaluate with LO's classes and calls, read back through
    `Orchestra`: the predictions as an ndarray, the evaluation's metrics in its metadata."""
    np = pytest.importorskip("numpy")
    data, model, trained, predicted, scored = (
        unique(p) for p in ("data", "lr", "lr_trained", "lr_predicted", "lr_score")
    )
    expected: dict[str, Any] = {}
    exec(DATA, expected)  # the same arrays, here, to check the server's answers against
    with (
        lo.FunctionPython(lo_server) as function,
        ModelScikitLearn(lo_server) as models,
        TrainScikitLearn(lo_server) as train,
        PredictScikitLearn(lo_server) as predict,
        EvaluateScikitLearn(lo_server) as evaluate,
        lo.Orchestra(lo_server, progress=False) as orc,
    ):
        function.run_function_sync(data, {}, DATA, timeout=300)
        assert models.create_model_sync(
            model, "sklearn.linear_model", "LogisticRegression", {"C": 10.0}, timeout=300
        ) == {"result": f"{API}/model/scikitlearn/{model}"}
        train.create_training_async(
            name=trained,
            model_name=model,
            parent_name=model,
            method_name="fit",
            parameters={"X": f"${data}.X_train", "y": f"${data}.y_train"},
        )
        assert train.wait(trained, 1)["status"] == "finished"  # LO's wait: 1 s polls
        predict.create_prediction_sync(
            predicted, model, trained, "predict", {"X": f"${data}.X_test"}, timeout=300
        )
        evaluate.create_evaluate_sync(
            scored, model, trained, "score",
            {"X": f"${data}.X_test", "y": f"${data}.y_test"}, "hold-out accuracy", timeout=300,
        )  # fmt: skip

        assert model in [m["name"] for m in models.search_all_models()["result"]]
        (metadata, run) = models.search_model(model)["result"]
        assert metadata["parameters"]["classParameters"] == {"C": 10.0}
        assert run["status"] == "finished"
        assert train.search_training_content(trained)["result"][0]["parents"][0] == model

        predictions = orc.step(predicted).result()
        assert isinstance(predictions, np.ndarray) and predictions.shape == (40,)
        accuracy = float((predictions == expected["response"]["y_test"]).mean())
        step = orc.step(scored)
        assert step.metadata["description"] == "hold-out accuracy"
        assert step.metadata["metrics"]["score"] == pytest.approx(accuracy)
        assert step.result() == pytest.approx(accuracy)
        assert 0.75 <= accuracy < 1.0

        with pytest.raises(StepFailed, match="fitt"):
            train.create_training_sync(unique("typo"), model, model, "fitt", {}, timeout=300)
        assert "deleted" in evaluate.delete_evaluate(scored)["result"]
        assert "deleted" in predict.delete_prediction(predicted)["result"]
        assert "deleted" in train.delete_training(trained)["result"]
        assert "deleted" in models.delete_model(model)["result"]
        assert "deleted" in function.delete_execution(data)["result"]
