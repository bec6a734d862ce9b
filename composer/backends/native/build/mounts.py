"""RUN ``--mount``: BuildKit's mount types with their documented options, as mounts of the RUN's
native container (ServiceConfig volumes and tmpfs, so the runtime mounts them as a service's).

- ``type=bind`` (the default): ``target``, ``source`` (default the root of ``from``), ``from``
  (a stage; default the build context, with .dockerignore applied), ``rw``/``readwrite``. The
  files are copied into a private temporary folder first, so ``rw`` writes are thrown away with
  it (BuildKit discards them too) and never reach the context or the stage.
- ``type=cache``: ``target``, ``id`` (default the target), ``sharing`` (shared, private,
  locked), ``from``/``source`` (what a new cache folder starts with), ``mode`` (0755), ``uid``
  and ``gid`` (0), ``readonly``. The folder lives in the store (``cache-mounts/``) and persists
  across builds; ``locked`` waits for the other user, ``private`` gets a fresh folder while
  another build holds it. ``composer builder prune`` removes them (``drop_cache_mounts``), as
  BuildKit's prune removes its cache mounts; the store's gc and ``system check`` keep them.
- ``type=tmpfs``: ``target``, ``size``.
- ``type=secret``: ``id`` (default the target's base name), ``target`` (default
  ``/run/secrets/<id>``), ``env`` (the secret as that variable; with ``env`` and no ``target``
  there is no file), ``required``, ``mode`` (0400), ``uid``, ``gid``. The value comes from the
  build's secrets (Compose ``build.secrets``) and is bound read-only from a root-only temporary
  file: it is never in a layer, nor in the image config.
- ``type=ssh`` is refused in one line.

The mount points the runtime had to make for targets the stage lacks are left out of the layer
(``stubs``), as BuildKit removes its mount stubs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.backends.native.build.copy import Source
from composer.backends.native.build.ignore import clean

TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING = ("shared", "private", "locked")
_BOOLEAN = ("readonly", "ro", "rw", "readwrite", "required")
_KEYS = ("type", "target", "dst", "destination", "source", "src", "from", "id", "sharing", "mode", "uid", "gid",
         "env", "size", *_BOOLEAN)
CACHE_DIR = "cache-mounts"
"""Where cache mounts live in the store (``<store>/cache-mounts/<sha256 of the id>``)."""


class MountError(Exception):
    """A ``--mount`` that cannot be done: one line."""


@dataclass(frozen=True, slots=True)
class MountSpec:
    """One ``--mount`` after parsing, BuildKit's defaults filled."""

    type: str
    target: str
    source: str = ""
    from_: str = ""
    id: str = ""
    sharing: str = "shared"
    readonly: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    env: str = ""
    size: int | None = None


def _bool(key: str, value: str | None) -> bool:
    if value is None:
        return True
    lowered = value.lower()
    if lowered not in ("true", "false", "1", "0"):
        raise MountError(f"invalid value for {key}: {value!r} (true or false)")
    return lowered in ("true", "1")


def _number(key: str, value: str, base: int = 10) -> int:
    try:
        number = int(value, base)
    except ValueError:
        raise MountError(f"invalid value for {key}: {value!r}") from None
    if number < 0:
        raise MountError(f"invalid value for {key}: {value!r}")
    return number


def _size(value: str) -> int:
    """tmpfs ``size``: bytes, or with a k/m/g suffix (Docker's RAMInBytes)."""
    text = value.strip().lower().removesuffix("b").removesuffix("i")
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    factor = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        return int(float(number) * factor)
    except ValueError:
        raise MountError(f"invalid value for size: {value!r}") from None


