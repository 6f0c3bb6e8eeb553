"""The checked-in openapi.yaml: up to date, valid OpenAPI, and complete.

`openapi.yaml` is generated from the embedded app (every service), so it must equal what the
app generates now, pass the OpenAPI spec validator, and contain every route that the app of
each single step service serves (a Swarm service runs `create_app([service])`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.routing import APIRoute
from openapi_spec_validator import validate

from learning_orchestra.core.api import SERVICES, create_app
from learning_orchestra.core.openapi import openapi_document, openapi_yaml

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # FastAPI before lazy inclusion: app.routes is flat already

    def iter_route_contexts(routes: Any) -> Any:  # type: ignore[misc]
        return iter(routes)


ROOT = Path(__file__).resolve().parent.parent
CHECKED_IN = ROOT / "openapi.yaml"
REGENERATE = "regenerate it: .venv/bin/learning-orchestra openapi -o openapi.yaml"


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    """The document generated from the embedded app, as openapi.yaml would hold it."""
    document: dict[str, Any] = yaml.safe_load(openapi_yaml())
    return document


def _diff(old: Any, new: Any, where: str = "") -> list[str]:
    """Human-readable differences between two parsed documents (first few only)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in [*old, *(k for k in new if k not in old)]:
            here = f"{where}[{key!r}]"
            if key not in new:
                found.append(f"{here}: only in openapi.yaml")
            elif key not in old:
                found.append(f"{here}: missing from openapi.yaml")
            else:
                found += _diff(old[key], new[key], here)
        return found
    return [] if old == new else [f"{where or 'the document'}: differs"]


def test_checked_in_document_is_up_to_date(generated: dict[str, Any]) -> None:
    assert CHECKED_IN.exists(), f"openapi.yaml is missing: {REGENERATE}"
    checked_in = yaml.safe_load(CHECKED_IN.read_text())
    differences = _diff(checked_in, generated)
    assert checked_in == generated, (
        "openapi.yaml is out of date with the app ("
        + "; ".join(differences[:10])
        + (f"; and {len(differences) - 10} more" if len(differences) > 10 else "")
        + f"): {REGENERATE}"
    )


def test_yaml_round_trip_is_lossless() -> None:
    """What the file holds is exactly the app's document (no YAML-induced changes)."""
    assert yaml.safe_load(openapi_yaml()) == openapi_document()


def test_document_is_valid_openapi(generated: dict[str, Any]) -> None:
    validate(generated)


def _operations(app: Any) -> set[tuple[str, str]]:
    """(path, method) of every documented operation an app serves (paths as OpenAPI writes
    them: `{filename}` for a route's `{filename:path}`)."""
    return {
        (getattr(route, "path_format", route.path), method.lower())
        for route in iter_route_contexts(app.routes)
        if isinstance(getattr(route, "original_route", route), APIRoute) and route.include_in_schema
        for method in route.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_of_a_single_service_is_documented(
    service: str, generated: dict[str, Any]
) -> None:
    app = create_app([service])
    operations = _operations(app)
    assert any(path.startswith("/api/learningOrchestra/v1/") for path, _ in operations), (
        f"the {service} app serves no route under the base path"
    )
    single = app.openapi()["paths"]
    paths = generated["paths"]
    missing = sorted(f"{m.upper()} {p}" for p, m in operations if m not in paths.get(p, {}))
    assert not missing, f"routes of the {service} service missing from openapi.yaml: {missing}"
    for path, method in operations:
        # The same operation: a service must not answer differently alone than embedded.
        assert paths[path][method] == single[path][method], f"{method.upper()} {path} differs"


def test_the_embedded_app_serves_nothing_more_than_the_services(
    generated: dict[str, Any],
) -> None:
    served = set().union(*(_operations(create_app([s])) for s in SERVICES))
    documented = {(p, m) for p, ops in generated["paths"].items() for m in ops}
    assert documented == served


def test_every_post_body_has_an_example_that_its_model_accepts(generated: dict[str, Any]) -> None:
    """Swagger UI's "Try it out" starts from the request example (issue 7): each must exist
    and be a body the route's request model accepts."""
    from pydantic import BaseModel

    from learning_orchestra.core.api import service_module
    from learning_orchestra.core.settings import BASE_PATH
    from learning_orchestra.steps.observe import ObserveRequest

    models: dict[str, type[BaseModel]] = {f"{BASE_PATH}/observe": ObserveRequest}
    for service in SERVICES:
        for step_type in getattr(service_module(service), "STEP_TYPES", []):
            models[BASE_PATH + step_type.path] = step_type.request
    checked = 0
    for path, operations in generated["paths"].items():
        body = operations.get("post", {}).get("requestBody")
        if body is None:
            continue  # e.g. .../cancel takes no body
        media = body["content"]["application/json"]
        examples = [media["example"]] if "example" in media else []
        examples += [e["value"] for e in media.get("examples", {}).values()]
        assert examples, f"POST {path} has no request example"
        assert path in models, f"POST {path}: which request model? add it to this test"
        for example in examples:
            models[path].model_validate(example)  # raises, naming the field, if invalid
            checked += 1
    assert checked >= len(models)


def test_a_single_service_documents_the_whole_api_the_gateway_presents(
    generated: dict[str, Any],
) -> None:
    # The gateway sends /openapi.json to one service (gateway/krakend.json): its Swagger UI
    # must show every route, not only that service's.
    assert create_app(["observe"]).openapi()["paths"].keys() == generated["paths"].keys()
