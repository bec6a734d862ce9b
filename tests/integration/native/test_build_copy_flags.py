"""Real native builds with COPY/ADD ``--exclude``, ``--parents``, ``--link``, ADD of local tar
archives (extracted, compression detected by content) and of http(s) URLs (``--checksum``),
served by a server on 127.0.0.1 that only the host side can reach: a build container cannot
(test_build's network tests), so a fetched file proves the fetch is the builder's, on the host.

The engine's BuildKit here (dockerfile frontend 1.2) has no --exclude, --parents, --link or
--checksum; the results asserted are the ones BuildKit's Dockerfile reference documents.
test_add_archive_and_url_equal_buildkits builds what it does support side by side.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from secrets import token_hex

import pytest

from composer.backends.native.image.store import ImageStore
from composer.errors import ImageBuildError, UnsupportedFeatureError
from tests.integration.native.test_build import _the_cgroup_parent_goes, build, context, layer_members, mode_owner, read
from tests.integration.registry import LocalRegistry
from tests.support.file_server import serving

__all__ = ["_the_cgroup_parent_goes", "context"]  # test_build's fixtures: the context, the cgroup removed

DOCKER = "/usr/bin/docker"


def test_exclude_and_parents(store: ImageStore, context: Path) -> None:
    rootfs = build(store, context, """\
FROM scratch
COPY --exclude=*.md --exclude=logs . /all/
COPY --exclude=keep.key app /app/
COPY --exclude=sub app /nosub/
COPY --exclude=*.txt app/sub/data.txt notes.md /named/
COPY --parents app/sub/data.txt notes.md /p/
COPY --parents ./app/./sub/data.txt /q/
""")
    assert rootfs.resolve("/all/notes.md")[1] is None
    assert read(rootfs, "/all/app/main.sh") == "echo main\n"
    assert rootfs.resolve("/app/keep.key")[1] is None
    assert read(rootfs, "/app/sub/data.txt") == "data\n"
    assert rootfs.resolve("/nosub/sub")[1] is None
    assert read(rootfs, "/nosub/main.sh") == "echo main\n"
    assert rootfs.resolve("/named/data.txt")[1] is None  # a named file: its name is matched
    assert read(rootfs, "/named/notes.md") == "notes\n"
    assert read(rootfs, "/p/app/sub/data.txt") == "data\n"  # the source's folders kept
    assert read(rootfs, "/p/notes.md") == "notes\n"
    assert read(rootfs, "/q/sub/data.txt") == "data\n"  # below the /./ pivot only
    assert rootfs.resolve("/q/app")[1] is None


def test_a_missing_source_names_the_dockerignore_rule(store: ImageStore, context: Path) -> None:
    """A path or a wildcard whose files .dockerignore excluded: the error names the pattern."""
    with pytest.raises(ImageBuildError, match=r"Dockerfile:2: COPY logs/\*.log /x/: \"/logs/\*.log\": not found "
                                              r"\(excluded by the .dockerignore pattern 'logs'\)$"):
        build(store, context, "FROM scratch\nCOPY logs/*.log /x/\n")
    with pytest.raises(ImageBuildError, match=r"\"/app/secret.key\": not found \(excluded by the .dockerignore "
                                              r"pattern '\*\*/\*.key'\)$"):
        build(store, context, "FROM scratch\nCOPY app/secret.key /x/\n")
    with pytest.raises(ImageBuildError, match=r"\"/nothing\*\": not found$"):
        build(store, context, "FROM scratch\nCOPY nothing* /x/\n")


def test_copy_link_is_a_layer_of_its_own(store: ImageStore, context: Path, local_registry: LocalRegistry) -> None:
    """--link: the files are laid out on their own, not against the stage's files (BuildKit
    documents it as copying into an empty folder and merging that on top): a link already at
    the destination is replaced, not followed."""
    rootfs = build(store, context, f"""\
