"""`LO_<FIELD>_FILE`: every setting, and the artifact key, read from a file (Docker secrets).

`core/settings.py`'s `secret_value` is the one rule: the file's content (its trailing
newline stripped) stands for the variable; both set, or a file that cannot be read, stops
the server with a message naming the variables and the path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from learning_orchestra.core.artifacts import ArtifactVolume, TamperedArtifact
from learning_orchestra.core.settings import SettingError, Settings, secret_files, secret_value
from tests.conftest import free_port


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LO_* variable of the test run's own environment interferes."""
    for variable in list(os.environ):
        if variable.startswith("LO_"):
            monkeypatch.delenv(variable)


def secret(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_each_setting_reads_the_file_its_file_variable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "mongodb://lo:p%40ss@mongo-1,mongo-2/lo?replicaSet=rs0"
    monkeypatch.setenv("LO_STORE_URL_FILE", str(secret(tmp_path, "url", url + "\n")))
    monkeypatch.setenv("LO_API_TOKENS_FILE", str(secret(tmp_path, "tokens", "one, two\n\n")))
    monkeypatch.setenv("LO_JOB_TIMEOUT_FILE", str(secret(tmp_path, "timeout", "90\n")))
    monkeypatch.setenv("LO_MAX_JOBS", "3")  # the environment still works beside files
    settings = Settings()
    assert settings.store_url == url
    assert settings.tokens == {"one", "two"}
    assert settings.job_timeout == 90.0
    assert settings.max_jobs == 3
    assert Settings(api_tokens="given").tokens == {"given"}  # arguments still come first


def test_a_value_from_a_file_is_validated_as_any_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LO_JOB_TIMEOUT_FILE", str(secret(tmp_path, "timeout", "soon\n")))
    with pytest.raises(ValueError, match="job_timeout"):
        Settings()


@pytest.mark.parametrize(
    ("variable", "reader"),
    [
        ("LO_API_TOKENS", lambda data: Settings()),
        ("LO_SECRET_KEY", ArtifactVolume),  # read by the volume, not Settings
    ],
    ids=["setting", "artifact key"],
)
def test_a_variable_and_its_file_variable_both_set_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, reader: Any
) -> None:
    monkeypatch.setenv(variable, "inline")
    monkeypatch.setenv(f"{variable}_FILE", str(secret(tmp_path, "value", "from-file")))
    with pytest.raises(SettingError, match=f"{variable} and {variable}_FILE are both set"):
        reader(tmp_path / "data")


@pytest.mark.parametrize("problem", ["missing", "a folder", "empty", "blank variable"])
def test_a_file_that_cannot_be_used_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    path = {
        "missing": str(tmp_path / "nowhere"),
        "a folder": str(tmp_path),
        "empty": str(secret(tmp_path, "empty", "\n")),
        "blank variable": " ",
    }[problem]
    monkeypatch.setenv("LO_STORE_URL_FILE", path)
    with pytest.raises(SettingError) as raised:
        Settings()
    message = str(raised.value)
    assert "LO_STORE_URL_FILE" in message and path.strip() in message, message
    assert "\n" not in message


def test_the_artifact_key_comes_from_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = secret(tmp_path, "key", "a key from a docker secret\n")
    monkeypatch.setenv("LO_SECRET_KEY_FILE", str(key_file))
    volume = ArtifactVolume(tmp_path / "data")
    assert volume.key == b"a key from a docker secret"
    assert not (tmp_path / "data" / ".secret-key").exists()
    staging = volume.staging_dir("model", "r1")
    (staging / "value.json").write_text("42")
    volume.commit("model", "r1", staging, kind="object", fmt="json")
    # a job's worker (prepare=False) reads the same key and verifies the signature
    worker = ArtifactVolume(tmp_path / "data", prepare=False)
    assert worker.verify("model", "r1")["format"] == "json"
    with pytest.raises(TamperedArtifact):
        ArtifactVolume(tmp_path / "data", b"another key").verify("model", "r1")


def test_secret_value_and_secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert secret_value("LO_SECRET_KEY") is None
    monkeypatch.setenv("LO_SECRET_KEY", "inline")
    assert secret_value("LO_SECRET_KEY") == "inline"
    token_file = secret(tmp_path, "tokens", "t\r\n")
    monkeypatch.setenv("LO_API_TOKENS_FILE", str(token_file))
    assert secret_value("LO_API_TOKENS") == "t"
    monkeypatch.setenv("OTHER_FILE", str(tmp_path / "not ours"))
    assert secret_files() == [token_file]


@pytest.mark.parametrize("case", ["both set", "unreadable key"])
def test_serve_stops_with_the_message_not_a_traceback(tmp_path: Path, case: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LO_")}
    if case == "both set":
        env.update(LO_API_TOKENS="a", LO_API_TOKENS_FILE=str(secret(tmp_path, "t", "b")))
        expected = "LO_API_TOKENS and LO_API_TOKENS_FILE are both set"
    else:
        env.update(LO_SECRET_KEY_FILE=str(tmp_path / "missing-key"))
        expected = f"LO_SECRET_KEY_FILE={tmp_path / 'missing-key'}: the file cannot be read"
    serve = ["serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")]
    done = subprocess.run(
        [sys.executable, "-m", "learning_orchestra.cli", *serve],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"learning-orchestra serve: error: {expected}"), done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_serve_listens_on_lo_port(tmp_path: Path) -> None:
    """`serve` without --port takes LO_PORT, as the images' health check does (services/
    docker/Dockerfile): a stack sets the port once, in the environment."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LO_")} | {"LO_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "learning_orchestra.cli", "serve", "--data-dir", tmp_path],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, "the server exited"
                assert time.monotonic() < deadline, f"nothing answers on LO_PORT={port}"
                time.sleep(0.2)
        assert answer.json()["result"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=30)
