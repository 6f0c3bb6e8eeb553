"""Secrets given as files (`LO_*_FILE`, Docker secrets) stay out of user code's reach.

A real server reads its bearer tokens and artifact key from files named by
`LO_API_TOKENS_FILE` and `LO_SECRET_KEY_FILE`, world-readable (0644, in a 0755 folder), as
Docker mounts secrets by default: only Landlock stands between them and a function step's
code, which the server runs as `nobody` (root) or as its own user (non-root), both of which
may read the files. A sibling file of the same folder stays readable, so the refusal is the
sandbox's hiding those files, not a closed folder. The folder lies under /var/tmp, not /tmp,
which the code sees as a tmpfs of its own (where nothing of the host's would be found).
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from learning_orchestra.sandbox import landlock
from tests.conftest import BASE, ServerProcess

FUNCTION = f"{BASE}/function/python"
TOKEN = "token-from-a-docker-secret"
KEY = "a-signing-key-from-a-docker-secret"

PROBE = """
import os
results = {"LO_ variables": sorted(k for k in os.environ if k.startswith("LO_"))}
for label, path in paths.items():
    try:
        with open(path) as f:
            f.read()
        results[label] = "read"
    except OSError as exc:
        results[label] = type(exc).__name__
response = results
"""


@pytest.fixture
def secrets_folder() -> Iterator[Path]:
    """A folder of world-readable files outside /tmp, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="lo-secrets-", dir="/var/tmp"))
    try:
        folder.chmod(0o755)
        for name, text in {"tokens": f"{TOKEN}\n", "key": f"{KEY}\n", "public": "hello\n"}.items():
            (folder / name).write_text(text)
            (folder / name).chmod(0o644)
        yield folder
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


@pytest.mark.skipif(landlock.abi_version() == 0, reason="this kernel has no Landlock")
def test_user_code_cannot_read_the_secret_files_the_server_uses(
    tmp_path: Path, secrets_folder: Path
) -> None:
    server = ServerProcess(
        tmp_path / "data",
        env={
            "LO_API_TOKENS_FILE": str(secrets_folder / "tokens"),
            "LO_SECRET_KEY_FILE": str(secrets_folder / "key"),
        },
    )
    for variable in ("LO_API_TOKENS", "LO_SECRET_KEY"):
        server.env.pop(variable, None)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=90) as anonymous:
            refused = anonymous.get(FUNCTION)
            assert refused.status_code == 401, refused.text
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=server.url, timeout=90, headers=auth) as client:
            body = {
                "name": "peek",
                "function": textwrap.dedent(PROBE),
                "functionParameters": {
                    "paths": {name: str(secrets_folder / name) for name in ("tokens", "key")}
                    | {"public": str(secrets_folder / "public")}
                },
            }
            created = client.post(FUNCTION, json=body)
            assert created.status_code == 201, created.text
            doc = client.get(f"{BASE}/observe/peek", params={"timeout": 60}).json()["result"]
            assert doc["status"] == "finished", doc.get("exception")
            assert doc["sandbox"]["landlock"] == landlock.abi_version()
            # the output is signed with the key of LO_SECRET_KEY_FILE, and served verified
            value = client.get(f"{FUNCTION}/peek/files/value.json")
            assert value.status_code == 200, value.text
        assert value.json() == {
            "LO_ variables": [],
            "tokens": "PermissionError",
            "key": "PermissionError",
            "public": "read",
        }
        assert not (tmp_path / "data" / ".secret-key").exists()  # the file's key was used
        assert os.stat(secrets_folder / "key").st_mode & 0o777 == 0o644
    finally:
        server.stop()
