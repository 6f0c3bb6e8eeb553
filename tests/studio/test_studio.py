"""The studio in a real browser (issue 12): a pipeline appears and finishes live, a failed
step shows its error, a re-run from the generated form patches the step, cancel and delete
work, tokens work, the list stays virtualised with 5,000 steps, the compare view sorts, and
axe-core finds no serious violation.

Steps are created over HTTP with httpx on the session's shared server (names from `unique`),
and the page is driven with Playwright (fixtures in conftest.py). The shared server holds
every other test's steps too, so nothing here assumes the whole graph is drawn (above 150
steps the graph shows the selected step's lineage) or that a row is in view without
filtering the list by name first.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import BASE, ServerProcess, data_file
from tests.steps.rest import ended, finished, post, unique

from .conftest import TokenServer, open_page, wait_live

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, Request, Route

pytest.importorskip("playwright", reason="playwright is not installed: pip install '.[dev]'")
from playwright.sync_api import expect

TITANIC = data_file("titanic/train.csv")
#: Milliseconds a step may take to end, as the page shows it.
STEP_MS = 90_000
FAILING = 'def check(frame):\n    raise ValueError("no passengers named Nemo")\ncheck(None)\n'
#: Set to a folder (docs/images) to save the docs' screenshots there.
SCREENSHOTS = os.environ.get("LO_STUDIO_SCREENSHOTS")


@pytest.fixture(scope="module")
def client(lo_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lo_server, timeout=300) as http:
        yield http


def upload(client: httpx.Client, name: str) -> None:
    """Upload the Titanic training set as the dataset `name` (not waited for)."""
    with TITANIC.open("rb") as file:
        response = client.post(
            f"{BASE}/dataset/csv",
            data={"datasetName": name},
            files={"file": ("train.csv", file, "text/csv")},
        )
    assert response.status_code == 201, response.text


def project(client: httpx.Client, source: str, name: str, names: list[str]) -> None:
    body = {"inputDatasetName": source, "outputDatasetName": name, "names": names}
    post(client, f"{BASE}/transform/projection", body, name)


def fail(client: httpx.Client, name: str) -> None:
    """A function/python step whose code raises."""
    body = {"name": name, "function": FAILING, "functionParameters": {}}
    post(client, f"{BASE}/function/python", body, name)


@pytest.fixture(scope="module")
def titanic(client: httpx.Client) -> str:
    """A finished dataset/csv of the Titanic training set, shared by this module's tests."""
    name = unique("studio_titanic")
    upload(client, name)
    finished(client, f"{BASE}/dataset/csv", name)
    return name


def select(page: Page, name: str) -> None:
    """Select step `name` as a link would: through the URL hash."""
    page.evaluate("(name) => { location.hash = '#/step/' + encodeURIComponent(name); }", name)
    expect(page.locator("#panel-title")).to_have_text(name)


def typed(*headers: str) -> list[re.Pattern[str]]:
    """Column headers as the preview shows them: the name, then the type ("Age float")."""
    return [re.compile(r"\s*".join(map(re.escape, header.split()))) for header in headers]


def row(page: Page, name: str) -> Locator:
    return page.locator(f'[data-testid=step-row][data-name="{name}"]')


def node(page: Page, name: str) -> Locator:
    return page.locator(f'[data-testid=node][data-name="{name}"]')


