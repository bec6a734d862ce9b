"""Pulling an image into the store: resolve, fetch config and layers in parallel, unpack, tag.

Events: ``image:<reference as given>`` gets Pulling / Pulled (or Error); each layer gets
``layer:<12 hex of its blob digest>`` events under it: Waiting, Downloading and Extracting (bytes of
the blob fetched, then unpacked, against its size in the manifest, as dockerd reports them; at most
every PROGRESS_INTERVAL seconds), Download complete, Pull complete, or Already exists. The index entry is written last,
so an interrupted pull leaves no tag; the next pull resumes partial downloads and reuses every
blob and layer already in the store.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, cast

import anyio
import anyio.from_thread
import anyio.to_thread

from composer.backends.native.image import oci
from composer.backends.native.image.layers import apply_layer
from composer.backends.native.image.store import ImageRecord, ImageStore, out_of_space, store_full
from composer.errors import ComposerError, ImageNotFoundError, ImagePullError, UnsupportedFeatureError
from composer.events import Event, EventSink, EventStatus
from composer.image_reference import Reference, parse

if TYPE_CHECKING:  # http.client and the rest: imported once a pull needs the registry, not for an image present
    from composer.backends.native.image.registry import RegistryClient, Resolved

BACKEND = "native"
DEFAULT_CONCURRENCY = 4
PROGRESS_INTERVAL = 0.1  # seconds between two progress events of a layer (the last byte is always told)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_INTERVALS = {"daily": 86400.0, "weekly": 604800.0}
_EVERY = re.compile(r"every_((?:\d+[smhdw])+)")


def policy_interval(policy: str) -> float | None:
    """Seconds after which ``daily``, ``weekly`` or ``every_<duration>`` (``every_12h``,
    ``every_1h30m``) pull again; None for the other policies.

    :raises ImagePullError: an ``every_`` duration that does not parse.
    """
    if policy in _INTERVALS:
        return _INTERVALS[policy]
    if not policy.startswith("every_"):
        return None
    match = _EVERY.fullmatch(policy)
    if match is None:
        raise ImagePullError(f"invalid pull_policy {policy!r}: expected every_<n><s|m|h|d|w>...",
                             backend_name=BACKEND, operation="pull")
    return float(sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)([smhdw])", match.group(1))))


def needs_pull(policy: str | None, record: ImageRecord | None, reference: str, *, now: float | None = None) -> bool:
    """Whether Compose's ``pull_policy`` asks for a pull, given what the store has.

    :raises ImageNotFoundError: ``never`` and the image is not in the store.
    :raises UnsupportedFeatureError: ``build`` and the image is not in the store (no native builder yet).
    :raises ImagePullError: an unknown policy.
    """
    policy = policy or "missing"
    if policy in ("always", "refresh"):
        return True
    if policy in ("missing", "if_not_present"):
        return record is None
    if policy == "never":
        if record is None:
            raise ImageNotFoundError(f"No such image: {reference}", backend_name=BACKEND, operation="pull",
                                     hint="pull_policy is never: pull it first")
        return False
    if policy == "build":
        if record is None:
            raise UnsupportedFeatureError(f"{reference}: building images is not supported by the native backend yet",
                                          backend_name=BACKEND, operation="build",
                                          hint="use --backend docker for services with build:")
        return False
    interval = policy_interval(policy)
    if interval is None:
        raise ImagePullError(f"unknown pull_policy {policy!r}", backend_name=BACKEND, operation="pull")
    if record is None:
        return True
    return ((now if now is not None else time.time()) - record.pulled) >= interval


async def pull(reference: str | Reference, store: ImageStore, sink: EventSink, policy: str | None = "missing", *,
               client: RegistryClient | None = None, platform: oci.Platform | None = None,
               concurrency: int = DEFAULT_CONCURRENCY) -> ImageRecord:
    """Make ``reference`` present in ``store`` as ``policy`` says, and return its index entry.

    :raises ImageReferenceError: the reference is malformed (nothing is contacted).
    :raises ImageNotFoundError: the registry does not know it (or ``never`` and it is missing).
    :raises DigestMismatchError: a manifest, blob or layer does not match its digest.
    :raises RegistryAuthError: the registry refused the credentials.
    :raises UnsafeLayerError: a layer would write outside its directory.
    :raises ImagePullError: anything else (unreachable registry...).
    """
    text = str(reference)
    ref = reference if isinstance(reference, Reference) else parse(reference)
    existing = store.get(str(ref))
    if not needs_pull(policy, existing, text):
        assert existing is not None
        return existing
    from composer.backends.native.image.registry import RegistryClient, RegistryConfig

    resource = f"image:{text}"
    sink.emit(Event(resource, EventStatus.WORKING, "Pulling"))
    try:
        try:
            record = await _pull(ref, store, sink, resource, client or RegistryClient(RegistryConfig.from_env()),
                                 platform, concurrency)
        except (ComposerError, OSError) as exc:
            if out_of_space(exc):
                raise store_full(store.root, f"pulling {ref.familiar()}", "pull") from exc
            raise
    except ComposerError as exc:
        sink.emit(Event(resource, EventStatus.ERROR, "Error", details=str(exc)))
        raise
    sink.emit(Event(resource, EventStatus.DONE, "Pulled", details=record.manifest))
    return record


async def _pull(ref: Reference, store: ImageStore, sink: EventSink, resource: str, client: RegistryClient,
                platform: oci.Platform | None, concurrency: int) -> ImageRecord:
    with contextlib.ExitStack() as stack:
        await anyio.to_thread.run_sync(stack.enter_context, store.session())
        resolved = await anyio.to_thread.run_sync(client.resolve, ref, platform)
        manifest = _manifest(resolved)
        config_desc = oci.Descriptor.from_json(manifest["config"])
        layers = [oci.Descriptor.from_json(layer) for layer in manifest.get("layers") or []]
        await anyio.to_thread.run_sync(_fetch, client, resolved, store, config_desc, None)
        config = oci.load_json(store.read_blob(config_desc.digest), f"config {config_desc.digest}")
        diff_ids = [str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or []]
        if len(diff_ids) != len(layers):
            raise ImagePullError(f"{ref.familiar()}: the config lists {len(diff_ids)} diff_ids for "
                                 f"{len(layers)} layers", backend_name=BACKEND, operation="pull")
        chains = oci.chain_ids(diff_ids)
        for layer in layers:
            sink.emit(Event(_layer_id(layer), EventStatus.WORKING, "Waiting", parent_id=resource, total=layer.size))
        limiter = anyio.CapacityLimiter(max(1, concurrency))
        try:
            async with anyio.create_task_group() as group:
                for position, layer in enumerate(layers):
                    parent = chains[position - 1] if position else None
                    group.start_soon(_layer_task, client, resolved, store, sink, resource, layer,
                                     diff_ids[position], chains[position], parent, limiter)
        except BaseExceptionGroup as failed:
            first = _first_error(failed)
            raise first from first.__cause__  # kept: a full disk is told by it
        if resolved.index_bytes is not None:
            store.write_blob(resolved.index_bytes, resolved.index_digest)
        store.write_blob(resolved.manifest, resolved.manifest_digest)
        record = ImageRecord(str(ref), resolved.manifest_digest, config_desc.digest, resolved.index_digest,
                             resolved.platform, time.time(), "pull")
        store.put(record)
        return record


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first ComposerError of a task group's failures (the others are usually cancellations)."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        current = pending.pop(0)
        if isinstance(current, BaseExceptionGroup):
            pending[:0] = list(current.exceptions)
        else:
            leaves.append(current)
    for leaf in leaves:
        if isinstance(leaf, ComposerError):
            return leaf
    return leaves[0] if leaves else group


def _manifest(resolved: Resolved) -> dict[str, Any]:
    try:
        manifest = resolved.manifest_json()
        if not isinstance(manifest.get("config"), dict):
            raise ValueError("no config descriptor")
        return manifest
    except ValueError as exc:
        raise ImagePullError(f"{resolved.reference.familiar()}: bad manifest {resolved.manifest_digest}: {exc}",
                             backend_name=BACKEND, operation="pull") from None


def _layer_id(layer: oci.Descriptor) -> str:
    return f"layer:{oci.digest_hex(layer.digest)[:12]}"


async def _layer_task(client: RegistryClient, resolved: Resolved, store: ImageStore, sink: EventSink, resource: str,
                      layer: oci.Descriptor, diff_id: str, chain: str, parent: str | None,
                      limiter: anyio.CapacityLimiter) -> None:
    layer_id = _layer_id(layer)

    def emit(text: str, status: EventStatus = EventStatus.WORKING, current: int | None = None,
             details: str = "") -> None:
        anyio.from_thread.run_sync(sink.emit, Event(layer_id, status, text, details=details, parent_id=resource,
                                                    current=current, total=layer.size))

    def work() -> None:
        if store.has_layer(chain):
            emit("Already exists", EventStatus.DONE)
            return
        _fetch(client, resolved, store, layer, emit)
        compression = oci.LAYER_COMPRESSION.get(layer.media_type)
        if compression is None:
            raise UnsupportedFeatureError(f"layer {layer.digest}: unsupported media type {layer.media_type!r}",
                                          backend_name=BACKEND, operation="pull")
        extracting = throttled(lambda current: emit("Extracting", current=current), layer.size)
        extracting(0)

        def populate(directory: Any) -> int:
            with store.blob_path(layer.digest).open("rb") as blob:
                return apply_layer(cast(IO[bytes], _MeteredReader(blob, extracting)), directory,
                                   compression=compression, diff_id=diff_id, what=f"layer {layer.digest}")

        store.add_layer(chain, diff_id, parent, populate)
        emit("Pull complete", EventStatus.DONE, current=layer.size)

    await anyio.to_thread.run_sync(work, limiter=limiter)


def _fetch(client: RegistryClient, resolved: Resolved, store: ImageStore, descriptor: oci.Descriptor,
           emit: Callable[..., None] | None) -> None:
    with store.ingest(descriptor.digest, descriptor.size) as writer:
        if writer is None:
            if emit is not None:
                emit("Download complete", current=descriptor.size)
            return
        resumed = writer.offset
        progress = None if emit is None else throttled(
            lambda current: emit("Downloading", current=current,
                                 details=f"resumed at {resumed} bytes" if resumed else ""), descriptor.size)
        client.fetch_blob(resolved.endpoint, resolved.reference, descriptor, writer, progress)
    if emit is not None:
        emit("Download complete", current=descriptor.size)


def throttled(report: Callable[[int], None], total: int, *, interval: float = PROGRESS_INTERVAL,
              clock: Callable[[], float] = time.monotonic) -> Callable[[int], None]:
    """``report`` called with a byte count at most once per ``interval`` seconds, except the first
    and the last byte (``total``), which are always told: a fast download is not an event per chunk."""
    last: list[float | None] = [None]

    def progress(current: int) -> None:
        now = clock()
        previous = last[0]
        if previous is None or now - previous >= interval or current >= total:
            last[0] = now
            report(current)

    return progress


class _MeteredReader:
    """A blob file that tells ``progress`` how far it has been read (the Extracting bytes: the
    unpacker reads the compressed blob once, front to back, as dockerd counts them)."""

    def __init__(self, blob: IO[bytes], progress: Callable[[int], None]) -> None:
        self.blob = blob
        self.progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self.blob.read(size)
        if data:
            self.progress(self.blob.tell())
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.blob.seek(offset, whence)

    def tell(self) -> int:
        return self.blob.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True
