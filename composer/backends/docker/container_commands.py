"""Blocking helpers behind DockerBackend's container commands (exec, attach, top, cp, ls, images).

Each takes docker-py's APIClient and runs in a worker thread; DockerBackend translates errors.
Attached streams are pumped over the hijacked connection: the engine multiplexes stdout and
stderr with 8-byte frame headers unless a tty merges them.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO

from composer import labels
from composer.contract.backend import (
    ContainerRef,
    ContainerStats,
    DetachScanner,
    ExecSpec,
    ImageSummary,
    PathStat,
    ProcessList,
    ProjectSummary,
    Streams,
)
from composer.image_reference import split, with_latest

_MODE_DIR = 1 << 31  # Go's os.ModeDir
_MODE_SYMLINK = 1 << 27


def _raw_socket(sock: Any) -> Any:
    return getattr(sock, "_sock", sock)


def _read_stdin(stdin: BinaryIO, raw: Any, scanner: DetachScanner | None = None,
                detached: threading.Event | None = None) -> None:
    """Copy stdin to the engine; half-close once stdin ends, so the process sees end of file.
    ``scanner`` watches for the detach keys, which the engine acts on (it ends the attach and
    the container keeps running): ``detached`` is set once they went by."""
    try:
        fd = stdin.fileno()
    except (OSError, ValueError, AttributeError):
        fd = None
    try:
        while True:
            data = os.read(fd, 65536) if fd is not None else stdin.read(65536)
            if not data:
                break
            # set before the keys go: the engine ends the attach on them, and the caller reads
            # ``detached`` once the stream ends (after it, it waited for a container still running)
            detaching = scanner is not None and detached is not None and scanner.feed(data)[1]
            if detaching and detached is not None:
                detached.set()
            raw.sendall(data)
            if detaching:
                return
    except OSError:
        return
    try:
        raw.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def pump(sock: Any, streams: Streams, *, tty: bool, detached: threading.Event | None = None) -> None:
    """Stream the hijacked connection ``sock`` to ``streams`` until the engine closes it.
    ``detached``: set when the caller typed the detach keys (with a tty)."""
    raw = _raw_socket(sock)
    if streams.stdin is not None:
        scanner = DetachScanner(streams.detach_keys) if tty and detached is not None else None
        threading.Thread(target=_read_stdin, args=(streams.stdin, raw, scanner, detached), daemon=True,
                         name="stdin").start()
    buffer = b""
    try:
        while True:
            try:
                chunk = raw.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            if tty:
                streams.stdout.write(chunk)
                streams.stdout.flush()
                continue
            buffer += chunk
            while len(buffer) >= 8:
                size = int.from_bytes(buffer[4:8], "big")
                if len(buffer) < 8 + size:
                    break
                target = streams.stderr if buffer[0] == 2 else streams.stdout
                target.write(buffer[8 : 8 + size])
                target.flush()
                buffer = buffer[8 + size :]
    finally:
        for closing in (sock, raw):  # closing docker-py's SocketIO wrapper leaves the socket itself open
            try:
                closing.close()
            except OSError:
                pass


def exec_in_container(api: Any, ref: ContainerRef, spec: ExecSpec, streams: Streams | None) -> int | None:
    attach = streams is not None
    created = api.exec_create(
        ref.container_id, list(spec.command), stdout=attach, stderr=attach,
        stdin=attach and streams is not None and streams.stdin is not None and spec.interactive,
        tty=spec.tty, privileged=spec.privileged, user=spec.user or "",
        environment=[f"{key}={value}" for key, value in spec.environment.items()] or None,
        workdir=spec.workdir,
    )
    exec_id = created["Id"]
    if streams is None:
        api.exec_start(exec_id, detach=True, tty=spec.tty)
        return None
    sock = api.exec_start(exec_id, tty=spec.tty, socket=True)
    if not spec.interactive:
        streams = Streams(streams.stdout, streams.stderr, None)
    done = threading.Event()
    if spec.tty and streams.window is not None:
        resize = functools.partial(api.exec_resize, exec_id)
        threading.Thread(target=_follow_window, args=(resize, streams, done), daemon=True, name="window").start()
    try:
        pump(sock, streams, tty=spec.tty)
    finally:
        done.set()
    code = api.exec_inspect(exec_id).get("ExitCode")
    return int(code) if code is not None else 0


def attach_container(api: Any, ref: ContainerRef, streams: Streams, *, tty: bool | None,
                     start: bool) -> int | None:
    """Attach (then start), follow the caller's window size, stream until the engine ends the
    attach; the exit code, or None when the caller detached (the engine handles the keys)."""
    if tty is None:
        tty = bool((api.inspect_container(ref.container_id).get("Config") or {}).get("Tty"))
    params = {"stdin": int(streams.stdin is not None), "stdout": 1, "stderr": 1, "stream": 1}
    sock = api.attach_socket(ref.container_id, params=params)
    if start:
        api.start(ref.container_id)
    done, detached = threading.Event(), threading.Event()
    if tty and streams.window is not None:
        resize = functools.partial(api.resize, ref.container_id)
        threading.Thread(target=_follow_window, args=(resize, streams, done), daemon=True, name="window").start()
    try:
        pump(sock, streams, tty=tty, detached=detached)
    finally:
        done.set()
    if detached.is_set() and (api.inspect_container(ref.container_id).get("State") or {}).get("Running"):
        return None
    return int(api.wait(ref.container_id).get("StatusCode", 0))


def _follow_window(resize: Callable[..., Any], streams: Streams, done: threading.Event) -> None:
    """Resize the container's (or exec's) terminal to the caller's, now and on each change (SIGWINCH)."""
    window = streams.window
    assert window is not None
    while not done.is_set():
        size = window.size()
        if size is not None:
            try:
                resize(height=size[0], width=size[1])
            except Exception:  # gone meanwhile, or not started yet: the next change retries
                pass
        while not done.is_set() and not window.wait_change(0.2):
            pass


