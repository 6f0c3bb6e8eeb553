"""The checked-in gateway/krakend.json: up to date, KrakenD's format, and the apps' routes.

It is generated from the step services' apps (`learning-orchestra gateway-config`), as
openapi.yaml is from the embedded app. These tests hold the three together: the routes of the
KrakenD file, of openapi.yaml and of the apps are the same (method and path template); every
endpoint goes to the service that serves its route and forwards what the route reads; the
file passes gateway/krakend.schema.json, our own schema of the KrakenD subset it uses.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount

from learning_orchestra import steps
from learning_orchestra.cli import main
from learning_orchestra.core.api import SERVICES, _declares_service, create_app
from learning_orchestra.core.routes import MAX_JSON_BYTES, UPLOAD_SLACK
from learning_orchestra.core.settings import BASE_PATH, Settings
from learning_orchestra.gateway import SHARED_SERVICE, app_path, gateway_routes
from learning_orchestra.steps.observe import MAX_TIMEOUT
from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "gateway" / "krakend.json"
SCHEMA = ROOT / "gateway" / "krakend.schema.json"
REGENERATE = "regenerate it: .venv/bin/learning-orchestra gateway-config -o gateway/krakend.json"
#: What every endpoint forwards, whatever its route (docs/api.md, "Through the gateway").
ALWAYS_FORWARDED = {"authorization", "content-type", "origin", "sec-fetch-site"}
#: The query parameters of the contract that some route takes (`force`: not implemented yet).
CONTRACT_QUERY = {"skip", "limit", "query", "timeout", "since", "format", "lineage", "status"}
HOST = re.compile(r"^http://lo-(?P<service>[a-z_]+):8080$")


Key = tuple[str, str]  # (METHOD, path template)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The checked-in file (test_checked_in_file_is_what_the_command_writes: up to date)."""
    assert CHECKED_IN.exists(), f"gateway/krakend.json is missing: {REGENERATE}"
    loaded: dict[str, Any] = json.loads(CHECKED_IN.read_text())
    return loaded


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.load(
        (ROOT / "openapi.yaml").read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )
    return document


def _served(app: Any) -> dict[Key, bool]:
    """What `app` serves: (method, path template) -> whether OpenAPI documents it. A static
    mount serves each of its files; `{name:path}` is written `{name}`, as OpenAPI does."""
    served: dict[Key, bool] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            files: Any = route.app  # StaticFiles: the docs' assets
            for folder in map(Path, files.all_directories):
                for file in folder.rglob("*"):
                    if file.is_file():
                        served["GET", f"{route.path}/{file.relative_to(folder).as_posix()}"] = False
            continue
        documented = isinstance(route, APIRoute) and route.include_in_schema
        for method in set(context.methods or ()) - {"HEAD", "OPTIONS"}:
            served[method, str(context.path_format)] = documented
    return served


@pytest.fixture(scope="module")
def services() -> dict[str, dict[Key, bool]]:
    """What each step service's app (a Swarm service's) serves."""
    return {service: _served(create_app([service])) for service in SERVICES}