FROM {local_registry.busybox}
RUN --network=none mkdir /real && ln -s /real /lnk
COPY --link notes.md /linked/
COPY --link notes.md /lnk/
""")
    assert read(rootfs, "/linked/notes.md") == "notes\n"
    last = layer_members(store)[-1]
    assert [member.name for member in last] == ["lnk", "lnk/notes.md"]
    assert last[0].isdir()
    assert rootfs.resolve("/real/notes.md")[1] is None


def _tar(members: list[tuple[str, bytes | None, str]]) -> bytes:
    """A tar of (name, content or None for a folder, symlink target) entries, owned 1234:5678."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            info.uid, info.gid, info.mtime = 1234, 5678, 1_600_000_000
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
                archive.addfile(info)
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o750
                archive.addfile(info)
            else:
                info.size, info.mode = len(data), 0o640
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_add_local_archives_are_extracted(store: ImageStore, context: Path) -> None:
    plain = _tar([("top/", None, ""), ("top/file.txt", b"in tar\n", ""), ("top/link", None, "/etc/passwd"),
                  ("../../escape.txt", b"stays inside\n", "")])
    (context / "plain.tar").write_bytes(plain)
    (context / "files.tar.gz").write_bytes(gzip.compress(plain))
    (context / "misnamed.bin").write_bytes(bz2.compress(plain))  # detected by content, not by name
    (context / "files.tar.xz").write_bytes(lzma.compress(plain))
    (context / "text.gz").write_bytes(gzip.compress(b"not a tar\n"))  # compressed but no tar: copied as it is
    rootfs = build(store, context, """\
FROM scratch
ADD plain.tar /plain
ADD files.tar.gz /gz/
ADD misnamed.bin /bz/
ADD files.tar.xz /xz/
ADD text.gz /text/
COPY plain.tar /copied/
""")
    for folder in ("/plain", "/gz", "/bz", "/xz"):
        assert read(rootfs, f"{folder}/top/file.txt") == "in tar\n"
        assert mode_owner(rootfs, f"{folder}/top/file.txt") == ("0o640", 1234, 5678)  # the archive's owners
        assert mode_owner(rootfs, f"{folder}/top") == ("0o750", 1234, 5678)
        link = rootfs.resolve(f"{folder}/top/link", follow_last=False)[1]
        assert link is not None
        assert os.readlink(link.host) == "/etc/passwd"
        assert read(rootfs, f"{folder}/escape.txt") == "stays inside\n"  # ../ cannot leave the destination
    assert rootfs.resolve("/escape.txt")[1] is None
    assert gzip.decompress(rootfs.resolve("/text/text.gz")[1].host.read_bytes()) == b"not a tar\n"  # type: ignore[union-attr]
    assert rootfs.resolve("/copied/plain.tar")[1] is not None  # COPY never extracts