def container_top(api: Any, ref: ContainerRef) -> ProcessList:
    found = api.top(ref.container_id) or {}
    return ProcessList(tuple(found.get("Titles") or ()),
                       tuple(tuple(str(cell) for cell in row) for row in found.get("Processes") or ()))


def container_stats(api: Any, ref: ContainerRef) -> ContainerStats:
    """One sample (``one_shot``: no wait for the engine's second sample), as the docker CLI reads it.

    :raises BackendError: the container is not running (dockerd answers zeros).
    """
    found = api.stats(ref.container_id, stream=False, one_shot=True) or {}
    if str(found.get("read") or "").startswith("0001-"):  # dockerd's zero time: it is not running
        from composer.backends.docker.errors import BACKEND_NAME
        from composer.errors import BackendError

        raise BackendError(f"container {ref.name} is not running", backend_name=BACKEND_NAME, operation="stats")
    cpu = found.get("cpu_stats") or {}
    usage = cpu.get("cpu_usage") or {}
    memory = found.get("memory_stats") or {}
    memory_usage = int(memory.get("usage") or 0)
    cache = memory.get("stats") or {}
    inactive = cache.get("total_inactive_file", cache.get("inactive_file", 0))
    if isinstance(inactive, int) and inactive < memory_usage:
        memory_usage -= inactive
    networks = (found.get("networks") or {}).values()
    block_read = block_write = 0
    for entry in (found.get("blkio_stats") or {}).get("io_service_bytes_recursive") or ():
        operation = str(entry.get("op") or "").lower()
        if operation.startswith("r"):
            block_read += int(entry.get("value") or 0)
        elif operation.startswith("w"):
            block_write += int(entry.get("value") or 0)
    return ContainerStats(
        cpu_ns=int(usage.get("total_usage") or 0), system_ns=int(cpu.get("system_cpu_usage") or 0),
        online_cpus=int(cpu.get("online_cpus") or len(usage.get("percpu_usage") or ()) or 1),
        memory_usage=memory_usage, memory_limit=int(memory.get("limit") or 0),
        net_rx=sum(int(n.get("rx_bytes") or 0) for n in networks),
        net_tx=sum(int(n.get("tx_bytes") or 0) for n in networks),
        block_read=block_read, block_write=block_write,
        pids=int((found.get("pids_stats") or {}).get("current") or 0))