def test_a_pipeline_appears_and_finishes_live(studio: Page, client: httpx.Client) -> None:
    """Submitted after the page opened, a dataset and its projection appear in the list and
    the graph and turn finished, with no reload (a marker set in the page survives)."""
    prefix = unique("live")
    dataset, ages = f"{prefix}_data", f"{prefix}_ages"
    studio.evaluate("window.__sameDocument = true")
    studio.fill("input[name=filter-name]", prefix)
    upload(client, dataset)
    project(client, dataset, ages, ["Age", "Survived"])

    expect(row(studio, ages)).to_have_attribute("data-status", "finished", timeout=STEP_MS)
    expect(row(studio, dataset)).to_have_attribute("data-status", "finished")
    assert studio.evaluate("window.__sameDocument") is True  # live, not reloaded

    row(studio, ages).click()
    assert studio.evaluate("location.hash") == f"#/step/{ages}"
    expect(studio.get_by_test_id("step-status")).to_contain_text("finished")
    expect(node(studio, ages)).to_have_attribute("data-status", "finished")
    expect(node(studio, dataset)).to_have_attribute("data-status", "finished")
    edge = studio.locator(f'[data-testid=edge][data-from="{dataset}"][data-to="{ages}"]')
    expect(edge).to_have_count(1)
    # the table preview: first rows, typed columns
    preview = studio.get_by_test_id("step-preview")
    expect(preview.locator("thead th")).to_have_text(typed("Age float", "Survived integer"))
    expect(preview.locator("tbody tr")).to_have_count(20)
    expect(studio.get_by_test_id("step-parameters")).to_contain_text("Survived")
    expect(studio.get_by_test_id("step-files")).to_contain_text("table.parquet")

    # the graph's keyboard: along the edge to the dataset, whose progress is its rows
    node(studio, ages).focus()
    studio.keyboard.press("ArrowLeft")
    expect(node(studio, dataset)).to_be_focused()
    studio.keyboard.press("Enter")
    expect(studio.locator("#panel-title")).to_have_text(dataset)
    expect(studio.get_by_test_id("step-progress")).to_contain_text("891")


PROGRESS = """import time
from learning_orchestra.sandbox.child import progress
for epoch in (1, 2, 3):
    print(f"epoch {epoch}", flush=True)
    progress(epoch=epoch, epochs=3, loss=1.0 / epoch)
    time.sleep(0.8)
response = 1
"""


def test_live_progress_and_the_log_tail(studio: Page, client: httpx.Client) -> None:
    """A step selected before it exists: it appears, runs with its progress as a bar (epoch
    k of n, loss) and its log followed, and ends."""
    name = unique("studio_progress")
    studio.evaluate("(name) => { location.hash = '#/step/' + name; }", name)
    expect(studio.get_by_test_id("step-panel")).to_contain_text(f"no step named {name}")
    body = {"name": name, "function": PROGRESS, "functionParameters": {}}
    post(client, f"{BASE}/function/python", body, name)
    status = studio.get_by_test_id("step-status")
    expect(status).to_contain_text("running", timeout=STEP_MS)
    expect(studio.locator("#log-title")).to_have_text("Log (following)")
    progress = studio.get_by_test_id("step-progress")
    expect(progress).to_contain_text("Epoch 3 of 3, loss 0.3333", timeout=STEP_MS)
    expect(progress.get_by_role("progressbar", name="Epoch")).to_have_attribute("value", "3")
    expect(status).to_contain_text("finished", timeout=STEP_MS)
    expect(studio.get_by_test_id("step-log")).to_have_text("epoch 1\nepoch 2\nepoch 3\n")
    expect(studio.get_by_test_id("step-duration")).not_to_contain_text("not started")


def test_a_failed_step_shows_its_error_and_traceback(studio: Page, client: httpx.Client) -> None:
    name = unique("studio_fail")
    fail(client, name)
    select(studio, name)
    expect(studio.get_by_test_id("step-status")).to_contain_text("failed", timeout=STEP_MS)
    error = studio.get_by_test_id("step-error")
    expect(error).to_contain_text("ValueError: no passengers named Nemo")
    expect(error.locator("pre")).to_contain_text("Traceback (most recent call last)")
    expect(error.locator("pre")).to_contain_text('raise ValueError("no passengers named Nemo")')
    expect(node(studio, name)).to_have_attribute("data-status", "failed")
    expect(studio.get_by_role("button", name="Cancel", exact=True)).to_have_count(0)


MERGE_PATCH = """async () => {
    const { mergePatch, patchBody } = await import("./assets/forms.js");
    const fields = [
        {key: "method", kind: "text", nullable: false},
        {key: "methodParameters", kind: "json", nullable: false},
        {key: "description", kind: "text", nullable: true},
    ];
    const stored = {
        method: "fit", methodParameters: {epochs: 2, verbose: 0, x: "$x"}, description: null,
    };
    return [
        mergePatch({a: 1, b: {c: 2, d: 3}}, {a: 1, b: {c: 4}}),
        patchBody(fields, stored, {
            method: "fit", methodParameters: '{"epochs": 5, "x": "$x"}', description: "",
        }),
        patchBody(fields, stored, {method: "fit", methodParameters: "{", description: "tuned"}),
    ];
}"""


