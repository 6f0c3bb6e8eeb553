"""The generated client classes, as users and type checkers see them (no server needed).

Every family is declared once and its blocking and asyncio classes are derived from that
declaration (`learning_orchestra_client._service`). These tests hold the derived classes to
what a hand-written pair would give: the same signatures and docstrings in both, coroutines
on the asyncio side, TypeErrors that name a wrong argument, the names the original LO
client's users call, and signatures that mypy sees.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import learning_orchestra_client as lo
from learning_orchestra_client import (
    DatasetCsv,
    DatasetGeneric,
    FunctionPython,
    Observer,
    TransformDataType,
)
from tests.conftest import ROOT, free_port

#: The user's own LO scripts (issue 7, item 7), beside this repository.
SHARED_EXAMPLES = ROOT.parent / "shared" / "examples"

#: Methods of a blocking class whose asyncio twin has another name.
ASYNC_NAMES = {"close": "aclose"}


def pairs() -> list[tuple[type, type]]:
    """Every public (blocking class, asyncio twin) pair the package exports."""
    found = []
    for name in lo.__all__:
        if name.startswith("Async"):
            assert name.removeprefix("Async") in lo.__all__, f"{name} has no blocking twin"
            continue
        twin = f"Async{name}"
        if twin in lo.__all__:
            found.append((getattr(lo, name), getattr(lo, twin)))
    return found


PAIRS = pairs()


def pair_id(pair: tuple[type, type]) -> str:
    return pair[0].__name__


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    """The public callables of `cls` (its own and inherited), properties aside."""
    methods = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        value = inspect.getattr_static(cls, name)
        if isinstance(value, property):
            continue
        attribute = getattr(cls, name)
        if callable(attribute) and not isinstance(attribute, type):
            methods[name] = attribute
    return methods


def properties(cls: type) -> dict[str, property]:
    return {
        name: value
        for name in dir(cls)
        if not name.startswith("_")
        and isinstance(value := inspect.getattr_static(cls, name), property)
    }


def comparable(signature: inspect.Signature) -> list[tuple[Any, ...]]:
    """A signature with what rightly differs between twins folded away: the client type
    (``httpx.Client`` / ``httpx.AsyncClient``) and iterator kinds."""

    def fold(annotation: Any) -> Any:
        if isinstance(annotation, str):
            return annotation.replace("AsyncClient", "Client").replace("AsyncIterator", "Iterator")
        return annotation

    return [
        (p.name, p.kind, p.default, fold(p.annotation)) for p in signature.parameters.values()
    ] + [("return", fold(signature.return_annotation))]


def test_every_public_class_has_its_asyncio_twin() -> None:
    names = {cls.__name__ for pair in PAIRS for cls in pair}
    assert {"Orchestra", "Step", "DatasetCsv", "Observer", "FunctionPython"} <= names
    assert len(PAIRS) >= 15


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_twins_have_the_same_methods_signatures_and_docstrings(pair: tuple[type, type]) -> None:
    blocking, asynchronous = pair
    sync_methods, async_methods = public_methods(blocking), public_methods(asynchronous)
    assert {ASYNC_NAMES.get(n, n) for n in sync_methods} == set(async_methods)
    assert set(properties(blocking)) == set(properties(asynchronous))
    assert comparable(inspect.signature(blocking)) == comparable(inspect.signature(asynchronous))
    assert inspect.getdoc(blocking) and inspect.getdoc(asynchronous)

    for name, method in sync_methods.items():
        twin = async_methods[ASYNC_NAMES.get(name, name)]
        where = f"{blocking.__name__}.{name}"
        assert comparable(inspect.signature(method)) == comparable(inspect.signature(twin)), where
        assert inspect.getdoc(method), f"{where} has no docstring"
        assert inspect.getdoc(twin), f"{asynchronous.__name__}.{name} has no docstring"
        assert not inspect.iscoroutinefunction(method), f"{where} is a coroutine function"
        assert not inspect.isasyncgenfunction(method), where
        returns = str(inspect.signature(twin).return_annotation)
        assert (
            inspect.iscoroutinefunction(twin)
            or inspect.isasyncgenfunction(twin)
            or returns.startswith("AsyncIterator")
        ), f"{asynchronous.__name__}.{name} is neither awaitable nor an async iterator"
    for name, prop in properties(blocking).items():
        assert prop.__doc__, f"{blocking.__name__}.{name} has no docstring"
        assert properties(asynchronous)[name].__doc__, f"{asynchronous.__name__}.{name}"


def test_generated_methods_show_the_declaration_to_help() -> None:
    # read from the class, as help() does (a type checker sees the declaration there)
    method: Any = DatasetCsv.insert_dataset_sync
    assert method.__name__ == "insert_dataset_sync"
    assert method.__module__ == "learning_orchestra_client.dataset._dataset"
    assert str(inspect.signature(method)) == (
        "(self, dataset_name: 'str', url: 'str | None' = None, pretty_response: 'bool' = False,"
        " *, file: 'FileSource | None' = None, timeout: 'float | None' = None) -> 'Any'"
    )
    assert "Insert a dataset and block" in inspect.getdoc(method)  # type: ignore[operator]
    started: Any = DatasetCsv.insert_dataset_async
    assert "timeout" not in inspect.signature(started).parameters
    assert "return at once" in (started.__doc__ or "")
    steps: Any = lo.Orchestra.steps
    assert "Plan[" not in str(inspect.signature(steps))  # the result, not the plan


# --- calling with wrong arguments -------------------------------------------------------------


@pytest.fixture(scope="module")
def refused_url() -> str:
    """An address nothing listens on: a call that got past its arguments would fail fast
    with ConnectionFailed (retries=0) instead of the TypeError these tests expect."""
    return f"127.0.0.1:{free_port()}"


def instance(cls: type, url: str) -> Any:
    """An object of a public client class, to call its methods on."""
    if cls in (lo.Step, lo.AsyncStep):
        facade = lo.Orchestra if cls is lo.Step else lo.AsyncOrchestra
        orchestra = facade(url, retries=0, progress=False)
        return orchestra._step({"name": "x", "type": "dataset/csv", "status": "pending"})
    if cls in (lo.Dataset, lo.AsyncDataset):
        return cls(url, api_path="/dataset/csv", retries=0)
    return cls(url, retries=0)


def placeholders(method: Callable[..., Any]) -> dict[str, Any]:
    """Keyword values for the required parameters of `method` (never sent anywhere)."""
    return {
        p.name: None
        for p in inspect.signature(method).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def call(method: Callable[..., Any], **kwargs: Any) -> Any:
    """Call `method`, running it to the end if it is a coroutine or an async iterator."""
    result = method(**kwargs)
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    if inspect.isasyncgen(result):

        async def drain() -> list[Any]:
            return [item async for item in result]

        return asyncio.run(drain())
    return result


def calls(url: str) -> Iterator[tuple[str, Callable[..., Any]]]:
    """``(Class.method, bound method)`` for every public method of every client class."""
    for pair in PAIRS:
        for cls in pair:
            obj = instance(cls, url)
            for name in public_methods(cls):
                if name not in ("close", "aclose"):
                    yield f"{cls.__name__}.{name}", getattr(obj, name)


def test_a_wrong_keyword_raises_type_error_naming_it(refused_url: str) -> None:
    checked = 0
    for where, method in calls(refused_url):
        parameters = inspect.signature(method).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            continue  # submit(**body), rerun(**changes): any key is a body key
        with pytest.raises(TypeError, match="bogus_argument") as caught:
            call(method, **placeholders(method), bogus_argument=1)
        assert "unexpected keyword" in str(caught.value), where
        checked += 1
    assert checked > 100


def test_start_only_variants_take_no_timeout(refused_url: str) -> None:
    """LO's ``*_async`` methods return once the step is accepted: there is nothing to time."""
    started = [(where, method) for where, method in calls(refused_url) if where.endswith("_async")]
    assert len(started) >= 20
    for where, method in started:
        assert "timeout" not in inspect.signature(method).parameters, where
        with pytest.raises(TypeError, match="timeout"):
            call(method, **placeholders(method), timeout=1)
    blocking = [(w, m) for w, m in calls(refused_url) if w.endswith("_sync")]
    assert blocking and all("timeout" in inspect.signature(m).parameters for _, m in blocking)


