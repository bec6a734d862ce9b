"""A cache of bound projects for the command line, so that a repeated command skips the loader.

Loading is a pure function of the Compose files, the env files, the process environment and the
options, but binding the result into the pydantic models costs more than the rest of a short
command (the models' validators are built on first use: ``defer_build``). So the CLI keeps the
pickled Project of each load under ``$XDG_CACHE_HOME/composer`` (``~/.cache/composer``), keyed by:

- the options, the current folder, the whole environment (a superset of what the loader looks
  up, so an entry is never served for another environment) and a fingerprint of the loader's
  own sources and of pydantic (a new composer never unpickles an old model);
- and, checked on every hit, every path the load touched: each file it opened (its sha256), each
  path it probed with ``exists``/``isfile``/``isdir`` (what it found), and each folder it looked in
  (its listing), so an edited, created or deleted Compose file, env file, ``extends`` or
  ``include`` target makes a new load.

A load that reads standard input, or fails, is not cached. COMPOSER_CACHE=0 turns the cache off.
Any problem with the cache itself (unreadable, corrupt, no space) falls back to loading.

A caller may keep values derived from the project in the same entry (``Derived``: computed when
the entry is written, handed back on every hit), such as the planner's configuration hashes,
whose pydantic serializers would otherwise be built on every run.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import pickle
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from composer.spec.loader import LoadOptions
    from composer.spec.models import Project
    from composer.spec.options import ProjectOptions

FORMAT = 3  # 3: services hashed as Compose v2 hashes them
MAX_ENTRIES = 64
_HERE = os.path.dirname(os.path.abspath(__file__))

# A dependency: (kind, path, what was found). Kinds: "read" (sha256 of the content, or "" when the
# open failed), "probe" (the result of exists/isfile/isdir, as "file", "dir" or "none").
Dependency = tuple[str, str, str]


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "composer")


def enabled() -> bool:
    return os.environ.get("COMPOSER_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def _fingerprint() -> list[Any]:
    """What a pickled Project depends on besides its inputs: composer's loader and models, pydantic."""
    import pydantic_core

    stats: list[Any] = [FORMAT, sys.version, pydantic_core.__version__]
    for folder in (_HERE, os.path.join(_HERE, "models")):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                info = os.stat(os.path.join(folder, name))
                stats.append((name, info.st_mtime_ns, info.st_size))
    return stats


def _key(options: ProjectOptions, load: LoadOptions | None) -> str:
    environment = os.environ if options.environment is None else options.environment
    material = repr((
        _fingerprint(),
        os.path.abspath(options.working_directory or os.getcwd()),
        tuple(options.files), options.project_name, options.project_directory, tuple(options.env_files),
        tuple(options.profiles), options.environment is None, sorted(environment.items()),
        None if load is None else tuple(load),
    ))
    return hashlib.sha256(material.encode("utf-8", errors="surrogateescape")).hexdigest()


def _probe(path: str) -> str:
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return "none"
    return "dir" if stat.S_ISDIR(mode) else "file"


def _content_hash(path: str) -> str:
    """sha256 of the file, read with os.open: never through a recording (or anyone's patched) open.

    Only a regular file within the loader's size cap is read (composer.spec.limits): a pipe, a
    device (``env_file: /dev/zero``) or a huge file is recorded by kind and size, never read
    here; the loader refuses the device and the huge file itself, and a load that read a pipe
    is never served again (its marker is not a hash, and the read is not repeatable).
    """
    from composer.spec.limits import max_file_bytes

    digest = hashlib.sha256()
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return ""
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_file_bytes():
            return f"unhashed:{stat.S_IFMT(info.st_mode):o}:{info.st_size}:{info.st_mtime_ns}:{os.getpid()}"
        while chunk := os.read(descriptor, 1 << 20):
            digest.update(chunk)
    except Exception:  # unreadable, or a bad COMPOSER_MAX_FILE_SIZE (the load reports it)
        return ""
    finally:
        os.close(descriptor)
    return digest.hexdigest()


def _listing(path: str) -> str:
    try:
        return "\0".join(sorted(os.listdir(path)))
    except (OSError, ValueError):
        return "\0error"


def _current(kind: str, path: str) -> str:
    if kind == "read":
        return _content_hash(path)
    if kind == "list":
        return _listing(path)
    return _probe(path)


