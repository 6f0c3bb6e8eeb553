"""The HTTP edge (core/edge.py): cross-site requests, body types, DNS rebinding, CORS.

A web page can make a browser POST `text/plain`, form-urlencoded or multipart bodies to the
user's local server without asking first; before this guard, `text/plain` JSON from any
origin created and ran a function step (201). These tests send exactly what browsers send.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from learning_orchestra.core.api import create_app
from learning_orchestra.core.settings import Settings
from tests.conftest import BASE, ServerProcess, assert_error

FUNCTION = f"{BASE}/function/python"
CSV = f"{BASE}/dataset/csv"
STEP = {"name": "pwned", "function": "response = 1", "functionParameters": {}}
EVIL = "https://evil.example"
ALLOWED = "https://notebook.example:8443"


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app whose loopback check is live (the client connects to 127.0.0.1, as a browser
    would) and that lets one other origin in (LO_CORS_ORIGINS)."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("edge") / "data",
        cors_origins=f"{ALLOWED}, http://other.example",
        # no jobs need to run here: a long lease keeps the supervisor quiet
        lease_seconds=30,
    )
    with TestClient(create_app(settings=settings), base_url="http://127.0.0.1:8080") as client:
        yield client


def no_steps(client: TestClient) -> None:
    assert client.get(FUNCTION).json() == {"result": []}
    assert client.get(CSV).json() == {"result": []}


def test_text_plain_from_another_origin_creates_nothing(edge: TestClient) -> None:
    import json

    body = json.dumps(STEP)
    # what <form enctype="text/plain"> / fetch(..., {mode: "no-cors"}) sends from evil.example
    from_page = edge.post(
        FUNCTION, content=body, headers={"content-type": "text/plain", "origin": EVIL}
    )
    assert assert_error(from_page, 403, EVIL, "LO_CORS_ORIGINS")["error"]["code"] == "cross_origin"
    # the same body without Origin (a script, not a browser) is still the wrong type
    typed = edge.post(FUNCTION, content=body, headers={"content-type": "text/plain"})
    body415 = assert_error(typed, 415, "text/plain", "application/json")
    assert body415["error"]["code"] == "unsupported_media_type"
    form = edge.post(FUNCTION, data={"name": "pwned"})  # application/x-www-form-urlencoded
    assert_error(form, 415, "x-www-form-urlencoded")
    no_steps(edge)


def test_multipart_only_on_the_upload_routes(edge: TestClient) -> None:
    files = {"file": ("x.csv", b"a\n1\n", "text/csv")}
    refused = edge.post(FUNCTION, data={"name": "pwned"}, files=files)
    assert_error(refused, 415, "multipart/form-data", "application/json")
    patch = edge.patch(f"{CSV}/x", data={"datasetName": "x"}, files=files)
    assert_error(patch, 415, "multipart")
    # cross-site multipart is refused on the upload route too, with or without Origin
    for headers in ({"origin": EVIL}, {"sec-fetch-site": "cross-site"}):
        crossed = edge.post(CSV, data={"datasetName": "up"}, files=files, headers=headers)
        assert_error(crossed, 403, "cross")
    no_steps(edge)
    # the same upload from no origin, or the server's own, is accepted
    own = {"origin": "http://127.0.0.1:8080", "sec-fetch-site": "same-origin"}
    accepted = edge.post(CSV, data={"datasetName": "up"}, files=files, headers=own)
    assert accepted.status_code == 201, accepted.text
    assert edge.delete(f"{CSV}/up").status_code == 200


def test_json_types_and_bodiless_posts_pass(edge: TestClient) -> None:
    for content_type in ("application/json", "application/json; charset=utf-8",
                         "application/merge-patch+json"):  # fmt: skip
        response = edge.post(
            FUNCTION, content=b'{"name": 1}', headers={"content-type": content_type}
        )
        assert_error(response, 422, "name")  # reached the route: validation, not 415
    # no Content-Type at all: parsed as JSON as before
    assert_error(edge.post(FUNCTION, content=b"{nope"), 400, "JSON")
    # a POST without a body passes whatever its type (cancel): here a 404, from the route
    cancel = edge.post(f"{FUNCTION}/ghost/cancel", headers={"content-type": "text/plain"})
    assert_error(cancel, 404, "ghost")


def test_origins_own_and_listed_pass_others_are_403(edge: TestClient) -> None:
    for origin in ("http://127.0.0.1:8080", ALLOWED, "http://other.example/"):
        response = edge.get(FUNCTION, headers={"origin": origin})
        assert response.status_code == 200, (origin, response.text)
    for origin in (EVIL, "null", "http://127.0.0.1:9999", "https://127.0.0.1:8080.evil.example"):
        assert_error(edge.get(FUNCTION, headers={"origin": origin}), 403, "origin")
    assert_error(edge.get(FUNCTION, headers={"sec-fetch-site": "cross-site"}), 403, "cross-site")
    for site in ("same-origin", "none", "same-site"):
        assert edge.get(FUNCTION, headers={"sec-fetch-site": site}).status_code == 200
    # a listed origin may be cross-site by definition
    listed = edge.get(FUNCTION, headers={"origin": ALLOWED, "sec-fetch-site": "cross-site"})
    assert listed.status_code == 200


def test_a_same_origin_page_behind_a_proxy_passes(edge: TestClient) -> None:
    """Through the gateway the service sees its own name as Host and the public URL as
    Origin; the browser's `Sec-Fetch-Site: same-origin` (which no page can set) says the page
    is of the URL's origin: the studio's own requests pass, another site's still do not."""
    # (Host a loopback name here: this test client's connection arrives over loopback)
    proxied = {"host": "localhost:8080", "origin": "http://gateway.example:8080"}
    response = edge.get(FUNCTION, headers={**proxied, "sec-fetch-site": "same-origin"})
    assert response.status_code == 200, response.text
    assert_error(
        edge.get(FUNCTION, headers={**proxied, "sec-fetch-site": "same-site"}), 403, "origin"
    )
    assert_error(edge.get(FUNCTION, headers=proxied), 403, "origin")


