"""Serving the studio: its routes, headers, tokens, the gateway, and a clean load in Chromium.

The studio's feature tests (graph, panel, re-run, ...) are in test_studio.py; these check
what core/studio.py promises: every app serves `/studio/` and its assets, with the security
headers, without a token while the API requires one, outside the OpenAPI document; the
gateway routes them; and in a real browser the page loads with no console error, no failed
request, nothing fetched from another origin, its own writes pass the edge guard, and axe-core
finds no serious accessibility violation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi.testclient import TestClient

from learning_orchestra.core.api import SERVICES, create_app
from learning_orchestra.core.studio import (
    ASSETS_PATH,
    MEDIA_TYPES,
    SECURITY_HEADERS,
    studio_directory,
)
from learning_orchestra.gateway import SHARED_SERVICE, gateway_routes
from tests.conftest import BASE
from tests.steps.rest import unique
from tests.studio.conftest import TokenServer, Watch, open_page

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request

FOLDER = studio_directory()
#: The Content-Security-Policy the studio must be served with (docs/studio.md): its own
#: origin only, no inline script or style, not framed.
POLICY = {
    "default-src": "'self'",
    "img-src": "'self' blob: data:",
    "style-src": "'self'",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
}


def studio_files() -> list[str]:
    """Every file of the studio's folder, relative to it (what the assets mount serves)."""
    return sorted(p.relative_to(FOLDER).as_posix() for p in FOLDER.rglob("*") if p.is_file())


def media_type(relative: str) -> str:
    """The type a studio file must be served with (its media type, without parameters)."""
    suffix = Path(relative).suffix.lower()
    known = {".html": "text/html", ".png": "image/png"}
    return MEDIA_TYPES.get(suffix, known.get(suffix, "")).split(";")[0]


def assert_secured(response: httpx.Response, media: str) -> None:
    """A 200 of type `media` with the studio's security headers."""
    assert response.status_code == 200, (response.request.url, response.text[:300])
    if media:
        assert response.headers["content-type"].split(";")[0] == media, response.request.url
    policy = response.headers["content-security-policy"]
    assert dict(d.strip().split(" ", 1) for d in policy.split(";")) == POLICY, policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert {k: response.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS


@pytest.fixture(scope="module")
def http(lo_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lo_server, timeout=30) as client:
        yield client


def test_the_package_holds_the_page() -> None:
    assert (FOLDER / "index.html").is_file(), f"{FOLDER}/index.html is missing"


def test_studio_redirects_to_the_page_keeping_the_prefix(http: httpx.Client) -> None:
    response = http.get("/studio")
    assert response.status_code == 307
    assert response.headers["location"] == "/studio/"
    # behind a proxy that strips a prefix (root_path), the redirect carries it
    with TestClient(create_app(["observe"]), root_path="/lo") as client:
        behind = client.get("/studio", follow_redirects=False)
    assert behind.status_code == 307
    assert behind.headers["location"] == "/lo/studio/"


def test_page_and_every_asset_carry_their_type_and_the_security_headers(
    http: httpx.Client,
) -> None:
    page = http.get("/studio/")
    assert_secured(page, "text/html")
    assert page.text == (FOLDER / "index.html").read_text(encoding="utf-8")
    files = studio_files()
    for relative in files:
        assert_secured(http.get(f"{ASSETS_PATH}/{relative}"), media_type(relative))
    # no folder listing, no file outside the folder (core/studio.py, `..` sent encoded)
    for path in (f"{ASSETS_PATH}/", f"{ASSETS_PATH}/..%2Fcore%2Fstudio.py", "/studio/nothing"):
        assert http.get(path).status_code == 404, path


def test_no_token_for_the_studio_while_the_api_requires_one(token_server: TokenServer) -> None:
    with httpx.Client(base_url=token_server.url, timeout=30) as client:
        assert client.get("/studio").status_code == 307
        assert_secured(client.get("/studio/"), "text/html")
        for relative in studio_files()[:3]:
            assert_secured(client.get(f"{ASSETS_PATH}/{relative}"), media_type(relative))
        assert client.get(f"{BASE}/steps").status_code == 401
        bearer = {"Authorization": f"Bearer {token_server.token}"}
        assert client.get(f"{BASE}/steps", headers=bearer).status_code == 200


def test_the_studio_is_not_in_the_openapi_document(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/studio")]


def test_every_service_serves_the_studio() -> None:
    for service in SERVICES:
        client = TestClient(create_app([service]))  # no lifespan: the studio needs no store
        assert_secured(client.get("/studio/"), "text/html")
        assert client.get("/studio", follow_redirects=False).status_code == 307


def test_the_gateway_routes_the_page_and_every_asset() -> None:
    routed = {route.path: service for route, service in gateway_routes() if route.method == "GET"}
    wanted = ["/studio", "/studio/", *(f"{ASSETS_PATH}/{f}" for f in studio_files())]
    assert {path: routed.get(path) for path in wanted} == dict.fromkeys(wanted, SHARED_SERVICE)


@pytest.fixture
def loaded(browser: Browser, lo_server: str) -> Iterator[tuple[Page, Watch]]:
    """The studio on the shared server in a fresh context, its feed live, and its Watch."""
    page, watch = open_page(browser, f"{lo_server}/studio/")
    yield page, watch
    page.context.close()


def test_the_page_loads_clean_and_offline(loaded: tuple[Page, Watch], lo_server: str) -> None:
    """No console error, no uncaught exception, no failed request, nothing from elsewhere."""
    _, watch = loaded
    assert (watch.console, watch.exceptions, watch.failed) == ([], [], [])
    elsewhere = [url for url in watch.requested if not url.startswith(f"{lo_server}/")]
    assert not elsewhere, f"the studio fetched from other origins: {elsewhere}"


def test_the_pages_own_writes_pass_the_edge_guard(
    loaded: tuple[Page, Watch], lo_server: str
) -> None:
    """A real Chromium sends `Origin` and `Sec-Fetch-Site: same-origin` with the page's PATCH
    and DELETE: core/edge.py lets them through to the route (here: no such step, 404)."""
    page, _ = loaded
    url = f"{lo_server}{BASE}/dataset/csv/{unique('studio_nothing')}"

    def sent(method: str) -> Callable[[Request], bool]:
        return lambda request: request.url == url and request.method == method

    with page.expect_request(sent("PATCH")) as patch, page.expect_request(sent("DELETE")) as delete:
        answers = page.evaluate(
            """async (url) => {
                const answers = [];
                for (const method of ["PATCH", "DELETE"]) {
                    const r = await fetch(url, {method, body: method === "PATCH" ? "{}" : null,
                                                headers: {"Content-Type": "application/json"}});
                    answers.push([r.status, (await r.json()).error.code]);
                }
                return answers;
            }""",
            url,
        )
    assert answers == [[404, "not_found"], [404, "not_found"]]
    for request in (patch.value, delete.value):
        headers = request.all_headers()
        assert headers.get("origin") == lo_server, headers
        assert headers.get("sec-fetch-site") == "same-origin", headers


def test_axe_finds_no_serious_violation(
    loaded: tuple[Page, Watch], axe: Callable[[Page], list[dict[str, Any]]]
) -> None:
    page, _ = loaded
    assert axe(page) == []
