"""Pure parts of the OCI helpers and the registry client: ChainIDs, platform choice, challenges,
credentials from a Docker config and credential helpers, mirrors and insecure registries."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from composer.backends.native.image import oci
from composer.backends.native.image.registry import (
    Credentials,
    CredentialStore,
    RegistryClient,
    RegistryConfig,
    choose_platform,
    parse_challenge,
)
from composer.errors import RegistryAuthError, UsageError
from composer.image_reference import parse

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64


def test_chain_ids() -> None:
    second = "sha256:" + hashlib.sha256(f"{A} {B}".encode()).hexdigest()
    third = "sha256:" + hashlib.sha256(f"{second} {C}".encode()).hexdigest()
    assert oci.chain_ids([A, B, C]) == [A, second, third]
    assert oci.chain_ids([]) == []


def _entry(digest: str, arch: str, variant: str = "", os_name: str = "linux",
           media_type: str = oci.OCI_MANIFEST) -> dict[str, object]:
    platform: dict[str, str] = {"os": os_name, "architecture": arch}
    if variant:
        platform["variant"] = variant
    return {"mediaType": media_type, "digest": digest, "size": 1, "platform": platform}


def test_choose_platform_amd64_skips_attestations_and_unknown_types() -> None:
    index = {"manifests": [
        _entry(A, "unknown", os_name="unknown"),
        _entry(B, "amd64", media_type="application/vnd.example.unknown"),
        _entry(C, "arm64"),
        _entry("sha256:" + "d" * 64, "amd64"),
    ]}
    chosen = choose_platform(index, oci.Platform())
    assert chosen is not None
    assert chosen.digest == "sha256:" + "d" * 64
    assert choose_platform({"manifests": [_entry(C, "arm64")]}, oci.Platform()) is None


def test_choose_platform_arm_variants() -> None:
    index = {"manifests": [_entry(A, "arm", "v6"), _entry(B, "arm", "v7"), _entry(C, "arm64", "v8")]}
    assert choose_platform(index, oci.Platform.parse("linux/arm/v7")).digest == B  # type: ignore[union-attr]
    assert choose_platform(index, oci.Platform.parse("linux/arm/v6")).digest == A  # type: ignore[union-attr]
    assert choose_platform(index, oci.Platform.parse("linux/arm64")).digest == C  # type: ignore[union-attr]
    older_only = {"manifests": [_entry(A, "arm", "v6")]}
    assert choose_platform(older_only, oci.Platform.parse("linux/arm/v7")).digest == A  # type: ignore[union-attr]
    newer_only = {"manifests": [_entry(B, "arm", "v7")]}
    assert choose_platform(newer_only, oci.Platform.parse("linux/arm/v6")) is None


def test_platform_parse() -> None:
    assert str(oci.Platform.parse("linux/x86_64")) == "linux/amd64"
    assert str(oci.Platform.parse("linux/aarch64")) == "linux/arm64"
    assert str(oci.Platform.parse("linux/arm")) == "linux/arm/v7"
    with pytest.raises(ValueError, match="os/arch"):
        oci.Platform.parse("amd64")


def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "registry.example",
                      "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})


def _write_config(directory: Path, data: dict[str, object]) -> CredentialStore:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(data))
    return CredentialStore(directory, environ={})


def test_credentials_from_auths(tmp_path: Path) -> None:
    encoded = base64.b64encode(b"alice:s3cr:et").decode()
    store = _write_config(tmp_path, {"auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
        "127.0.0.1:5000": {"auth": encoded},
        "https://registry.example:8443/v2/": {"username": "bob", "password": "pw"},
        "token.example": {"identitytoken": "refresh"},
    }})
    assert store.get("docker.io") == Credentials("hub", "pw")
    assert store.get("127.0.0.1:5000") == Credentials("alice", "s3cr:et")
    assert store.get("registry.example:8443") == Credentials("bob", "pw")
    assert store.get("token.example") == Credentials(identity_token="refresh")
    assert store.get("other.example") is None


def test_credentials_missing_config(tmp_path: Path) -> None:
    assert CredentialStore(tmp_path / "nowhere", environ={}).get("docker.io") is None
    assert CredentialStore(environ={"DOCKER_CONFIG": str(tmp_path)}).path == tmp_path / "config.json"


def _helper(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_credential_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    # A real helper program on PATH: reads the server URL on stdin, as docker's protocol says.
    _helper(bin_dir, "fake", 'read server\ncase "$server" in\n'
            '  reg.example) echo \'{"ServerURL":"reg.example","Username":"carol","Secret":"pw"}\' ;;\n'
            '  tok.example) echo \'{"ServerURL":"tok.example","Username":"<token>","Secret":"idtok"}\' ;;\n'
            '  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac\n')
    _helper(bin_dir, "broken", 'echo "keychain locked" >&2\nexit 3\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    store = _write_config(tmp_path / "cfg", {
        "credHelpers": {"reg.example": "fake", "tok.example": "fake", "bad.example": "broken",
                        "gone.example": "missing"},
        "credsStore": "fake",
        "auths": {"plain.example": {"auth": base64.b64encode(b"dan:pw").decode()}},
    })
    assert store.get("reg.example") == Credentials("carol", "pw")
    assert store.get("tok.example") == Credentials(identity_token="idtok")
    # credsStore answers "not found": the auths entry is used
    assert store.get("plain.example") == Credentials("dan", "pw")
    with pytest.raises(RegistryAuthError, match="docker-credential-broken failed: keychain locked"):
        store.get("bad.example")
    with pytest.raises(RegistryAuthError, match="docker-credential-missing is not installed"):
        store.get("gone.example")


def test_registry_config_from_env(tmp_path: Path) -> None:
    file = tmp_path / "registries.json"
    file.write_text(json.dumps({"registry-mirrors": ["https://mirror.example"],
                                "insecure-registries": ["10.0.0.0/8", "plain.example:5000"]}))
    config = RegistryConfig.from_env({"COMPOSER_REGISTRY_CONFIG": str(file),
                                      "COMPOSER_REGISTRY_MIRRORS": "http://127.0.0.1:5001/, http://10.1.2.3:5000"})
    assert config.mirrors == ("https://mirror.example", "http://127.0.0.1:5001", "http://10.1.2.3:5000")
    assert config.is_insecure("10.9.9.9:5000")
    assert config.is_insecure("plain.example:5000")
    assert config.is_insecure("localhost:5000")
    assert not config.is_insecure("registry.example")
    with pytest.raises(UsageError, match="uses plain http"):
        RegistryConfig.from_env({"COMPOSER_REGISTRY_CONFIG": str(tmp_path / "none.json"),
                                 "COMPOSER_REGISTRY_MIRRORS": "http://mirror.example"})


def test_mirrors_only_for_docker_hub() -> None:
    client = RegistryClient(RegistryConfig(mirrors=("http://127.0.0.1:5001",)))
    hub = client.endpoints(parse("busybox"))
    assert [(e.scheme, e.host, e.mirror) for e in hub] == [("http", "127.0.0.1:5001", True),
                                                            ("https", "registry-1.docker.io", False)]
    assert [e.host for e in client.endpoints(parse("ghcr.io/a/b"))] == ["ghcr.io"]