def stat_container_path(api: Any, ref: ContainerRef, path: str) -> PathStat | None:
    response = api.head(api._url("/containers/{0}/archive", ref.container_id), params={"path": path})
    if response.status_code == 404:
        return None
    api._raise_for_status(response)
    header = response.headers.get("X-Docker-Container-Path-Stat")
    stat = json.loads(base64.b64decode(header)) if header else {}
    mode = int(stat.get("mode") or 0)
    return PathStat(str(stat.get("name") or os.path.basename(path)), int(stat.get("size") or 0),
                    bool(mode & _MODE_DIR), str(stat.get("linkTarget") or "") if mode & _MODE_SYMLINK else "")


def copy_from_container(api: Any, ref: ContainerRef, path: str) -> bytes:
    stream, _ = api.get_archive(ref.container_id, path)
    return b"".join(stream)


def list_projects(api: Any, *, include_stopped: bool) -> list[ProjectSummary]:
    """Projects by name, from the labels of containers that have a config hash (as v2's ``ls``)."""
    found = api.containers(all=include_stopped, filters={"label": [labels.PROJECT, labels.CONFIG_HASH]}) or []
    states: dict[str, list[str]] = {}
    files: dict[str, dict[str, None]] = {}
    owners: dict[str, str] = {}
    for item in found:
        item_labels = item.get("Labels") or {}
        name = item_labels.get(labels.PROJECT)
        if not name:
            continue
        states.setdefault(name, []).append(str(item.get("State") or ""))
        if item_labels.get(labels.OWNER):
            owners.setdefault(name, str(item_labels[labels.OWNER]))
        entry = files.setdefault(name, {})
        for file in str(item_labels.get(labels.CONFIG_FILES) or "").split(","):
            if file:
                entry[file] = None
    return [ProjectSummary(name, tuple(states[name]), tuple(files[name]), owners.get(name)) for name in sorted(states)]


def _split_reference(reference: str) -> tuple[str, str]:
    """(repository, tag) as ``docker images`` shows them: with a digest, what precedes it and the digest."""
    name, tag, digest = split(reference)
    if digest is not None:
        return (name if tag is None else f"{name}:{tag}"), digest
    return name, "latest" if tag is None else tag


def _image_summary(container: Mapping[str, Any], image: Mapping[str, Any]) -> ImageSummary:
    wanted = str((container.get("Config") or {}).get("Image") or "")
    tags = [tag for tag in image.get("RepoTags") or () if tag != "<none>:<none>"]
    if wanted and not wanted.startswith("sha256:"):
        full = with_latest(wanted)
        reference = full if full in tags or not tags else tags[0]
    else:
        reference = tags[0] if tags else ""
    repository, tag = _split_reference(reference) if reference else ("<none>", "<none>")
    from composer.backends.docker.observe import _created

    platform = "/".join(part for part in (image.get("Os"), image.get("Architecture"), image.get("Variant")) if part)
    return ImageSummary(str(container.get("Name") or "").lstrip("/"), repository, tag, str(image.get("Id") or ""),
                        int(image.get("Size") or 0), _created(image.get("Created")), platform)


def list_images(api: Any, refs: Sequence[ContainerRef]) -> list[ImageSummary]:
    images: dict[str, Mapping[str, Any]] = {}
    result = []
    for ref in refs:
        container = api.inspect_container(ref.container_id)
        image_id = str(container.get("Image") or "")
        if image_id not in images:
            images[image_id] = api.inspect_image(image_id)
        result.append(_image_summary(container, images[image_id]))
    return result
