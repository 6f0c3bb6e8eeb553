"""Unit tests of the client's own logic, over `httpx.MockTransport` (no server needed).

What is checked here is what the client decides by itself: URL normalisation, the
requests it builds, how it maps answers to results and exceptions, and how it loops over
long-polls. Behaviour against the real server is in test_client_server.py.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import learning_orchestra_client as lo
from learning_orchestra_client import (
    AsyncDatasetCsv,
    AsyncObserver,
    BadRequest,
    Conflict,
    ConnectionFailed,
    DatasetCsv,
    DatasetGeneric,
    InvalidRequest,
    LearningOrchestraError,
    MethodNotAllowed,
    NotFound,
    Observer,
    PayloadTooLarge,
    ServerError,
    StepCancelled,
    StepFailed,
    Unauthorized,
    WaitTimeout,
    normalize_cluster_url,
)
from learning_orchestra_client.observe._plans import SSEDecoder
from learning_orchestra_client.orchestra import Orchestra

API = "/api/learningOrchestra/v1"
Handler = Callable[[httpx.Request], httpx.Response]


def answer(status: int, result: Any, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"result": result, **extra})


def error(status: int, message: str, code: str, detail: Any = None) -> httpx.Response:
    return answer(status, message, error={"code": code, "detail": detail})


def meta(name: str, status: str, version: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "datasetName": name,
        "status": status,
        "finished": status == "finished",
        "exception": None,
        "version": version,
        **extra,
    }


class Recorder:
    """A MockTransport handler that records requests and answers from a script."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.handler(request)

    def sync_client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