def test_a_rerun_from_the_form_patches_the_step(
    studio: Page, client: httpx.Client, titanic: str
) -> None:
    """The form is generated from openapi.json and prefilled; a server 422 is shown next to
    it; a valid change is sent as a PATCH, and the step runs again with it."""
    name = unique("studio_rerun")
    project(client, titanic, name, ["Age", "Survived"])
    finished(client, f"{BASE}/transform/projection", name)
    select(studio, name)
    studio.get_by_role("button", name="Re-run", exact=True).click()
    form = studio.get_by_test_id("rerun-form")
    names = form.locator("textarea[name=names]")
    expect(names).to_have_value('[\n  "Age",\n  "Survived"\n]')
    expect(form.get_by_label("inputDatasetName")).to_have_value(titanic)
    expect(form).to_contain_text("the columns to keep")  # the schema's description

    names.fill("[1, ")  # not JSON: said at once, nothing sent
    expect(form.locator(".field-error")).to_contain_text("Not valid JSON")
    names.fill("[]")  # JSON, but the server's validation refuses it
    form.get_by_role("button", name="Run again").click()
    expect(form.get_by_test_id("rerun-error")).to_contain_text("names")
    assert client.get(f"{BASE}/steps/{name}").json()["result"]["runs"] == 1

    names.fill('["Age", "Fare", "Survived"]')
    form.get_by_role("button", name="Run again").click()
    expect(form).to_have_count(0)  # accepted: the form closes
    meta = ended(client, name)
    assert meta["status"] == "finished", meta
    assert meta["runs"] == 2
    assert meta["parameters"]["names"] == ["Age", "Fare", "Survived"]
    assert meta["parameters"]["inputDatasetName"] == titanic  # untouched: not sent
    header = studio.get_by_test_id("step-preview").locator("thead th")
    expect(header).to_have_text(typed("Age float", "Fare float", "Survived integer"))

    # objects are sent as a JSON merge-patch (RFC 7386): a key removed in the form is null
    first, second, third = studio.evaluate(MERGE_PATCH)
    assert first == {"b": {"c": 4, "d": None}}
    assert second == {"body": {"methodParameters": {"epochs": 5, "verbose": None}}, "errors": {}}
    assert third["body"] == {"description": "tuned"}
    assert third["errors"]["methodParameters"].startswith("Not valid JSON")


def test_cancel_and_delete_with_confirmation(studio: Page, client: httpx.Client) -> None:
    name = unique("studio_sleep")
    body = {"name": name, "function": "import time\ntime.sleep(120)\nresponse = 1\n"}
    post(client, f"{BASE}/function/python", {**body, "functionParameters": {}}, name)
    select(studio, name)
    cancel = studio.get_by_role("button", name="Cancel", exact=True)
    cancel.click()
    expect(studio.get_by_test_id("step-status")).to_contain_text("cancelled", timeout=STEP_MS)
    expect(cancel).to_have_count(0)  # only while pending or running

    delete = studio.get_by_role("button", name="Delete", exact=True)
    delete.click()
    dialog = studio.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Keep it")).to_be_focused()
    studio.keyboard.press("Tab")  # focus stays in the dialog
    assert studio.evaluate("document.activeElement.closest('[role=dialog]') !== null")
    studio.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(delete).to_be_focused()  # back where it was
    assert client.get(f"{BASE}/steps/{name}").status_code == 200

    delete.click()
    studio.get_by_role("button", name="Delete step", exact=True).click()
    expect(studio.get_by_test_id("step-panel")).to_contain_text("Select a step")
    assert client.get(f"{BASE}/steps/{name}").status_code == 404
    expect(node(studio, name)).to_have_count(0)


def test_the_studio_asks_for_the_token(browser: Browser, token_server: TokenServer) -> None:
    """On a server with tokens: the token form (a refused token says so), then the steps,
    the token in session storage and never in the URL."""
    name = unique("studio_token")
    auth = {"Authorization": f"Bearer {token_server.token}"}
    with httpx.Client(base_url=token_server.url, headers=auth, timeout=60) as http:
        upload(http, name)
    page, _ = open_page(browser, f"{token_server.url}/studio/", live=False)
    try:
        form = page.get_by_test_id("token-form")
        expect(form).to_be_visible()
        page.get_by_label("API token").fill("not-the-token")
        form.get_by_role("button", name="Use token").click()
        expect(form).to_contain_text("refused")
        page.get_by_label("API token").fill(token_server.token)
        form.get_by_role("button", name="Use token").click()
        wait_live(page)
        expect(form).to_have_count(0)
        page.fill("input[name=filter-name]", name)
        expect(row(page, name)).to_have_attribute("data-status", "finished", timeout=STEP_MS)
        assert page.evaluate("sessionStorage.getItem('lo-token')") == token_server.token
        assert token_server.token not in page.url
    finally:
        page.context.close()