def parse_mount(text: str) -> MountSpec:  # noqa: C901 - one branch per option
    """One ``--mount`` value (comma-separated ``key=value``; a boolean alone means true).

    :raises MountError: an unknown type or option, a bad value, a missing target, type=ssh.
    """
    options: dict[str, str | None] = {}
    for field_ in (piece.strip() for piece in text.split(",")):
        if not field_:
            continue
        key, equals, value = field_.partition("=")
        key = key.lower()
        if key not in _KEYS:
            raise MountError(f"unexpected key '{key}' in '{field_}'")
        if not equals and key not in _BOOLEAN:
            raise MountError(f"invalid field '{field_}' must be a key=value pair")
        options[key] = value if equals else None
    kind = (options.get("type") or "bind").lower()
    if kind not in TYPES:
        raise MountError(f"unsupported mount type {kind!r}")
    if kind == "ssh":
        raise MountError("RUN --mount=type=ssh is not supported by the native builder (no SSH agent forwarding)")
    target = options.get("target") or options.get("dst") or options.get("destination") or ""
    spec: dict[str, Any] = {"type": kind, "target": target}
    spec["source"] = options.get("source") or options.get("src") or ""
    spec["from_"] = options.get("from") or ""
    spec["id"] = options.get("id") or ""
    sharing = (options.get("sharing") or "shared").lower()
    if sharing not in SHARING:
        raise MountError(f"unsupported sharing value {sharing!r}")
    spec["sharing"] = sharing
    readonly = kind == "bind"  # a bind is read-only unless rw; a cache is writable unless readonly
    for key in ("readonly", "ro"):
        if key in options:
            readonly = _bool(key, options[key])
    for key in ("rw", "readwrite"):
        if key in options:
            readonly = not _bool(key, options[key])
    spec["readonly"] = readonly
    if "required" in options:
        spec["required"] = _bool("required", options["required"])
    if options.get("mode") is not None:
        spec["mode"] = _number("mode", str(options["mode"]), 8)
    for key in ("uid", "gid"):
        if options.get(key) is not None:
            spec[key] = _number(key, str(options[key]))
    spec["env"] = options.get("env") or ""
    if options.get("size") is not None:
        spec["size"] = _size(str(options["size"]))
    if kind != "secret" and not target:
        raise MountError(f"mount type={kind} needs a target")
    if kind == "secret":
        if not spec["id"]:
            if not target:
                raise MountError("mount type=secret needs an id or a target")
            spec["id"] = os.path.basename(target.rstrip("/"))
        if not target and not spec["env"]:
            spec["target"] = "/run/secrets/" + spec["id"]
    if kind == "cache" and not spec["id"]:
        spec["id"] = target
    for key, allowed in (("size", ("tmpfs",)), ("env", ("secret",)), ("required", ("secret",)),
                         ("sharing", ("cache",)), ("id", ("cache", "secret")), ("from", ("bind", "cache")),
                         ("mode", ("cache", "secret")), ("uid", ("cache", "secret")), ("gid", ("cache", "secret"))):
        if key in options and kind not in allowed:
            raise MountError(f"option {key} is not valid for mount type={kind}")
    return MountSpec(**spec)


@dataclass
class Prepared:
    """What the RUN container gets: ServiceConfig volumes, extra environment, and the mount
    points (stage paths) to leave out of the layer when the stage lacked them."""

    volumes: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)


SourceFor = Callable[[str], Source]
"""The files a ``from=`` names ("" for the build context): a Source (copy.py)."""


def _absolute(target: str, workdir: str) -> str:
    path = target if target.startswith("/") else workdir.rstrip("/") + "/" + target
    return "/" + clean(path) if clean(path) != "." else "/"


def _materialize(source: Source, word: str, dest: Path) -> Path:
    """Copy what ``word`` names in ``source`` (a folder into the folder ``dest``, a file to
    ``dest/file``), owners and modes kept; returns the copy's path."""
    matched = source.match(word)
    if not matched:
        raise MountError(f"bind source {source.missing(word)}")
    root = dest
    walked = False
    for item in source.walk(matched[0]):
        walked = True
        if not item.parts and not stat.S_ISDIR(item.info.st_mode):
            root = dest / "file"
        path = root.joinpath(*item.parts)
        info = item.info
        if stat.S_ISDIR(info.st_mode):
            path.mkdir(exist_ok=True)
        elif stat.S_ISLNK(info.st_mode):
            assert item.host is not None
            os.symlink(os.readlink(item.host), path)
        elif stat.S_ISREG(info.st_mode):
            assert item.host is not None
            shutil.copyfile(item.host, path)
        else:
            continue
        os.lchown(path, info.st_uid, info.st_gid)
        if not stat.S_ISLNK(info.st_mode):
            os.chmod(path, stat.S_IMODE(info.st_mode))
    if not walked:  # everything under it is excluded by .dockerignore
        raise MountError(f"bind source {source.missing(word)}")
    return root


def cache_folder(store_root: Path, cache_id: str) -> Path:
    return store_root / CACHE_DIR / hashlib.sha256(cache_id.encode()).hexdigest()


