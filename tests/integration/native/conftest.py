"""Fixtures for the native image store against real registries.

``local_registry`` (tests/integration/conftest.py) is the anonymous one. Here: the same Debian
``docker-registry`` with htpasswd (Basic) auth, and with token (Bearer) auth backed by a small
token issuer that signs RS256 JWTs with a throw-away key (openssl). Each test gets its own
COMPOSER_ROOT and DOCKER_CONFIG in a tmp dir. Under CI=true a missing piece fails, not skips.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import http.server
import json
import os
import secrets
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.image.registry import CredentialStore, RegistryClient, RegistryConfig
from composer.backends.native.image.store import ImageStore
from tests.integration.registry import LocalRegistry, RegistryUnavailable, binary, free_port
from tests.integration.system_check import system_check  # noqa: F401  (autouse: residue after each test)

USER, PASSWORD = "composer", "s3cret-pw"


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _needs_root() -> None:
    if os.geteuid() != 0:
        unavailable("the native image tests need root (mknod, trusted.* xattrs, chown)")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ImageStore:
    """A store in COMPOSER_ROOT=<tmp>/root; DOCKER_CONFIG=<tmp>/docker (empty)."""
    monkeypatch.setenv("COMPOSER_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.delenv("COMPOSER_REGISTRY_MIRRORS", raising=False)
    monkeypatch.setenv("COMPOSER_REGISTRY_CONFIG", str(tmp_path / "no-registries.json"))
    return ImageStore.open()


def docker_login(tmp_path: Path, host: str, user: str, password: str) -> CredentialStore:
    """Write ``auths`` for ``host`` into <tmp>/docker/config.json, as ``docker login`` does."""
    folder = tmp_path / "docker"
    folder.mkdir(exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return CredentialStore(folder)


def pusher(host: str, tmp_path: Path | None = None) -> RegistryClient:
    """A client that may push to ``host`` (with the test user's credentials)."""
    credentials = CredentialStore(Path("/nonexistent"))
    if tmp_path is not None:
        folder = tmp_path / "pusher"
        folder.mkdir(exist_ok=True)
        credentials = docker_login(folder, host, USER, PASSWORD)
    return RegistryClient(RegistryConfig(), credentials, operation="push")


def bcrypt(password: str) -> str:
    """A bcrypt hash (the only kind docker-registry's htpasswd accepts), from libcrypt."""
    libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    libcrypt.crypt_gensalt.restype = ctypes.c_char_p
    libcrypt.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    libcrypt.crypt.restype = ctypes.c_char_p
    libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = libcrypt.crypt_gensalt(b"$2b$", 5, None, 0)
    hashed = libcrypt.crypt(password.encode(), salt)
    if not hashed or not hashed.startswith(b"$2"):
        raise RegistryUnavailable("libcrypt cannot make bcrypt hashes")
    return str(hashed.decode())


class ConfiguredRegistry(LocalRegistry):
    """LocalRegistry with an extra ``auth:`` section in its config."""

    def __init__(self, executable: str, auth_yaml: str) -> None:
        super().__init__(executable)
        self.auth_yaml = auth_yaml

    def start(self, timeout: float = 30.0) -> ConfiguredRegistry:
        storage = self.workdir / "storage"
        storage.mkdir()
        config = self.workdir / "config.yml"
        config.write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {storage}
http:
  addr: 127.0.0.1:{self.port}
{self.auth_yaml}""")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([self.executable, "serve", str(config)], stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RegistryUnavailable(f"docker-registry exited {self.process.returncode}: {self.output()}")
            if self.answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise RegistryUnavailable(f"docker-registry did not answer on {self.host} within {timeout}s")


def _registry_binary() -> str:
    executable = binary()
    if executable is None:
        unavailable("Debian's docker-registry is not installed (apt-get install docker-registry)")
        raise AssertionError("unreachable")
    return executable


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConfiguredRegistry]:
    """docker-registry with htpasswd auth; user ``composer``, password ``s3cret-pw``."""
    executable = _registry_binary()
    folder = tmp_path_factory.mktemp("htpasswd")
    htpasswd = folder / "htpasswd"
    try:
        htpasswd.write_text(f"{USER}:{bcrypt(PASSWORD)}\n")
        registry = ConfiguredRegistry(executable, f"auth:\n  htpasswd:\n    realm: composer-test\n"
                                                  f"    path: {htpasswd}\n")
        registry.start()
    except (RegistryUnavailable, OSError) as exc:
        unavailable(str(exc))
        raise
    try:
        yield registry
    finally:
        registry.stop()


class TokenIssuer:
    """A token endpoint (distribution's token-auth spec): checks Basic credentials, answers with an
    RS256 JWT whose x5c header carries the self-signed certificate the registry trusts."""

    def __init__(self, folder: Path, service: str) -> None:
        self.folder = folder
        self.service = service
        self.key = folder / "token.key"
        self.cert = folder / "token.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "2", "-subj", "/CN=composer-test-token"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.port = free_port()
        self.requests: list[dict[str, Any]] = []
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                header = self.headers.get("Authorization") or ""
                issuer.requests.append({"query": query, "authorization": header})
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if header != expected:
                    body = json.dumps({"errors": [{"code": "UNAUTHORIZED",
                                                   "message": "incorrect username or password"}]}).encode()
                    self.send_response(401)
                else:
                    body = json.dumps({"token": issuer.token(query.get("scope", "")), "expires_in": 300}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def token(self, scope: str) -> str:
        access = []
        for item in scope.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": "composer-test", "sub": USER, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": secrets.token_hex(8), "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                                   input=signing_input.encode(), check=True, capture_output=True).stdout
        return f"{signing_input}.{b64(signature)}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConfiguredRegistry, TokenIssuer]]:
    """docker-registry with token auth, and its issuer (same user and password as basic_registry)."""
    executable = _registry_binary()
    folder = tmp_path_factory.mktemp("token")
    try:
        issuer = TokenIssuer(folder, "composer-test-registry")
    except (OSError, subprocess.CalledProcessError) as exc:
        unavailable(f"cannot start the token issuer (openssl): {exc}")
        raise
    registry = ConfiguredRegistry(executable, f"""auth:
  token:
    realm: {issuer.realm}
    service: composer-test-registry
    issuer: composer-test
    rootcertbundle: {issuer.cert}
""")
    try:
        registry.start()
    except RegistryUnavailable as exc:
        issuer.stop()
        unavailable(str(exc))
        raise
    try:
        yield registry, issuer
    finally:
        registry.stop()
        issuer.stop()
