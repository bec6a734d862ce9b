"""COPY and ADD as a new layer: the sources (from the build context, with ``.dockerignore``
applied, or from an earlier stage's files) and the destination rules of Docker's: a
destination relative to WORKDIR, a trailing ``/`` (or several sources) meaning a folder, a
folder source copying its contents, missing parents created (owned as ``--chown`` says), the
sources' modes unless ``--chmod``, owner root for context files and the source's own for files
of a stage unless ``--chown``. The destination is resolved inside the stage's root.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from composer.backends.native.build.ignore import Matcher, clean
from composer.backends.native.build.layer import LayerWriter
from composer.backends.native.build.rootfs import PathError, RootFS

_WILDCARD = frozenset("*?[")


class CopyError(Exception):
    """A COPY/ADD that cannot be done (a missing source, an unknown user...): one line."""


@dataclass(frozen=True, slots=True)
class Item:
    """One file to copy: its path relative to the copied source, its lstat, and where its bytes are."""

    parts: tuple[str, ...]
    info: os.stat_result
    host: Path | None
    data: bytes | None = None
    link: str = ""  # a symlink's target when there is no host file to read it from (an archive's)


class Source:
    """Where COPY reads: ``match`` a source word to the roots it names, ``walk`` one of them."""

    def match(self, pattern: str) -> list[tuple[str, ...]]:
        raise NotImplementedError

    def walk(self, parts: tuple[str, ...]) -> Iterator[Item]:
        raise NotImplementedError

    def owned(self) -> bool:
        """Whether the files keep their owners (a stage's do; the context's become root's)."""
        return False

    def missing(self, pattern: str) -> str:
        """Why ``pattern`` matches nothing, for the error."""
        return f'"/{clean(pattern)}": not found'


class ContextSource(Source):
    """The build context folder with its ``.dockerignore`` matcher."""

    def __init__(self, root: Path, matcher: Matcher) -> None:
        self.root = root
        self.matcher = matcher

    def _entry(self, parts: tuple[str, ...]) -> os.stat_result | None:
        try:
            return os.lstat(self.root.joinpath(*parts))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _names(self, parts: tuple[str, ...]) -> list[str]:
        try:
            return sorted(os.listdir(self.root.joinpath(*parts)))
        except (NotADirectoryError, FileNotFoundError):
            return []

    def match(self, pattern: str) -> list[tuple[str, ...]]:
        wanted = tuple(part for part in clean(pattern).split("/") if part != ".")
        found: list[tuple[str, ...]] = [()]
        for piece in wanted:
            nxt: list[tuple[str, ...]] = []
            for base in found:
                if _WILDCARD & set(piece):
                    nxt += [(*base, name) for name in self._names(base) if fnmatch.fnmatchcase(name, piece)]
                elif self._entry((*base, piece)) is not None:
                    nxt.append((*base, piece))
            found = nxt
        return [parts for parts in found if not parts or not self.matcher.excluded("/".join(parts))
                or (self._is_dir(parts) and self.matcher.may_include_below("/".join(parts)))]

    def missing(self, pattern: str) -> str:
        """Not found, naming the .dockerignore pattern that excluded what the word (a path or a
        wildcard) names in the folder, if one did."""
        path = clean(pattern)
        unfiltered = ContextSource(self.root, Matcher([])).match(pattern)
        rule = next((rule for parts in unfiltered if parts and (rule := self.matcher.excluded_by("/".join(parts)))),
                    None)
        excluded = f" (excluded by the .dockerignore pattern {rule!r})" if rule else ""
        return f'"/{path}": not found{excluded}'

    def _is_dir(self, parts: tuple[str, ...]) -> bool:
        info = self._entry(parts)
        return info is not None and stat.S_ISDIR(info.st_mode)

    def walk(self, parts: tuple[str, ...]) -> Iterator[Item]:
        info = self._entry(parts)
        if info is None:
            return
        if parts and stat.S_ISLNK(info.st_mode):  # a named source that is a link: its target, as BuildKit
            target = Path(os.path.realpath(self.root.joinpath(*parts)))
            root = Path(os.path.realpath(self.root))
            if target != root and root not in target.parents:
                raise CopyError(f'"/{"/".join(parts)}": a link out of the build context')
            inside = target.relative_to(root).parts
            followed = self._entry(inside)
            if followed is None:
                raise CopyError(f'"/{"/".join(parts)}": not found (a dangling link)')
            if not stat.S_ISDIR(followed.st_mode):
                yield Item((), followed, self.root.joinpath(*inside))
                return
            yield from self._walk(inside, (), followed)
            return
        yield from self._walk(parts, (), info)

    def _walk(self, parts: tuple[str, ...], relative: tuple[str, ...], info: os.stat_result) -> Iterator[Item]:
        return iter(self._listed(os.path.join(self.root, *parts), "/".join(parts), relative, info, []))

    def _listed(self, host: str, name: str, relative: tuple[str, ...], info: os.stat_result,
                into: list[Item]) -> list[Item]:
        """``into`` with the entry at ``host`` (``name`` in the context) and what is below it, in
        walk order (a folder before its contents, names sorted): one scandir and one lstat per
        entry, paths as strings (a cached build walks the whole context: pathlib's joins cost
        more than the system calls)."""
        excluded = bool(name) and self.matcher.excluded(name)
        if not stat.S_ISDIR(info.st_mode):
            if not excluded:
                into.append(Item(relative, info, Path(host)))
            return into
        mark = len(into)
        into.append(Item(relative, info, Path(host)))
        try:
            with os.scandir(host) as listing:
                children = sorted((entry.name, entry.path) for entry in listing)
        except (NotADirectoryError, FileNotFoundError):
            children = []
        for child, path in children:
            try:
                child_info = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):  # gone since the listing
                continue
            self._listed(path, f"{name}/{child}" if name else child, (*relative, child), child_info, into)
        if excluded and len(into) == mark + 1:  # an excluded folder is kept only for what is re-included
            into.pop()
        return into