@contextlib.contextmanager
def prepare(specs: list[MountSpec], *, store_root: Path, workdir: str, secrets: Mapping[str, bytes],
            source_for: SourceFor) -> Iterator[Prepared]:
    """The mounts of one RUN, ready; temporary folders and locks are released on exit.

    :raises MountError: a missing required secret, a missing bind source, two mounts on one target.
    """
    prepared = Prepared()
    scratch_root = store_root / "tmp"
    scratch_root.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        scratch = Path(tempfile.mkdtemp(prefix="build-mounts.", dir=scratch_root))
        os.chmod(scratch, 0o700)  # secrets and copies: root's alone
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        for number, spec in enumerate(specs):
            target = _absolute(spec.target, workdir) if spec.target else ""
            if target and target in prepared.targets:
                raise MountError(f"two mounts on {target}")
            volume: dict[str, Any] | None = None
            if spec.type == "tmpfs":
                volume = {"type": "tmpfs", "target": target,
                          "tmpfs": {"size": spec.size} if spec.size is not None else None}
            elif spec.type == "bind":
                here = scratch / f"bind-{number}"
                here.mkdir()
                path = _materialize(source_for(spec.from_), spec.source or ".", here)
                volume = {"type": "bind", "source": str(path), "target": target, "read_only": spec.readonly}
            elif spec.type == "cache":
                path = _cache(stack, spec, store_root, scratch / f"cache-{number}", source_for)
                volume = {"type": "bind", "source": str(path), "target": target, "read_only": spec.readonly}
            elif spec.type == "secret":
                value = secrets.get(spec.id)
                if value is None:
                    if spec.required:
                        raise MountError(f"secret {spec.id} not found (it is required: add it to build.secrets)")
                    continue
                if spec.env:
                    prepared.environment[spec.env] = value.decode("utf-8", "surrogateescape")
                if target:
                    file = scratch / f"secret-{number}"
                    file.write_bytes(value)
                    os.chown(file, spec.uid or 0, spec.gid or 0)
                    os.chmod(file, spec.mode if spec.mode is not None else 0o400)
                    volume = {"type": "bind", "source": str(file), "target": target, "read_only": True}
            if volume is not None:
                prepared.volumes.append(volume)
                prepared.targets.append(target)
        yield prepared


def _cache(stack: contextlib.ExitStack, spec: MountSpec, store_root: Path, private: Path,
           source_for: SourceFor) -> Path:
    """The cache folder of ``spec.id`` (made, seeded from ``from`` and owned as asked, the first
    time), held as ``sharing`` says for as long as ``stack`` lives."""
    folder = cache_folder(store_root, spec.id)
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = stack.enter_context(open(folder.with_suffix(".lock"), "a+b"))  # closed by the stack
    os.utime(lock.fileno())  # its last use, which builder prune's until= goes by
    if spec.sharing == "locked":
        fcntl.flock(lock, fcntl.LOCK_EX)
    elif spec.sharing == "private":
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # in use: a folder of this RUN's own, gone after it
            folder = private
    else:
        fcntl.flock(lock, fcntl.LOCK_SH)
    if not folder.exists():
        fresh = folder.with_name(folder.name + f".new{os.getpid()}") if folder != private else folder
        fresh.mkdir()
        if spec.from_ or spec.source:
            _materialize(source_for(spec.from_), spec.source or ".", fresh)
        os.chown(fresh, spec.uid or 0, spec.gid or 0)
        os.chmod(fresh, spec.mode if spec.mode is not None else 0o755)
        if fresh != folder:
            try:
                fresh.rename(folder)
            except OSError:  # another build made it meanwhile: use theirs
                shutil.rmtree(fresh, ignore_errors=True)
    return folder


def stub_parts(targets: list[str]) -> set[tuple[str, ...]]:
    """The stage paths of ``targets`` and their parents, as ``diff`` compares them."""
    found: set[tuple[str, ...]] = set()
    for target in targets:
        parts = tuple(part for part in target.split("/") if part)
        for depth in range(1, len(parts) + 1):
            found.add(parts[:depth])
    return found


def drop_cache_mounts(store_root: Path, *, until: float | None = None) -> tuple[list[str], int]:
    """Remove the cache mounts' folders, as ``docker builder prune`` removes BuildKit's
    ``exec.cachemount`` records (with or without ``--all``: a cache mount is never "in use" by an
    image); one a RUN holds now is kept, and with ``until`` those used since. The caller holds
    the store exclusively (no build runs). Returns the ids removed (the folders' names) and the
    bytes freed. The store's gc and ``system check`` keep them (they are no residue)."""
    folder = store_root / CACHE_DIR
    removed: list[str] = []
    freed = 0
    if not folder.is_dir():
        return removed, freed
    for path in sorted(folder.iterdir()):
        if path.suffix == ".lock" or path.is_symlink() or not path.is_dir():
            continue
        if ".new" in path.name:  # a seed a build died making
            shutil.rmtree(path, ignore_errors=True)
            continue
        lock_path = path.with_suffix(".lock")
        with open(lock_path, "a+b") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a RUN has it mounted
                continue
            if until is not None and os.fstat(lock.fileno()).st_mtime >= until:
                continue
            freed += sum(os.lstat(os.path.join(top, name)).st_size
                         for top, _, files in os.walk(path) for name in files)
            shutil.rmtree(path, ignore_errors=True)
            lock_path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed, freed


def cache_mounts_usage(store_root: Path) -> tuple[int, int]:
    """``system df``'s share of the cache mounts: how many, and their bytes."""
    folder = store_root / CACHE_DIR
    if not folder.is_dir():
        return 0, 0
    mounts = [path for path in folder.iterdir() if path.is_dir() and not path.is_symlink() and ".new" not in path.name]
    return len(mounts), sum(os.lstat(os.path.join(top, name)).st_size
                            for path in mounts for top, _, files in os.walk(path) for name in files)
