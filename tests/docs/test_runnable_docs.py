"""The documentation runs: every ```python block of docs/client.md and every ```sh example of
docs/api.md (and README.md's "Try it"), each document's blocks in order, against the
session's real embedded server.

- docs/client.md: the blocks share one namespace, as cells of a notebook do; the docs'
  addresses (`"http://34.66.75.31"`, `"localhost:8080"`) become the test server's URL.
- docs/api.md, README.md: each block with a `curl` runs under `bash -euo pipefail` with `$LO`
  set to the server's base URL, the docs' `http://localhost:8080` (or 127.0.0.1) made the
  server's and every `curl` made `curl -fsS`, so an HTTP error fails the block.
- Both run in a scratch folder holding `examples` (a link to the repository's), so the docs'
  `examples/data/...` uploads work and the files they write (`pca.png`) land outside the tree.
- A block preceded by `<!-- norun: reason -->` is skipped (docs/development.md).

Afterwards every step the document created must have finished (those the document makes
fail on purpose excepted), and all of them are deleted so the shared server stays clean.
"""

from __future__ import annotations

import os
import re
import subprocess
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BASE, ROOT, all_steps

NORUN = re.compile(r"^<!--\s*norun:\s*\S.*-->\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")  # only fences at column 0: nested ones are in lists
ADDRESSES = ('"http://34.66.75.31"', '"localhost:8080"')
SHELL_ADDRESSES = ("http://localhost:8080", "http://127.0.0.1:8080")
CURL = re.compile(r"(?<![\w./-])curl(?= )")
TERMINAL = {"finished", "failed", "cancelled"}


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, the file line of its opening fence, its source."""

    line: int
    language: str
    source: str
    norun: bool


def code_blocks(path: Path, languages: set[str]) -> list[Block]:
    """The blocks of `path` in `languages`, in document order."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        assert end < len(lines), f"{path.name}:{index + 1}: unclosed code block"
        if match.group(1) in languages:
            before = [line for line in lines[:index] if line.strip()]
            norun = bool(before) and bool(NORUN.match(before[-1]))
            found.append(
                Block(index + 1, match.group(1), "\n".join(lines[index + 1 : end]) + "\n", norun)
            )
        index = end + 1
    return found


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A scratch current directory where `examples/data/...` resolves to the repository's."""
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(previous)


@pytest.fixture
def new_steps(lo_server: str) -> Iterator[list[str]]:
    """Checks that the steps the test creates on the shared server all end as they should,
    then deletes them. The test fills in the names it expects to fail."""
    expected_failures: list[str] = []
    with httpx.Client(base_url=lo_server, timeout=200) as client:
        before = {step["name"] for step in all_steps(client)}
        created: list[dict[str, Any]] = []
        try:
            yield expected_failures
            created = [step for step in all_steps(client) if step["name"] not in before]
            ended = {}
            for step in created:
                response = client.get(f"{BASE}/observe/{step['name']}", params={"timeout": 180})
                assert response.status_code == 200, response.text
                ended[step["name"]] = response.json()["result"]
            wrong = {
                name: (meta["status"], meta.get("exception"))
                for name, meta in ended.items()
                if (meta["status"] == "failed") != (name in expected_failures)
                or meta["status"] not in {"finished", "failed"}
            }
            assert not wrong, f"steps the docs created ended unexpectedly: {wrong}"
        finally:
            if not created:
                created = [step for step in all_steps(client) if step["name"] not in before]
            for step in reversed(created):
                response = client.delete(f"{BASE}/{step['type']}/{step['name']}")
                assert response.status_code in (200, 404), response.text


@pytest.mark.e2e  # the shared server process
def test_client_md_python_blocks_run_in_order(
    lo_server: str, workdir: Path, new_steps: list[str]
) -> None:
    # the cast of 'Sex' to number fails on purpose (and leaves the table failed), as does
    # the function step `broken`
    new_steps += ["titanic_kept", "broken"]
    path = ROOT / "docs" / "client.md"
    blocks = code_blocks(path, {"python"})
    assert len(blocks) > 20, blocks
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for block in blocks:
        if block.norun:
            continue
        source = block.source
        for address in ADDRESSES:
            source = source.replace(address, f'"{lo_server}"')
        # leading newlines: tracebacks name the line of docs/client.md itself
        code = compile("\n" * block.line + source, str(path), "exec")
        try:
            exec(code, namespace)
        except Exception:
            pytest.fail(
                f"docs/client.md: the python block at line {block.line} failed:\n"
                f"{block.source}\n{traceback.format_exc()}",
                pytrace=False,
            )


@pytest.mark.e2e  # the shared server process
@pytest.mark.parametrize(("document", "least"), [("docs/api.md", 10), ("README.md", 0)])
def test_curl_examples_run_in_order(
    lo_server: str, workdir: Path, new_steps: list[str], document: str, least: int
) -> None:
    path = ROOT / document
    blocks = [block for block in code_blocks(path, {"sh", "bash"}) if "curl" in block.source]
    assert len(blocks) > least, blocks
    env = {**os.environ, "LO": f"{lo_server}{BASE}"}
    for block in blocks:
        if block.norun:
            continue
        script = CURL.sub("curl -fsS", block.source)
        for address in SHELL_ADDRESSES:
            script = script.replace(address, lo_server)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            pytest.fail(
                f"{document}: the {block.language} block at line {block.line} failed "
                f"(exit {result.returncode}):\n{block.source}\n"
                f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}",
                pytrace=False,
            )


def test_norun_marker_and_fences_are_parsed(tmp_path: Path) -> None:
    """The extraction itself: languages, line numbers, the marker, nested fences left alone."""
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```python\nx = 1\n```\n\n<!-- norun: needs internet -->\n"
        "```python\nfetch()\n```\n- item\n\n  ```python\n  nested()\n  ```\n"
        "```sh\ncurl $LO/x\n```\n"
    )
    blocks = code_blocks(page, {"python"})
    assert [(b.line, b.source, b.norun) for b in blocks] == [
        (3, "x = 1\n", False),
        (8, "fetch()\n", True),
    ]
    assert CURL.sub("curl -fsS", 'curl -o a.png "$LO/x" && curl -F f=@b.curl $LO') == (
        'curl -fsS -o a.png "$LO/x" && curl -fsS -F f=@b.curl $LO'
    )
