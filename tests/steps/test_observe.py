"""The observe service (API.md, "Observe") and the health routes, through the real app.

Steps are real dataset ingests run by worker processes; `/slow.csv` of `files_server` keeps a
step `running` for about 20 s, long enough to observe it and to change it meanwhile.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from learning_orchestra.core.store.base import encode_cursor
from tests.conftest import BASE, assert_error, wait

CSV = f"{BASE}/dataset/csv"
OBSERVE = f"{BASE}/observe"


def create(client: TestClient, name: str, url: str) -> None:
    response = client.post(CSV, json={"datasetName": name, "datasetURI": url})
    assert response.status_code == 201, response.text


def current(client: TestClient, name: str) -> dict[str, Any]:
    response = client.get(f"{CSV}/{name}", params={"limit": 1})
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()["result"][0]
    return doc


def running(client: TestClient, name: str, url: str) -> dict[str, Any]:
    """Create `name` from `url` and return its metadata once its worker is fetching the URL
    (the status says `running` from the claim on, before the worker process exists)."""
    create(client, name, url)
    deadline = time.monotonic() + 15
    while (doc := current(client, name))["status"] != "running" or (
        url.rsplit("/", 1)[-1] not in client.get(f"{CSV}/{name}/logs").json()["result"]
    ):
        assert doc["status"] in ("pending", "running") and time.monotonic() < deadline, doc
        time.sleep(0.02)
    return doc


def observe(client: TestClient, name: str, **params: Any) -> Any:
    return client.get(f"{OBSERVE}/{name}", params=params)


def sse_events(response: Any) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a Server-Sent Events stream, read until the server ends it."""
    events: list[tuple[str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in fields:
                events.append((fields.get("event", "message"), json.loads(fields["data"])))
            fields = {}
        elif not line.startswith(":"):  # a comment line is a keep-alive ping
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")
    return events


def cancel_later(client: TestClient, name: str, delay: float) -> threading.Thread:
    def cancel() -> None:
        time.sleep(delay)
        assert client.post(f"{CSV}/{name}/cancel").status_code == 200

    thread = threading.Thread(target=cancel)
    thread.start()
    return thread


# -- long-poll -------------------------------------------------------------------------------
def test_a_finished_step_answers_at_once(api: TestClient, files_server: str) -> None:
    create(api, "ds", f"{files_server}/typed.csv")
    done = wait(api, "ds")
    assert done["status"] == "finished" and done["rows"] == 3
    assert not [k for k in done if k.startswith("_")]
    again = observe(api, "ds", timeout=0.5)  # would be a 408 if it waited for an end
    assert again.status_code == 200 and again.json() == {"result": current(api, "ds")}
    assert observe(api, "ds", timeout=3600).status_code == 200  # the maximum is allowed


def test_waits_for_a_pending_step_to_finish(api: TestClient, files_server: str) -> None:
    create(api, "ds", f"{files_server}/train.csv")
    assert current(api, "ds")["status"] in ("pending", "running")
    response = observe(api, "ds", timeout=30)
    assert response.status_code == 200
    done = response.json()["result"]
    assert done["status"] == "finished" and done["finished"] is True and done["rows"] == 891
    assert done == current(api, "ds")


def test_waits_for_a_running_step_to_end(api: TestClient, files_server: str) -> None:
    running(api, "slow", f"{files_server}/slow.csv")
    canceller = cancel_later(api, "slow", 0.5)
    started = time.monotonic()
    response = observe(api, "slow", timeout=30)
    waited = time.monotonic() - started
    canceller.join()
    assert response.status_code == 200, response.text
    assert response.json()["result"]["status"] == "cancelled"
    assert 0.4 < waited < 10


def test_failed_steps_end_the_wait_too(api: TestClient, files_server: str) -> None:
    create(api, "bad", f"{files_server}/malformed.csv")
    done = wait(api, "bad")
    assert done["status"] == "failed" and "malformed" in done["exception"]


def test_timeout_is_408_with_the_envelope(api: TestClient, files_server: str) -> None:
    running(api, "slow", f"{files_server}/slow.csv")
    started = time.monotonic()
    body = assert_error(observe(api, "slow", timeout=0.5), 408, "0.5 s", "slow", "running")
    assert 0.45 < time.monotonic() - started < 5
    assert body["error"]["code"] == "timeout"
    assert body["error"]["detail"]["status"] == "running"
    assert isinstance(body["error"]["detail"]["version"], int)
    assert api.post(f"{CSV}/slow/cancel").json()["result"]["status"] == "cancelled"


def test_unknown_step_is_404(api: TestClient) -> None:
    assert_error(observe(api, "nobody", timeout=0.5), 404, "nobody")
    assert_error(observe(api, "nobody", since=0, timeout=0.5), 404, "nobody")
    assert_error(api.get(f"{OBSERVE}/nobody/events"), 404, "nobody")


def test_bounds_are_422(api: TestClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": 3600.5}, "timeout"),
        ({"timeout": 86400}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
        ({"since": -1}, "since"),
        ({"since": "v2"}, "since"),
    ]
    for params, field in cases:
        assert_error(observe(api, "anything", **params), 422, field)


def test_a_step_deleted_while_observed_is_404(api: TestClient, files_server: str) -> None:
    running(api, "slow", f"{files_server}/slow.csv")
    threading.Timer(0.3, lambda: api.delete(f"{CSV}/slow")).start()
    assert_error(observe(api, "slow", timeout=10), 404, "deleted")


# -- since=V ---------------------------------------------------------------------------------
def test_since_answers_at_once_for_a_newer_version(api: TestClient, files_server: str) -> None:
    create(api, "ds", f"{files_server}/typed.csv")
    version = wait(api, "ds")["version"]
    for since in (0, version - 1):
        response = observe(api, "ds", since=since, timeout=0.5)
        assert response.status_code == 200
        assert response.json()["result"]["version"] == version
    # nothing changes a finished step: no newer version comes
    body = assert_error(observe(api, "ds", since=version, timeout=0.5), 408, "change")
    assert body["error"]["detail"] == {"status": "finished", "version": version}
    assert_error(observe(api, "ds", since=version + 10, timeout=0.3), 408)


def test_since_answers_on_the_next_change(api: TestClient, files_server: str) -> None:
    create(api, "ds", f"{files_server}/typed.csv")
    version = wait(api, "ds")["version"]
    with ThreadPoolExecutor(1) as pool:
        waiter = pool.submit(observe, api, "ds", since=version, timeout=20)
        time.sleep(0.3)
        assert not waiter.done()  # nothing changed yet
        patched = api.patch(f"{CSV}/ds", json={"datasetURI": f"{files_server}/slow.csv"})
        assert patched.status_code == 201
        response = waiter.result(timeout=10)
    assert response.status_code == 200, response.text
    changed = response.json()["result"]
    assert changed["version"] > version
    assert changed["status"] in ("pending", "running")  # the re-run's first change, not its end
    # a running step keeps changing (status, progress, ...): each long-poll sees a newer one
    nxt = observe(api, "ds", since=changed["version"], timeout=10)
    assert nxt.status_code == 200 and nxt.json()["result"]["version"] > changed["version"]
    assert api.post(f"{CSV}/ds/cancel").json()["result"]["status"] == "cancelled"


# -- many waiters ----------------------------------------------------------------------------
def test_many_waiters_all_see_the_end(api: TestClient, files_server: str) -> None:
    create(api, "ds", f"{files_server}/train.csv")
    with ThreadPoolExecutor(24) as pool:
        ends = list(pool.map(lambda _: observe(api, "ds", timeout=30), range(24)))
    assert [r.status_code for r in ends] == [200] * 24
    docs = [r.json()["result"] for r in ends]
    assert {d["status"] for d in docs} == {"finished"}
    assert len({d["version"] for d in docs}) == 1
    assert docs[0] == current(api, "ds")


def test_many_waiters_on_a_running_step_see_its_cancel(api: TestClient, files_server: str) -> None:
    running(api, "slow", f"{files_server}/slow.csv")
    canceller = cancel_later(api, "slow", 0.5)
    with ThreadPoolExecutor(16) as pool:
        ends = list(pool.map(lambda _: observe(api, "slow", timeout=30), range(16)))
    canceller.join()
    assert [r.status_code for r in ends] == [200] * 16
    assert {r.json()["result"]["status"] for r in ends} == {"cancelled"}


# -- Server-Sent Events ----------------------------------------------------------------------
def test_events_stream_changes_until_the_end(api: TestClient, files_server: str) -> None:
    create(api, "ds", f"{files_server}/train.csv")
    with api.stream("GET", f"{OBSERVE}/ds/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)  # returns only because the server ends the stream
    assert {kind for kind, _ in events} == {"change"}
    docs = [doc for _, doc in events]
    assert docs[-1]["status"] == "finished" and docs[-1]["rows"] == 891
    assert all(d["status"] in ("pending", "running") for d in docs[:-1])
    versions = [d["version"] for d in docs]
    assert versions == sorted(set(versions))  # one event per change, in order
    assert docs[-1] == current(api, "ds")
    assert not [k for d in docs for k in d if k.startswith("_")]
    # an ended step: its current state, then the end of the stream
    with api.stream("GET", f"{OBSERVE}/ds/events") as response:
        assert sse_events(response) == [("change", docs[-1])]


def test_events_carry_progress(api: TestClient, files_server: str) -> None:
    # Fill every dataset slot with a slow ingest, so that `big` stays pending until the stream
    # is open and no change of its run can be missed.
    slots = api.app.state.settings.max_jobs
    for i in range(slots):
        running(api, f"slow{i}", f"{files_server}/slow.csv")
    rows = 600_000  # more than one block of the ingest (4 MB): progress after the first
    content = b"id,value\n" + b"".join(b"%d,%d.5\n" % (i, i) for i in range(rows))
    response = api.post(
        CSV, data={"datasetName": "big"}, files={"file": ("big.csv", content, "text/csv")}
    )
    assert response.status_code == 201, response.text
    time.sleep(0.2)
    assert current(api, "big")["status"] == "pending"
    threading.Timer(0.3, lambda: api.post(f"{CSV}/slow0/cancel")).start()
    with api.stream("GET", f"{OBSERVE}/big/events") as stream:
        docs = [doc for _, doc in sse_events(stream)]
    assert docs[0]["status"] == "pending"
    assert docs[-1]["status"] == "finished" and docs[-1]["rows"] == rows
    progress = [d["progress"] for d in docs if d["status"] == "running" and d["progress"]]
    assert progress and progress[0]["rows"] >= 50_000  # seen while running, before the end


def test_events_end_when_the_step_is_deleted(api: TestClient, files_server: str) -> None:
    running(api, "slow", f"{files_server}/slow.csv")
    events: list[tuple[str, dict[str, Any]]] = []
    opened = threading.Event()

    def listen() -> None:
        with api.stream("GET", f"{OBSERVE}/slow/events") as response:
            opened.set()
            events.extend(sse_events(response))

    listener = threading.Thread(target=listen)
    listener.start()
    assert opened.wait(5)
    time.sleep(0.3)
    assert api.delete(f"{CSV}/slow").status_code == 200
    listener.join(5)
    assert not listener.is_alive(), "the stream did not end after the deletion"
    assert events[0][0] == "change" and events[0][1]["status"] == "running"
    assert events[-1] == ("deleted", {"name": "slow"})


def test_events_skip_changes_logged_before_the_first_read(
    api: TestClient, files_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream subscribes before it reads the step, so a change made in between is both in
    what it reads and in what it is then told: it must be sent once, not replayed."""
    running(api, "slow", f"{files_server}/slow.csv")
    store = api.app.state.store
    read = store.get
    changed_once: list[str] = []

    async def get_after_a_change(name: str) -> Any:
        if name == "slow" and not changed_once:
            changed_once.append(name)
            await store.update(name, {"description": "changed between subscribe and read"})
        return await read(name)

    monkeypatch.setattr(store, "get", get_after_a_change)
    events: list[tuple[str, dict[str, Any]]] = []

    def listen() -> None:
        with api.stream("GET", f"{OBSERVE}/slow/events") as response:
            events.extend(sse_events(response))

    listener = threading.Thread(target=listen)
    listener.start()
    deadline = time.monotonic() + 5
    while not changed_once:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)
    assert api.post(f"{CSV}/slow/cancel").json()["result"]["status"] == "cancelled"
    listener.join(5)
    assert not listener.is_alive()
    assert events[0][1]["description"] == "changed between subscribe and read"
    versions = [doc["version"] for _, doc in events]
    assert versions == sorted(set(versions)), versions
    assert events[-1][1]["status"] == "cancelled"


def test_events_reject_bad_names(api: TestClient) -> None:
    assert_error(api.get(f"{OBSERVE}/a.b/events"), 422, "name")


# -- GET /observe?since=CURSOR: the change feed of every step --------------------------------
TERMINAL = ("finished", "failed", "cancelled")


def feed(client: Any, since: str | None = None, timeout: float = 30) -> dict[str, Any]:
    params: dict[str, Any] = {"timeout": timeout}
    if since is not None:
        params["since"] = since
    response = client.get(OBSERVE, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"result", "cursor"} and isinstance(body["cursor"], str)
    return body


def test_feed_starts_from_now_and_lists_every_change_in_order(
    api: TestClient, files_server: str
) -> None:
    create(api, "before", f"{files_server}/typed.csv")
    wait(api, "before")
    started = time.monotonic()
    start = feed(api)  # no cursor: where "now" is, at once, and no changes
    assert start["result"] == [] and time.monotonic() - started < 10
    create(api, "ds", f"{files_server}/typed.csv")
    done = wait(api, "ds")
    seen: list[dict[str, Any]] = []
    cursor = start["cursor"]
    while not seen or seen[-1]["status"] not in TERMINAL:
        page = feed(api, cursor)
        assert page["result"], "a long-poll with changes after the cursor answers some"
        seen += page["result"]
        cursor = page["cursor"]
    assert {d["name"] for d in seen} == {"ds"}  # nothing of `before`: it changed earlier
    assert [d["version"] for d in seen] == list(range(1, done["version"] + 1))  # oldest first
    assert seen[0]["status"] == "pending" and seen[-1] == done == current(api, "ds")
    assert not [k for d in seen for k in d if k.startswith("_")]
    # nothing newer: the timeout answers no changes (not an error), the cursor still usable
    idle = feed(api, cursor, timeout=0.3)
    assert idle["result"] == []
    assert api.delete(f"{CSV}/ds").status_code == 200
    assert feed(api, idle["cursor"])["result"] == [{"name": "ds", "deleted": True}]
    # a cursor replays from where it was: the first one again gives the whole history
    again = feed(api, start["cursor"])["result"]
    assert again[0] == seen[0]


def test_feed_answers_as_soon_as_something_changes(api: TestClient, files_server: str) -> None:
    cursor = feed(api)["cursor"]
    threading.Timer(0.3, lambda: create(api, "later", f"{files_server}/typed.csv")).start()
    started = time.monotonic()
    page = feed(api, cursor, timeout=60)
    assert time.monotonic() - started < 30  # not the timeout
    assert page["result"][0]["name"] == "later" and page["result"][0]["version"] == 1
    wait(api, "later")


def test_feed_errors(api: TestClient) -> None:
    cursor = feed(api)["cursor"]
    for bad in ("nonsense", cursor + "x!", "c3FsaXRlOg"):
        body = assert_error(api.get(OBSERVE, params={"since": bad}), 400, "cursor", "since")
        assert body["error"]["code"] == "bad_request"
    # a cursor this store no longer keeps the changes after (here: one from another store)
    body = assert_error(
        api.get(OBSERVE, params={"since": encode_cursor("sqlite", "99999999")}),
        410,
        "no longer kept",
        "omit `since`",
    )
    assert body["error"]["code"] == "cursor_expired"
    for params, field in (
        ({"since": cursor, "timeout": 0}, "timeout"),
        ({"since": cursor, "timeout": 3601}, "timeout"),
        ({"since": ""}, "since"),
    ):
        assert_error(api.get(OBSERVE, params=params), 422, field)
    assert_error(api.get(f"{OBSERVE}/*/events", params={"since": "nonsense"}), 400, "cursor")
    assert_error(api.get(f"{OBSERVE}/ds/events", params={"since": cursor}), 400, "every step")


def sse_stream(response: Any) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    """(event, id, data) of a Server-Sent Events stream, as they arrive."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in fields:
                yield fields.get("event", "message"), fields.get("id"), json.loads(fields["data"])
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")


def test_feed_events_replay_after_a_cursor_and_resume_by_id(lo_server: str) -> None:
    """The SSE twin of the feed, on a real server (its stream never ends by itself)."""
    name = f"feed_{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=lo_server + BASE, timeout=60) as http:
        cursor = http.get("/observe").json()["cursor"]
        content = b"a,b\n1,2\n3,4\n"
        response = http.post(
            "/dataset/csv", data={"datasetName": name}, files={"file": ("t.csv", content)}
        )
        assert response.status_code == 201, response.text
        assert http.get(f"/observe/{name}", params={"timeout": 60}).status_code == 200

        def mine(**kwargs: Any) -> list[tuple[str, str | None, dict[str, Any]]]:
            got = []
            with http.stream("GET", "/observe/*/events", **kwargs) as stream:
                assert stream.status_code == 200
                for event in sse_stream(stream):
                    if event[2]["name"] == name:  # the session's server runs other tests too
                        got.append(event)
                        if event[2]["status"] in TERMINAL:
                            return got
            raise AssertionError("the stream ended")

        events = mine(params={"since": cursor})
        assert [e[0] for e in events] == ["change"] * len(events) and len(events) >= 2
        assert [e[2]["version"] for e in events] == list(range(1, len(events) + 1))
        assert all(isinstance(e[1], str) and e[1] for e in events)
        # an EventSource reconnects with the last id it got: the stream resumes after it
        resumed = mine(headers={"Last-Event-ID": events[0][1] or ""})
        assert resumed == events[1:]
        http.delete(f"/dataset/csv/{name}")


# -- POST /observe (LO's observer proposal) --------------------------------------------------
def test_post_observe_answers_the_url(api: TestClient, files_server: str) -> None:
    create(api, "ds", f"{files_server}/typed.csv")
    version = wait(api, "ds")["version"]

    def url(**body: Any) -> str:
        response = api.post(OBSERVE, json={"filename": "ds", **body})
        assert response.status_code == 200, response.text
        result: str = response.json()["result"]
        return result

    assert url() == f"{OBSERVE}/ds"
    assert url(observe_type="wait") == f"{OBSERVE}/ds"
    assert url(observe_type="wait", timeout=5) == f"{OBSERVE}/ds?timeout=5"
    assert url(observe_type="observe") == f"{OBSERVE}/ds?since={version}"
    # the URLs work as they say: wait answers at once, observe waits for a newer version
    assert api.get(url(timeout=5)).json()["result"]["status"] == "finished"
    assert_error(api.get(url(observe_type="observe", timeout=0.3)), 408)


def test_post_observe_errors(api: TestClient, files_server: str) -> None:
    create(api, "ds", f"{files_server}/typed.csv")
    assert_error(api.post(OBSERVE, json={"filename": "nobody"}), 404, "nobody")
    assert_error(api.post(OBSERVE, json={"filename": "ds", "observe_type": "x"}), 422)
    assert_error(api.post(OBSERVE, json={"filename": "ds", "color": 1}), 422, "color")
    assert_error(api.post(OBSERVE, json={"filename": "ds", "timeout": 0}), 422, "timeout")
    assert_error(api.post(OBSERVE, json={"filename": "ds", "timeout": 4000}), 422, "timeout")
    assert_error(api.post(OBSERVE, json={"filename": "../x"}), 422, "filename")
    assert_error(api.post(OBSERVE, json={}), 422, "filename")
    wait(api, "ds")


def test_post_observe_malformed_json_is_400(api: TestClient) -> None:
    json_type = {"content-type": "application/json"}
    for raw in (b"{", b'{"filename": "ds",}'):
        assert_error(api.post(OBSERVE, content=raw, headers=json_type), 400, "JSON")
    assert_error(api.post(OBSERVE, content=b"\xff", headers=json_type), 400)


# -- health ----------------------------------------------------------------------------------
def test_health_and_ready(api: TestClient) -> None:
    health = api.get("/health")
    assert health.status_code == 200
    assert health.json()["result"] == "ok"
    assert set(health.json()["services"]) >= {"dataset", "observe"}
    ready = api.get("/ready")
    assert ready.status_code == 200 and ready.json() == {"result": "ready"}
    # outside the base path, as Swarm's health checks expect
    assert_error(api.get(f"{BASE}/health"), 404)