@contextmanager
def _recording() -> Iterator[dict[tuple[str, str], str]]:
    """Record every file opened and every path probed while the block runs, with what it was when
    first touched (from any thread: an extra dependency only makes the cache more careful)."""
    touched: dict[tuple[str, str], str] = {}
    real_open = builtins.open
    path_module: Any = os.path
    real = {name: getattr(path_module, name) for name in ("exists", "isfile", "isdir", "lexists")}

    def touch(kind: str, path: Any) -> None:
        if isinstance(path, str | bytes | os.PathLike):
            absolute = os.path.abspath(os.fsdecode(path))
            if (kind, absolute) not in touched:
                touched[(kind, absolute)] = _current(kind, absolute)

    def recording_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        touch("read", file)
        return real_open(file, *args, **kwargs)

    def wrap(function: Callable[[Any], bool]) -> Callable[[Any], bool]:
        def probe(path: Any) -> bool:
            touch("probe", path)
            if isinstance(path, str | bytes | os.PathLike):
                touch("list", os.path.dirname(os.path.abspath(os.fsdecode(path))))
            return function(path)

        return probe

    builtins.open = recording_open
    for name, function in real.items():
        setattr(path_module, name, wrap(function))
    try:
        yield touched
    finally:
        builtins.open = real_open
        for name, function in real.items():
            setattr(path_module, name, function)


class Derived(Protocol):
    """Values derived from a project, kept in its cache entry (plain, picklable data)."""

    def compute(self, project: Project) -> Any:
        """The values, when the entry is written."""

    def restore(self, project: Project, values: Any) -> None:
        """Take back the values on a hit (``project`` is the entry's unpickled project)."""


def _lookup(path: str) -> tuple[Project, Any] | None:
    try:
        with open(path, "rb") as handle:
            dependencies, payload, derived = pickle.load(handle)
        for kind, dependency, found in dependencies:
            if _current(kind, dependency) != found:
                return None
        project: Project = pickle.loads(payload)
        return project, derived
    except Exception:  # missing, corrupt, or from an incompatible version: load instead
        return None


def _store(path: str, dependencies: list[Dependency], project: Project, derived: Any) -> None:
    import tempfile

    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        payload = pickle.dumps(project, pickle.HIGHEST_PROTOCOL)
        data = pickle.dumps((dependencies, payload, derived), pickle.HIGHEST_PROTOCOL)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
        _prune(folder)
    except Exception:  # a read-only or full disk costs the next run a load, nothing more
        return


def _prune(folder: str) -> None:
    entries = [os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".pickle")]
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda entry: os.stat(entry).st_mtime_ns)
    for entry in entries[: len(entries) - MAX_ENTRIES]:
        try:
            os.unlink(entry)
        except OSError:
            pass


def load_project_cached(options: ProjectOptions, load: LoadOptions | None = None, *,
                        derived: Derived | None = None) -> Project:
    """``composer.spec.load_project(options, load)``, from the cache when nothing it read changed;
    ``derived`` values are kept with the entry and restored on a hit."""
    from composer.spec import load_project

    if not enabled() or "-" in options.files:
        return load_project(options, load)
    path = os.path.join(cache_dir(), _key(options, load) + ".pickle")
    hit = _lookup(path)
    if hit is not None:
        project, values = hit
        if derived is not None and values is not None:
            derived.restore(project, values)
        return project
    # A miss loads, pickles and computes the derived values: each walks the project as deep as the
    # loader does, so all three run on its deep stack (composer.spec.deepstack). A hit never does.
    from composer.spec.deepstack import run_deep

    return run_deep(lambda: _load_and_store(path, options, load, derived), options.files)


def _load_and_store(path: str, options: ProjectOptions, load: LoadOptions | None, derived: Derived | None) -> Project:
    # Imported before recording, so that the dependencies are what the load opens, not what imports do.
    import composer.spec.models.bind
    import composer.spec.schema  # noqa: F401
    from composer.spec import load_project

    with _recording() as touched:
        project = load_project(options, load)
    if "-" in project.files:
        return project
    dependencies = [(kind, dependency, found) for (kind, dependency), found in sorted(touched.items())]
    # Stored only when nothing changed while loading: then the project is that of these contents.
    if all(_current(kind, dependency) == found for kind, dependency, found in dependencies):
        _store(path, dependencies, project, derived.compute(project) if derived is not None else None)
    return project