def test_names_the_lo_examples_call_exist() -> None:
    """The calls of ../shared/examples, as written there, bind to our signatures."""
    address = "127.0.0.1:9"  # nothing is sent: the arguments are only bound
    csv, generic = DatasetCsv(address), DatasetGeneric(address)
    data_type, function = TransformDataType(address), FunctionPython(address)
    bindings: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
        (csv.delete_dataset, ("train",), {}),
        (csv.insert_dataset_async, (), {"url": "https://x/t.csv", "dataset_name": "t"}),
        (csv.wait, (), {"dataset_name": "train", "timeout": 1}),
        (generic.insert_dataset_async, (), {"url": "https://x/m", "dataset_name": "m"}),
        (generic.wait, ("mnist_dataset_autokeras",), {}),
        (data_type.update_dataset_type_async, (), {"dataset_name": "t", "types": {}}),
        (data_type.wait, (), {"dataset_name": "train", "timeout": 1}),
        (function.run_function_async, (), {"name": "f", "parameters": {}, "code": "x"}),
        (function.wait, ("f", 1), {}),
        (
            function.search_execution_content,
            (),
            {"name": "f", "limit": 1, "skip": 1, "pretty_response": True},
        ),
        (Observer(address).wait, ("f", 1), {}),
    ]
    for method, args, kwargs in bindings:
        inspect.signature(method).bind(*args, **kwargs)


