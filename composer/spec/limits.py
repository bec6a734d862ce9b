"""Bounds on what the loader reads, checked before anything is parsed.

- **Size**: every file the loader reads (Compose files, standard input, ``.env``, ``--env-file``,
  ``env_file``, ``label_file``, include's env files) is read with a cap, ``COMPOSER_MAX_FILE_SIZE``
  (bytes, or ``64m``-style; 64 MiB by default). v2 reads ``env_file: /dev/zero`` until memory
  runs out.
- **Kind**: only regular files and pipes (``-f <(envsubst < compose.yaml)``) are read; a device,
  a socket or a directory is refused before a byte is read. A named pipe is opened without
  blocking, so one without a writer reads as empty instead of hanging.
- **Nesting**: YAML nesting deeper than go-yaml's limit (10,000, flow or block) is refused
  before a tree is built, with v2's message and the position of the collection that goes too
  deep: ruamel's C composer recurses on the C stack without a check, and segfaults at about
  50,000 levels.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import IO

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

from composer.errors import SourceLocation, YamlSyntaxError

MAX_DEPTH = 10_000  # go-yaml v3's max_flow_level and max_indents
# The deepest tree that text within MAX_DEPTH can make: flow levels inside block levels.
# Aliases can make deeper ones; yamlio refuses them against the same bound.
MAX_TREE_DEPTH = 2 * MAX_DEPTH
DEFAULT_MAX_FILE_BYTES = 64 << 20
MAX_FILE_SIZE_VARIABLE = "COMPOSER_MAX_FILE_SIZE"
# Every nesting level needs one of these characters, so fewer of them bound the depth for free.
_NESTING_INDICATORS = "[{-:?"


class InputLimitError(ValueError):
    """A file is too large, or not something the loader reads (a device, a socket)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def max_file_bytes() -> int:
    """The size cap: ``COMPOSER_MAX_FILE_SIZE`` when set (bytes, or with a unit: ``128m``)."""
    from composer.spec.units import UnitError, parse_bytes

    text = os.environ.get(MAX_FILE_SIZE_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_FILE_BYTES
    try:
        limit = parse_bytes(text)
    except UnitError:
        limit = -1
    if limit <= 0:
        raise InputLimitError(f"{MAX_FILE_SIZE_VARIABLE}={text}: not a positive size")
    return limit


def _open_nonblocking(path: str, flags: int) -> int:
    # A named pipe without a writer must not block the open; a terminal must not become ours.
    return os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)


def read_bounded(path: str, limit: int | None = None) -> bytes:
    """The bytes of the regular file or pipe at ``path``, at most ``limit`` (``max_file_bytes()``).

    Opened with the builtin ``open`` so that the CLI's cache (composer.spec.cache) records it.

    :raises InputLimitError: not a regular file or a pipe, or larger than the cap (the message
        does not name the file: callers give it as the error's location).
    :raises OSError: it cannot be opened (FileNotFoundError, IsADirectoryError...).
    """
    limit = max_file_bytes() if limit is None else limit
    with open(path, "rb", buffering=0, opener=_open_nonblocking) as handle:
        info = os.fstat(handle.fileno())
        if stat.S_ISFIFO(info.st_mode):
            os.set_blocking(handle.fileno(), True)  # a writer that is there is waited for
        elif not stat.S_ISREG(info.st_mode):
            raise InputLimitError(f"not a regular file ({_kind(info.st_mode)}): refusing to read it")
        elif info.st_size > limit:
            raise InputLimitError(_too_large(limit))
        return _read_capped(handle, limit)


def _read_capped(handle: IO[bytes], limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = handle.read(min(1 << 20, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise InputLimitError(_too_large(limit))
    return b"".join(chunks)


def read_stdin_bounded(limit: int | None = None) -> str:
    """Standard input as text, at most ``limit`` characters."""
    limit = max_file_bytes() if limit is None else limit
    text = sys.stdin.read(limit + 1)
    if len(text) > limit:
        raise InputLimitError(_too_large(limit))
    return text


def _too_large(limit: int) -> str:
    return f"larger than {limit:,} bytes: refusing to read it (raise {MAX_FILE_SIZE_VARIABLE} to allow more)"


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def check_nesting(text: str, filename: str, pure: bool) -> None:
    """Refuse YAML nested deeper than go-yaml allows, before it is composed into nodes.

    go-yaml counts flow levels (``[``, ``{``) and block indentation levels apart, each up to
    ``MAX_DEPTH``; so does this. It runs the (iterative) parser of the same kind as the composer
    that follows, and only when the text has enough indicator characters to nest that deep. A
    syntax error ends the check: the composer stops at the same event, no deeper than checked.

    :raises YamlSyntaxError: "exceeded max depth of 10000", at the collection that goes too deep.
    """
    if sum(text.count(indicator) for indicator in _NESTING_INDICATORS) <= MAX_DEPTH:
        return
    flow = block = 0
    styles: list[bool] = []
    try:
        for event in YAML(typ="safe", pure=pure).parse(text):
            if isinstance(event, CollectionStartEvent):
                in_flow = bool(event.flow_style)
                styles.append(in_flow)
                flow, block = (flow + 1, block) if in_flow else (flow, block + 1)
                if flow > MAX_DEPTH or block > MAX_DEPTH:
                    mark = event.start_mark
                    raise YamlSyntaxError(f"exceeded max depth of {MAX_DEPTH}",
                                          location=SourceLocation(filename, mark.line + 1, mark.column + 1))
            elif isinstance(event, CollectionEndEvent):
                if styles.pop():
                    flow -= 1
                else:
                    block -= 1
    except YAMLError:
        return