def scripted(*responses: httpx.Response) -> Recorder:
    """Answer each request with the next response of the script (the last one repeats)."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return Recorder(handler)


# --- cluster URL -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://34.66.75.31", "http://34.66.75.31"),
        ("34.66.75.31", "http://34.66.75.31"),
        ("localhost:8080", "http://localhost:8080"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
        ("HTTPS://lo.example.org", "https://lo.example.org"),
        ("  lo.example.org  ", "http://lo.example.org"),
        ("http://host:80/api/learningOrchestra/v1/", "http://host:80"),
        ("http://host/prefix/", "http://host/prefix"),
        ("::1", "http://[::1]"),
        ("[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_cluster_url_is_normalised(given: str, expected: str) -> None:
    assert normalize_cluster_url(given) == expected


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("ftp://host", "only http"),
        ("mongodb://root@host:27017", "only http"),
        ("http://", "no host"),
        ("http://host:99999", "cluster_ip"),
        ("http://host/?a=1", "query"),
    ],
)
def test_bad_cluster_url_is_refused(given: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        normalize_cluster_url(given)


def test_requests_go_under_the_base_path_of_the_normalised_url() -> None:
    rec = scripted(answer(200, []))
    DatasetCsv("10.0.0.5:8080", client=rec.sync_client()).search_all_datasets()
    assert str(rec.requests[0].url).startswith(f"http://10.0.0.5:8080{API}/dataset/csv?")


# --- LO compatibility of names -----------------------------------------------------------


def test_lo_import_paths_and_names_exist() -> None:
    from learning_orchestra_client.dataset.csv import DatasetCsv as Csv
    from learning_orchestra_client.dataset.generic import DatasetGeneric as Generic
    from learning_orchestra_client.observe.observe import Observer as Obs
    from learning_orchestra_client.observer import Observer as OldObs

    assert (Csv, Generic, Obs, OldObs) == (DatasetCsv, DatasetGeneric, Observer, Observer)
    for name in (
        "insert_dataset_sync",
        "insert_dataset_async",
        "search_all_datasets",
        "search_dataset_content",
        "delete_dataset",
        "delete_dataset_async",
        "wait",
    ):
        assert callable(getattr(DatasetCsv, name)), name
        assert callable(getattr(AsyncDatasetCsv, name)), name
    assert lo.BASE_PATH == API


def test_generic_datasets_use_their_own_route() -> None:
    rec = scripted(answer(201, f"{API}/dataset/generic/blob"))
    DatasetGeneric("h", client=rec.sync_client()).insert_dataset_async("blob", "http://x/b")
    assert rec.requests[0].url.path == f"{API}/dataset/generic"


# --- requests built ----------------------------------------------------------------------


def test_insert_by_url_posts_lo_body_and_returns_step_path() -> None:
    rec = scripted(answer(201, f"{API}/dataset/csv/titanic"))
    ds = DatasetCsv("h", client=rec.sync_client())
    result = ds.insert_dataset_async(dataset_name="titanic", url="http://files/train.csv")
    assert result == {"result": f"{API}/dataset/csv/titanic"}
    request = rec.requests[0]
    assert request.method == "POST"
    assert json.loads(request.content) == {
        "datasetName": "titanic",
        "datasetURI": "http://files/train.csv",
    }


@pytest.mark.parametrize("kind", ["path", "fileobj", "bytes"])
def test_insert_by_upload_sends_multipart(kind: str, tmp_path: Any) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(b"a,b\n1,2\n")
    file: Any = {"path": path, "fileobj": io.BytesIO(b"a,b\n1,2\n"), "bytes": b"a,b\n1,2\n"}[kind]
    rec = scripted(answer(201, f"{API}/dataset/csv/up"))
    DatasetCsv("h", client=rec.sync_client()).insert_dataset_async("up", file=file)
    request = rec.requests[0]
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = request.content
    assert b'name="datasetName"\r\n\r\nup\r\n' in body
    assert b'name="file"; filename="' in body
    assert b"a,b\n1,2\n" in body
    if kind == "path":
        assert b'filename="train.csv"' in body
        assert b"Content-Type: text/csv" in body


def test_insert_needs_exactly_one_source() -> None:
    ds = DatasetCsv("h", client=scripted(answer(201, "")).sync_client())
    with pytest.raises(ValueError, match="exactly one"):
        ds.insert_dataset_async("x")
    with pytest.raises(ValueError, match="exactly one"):
        ds.insert_dataset_async("x", url="http://a", file=b"1")


def test_search_content_sends_query_as_json_with_paging() -> None:
    rec = scripted(answer(200, [meta("t", "finished"), {"Sex": "female"}]))
    ds = DatasetCsv("h", client=rec.sync_client())
    result = ds.search_dataset_content("t", query={"Sex": "female"}, limit=5, skip=1)
    assert result == {"result": [meta("t", "finished"), {"Sex": "female"}]}
    url = rec.requests[0].url
    assert url.path == f"{API}/dataset/csv/t"
    assert json.loads(url.params["query"]) == {"Sex": "female"}
    assert (url.params["limit"], url.params["skip"]) == ("5", "1")


def test_search_content_defaults_match_lo_and_omit_empty_query() -> None:
    rec = scripted(answer(200, []))
    DatasetCsv("h", client=rec.sync_client()).search_dataset_content("t")
    params = rec.requests[0].url.params
    assert dict(params) == {"limit": "10", "skip": "0"}


def test_search_all_paging_and_delete_route() -> None:
    rec = scripted(answer(200, []))
    ds = DatasetCsv("h", client=rec.sync_client())
    ds.search_all_datasets(skip=2, limit=3)
    ds.delete_dataset_async("old")
    assert dict(rec.requests[0].url.params) == {"skip": "2", "limit": "3"}
    assert (rec.requests[1].method, rec.requests[1].url.path) == (
        "DELETE",
        f"{API}/dataset/csv/old",
    )


def test_names_are_quoted_as_one_path_segment() -> None:
    rec = scripted(error(404, "no step named '../x'", "not_found"))
    with pytest.raises(NotFound):
        DatasetCsv("h", client=rec.sync_client()).search_dataset_content("../x")
    assert rec.requests[0].url.raw_path.decode().split("?")[0] == f"{API}/dataset/csv/..%2Fx"


def test_lo_deletes_of_a_missing_step_warn_instead_of_raising() -> None:
    """LO scripts start by deleting what a previous run left (the monograph's Appendix A):
    on a fresh server there is nothing, which LO's client logged and returned {} for."""
    rec = scripted(error(404, "there is no step named 'train'", "not_found"))
    with pytest.warns(UserWarning, match="nothing to delete: there is no step named 'train'"):
        answer = DatasetCsv("h", client=rec.sync_client()).delete_dataset("train")
    assert answer == {"result": "there is no step named 'train'"}


def test_token_is_sent_as_bearer_only_when_given() -> None:
    rec = scripted(answer(200, []))
    DatasetCsv("h", token="s3cret", client=rec.sync_client()).search_all_datasets()
    DatasetCsv("h", client=rec.sync_client()).search_all_datasets()
    assert rec.requests[0].headers["authorization"] == "Bearer s3cret"
    assert "authorization" not in rec.requests[1].headers


def test_pretty_response_is_lo_indented_envelope() -> None:
    rec = scripted(answer(200, [{"b": 1, "a": 2}]))
    ds = DatasetCsv("h", client=rec.sync_client())
    text = ds.search_all_datasets(True)
    assert text == json.dumps({"result": [{"b": 1, "a": 2}]}, indent=4, sort_keys=True)
    assert ds.search_all_datasets() == {"result": [{"b": 1, "a": 2}]}


def test_answers_are_returned_whole_as_lo_did() -> None:
    """Without pretty_response, LO returned `response.json()`: the whole answer dict."""
    rec = scripted(answer(200, "dataset 'old' deleted", extra={"kept": True}))
    deleted = DatasetCsv("h", client=rec.sync_client()).delete_dataset("old")
    assert deleted == {"result": "dataset 'old' deleted", "extra": {"kept": True}}

    rows = [meta("t", "finished"), {"Sex": "female"}, {"Sex": "male"}]
    ds = DatasetCsv("h", client=scripted(answer(200, rows)).sync_client())
    page = ds.search_dataset_content("t")
    assert page == {"result": rows}  # LO notebooks: `for row in page["result"]: ...`


def test_observer_returns_the_metadata_itself_not_the_answer() -> None:
    """LO's Observer.wait returned the step's metadata document, not `{"result": ...}`."""
    done = meta("t", "finished")
    rec = scripted(answer(200, done))
    assert Observer("h", client=rec.sync_client()).wait("t") == done
    assert Observer("h", client=rec.sync_client()).observe("t") == done
    assert DatasetCsv("h", client=rec.sync_client()).wait("t") == done


# --- error mapping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "bad_request", BadRequest),
        (401, "unauthorized", Unauthorized),
        (404, "not_found", NotFound),
        (405, "method_not_allowed", MethodNotAllowed),
        (409, "name_taken", Conflict),
        (413, "too_large", PayloadTooLarge),
        (422, "invalid", InvalidRequest),
        (503, "store_unavailable", ServerError),
        (418, "teapot", LearningOrchestraError),
    ],
)
def test_error_answers_raise_the_class_for_their_status(
    status: int, code: str, cls: type[LearningOrchestraError]
) -> None:
    message = f"something {code}: change it"
    rec = scripted(error(status, message, code, detail={"field": "datasetURI"}))
    with pytest.raises(cls) as caught:
        DatasetCsv("h", client=rec.sync_client()).insert_dataset_async("t", "http://x")
    exc = caught.value
    assert type(exc) is cls
    assert str(exc) == exc.message == message
    assert (exc.status_code, exc.code, exc.detail) == (status, code, {"field": "datasetURI"})


