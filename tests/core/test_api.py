"""Cross-cutting HTTP behaviour of every service: body limits, auth, error mapping."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from learning_orchestra.core.api import create_app
from learning_orchestra.core.routes import MAX_JSON_BYTES
from learning_orchestra.core.settings import Settings
from tests.conftest import BASE, assert_error


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", api_tokens="alpha, beta")
    with TestClient(create_app(settings=settings)) as client:
        yield client


def test_json_body_over_the_limit_is_413(api: TestClient) -> None:
    big = '{"datasetName": "x", "datasetURI": "http://h/a.csv", "description": "'
    body = big + "a" * (MAX_JSON_BYTES + 1) + '"}'
    response = api.post(
        f"{BASE}/dataset/csv", content=body, headers={"content-type": "application/json"}
    )
    assert assert_error(response, 413, "16 MB")["error"]["code"] == "too_large"
    assert api.get(f"{BASE}/dataset/csv/x").status_code == 404  # nothing half-written


def test_malformed_json_is_400_everywhere(api: TestClient) -> None:
    for path in ("/dataset/csv", "/observe"):
        response = api.post(
            f"{BASE}{path}", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert assert_error(response, 400, "not valid JSON")["error"]["code"] == "bad_request"


def test_description_is_not_a_reference(api: TestClient, files_server: str) -> None:
    response = api.post(
        f"{BASE}/dataset/csv",
        json={
            "datasetName": "cheap",
            "datasetURI": f"{files_server}/test.csv",
            "description": "$5 budget",
        },
    )
    assert response.status_code == 201, response.text
    metadata = api.get(f"{BASE}/dataset/csv/cheap").json()["result"][0]
    assert metadata["parents"] == [] and metadata["description"] == "$5 budget"


def test_unknown_route_and_method(api: TestClient) -> None:
    assert assert_error(api.get(f"{BASE}/nowhere"), 404, "no such route")["error"]["code"] == "http"
    assert_error(api.put(f"{BASE}/dataset/csv"), 405, "not allowed")


def test_tokens_guard_the_api_but_not_health(secured: TestClient) -> None:
    assert secured.get("/health").status_code == 200
    assert secured.get("/ready").status_code == 200
    denied = assert_error(secured.get(f"{BASE}/dataset/csv"), 401, "Bearer")
    assert denied["error"]["code"] == "unauthorized"
    wrong = secured.get(f"{BASE}/dataset/csv", headers={"Authorization": "Bearer gamma"})
    assert_error(wrong, 401, "invalid token")
    for token in ("alpha", "beta"):
        ok = secured.get(f"{BASE}/dataset/csv", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json() == {"result": []}


def test_openapi_declares_bearer_and_error_envelope(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    patch = document["paths"][f"{BASE}/dataset/csv/{{name}}"]["patch"]
    assert "201" in patch["responses"]
    schema = patch["requestBody"]["content"]["application/json"]["schema"]
    assert "required" not in schema and "datasetName" not in schema["properties"]
    error = patch["responses"]["409"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorBody"}
