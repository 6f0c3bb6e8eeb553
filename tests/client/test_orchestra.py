"""`Orchestra` / `AsyncOrchestra` and their steps against the real server (`lo_server`).

The daily loop of issue 7: upload, wait, look at the result as a DataFrame (or an array, or
a dict), re-run with one parameter changed, read the logs, download files, follow lineage,
and the errors a user meets on the way. The server is shared by the session, so every
name is unique; uploads that several tests read are made once per module.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from learning_orchestra_client import (
    AsyncOrchestra,
    ConnectionFailed,
    InvalidRequest,
    Lineage,
    NotFound,
    Orchestra,
    Step,
    StepCancelled,
    StepFailed,
    Steps,
    WaitTimeout,
)
from tests.conftest import TITANIC_TYPES, data_file, free_port

pytestmark = pytest.mark.e2e

TRAIN = data_file("titanic/train.csv")
FAILING = "print('about to fail')\ndef check(n):\n    raise ValueError(f'boom {n}')\ncheck(k)\n"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def orc(lo_server: str) -> Iterator[Orchestra]:
    with Orchestra(lo_server, progress=False) as orchestra:
        yield orchestra


@pytest.fixture(scope="module")
def titanic(orc: Orchestra) -> Iterator[Step]:
    """The Titanic training set, uploaded from its path once for the module."""
    step = orc.upload(unique("titanic"), TRAIN).wait()
    yield step
    step.delete()


@pytest.fixture(scope="module")
def failed(orc: Orchestra) -> Step:
    """A function step whose code raised."""
    step = orc.submit(
        "function/python", name=unique("failing"), function=FAILING, functionParameters={"k": 1}
    )
    with pytest.raises(StepFailed):
        step.wait()
    return step


def function(orc: Orchestra, code: str, **parameters: object) -> Step:
    """Submit a function/python step running `code` with `parameters` (not waited for)."""
    return orc.submit(
        "function/python", name=unique("fn"), function=code, functionParameters=parameters
    )


# --- uploads and results ------------------------------------------------------------------


def test_upload_a_path_and_read_it_back_as_a_dataframe(titanic: Step) -> None:
    assert titanic.wait() is titanic  # finished already: returns at once
    frame = titanic.result()
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape == (891, 12) and list(frame.columns) == list(TITANIC_TYPES)
    assert frame["PassengerId"].tolist() == list(range(1, 892))
    assert (frame["Sex"] == "female").sum() == 314 and frame["Age"].isna().sum() == 177
    expected = pd.read_csv(TRAIN)
    assert frame["Fare"].tolist() == expected["Fare"].tolist()
    assert frame["Name"].tolist() == expected["Name"].tolist()


def test_upload_a_dataframe_and_bytes(orc: Orchestra) -> None:
    sent = pd.DataFrame({"x": [1, 2, 3], "label": ["a", "b", None], "score": [0.5, 1.5, 2.0]})
    table = orc.upload(unique("frame"), sent, description="from pandas").wait()
    assert table.metadata["types"] == {"x": "integer", "label": "string", "score": "float"}
    assert table.metadata["description"] == "from pandas"
    back = table.result()
    assert back["x"].tolist() == [1, 2, 3] and back["score"].tolist() == [0.5, 1.5, 2.0]
    assert back["label"].tolist()[:2] == ["a", "b"] and pd.isna(back["label"].iloc[2])

    raw = orc.upload(unique("bytes"), b"a,b\n1,2\n3,4\n").wait()
    assert raw.result().to_dict("list") == {"a": [1, 3], "b": [2, 4]}
    text = raw.result(format="csv")  # the table as CSV text
    assert isinstance(text, str)
    assert pd.read_csv(io.StringIO(text)).to_dict("list") == {"a": [1, 3], "b": [2, 4]}

    kept = orc.upload(unique("parquet"), sent, kind="generic").wait()  # as a Parquet file
    assert kept.type == "dataset/generic"
    assert [f["filename"] for f in kept.files()] == [f"{kept.name}.parquet"]
    pd.testing.assert_frame_equal(kept.result(), sent)
    with pytest.raises(ValueError, match="kind"):
        orc.upload(unique("bad"), b"x", kind="zip")


def test_function_results_are_arrays_dicts_and_values(orc: Orchestra) -> None:
    array = function(orc, "import numpy as np\nresponse = np.arange(6).reshape(2, 3)")
    mapping = function(orc, "response = {'sum': k + j, 'k': k}", k=1, j=2)
    number = function(orc, "response = 7")
    done = orc.wait_all(array, mapping.name, number)
    assert isinstance(done, Steps) and [s.metadata["status"] for s in done] == ["finished"] * 3
    result = array.result()
    assert isinstance(result, np.ndarray)
    np.testing.assert_array_equal(result, np.arange(6).reshape(2, 3))
    assert mapping.result() == {"sum": 3, "k": 1}
    assert number.result() == 7
    html = done._repr_html_()
    assert all(f"<b>{s.name}</b>" in html for s in done) and html.count("finished") == 3


def test_rerun_merges_dict_parameters_and_logs_show_the_latest_run(orc: Orchestra) -> None:
    step = function(orc, "print('summing', k + j)\nresponse = {'sum': k + j}", k=1, j=2).wait()
    assert step.result() == {"sum": 3}
    assert step.logs() == "summing 3\n"

    assert step.rerun(functionParameters={"k": 10}) is step  # only k changes; j is kept
    assert step.metadata["status"] in ("pending", "running", "finished")
    step.wait()
    assert step.metadata["parameters"]["functionParameters"] == {"k": 10, "j": 2}
    assert step.metadata["runs"] == 2
    assert step.result() == {"sum": 12}
    assert step.logs() == "summing 12\n"
    assert step.logs(offset=8, limit=2) == "12"

    step.rerun({"functionParameters": {"j": None}}, function="response = k").wait()
    assert step.metadata["parameters"]["functionParameters"] == {"k": 10}
    assert step.result() == 10


def test_a_table_step_reruns_and_its_children_see_lineage(orc: Orchestra, titanic: Step) -> None:
    ages = orc.submit(
        "transform/projection",
        inputDatasetName=titanic.name,
        outputDatasetName=unique("ages"),
        names=["Sex", "Age"],
    ).wait()
    assert list(ages.result().columns) == ["Sex", "Age"]
    hist = orc.submit(
        "explore/histogram",
        {"inputDatasetName": ages.name, "names": ["Sex"]},
        outputDatasetName=unique("hist"),
    ).wait()
    counts = hist.result()
    assert dict(zip(counts["value"], counts["count"], strict=True)) == {"female": 314, "male": 577}

    lineage = hist.lineage()
    assert isinstance(lineage, Lineage)
    assert lineage.parents(hist.name) == [ages.name]
    assert lineage.parents(ages.name) == [titanic.name]
    text = repr(lineage)
    assert f"{hist.name} (explore/histogram, finished) <- {ages.name}" in text
    assert f"{ages.name} (transform/projection, finished) <- {titanic.name}" in text
    html = lineage._repr_html_()
    assert "computed from" in html
    assert re.search(rf"<b>{ages.name}</b>.*<td>{titanic.name}</td>", html)

    ages.rerun(names=["Sex", "Pclass"]).wait()  # a list replaces the stored one
    assert list(ages.result().columns) == ["Sex", "Pclass"]
    assert hist.lineage().nodes[0]["stale"] is True  # its input changed since it ran
    assert "stale" in hist.lineage()._repr_html_()


def test_submit_takes_class_and_a_dict_body(orc: Orchestra) -> None:
    body = {
        "name": unique("scaled"),
        "modulePath": "sklearn.preprocessing",
        "classParameters": {},
        "method": "fit_transform",
        "methodParameters": {"X": "#np.array([[1.0, 10.0], [3.0, 30.0]])"},
    }
    scaled = orc.submit("transform/scikitlearn", body, class_="StandardScaler")
    assert scaled.type == "transform/scikitlearn"
    scaled.wait()
    assert scaled.metadata["parameters"]["class"] == "StandardScaler"
    np.testing.assert_allclose(scaled.result(), [[-1.0, -1.0], [1.0, 1.0]])


def test_submit_to_a_misspelt_type_names_the_types_served(orc: Orchestra) -> None:
    with pytest.raises(NotFound) as caught:
        orc.submit("transform/projecton", inputDatasetName="x", outputDatasetName="y", names=[])
    message = str(caught.value)
    assert "no step type 'transform/projecton'" in message
    assert "did you mean 'transform/projection'?" in message
    assert "model/scikitlearn" in message  # the whole list


def test_submit_data_type_returns_the_cast_datasets_step(orc: Orchestra) -> None:
    table = orc.upload(unique("cast"), pd.DataFrame({"n": [1, 2], "s": ["3", "x"]})).wait()
    cast = orc.submit("transform/dataType", inputDatasetName=table.name, types={"n": "string"})
    assert (cast.name, cast.type) == (table.name, "dataset/csv")
    cast.wait()
    assert cast.metadata["types"]["n"] == "string"
    assert cast.result()["n"].tolist() == ["1", "2"]


# --- waiting, failures, deadlines ------------------------------------------------------------


def test_a_failed_step_shows_its_error_traceback_and_a_hint(orc: Orchestra, failed: Step) -> None:
    with pytest.raises(StepFailed) as caught:
        failed.wait()
    exc = caught.value
    assert exc.name == failed.name and exc.status == "failed"
    assert exc.exception is not None and "ValueError: boom 1" in exc.exception
    text = str(exc)
    assert text.startswith(f"step '{failed.name}' failed: ValueError: boom 1")
    assert 'File "<function>", line 3, in check' in text  # the user's own frames
    assert "site-packages" not in text and "learning_orchestra" not in text
    assert "Hint:" in text and "rerun" in text
    assert failed.logs() == "about to fail\n"

    with pytest.raises(StepFailed, match="so it has no result: ValueError: boom 1"):
        failed.result()


def test_wait_all_raises_for_the_step_that_failed(orc: Orchestra) -> None:
    fine = function(orc, "response = 1")
    broken = function(orc, FAILING, k=2)
    with pytest.raises(StepFailed, match="boom 2") as caught:
        orc.wait_all(fine, broken.name)
    assert caught.value.name == broken.name
    assert orc.wait_all(fine)[0].metadata["status"] == "finished"


def test_a_slow_step_deadline_result_cancel_and_delete(orc: Orchestra, files_server: str) -> None:
    slow = orc.submit(
        "dataset/csv", datasetName=unique("slow"), datasetURI=f"{files_server}/slow.csv"
    )  # slow.csv takes ~20 s to send
    with pytest.raises(NotFound, match=r"is (pending|running) and has no output yet: call \.wait"):
        slow.result()

    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        slow.wait(timeout=1)
    assert 1 <= time.monotonic() - started < 6
    assert re.search(
        r"did not end within 1 s \(last status: (pending|running)\)", str(caught.value)
    )
    assert isinstance(caught.value, TimeoutError)

    assert slow.cancel() is slow and slow.metadata["status"] == "cancelled"
    assert slow.status == "cancelled"  # read again from the server
    assert slow.name in [s.name for s in orc.steps(status="cancelled", type="dataset/csv")]
    with pytest.raises(StepFailed, match="cancelled, so it has no result"):
        slow.result()
    with pytest.raises(StepCancelled):
        slow.wait()

    assert slow.delete() is None
    with pytest.raises(NotFound, match="no step named"):
        orc.step(slow.name)


def test_progress_bar_while_waiting(
    lo_server: str, titanic: Step, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tqdm")  # the `notebook` extra, installed with the root project
    titanic.wait()  # this Orchestra was made with progress=False
    assert capsys.readouterr().err == ""

    titanic.wait(progress=True)
    bar = capsys.readouterr().err
    assert f"{titanic.name}: 891 rows" in bar and "finished" in bar

    with Orchestra(lo_server) as orchestra:  # bars are on by default
        orchestra.step(titanic.name).wait()
    assert "891 rows" in capsys.readouterr().err


# --- finding steps -------------------------------------------------------------------------------


def test_steps_filter_by_status_and_type(orc: Orchestra, titanic: Step, failed: Step) -> None:
    failures = orc.steps(status="failed")
    assert failed.name in [s.name for s in failures]
    assert {s.metadata["status"] for s in failures} == {"failed"}

    functions = orc.steps(type="function/python")
    assert failed.name in [s.name for s in functions]
    assert {s.type for s in functions} == {"function/python"}

    tables = orc.steps(type=["dataset/csv", "transform/projection"])
    assert titanic.name in [s.name for s in tables]
    assert {s.type for s in tables} <= {"dataset/csv", "transform/projection"}
    assert failed.name not in [s.name for s in orc.steps(status="failed", type="dataset/csv")]

    everything = orc.steps()
    assert {titanic.name, failed.name} <= {s.name for s in everything}
    with pytest.raises(InvalidRequest, match="bogus"):
        orc.steps(status="bogus")


def test_step_by_name_of_any_type(orc: Orchestra, titanic: Step) -> None:
    found = orc.step(titanic.name)
    assert isinstance(found, Step)
    assert (found.type, found.metadata["rows"]) == ("dataset/csv", 891)
    assert repr(found) == f"Step({titanic.name!r}, type='dataset/csv', status='finished')"
    html = found._repr_html_()
    assert "finished" in html and re.search(r"duration</th><td[^>]*>\d+\.\d\d s<", html)
    with pytest.raises(NotFound, match="no step named"):
        orc.step(unique("nope"))


def test_files_and_download_check_sha256(orc: Orchestra, titanic: Step, tmp_path: Path) -> None:
    payload = os.urandom(4096)
    blob = orc.upload(unique("blob"), payload, kind="generic").wait()
    (entry,) = blob.files()
    assert entry["size"] == 4096
    assert entry["sha256"] == hashlib.sha256(payload).hexdigest()

    path = blob.download(entry["filename"], to=tmp_path)
    assert path == tmp_path / entry["filename"] and path.read_bytes() == payload
    assert blob.download(to=tmp_path / "all") == [tmp_path / "all" / entry["filename"]]
    assert blob.result() == payload
    with pytest.raises(NotFound, match=f"has no file 'nope' \\(it has: {entry['filename']}\\)"):
        blob.download("nope", to=tmp_path)

    (table,) = titanic.files()
    downloaded = titanic.download(table["filename"], to=tmp_path)
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == table["sha256"]
    pd.testing.assert_frame_equal(pd.read_parquet(downloaded), titanic.result())


def test_default_url_comes_from_lo_url(lo_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LO_URL", lo_server)
    with Orchestra(progress=False) as orchestra:
        assert orchestra.cluster_url == lo_server
        assert isinstance(orchestra.steps(type="dataset/generic"), Steps)


# --- a server that is not there --------------------------------------------------------------


def test_a_refused_connection_names_the_url_and_how_to_start_a_server() -> None:
    port = free_port()  # bound, then released: nothing listens there
    started = time.monotonic()
    with (
        Orchestra(f"127.0.0.1:{port}", retries=0) as orchestra,
        pytest.raises(ConnectionFailed) as caught,
    ):
        orchestra.step("titanic")
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert f"could not reach http://127.0.0.1:{port}/api/learningOrchestra/v1/steps/titanic" in (
        message
    )
    assert f"is the server running at http://127.0.0.1:{port}?" in message
    assert "./run.sh local" in message


async def test_a_refused_connection_asyncio() -> None:
    port = free_port()
    async with AsyncOrchestra(f"127.0.0.1:{port}", retries=0) as orchestra:
        with pytest.raises(ConnectionFailed, match=r"./run.sh local"):
            await orchestra.steps()


# --- the asyncio twin -----------------------------------------------------------------------------


async def test_the_same_loop_with_async_orchestra(lo_server: str) -> None:
    async with AsyncOrchestra(lo_server, progress=False) as orc:
        titanic = await orc.upload(unique("aio_titanic"), TRAIN)
        assert titanic.status == "pending"  # as last read: no request in a property
        assert await titanic.wait() is titanic and titanic.status == "finished"
        frame = await titanic.result()
        assert frame.shape == (891, 12)

        step = await orc.submit(
            "function/python",
            name=unique("aio_sum"),
            function="print('sum', len(t) + k)\nresponse = {'n': len(t) + k}",
            functionParameters={"t": f"${titanic.name}", "k": 1},
        )
        broken = await orc.submit(
            "function/python",
            name=unique("aio_fail"),
            function=FAILING,
            functionParameters={"k": 3},
        )
        with pytest.raises(StepFailed, match="boom 3") as caught:
            await orc.wait_all(step, broken)
        assert caught.value.name == broken.name and "Hint:" in str(caught.value)
        await orc.wait_all(step)
        assert await step.result() == {"n": 892}
        assert await step.logs() == "sum 892\n"

        await (await step.rerun(functionParameters={"k": 9})).wait()
        assert step.metadata["parameters"]["functionParameters"] == {
            "t": f"${titanic.name}",
            "k": 9,
        }
        assert await step.result() == {"n": 900}
        assert (await orc.step(step.name)).metadata["runs"] == 2
        assert (await step.refresh()).status == "finished"
        lineage = await step.lineage()
        assert lineage.parents(step.name) == [titanic.name]

        for each in (step, broken, titanic):
            await each.delete()
        with pytest.raises(NotFound):
            await orc.step(titanic.name)