def test_non_json_error_answer_keeps_status_and_text() -> None:
    rec = scripted(httpx.Response(502, text="<html>upstream down</html>\nmore"))
    with pytest.raises(ServerError, match=r"HTTP 502 Bad Gateway: <html>upstream down</html>$"):
        DatasetCsv("h", client=rec.sync_client()).search_all_datasets()


def test_success_without_envelope_is_an_error() -> None:
    rec = scripted(httpx.Response(200, json=[1, 2]))
    with pytest.raises(LearningOrchestraError, match="'result'"):
        DatasetCsv("h", client=rec.sync_client()).search_all_datasets()


def test_unreachable_server_raises_connection_failed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(ConnectionFailed, match="could not reach http://h/api/") as caught:
        DatasetCsv("h", client=client).search_all_datasets()
    assert "is the server running at http://h?" in str(caught.value)
    assert "./run.sh local" in str(caught.value)


def test_no_answer_in_time_suggests_a_longer_timeout() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = httpx.Client(transport=httpx.MockTransport(slow))
    with pytest.raises(ConnectionFailed, match=r"no answer from http://h/api/\S+ within 7 s"):
        DatasetCsv("h", timeout=7, client=client).search_all_datasets()


# --- waiting -----------------------------------------------------------------------------


def not_yet() -> httpx.Response:
    return error(408, "step 't' did not end within 1 s", "timeout")


