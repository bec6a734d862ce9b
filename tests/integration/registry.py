"""A local image registry for tests: Debian's ``docker-registry`` on 127.0.0.1, storage in a temp dir.

No public registry is reachable, so tests that pull or push talk to this one. dockerd treats
registries on 127.0.0.0/8 as insecure (plain HTTP) by default, so ``127.0.0.1:<port>/name`` works
without any daemon configuration.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REGISTRY_BINARY = "/usr/bin/docker-registry"
CONFIG = """version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


class RegistryUnavailable(Exception):
    """The registry binary is missing or did not come up."""


def binary() -> str | None:
    """The registry binary, when installed (Debian's ``docker-registry`` package)."""
    if Path(REGISTRY_BINARY).is_file():
        return REGISTRY_BINARY
    return shutil.which("docker-registry")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LocalRegistry:
    """A running registry; ``host`` is ``127.0.0.1:<port>``. Use as a context manager."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="composer-registry-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / "registry.log"
        self.busybox = ""  # the busybox test image's reference here, once pushed (local_registry does)

    def start(self, timeout: float = 30.0) -> LocalRegistry:
        config = self.workdir / "config.yml"
        storage = self.workdir / "storage"
        storage.mkdir()
        config.write_text(CONFIG.format(root=storage, port=self.port))
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

    def answers(self) -> bool:
        """Whether ``/v2/`` answers (200, or 401 for a registry with auth)."""
        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1) as response:
                return int(response.status) == 200
        except urllib.error.HTTPError as exc:
            return exc.code == 401
        except OSError:
            return False

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reference(self, name: str, tag: str = "latest") -> str:
        """``127.0.0.1:<port>/<name>:<tag>``."""
        return f"{self.host}/{name}:{tag}"

    def tags(self, name: str) -> list[str]:
        """The tags the registry holds for ``name`` (empty when it has none)."""
        import json

        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/{name}/tags/list", timeout=5) as response:
                found = json.loads(response.read()).get("tags") or []
        except urllib.error.HTTPError:
            return []
        return sorted(str(tag) for tag in found)


def push(api: Any, source: str, reference: str) -> None:
    """Tag ``source`` as ``reference`` and push it with docker-py; the local tag is removed after.

    :raises RuntimeError: the push reported an error.
    """
    import docker.utils

    repository, tag = docker.utils.parse_repository_tag(reference)
    api.tag(source, repository, tag or "latest")
    try:
        for message in api.push(repository, tag=tag or "latest", stream=True, decode=True):
            if message.get("error"):
                raise RuntimeError(f"pushing {reference}: {message['error']}")
    finally:
        api.remove_image(reference, noprune=True)
