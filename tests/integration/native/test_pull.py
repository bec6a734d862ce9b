"""Pulls into the native store from real registries (Debian's docker-registry on 127.0.0.1).

Images are pushed first: busybox by dockerd (``local_registry.busybox``), the others made here
from local material (static busybox, crafted layers) and pushed with composer's own client.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from composer.backends.native.image import oci
from composer.backends.native.image.pull import pull
from composer.backends.native.image.registry import CredentialStore, RegistryClient, RegistryConfig
from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.errors import (
    DigestMismatchError,
    ImageNotFoundError,
    ImagePullError,
    ImageReferenceError,
    RegistryAuthError,
    UnsafeLayerError,
)
from composer.events import ListSink
from composer.image_reference import parse
from tests.integration.native.conftest import PASSWORD, USER, ConfiguredRegistry, TokenIssuer, docker_login, pusher
from tests.integration.registry import LocalRegistry, free_port
from tests.support import oci_images as oi


def run_pull(reference: str, store: ImageStore, *, policy: str = "missing", client: RegistryClient | None = None,
             platform: str | None = None) -> tuple[ImageRecord, ListSink]:
    sink = ListSink()
    call = functools.partial(pull, reference, store, sink, policy, client=client,
                             platform=oci.Platform.parse(platform) if platform else None)
    return anyio.run(call), sink


def fresh(registry: LocalRegistry, stem: str) -> str:
    return registry.reference(f"composer-native/{stem}{uuid.uuid4().hex[:8]}", "1")


def snapshot(store: ImageStore) -> dict[str, list[str]]:
    """Every file name under the store, by top-level directory (locks aside)."""
    return {sub: sorted(p.name for p in (store.root / sub).iterdir())
            for sub in ("blobs/sha256", "layers", "l", "incoming", "tmp")} | {
        "index": sorted(r.reference for r in store.images())}


@contextlib.contextmanager
def overlay(store: ImageStore, record: ImageRecord, target: Path) -> Iterator[Path]:
    """A read-only overlay mount of the image's layers (topmost first), unmounted after."""
    lowers = ":".join(str(store.root / "l" / layer.link) for layer in reversed(store.layers(record)))
    target.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lowers}", str(target)], check=True,
                   capture_output=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_pull_an_image_pushed_by_dockerd(local_registry: LocalRegistry, store: ImageStore) -> None:
    record, sink = run_pull(local_registry.busybox, store)
    assert record.reference == str(parse(local_registry.busybox))
    assert record.platform == "linux/amd64"
    layers = store.layers(record)
    assert layers
    assert any((layer.path / "bin" / "busybox").is_file() for layer in layers)
    assert store.config(record)["rootfs"]["diff_ids"] == [layer.diff_id for layer in layers]
    texts = [e.text for e in sink.events]
    assert texts[0] == "Pulling"
    assert texts[-1] == "Pulled"
    assert "Downloading" in texts
    assert "Pull complete" in texts
    layer_events = [e for e in sink.events if e.resource_id.startswith("layer:")]
    assert all(e.parent_id == f"image:{local_registry.busybox}" for e in layer_events)
    # missing: a second pull does nothing; always: resolves again, reuses every layer
    again, quiet = run_pull(local_registry.busybox, store)
    assert again == record
    assert quiet.events == []
    _, refreshed = run_pull(local_registry.busybox, store, policy="always")
    assert {e.text for e in refreshed.events if e.resource_id.startswith("layer:")} == {"Waiting", "Already exists"}


def test_multi_platform_index_picks_linux_amd64(local_registry: LocalRegistry, store: ImageStore) -> None:
    def marked(platform: str) -> oi.Image:
        arch, _, variant = platform.partition("/")
        return oi.make_image([oi.tar_bytes([oi.file("platform", platform.encode())])], architecture=arch,
                             variant=variant)

    reference = fresh(local_registry, "multi")
    attestation = oi.make_image([oi.tar_bytes([oi.file("attestation", b"{}")])], architecture="unknown")
    index_digest = oi.push_index(pusher(local_registry.host), reference,
                                 {"unknown/unknown": attestation, "linux/arm64": marked("arm64"),
                                  "linux/amd64": marked("amd64"), "linux/arm/v7": marked("arm/v7"),
                                  "linux/arm/v6": marked("arm/v6")})
    record, _ = run_pull(reference, store)
    assert record.index_digest == index_digest
    assert record.platform == "linux/amd64"
    assert (store.layers(record)[0].path / "platform").read_text() == "amd64"
    assert store.has_blob(index_digest)
    arm, _ = run_pull(reference, store, policy="always", platform="linux/arm/v7")
    assert (store.layers(arm)[0].path / "platform").read_text() == "arm/v7"
    with pytest.raises(ImageNotFoundError, match="no matching manifest for linux/s390x"):
        run_pull(reference, store, policy="always", platform="linux/s390x")


