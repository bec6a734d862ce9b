"""Pushing an image from the store to a registry: blobs first, the manifest last.

For each blob (config and layers, as the store keeps them: the digests of the manifest stay
valid) the registry is asked first (HEAD); a blob it lacks is mounted from the image's own
repository when that is on the same registry, else uploaded: in one PUT when it fits in one
chunk, else as a sequence of PATCHes with ``Content-Range`` and a closing PUT. Every step follows
the ``Location`` the registry answers with, also when it names another host (an upload service,
a CDN): the registry's credentials go only to the registry. The manifest is put under the
target's tag once every blob is there, so a failed push never leaves a tag naming missing blobs.

Events: ``image:<reference as given>`` gets Pushing / Pushed (or Error); each blob gets
``layer:<12 hex>``: Waiting, Pushing (current/total bytes), Layer already exists, Mounted from,
Pushed.
"""

from __future__ import annotations

import contextlib
import http.client
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.from_thread
import anyio.to_thread

from composer.backends.native.image import oci
from composer.backends.native.image.registry import (
    Endpoint,
    RegistryClient,
    RegistryConfig,
    _os_message,
    _registry_message,
    _scope,
)
from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.errors import ComposerError, ImageNotFoundError, ImagePushError
from composer.events import Event, EventSink, EventStatus
from composer.image_reference import Reference, parse

BACKEND = "native"
UPLOAD_CHUNK = 16 << 20  # blobs up to this size go in one PUT; larger ones in PATCHes of this size
DEFAULT_CONCURRENCY = 4


def _error(message: str, cls: type[ComposerError] = ImagePushError) -> ComposerError:
    if issubclass(cls, ImagePushError | ImageNotFoundError):
        return cls(message, backend_name=BACKEND, operation="push")
    return cls(message)


def find_record(store: ImageStore, reference: str | Reference) -> ImageRecord:
    """The index entry of ``reference`` (``busybox`` finds ``docker.io/library/busybox:latest``).

    :raises ImageReferenceError: malformed reference.
    :raises ImageNotFoundError: not in the store.
    """
    ref = reference if isinstance(reference, Reference) else parse(reference)
    record = store.get(str(ref))
    if record is None:
        raise ImageNotFoundError(f"No such image: {ref.familiar()}", backend_name=BACKEND, operation="push")
    return record