def test_an_archive_bomb_is_one_line(store: ImageStore, context: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An archive is metered as a pulled layer is: past COMPOSER_LAYER_MAX_BYTES, a one-line error
    and nothing left in the store's tmp/."""
    monkeypatch.setenv("COMPOSER_LAYER_MAX_BYTES", str(1 << 20))
    (context / "bomb.tar.gz").write_bytes(gzip.compress(_tar([("zeros", b"\0" * (4 << 20), "")])))
    with pytest.raises(ImageBuildError, match=r"Dockerfile:2: ADD bomb.tar.gz /x/: bomb.tar.gz: the archive unpacks "
                                              r"to more than 1048576 bytes"):
        build(store, context, "FROM scratch\nADD bomb.tar.gz /x/\n")
    assert list((store.root / "tmp").iterdir()) == []


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """An http server on 127.0.0.1 serving ``files`` (path -> bytes); stopped at the end."""
    files: dict[str, bytes] = {}
    with serving(files) as base:
        yield base, files


def test_add_of_urls_with_checksum(store: ImageStore, context: Path, server: tuple[str, dict[str, bytes]]) -> None:
    base, files = server
    files["/dir/hello.txt"] = b"hello over http\n"
    files["/bundle.tar.gz"] = gzip.compress(_tar([("inside.txt", b"x\n", "")]))
    digest = hashlib.sha256(files["/dir/hello.txt"]).hexdigest()
    rootfs = build(store, context, f"""\
FROM scratch
ADD --checksum=sha256:{digest} {base}/dir/hello.txt /dl/
ADD {base}/dir/hello.txt /renamed.txt
ADD --chmod=644 {base}/bundle.tar.gz /bundle/
""", network="none")  # fetched by the builder on the host: no build container's network is involved
    assert read(rootfs, "/dl/hello.txt") == "hello over http\n"
    assert mode_owner(rootfs, "/dl/hello.txt") == ("0o600", 0, 0)  # Docker: a remote file gets 0600
    _, entry = rootfs.resolve("/dl/hello.txt")
    assert entry is not None
    assert int(entry.info.st_mtime) == 1445412480  # its Last-Modified
    assert read(rootfs, "/renamed.txt") == "hello over http\n"
    assert rootfs.resolve("/bundle/bundle.tar.gz")[1] is not None  # a remote archive is not extracted
    assert mode_owner(rootfs, "/bundle/bundle.tar.gz") == ("0o644", 0, 0)
    wrong = "0" * 64
    with pytest.raises(ImageBuildError, match=rf"Dockerfile:2: ADD --checksum=sha256:{wrong} .*: digest mismatch "
                                              rf"sha256:{digest}: expected sha256:{wrong}$"):
        build(store, context, f"FROM scratch\nADD --checksum=sha256:{wrong} {base}/dir/hello.txt /x\n", image="bad")
    with pytest.raises(ImageBuildError, match=r"Dockerfile:2: .*failed to fetch .*/missing: invalid response "
                                              r"status 404 \(Not Found\)$"):
        build(store, context, f"FROM scratch\nADD {base}/missing /x\n", image="bad")
    with pytest.raises(ImageBuildError, match=r"--checksum can only be used with HTTP\(S\) sources$"):
        build(store, context, f"FROM scratch\nADD --checksum=sha256:{digest} notes.md /x\n", image="bad")
    with pytest.raises(UnsupportedFeatureError, match=r"Dockerfile:2: ADD of a git repository is not supported"):
        build(store, context, "FROM scratch\nADD git@example.invalid:org/repo.git /src\n", image="bad")
    assert list((store.root / "tmp").iterdir()) == []  # no download left


def test_add_archive_and_url_equal_buildkits(store: ImageStore, context: Path, local_registry: LocalRegistry,
                                             server: tuple[str, dict[str, bytes]]) -> None:
    """What the engine's BuildKit builds too (ADD of a local archive and of a URL): the same files."""
    base, files = server
    files["/dir/hello.txt"] = b"hello over http\n"
    (context / "files.tar.gz").write_bytes(gzip.compress(_tar([("top/", None, ""), ("top/file.txt", b"in tar\n", ""),
                                                                ("top/link", None, "file.txt")])))
    dockerfile = f"""\
FROM {local_registry.busybox}
ADD files.tar.gz /gz/
ADD {base}/dir/hello.txt /dl/
"""
    native = build(store, context, dockerfile)
    probe = "find /gz /dl | sort | while read p; do stat -c '%n %F %a %u %g %s' $p; done; cat /gz/top/file.txt /dl/*"
    image = f"composer-test-add-{token_hex(4)}:latest"
    try:
        subprocess.run([DOCKER, "build", "-q", "-t", image, str(context)], check=True, capture_output=True,
                       env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin"})
        theirs = subprocess.run([DOCKER, "run", "--rm", "--network=none", image, "sh", "-c", probe], check=True,
                                capture_output=True, text=True).stdout
    finally:
        subprocess.run([DOCKER, "rmi", "-f", image], capture_output=True)
    lines = []
    for path in ("/dl", "/dl/hello.txt", "/gz", "/gz/top", "/gz/top/file.txt", "/gz/top/link"):
        _, entry = native.resolve(path, follow_last=False)
        assert entry is not None, path
        info = entry.info
        kind = {0o040000: "directory", 0o100000: "regular file", 0o120000: "symbolic link"}[info.st_mode & 0o170000]
        size = info.st_size if kind == "regular file" else None
        lines.append((path, kind, oct(info.st_mode & 0o7777)[2:], info.st_uid, info.st_gid, size))
    theirs_lines = theirs.splitlines()
    for (path, kind, mode, uid, gid, size), line in zip(lines, theirs_lines, strict=False):
        name, rest = line.split(" ", 1)
        assert name == path
        fields = rest.rsplit(" ", 4)
        assert (fields[0], fields[1], int(fields[2]), int(fields[3])) == (kind, mode, uid, gid), line
        if size is not None:
            assert int(fields[4]) == size, line
    assert theirs_lines[-2:] == ["in tar", "hello over http"]