def test_the_feed_restarts_on_410_and_falls_back_to_long_polling(
    browser: Browser, lo_server: str, client: httpx.Client
) -> None:
    """The stream answering 410 (cursor too old) makes the page start over from `GET
    /observe`; a stream that is not served (as from a proxy that does not route it: here the
    browser answers 404 for it) makes the page follow the long-poll feed instead, on which a
    new step still shows up and ends live."""
    answers = iter([410, 404])
    streams: list[int] = []

    def events(route: Route) -> None:
        status = next(answers, 404)
        streams.append(status)
        body = {"result": f"refused ({status})", "error": {"code": "http", "detail": None}}
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    context = browser.new_context()
    try:
        page = context.new_page()
        cursors: list[str] = []
        feed = f"{lo_server}{BASE}/observe"

        def on_request(request: Request) -> None:
            if request.url == feed:  # the cursor, read without `since`
                cursors.append(request.url)

        page.on("request", on_request)
        page.route(re.compile(r"/observe/\*/events"), events)
        page.goto(f"{lo_server}/studio/")
        wait_live(page)
        expect(page.get_by_test_id("feed-state")).to_have_text("Live (polling)")
        assert streams == [410, 404]
        assert len(cursors) == 2  # the 410 started it over

        name = unique("studio_poll")
        page.fill("input[name=filter-name]", name)
        fail(client, name)
        expect(row(page, name)).to_have_attribute("data-status", "failed", timeout=STEP_MS)
        assert streams == [410, 404]  # no stream tried again: polling from then on
    finally:
        context.close()


SYNTHETIC = """async (count) => {
    const { replaceSteps } = await import("./assets/store.js");
    const statuses = ["pending", "running", "finished", "failed", "cancelled"];
    const steps = [];
    for (let i = 0; i < count; i += 1) {
        steps.push({
            name: `synthetic_${i}`, type: i % 2 ? "transform/projection" : "dataset/csv",
            status: statuses[i % 5], stale: i % 7 === 0, version: 1, runs: 1,
            timeCreated: "2026-01-01T00:00:00.000Z", parameters: {},
            parents: i % 10 ? [`synthetic_${i - 1}`] : [],
        });
    }
    replaceSteps(steps);
}"""


def test_the_list_stays_virtualised_with_5000_steps(studio: Page) -> None:
    """5,000 steps (put in the page's own store: creating them would take minutes): fewer
    than 300 rows in the DOM wherever the list is scrolled, the keyboard reaches the last
    one, the filters apply, and the graph draws only the selected step's lineage."""
    studio.evaluate(SYNTHETIC, 5000)
    rows = studio.get_by_test_id("step-row")
    expect(studio.locator("#list-count")).to_have_text("5000 steps")
    assert 0 < rows.count() < 300
    expect(studio.get_by_test_id("node")).to_have_count(0)  # too many: pick one first
    expect(studio.get_by_test_id("graph")).to_have_attribute(
        "aria-label", "Pipeline graph: 5000 steps: select one to see its lineage"
    )

    studio.locator(".list-scroll").evaluate(
        "(element) => { element.scrollTop = element.scrollHeight; }"
    )
    expect(row(studio, "synthetic_4999")).to_be_visible()
    assert 0 < rows.count() < 300

    studio.get_by_role("listbox", name="Steps").focus()
    studio.keyboard.press("Home")
    expect(row(studio, "synthetic_0")).to_be_visible()
    studio.keyboard.press("ArrowDown")
    studio.keyboard.press("ArrowDown")
    studio.keyboard.press("Enter")
    assert studio.evaluate("location.hash") == "#/step/synthetic_2"
    expect(row(studio, "synthetic_2")).to_have_attribute("aria-selected", "true")
    # its lineage: a chain of ten
    expect(studio.get_by_test_id("node")).to_have_count(10)
    expect(node(studio, "synthetic_2")).to_have_class("node status-finished selected")
    expect(node(studio, "synthetic_0")).to_have_attribute("data-stale", "true")
    expect(studio.get_by_test_id("edge")).to_have_count(9)

    studio.select_option("select[name=filter-status]", "failed")
    expect(studio.locator("#list-count")).to_have_text("1000 of 5000 steps match")
    statuses = rows.evaluate_all("(rows) => rows.map((row) => row.dataset.status)")
    assert statuses and set(statuses) == {"failed"}
    expect(node(studio, "synthetic_3")).not_to_have_class("dim")
    assert "dim" in (node(studio, "synthetic_2").get_attribute("class") or "")
    studio.fill("input[name=filter-name]", "synthetic_499")
    studio.select_option("select[name=filter-type]", "transform/projection")
    expect(studio.locator("#list-count")).to_have_text("1 of 5000 steps match")  # 4993
    expect(rows).to_have_count(1)