def test_docker_manifest_list_and_schema2(local_registry: LocalRegistry, store: ImageStore) -> None:
    reference = fresh(local_registry, "dockerlist")
    image = oi.make_image([oi.busybox_layer()], docker=True)
    oi.push_index(pusher(local_registry.host), reference, {"linux/amd64": image}, docker=True)
    record, _ = run_pull(reference, store)
    assert record.manifest == image.manifest_digest
    by_digest = f"{parse(reference).name}@{image.manifest_digest}"
    pinned, _ = run_pull(by_digest, store)
    assert pinned.reference == by_digest
    assert pinned.config == image.config_digest


def layered_image() -> oi.Image:
    capability = oi.capability_xattr()
    base = oi.tar_bytes([
        oi.directory("bin"), oi.file("bin/busybox", Path(oi.BUSYBOX).read_bytes(), mode=0o755),
        oi.directory("etc"), oi.file("etc/removed", b"lower"), oi.file("etc/kept", b"lower"),
        oi.directory("cache"), oi.file("cache/old-1", b"1"), oi.directory("cache/sub"),
        oi.file("cache/sub/old-2", b"2"),
    ])
    upper = oi.tar_bytes([
        oi.directory("etc"), oi.whiteout("etc/removed"),
        oi.directory("cache"), oi.opaque("cache"), oi.file("cache/new", b"new"),
        oi.directory("usr"), oi.file("usr/data", b"shared", mode=0o640, uid=1000, gid=1000),
        oi.hardlink("usr/data-link", "usr/data"),
        oi.file("bin/ping", b"#!/bin/sh\n", mode=0o755, xattrs={"security.capability": capability}),
        oi.symlink("bin/sh", "busybox"),
    ])
    return oi.make_image([base, upper])


def test_whiteouts_opaque_dirs_hardlinks_and_capabilities(local_registry: LocalRegistry, store: ImageStore,
                                                          tmp_path: Path) -> None:
    reference = fresh(local_registry, "layered")
    oi.push_image(pusher(local_registry.host), reference, layered_image())
    record, _ = run_pull(reference, store)
    lower, upper = (layer.path for layer in store.layers(record))
    removed = (upper / "etc" / "removed").lstat()
    assert stat.S_ISCHR(removed.st_mode)
    assert removed.st_rdev == os.makedev(0, 0)
    assert os.getxattr(upper / "cache", "trusted.overlay.opaque") == b"y"
    assert (upper / "usr" / "data").lstat().st_ino == (upper / "usr" / "data-link").lstat().st_ino
    with overlay(store, record, tmp_path / "merged") as merged:
        assert not (merged / "etc" / "removed").exists()
        assert (merged / "etc" / "kept").read_text() == "lower"
        assert sorted(p.name for p in (merged / "cache").iterdir()) == ["new"]
        data = (merged / "usr" / "data").stat()
        assert (data.st_ino, data.st_nlink) == ((merged / "usr" / "data-link").stat().st_ino, 2)
        assert (stat.S_IMODE(data.st_mode), data.st_uid, data.st_gid) == (0o640, 1000, 1000)
        getcap = subprocess.run(["getcap", str(merged / "bin" / "ping")], capture_output=True, text=True, check=True)
        assert "cap_net_raw=ep" in getcap.stdout
        assert (merged / "bin" / "busybox").stat().st_size == Path(oi.BUSYBOX).stat().st_size
    assert (lower / "etc" / "removed").read_text() == "lower"