def test_wait_long_polls_until_finished_and_treats_408_as_not_yet() -> None:
    done = meta("t", "finished", version=3, rows=891)
    rec = scripted(not_yet(), not_yet(), answer(200, done))
    result = Observer("h", long_poll=5, client=rec.sync_client()).wait("t")
    assert result == done
    assert len(rec.requests) == 3
    for request in rec.requests:
        assert request.url.path == f"{API}/observe/t"
        assert dict(request.url.params) == {"timeout": "5"}


def test_lo_wait_timeout_is_the_length_of_each_poll_not_a_deadline() -> None:
    """LO's `wait(name, timeout)` waited on a change stream as long as the step took; its
    `timeout` only bounded each wait. Here it is each long-poll's length (issue 7)."""
    done = meta("t", "finished")
    rec = scripted(*[not_yet()] * 5, answer(200, done))
    started = time.monotonic()
    assert Observer("h", long_poll=60, client=rec.sync_client()).wait("t", timeout=0.01) == done
    assert time.monotonic() - started < 5
    assert len(rec.requests) == 6  # five "not yet" answers did not end the wait
    assert {r.url.params["timeout"] for r in rec.requests} == {"1"}  # ceil(0.01)

    rec = scripted(not_yet(), answer(200, done))
    assert DatasetCsv("h", client=rec.sync_client()).wait("t", timeout=2.5) == done
    assert [r.url.params["timeout"] for r in rec.requests] == ["3", "3"]  # ceil(2.5), each poll


def test_wait_without_timeout_uses_the_long_poll_length() -> None:
    rec = scripted(answer(200, meta("t", "finished")))
    Observer("h", client=rec.sync_client()).wait("t")
    assert rec.requests[0].url.params["timeout"] == "60"


def test_long_polls_stay_within_the_server_maximum() -> None:
    rec = scripted(answer(200, meta("t", "finished")))
    Observer("h", long_poll=10_000, client=rec.sync_client()).wait("t")
    assert rec.requests[0].url.params["timeout"] == "3600"


def test_wait_on_failed_step_raises_step_failed_with_server_reason() -> None:
    reason = "could not download http://x/missing.csv: HTTP 404 Not Found"
    failed = meta("t", "failed", exception=reason, traceback="Traceback ...")
    rec = scripted(answer(200, failed))
    with pytest.raises(StepFailed) as caught:
        Observer("h", client=rec.sync_client()).wait("t")
    exc = caught.value
    assert type(exc) is StepFailed
    assert (exc.name, exc.status, exc.exception) == ("t", "failed", reason)
    assert exc.traceback == "Traceback ..."
    assert exc.metadata == failed
    assert exc.message == f"step 't' failed: {reason}"
    text = str(exc)  # the reason, then the step's own traceback, then what to do
    assert text.startswith(exc.message + "\n\n")
    assert text.index(reason) < text.index("Traceback ...") < text.index("Hint:")
    assert "rerun" in text and "logs()" in text


def test_the_hint_of_a_failed_step_that_cannot_be_rerun_says_how_to_run_it_again() -> None:
    failed = meta("tLR", "failed", exception="modelingCode must define features_training")
    text = str(StepFailed("tLR", {**failed, "type": "builder/sparkml"}))
    assert "delete the builder's outputs and run it again" in text and "rerun" not in text