def sklearn_pipeline(client: httpx.Client) -> list[str]:
    """A scikit-learn model, trained, then evaluated on two label sets: two leaderboard rows
    (scores 1.0 and 0.75). Answers the evaluate steps' names."""
    model, fit = unique("studio_lr"), unique("studio_fit")
    x = "#np.array([[0.0], [1.0], [2.0], [3.0]])"
    create = {"modulePath": "sklearn.linear_model", "class": "LogisticRegression"}
    post(
        client,
        f"{BASE}/model/scikitlearn",
        {"modelName": model, **create, "classParameters": {}},
        model,
    )
    call = {"modelName": model, "parentName": model, "method": "fit"}
    arguments = {"X": x, "y": "#np.array([0, 0, 1, 1])"}
    post(
        client,
        f"{BASE}/train/scikitlearn",
        {"name": fit, **call, "methodParameters": arguments},
        fit,
    )
    evaluations = []
    for labels in ("[0, 0, 1, 1]", "[0, 1, 1, 1]"):
        name = unique("studio_eval")
        call = {"modelName": model, "parentName": fit, "method": "score"}
        arguments = {"X": x, "y": f"#np.array({labels})"}
        body = {"name": name, **call, "methodParameters": arguments}
        post(client, f"{BASE}/evaluate/scikitlearn", body, name)
        evaluations.append(name)
    for name in evaluations:
        finished(client, f"{BASE}/evaluate/scikitlearn", name)
    return evaluations


PYCARET_TRAIN = """async (name) => {
    const { applyChanges } = await import("./assets/store.js");
    applyChanges([{
        name, type: "train/pycaret", status: "finished", version: 1, parents: [],
        timeCreated: "2026-01-01T00:00:00.000Z", parameters: {method: "compare_models"},
        leaderboard: [
            {ID: "lr", Model: "Logistic Regression", Accuracy: 0.79, AUC: 0.84},
            {ID: "dt", Model: "Decision Tree Classifier", Accuracy: 0.76, AUC: 0.75},
            {ID: "nb", Model: "Naive Bayes", Accuracy: 0.78, AUC: null},
        ],
    }]);
}"""


def test_compare_sorts_the_evaluations_and_shows_pycaret_leaderboards(
    studio: Page, client: httpx.Client, axe: Callable[[Page], list[dict[str, Any]]]
) -> None:
    best, worse = sklearn_pipeline(client)
    studio.get_by_role("button", name="Compare", exact=True).click()
    board = studio.get_by_test_id("leaderboard")
    expect(board.locator(f'tr:has(a:text-is("{best}"))')).to_have_count(1, timeout=STEP_MS)
    expect(board.locator(f'tr:has(a:text-is("{worse}"))')).to_have_count(1)

    def order() -> list[str]:
        names: list[str] = board.locator("tbody tr td:first-child").all_inner_texts()
        return [name for name in names if name in (best, worse)]

    score = board.locator("th", has_text="score")
    score.get_by_role("button").click()
    expect(score).to_have_attribute("aria-sort", "ascending")
    assert order() == [worse, best]
    score.get_by_role("button").press("Enter")  # the keyboard sorts too
    expect(score).to_have_attribute("aria-sort", "descending")
    assert order() == [best, worse]

    train = unique("studio_pycaret")
    studio.evaluate(PYCARET_TRAIN, train)
    pycaret = studio.get_by_test_id("pycaret-leaderboard")
    expect(pycaret.locator("tbody tr")).to_have_count(3)
    headers = [re.compile(rf"^{header}\b") for header in ("ID", "Model", "Accuracy", "AUC")]
    expect(pycaret.locator("thead th")).to_have_text(headers)
    pycaret.locator("th", has_text="Accuracy").get_by_role("button").click()
    expect(pycaret.locator("tbody tr td:nth-child(2)")).to_have_text(
        ["Decision Tree Classifier", "Naive Bayes", "Logistic Regression"]
    )
    assert axe(studio) == []

    board.get_by_role("link", name=best).click()  # back to the step
    expect(studio.locator("#panel-title")).to_have_text(best)
    expect(studio.get_by_test_id("step-metrics")).to_contain_text("accuracy")


