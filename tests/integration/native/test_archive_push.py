"""Image archives, pushes and the image commands of the native backend, against the real local
registry and dockerd: ``composer image save`` → ``docker load`` → ``docker run``; ``docker save``
→ ``composer image load`` (and an OCI layout); a push to another repository pulled back by
dockerd; the CLI with ``--backend native`` and COMPOSER_ROOT in a tmp dir; bad input gives one
line, exit 1 and an unchanged store. Names are unique; finalizers remove what dockerd and the
registry got.
"""

from __future__ import annotations

import http.server
import io
import json
import subprocess
import sys
import tarfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from composer.backends.native.image import oci
from composer.backends.native.image.push import Uploader, push
from composer.backends.native.image.registry import CredentialStore, Endpoint, RegistryClient, RegistryConfig
from composer.backends.native.image.store import ImageStore
from composer.cli import main
from composer.events import ListSink
from composer.image_reference import parse
from tests.integration.native.test_pull import run_pull, snapshot
from tests.integration.registry import LocalRegistry, free_port
from tests.integration.timeouts import scaled


def unique(stem: str) -> str:
    return f"composer-native/{stem}-{uuid.uuid4().hex[:10]}"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--backend", "native", "--progress", "quiet", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def docker_images(docker_api: Any) -> Iterator[list[str]]:
    """Names of dockerd images to remove after the test."""
    names: list[str] = []
    yield names
    for name in names:
        try:
            docker_api.remove_image(name, force=True)
        except Exception:
            pass


@pytest.fixture
def registry_manifests(local_registry: LocalRegistry) -> Iterator[list[tuple[str, str]]]:
    """(repository, digest) pairs to delete from the local registry after the test."""
    pushed: list[tuple[str, str]] = []
    yield pushed
    for repository, digest in pushed:
        request = urllib.request.Request(f"http://{local_registry.host}/v2/{repository}/manifests/{digest}",
                                         method="DELETE")
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except (urllib.error.URLError, OSError):
            pass


def run_container(api: Any, image: str, command: list[str]) -> int:
    container = api.create_container(image, command=command)
    try:
        api.start(container)
        return int(api.wait(container, timeout=scaled(60))["StatusCode"])
    finally:
        api.remove_container(container, force=True)


