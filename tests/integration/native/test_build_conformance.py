"""The build-conformance suite: each Dockerfile in build_conformance/ is built twice from the same
context, by ``DOCKER_BUILDKIT=1 /usr/bin/docker build`` (Debian's CLI drives the engine's BuildKit
without buildx) on the real dockerd and by the native builder, and the two images are compared:

- the image configs (CONFIG_FIELDS) and the history (created_by, empty_layer);
- the flattened filesystems: each image's layer tars (``docker save``'s, the store's blobs)
  applied in order by one function (``flatten``: whiteouts and opaque folders applied), then per
  path its type, mode, uid/gid, size, content hash, link target and xattrs, and the hard-link groups.

They must be equal except the differences ALLOWED lists, each with its reason. The base image is
the busybox test image, pulled by both from the local registry. The context is made by
``make_context`` (modes, owners, links, hard links and xattrs cannot be committed to git).

Cases for features other helpers build, or that dockerd 20.10's BuildKit cannot build here, are
listed in PENDING_CASES instead.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import itertools
import json
import os
import stat
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
import pytest

from composer.backends.native.backend import NativeBackend
from composer.backends.native.image.store import ImageStore
from composer.contract.backend import BuildSpec
from composer.events import ListSink
from composer.spec.models.service import ServiceConfig
from tests.integration.registry import LocalRegistry
from tests.integration.timeouts import scaled

CASES = Path(__file__).parent / "build_conformance"
CGROUP_PARENT = f"composer-test-conformance-{os.getpid()}"
CONFIG_FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "StopSignal",
                 "Healthcheck", "Shell", "OnBuild")
# What a case needs besides its Dockerfile: --target and --build-arg.
OPTIONS: dict[str, dict[str, Any]] = {
    "stages": {"target": "final"},
    "args": {"args": {"GIVEN": "from-the-command-line", "LOCAL": "cli-local"}},
}
# The differences allowed, each with its reason. Everything else must be equal.
ALLOWED = {
    "mtime": "the times of what a build makes (RUN's files, COPY's new folders) are each build's own; "
             "a file's time older than the builds (the base's files, the context's) must be equal",
    "mtime of folders": "not compared: BuildKit 0.8 gives the folders WORKDIR makes the time of an earlier "
                        "build of the same step even with --no-cache; and the context's empty sticky (1777) folder "
                        "came out of the native COPY with a later time than BuildKit's (not explained yet: "
                        "the one open question of this list)",
    "history.created": "the history's times are the times each build ran",
    "ArgsEscaped": "BuildKit 0.8 (dockerd 20.10) marks shell-form CMD/ENTRYPOINT ArgsEscaped on Linux too; "
                   "BuildKit 0.11 and later set it only for Windows images, as composer does",
}
# Cases not in this suite yet, and why.
PENDING_CASES = {
    "run-mount-cache-bind-tmpfs-secret": "RUN --mount: the bflags helper's (issue 18), refused by the native "
                                         "builder until it lands",
    "copy-link-parents-exclude": "COPY --link/--parents/--exclude: the bflags helper's; dockerd 20.10's "
                                 "BuildKit frontend has none of them, so the expected results are BuildKit's "
                                 "documentation's, not a docker build",
    "add-archive-and-url": "ADD of local archives and of URLs (--checksum): the bflags helper's",
    "heredocs": "RUN/COPY heredocs: dockerd 20.10's BuildKit frontend cannot parse them and no newer "
                "# syntax= image can be pulled here; asserted against BuildKit's documentation elsewhere",
    "run-network-host": "RUN --network=host: refused by the native builder",
    "wordpress-stand-ins": "examples/wordpress-mysql/images/*/Dockerfile are FROM the debootstrap base that "
                           "scripts/prepare-example-images makes (minutes of apt-get): too slow for this suite",
}


def make_context(folder: Path) -> None:
    """The shared build context: modes, an owner, links, hard links, xattrs, trees for globs and
    dockerignore patterns, and an /etc/passwd and /etc/group for --chown by name."""
    def write(path: str, text: str, mode: int = 0o644) -> Path:
        file = folder / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
        os.chmod(file, mode)
        return file

    write("files/plain.txt", "plain\n")
    write("files/exec.sh", "#!/bin/sh\necho exec\n", 0o755)
    write("files/odd-mode", "odd\n", 0o604)
    write("files/setuid", "setuid\n", 0o4755)
    os.chown(write("files/owned", "owned\n"), 1234, 5678)
    (folder / "files" / "sticky").mkdir()
    os.chmod(folder / "files" / "sticky", 0o1777)
    (folder / "files" / "private").mkdir(mode=0o700)
    os.chmod(folder / "files" / "private", 0o700)
    write("files/private/inside", "inside\n", 0o600)
    (folder / "links").mkdir()
    os.symlink("../files/plain.txt", folder / "links" / "rel")
    os.symlink("/etc/passwd", folder / "links" / "abs")
    os.symlink("../files", folder / "links" / "dir-link")
    os.symlink("nowhere", folder / "links" / "dangling")
    write("hard/a", "hard\n")
    (folder / "hard" / "sub").mkdir()
    os.link(folder / "hard" / "a", folder / "hard" / "b")
    os.link(folder / "hard" / "a", folder / "hard" / "sub" / "c")
    os.setxattr(write("xattr/user-attr", "attr\n"), "user.comment", b"hello")
    subprocess.run(["setcap", "cap_net_bind_service+ep", str(write("xattr/cap", "cap\n", 0o755))], check=True)
    (folder / "empty-dir").mkdir()
    write("tree/a/b/c.txt", "c\n")
    write("tree/a/b/y.log", "y\n")
    write("tree/a/b/important.log", "important\n")
    write("tree/a/keep.md", "keep\n")
    write("tree/x.log", "x\n")
    write("glob/one.txt", "one\n")
    write("glob/two.txt", "two\n")
    write("glob/three.md", "three\n")
    write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    write("etc/group", "root:x:0:\nwheel:x:10:app\nstaff:x:50:app,other\napp:x:1000:\n")


@dataclass(frozen=True)
class Node:
    """One path of a flattened image (times left out: ALLOWED["mtime"])."""

    kind: str
    mode: str
    uid: int
    gid: int
    size: int
    sha256: str
    target: str
    xattrs: tuple[tuple[str, str], ...]
    text: bytes = field(default=b"", compare=False, repr=False)  # a small file's bytes, for the messages
    mtime: int = field(default=0, compare=False, repr=False)  # compared apart: only what both builds found made


@dataclass
class Flat:
    nodes: dict[str, Node]
    hard_links: list[tuple[str, ...]]  # the groups of paths that are one file


_KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink",
          tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


def _clean(name: str) -> str:
    parts = [part for part in name.split("/") if part not in ("", ".")]
    return "/" + "/".join(parts)


def flatten(layers: Sequence[IO[bytes] | gzip.GzipFile]) -> Flat:
    """The filesystem the layer tars (bottom first) make, as overlay shows it."""
    nodes: dict[str, Node] = {}
    origin: dict[str, int] = {}  # path -> the layer it came from
    group_of: dict[str, int] = {}  # path -> its hard-link group
    groups = 0

    def drop(path: str, *, below: int | None = None, keep_self: bool = False) -> None:
        for other in [p for p in nodes if p == path or p.startswith(path.rstrip("/") + "/")]:
            if (keep_self and other == path) or (below is not None and origin[other] >= below):
                continue
            del nodes[other]
            origin.pop(other, None)
            group_of.pop(other, None)

    for index, layer in enumerate(layers):
        with tarfile.open(fileobj=layer, mode="r|*") as archive:
            for member in archive:
                path = _clean(member.name)
                folder, _, base = path.rpartition("/")
                folder = folder or "/"
                if base == ".wh..wh..opq":
                    drop(folder, below=index, keep_self=True)
                    continue
                if base.startswith(".wh."):
                    drop(f"{folder.rstrip('/')}/{base[4:]}")
                    continue
                if member.islnk():
                    source = _clean(member.linkname)
                    drop(path)
                    nodes[path], origin[path] = nodes[source], index
                    if source not in group_of:
                        groups += 1
                        group_of[source] = groups
                    group_of[path] = group_of[source]
                    continue
                kind = _KINDS.get(member.type, f"type {member.type!r}")
                if kind != "dir" or path not in nodes or nodes[path].kind != "dir":
                    drop(path)
                digest, data = "", b""
                if member.isreg():
                    extracted = archive.extractfile(member)
                    assert extracted is not None
                    data = extracted.read()
                    digest = hashlib.sha256(data).hexdigest()
                xattrs = tuple(sorted((key.removeprefix("SCHILY.xattr."), value) for key, value in
                                      member.pax_headers.items() if key.startswith("SCHILY.xattr.")))
                size = member.size if member.isreg() else 0
                nodes[path] = Node(kind, oct(stat.S_IMODE(member.mode)), member.uid, member.gid, size, digest,
                                   member.linkname if member.issym() else "", xattrs, data[:200], int(member.mtime))
                origin[path] = index
                group_of.pop(path, None)
    members: dict[int, list[str]] = {}
    for path, group in group_of.items():
        members.setdefault(group, []).append(path)
    return Flat(nodes, sorted(tuple(sorted(paths)) for paths in members.values() if len(paths) > 1))


def _docker(*args: str, cwd: Path | None = None, stdout: IO[bytes] | None = None) -> str:
    result = subprocess.run(["/usr/bin/docker", *args], cwd=cwd, stdout=stdout or subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=scaled(600),
                            env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode() if stdout is None else ""


@dataclass
class Image:
    config: dict[str, Any]
    flat: Flat


def build_with_buildkit(context: Path, dockerfile: str, options: dict[str, Any], workdir: Path) -> Image:
    tag = f"composer-conformance:{uuid.uuid4().hex[:12]}"
    argv = ["build", "-q", "--no-cache", "-t", tag, "-f", dockerfile]  # a cached step keeps an earlier run's times
    if options.get("target"):
        argv += ["--target", options["target"]]
    for key, value in (options.get("args") or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    saved = workdir / "saved.tar"
    started = time.monotonic()
    try:
        _docker(*argv, ".", cwd=context)
        print(f"docker build: {time.monotonic() - started:.1f}s")  # noqa: T201 - timings are printed, not asserted
        with saved.open("wb") as out:
            _docker("save", tag, stdout=out)
    finally:
        subprocess.run(["/usr/bin/docker", "rmi", "-f", tag], capture_output=True, check=False)
    with tarfile.open(saved) as archive:
        def member(name: str) -> bytes:
            handle = archive.extractfile(name)
            assert handle is not None
            return handle.read()

        manifest = json.loads(member("manifest.json"))[0]
        config = json.loads(member(manifest["Config"]))
        flat = flatten([io.BytesIO(member(name)) for name in manifest["Layers"]])
    saved.unlink()
    return Image(config, flat)


def build_natively(store: ImageStore, context: Path, dockerfile: str, options: dict[str, Any]) -> Image:
    service = ServiceConfig.model_validate({"name": "web", "build": {"context": str(context), "dockerfile": dockerfile,
                                                                     "target": options.get("target")}})
    run_root = store.root.parent / "run"
    backend = NativeBackend(store.root, environ={"COMPOSER_RUN_ROOT": str(run_root),
                                                 "COMPOSER_CGROUP_PARENT": CGROUP_PARENT})
    started = time.monotonic()
    try:
        anyio.run(backend.build_image, BuildSpec("conformance", service, "conformance", {},
                                                 args=options.get("args") or {}), ListSink())
    finally:
        anyio.run(backend.aclose)
    print(f"native build: {time.monotonic() - started:.1f}s")  # noqa: T201 - timings are printed, not asserted
    record = backend.store.get("docker.io/library/conformance:latest")
    assert record is not None
    config = backend.store.config(record)
    blobs = [backend.store.blob_path(layer["digest"]) for layer in backend.store.manifest(record)["layers"]]
    with contextlib.ExitStack() as stack:
        opened: list[IO[bytes]] = [stack.enter_context(blob.open("rb")) for blob in blobs]
        flat = flatten([gzip.GzipFile(fileobj=handle, mode="rb") for handle in opened])
    return Image(config, flat)


@pytest.fixture(scope="module", autouse=True)
def _the_cgroup_parent_goes() -> Iterator[None]:
    from tests.support.isolation import remove_cgroup_parent

    yield
    remove_cgroup_parent(CGROUP_PARENT)


def _history(config: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(entry.get("created_by", ""), bool(entry.get("empty_layer"))) for entry in config.get("history") or []]


def _differences(theirs: Flat, ours: Flat, started: float) -> list[str]:
    found = []
    for path in sorted(set(theirs.nodes) | set(ours.nodes)):
        mine, buildkit = ours.nodes.get(path), theirs.nodes.get(path)
        # times: a file that existed before the builds ran (the base's, the context's) keeps its time
        if (mine and buildkit and buildkit.kind != "dir" and buildkit.mtime < started - 1
                and mine.mtime != buildkit.mtime):
            found.append(f"{path}: mtime buildkit {buildkit.mtime} native {mine.mtime}")
        if mine != buildkit:
            found.append(f"{path}: buildkit {buildkit} native {mine}")
            if mine and buildkit and mine.sha256 != buildkit.sha256:
                found.append(f"{path}: buildkit's bytes {buildkit.text!r}, native's {mine.text!r}")
    if theirs.hard_links != ours.hard_links:
        found.append(f"hard links: buildkit {theirs.hard_links} native {ours.hard_links}")
    return found


@pytest.fixture(scope="module")
def shared_base(local_registry: LocalRegistry, docker_api: Any,
                tmp_path_factory: pytest.TempPathFactory) -> str:
    """bases/shared.Dockerfile built once by docker build and pushed to the local registry, for the
    cases FROM ``{shared}`` (the local tags removed; the registry goes with local_registry)."""
    from tests.integration import registry

    context = tmp_path_factory.mktemp("shared-base")
    make_context(context)
    (context / "Dockerfile").write_text((CASES / "bases" / "shared.Dockerfile").read_text()
                                        .replace("{base}", local_registry.busybox))
    tag = f"composer-conformance-base:{uuid.uuid4().hex[:12]}"
    reference = local_registry.reference("composer-test/conformance-base")
    _docker("build", "-q", "-t", tag, ".", cwd=context)
    try:
        registry.push(docker_api, tag, reference)
    finally:
        subprocess.run(["/usr/bin/docker", "rmi", "-f", tag], capture_output=True, check=False)
    return reference


@pytest.mark.parametrize("case", sorted(path.name.removesuffix(".Dockerfile")
                                        for path in CASES.glob("*.Dockerfile")))
def test_native_build_equals_buildkits(case: str, store: ImageStore, local_registry: LocalRegistry,
                                       tmp_path: Path, request: pytest.FixtureRequest) -> None:
    context = tmp_path / "context"
    make_context(context)
    dockerfile = f"{case}.Dockerfile"
    for name in (dockerfile, f"{dockerfile}.dockerignore"):
        if (CASES / name).is_file():
            text = (CASES / name).read_text().replace("{base}", local_registry.busybox)
            if "{shared}" in text:
                text = text.replace("{shared}", request.getfixturevalue("shared_base"))
            (context / name).write_text(text)
    options = OPTIONS.get(case, {})
    started = time.time()
    theirs = build_with_buildkit(context, dockerfile, options, tmp_path)
    ours = build_natively(store, context, dockerfile, options)

    differences = [f"config {name}: buildkit {theirs.config['config'].get(name)!r} native "
                   f"{ours.config['config'].get(name)!r}" for name in CONFIG_FIELDS
                   if (ours.config["config"].get(name) or None) != (theirs.config["config"].get(name) or None)]
    theirs_history, ours_history = _history(theirs.config), _history(ours.config)
    differences += [f"history {index}: buildkit {pair[0]} native {pair[1]}" for index, pair in
                    enumerate(itertools.zip_longest(theirs_history, ours_history)) if pair[0] != pair[1]]
    for key in ("os", "architecture"):
        if ours.config.get(key) != theirs.config.get(key):
            differences.append(f"{key}: buildkit {theirs.config.get(key)} native {ours.config.get(key)}")
    layers = [len(image.config["rootfs"]["diff_ids"]) for image in (theirs, ours)]
    if layers[0] != layers[1]:
        differences.append(f"layers: buildkit {layers[0]} native {layers[1]}")
    differences += _differences(theirs.flat, ours.flat, started)
    assert differences == [], "\n".join(differences)
    assert theirs.flat.nodes, "an image with no files compares nothing"


def test_flatten_applies_whiteouts_opaque_folders_and_hard_links() -> None:
    """flatten, on layers written here: the comparison is only as good as it."""
    def layer(*members: tuple[str, bytes, str]) -> IO[bytes]:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for name, kind, extra in members:
                info = tarfile.TarInfo(name)
                info.type = kind
                if kind == tarfile.LNKTYPE or kind == tarfile.SYMTYPE:
                    info.linkname = extra
                    archive.addfile(info)
                else:
                    data = extra.encode()
                    info.size = len(data) if kind == tarfile.REGTYPE else 0
                    archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        buffer.seek(0)
        return buffer

    flat = flatten([
        layer(("d/", tarfile.DIRTYPE, ""), ("d/a", tarfile.REGTYPE, "a"), ("d/b", tarfile.REGTYPE, "b"),
              ("o/", tarfile.DIRTYPE, ""), ("o/old", tarfile.REGTYPE, "old"), ("h", tarfile.REGTYPE, "h"),
              ("h2", tarfile.LNKTYPE, "h"), ("h3", tarfile.LNKTYPE, "h")),
        layer(("d/.wh.a", tarfile.REGTYPE, ""), ("o/", tarfile.DIRTYPE, ""), ("o/new", tarfile.REGTYPE, "new"),
              ("o/.wh..wh..opq", tarfile.REGTYPE, ""), ("h3", tarfile.SYMTYPE, "h")),
    ])
    assert sorted(flat.nodes) == ["/d", "/d/b", "/h", "/h2", "/h3", "/o", "/o/new"]
    assert flat.nodes["/h3"].kind == "symlink"
    assert flat.hard_links == [("/h", "/h2")]
    assert flat.nodes["/o/new"].sha256 == hashlib.sha256(b"new").hexdigest()
