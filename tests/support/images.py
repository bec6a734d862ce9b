"""The local test image: ``composer-test/busybox:latest``, FROM scratch with Debian's static busybox.

No public registry is reachable, so tests and benchmarks build it through the engine from the
host's busybox-static (or a downloaded copy of the package). Importable without pytest, so the
benchmarks in bench/ use the same builder as the test fixtures.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

TEST_IMAGE = "composer-test/busybox:latest"
DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["sh"]
"""


class ImageBuildError(RuntimeError):
    """The engine refused to build the test image."""


def is_static_elf64(path: Path) -> bool:
    """A 64-bit little-endian ELF without a PT_INTERP program header (no dynamic loader)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    offset = int.from_bytes(data[0x20:0x28], "little")
    size, count = int.from_bytes(data[0x36:0x38], "little"), int.from_bytes(data[0x38:0x3A], "little")
    kinds = (int.from_bytes(data[offset + i * size : offset + i * size + 4], "little") for i in range(count))
    return 3 not in kinds


def busybox_binary(workdir: Path) -> Path:
    """Debian's static busybox: installed (busybox-static), else downloaded and unpacked."""
    for candidate in (Path("/bin/busybox"), Path("/usr/bin/busybox")):
        if is_static_elf64(candidate):
            return candidate
    subprocess.run(["apt-get", "download", "busybox-static"], cwd=workdir, check=True, capture_output=True)
    package = next(workdir.glob("busybox-static_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(package), str(workdir / "root")], check=True)
    return workdir / "root" / "bin" / "busybox"


def context_tar(busybox: Path) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        dockerfile = tarfile.TarInfo("Dockerfile")
        dockerfile.size = len(DOCKERFILE)
        archive.addfile(dockerfile, io.BytesIO(DOCKERFILE))
        archive.add(str(busybox), arcname="busybox")
    buffer.seek(0)
    return buffer


def ensure_busybox_image(api: Any) -> str:
    """``TEST_IMAGE`` on the engine behind docker-py's ``api``, built when missing.

    :raises ImageBuildError: the build failed.
    """
    import docker.errors

    try:
        api.inspect_image(TEST_IMAGE)
        return TEST_IMAGE
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory() as workdir:
        context = context_tar(busybox_binary(Path(workdir)))
        for message in api.build(fileobj=context, custom_context=True, tag=TEST_IMAGE, rm=True, decode=True):
            if "error" in message:
                raise ImageBuildError(f"building {TEST_IMAGE}: {message['error']}")
    return TEST_IMAGE
