"""The native builder's step cache, in the native store (so it outlives the composer command that
filled it): ``<store root>/cache/steps/<key hex>.json``, one record per step key
(composer.backends.native.build.cache_key). A record holds the stage's layers after the step
(diff_ids and blob descriptors; the new layer, if any, is the last) and when the step's result
was made (its history ``created``). The layers themselves are the store's: ``layers/<chain>``
and ``blobs/``; the store's gc, ``system prune`` and ``system check`` keep what a record names
(``ImageStore.cache_references``) until ``composer builder prune`` removes the record.

Concurrency: a record appears by an atomic rename, whole or not at all. A build computing a
step holds the step's lock (``locks/cache-<key hex>.lock``), so two builds that reach the same
step (two services sharing a base, two composer commands) run it once: the second waits and
then finds the record. A build holds one step lock at a time, so the locks cannot deadlock. Every
build holds the store's session lock shared; ``prune`` removes records and content under it
exclusively, so no build loses a layer it just found in the cache.

Last use: a hit touches the record's mtime; ``prune --filter until=`` goes by it, as BuildKit's
keep-duration goes by the record's last use.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.backends.native.build.hashes import FILE as HASHES
from composer.backends.native.image import oci
from composer.backends.native.image.store import ImageStore, atomic_write, flock

STEPS = ("cache", "steps")  # under the store's root
RECORD_VERSION = 1


@dataclass(frozen=True, slots=True)
class StepResult:
    """What a step left: the stage's layers after it, whether it added one, and when it was made."""

    diff_ids: tuple[str, ...]
    layers: tuple[oci.Descriptor, ...]
    empty: bool  # the step changed no file: no layer (its history entry is empty_layer)
    created: str  # RFC 3339, the history entry's "created"


@dataclass(frozen=True, slots=True)
class CacheRecord:
    key: str
    description: str  # the instruction, for prune's listing
    result: StepResult
    size: int  # bytes of the step's own layer blob (0 when empty)
    last_used: float
    path: Path


def steps_folder(root: Path) -> Path:
    return root.joinpath(*STEPS)


def _record_json(key: str, description: str, result: StepResult) -> dict[str, Any]:
    return {"version": RECORD_VERSION, "key": key, "description": description,
            "diff_ids": list(result.diff_ids), "layers": [layer.to_json() for layer in result.layers],
            "empty": result.empty, "created": result.created,
            # what the store's gc keeps for this record (ImageStore.cache_references reads these two)
            "blobs": [layer.digest for layer in result.layers], "chains": oci.chain_ids(list(result.diff_ids))}


def _result(data: Any) -> StepResult | None:
    """A record's result, or None when it is malformed.

    :raises KeyError, TypeError, ValueError: malformed."""
    result = StepResult(tuple(str(d) for d in data["diff_ids"]),
                        tuple(oci.Descriptor.from_json(layer) for layer in data["layers"]),
                        bool(data["empty"]), str(data["created"]))
    return result if len(result.diff_ids) == len(result.layers) else None


def _parse(path: Path, data: Any) -> CacheRecord | None:
    try:
        result = _result(data)
        if result is None:
            return None
        size = 0 if result.empty or not result.layers else result.layers[-1].size
        return CacheRecord(str(data["key"]), str(data.get("description") or ""), result, size,
                           path.stat().st_mtime, path)
    except (KeyError, TypeError, ValueError, OSError):
        return None


class StepCache:
    """The step cache of ``store``."""

    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self.folder = steps_folder(store.root)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # the layers and blobs found present: they stay while the build holds the store's session
        # lock (prune and gc take it exclusively), so each is looked for once per build, not per step
        self.present: set[str] = set()

    def _path(self, key: str) -> Path:
        return self.folder / f"{oci.digest_hex(key)}.json"

    def peek(self, key: str) -> StepResult | None:
        """The record's result as it is (its content not checked, its use not counted)."""
        path = self._path(key)
        try:
            data = json.loads(path.read_bytes())
            # not _parse: a step's lookup needs no record's size or last use (a stat per step)
            return _result(data) if data["key"] == key else None
        except (OSError, KeyError, TypeError, ValueError):
            return None

    def get(self, key: str) -> StepResult | None:
        """The result cached for ``key``, when its record and all its content are in the store
        (a record whose layers are gone is a miss, and is replaced when the step is built)."""
        result = self.peek(key)
        if result is None:
            return None
        chains = oci.chain_ids(list(result.diff_ids))
        blobs = [layer.digest for layer in result.layers]
        present = self.present
        if not all(chain in present or self.store.has_layer(chain) for chain in chains) or \
                not all(blob in present or self.store.has_blob(blob) for blob in blobs):
            return None
        present.update(chains)
        present.update(blobs)
        with contextlib.suppress(OSError):
            os.utime(self._path(key))  # last used: now
        return result

    def put(self, key: str, description: str, result: StepResult) -> None:
        data = json.dumps(_record_json(key, description, result), indent=1).encode()
        atomic_write(self._path(key), data, tmp_dir=self.store.root / "tmp", mode=0o600)

    @contextlib.contextmanager
    def computing(self, key: str) -> Iterator[None]:
        """Hold ``key``'s lock while its step is built (another build of the same step waits)."""
        with flock(self.store.root / "locks" / f"cache-{oci.digest_hex(key)}.lock"):
            yield

    def records(self) -> list[CacheRecord]:
        """Every readable record, oldest use first."""
        found: list[CacheRecord] = []
        try:
            paths = sorted(self.folder.glob("*.json"))
        except OSError:
            return []
        for path in paths:
            try:
                record = _parse(path, json.loads(path.read_bytes()))
            except (OSError, ValueError):
                continue
            if record is not None:
                found.append(record)
        return sorted(found, key=lambda record: record.last_used)


def drop_records(store: ImageStore, *, everything: bool = False, until: float | None = None) -> list[str]:
    """Remove cache records as ``docker builder prune`` does: without ``everything`` only the
    dangling ones (whose layer no image in the store uses), with ``until`` only those last used
    before that time; the ids (key hex) of those removed, as docker lists cache objects. Holds
    the store exclusively (waits for builds to end). The content only they kept goes with the
    caller's ``residue.remove_unreferenced``."""
    cache = StepCache(store)
    removed: list[str] = []
    with flock(store.root / "locks" / "store.lock", exclusive=True):
        used: set[str] = set()
        for image in store.images():
            with contextlib.suppress(Exception):
                used.update(store.chain_ids(image))
        for record in cache.records():
            if until is not None and record.last_used >= until:
                continue
            chains = oci.chain_ids(list(record.result.diff_ids))
            if not everything and not record.result.empty and chains and chains[-1] in used:
                continue
            with contextlib.suppress(FileNotFoundError):
                record.path.unlink()
            removed.append(oci.digest_hex(record.key))
        if everything and until is None:  # the context files' digests (build.hashes): only a cache of reads
            with contextlib.suppress(FileNotFoundError):
                store.root.joinpath(*HASHES).unlink()
    return removed


def usage(store: ImageStore) -> tuple[int, int]:
    """``system df``'s Build Cache row: the records and the bytes of their own layers."""
    records = StepCache(store).records() if steps_folder(store.root).is_dir() else []
    return len(records), sum(record.size for record in records)