def _endpoints(config: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    """The endpoints by (method, the app's path template), those of a `{name:path}` parameter's
    extra segments folded into one (the last written)."""
    return {(e["method"], app_path(e["endpoint"])): e for e in config["endpoints"]}


def _difference(name: str, found: set[Key], expected: set[Key], where: str) -> str:
    extra = sorted(f"{m} {p}" for m, p in found - expected)
    missing = sorted(f"{m} {p}" for m, p in expected - found)
    return f"{name}: not in {where}: {extra[:10]}; missing: {missing[:10]}"


def test_checked_in_file_is_what_the_command_writes(tmp_path: Path, config: dict[str, Any]) -> None:
    written = tmp_path / "krakend.json"
    assert main(["gateway-config", "-o", str(written)]) == 0
    fresh = json.loads(written.read_text())
    old, new = _endpoints(config), _endpoints(fresh)
    assert set(old) == set(new), _difference("gateway/krakend.json", set(old), set(new), "the apps")
    changed = sorted(f"{m} {p}" for (m, p), e in new.items() if old[m, p] != e)
    assert not changed, f"endpoints out of date: {changed[:10]}: {REGENERATE}"
    assert config == fresh, f"gateway/krakend.json is out of date: {REGENERATE}"
    assert CHECKED_IN.read_text() == written.read_text(), f"formatting differs: {REGENERATE}"


def test_the_file_passes_our_schema_of_krakend(config: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(config)
    ]
    assert not errors, errors[:10]


#: Endpoints KrakenD would refuse (or misread), each from a valid one: the schema must refuse them.
BROKEN: dict[str, Any] = {
    "methods are upper case": lambda e: {**e, "method": "get"},
    "a duration has a unit": lambda e: {**e, "timeout": "60"},
    "a misspelt key": lambda e: {**e, "input_header": e["input_headers"]},
    "no colon in a path": lambda e: {**e, "endpoint": "/api/{name}:cancel"},
    "a no-op endpoint has one backend": lambda e: {**e, "backend": e["backend"] * 2},
    "its backend is no-op too": lambda e: {
        **e,
        "backend": [{**e["backend"][0], "encoding": "json"}],
    },
    "a host has no path": lambda e: {**e, "backend": [{**e["backend"][0], "host": ["http://a/b"]}]},
}


@pytest.mark.parametrize("refused", BROKEN)
def test_the_schema_refuses_what_krakend_does_not_take(
    config: dict[str, Any], refused: str
) -> None:
    endpoint = config["endpoints"][0]
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    assert validator.is_valid({**config, "endpoints": [endpoint]})
    assert not validator.is_valid({**config, "endpoints": [BROKEN[refused](endpoint)]}), refused


def test_routes_of_the_gateway_openapi_and_apps_are_the_same(
    config: dict[str, Any], openapi: dict[str, Any], services: dict[str, dict[Key, bool]]
) -> None:
    apps = {key: documented for served in services.values() for key, documented in served.items()}
    gateway = set(_endpoints(config))
    documented = {(m.upper(), p) for p, operations in openapi["paths"].items() for m in operations}
    assert gateway == set(apps), _difference("gateway/krakend.json", gateway, set(apps), "the apps")
    expected = {key for key, is_documented in apps.items() if is_documented}
    assert documented == expected, _difference("openapi.yaml", documented, expected, "the apps")
    # what the gateway adds to the documented routes: the docs, their assets, health
    undocumented = {p for _, p in gateway - documented}
    assert {"/openapi.json", "/docs", "/redoc", "/"} <= undocumented
    assert any(p.startswith("/docs/assets/") and p.endswith(".js") for p in undocumented)
    assert {("GET", "/health"), ("GET", "/ready")} <= gateway


def test_every_endpoint_goes_to_the_service_that_serves_its_route(
    config: dict[str, Any], services: dict[str, dict[Key, bool]]
) -> None:
    everywhere = set.intersection(*(set(served) for served in services.values()))
    for (method, path), endpoint in _endpoints(config).items():
        (host,) = endpoint["backend"][0]["host"]
        match = HOST.match(host)
        assert match, f"{method} {path}: host {host!r} is not a step service's"
        service = match["service"]
        if (method, path) in everywhere:
            assert service == SHARED_SERVICE, f"{method} {path}: every service serves it"
        else:
            owners = [s for s, served in services.items() if (method, path) in served]
            assert owners == [service], f"{method} {path} goes to {service}, served by {owners}"


def test_every_endpoint_passes_requests_and_answers_through_untouched(
    config: dict[str, Any],
) -> None:
    for endpoint in config["endpoints"]:
        where = f"{endpoint['method']} {endpoint['endpoint']}"
        assert endpoint["output_encoding"] == "no-op", where
        (backend,) = endpoint["backend"]
        assert backend["encoding"] == "no-op", where
        assert backend["url_pattern"] == endpoint["endpoint"], where
        assert backend["method"] == endpoint["method"], where
        headers = {h.lower() for h in endpoint["input_headers"]}
        assert headers >= ALWAYS_FORWARDED, f"{where} forwards only {sorted(headers)}"


def test_every_endpoint_forwards_the_parameters_its_route_takes(
    config: dict[str, Any], openapi: dict[str, Any]
) -> None:
    endpoints = _endpoints(config)
    forwarded: set[str] = set()
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            endpoint = endpoints[method.upper(), path]
            parameters = defaultdict(set)
            for parameter in operation.get("parameters", []):
                parameters[parameter["in"]].add(parameter["name"])
            where = f"{method.upper()} {path}"
            assert set(endpoint["input_query_strings"]) == parameters["query"], where
            headers = {h.lower() for h in endpoint["input_headers"]}
            assert {h.lower() for h in parameters["header"]} <= headers, where
            answers = operation.get("responses", {}).values()
            if any("text/event-stream" in (a.get("content") or {}) for a in answers):
                assert {"accept", "last-event-id"} <= headers, f"{where}: Server-Sent Events"
            forwarded |= parameters["query"]
    assert forwarded >= CONTRACT_QUERY


def test_the_gateway_waits_longer_than_the_longest_long_poll(config: dict[str, Any]) -> None:
    def seconds(duration: str) -> float:
        number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)", duration).groups()  # type: ignore[union-attr]
        return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]

    timeout = seconds(config["timeout"])
    assert timeout > MAX_TIMEOUT
    assert seconds(config["read_timeout"]) >= timeout
    assert seconds(config["write_timeout"]) > timeout  # the gateway's own 500 still gets out
    assert all(seconds(e["timeout"]) > MAX_TIMEOUT for e in config["endpoints"])


