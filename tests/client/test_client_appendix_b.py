"""The user's MNIST AutoKeras script (AutoML monograph, Appendix B) against the real server.

Run as the user wrote it, with only the changes the examples' README allows, each listed in
`script_changes`: the cluster's URL, the dataset's URL (the 5,000-digit subset over local
HTTP: no internet in tests), the import the original forgot (it imports `TrainAutokeras`
but instantiates `TrainAutoKeras`), and the search budget (max_trials=1, epochs=1).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from learning_orchestra_client import NotFound, Orchestra
from tests.conftest import ROOT, printed_json, run_user_script

SCRIPT = "monograph_appendix_b_mnist_autokeras.py"
MNIST = ROOT / "examples" / "data" / "mnist"
API = "/api/learningOrchestra/v1"

#: The steps the script creates, removed after the test (the server is the session's).
STEPS = [
    "mnist_dataset_autokeras",
    "mnist_load_data",
    "mnist_model_autokeras",
    "mnist_model_trained_autokeras",
    "mnist_model_predicted_autokeras",
    "mnist_model_evaluated_autokeras",
    "mnist_model_predicted_print",
    "mnist_model_evaluated_print",
]


@pytest.fixture(scope="module")
def mnist_server() -> Iterator[str]:
    """Base URL of a local HTTP server holding examples/data/mnist (mnist_5k.npz)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(MNIST))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def script_changes(lo_server: str, mnist_server: str) -> list[tuple[str, str]]:
    """Every change made to the script, ``(original text, replacement)``."""
    return [
        # the cluster's address: the session's server
        ('CLUSTER_IP = "http://34.125.22.143"', f'CLUSTER_IP = "{lo_server}"'),
        # the dataset: the bundled 5,000-digit subset over local HTTP
        (
            'url="https://storage.googleapis.com/tensorflow/"\n'
            '        "tf-keras-datasets/mnist.npz",',
            f'url="{mnist_server}/mnist_5k.npz",',
        ),
        # the import the original forgot (it imports the other spelling)
        (
            "from learning_orchestra_client.train.autokeras import TrainAutokeras\n",
            "from learning_orchestra_client.train.autokeras import TrainAutokeras\n"
            "from learning_orchestra_client.train.autokeras import TrainAutoKeras\n",
        ),
        # budgets: one trial of one epoch
        ('"max_trials": 10', '"max_trials": 1'),
        ('"epochs": 6,', '"epochs": 1,'),
    ]


@pytest.mark.e2e
def test_the_monograph_mnist_autokeras_script_runs(
    lo_server: str, mnist_server: str, tmp_path: Path
) -> None:
    try:
        changes = script_changes(lo_server, mnist_server)
        done = run_user_script(SCRIPT, changes, tmp_path, timeout=600)
        # the two print steps' execution contents (skip=1, limit=1): their latest run record,
        # whose log is what the step printed
        predicted, evaluated = printed_json(done.stdout)[-2:]
        printed = {
            name: content["result"][0]
            for name, content in (("predicted", predicted), ("evaluated", evaluated))
        }
        # predict answers labels, as ImageClassifier.predict does (AutoKeras keeps them as
        # text); evaluate a dict of Keras metrics
        assert printed["predicted"]["functionMessage"].startswith("[['")
        assert "'accuracy':" in printed["evaluated"]["functionMessage"]
        with httpx.Client(base_url=lo_server + API) as client:
            trained = client.get("/train/autokeras/mnist_model_trained_autokeras").json()
            evaluation = client.get("/evaluate/autokeras/mnist_model_evaluated_autokeras").json()
        assert trained["result"][0]["status"] == "finished"
        metrics = evaluation["result"][0]["metrics"]
        assert 0.0 <= metrics["accuracy"] <= 1.0
    finally:
        with Orchestra(lo_server) as orchestra:
            for name in reversed(STEPS):
                with contextlib.suppress(NotFound):
                    orchestra.step(name).delete()