class StageSource(Source):
    """The files of an earlier stage (COPY --from), through its layers."""

    def __init__(self, rootfs: RootFS) -> None:
        self.rootfs = rootfs

    def owned(self) -> bool:
        return True

    def match(self, pattern: str) -> list[tuple[str, ...]]:
        wanted = tuple(part for part in clean(pattern).split("/") if part != ".")
        found: list[tuple[str, ...]] = [()]
        for piece in wanted:
            nxt: list[tuple[str, ...]] = []
            for base in found:
                real, entry = self.rootfs.resolve("/" + "/".join(base))
                if entry is None or not entry.is_dir:
                    continue
                if _WILDCARD & set(piece):
                    nxt += [(*real, name) for name in self.rootfs.listdir(real) if fnmatch.fnmatchcase(name, piece)]
                elif self.rootfs.lookup((*real, piece)) is not None:  # what listdir would name, without listing
                    nxt.append((*real, piece))
            found = nxt
        return found

    def walk(self, parts: tuple[str, ...]) -> Iterator[Item]:
        real, entry = self.rootfs.resolve("/" + "/".join(parts))
        if entry is None:
            return
        yield from self._walk(real, ())

    def _walk(self, real: tuple[str, ...], relative: tuple[str, ...]) -> Iterator[Item]:
        entry = self.rootfs.lookup(real)
        if entry is None:
            return
        yield Item(relative, entry.info, entry.host)
        if entry.is_dir:
            for name in self.rootfs.listdir(real):
                yield from self._walk((*real, name), (*relative, name))


@dataclass(frozen=True, slots=True)
class Owner:
    uid: int
    gid: int


def parse_chmod(text: str) -> int | None:
    """--chmod's octal mode (None when not given).

    :raises CopyError: not an octal mode.
    """
    if not text:
        return None
    try:
        mode = int(text, 8)
    except ValueError:
        raise CopyError(f"invalid chmod parameter: {text!r} (an octal mode is expected)") from None
    if mode > 0o7777 or mode < 0:
        raise CopyError(f"invalid chmod parameter: {text!r}")
    return mode


def _lookup_id(rootfs: RootFS, file: str, name: str, what: str) -> int:
    if name.isdigit():
        return int(name)
    _real, entry = rootfs.resolve(file)
    if entry is not None and not entry.is_dir:
        for line in entry.host.read_text(errors="replace").splitlines():
            fields = line.split(":")
            if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
                return int(fields[2])
    raise CopyError(f"unable to convert {what} {name!r} to an id: no such {what} in {file}")


def parse_chown(text: str, rootfs: RootFS) -> Owner | None:
    """--chown's ``user[:group]`` as ids, names looked up in the stage's /etc/passwd and
    /etc/group; without a group, the user's id (as Docker documents)."""
    if not text:
        return None
    user, _, group = text.partition(":")
    uid = _lookup_id(rootfs, "/etc/passwd", user, "user")
    gid = _lookup_id(rootfs, "/etc/group", group, "group") if group else uid
    return Owner(uid, gid)