def test_the_gateway_takes_the_largest_body_a_service_takes(config: dict[str, Any]) -> None:
    upload = Settings.model_fields["max_upload_mb"].default * 2**20 + UPLOAD_SLACK
    assert config["extra_config"]["router"]["max_payload"] == max(upload, MAX_JSON_BYTES)


def test_the_gateway_answers_unknown_routes_as_the_services_do(
    config: dict[str, Any], lo_server: str
) -> None:
    bodies = config["extra_config"]["router"]["error_body"]
    unknown = httpx.get(f"{lo_server}{BASE_PATH}/no/such/route", timeout=30)
    assert unknown.status_code == 404
    assert unknown.json() == bodies["404"]
    wrong_method = httpx.put(f"{lo_server}/health", timeout=30)
    assert wrong_method.status_code == 405
    assert wrong_method.json() == bodies["405"]


def test_krakend_can_build_its_router_from_the_paths(config: dict[str, Any]) -> None:
    """KrakenD's router (gin) refuses two different variable names at one place of a path
    (`/steps/{name}` beside `/steps/{id}/runs`), and a variable twice in one path."""
    variables: dict[str, set[str]] = defaultdict(set)
    for endpoint in config["endpoints"]:
        segments = endpoint["endpoint"].split("/")
        names = [s for s in segments if s.startswith("{")]
        assert len(names) == len(set(names)), endpoint["endpoint"]
        for i, segment in enumerate(segments):
            if segment.startswith("{"):
                variables["/".join(segments[:i])].add(segment)
    clashes = {prefix: names for prefix, names in variables.items() if len(names) > 1}
    assert not clashes


def test_services_are_the_step_modules_that_declare_routes() -> None:
    """SERVICES (what `serve --step` takes and the gateway routes) is found by reading the
    modules of steps/; importing each says the same: those declaring STEP_TYPES or ROUTERS."""
    declaring = []
    for module in pkgutil.iter_modules(steps.__path__):
        imported = importlib.import_module(f"{steps.__name__}.{module.name}")
        if hasattr(imported, "STEP_TYPES") or hasattr(imported, "ROUTERS"):
            declaring.append(module.name)
    assert sorted(SERVICES) == sorted(declaring)
    assert set(SERVICES) >= {
        *("dataset", "transform", "explore", "model", "train", "tune", "evaluate", "predict"),
        *("builder", "function", "observe"),
    }  # the step services of docs/api.md


def test_a_module_declares_a_service_by_assigning_its_routes(tmp_path: Path) -> None:
    sources = {
        "types.py": "from x import t\nSTEP_TYPES = [t]\n",
        "routers.py": "ROUTERS: list[object] = []\n",
        "helper.py": "import pyarrow\n\ndef f() -> None:\n    STEP_TYPES = 1\n",
        "mentions.py": "'''STEP_TYPES'''\nfrom y import STEP_TYPES\n",
    }
    found = set()
    for name, text in sources.items():
        (tmp_path / name).write_text(text)
        ast.parse(text)  # valid Python, every one
        if _declares_service(tmp_path / name):
            found.add(name)
    assert found == {"types.py", "routers.py"}


# -- a heavy tool split off into a service of its own (`--split`, `serve --tool`) ---------------

SPLIT_HOST = re.compile(r"^http://lo-(?P<service>[a-z_]+(-[a-z_]+)?):8080$")


