"""A read-only view of a stage's filesystem through its unpacked layers (overlay form), without
mounting: lookups walk the layers top down as overlayfs would (a whiteout, a non-folder or an
opaque folder hides what is below), and symbolic links are resolved inside the stage's root,
never on the host (an image's ``/app -> /etc`` stays the image's /etc).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from composer.backends.native.image.layers import OPAQUE_XATTR

MAX_LINKS = 40


class PathError(Exception):
    """A path cannot be resolved (a loop of links, or a file where a folder is needed)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A path found in the stage: where its topmost copy is, and its lstat."""

    parts: tuple[str, ...]
    host: Path  # the file in its layer's diff folder
    info: os.stat_result

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.info.st_mode)

    @property
    def is_link(self) -> bool:
        return stat.S_ISLNK(self.info.st_mode)


def _whiteout(info: os.stat_result) -> bool:
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


class RootFS:
    """The merged view of ``layers`` (diff folders, bottom first; none for scratch)."""

    def __init__(self, layers: Sequence[Path]) -> None:
        self.layers = list(reversed(layers))  # top first

    def lookup(self, parts: Sequence[str]) -> Entry | None:
        """The topmost entry at ``parts`` (no link followed), or None."""
        parts = tuple(parts)
        if not parts:
            top = self.layers[0] if self.layers else None
            return Entry((), top, os.lstat(top)) if top is not None else None
        for layer in self.layers:
            hidden_below = False
            for depth in range(1, len(parts)):
                info = _lstat(layer.joinpath(*parts[:depth]))
                if info is None:
                    continue
                if not stat.S_ISDIR(info.st_mode):
                    return None  # a whiteout or a file replaces the folder here
                if _opaque(layer.joinpath(*parts[:depth])):
                    hidden_below = True
            path = layer.joinpath(*parts)
            info = _lstat(path)
            if info is not None:
                return None if _whiteout(info) else Entry(parts, path, info)
            if hidden_below:
                return None
        return None

    def resolve(self, path: str, *, follow_last: bool = True) -> tuple[tuple[str, ...], Entry | None]:
        """``path`` (absolute in the stage) with its links resolved inside the root: the real
        parts and what is there (None: missing; its parent folders exist unless they are missing too).

        :raises PathError: a loop of links, or a component that is not a folder.
        """
        pending = [part for part in path.split("/") if part]
        resolved: list[str] = []
        links = 0
        while pending:
            part = pending.pop(0)
            if part == ".":
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            entry = self.lookup((*resolved, part))
            if entry is not None and entry.is_link and (pending or follow_last):
                links += 1
                if links > MAX_LINKS:
                    raise PathError(f"{path}: too many levels of symbolic links")
                target = os.readlink(entry.host)
                if target.startswith("/"):
                    resolved = []
                pending = [piece for piece in target.split("/") if piece] + pending
                continue
            if entry is not None and pending and not entry.is_dir:
                raise PathError(f"{path}: /{'/'.join((*resolved, part))} is not a directory")
            resolved.append(part)
            if entry is None and pending:  # the rest does not exist either
                resolved += [piece for piece in pending if piece not in (".", "")]
                return tuple(resolved), None
        final = tuple(resolved)
        return final, self.lookup(final)

    def listdir(self, parts: Sequence[str]) -> list[str]:
        """The names in the folder ``parts`` (resolved already), merged over the layers."""
        parts = tuple(parts)
        names: set[str] = set()
        hidden: set[str] = set()
        for layer in self.layers:
            stop = False
            for depth in range(1, len(parts) + 1):
                info = _lstat(layer.joinpath(*parts[:depth]))
                if info is None:
                    continue
                if not stat.S_ISDIR(info.st_mode):
                    stop = True
                    break
            if stop:
                break
            folder = layer.joinpath(*parts)
            if not folder.is_dir() or folder.is_symlink():
                continue
            for name in os.listdir(folder):
                if name in hidden or name in names:
                    continue
                if _whiteout(os.lstat(folder / name)):
                    hidden.add(name)
                else:
                    names.add(name)
            if _opaque(folder) or any(_opaque(layer.joinpath(*parts[:depth])) for depth in range(1, len(parts))):
                break
        return sorted(names)