def test_no_serious_accessibility_violations(
    studio: Page, client: httpx.Client, titanic: str, axe: Callable[[Page], list[dict[str, Any]]]
) -> None:
    """axe-core on the main view, a table step's panel, a failed step's panel, the re-run
    form and the delete dialog (the compare view: the test above)."""
    table, failed = unique("studio_a11y"), unique("studio_a11y_fail")
    project(client, titanic, table, ["Sex", "Age", "Survived"])
    fail(client, failed)
    finished(client, f"{BASE}/transform/projection", table)
    ended(client, failed)
    assert axe(studio) == []

    select(studio, table)
    expect(studio.get_by_test_id("step-preview").locator("tbody tr")).to_have_count(20)
    assert axe(studio) == []
    studio.get_by_role("button", name="Re-run", exact=True).click()
    expect(studio.get_by_test_id("rerun-form")).to_be_visible()
    assert axe(studio) == []

    select(studio, failed)
    expect(studio.get_by_test_id("step-error")).to_be_visible()
    assert axe(studio) == []
    studio.get_by_role("button", name="Delete", exact=True).click()
    expect(studio.get_by_role("dialog")).to_be_visible()
    assert axe(studio) == []
    studio.keyboard.press("Escape")


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of its own, so the screenshots show only their pipeline."""
    server = ServerProcess(tmp_path_factory.mktemp("studio-shots") / "data")
    server.start()
    yield server.url
    server.stop()


def test_screenshots_of_the_graph_and_a_step_panel(
    browser: Browser, fresh_server: str, tmp_path: Path
) -> None:
    """The docs' screenshots (docs/studio.md): a small Titanic pipeline — dataset,
    projection, histogram, and a failed function — and a step's panel. Saved in
    $LO_STUDIO_SCREENSHOTS when set (`LO_STUDIO_SCREENSHOTS=docs/images pytest -k
    screenshots tests/studio/test_studio.py`)."""
    with httpx.Client(base_url=fresh_server, timeout=120) as http:
        upload(http, "titanic")
        project(http, "titanic", "passengers", ["Pclass", "Sex", "Age", "Fare", "Survived"])
        body = {
            "inputDatasetName": "passengers",
            "outputDatasetName": "survival",
            "names": ["Pclass", "Survived"],
        }
        post(http, f"{BASE}/explore/histogram", body, "survival")
        code = (
            'free = frame[frame["Fare"] == 0]\n'
            'assert free.empty, f"{len(free)} passengers paid no fare"\n'
            'response = float(frame["Fare"].mean())\n'
        )
        check = {
            "name": "fare_check",
            "function": code,
            "functionParameters": {"frame": "$passengers"},
        }
        post(http, f"{BASE}/function/python", check, "fare_check")
        for name in ("titanic", "passengers", "survival", "fare_check"):
            ended(http, name)
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    try:
        page = context.new_page()
        page.goto(f"{fresh_server}/studio/#/step/passengers")
        wait_live(page)
        expect(page.get_by_test_id("node")).to_have_count(4)
        expect(page.get_by_test_id("step-preview").locator("tbody tr")).to_have_count(20)
        page.screenshot(path=folder / "studio-graph.png")
        page.set_viewport_size({"width": 1100, "height": 1400})  # the whole panel in view
        select(page, "fare_check")
        expect(page.get_by_test_id("step-error")).to_be_visible()
        page.get_by_test_id("step-panel").screenshot(path=folder / "studio-panel.png")
    finally:
        context.close()
    for shot in ("studio-graph.png", "studio-panel.png"):
        assert (folder / shot).read_bytes().startswith(b"\x89PNG"), shot