@pytest.fixture(scope="module")
def split_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    written = tmp_path_factory.mktemp("split") / "krakend.json"
    assert main(["gateway-config", "--split", "train/pycaret", "-o", str(written)]) == 0
    loaded: dict[str, Any] = json.loads(written.read_text())
    return loaded


def test_a_split_tool_goes_to_its_own_service_and_nothing_else_moves(
    config: dict[str, Any], split_config: dict[str, Any]
) -> None:
    whole, split = _endpoints(config), _endpoints(split_config)
    assert set(split) == set(whole)
    moved = {key for key in split if split[key] != whole[key]}
    assert moved == {key for key in whole if key[1].startswith(f"{BASE_PATH}/train/pycaret")}
    assert moved, "no train/pycaret route"
    for key in moved:
        assert split[key]["backend"][0]["host"] == ["http://lo-train-pycaret:8080"], key
        assert whole[key]["backend"][0]["host"] == ["http://lo-train:8080"], key
        # only the host differs: the same parameters, headers, encodings and timeouts
        rehosted = {**split[key], "backend": [{**split[key]["backend"][0], "host": ["x"]}]}
        assert rehosted == {**whole[key], "backend": [{**whole[key]["backend"][0], "host": ["x"]}]}
    errors = list(
        jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).iter_errors(split_config)
    )
    assert not errors, errors[:3]
    assert "--split train/pycaret" in split_config["@comment"]


def test_the_split_services_together_serve_exactly_the_step_s_routes(
    split_config: dict[str, Any], services: dict[str, dict[Key, bool]]
) -> None:
    pycaret = _served(create_app(["train"], tools=["pycaret"]))
    others = _served(create_app(["train"], tools=["scikitlearn", "tensorflow", "autokeras"]))
    assert set(pycaret) | set(others) == set(services["train"])
    shared = set.intersection(*(set(served) for served in services.values()))
    assert set(pycaret) & set(others) == shared  # /health, /docs, ...: nothing of train's
    for (method, path), endpoint in _endpoints(split_config).items():
        match = SPLIT_HOST.match(endpoint["backend"][0]["host"][0])
        assert match, endpoint["backend"][0]["host"]
        service = match["service"]
        if (method, path) in shared:
            assert service == SHARED_SERVICE
        elif service == "train-pycaret":
            assert (method, path) in pycaret
        elif service == "train":
            assert (method, path) in others
        else:
            assert (method, path) in services[service]


def test_routes_of_no_tool_stay_with_the_step_s_other_tools() -> None:
    """transform/dataType (a router of the transform service, no step type's tool) is served
    by every app of transform: the gateway sends it to lo-transform, which keeps the rest."""
    table = gateway_routes(splits=["transform/projection", "transform/projection"])
    hosts = {(route.method, route.path): service for route, service in table}
    assert hosts["PATCH", f"{BASE_PATH}/transform/dataType"] == "transform"
    assert hosts["POST", f"{BASE_PATH}/transform/projection"] == "transform-projection"
    assert hosts["POST", f"{BASE_PATH}/transform/scikitlearn"] == "transform"


def test_a_tool_of_no_step_type_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway-config", "--split", "train/nope"]) == 2
    assert "its tools: scikitlearn, tensorflow, pycaret, autokeras" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--step", "train", "--tool", "pycaret,nope"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "argument --tool: 'nope': not a tool of step service 'train'" in error
    assert "its tools: scikitlearn, tensorflow, pycaret, autokeras" in error
    with pytest.raises(SystemExit):
        main(["serve", "--tool", "pycaret"])
    assert "give --step too" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not a tool of step service 'train'"):
        create_app(["train"], tools=["csv"])


def test_a_server_of_one_tool_serves_that_tool_only(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")
    server.start("--step", "train", "--tool", "pycaret")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/health").json() == {
                "result": "ok",
                "services": ["train"],
                "tools": ["pycaret"],
            }
            assert client.get(f"{BASE_PATH}/train/pycaret").status_code == 200
            missing = client.get(f"{BASE_PATH}/train/scikitlearn")
            assert missing.status_code == 404, missing.text
            assert missing.json()["result"] == "no such route: check the URL"
            assert client.get(f"{BASE_PATH}/model/pycaret").status_code == 404
    finally:
        server.stop()
