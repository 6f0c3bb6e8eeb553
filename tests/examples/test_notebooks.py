"""The notebooks of examples/ run: each one is a test, executed headlessly with nbclient in a
fresh IPython kernel (this interpreter, sys.executable) against the session's real embedded
server, with LO_URL set to it and examples/ as the current directory. A cell that raises fails
the test with the cell's number, source and traceback.

A notebook doubles as its step family's end-to-end test (issue 7), so its steps must all finish;
they must be named `nb_...` (names no other test uses), and are deleted afterwards.

Notebooks are stored stripped (no outputs, no execution counts, no widget state):
`test_notebooks_are_stored_stripped` says how to strip them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from tests.conftest import BASE, ROOT, all_steps

EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(path.name for path in EXAMPLES.glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds, per cell
KERNEL = "lo-test-python"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
STRIP = (
    """.venv/bin/python -c "import nbformat as n,sys; [(nb:=n.read(p,4),"""
    """[c.update(outputs=[],execution_count=None) for c in nb.cells if c.cell_type=='code'],"""
    """nb.metadata.pop('widgets',None),n.write(nb,p)) for p in sys.argv[1:]]" examples/*.ipynb"""
)


class NotebookFailed(Exception):
    """A cell of a notebook raised, timed out, or killed its kernel."""


def kernel_manager(folder: Path) -> KernelManager:
    """A kernel manager whose only kernel spec runs ipykernel in this interpreter: a `python3`
    spec found on the machine (user or system Jupyter paths) could name another Python."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python (tests)", "language": "python"})
    )
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def run_notebook(path: Path, cwd: Path, env: dict[str, str], scratch: Path) -> None:
    """Execute every cell of `path` in order in a fresh kernel started in `cwd` with `env`;
    raise NotebookFailed naming the first cell that fails."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        km=kernel_manager(scratch),
        timeout=CELL_TIMEOUT,
        startup_timeout=60,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(cwd)}},
    )
    with client.setup_kernel(env=env):
        for index, cell in enumerate(notebook.cells):
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as error:
                # nbclient's text: the cell's source, then the traceback
                raise NotebookFailed(
                    f"{path.name}: cell {index} raised {error.ename}: {error.evalue}\n"
                    f"{ANSI.sub('', error.traceback)}"
                ) from None
            except (CellTimeoutError, DeadKernelError) as error:
                raise NotebookFailed(
                    f"{path.name}: cell {index} did not complete ({type(error).__name__}: "
                    f"{ANSI.sub('', str(error))[:2000]})\n--- cell {index} ---\n{cell.source}"
                ) from None
            if cell.cell_type == "code" and any(map(is_blank_figure, cell.outputs)):
                raise NotebookFailed(
                    f"{path.name}: cell {index} shows a matplotlib figure as text, not as an "
                    "image: the inline backend is not active (start the notebook with "
                    f"`%matplotlib inline`)\n--- cell {index} ---\n{cell.source}"
                )


def is_blank_figure(output: Any) -> bool:
    """A figure displayed as its text ("<Figure size 600x450 ...>") without the picture."""
    data = output.get("data", {})
    text = data.get("text/plain", "")
    return str(text).startswith("<Figure size") and "image/png" not in data


def kernel_env(tmp_path: Path, lo_url: str) -> dict[str, str]:
    """The kernel's environment: ours, the server's URL, a scratch IPython profile folder and
    matplotlib's inline backend (what a user's notebook shows; a CI's MPLBACKEND dropped)."""
    env = {**os.environ, "LO_URL": lo_url, "IPYTHONDIR": str(tmp_path / "ipython")}
    env.pop("MPLBACKEND", None)
    return env


@pytest.fixture
def jupyter_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Connection files and Jupyter's runtime state in a scratch folder, not the user's home."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return tmp_path


@pytest.fixture
def notebook_steps(lo_server: str) -> Iterator[None]:
    """The steps a notebook leaves on the shared server must be named `nb_...` and have
    finished; they are deleted afterwards, whatever happened."""
    with httpx.Client(base_url=lo_server, timeout=200) as client:
        before = {step["name"] for step in all_steps(client)}
        try:
            yield
            created = [step for step in all_steps(client) if step["name"] not in before]
            misnamed = [step["name"] for step in created if not step["name"].startswith("nb_")]
            assert not misnamed, f"notebook steps must be named nb_<notebook>_...: {misnamed}"
            unfinished = {}
            for step in created:
                response = client.get(f"{BASE}/observe/{step['name']}", params={"timeout": 120})
                assert response.status_code == 200, response.text
                meta = response.json()["result"]
                if meta["status"] != "finished":
                    unfinished[step["name"]] = (meta["status"], meta.get("exception"))
            assert not unfinished, f"steps the notebook left did not finish: {unfinished}"
        finally:
            leftovers = [step for step in all_steps(client) if step["name"] not in before]
            for step in reversed(leftovers):
                response = client.delete(f"{BASE}/{step['type']}/{step['name']}")
                assert response.status_code in (200, 404), response.text


@pytest.mark.e2e  # the shared server process
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(
    name: str, lo_server: str, jupyter_dirs: Path, notebook_steps: None, tmp_path: Path
) -> None:
    try:
        run_notebook(EXAMPLES / name, EXAMPLES, kernel_env(tmp_path, lo_server), tmp_path)
    except NotebookFailed as failure:
        pytest.fail(str(failure), pytrace=False)


def test_a_failing_cell_fails_the_notebook(jupyter_dirs: Path, tmp_path: Path) -> None:
    """The harness itself: cells share a kernel running in `cwd` with `env`; the first cell
    that raises stops the run, named with its source and error."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# a notebook that breaks"),
        nbformat.v4.new_code_cell(
            "import os, sys\nassert os.getcwd() == os.environ['EXPECTED_CWD'], os.getcwd()\n"
            "assert sys.executable == os.environ['EXPECTED_PYTHON'], sys.executable\n"
            "value = 41"
        ),
        nbformat.v4.new_code_cell("value += 1\nraise KeyError(f'broken {value}')"),
        nbformat.v4.new_code_cell("raise SystemExit('never reached')"),
    ]
    path = tmp_path / "broken.ipynb"
    nbformat.write(notebook, path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {
        **kernel_env(tmp_path, "http://127.0.0.1:9"),
        "EXPECTED_CWD": str(cwd),
        "EXPECTED_PYTHON": sys.executable,
    }
    with pytest.raises(NotebookFailed) as failure:
        run_notebook(path, cwd, env, tmp_path)
    message = str(failure.value)
    assert message.startswith("broken.ipynb: cell 2 raised KeyError: 'broken 42'"), message
    assert "raise KeyError(f'broken {value}')" in message, message
    assert "\x1b[" not in message and "never reached" not in message, message


def test_notebooks_are_stored_stripped() -> None:
    """Outputs in git bloat diffs and hide changes: every notebook is stored without outputs,
    execution counts or widget state."""
    assert NOTEBOOKS, f"no notebooks in {EXAMPLES}"
    assert STRIP in (EXAMPLES / "README.md").read_text(), "examples/README.md: strip command"
    dirty = []
    for name in NOTEBOOKS:
        notebook = nbformat.read(EXAMPLES / name, as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        if (
            any(cell.outputs or cell.execution_count is not None for cell in code)
            or "widgets" in notebook.metadata
        ):
            dirty.append(name)
    assert not dirty, (
        f"notebooks stored with outputs: {dirty}; strip them (examples/README.md) with\n{STRIP}"
    )