class Uploader:
    """The blob-upload half of the distribution API, on a RegistryClient's auth and transport."""

    def __init__(self, client: RegistryClient, endpoint: Endpoint, ref: Reference, *,
                 chunk: int = UPLOAD_CHUNK) -> None:
        self.client = client
        self.endpoint = endpoint
        self.ref = ref
        self.chunk = max(1, chunk)
        self.scope = _scope(ref, "push")

    def _request(self, method: str, target: tuple[Endpoint, str], *, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        endpoint, path = target
        result = self.client._request(endpoint, method, path, scope=self.scope, body=body, headers=headers)
        try:
            data = result.response.read(64 << 10)
        except (OSError, http.client.HTTPException) as exc:
            raise _error(f"{endpoint.host}: {method} failed: {_os_message(exc)}") from None
        finally:
            result.connection.close()
        return result.status, result.headers, data

    def _location(self, headers: http.client.HTTPMessage, current: tuple[Endpoint, str]) -> tuple[Endpoint, str]:
        """Where the upload continues: the ``Location`` answer, relative to the current URL, on
        whichever host it names (a host of its own gets no credentials: see RegistryClient._send)."""
        location = headers.get("Location") or headers.get("Docker-Upload-Location") or ""
        if not location:
            raise _error(f"{current[0].host}: the registry gave no upload location")
        base = f"{current[0].origin}{current[1]}"
        url = urllib.parse.urlsplit(urllib.parse.urljoin(base, location))
        if url.scheme not in ("http", "https") or not url.netloc:
            raise _error(f"{current[0].host}: bad upload location {location!r}")
        endpoint = current[0] if url.netloc == current[0].host and url.scheme == current[0].scheme \
            else Endpoint(url.scheme, url.netloc)
        return endpoint, url.path + (f"?{url.query}" if url.query else "")

    def exists(self, digest: str) -> bool:
        status, _, data = self._request("HEAD", (self.endpoint, f"/v2/{self.ref.repository}/blobs/{digest}"))
        if status in (200, 404):
            return status == 200
        raise _error(f"{self.endpoint.host}: checking blob {digest}: HTTP {status} {_registry_message(data)}".rstrip())

    def start(self, digest: str, mount_from: str | None) -> tuple[Endpoint, str] | None:
        """Begin an upload; None when the registry mounted the blob from ``mount_from``."""
        path = f"/v2/{self.ref.repository}/blobs/uploads/"
        if mount_from and mount_from != self.ref.repository:
            path += "?" + urllib.parse.urlencode({"mount": digest, "from": mount_from})
        status, headers, data = self._request("POST", (self.endpoint, path), body=b"", headers={"Content-Length": "0"})
        if status == 201:
            return None
        if status != 202:
            raise _error(f"{self.endpoint.host}: starting the upload of {digest} failed: HTTP {status} "
                         f"{_registry_message(data)}".rstrip())
        return self._location(headers, (self.endpoint, path))

    def upload(self, digest: str, source: BinaryIO, size: int, progress: Callable[[int], None] | None = None,
               mount_from: str | None = None) -> str:
        """Upload ``size`` bytes of ``source`` as ``digest`` unless it is there; what happened:
        ``exists``, ``mounted`` or ``pushed``."""
        if self.exists(digest):
            return "exists"
        target = self.start(digest, mount_from)
        if target is None:
            return "mounted"
        if size <= self.chunk:
            data = source.read(size)
            target = self._finish(target, digest, data)
        else:
            sent = 0
            while sent < size:
                data = source.read(min(self.chunk, size - sent))
                if not data:
                    raise _error(f"blob {digest}: the store's copy is shorter than {size} bytes")
                status, headers, answer = self._request(
                    "PATCH", target, body=data,
                    headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data)),
                             "Content-Range": f"{sent}-{sent + len(data) - 1}"})
                if status != 202:
                    raise _error(f"{target[0].host}: uploading {digest} failed at byte {sent}: HTTP {status} "
                                 f"{_registry_message(answer)}".rstrip())
                target = self._location(headers, target)
                sent += len(data)
                if progress is not None:
                    progress(sent)
            self._finish(target, digest, b"")
        if progress is not None:
            progress(size)
        return "pushed"

    def _finish(self, target: tuple[Endpoint, str], digest: str, data: bytes) -> tuple[Endpoint, str]:
        endpoint, path = target
        url = urllib.parse.urlsplit(path)
        query = [*urllib.parse.parse_qsl(url.query, keep_blank_values=True), ("digest", digest)]
        final = (endpoint, f"{url.path}?{urllib.parse.urlencode(query)}")
        status, _, answer = self._request("PUT", final, body=data,
                                          headers={"Content-Type": "application/octet-stream",
                                                   "Content-Length": str(len(data))})
        if status not in (201, 204):
            raise _error(f"{endpoint.host}: uploading {digest} failed: HTTP {status} "
                         f"{_registry_message(answer)}".rstrip())
        return final

    def put_manifest(self, data: bytes, media_type: str, tag: str) -> str:
        return self.client.put_manifest(self.endpoint, self.ref, data, media_type, target=tag)


def _media_type(manifest: dict[str, object]) -> str:
    media_type = str(manifest.get("mediaType") or "")
    if media_type in oci.MANIFEST_TYPES:
        return media_type
    config = manifest.get("config")
    if isinstance(config, dict) and config.get("mediaType") == oci.DOCKER_CONFIG:
        return oci.DOCKER_MANIFEST
    return oci.OCI_MANIFEST


def _layer_id(digest: str) -> str:
    return f"layer:{oci.digest_hex(digest)[:12]}"