def test_wait_on_cancelled_step_raises_step_cancelled() -> None:
    rec = scripted(answer(200, meta("t", "cancelled", exception="cancelled by the user")))
    with pytest.raises(StepCancelled) as caught:
        Observer("h", client=rec.sync_client()).wait("t")
    assert isinstance(caught.value, StepFailed)
    assert caught.value.status == "cancelled"
    assert "Hint" not in str(caught.value)  # nothing to fix in a cancelled step


def test_wait_accepts_lo_metadata_without_status() -> None:
    rec = scripted(answer(200, {"datasetName": "t", "finished": True}))
    assert Observer("h", client=rec.sync_client()).wait("t") == {
        "datasetName": "t",
        "finished": True,
    }


def test_sync_method_timeout_is_an_overall_deadline() -> None:
    """Unlike LO's `wait`, the `timeout` of a `*_sync` method bounds the whole wait."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return answer(201, f"{API}/dataset/csv/t")
        return error(408, "not yet", "timeout", detail={"status": "running", "version": 2})

    rec = Recorder(handler)
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        DatasetCsv("h", client=rec.sync_client()).insert_dataset_sync(
            "t", "http://x/t.csv", timeout=0.05
        )
    assert time.monotonic() - started < 5
    assert isinstance(caught.value, TimeoutError)
    assert (caught.value.name, caught.value.timeout) == ("t", 0.05)
    assert "did not end within 0.05 s" in str(caught.value)
    assert rec.requests[1].url.params["timeout"] == "1"  # never longer than what is left


def test_wait_on_unknown_step_raises_not_found() -> None:
    rec = scripted(error(404, "no step named 'nope'", "not_found"))
    with pytest.raises(NotFound, match="no step named 'nope'"):
        Observer("h", client=rec.sync_client()).wait("nope")


def test_wait_pretty_response_is_indented_metadata() -> None:
    done = meta("t", "finished")
    rec = scripted(answer(200, done))
    text = Observer("h", client=rec.sync_client()).wait("t", pretty_response=True)
    assert json.loads(text) == done


def test_insert_sync_posts_then_waits_through_observe() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return answer(201, f"{API}/dataset/csv/t")
        return answer(200, meta("t", "finished"))

    rec = Recorder(handler)
    result = DatasetCsv("h", client=rec.sync_client()).insert_dataset_sync("t", "http://x/t.csv")
    assert result == {"result": f"{API}/dataset/csv/t"}
    assert [(r.method, r.url.path) for r in rec.requests] == [
        ("POST", f"{API}/dataset/csv"),
        ("GET", f"{API}/observe/t"),
    ]


def test_insert_sync_raises_when_ingestion_fails() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return answer(201, f"{API}/dataset/csv/t")
        return answer(200, meta("t", "failed", exception="not a CSV file"))

    ds = DatasetCsv("h", client=Recorder(handler).sync_client())
    with pytest.raises(StepFailed, match="not a CSV file"):
        ds.insert_dataset_sync("t", "http://x/t.csv")


def test_observe_asks_for_versions_after_since() -> None:
    rec = scripted(not_yet(), answer(200, meta("t", "running", version=4)))
    got = Observer("h", client=rec.sync_client()).observe("t", since=3, timeout=60)
    assert got["version"] == 4
    assert dict(rec.requests[-1].url.params) == {"since": "3", "timeout": "60"}


def test_observe_timeout_says_no_change() -> None:
    rec = scripted(not_yet())
    with pytest.raises(WaitTimeout, match="did not change within"):
        Observer("h", client=rec.sync_client()).observe("t", since=3, timeout=0.01)


def test_observe_pipe_follows_versions_until_terminal() -> None:
    versions = iter(
        [
            meta("t", "pending", version=1),
            meta("t", "running", version=2),
            meta("t", "running", version=5, progress={"rows": 100}),
            meta("t", "finished", version=6),
        ]
    )
    rec = Recorder(lambda request: answer(200, next(versions)))
    seen = list(Observer("h", client=rec.sync_client()).observe_pipe("t"))
    assert [m["status"] for m in seen] == ["pending", "running", "running", "finished"]
    assert [r.url.params["since"] for r in rec.requests] == ["0", "1", "2", "5"]


def test_observe_pipe_stops_on_failure_without_raising() -> None:
    rec = scripted(answer(200, meta("t", "failed", version=2, exception="boom")))
    assert [m["status"] for m in Observer("h", client=rec.sync_client()).observe_pipe("t")] == [
        "failed"
    ]


def test_long_poll_must_be_positive() -> None:
    with pytest.raises(ValueError, match="long_poll"):
        Observer("h", long_poll=0)


# --- Server-Sent Events --------------------------------------------------------------------


def sse_body(*events: dict[str, Any]) -> bytes:
    chunks = [": keep-alive\n\n"]
    for event in events:
        chunks.append(f"event: change\nid: {event['version']}\ndata: {json.dumps(event)}\n\n")
    return "".join(chunks).encode()


def test_sse_decoder_joins_data_lines_and_skips_comments() -> None:
    decoder = SSEDecoder()
    lines = [": ping", "", "event: x", 'data: {"a":', "data: 1}", "", "data: plain", ""]
    out = [data for ready, data in map(decoder.feed, lines) if ready]
    assert out == [{"a": 1}, "plain"]
    assert decoder.flush() == (False, None)
    decoder.feed("data: tail")
    assert decoder.flush() == (True, "tail")


def test_events_yield_parsed_metadata() -> None:
    events = [meta("t", "running", version=1), meta("t", "finished", version=2)]
    rec = scripted(
        httpx.Response(
            200, content=sse_body(*events), headers={"content-type": "text/event-stream"}
        )
    )
    assert list(Observer("h", client=rec.sync_client()).events("t")) == events
    assert rec.requests[0].url.path == f"{API}/observe/t/events"


def test_events_error_answer_raises() -> None:
    rec = scripted(error(404, "no step named 'x'", "not_found"))
    with pytest.raises(NotFound):
        list(Observer("h", client=rec.sync_client()).events("x"))


# --- asyncio twins -----------------------------------------------------------------------


async def test_async_dataset_insert_sync_and_search() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return answer(201, f"{API}/dataset/csv/t")
        if request.url.path.startswith(f"{API}/observe/"):
            return answer(200, meta("t", "finished"))
        return answer(200, [meta("t", "finished"), {"Sex": "female"}])

    rec = Recorder(handler)
    async with AsyncDatasetCsv("h", token="tk", client=rec.async_client()) as ds:
        answer_ = await ds.insert_dataset_sync("t", file=b"a\n1\n")
        assert answer_ == {"result": f"{API}/dataset/csv/t"}
        rows = (await ds.search_dataset_content("t", query={"Sex": "female"}))["result"]
        assert rows[1] == {"Sex": "female"}
        assert (await ds.wait("t"))["status"] == "finished"
    assert all(r.headers["authorization"] == "Bearer tk" for r in rec.requests)


async def test_async_observer_failure_timeout_pipe_and_events() -> None:
    failed = scripted(answer(200, meta("t", "failed", exception="bad row 3")))
    with pytest.raises(StepFailed, match="bad row 3"):
        await AsyncObserver("h", client=failed.async_client()).wait("t")

    done = meta("t", "finished")
    slow = scripted(not_yet(), not_yet(), answer(200, done))
    assert await AsyncObserver("h", client=slow.async_client()).wait("t", timeout=0.02) == done
    assert len(slow.requests) == 3  # LO's wait: `timeout` is each poll's length

    def never(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return answer(201, f"{API}/dataset/csv/t")
        return not_yet()

    csv = AsyncDatasetCsv("h", client=Recorder(never).async_client())
    with pytest.raises(WaitTimeout):
        await csv.insert_dataset_sync("t", "http://x/t.csv", timeout=0.02)

    versions = iter([meta("t", "running", version=1), meta("t", "finished", version=2)])
    piped = Recorder(lambda request: answer(200, next(versions)))
    observer = AsyncObserver("h", client=piped.async_client())
    assert [m["version"] async for m in observer.observe_pipe("t")] == [1, 2]

    events = [meta("t", "finished", version=9)]
    streamed = scripted(httpx.Response(200, content=sse_body(*events)))
    observer = AsyncObserver("h", client=streamed.async_client())
    assert [e async for e in observer.events("t")] == events


async def test_async_unreachable_server_raises_connection_failed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    with pytest.raises(ConnectionFailed):
        await AsyncObserver("h", client=client).wait("t")


def test_owned_client_is_closed_but_a_given_one_is_not() -> None:
    given = scripted(answer(200, [])).sync_client()
    with DatasetCsv("h", client=given) as ds:
        ds.search_all_datasets()
    assert not given.is_closed
    own = DatasetCsv("h")
    own.close()
    assert own._transport.client.is_closed


# --- Orchestra: requests it builds, and the change feed it follows ---------------------------


def step_meta(name: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "function/python", "status": status, **extra}


def test_steps_pages_through_every_step_and_joins_filters() -> None:
    everything = [step_meta(f"s{i}", "failed") for i in range(103)]

    def handler(request: httpx.Request) -> httpx.Response:
        skip, limit = int(request.url.params["skip"]), int(request.url.params["limit"])
        return answer(200, everything[skip : skip + limit])

    rec = Recorder(handler)
    orc = Orchestra("h", progress=False, client=rec.sync_client())
    found = orc.steps(status=["failed", "cancelled"], type="function/python")
    assert [step.name for step in found] == [f"s{i}" for i in range(103)]
    assert [dict(r.url.params) for r in rec.requests] == [
        {"limit": "100", "skip": str(skip), "status": "failed,cancelled", "type": "function/python"}
        for skip in (0, 100)
    ]
    assert "<td><b>s102</b></td>" in found._repr_html_()


def test_submit_sends_the_body_and_returns_the_created_steps() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/transform/dataType"):
            return answer(201, f"{API}/dataset/csv/titanic")
        if request.url.path.endswith("/explore/many"):
            return answer(201, [f"{API}/explore/many/a", f"{API}/explore/many/b%20c"])
        return answer(201, f"{API}/transform/scikitlearn/scaled")

    rec = Recorder(handler)
    orc = Orchestra("h", progress=False, client=rec.sync_client())
    scaled = orc.submit("transform/scikitlearn", {"name": "scaled", "class": "X"}, class_="Y")
    assert (scaled.name, scaled.type, scaled.metadata["status"]) == (
        "scaled",
        "transform/scikitlearn",
        "pending",
    )
    assert json.loads(rec.requests[0].content) == {"name": "scaled", "class": "Y"}
    cast = orc.submit("/transform/dataType/", inputDatasetName="titanic", types={"Age": "number"})
    assert rec.requests[1].method == "PATCH"  # LO casts types with PATCH
    assert (cast.name, cast.type) == ("titanic", "dataset/csv")  # the cast dataset's own step
    many = orc.submit("explore/many", name="x")
    assert [step.name for step in many] == ["a", "b c"]


def test_rerun_patches_the_changes_and_reads_the_step_again() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            return answer(201, f"{API}/function/python/f")
        return answer(200, step_meta("f", "pending"))

    rec = Recorder(handler)
    step = Orchestra("h", progress=False, client=rec.sync_client())._step(step_meta("f", "failed"))
    assert step.rerun({"functionParameters": {"k": 5}}, description=None) is step
    assert [(r.method, r.url.path) for r in rec.requests] == [
        ("PATCH", f"{API}/function/python/f"),
        ("GET", f"{API}/steps/f"),
    ]
    assert json.loads(rec.requests[0].content) == {
        "functionParameters": {"k": 5},
        "description": None,
    }
    assert step.metadata["status"] == "pending"


def feed(handler: Callable[[httpx.Request, int], httpx.Response]) -> Recorder:
    """A server whose /observe change feed is `handler(request, how many feed polls so far)`."""
    polls = [0]

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"{API}/observe" and "since" in request.url.params:
            polls[0] += 1
            return handler(request, polls[0])
        if request.url.path == f"{API}/observe":
            return answer(200, [], cursor="c0")
        return answer(200, step_meta(request.url.path.rsplit("/", 1)[-1], "running"))

    return Recorder(route)


def test_wait_follows_the_feed_and_starts_again_when_the_cursor_expired() -> None:
    def changes(request: httpx.Request, poll: int) -> httpx.Response:
        if poll == 1:
            return error(410, "cursor expired", "cursor_expired")
        if poll == 2:
            other = step_meta("other", "finished")
            return answer(
                200, [other, step_meta("f", "running", progress={"epoch": 2})], cursor="c2"
            )
        return answer(200, [step_meta("f", "finished", durationSeconds=1.5)], cursor="c3")

    rec = feed(changes)
    step = Orchestra("h", progress=False, client=rec.sync_client())._step(step_meta("f", "pending"))
    assert step.wait() is step and step.metadata["durationSeconds"] == 1.5
    starts = [r for r in rec.requests if r.url.path == f"{API}/observe" and not r.url.params]
    assert len(starts) == 2  # the 410 made it read the feed's position and the step again
    sinces = [r.url.params.get("since") for r in rec.requests if "since" in r.url.params]
    assert sinces == ["c0", "c0", "c2"]


def test_wait_all_raises_for_a_step_deleted_or_failed_while_waited_for() -> None:
    deleted = feed(lambda request, poll: answer(200, [{"name": "f", "deleted": True}], cursor="c"))
    orc = Orchestra("h", progress=False, client=deleted.sync_client())
    with pytest.raises(NotFound, match="'f' was deleted while it was waited for"):
        orc.wait_all("f", "g")

    failed = feed(
        lambda request, poll: answer(
            200, [step_meta("g", "failed", exception="ValueError: boom")], cursor="c"
        )
    )
    orc = Orchestra("h", progress=False, client=failed.sync_client())
    with pytest.raises(StepFailed, match="step 'g' failed: ValueError: boom") as caught:
        orc.wait_all("f", "g")
    assert caught.value.name == "g"


def test_wait_deadline_names_the_last_status() -> None:
    rec = feed(lambda request, poll: answer(200, [], cursor="c"))
    step = Orchestra("h", progress=False, client=rec.sync_client())._step(step_meta("f", "pending"))
    with pytest.raises(
        WaitTimeout, match=r"step 'f' did not end within 0.05 s \(last status: running\)"
    ):
        step.wait(timeout=0.05)


@pytest.mark.parametrize(
    ("progress", "counted"),
    [
        # compare_models: model k of n, reported once compared
        ({"model": 2, "models": 5, "estimator": "lr"}, ("model", 2, 5, "model 2/5")),
        # a search: trial 2 of 4 is at its epoch 1 of 4, so 1.25 trials are done
        (
            {"trial": 2, "trials": 4, "epoch": 1, "epochs": 4},
            ("trial", 1.25, 4, "trial 2/4 · epoch 1/4"),
        ),
        ({"trial": 2, "trials": 4, "score": 0.3}, ("trial", 2, 4, "trial 2/4")),  # it ended
        (
            {"stage": "final", "trial": 1, "trials": 1, "epoch": 1, "epochs": 2},
            ("trial", 1, 1, "final fit · trial 1/1 · epoch 1/2"),
        ),
        ({"epoch": 2, "epochs": 4, "loss": 0.3}, ("epoch", 2, 4, "epoch 2/4")),
        ({"rows": 1000}, ("rows", 1000, None, "rows 1000")),
        ({"stage": "export"}, None),
        (None, None),
    ],
)
def test_progress_bars_count_what_the_step_reports(progress: Any, counted: Any) -> None:
    from learning_orchestra_client._display import counter_of

    assert counter_of(progress) == counted
