"""The SSRF guard (core/urls.py, core/fetching.py) in-process, with an injected resolver.

Real HTTP on 127.0.0.1; names like `public.test` resolve through the fake resolver only, so
nothing leaves the machine and the tests run offline.
"""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from learning_orchestra.core.errors import Invalid
from learning_orchestra.core.fetching import guarded_client
from learning_orchestra.core.settings import Settings
from learning_orchestra.core.urls import BlockedURL, check_url, literal_address, why_private

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "0.0.0.0",
    "0",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::]",
    "[64:ff9b::7f00:1]",
]
OTHER_PRIVATE = ["169.254.169.254", "10.0.0.1", "192.168.1.1", "172.16.0.1", "[fe80::1]",
                 "[fd00::1]"]  # fmt: skip


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", **values)


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS + OTHER_PRIVATE)
def test_literal_private_hosts_are_422(tmp_path: Path, host: str) -> None:
    for url in (f"http://{host}/a.csv", f"https://user:pw@{host}:8443/x", f"http://user@{host}/"):
        with pytest.raises(Invalid) as caught:
            check_url(url, settings(tmp_path))
        assert "datasetURI" in caught.value.message
        assert "LO_ALLOWED_URL_HOSTS" in caught.value.message


def test_public_and_named_hosts_pass_the_api_check(tmp_path: Path) -> None:
    for url in ("https://example.com/a.csv", "http://8.8.8.8/x", "http://localhost/x"):
        check_url(url, settings(tmp_path))  # names are checked by the worker, on connect


def test_opt_ins(tmp_path: Path) -> None:
    check_url("http://127.0.0.1:8000/a", settings(tmp_path, allow_private_urls=True))
    listed = settings(tmp_path, allowed_url_hosts="127.0.0.1:8000, 10.0.0.1, [::1]")
    check_url("http://127.0.0.1:8000/a", listed)
    check_url("http://10.0.0.1:9999/a", listed)  # host alone: any port
    check_url("http://[::1]/a", listed)
    with pytest.raises(Invalid):
        check_url("http://127.0.0.1:8001/a", listed)  # host:port: that port only
    with pytest.raises(Invalid):
        check_url("http://127.1:8000/a", listed)  # entries match the host as written


def test_address_classification() -> None:
    assert literal_address("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("example.com") is None
    assert literal_address("1.2.3.4.example") is None
    assert why_private(ipaddress.ip_address("8.8.8.8")) is None
    assert why_private(ipaddress.ip_address("2001:4860:4860::8888")) is None
    assert why_private(ipaddress.ip_address("::ffff:127.0.0.1")) == "a loopback"
    assert why_private(ipaddress.ip_address("169.254.169.254")) == "a link-local"


class Handler(http.server.BaseHTTPRequestHandler):
    """/data answers a CSV; /to?u=URL redirects to URL."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/to?u="):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/to?u="))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"secret,1\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def local() -> Iterator[int]:
    """The port of a local HTTP server: a stand-in for any private service."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


class Resolver:
    """A fake DNS: every name it knows resolves to 127.0.0.1; it counts its answers."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"unknown name {host}")
        return ["127.0.0.1"]


def fetch(config: Settings, url: str, resolver: Resolver | None = None) -> httpx.Response:
    with guarded_client(config, resolver, follow_redirects=True, timeout=10) as client:
        return client.get(url)


def test_names_resolving_to_private_addresses_are_refused(tmp_path: Path, local: int) -> None:
    dns = Resolver({"rebind.test"})
    with pytest.raises(BlockedURL, match=r"rebind\.test \(127\.0\.0\.1\) is a loopback"):
        fetch(settings(tmp_path), f"http://rebind.test:{local}/data", dns)
    assert dns.asked == ["rebind.test"]
    for host in ("127.0.0.1", "127.1", "2130706433", "[::ffff:127.0.0.1]", "0.0.0.0"):
        with pytest.raises(BlockedURL):
            fetch(settings(tmp_path), f"http://{host}:{local}/data", dns)
    assert dns.asked == ["rebind.test"]  # literals are never resolved


def test_the_connection_goes_to_the_checked_address(tmp_path: Path, local: int) -> None:
    """The name is resolved once, by our resolver, and that address is the one connected
    to: `allowed.test` exists in no real DNS, so reaching the server proves no second lookup
    (the window DNS rebinding needs) happened."""
    dns = Resolver({"allowed.test"})
    config = settings(tmp_path, allowed_url_hosts=f"allowed.test:{local}")
    response = fetch(config, f"http://allowed.test:{local}/data", dns)
    assert response.status_code == 200 and response.text == "secret,1\n"
    assert dns.asked == ["allowed.test"]


def test_every_redirect_hop_is_checked(tmp_path: Path, local: int) -> None:
    dns = Resolver({"allowed.test", "inner.test"})
    config = settings(tmp_path, allowed_url_hosts=f"allowed.test:{local}")
    for target in (f"http://127.0.0.1:{local}/data", f"http://inner.test:{local}/data"):
        with pytest.raises(BlockedURL, match="loopback"):
            fetch(config, f"http://allowed.test:{local}/to?u={target}", dns)
    # allowed all the way: followed
    both = settings(tmp_path, allowed_url_hosts=f"allowed.test:{local},127.0.0.1:{local}")
    hop = fetch(both, f"http://allowed.test:{local}/to?u=http://127.0.0.1:{local}/data", dns)
    assert hop.text == "secret,1\n"
    private = fetch(settings(tmp_path, allow_private_urls=True), f"http://127.1:{local}/data")
    assert private.status_code == 200