def lo_calls(script: Path) -> Iterator[tuple[str, str, str, ast.Call]]:
    """``(module, class, method, call)`` for each ``obj.method(...)`` of a script where
    ``obj = Class(...)`` and ``Class`` is imported from learning_orchestra_client."""
    tree = ast.parse(script.read_text())
    imported: dict[str, tuple[str, str]] = {}
    objects: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "learning_orchestra_client"
        ):
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module or "", alias.name)
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id in imported
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    objects[target.id] = imported[node.value.func.id]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in objects
        ):
            module, cls = objects[node.func.value.id]
            yield module, cls, node.func.attr, node


def test_every_call_of_the_lo_examples_binds_where_its_family_exists() -> None:
    """Each call the user's scripts make on a client class whose module exists already
    names a method we have, with arguments its signature accepts (later families, e.g.
    ``model.autokeras``, are checked as soon as their module appears)."""
    scripts = sorted(SHARED_EXAMPLES.glob("*.py"))
    if not scripts:
        pytest.skip(f"no LO example scripts in {SHARED_EXAMPLES}")
    checked = set()
    for script in scripts:
        for module, cls_name, method_name, node in lo_calls(script):
            try:
                cls = getattr(importlib.import_module(module), cls_name)
            except (ImportError, AttributeError):
                continue  # a family a later issue adds
            where = f"{script.name}:{node.lineno} {cls_name}.{method_name}"
            method = getattr(cls, method_name, None)
            assert method is not None, f"{where}: no such method"
            args = [None] * len(node.args)
            kwargs = {k.arg: None for k in node.keywords if k.arg is not None}
            try:
                inspect.signature(method).bind(None, *args, **kwargs)
            except TypeError as exc:
                raise AssertionError(f"{where}: {exc}") from None
            checked.add(f"{cls_name}.{method_name}")
    assert {"DatasetCsv.wait", "FunctionPython.run_function_async"} <= checked


# --- type checkers -----------------------------------------------------------------------------

BAD = """\
from learning_orchestra_client import AsyncDatasetCsv, DatasetCsv, Orchestra

DatasetCsv("x").wait(bogus=1)
count: int = DatasetCsv("x").wait("titanic")


async def main() -> None:
    AsyncDatasetCsv("x").wait("titanic")["status"]
    Orchestra("x").wait_all("a", deadline=3)
"""

GOOD = """\
from typing import Any

from learning_orchestra_client import AsyncDatasetCsv, DatasetCsv, FunctionPython

metadata: dict[str, Any] = DatasetCsv("x").wait(dataset_name="train", timeout=1)
DatasetCsv("x").insert_dataset_async(url="https://x/train.csv", dataset_name="train")
FunctionPython("x").run_function_async(name="f", parameters={}, code="response = 1")


async def main() -> None:
    done: dict[str, Any] = await AsyncDatasetCsv("x").wait("titanic")
"""


def test_mypy_sees_the_generated_signatures(tmp_path: Path) -> None:
    """mypy (a dev dependency: it must be installed) types each generated method from its
    declaration: a wrong keyword, a wrong result type and a missing ``await`` are errors,
    and LO-style calls are clean."""
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "good.py").write_text(GOOD)
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
    command += ["--cache-dir", str(tmp_path / "cache"), "--no-error-summary", "bad.py", "good.py"]
    env = {key: value for key, value in os.environ.items() if key != "MYPYPATH"}
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert "No module named mypy" not in done.stderr, done.stderr
    errors = done.stdout.splitlines()
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert not [line for line in errors if line.startswith("good.py")], errors
    by_line: dict[int, str] = {}
    for line in errors:
        if line.startswith("bad.py:"):
            number = int(line.split(":")[1])
            by_line[number] = by_line.get(number, "") + line
    assert set(by_line) == {3, 4, 8, 9}, errors
    assert 'Unexpected keyword argument "bogus"' in by_line[3]
    assert 'has type "dict[str, Any]", variable has type "int"' in by_line[4]
    assert 'Value of type "Coroutine[Any, Any, dict[str, Any]]" is not indexable' in by_line[8]
    assert 'Unexpected keyword argument "deadline"' in by_line[9]