def test_a_corrupted_blob_fails_and_leaves_the_store_consistent(local_registry: LocalRegistry,
                                                                 store: ImageStore) -> None:
    reference = fresh(local_registry, "corrupt")
    image = oi.make_image([oi.busybox_layer(), oi.tar_bytes([oi.file("second", b"2")])])
    oi.push_image(pusher(local_registry.host), reference, image)
    digest = image.layer_digests[0]
    hexid = oci.digest_hex(digest)
    data_file = next((local_registry.workdir / "storage").rglob(f"blobs/sha256/{hexid[:2]}/{hexid}/data"))
    good = data_file.read_bytes()
    data_file.write_bytes(bytes([good[0] ^ 0xFF]) + good[1:])  # same size, different content
    before = snapshot(store)
    with pytest.raises(DigestMismatchError) as caught:
        run_pull(reference, store)
    assert f"blob {digest} failed verification" in str(caught.value)
    assert "\n" not in str(caught.value)
    after = snapshot(store)
    assert after["index"] == before["index"] == []
    assert hexid not in after["blobs/sha256"]
    assert after["incoming"] == []
    assert after["tmp"] == []
    assert all(store.has_layer(f"sha256:{name}") for name in after["layers"])  # only complete layers
    data_file.write_bytes(good)
    record, _ = run_pull(reference, store)
    assert [layer.diff_id for layer in store.layers(record)] == image.diff_ids


def test_a_malicious_layer_is_refused(local_registry: LocalRegistry, store: ImageStore, tmp_path: Path) -> None:
    target = tmp_path / "outside"
    target.mkdir()
    evil = oi.tar_bytes([oi.symlink("escape", str(target)), oi.file("escape/pwned", b"x")])
    reference = fresh(local_registry, "evil")
    oi.push_image(pusher(local_registry.host), reference, oi.make_image([evil]))
    with pytest.raises(UnsafeLayerError, match="path prefix 'escape' is a symlink"):
        run_pull(reference, store)
    assert list(target.iterdir()) == []
    assert store.images() == []
    assert list((store.root / "layers").iterdir()) == []
    assert list((store.root / "incoming").iterdir()) == []


PULL_SCRIPT = """
import anyio, sys
from composer.backends.native.image.pull import pull
from composer.backends.native.image.store import ImageStore
from composer.events import NullSink
anyio.run(pull, sys.argv[1], ImageStore.open(), NullSink())
"""


