"""The builder client classes: `BuilderPycaret` and `BuilderAutokeras` (``builder/...``).

What the client decides by itself is checked over `httpx.MockTransport`: LO's module path,
class and method names, the routes and bodies it sends, and the report read as text. The last
test runs the user's own Titanic script (../shared/examples) against the real server.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import learning_orchestra_client as lo
from learning_orchestra_client import DatasetCsv, NotFound, StepFailed
from learning_orchestra_client.builder.builder import (
    AsyncBuilderAutokeras,
    AsyncBuilderPycaret,
    BuilderAutoKeras,
    BuilderAutokeras,
    BuilderPycaret,
)
from tests.conftest import run_user_script

API = "/api/learningOrchestra/v1"
SCORE = "\tModel\tAccuracy\tAUC\nlr\tLogistic Regression\t0.8\t0.85\n"

#: (class, asyncio twin, route, LO's run method stem)
FAMILIES: list[tuple[Any, ...]] = [
    (BuilderPycaret, AsyncBuilderPycaret, "/builder/pycaret", "run_pycaret"),
    (BuilderAutokeras, AsyncBuilderAutokeras, "/builder/autokeras", "run_autokeras"),
]
IDS = ["pycaret", "autokeras"]


class Recorder:
    """A MockTransport handler that records requests: POST/DELETE are accepted, observe
    long-polls answer `status`, the PyCaret report route answers `SCORE` for ``score``,
    other GETs an empty page."""

    def __init__(self, status: str = "finished") -> None:
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST":
            return answer(201, f"{path}/{json.loads(request.content)['name']}")
        if request.method == "DELETE":
            return answer(200, f"deleted {path.rsplit('/', 1)[1]}")
        if path.startswith(f"{API}/observe/"):
            name = path.rsplit("/", 1)[1]
            metadata = {"name": name, "status": self.status, "finished": True}
            if self.status == "failed":
                metadata["exception"] = "NameError: name 'x' is not defined (line 1)"
            return answer(200, metadata)
        if path == f"{API}/explore/getlocaldatapycaret":
            if request.url.params.get("filename") == "score":
                return httpx.Response(200, text=SCORE)
            error = {"code": "not_found", "detail": None}
            return httpx.Response(404, json={"result": "no such file", "error": error})
        return answer(200, [])

    def sent(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]


def answer(status: int, result: Any) -> httpx.Response:
    return httpx.Response(status, json={"result": result})


def test_lo_names_and_routes() -> None:
    assert (lo.BuilderPycaret, lo.AsyncBuilderPycaret) == (BuilderPycaret, AsyncBuilderPycaret)
    assert lo.BuilderAutokeras is BuilderAutokeras is BuilderAutoKeras is lo.BuilderAutoKeras
    assert lo.AsyncBuilderAutoKeras is AsyncBuilderAutokeras
    for cls, twin, route, run in FAMILIES:
        assert cls.API_PATH == twin.API_PATH == route
        assert cls.__module__ == "learning_orchestra_client.builder.builder"
        parameters = list(inspect.signature(getattr(cls, f"{run}_sync")).parameters)
        assert parameters == [
            "self", "name", "parameters", "code", "description", "pretty_response", "timeout",
        ]  # fmt: skip
        assert list(inspect.signature(getattr(cls, f"{run}_async")).parameters) == parameters[:-1]
        assert list(inspect.signature(cls.search_execution_content).parameters) == [
            "self", "name", "query", "limit", "skip", "pretty_response",
        ]  # fmt: skip
        assert list(inspect.signature(cls.wait).parameters) == ["self", "name", "timeout"]
        for method in ("search_all_executions", "delete_execution", "delete_execution_async"):
            assert callable(getattr(cls, method)), method
    for method in ("search_report", "search_builder_register_predictions"):
        assert list(inspect.signature(getattr(BuilderPycaret, method)).parameters) == [
            "self",
            "file_name",
        ]
        assert not hasattr(BuilderAutokeras, method)


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_requests_of_every_method(family: tuple[Any, ...]) -> None:
    cls, _, route, run = family
    recorder = Recorder()
    code = "response = None\n"
    with cls("http://lo", client=httpx.Client(transport=httpx.MockTransport(recorder))) as b:
        assert getattr(b, f"{run}_sync")("job", {"train": "$train"}, code, "d") == {
            "result": f"{API}{route}/job"
        }
        pretty = getattr(b, f"{run}_async")(
            name="job2", parameters={}, code=code, pretty_response=True
        )
        assert json.loads(pretty) == {"result": f"{API}{route}/job2"}
        assert b.wait("job2", 1)["status"] == "finished"
        b.search_all_executions()
        b.search_execution_content("job", query={"a": 1}, limit=2, skip=1)
        assert b.delete_execution("job") == {"result": "deleted job"}
        b.delete_execution_async("job2")

    sent = recorder.requests
    assert recorder.sent() == [
        ("POST", f"{API}{route}"),
        ("GET", f"{API}/observe/job"),  # the _sync method waits
        ("POST", f"{API}{route}"),  # the _async one does not
        ("GET", f"{API}/observe/job2"),
        ("GET", f"{API}{route}"),
        ("GET", f"{API}{route}/job"),
        ("DELETE", f"{API}{route}/job"),
        ("DELETE", f"{API}{route}/job2"),
    ]
    assert json.loads(sent[0].content) == {
        "name": "job",
        "functionParameters": {"train": "$train"},
        "function": code,
        "description": "d",
    }
    assert json.loads(sent[2].content)["description"] == ""
    assert sent[3].url.params["timeout"] == "1"  # LO's timeout: the poll interval
    assert dict(sent[5].url.params) == {"query": '{"a": 1}', "limit": "2", "skip": "1"}


def test_a_failed_script_raises_from_the_sync_run() -> None:
    recorder = Recorder(status="failed")
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    with (
        BuilderPycaret("http://lo", client=client) as builder,
        pytest.raises(StepFailed, match="NameError"),
    ):
        builder.run_pycaret_sync("job", {}, "response = x\n")


def test_search_report_reads_the_file_text() -> None:
    recorder = Recorder()
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    with BuilderPycaret("http://lo", client=client) as builder:
        assert builder.search_report("score") == SCORE
        assert builder.search_builder_register_predictions(file_name="score") == SCORE
        with pytest.raises(NotFound, match="no such file"):
            builder.search_report("nothing")
    for request in recorder.requests:
        # LO sent the name as a JSON body of a GET; here it is a query parameter.
        assert (request.method, request.url.path) == ("GET", f"{API}/explore/getlocaldatapycaret")
        assert request.content == b""
    assert [r.url.params["filename"] for r in recorder.requests] == ["score", "score", "nothing"]


async def test_the_asyncio_twins_send_the_same_requests() -> None:
    for cls, twin, route, run in FAMILIES:
        recorder = Recorder()
        client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
        async with twin("http://lo", client=client) as builder:
            await getattr(builder, f"{run}_async")("job", {"n": 1}, "response = n\n")
            assert (await builder.wait("job"))["status"] == "finished"
            await builder.search_execution_content("job")
            await builder.delete_execution("job")
            if cls is BuilderPycaret:
                assert await builder.search_report("score") == SCORE
        assert recorder.sent()[:4] == [
            ("POST", f"{API}{route}"),
            ("GET", f"{API}/observe/job"),
            ("GET", f"{API}{route}/job"),
            ("DELETE", f"{API}{route}/job"),
        ]
        assert json.loads(recorder.requests[0].content)["functionParameters"] == {"n": 1}


# --- the user's Titanic script (AutoML monograph, Appendix A) against the real server ------

SCRIPT = "monograph_appendix_a_titanic_pycaret.py"


def script_changes(lo_server: str, files_server: str) -> list[tuple[str, str]]:
    """Every change made to the script, ``(original text, replacement)``: only those the
    examples' README allows (URLs and search budgets)."""
    return [
        # the cluster's address: the session's server
        ('CLUSTER_IP = "http://34.151.210.120"', f'CLUSTER_IP = "{lo_server}"'),
        # the dataset URL: the bundled train.csv over local HTTP (no internet in tests)
        (
            'url="https://raw.githubusercontent.com/JonatasMiguel/"\n'
            '    "PycaretTitanic/main/train.csv",',
            f'url="{files_server}/train.csv",',
        ),
        # budgets: turbo with two estimators, 3 folds, 2 tuning iterations
        ("turbo = False", "turbo = True, include=['lr', 'dt'], fold=3"),
        ("n_iter = 100", "n_iter = 2, fold=3"),
        (
            "classification.create_model(best_tuned)",
            "classification.create_model(best_tuned, fold=3)",
        ),
    ]


@pytest.mark.e2e
def test_the_monograph_titanic_script_runs(
    lo_server: str, files_server: str, tmp_path: Path
) -> None:
    # Its first call deletes "train", which need not exist: LO's deletes only warn then.
    try:
        changes = script_changes(lo_server, files_server)
        done = run_user_script(SCRIPT, changes, tmp_path, timeout=300)
        out = done.stdout
        # the execution content, printed as pretty JSON: the builder step's metadata
        content = json.loads(out[: out.index("\n}\n") + 2])
        metadata = content["result"][0]
        assert (metadata["name"], metadata["status"]) == ("titanicPycaret", "finished")
        # the score file's text: create_model's CV table (tab-separated, with the Mean row)
        report = out[out.index("\n}\n") + 3 :]
        assert "\tAccuracy\tAUC\tRecall\tPrec.\tF1\tKappa\tMCC" in report.splitlines()[0]
        assert any(line.startswith("Mean\t") for line in report.splitlines())
    finally:
        with BuilderPycaret(lo_server) as builder, contextlib.suppress(NotFound):
            builder.delete_execution("titanicPycaret")
        with DatasetCsv(lo_server) as csv, contextlib.suppress(NotFound):
            csv.delete_dataset("train")
