"""The client is its own distribution: `pip install ./client` installs httpx and nothing of the
server, and the server's distribution no longer carries the client (issue 7).

The wheels are built for real (pip and setuptools, offline: no build isolation, no index) from
copies of the sources, so the checkout gets no build/ folders.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "client"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")


def build_wheel(project: Path, out: Path) -> Path:
    """Build `project`'s wheel into `out` with pip, offline; return its path."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(out),
            str(project),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    return wheel


def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(name).decode())


def members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


@pytest.fixture(scope="module")
def client_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("client-wheel")
    shutil.copytree(CLIENT, work / "client", ignore=IGNORED)
    return build_wheel(work / "client", work / "dist")


@pytest.fixture(scope="module")
def server_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("server-wheel")
    project = work / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    # client/ too: a packages.find that reached into it again would show in the wheel.
    for folder in ("services", "client"):
        shutil.copytree(ROOT / folder, project / folder, ignore=IGNORED)
    return build_wheel(project, work / "dist")


def test_client_wheel_requires_httpx_only(client_wheel: Path) -> None:
    meta = metadata(client_wheel)
    assert (meta["Name"], meta["Version"]) == ("learning-orchestra-client", "3.0.0")
    assert meta["License-Expression"] == "MIT"
    requires = meta.get_all("Requires-Dist") or []
    plain = [r for r in requires if ";" not in r]
    assert [r.split(">")[0].split("=")[0] for r in plain] == ["httpx"], requires
    extra = sorted(r.split(";")[0].split(">")[0] for r in requires if ";" in r)
    assert extra == ["numpy", "pandas", "pyarrow", "tqdm"], requires
    assert all(r.endswith('; extra == "notebook"') for r in requires if ";" in r), requires
    assert meta.get_all("Provides-Extra") == ["notebook"]


def test_client_wheel_holds_the_client_package_only(client_wheel: Path) -> None:
    files = members(client_wheel)
    package = [f for f in files if not f.startswith("learning_orchestra_client-3.0.0.dist-info/")]
    assert all(f.startswith("learning_orchestra_client/") for f in package), package
    assert "learning_orchestra_client/py.typed" in package
    # Every module of client/ made it (subpackages found), and nothing else did.
    sources = {
        p.relative_to(CLIENT).as_posix()
        for p in (CLIENT / "learning_orchestra_client").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert sources == {f for f in package if f.endswith(".py")}


def test_server_wheel_depends_on_the_client_instead_of_carrying_it(server_wheel: Path) -> None:
    files = members(server_wheel)
    assert "learning_orchestra/__init__.py" in files
    assert not [f for f in files if f.startswith("learning_orchestra_client")], files
    requires = metadata(server_wheel).get_all("Requires-Dist") or []
    assert "learning-orchestra-client[notebook]>=3" in requires, requires


def test_installed_client_is_this_checkout() -> None:
    """PyPI has an unrelated-version `learning-orchestra-client` (the original LO's): an install
    of the root project without `-e ./client` in the same pip command pulls that one."""
    distribution = importlib.metadata.distribution("learning-orchestra-client")
    assert distribution.version == "3.0.0"
    spec = importlib.util.find_spec("learning_orchestra_client")
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin).resolve().is_relative_to(CLIENT.resolve()), (
        f"learning_orchestra_client is imported from {spec.origin}, not {CLIENT}: "
        "reinstall with `pip install -c constraints.txt -e ./client -e '.[dev]'` (one command)"
    )