def test_kill_9_in_the_middle_of_a_pull_then_pull_again(local_registry: LocalRegistry, store: ImageStore) -> None:
    big = os.urandom(96 << 20)
    image = oi.make_image([oi.busybox_layer(), oi.tar_bytes([oi.file("big", big)])], compression="")
    reference = fresh(local_registry, "big")
    oi.push_image(pusher(local_registry.host), reference, image)
    partial = store.root / "incoming" / oci.digest_hex(image.layer_digests[1])
    process = subprocess.Popen([sys.executable, "-c", PULL_SCRIPT, reference], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if partial.exists() and partial.stat().st_size > 0:
                break
            time.sleep(0.002)
        assert process.poll() is None, "the pull finished before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert store.images() == []  # nothing tagged: the index only names complete content
    record, sink = run_pull(reference, store)
    resumed = [e.details for e in sink.events if e.details.startswith("resumed at ")]
    assert resumed or store.has_blob(image.layer_digests[1])
    top = store.layers(record)[-1].path
    assert (top / "big").stat().st_size == len(big)
    assert oci.sha256_digest((top / "big").read_bytes()) == oci.sha256_digest(big)
    assert list((store.root / "incoming").iterdir()) == []


def test_unknown_image_unreachable_registry_and_bad_reference(local_registry: LocalRegistry,
                                                              store: ImageStore) -> None:
    before = snapshot(store)
    with pytest.raises(ImageNotFoundError) as missing:
        run_pull(fresh(local_registry, "absent"), store)
    assert "not found" in str(missing.value)
    with pytest.raises(ImagePullError) as unreachable:
        run_pull(f"127.0.0.1:{free_port()}/nothing/here:1", store)
    assert "cannot connect" in str(unreachable.value)
    with pytest.raises(ImageReferenceError):
        run_pull("Busybox:1", store)
    for error in (missing.value, unreachable.value):
        assert "\n" not in str(error)
    assert snapshot(store) == before


def test_pull_policies(local_registry: LocalRegistry, store: ImageStore) -> None:
    with pytest.raises(ImageNotFoundError, match="No such image"):
        run_pull(local_registry.busybox, store, policy="never")
    record, _ = run_pull(local_registry.busybox, store, policy="daily")
    same, sink = run_pull(local_registry.busybox, store, policy="every_1h")
    assert (same, sink.events) == (record, [])
    newer, sink = run_pull(local_registry.busybox, store, policy="every_0s")
    assert newer.pulled > record.pulled
    assert run_pull(local_registry.busybox, store, policy="never")[0] == newer


def test_gc_keeps_what_the_index_reaches(local_registry: LocalRegistry, store: ImageStore) -> None:
    kept, _ = run_pull(local_registry.busybox, store)
    reference = fresh(local_registry, "gc")
    oi.push_image(pusher(local_registry.host), reference, layered_image())
    dropped, _ = run_pull(reference, store)
    store.remove(dropped.reference)
    report = store.gc()
    assert report.layers == 2
    assert store.images() == [kept]
    assert all(layer.path.is_dir() for layer in store.layers(kept))
    assert not store.has_blob(dropped.manifest)


def test_docker_hub_mirror(local_registry: LocalRegistry, store: ImageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"mirrored{uuid.uuid4().hex[:8]}"
    oi.push_image(pusher(local_registry.host), f"{local_registry.host}/library/{name}:1",
                  oi.make_image([oi.busybox_layer()]))
    monkeypatch.setenv("COMPOSER_REGISTRY_MIRRORS", f"http://{local_registry.host}")
    record, _ = run_pull(f"{name}:1", store)  # docker.io/library/<name>:1, served by the mirror
    assert record.reference == f"docker.io/library/{name}:1"


def test_concurrent_pulls_share_the_work(local_registry: LocalRegistry, store: ImageStore) -> None:
    import threading

    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(run_pull(local_registry.busybox, store)[0]))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3
    assert len({r.manifest for r in results}) == 1
    assert len(list((store.root / "layers").iterdir())) == len(store.layers(results[0]))


def test_basic_auth(basic_registry: ConfiguredRegistry, store: ImageStore, tmp_path: Path) -> None:
    reference = basic_registry.reference("composer-native/private", "1")
    oi.push_image(pusher(basic_registry.host, tmp_path), reference, oi.make_image([oi.busybox_layer()]))
    with pytest.raises(RegistryAuthError) as anonymous:
        run_pull(reference, store)
    assert "authentication required" in str(anonymous.value)
    docker_login(tmp_path, basic_registry.host, USER, "wrong-password")
    with pytest.raises(RegistryAuthError) as wrong:
        run_pull(reference, store)
    assert str(wrong.value).startswith(f"{basic_registry.host}: unauthorized")
    assert "\n" not in str(wrong.value)
    assert store.images() == []
    docker_login(tmp_path, basic_registry.host, USER, PASSWORD)
    record, _ = run_pull(reference, store)
    assert (store.layers(record)[0].path / "bin" / "busybox").is_file()


def test_bearer_token_auth(token_registry: tuple[ConfiguredRegistry, TokenIssuer], store: ImageStore,
                           tmp_path: Path) -> None:
    registry, issuer = token_registry
    reference = registry.reference("composer-native/tokened", "1")
    oi.push_image(pusher(registry.host, tmp_path), reference, oi.make_image([oi.busybox_layer()]))
    docker_login(tmp_path, registry.host, USER, "wrong-password")
    with pytest.raises(RegistryAuthError) as wrong:
        run_pull(reference, store)
    assert str(wrong.value) == f"{registry.host}: unauthorized: unauthorized: incorrect username or password"
    docker_login(tmp_path, registry.host, USER, PASSWORD)
    issuer.requests.clear()
    client = RegistryClient(RegistryConfig(), CredentialStore(tmp_path / "docker"))
    record, _ = run_pull(reference, store, client=client)
    assert (store.layers(record)[0].path / "bin" / "busybox").is_file()
    scopes = {r["query"].get("scope") for r in issuer.requests}
    assert scopes == {"repository:composer-native/tokened:pull"}
    assert len(issuer.requests) == 1  # the token is cached per (host, scope)
    assert json.loads(store.read_blob(record.manifest))["schemaVersion"] == 2
