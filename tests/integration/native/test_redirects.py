"""Redirects: a blob served from another host (a CDN, as Docker Hub does) is fetched without the
registry's credentials. Two real HTTP servers on 127.0.0.1, different ports."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.image import oci
from composer.backends.native.image.registry import CredentialStore, RegistryClient, RegistryConfig
from composer.backends.native.image.store import ImageStore
from composer.image_reference import parse
from tests.integration.native.conftest import docker_login

BLOB = b"blob served by the CDN"
DIGEST = oci.sha256_digest(BLOB)
AUTH = "Basic " + base64.b64encode(b"user:pw").decode()


class Server:
    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    cdn_host: list[str] = []

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

    class Cdn(Quiet):
        def do_GET(self) -> None:
            seen.append({"path": self.path, "authorization": self.headers.get("Authorization")})
            self.send_response(200)
            self.send_header("Content-Length", str(len(BLOB)))
            self.end_headers()
            self.wfile.write(BLOB)

    class Registry(Quiet):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != AUTH:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="test"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(307)
            self.send_header("Location", f"http://{cdn_host[0]}/cdn/blob?sig=1")
            self.send_header("Content-Length", "0")
            self.end_headers()

    cdn = Server(Cdn)
    cdn_host.append(cdn.host)
    registry = Server(Registry)
    try:
        yield registry, cdn, seen
    finally:
        registry.stop()
        cdn.stop()


def test_redirected_blob_gets_no_credentials(servers: tuple[Server, Server, list[dict[str, Any]]],
                                             tmp_path: Path) -> None:
    registry, _, seen = servers
    docker_login(tmp_path, registry.host, "user", "pw")
    client = RegistryClient(RegistryConfig(), CredentialStore(tmp_path / "docker"))
    store = ImageStore.open(tmp_path / "root")
    ref = parse(f"{registry.host}/some/image:1")
    with store.ingest(DIGEST, len(BLOB)) as writer:
        assert writer is not None
        client.fetch_blob(client.endpoints(ref)[0], ref, oci.Descriptor("application/octet-stream", DIGEST, len(BLOB)),
                          writer)
    assert store.read_blob(DIGEST) == BLOB
    assert seen == [{"path": "/cdn/blob?sig=1", "authorization": None}]