async def push(reference: str, store: ImageStore, sink: EventSink, *, source: str | None = None,
               client: RegistryClient | None = None, chunk: int = UPLOAD_CHUNK,
               concurrency: int = DEFAULT_CONCURRENCY) -> str:
    """Push the stored image ``source`` (default: ``reference``) to ``reference``'s registry,
    under its tag; returns the manifest digest.

    :raises ImageReferenceError: a malformed reference (nothing is contacted).
    :raises ImageNotFoundError: the image is not in the store.
    :raises RegistryAuthError: the registry refused the credentials.
    :raises ImagePushError: anything else (unreachable registry, refused upload...).
    """
    ref = parse(reference)
    if ref.digest is not None and ref.tag is None:
        raise _error(f"cannot push to {reference}: a push needs a tag, not only a digest")
    record = find_record(store, source or reference)
    resource = f"image:{reference}"
    sink.emit(Event(resource, EventStatus.WORKING, "Pushing"))
    try:
        digest = await _push(ref, record, store, sink, resource,
                             client or RegistryClient(RegistryConfig.from_env(), operation="push"), chunk, concurrency)
    except ComposerError as exc:
        sink.emit(Event(resource, EventStatus.ERROR, "Error", details=str(exc)))
        raise
    sink.emit(Event(resource, EventStatus.DONE, "Pushed", details=digest))
    return digest


async def _push(ref: Reference, record: ImageRecord, store: ImageStore, sink: EventSink, resource: str,
                client: RegistryClient, chunk: int, concurrency: int) -> str:
    from composer.backends.native.image.pull import _first_error

    with contextlib.ExitStack() as stack:
        await anyio.to_thread.run_sync(stack.enter_context, store.session())
        manifest_bytes = store.read_blob(record.manifest)
        manifest = oci.load_json(manifest_bytes, f"manifest {record.manifest}")
        config = oci.Descriptor.from_json(manifest["config"])
        layers = [oci.Descriptor.from_json(layer) for layer in manifest.get("layers") or []]
        for blob in (config, *layers):
            if not store.has_blob(blob.digest):
                raise _error(f"cannot push {ref.familiar()}: blob {blob.digest} is not in the store "
                             "(pull the image again)")
        source = parse(record.reference)
        mount_from = source.repository if source.registry == ref.registry else None
        endpoint = client.endpoints(ref)[-1]
        uploader = Uploader(client, endpoint, ref, chunk=chunk)
        await anyio.to_thread.run_sync(uploader.exists, config.digest)  # auth and reachability, once
        for layer in layers:
            sink.emit(Event(_layer_id(layer.digest), EventStatus.WORKING, "Waiting", parent_id=resource,
                            total=layer.size))
        limiter = anyio.CapacityLimiter(max(1, concurrency))
        try:
            async with anyio.create_task_group() as group:
                for blob in layers:
                    group.start_soon(_blob_task, uploader, store, sink, resource, blob, mount_from, limiter, True)
        except BaseExceptionGroup as failed:
            raise _first_error(failed) from None
        await _blob_task(uploader, store, sink, resource, config, mount_from, limiter, False)
        tag = ref.tag or "latest"
        return await anyio.to_thread.run_sync(uploader.put_manifest, manifest_bytes, _media_type(manifest), tag)
    raise AssertionError("unreachable")


async def _blob_task(uploader: Uploader, store: ImageStore, sink: EventSink, resource: str, blob: oci.Descriptor,
                     mount_from: str | None, limiter: anyio.CapacityLimiter, report: bool) -> None:
    layer_id = _layer_id(blob.digest)

    def emit(text: str, status: EventStatus = EventStatus.WORKING, current: int | None = None) -> None:
        if report:
            anyio.from_thread.run_sync(sink.emit, Event(layer_id, status, text, parent_id=resource,
                                                        current=current, total=blob.size))

    def work() -> None:
        last = [0.0]

        def progress(current: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1 or current == blob.size:
                last[0] = now
                emit("Pushing", current=current)

        path: Path = store.blob_path(blob.digest)
        with path.open("rb") as source:
            outcome = uploader.upload(blob.digest, source, blob.size, progress, mount_from)
        text = {"exists": "Layer already exists", "mounted": f"Mounted from {mount_from}"}.get(outcome, "Pushed")
        emit(text, EventStatus.DONE)

    await anyio.to_thread.run_sync(work, limiter=limiter)