def _info(parts: Sequence[str], kind: bytes, mode: int, owner: Owner, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo("/".join(parts) + ("/" if kind == tarfile.DIRTYPE else ""))
    info.type = kind
    info.mode = mode
    info.uid, info.gid = owner.uid, owner.gid
    info.mtime = int(mtime)
    return info


@dataclass
class CopyPlan:
    """What one COPY writes: tar entries by destination path (parents first)."""

    entries: dict[tuple[str, ...], tuple[tarfile.TarInfo, Path | None, bytes | None]]

    def write(self, writer: LayerWriter) -> None:
        import io

        for info, host, data in self.entries.values():
            if data is not None:
                info.size = len(data)
                info.uname = info.gname = ""
                writer.entries += 1
                writer.tar.addfile(info, io.BytesIO(data))
            else:
                writer.add(info, host)


def match_globstar(source: Source, word: str) -> list[tuple[str, ...]]:
    """The paths a ``--parents`` source with ``**`` names: BuildKit matches it as an include pattern,
    where ``**`` is any number of path components, none included (``src/**/*.txt`` names
    ``src/a.txt`` and ``src/x/y/c.txt``). What comes before the first ``**`` is matched as any
    source is; then each path below it whose rest matches the remaining pieces."""
    pieces = [piece for piece in clean(word).split("/") if piece not in ("", ".")]
    first = pieces.index("**")
    prefix, rest = pieces[:first], pieces[first:]
    found: list[tuple[str, ...]] = []
    for base in source.match("/".join(prefix)) if prefix else [()]:
        found += [(*base, *item.parts) for item in source.walk(base) if item.parts and _globstar(item.parts, rest)]
    return found


def _globstar(parts: Sequence[str], pieces: Sequence[str]) -> bool:
    if not pieces:
        return not parts
    if pieces[0] == "**":
        return any(_globstar(parts[skip:], pieces[1:]) for skip in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pieces[0]) and _globstar(parts[1:], pieces[1:])


def parents_pivot(word: str) -> int:
    """How many leading elements of a source's path ``--parents`` drops: those before a ``/./``
    in the word (BuildKit's pivot), else none."""
    pieces = [piece for piece in word.split("/") if piece]
    if "." in pieces[1:]:
        index = pieces.index(".", 1)
        return len([piece for piece in pieces[:index] if piece != "."])
    return 0


def plan_copy(rootfs: RootFS, workdir: str, destination: str, sources: Sequence[tuple[Source, str]],  # noqa: C901 - one rule per case
              inline: Sequence[tuple[str, bytes]], *, chown: Owner | None, chmod: int | None,
              unpack: Callable[[Source, Path], Source | None] | None = None, exclude: Matcher | None = None,
              parents: bool = False) -> CopyPlan:
    """The entries of a COPY of ``sources`` (each: where, and the source word after expansion)
    and ``inline`` files (heredocs: name, content) to ``destination``. ``unpack``: ADD's archive
    rule (a Source of the archive's members for a named local archive, else None); ``exclude``:
    ``--exclude`` patterns, matched against each path below a copied folder (a named file: its
    name); ``parents``: ``--parents`` (each source's folders kept under the destination).

    :raises CopyError: a source is missing, or the destination cannot be written.
    """
    now = time.time()
    root_owner = Owner(0, 0)
    target = destination if destination.startswith("/") else (workdir.rstrip("/") or "") + "/" + destination
    as_folder = destination.endswith(("/", "/.")) or destination in (".", "")
    matched: list[tuple[Source, tuple[str, ...], int]] = []
    for source, word in sources:
        found = match_globstar(source, word) if parents and "**" in word.split("/") else source.match(word)
        if not found:
            raise CopyError(source.missing(word))
        matched += [(source, parts, parents_pivot(word)) for parts in found]
    if len(matched) + len(inline) > 1 or parents:
        as_folder = True
    try:
        real, entry = rootfs.resolve(target)
    except PathError as exc:
        raise CopyError(str(exc)) from None
    if entry is not None and entry.is_dir:
        as_folder = True
    entries: dict[tuple[str, ...], tuple[tarfile.TarInfo, Path | None, bytes | None]] = {}

    def ensure_dirs(parts: tuple[str, ...]) -> None:
        for depth in range(1, len(parts) + 1):
            prefix = parts[:depth]
            if prefix in entries:
                continue
            existing = rootfs.lookup(prefix)
            if existing is not None and existing.is_dir:
                info = existing.info
                entries[prefix] = (_info(prefix, tarfile.DIRTYPE, stat.S_IMODE(info.st_mode),
                                         Owner(info.st_uid, info.st_gid), info.st_mtime), None, None)
            elif existing is not None:
                raise CopyError(f"cannot copy to /{'/'.join(prefix)}: not a directory")
            else:
                entries[prefix] = (_info(prefix, tarfile.DIRTYPE, 0o755, chown or root_owner, now), None, None)

    linked: dict[tuple[int, int], tuple[str, ...]] = {}  # a source's inode -> where it went first

    def put(dest: tuple[str, ...], item: Item, owned: bool) -> None:
        info = item.info
        owner = chown or (Owner(info.st_uid, info.st_gid) if owned else root_owner)
        mode = stat.S_IMODE(info.st_mode)
        if chmod is not None:  # as BuildKit (fsutil): the permission bits; setuid, setgid and sticky stay the source's
            mode = (mode & 0o7000) | (chmod & 0o777)
        if stat.S_ISDIR(info.st_mode):
            existing = rootfs.lookup(dest) if dest not in entries else None
            if dest in entries and not item.parts:
                return
            if existing is not None and existing.is_dir and not item.parts:
                return  # the destination folder keeps its own metadata
            entries[dest] = (_info(dest, tarfile.DIRTYPE, mode, owner, info.st_mtime), None, None)
        elif stat.S_ISLNK(info.st_mode):
            link = _info(dest, tarfile.SYMTYPE, 0o777, owner, info.st_mtime)
            if item.link:
                link.linkname = item.link
            else:
                assert item.host is not None
                link.linkname = os.readlink(item.host)
            entries[dest] = (link, None, None)
        elif stat.S_ISREG(info.st_mode):
            regular = _info(dest, tarfile.REGTYPE, mode, owner, info.st_mtime)
            regular.size = info.st_size
            first = linked.setdefault((info.st_dev, info.st_ino), dest) if info.st_nlink > 1 and item.host else dest
            if first != dest and first in entries:  # hard links stay links, as BuildKit's COPY keeps them
                regular.type, regular.linkname, regular.size = tarfile.LNKTYPE, "/".join(first), 0
                entries[dest] = (regular, None, None)
                return
            entries[dest] = (regular, item.host, item.data)
        else:
            raise CopyError(f"cannot copy /{'/'.join(dest)}: not a file, folder or link")

    if as_folder:
        ensure_dirs(real)
    elif real[:-1]:
        ensure_dirs(real[:-1])
    for source, parts, pivot in matched:
        items = list(source.walk(parts))  # walked once: whether it is a folder is its first entry's
        is_dir = bool(items) and stat.S_ISDIR(items[0].info.st_mode)
        root = real
        if parents:
            root = (*real, *(parts[pivot:] if is_dir else parts[pivot:-1]))
            ensure_dirs(root)
        for item in items:
            if exclude is not None and (name := "/".join(item.parts) if item.parts else
                                        ("" if is_dir or not parts else parts[-1])) and exclude.excluded(name):
                continue
            archive = unpack(source, item.host) if (unpack is not None and not item.parts and item.host is not None
                                            and stat.S_ISREG(item.info.st_mode)) else None
            if archive is not None:  # ADD of a local archive: its members into the destination folder
                ensure_dirs(root)
                for member in archive.walk(()):
                    if member.parts:
                        put((*root, *member.parts), member, True)
                continue
            top_is_dir = not item.parts and stat.S_ISDIR(item.info.st_mode)
            if top_is_dir:
                base = root
                ensure_dirs(root)
            elif as_folder and not item.parts:
                base = (*root, parts[-1]) if parts else root
            elif item.parts and is_dir:
                base = (*root, *item.parts)
            else:
                base = root
            put(base, item, source.owned())
    for name, data in inline:
        info = os.stat_result((0o100644, 0, 0, 1, 0, 0, len(data), int(now), int(now), int(now)))
        put((*real, name) if as_folder else real, Item((), info, None, data), False)
    if not entries:
        ensure_dirs(real)
    return CopyPlan(entries)