def test_cors_headers_for_listed_origins_only(edge: TestClient) -> None:
    preflight = edge.options(
        FUNCTION,
        headers={
            "origin": ALLOWED,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in preflight.headers["access-control-allow-methods"]
    simple = edge.get(FUNCTION, headers={"origin": ALLOWED})
    assert simple.headers["access-control-allow-origin"] == ALLOWED
    own = edge.get(FUNCTION, headers={"origin": "http://127.0.0.1:8080"})
    assert "access-control-allow-origin" not in own.headers
    evil = edge.options(FUNCTION, headers={"origin": EVIL, "access-control-request-method": "POST"})
    assert_error(evil, 403, "origin")


def test_rebinding_host_on_loopback_is_refused(edge: TestClient) -> None:
    # evil.example resolved to 127.0.0.1: the browser sends Host: evil.example
    for host in ("evil.example", "evil.example:8080", "10.0.0.1:8080"):
        refused = edge.get(FUNCTION, headers={"host": host})
        assert assert_error(refused, 421, "Host", "LO_ALLOWED_HOSTS")["error"]["code"] == "bad_host"
    for host in ("localhost:8080", "127.0.0.1:8080", "127.0.0.2", "LOCALHOST", "[::1]:8080",
                 "api.localhost"):  # fmt: skip
        assert edge.get(FUNCTION, headers={"host": host}).status_code == 200, host


def test_allowed_hosts_and_non_loopback_binds(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", allowed_hosts="lo.internal")
    app = create_app(settings=settings)
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        assert client.get(FUNCTION, headers={"host": "lo.internal:8080"}).status_code == 200
        assert_error(client.get(FUNCTION, headers={"host": "other.internal"}), 421)
    # a connection that did not arrive over loopback (a container's address) is not checked
    with TestClient(app, base_url="http://10.1.2.3:8080") as client:
        assert client.get(FUNCTION, headers={"host": "lo.example"}).status_code == 200


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real `serve` on 127.0.0.1 with default settings (uvicorn fills the ASGI scope)."""
    server = ServerProcess(tmp_path_factory.mktemp("edge-server") / "data", private_urls=False)
    server.start()
    yield server.url
    server.stop()


def test_the_real_server_refuses_what_a_page_sends(real_server: str) -> None:
    import json

    body = json.dumps(STEP)
    page = {"content-type": "text/plain;charset=UTF-8", "origin": EVIL}
    assert_error(httpx.post(real_server + FUNCTION, content=body, headers=page), 403)
    sneaky = {"content-type": "text/plain", "sec-fetch-site": "cross-site"}
    assert_error(httpx.post(real_server + FUNCTION, content=body, headers=sneaky), 403)
    port = real_server.rsplit(":", 1)[1]
    rebound = {"host": f"evil.example:{port}"}
    assert_error(httpx.get(real_server + FUNCTION, headers=rebound), 421, "Host")
    listing: Any = httpx.get(real_server + FUNCTION).json()
    assert listing == {"result": []}
    # what the Python client and curl send (no Origin) still works
    created = httpx.post(real_server + FUNCTION, json=STEP)
    assert created.status_code == 201, created.text
    localhost = httpx.get(f"http://localhost:{port}{FUNCTION}/pwned")
    assert localhost.status_code == 200
