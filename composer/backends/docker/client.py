"""Find the engine the docker CLI would talk to, and build a docker-py client for it.

Order, as the docker CLI: ``DOCKER_HOST`` (with ``DOCKER_TLS_VERIFY`` / ``DOCKER_CERT_PATH``),
then the context named by ``DOCKER_CONTEXT`` or by ``currentContext`` in
``$DOCKER_CONFIG/config.json`` (``~/.docker`` by default), then the default socket.
``resolve_endpoint`` is pure (environment and config directory in, endpoint out);
``connect`` blocks and must run in a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer import durable
from composer.backends.docker.errors import explanation as _explanation
from composer.backends.docker.errors import unavailable

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Connections kept to the engine, and the backend's worker threads: one per request in flight, so that
# `up` of many services issues its creates and starts together, as v2 does (docker-py keeps 10 by default).
MAX_CONNECTIONS = 64


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the engine listens, and the TLS material to reach it."""

    host: str
    tls_verify: bool = False
    cert_path: str | None = None  # holds ca.pem, cert.pem, key.pem
    source: str = "default"  # "DOCKER_HOST", "context <name>" or "default"

    @property
    def uses_tls(self) -> bool:
        return self.cert_path is not None or self.tls_verify


def config_dir(environ: Mapping[str, str]) -> Path:
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"])
    return Path(environ.get("HOME") or Path.home()) / ".docker"


def _is_true(value: str | None) -> bool:
    return value is not None and value not in ("", "0", "false", "False")


def current_context(environ: Mapping[str, str], directory: Path) -> str | None:
    """The name of the context in use, or None for the default one."""
    name = environ.get("DOCKER_CONTEXT")
    if not name:
        try:
            config = json.loads((directory / "config.json").read_text())
        except (OSError, ValueError):
            config = {}
        name = config.get("currentContext") if isinstance(config, dict) else None
    return None if not name or name == "default" else str(name)


def resolve_endpoint(environ: Mapping[str, str], directory: Path | None = None) -> Endpoint:
    """The engine endpoint the docker CLI would use in ``environ``."""
    directory = directory if directory is not None else config_dir(environ)
    if environ.get("DOCKER_HOST"):
        cert_path = environ.get("DOCKER_CERT_PATH") or None
        tls_verify = _is_true(environ.get("DOCKER_TLS_VERIFY"))
        if tls_verify and cert_path is None:
            cert_path = str(directory)
        return Endpoint(environ["DOCKER_HOST"], tls_verify, cert_path, "DOCKER_HOST")
    name = current_context(environ, directory)
    if name is None:
        return Endpoint(DEFAULT_HOST)
    digest = hashlib.sha256(name.encode()).hexdigest()
    try:
        meta = json.loads((directory / "contexts" / "meta" / digest / "meta.json").read_text())
        docker_endpoint = meta["Endpoints"]["docker"]
        host = str(docker_endpoint["Host"])
    except (OSError, ValueError, KeyError, TypeError):
        return Endpoint(DEFAULT_HOST, source=f"context {name} (unreadable)")
    tls_dir = directory / "contexts" / "tls" / digest / "docker"
    cert_path = str(tls_dir) if tls_dir.is_dir() else None
    tls_verify = cert_path is not None and not docker_endpoint.get("SkipTLSVerify", False)
    return Endpoint(host, tls_verify, cert_path, f"context {name}")


def _tls_config(endpoint: Endpoint) -> Any:
    import docker.tls

    if not endpoint.uses_tls:
        return False
    cert_dir = Path(endpoint.cert_path or ".")
    cert = (str(cert_dir / "cert.pem"), str(cert_dir / "key.pem"))
    ca_cert = str(cert_dir / "ca.pem")
    have_cert = all(Path(path).exists() for path in cert)
    return docker.tls.TLSConfig(
        client_cert=cert if have_cert else None,
        ca_cert=ca_cert if endpoint.tls_verify and Path(ca_cert).exists() else None,
        verify=endpoint.tls_verify,
    )


def _probe_unix_socket(endpoint: Endpoint) -> None:
    """Fail fast on a dead unix socket; docker-py would leak the socket of its failed attempt."""
    if not endpoint.host.startswith("unix://"):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(5)
        probe.connect(endpoint.host.removeprefix("unix://"))
    except OSError as exc:
        error = unavailable(endpoint.host)
        error.hint = exc.strerror or str(exc)
        raise error from exc
    finally:
        probe.close()


def connect(endpoint: Endpoint, *, timeout: float = 60) -> Any:
    """A docker-py low-level ``APIClient`` whose API version is negotiated with the engine.

    Blocks: it asks the engine its version.

    :raises BackendUnavailableError: nothing answers at the endpoint.
    """
    import docker

    _probe_unix_socket(endpoint)
    base_url = endpoint.host
    if base_url.startswith("tcp://") and endpoint.uses_tls:
        base_url = "https://" + base_url.removeprefix("tcp://")
    known = _known_api_version(endpoint)
    arguments = {"base_url": base_url, "version": known or "auto", "tls": _tls_config(endpoint), "timeout": timeout,
                 "max_pool_size": MAX_CONNECTIONS}  # version="auto" asks the engine (the socket was probed above)
    try:
        if base_url.startswith("unix://"):
            from composer.backends.docker.transport import fast_client

            client = fast_client(base_url.removeprefix("unix://"), **arguments)
        else:
            client = docker.APIClient(**arguments)
    except Exception as exc:
        # Whatever failed (socket missing, refused, TLS, version negotiation), the engine is not usable.
        error = unavailable(endpoint.host)
        error.hint = _explanation(exc)
        raise error from exc
    if known is None:
        _remember_api_version(endpoint, str(client.api_version))
    return client


def _api_version_file(endpoint: Endpoint) -> str | None:
    """Where the API version negotiated with the engine behind a unix socket is kept: one file
    per socket *and* per daemon run (the socket's inode and change time: dockerd makes a new
    socket when it starts, so an upgraded engine is asked again). None for other endpoints."""
    if not endpoint.host.startswith("unix://"):
        return None
    path = endpoint.host.removeprefix("unix://")
    try:
        info = os.stat(path)
    except OSError:
        return None
    from composer.spec.cache import cache_dir

    key = hashlib.sha256(f"{path}\0{info.st_ino}\0{info.st_ctime_ns}".encode()).hexdigest()[:24]
    return os.path.join(cache_dir(), f"docker-api-{key}")


def _known_api_version(endpoint: Endpoint) -> str | None:
    """The version negotiated before with this engine run: no GET /version (~7 ms) per command."""
    file = _api_version_file(endpoint)
    try:
        text = Path(file).read_text().strip() if file else ""
    except OSError:
        return None
    major, _, minor = text.partition(".")
    return text if major.isdigit() and minor.isdigit() else None


def _remember_api_version(endpoint: Endpoint, version: str) -> None:
    file = _api_version_file(endpoint)
    if file is None:
        return
    try:
        os.makedirs(os.path.dirname(file), mode=0o700, exist_ok=True)
        durable.write_file(file, (version + "\n").encode(), mode=0o644)
    except OSError:  # a read-only cache costs the next command one request, nothing more
        return


def connect_from_env(environ: Mapping[str, str] | None = None) -> Any:
    """``connect`` to the engine the docker CLI would use."""
    return connect(resolve_endpoint(os.environ if environ is None else environ))
