"""Which engine the docker CLI would use: DOCKER_HOST, TLS variables, contexts (no engine)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from composer.backends.docker.client import DEFAULT_HOST, Endpoint, connect, resolve_endpoint
from composer.errors import BackendUnavailableError


def write_context(directory: Path, name: str, host: str, *, tls: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = directory / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": {"docker": {"Host": host}}}))
    if tls:
        (directory / "contexts" / "tls" / digest / "docker").mkdir(parents=True)


def test_default(tmp_path: Path) -> None:
    assert resolve_endpoint({}, tmp_path) == Endpoint(DEFAULT_HOST)


def test_docker_host_with_tls(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": "tcp://10.0.0.1:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs"}
    assert resolve_endpoint(env, tmp_path) == Endpoint("tcp://10.0.0.1:2376", True, "/certs", "DOCKER_HOST")
    verify_default = resolve_endpoint({"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1"}, tmp_path)
    assert verify_default.cert_path == str(tmp_path)
    plain = resolve_endpoint({"DOCKER_HOST": "tcp://h:2375", "DOCKER_TLS_VERIFY": ""}, tmp_path)
    assert not plain.uses_tls


def test_current_context_from_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    write_context(tmp_path, "remote", "tcp://remote:2376", tls=True)
    endpoint = resolve_endpoint({}, tmp_path)
    assert endpoint.host == "tcp://remote:2376"
    assert endpoint.tls_verify
    assert endpoint.source == "context remote"


def test_docker_context_variable_and_precedence(tmp_path: Path) -> None:
    write_context(tmp_path, "other", "unix:///run/other.sock")
    assert resolve_endpoint({"DOCKER_CONTEXT": "other"}, tmp_path).host == "unix:///run/other.sock"
    assert resolve_endpoint({"DOCKER_CONTEXT": "default"}, tmp_path).host == DEFAULT_HOST
    both = {"DOCKER_CONTEXT": "other", "DOCKER_HOST": "unix:///run/host.sock"}
    assert resolve_endpoint(both, tmp_path).host == "unix:///run/host.sock"


def test_docker_config_variable(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "c"}))
    write_context(tmp_path, "c", "unix:///run/c.sock")
    assert resolve_endpoint({"DOCKER_CONFIG": str(tmp_path)}).host == "unix:///run/c.sock"


def test_unreadable_context_falls_back(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    assert resolve_endpoint({}, tmp_path).host == DEFAULT_HOST
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "gone"}))
    assert resolve_endpoint({}, tmp_path).host == DEFAULT_HOST


def test_unreachable_engine_is_one_line(tmp_path: Path) -> None:
    socket_path = tmp_path / "nothing.sock"
    with pytest.raises(BackendUnavailableError) as caught:
        connect(Endpoint(f"unix://{socket_path}"), timeout=2)
    expected = f"Cannot connect to the Docker daemon at unix://{socket_path}. Is the docker daemon running?"
    assert str(caught.value) == expected