def test_image_save_then_docker_load_runs_under_dockerd(local_registry: LocalRegistry, store: ImageStore,
                                                        docker_api: Any, docker_images: list[str], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    record, _ = run_pull(local_registry.busybox, store)
    name = f"{unique('saved')}:1"
    docker_images.append(name)
    assert cli(capsys, "image", "tag", local_registry.busybox, name)[0] == 0
    target = tmp_path / "saved.tar"
    code, _, err = cli(capsys, "image", "save", "-o", str(target), name)
    assert (code, err) == (0, "")
    with tarfile.open(target) as archive:
        names = set(archive.getnames())
        manifest = json.loads(archive.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert {"manifest.json", "repositories", "index.json", "oci-layout"} <= names
    assert manifest[0]["RepoTags"] == [name]
    with target.open("rb") as data:
        list(docker_api.load_image(data))
    inspected = docker_api.inspect_image(name)
    assert inspected["Id"] == record.config
    assert inspected["RootFS"]["Layers"] == store.config(record)["rootfs"]["diff_ids"]
    assert run_container(docker_api, name, ["true"]) == 0


def _docker_save(api: Any, image: str, target: Path) -> None:
    with target.open("wb") as out:
        for chunk in api.get_image(image):
            out.write(chunk)


def test_docker_save_then_image_load_gives_the_same_layers_and_config(
        busybox_image: str, store: ImageStore, docker_api: Any, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "docker-saved.tar"
    _docker_save(docker_api, busybox_image, archive)
    before = docker_api.inspect_image(busybox_image)
    code, out, err = cli(capsys, "image", "load", "-i", str(archive))
    assert (code, err) == (0, "")
    assert out == f"Loaded image: {busybox_image}\n"
    loaded = store.get(str(parse(busybox_image)))
    assert loaded is not None
    assert loaded.source == "load"
    assert loaded.config == before["Id"]
    assert store.config(loaded)["rootfs"]["diff_ids"] == before["RootFS"]["Layers"]
    assert [layer.diff_id for layer in store.layers(loaded)] == before["RootFS"]["Layers"]
    assert any((layer.path / "bin" / "busybox").is_file() for layer in store.layers(loaded))
    # the same archive through stdin, in a subprocess: nothing new, same entry
    with archive.open("rb") as stdin:
        again = subprocess.run([sys.executable, "-m", "composer", "--backend", "native", "image", "load", "-q"],
                               stdin=stdin, capture_output=True, text=True, check=False)
    assert (again.returncode, again.stderr, again.stdout) == (0, "", "")
    assert store.get(str(parse(busybox_image)))._replace(pulled=0) == loaded._replace(pulled=0)  # type: ignore[union-attr]


def test_oci_layout_load(local_registry: LocalRegistry, store: ImageStore, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    """An OCI layout (our own save without the docker-archive files) into a fresh store."""
    record, _ = run_pull(local_registry.busybox, store)
    saved = tmp_path / "both.tar"
    assert cli(capsys, "image", "save", "-o", str(saved), local_registry.busybox)[0] == 0
    layout = tmp_path / "layout.tar"
    with tarfile.open(saved) as source, tarfile.open(layout, "w") as target:
        for member in source.getmembers():
            if member.name not in ("manifest.json", "repositories"):
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
    other = ImageStore.open(tmp_path / "other-root")
    from composer.backends.native.image.archive import load

    (loaded,) = load(other, layout)
    assert loaded.reference == record.reference
    assert loaded.config == record.config
    assert other.config(loaded) == store.config(record)
    assert [layer.diff_id for layer in other.layers(loaded)] == [layer.diff_id for layer in store.layers(record)]


def test_push_to_another_repository_then_dockerd_pulls_it(
        local_registry: LocalRegistry, store: ImageStore, docker_api: Any, docker_images: list[str],
        registry_manifests: list[tuple[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record, _ = run_pull(local_registry.busybox, store)
    repository = unique("pushed")
    target = local_registry.reference(repository, "2")
    docker_images.append(target)
    assert cli(capsys, "image", "tag", local_registry.busybox, target)[0] == 0
    compose = tmp_path / "compose.yaml"
    compose.write_text(f"services:\n  app:\n    image: {target}\n    build: .\n")  # v2 pushes built images only
    code, _, err = cli(capsys, "-f", str(compose), "push")
    assert (code, err) == (0, "")
    registry_manifests.append((repository, record.manifest))
    assert local_registry.tags(repository) == ["2"]
    for message in docker_api.pull(target.rsplit(":", 1)[0], tag="2", stream=True, decode=True):
        assert not message.get("error"), message
    inspected = docker_api.inspect_image(target)
    assert inspected["Id"] == record.config
    assert inspected["RootFS"]["Layers"] == store.config(record)["rootfs"]["diff_ids"]
    # pushing again: every blob is already there
    sink = ListSink()
    anyio.run(lambda: push(target, store, sink))
    texts = {event.text for event in sink.events if event.resource_id.startswith("layer:")}
    assert texts <= {"Waiting", "Layer already exists"}


class _Relay:
    """An HTTP relay in front of the registry that answers the upload POST with a Location on
    another host (``localhost:<registry port>``, the registry itself under another name), and
    records which host each request went to and whether it carried credentials."""

    def __init__(self, registry: LocalRegistry) -> None:
        self.registry = registry
        self.port = free_port()
        self.seen: list[tuple[str, str]] = []
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                relay.seen.append((self.command, self.path))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                request = urllib.request.Request(f"http://{registry.host}{self.path}", data=body, method=self.command,
                                                 headers=headers)
                try:
                    response = urllib.request.urlopen(request, timeout=30)
                    status, answer_headers, data = response.status, response.headers, response.read()
                except urllib.error.HTTPError as exc:
                    status, answer_headers, data = exc.code, exc.headers, exc.read()
                self.send_response(status)
                for key, value in answer_headers.items():
                    if key.lower() in ("content-length", "connection", "transfer-encoding", "date"):
                        continue
                    if key.lower() == "location" and self.command == "POST":
                        parsed = urllib.parse.urlsplit(value)
                        value = f"http://localhost:{registry.port}{parsed.path}?{parsed.query}"
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _forward

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_chunked_upload_follows_a_location_on_another_host(local_registry: LocalRegistry, store: ImageStore,
                                                           registry_manifests: list[tuple[str, str]]) -> None:
    relay = _Relay(local_registry)
    try:
        data = bytes(range(256)) * 1024 + b"tail"  # 256 KiB and a bit: five chunks of 64 KiB
        digest = oci.sha256_digest(data)
        repository = unique("chunked")
        ref = parse(f"127.0.0.1:{relay.port}/{repository}:1")
        client = RegistryClient(RegistryConfig(), CredentialStore(Path("/nonexistent")), operation="push")
        uploader = Uploader(client, Endpoint("http", f"127.0.0.1:{relay.port}"), ref, chunk=64 << 10)
        progress: list[int] = []
        assert uploader.upload(digest, io.BytesIO(data), len(data), progress.append) == "pushed"
        assert progress[-1] == len(data)
        assert len(progress) >= 5
        assert [method for method, _ in relay.seen] == ["HEAD", "POST"]  # the rest went to the other host
        with urllib.request.urlopen(f"http://{local_registry.host}/v2/{repository}/blobs/{digest}") as response:
            assert response.read() == data
        assert uploader.upload(digest, io.BytesIO(data), len(data)) == "exists"
    finally:
        relay.stop()


def test_cli_pull_images_push_with_the_native_backend(local_registry: LocalRegistry, store: ImageStore,
                                                       registry_manifests: list[tuple[str, str]], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(f"name: nativecli\nservices:\n  app:\n    image: {local_registry.busybox}\n")
    code, _, err = cli(capsys, "-f", str(compose), "pull")
    assert (code, err) == (0, "")
    record = store.get(str(parse(local_registry.busybox)))
    assert record is not None
    assert record.source == "pull"
    code, out, err = cli(capsys, "-f", str(compose), "images")
    assert (code, err) == (0, "")  # no native containers yet: the header only
    code, out, _ = cli(capsys, "image", "ls")
    assert code == 0
    assert record.config.removeprefix("sha256:")[:12] in out
    assert f"{local_registry.host}/composer-test/busybox" in out
    # push it (v2 pushes services with build: only) to another repository
    repository = unique("cli-pushed")
    target = local_registry.reference(repository, "latest")
    assert cli(capsys, "image", "tag", local_registry.busybox, target)[0] == 0
    compose.write_text(f"name: nativecli\nservices:\n  app:\n    image: {target}\n    build: .\n")
    code, _, err = cli(capsys, "-f", str(compose), "push")
    assert (code, err) == (0, "")
    registry_manifests.append((repository, record.manifest))
    assert local_registry.tags(repository) == ["latest"]
    # its build: the native builder names the Dockerfile that is not there, in one line
    code, _, err = cli(capsys, "-f", str(compose), "build")
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("composer: ")]
    assert len(errors) == 1, err
    assert errors[0].endswith(f"cannot read {compose.parent / 'Dockerfile'}: No such file or directory"), err


def test_bad_input_gives_one_line_exit_1_and_an_unchanged_store(
        local_registry: LocalRegistry, store: ImageStore, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    run_pull(local_registry.busybox, store)
    before = snapshot(store)
    closed = f"127.0.0.1:{free_port()}/nothing/here:1"
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"this is not a tar archive at all" * 100)
    not_an_image = tmp_path / "plain.tar"
    with tarfile.open(not_an_image, "w") as archive:
        archive.addfile(tarfile.TarInfo("hello.txt"), io.BytesIO(b""))
    cases: list[tuple[list[str], str]] = []
    for number, (image, pulling, pushing) in enumerate((
            (local_registry.reference(unique("absent"), "1"), "not found", "No such image"),
            (closed, "cannot connect", "No such image"),
            ("Bad::Reference", "invalid reference format", "invalid reference format"))):
        pulled, pushed = tmp_path / f"pull-{number}.yaml", tmp_path / f"push-{number}.yaml"
        pulled.write_text(f"services:\n  app:\n    image: {json.dumps(image)}\n")
        pushed.write_text(f"services:\n  app:\n    image: {json.dumps(image)}\n    build: .\n")
        cases += [(["-f", str(pulled), "pull"], pulling), (["-f", str(pushed), "push"], pushing)]
    cases += [
        (["image", "save", "-o", str(tmp_path / "out.tar"), "composer-native/absent:1"], "No such image"),
        (["image", "save", "-o", str(tmp_path / "out.tar"), "Bad::Reference"], "invalid reference format"),
        (["image", "tag", "composer-native/absent:1", "x:1"], "No such image"),
        (["image", "load", "-i", str(garbage)], "not a tar archive"),
        (["image", "load", "-i", str(not_an_image)], "not a docker-archive"),
        (["image", "load", "-i", str(tmp_path / "missing.tar")], "no such file"),
    ]
    for argv, expected in cases:
        code, _out, err = cli(capsys, *argv)
        # one error line, as the docker backend's tests count them (the quiet renderer echoes the
        # failed operation's events before it), and no hint
        lines = [line for line in err.strip().splitlines() if line.startswith("composer: ")]
        assert code == 1, (argv, err)
        assert len(lines) == 1, (argv, err)
        assert "hint:" not in err, (argv, err)
        assert expected in lines[0], (argv, err)
        assert not (tmp_path / "out.tar").exists()
    assert snapshot(store) == before
