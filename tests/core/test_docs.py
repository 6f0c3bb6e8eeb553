"""The API docs pages work offline: `/docs` (Swagger UI) and `/redoc` reference only URLs of
the app itself, each of which answers with its asset; `/` redirects to `/docs`; `serve` logs
where the API, the docs and the data are.

In-process apps (no lifespan: the docs need no store) for both the all-in-one app and a
single-service one, plus one real `learning-orchestra serve` reached as a browser would.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from learning_orchestra.core.api import create_app
from learning_orchestra.core.settings import Settings
from tests.conftest import BASE, ServerProcess

# what a docs page loads: <script src>, <link href>, Swagger's `url: '...'`, ReDoc's spec-url
REFERENCE = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|\burl:\s*'([^']+)'""")
TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "json"}


def references(html: str) -> list[str]:
    return [a or b for a, b in REFERENCE.findall(html)]


def check_page(client: TestClient | httpx.Client, page: str) -> list[str]:
    """The page's references: all local, each answering 200 with its content type."""
    response = client.get(page)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    found = references(response.text)
    assert found, response.text
    for url in found:
        assert url.startswith("/") and not url.startswith("//"), (page, url)
        asset = client.get(url)
        assert asset.status_code == 200, (url, asset.text[:200])
        expected = TYPES[Path(url).suffix]
        assert expected in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 1000, url  # the bundle itself, not an error page
    # nothing from a CDN or Google Fonts, in any form
    assert "cdn" not in response.text.lower() and "googleapis" not in response.text, page
    return found


@pytest.mark.parametrize("services", [None, ["dataset"]], ids=["all-in-one", "single-service"])
def test_docs_pages_load_only_local_assets(tmp_path: Path, services: list[str] | None) -> None:
    client = TestClient(create_app(services, settings=Settings(data_dir=tmp_path / "data")))
    swagger = check_page(client, "/docs")
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(swagger)
    assert "/openapi.json" in swagger
    redoc = check_page(client, "/redoc")
    assert "/docs/assets/redoc.standalone.js" in redoc

    redirect = client.get("/", follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"] == "/docs"

    # the docs routes stay out of the API's own description
    paths = set(client.get("/openapi.json").json()["paths"])
    assert not {p for p in paths if p == "/" or p.startswith(("/docs", "/redoc"))}, paths


def test_missing_asset_is_a_404_in_lo_envelope(tmp_path: Path) -> None:
    client = TestClient(create_app(settings=Settings(data_dir=tmp_path / "data")))
    response = client.get("/docs/assets/nothing.js")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "http"


def test_served_docs_load_in_a_browser_and_serve_logs_a_banner(tmp_path: Path) -> None:
    """A real server with bearer auth on, reached as a browser on 127.0.0.1 does (same-origin
    fetches): the docs and their assets load; the step routes still want the token."""
    server = ServerProcess(tmp_path / "data", env={"LO_API_TOKENS": "secret"})
    server.start("--log-level", "info")  # ./run.sh local's level (serve's default)
    try:
        browser = {"Sec-Fetch-Site": "same-origin", "Accept": "text/html,*/*"}
        with httpx.Client(base_url=server.url, headers=browser, timeout=30) as client:
            redirect = client.get("/")
            assert redirect.status_code == 307 and redirect.headers["location"] == "/docs"
            check_page(client, "/docs")
            check_page(client, "/redoc")
            assert client.get(f"{BASE}/dataset/csv").status_code == 401
    finally:
        server.stop()
    banner = [line for line in server.log.read_text().splitlines() if "docs http" in line]
    assert len(banner) == 1, server.log.read_text()[-2000:]
    line = banner[0]
    assert " INFO " in line
    assert f"API {server.url}{BASE}" in line and f"docs {server.url}/docs" in line
    assert str((tmp_path / "data").resolve()) in line
