""".dockerignore patterns (moby/patternmatcher's rules), matched against absolute host paths:
what ``develop.watch`` ignores and includes.

A pattern is made absolute against its root (a watch rule's path, or the build context for the
``.dockerignore`` file); ``*`` and ``?`` stay within one path segment, ``**`` crosses any number
of them, ``[...]`` is a character class, ``\\`` escapes; ``!pattern`` re-includes. A path matches
when it or one of its parent folders does, and the last pattern that decides wins.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

_ESCAPED = set(".+()|{}$^")


def _regex(pattern: str) -> re.Pattern[str]:
    """patternmatcher's translation of one (absolute, cleaned) pattern to an anchored regex."""
    out = ["^"]
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            if pattern[index + 1:index + 2] == "*":
                index += 1
                if pattern[index + 1:index + 2] == "/":
                    index += 1  # "**/" is "**"
                # "**" at the end takes everything; elsewhere any number of folders, even none
                out.append(".*" if index + 1 >= len(pattern) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(re.escape(pattern[index]))
        elif char in _ESCAPED:
            out.append("\\" + char)
        else:
            out.append(char)  # "[", "]" and "-" pass through: character classes
        index += 1
    out.append("$")
    try:
        return re.compile("".join(out))
    except re.error:
        return re.compile(re.escape(pattern) + "$")  # an unbalanced "[": matched literally


@dataclass(frozen=True, slots=True)
class _Pattern:
    regex: re.Pattern[str]
    exclusion: bool


class PatternMatcher:
    """Patterns of a ``.dockerignore``, or of a watch rule's ``ignore`` or ``include``."""

    def __init__(self, root: str, patterns: Sequence[str]) -> None:
        root = os.path.abspath(root)
        compiled: list[_Pattern] = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            exclusion = text.startswith("!")
            text = posixpath.normpath(text[1:] if exclusion else text)
            if not text.startswith("/"):
                text = posixpath.join(root, text)
            compiled.append(_Pattern(_regex(posixpath.normpath(text)), exclusion))
        self.patterns = tuple(compiled)

    def matches(self, path: str) -> bool:
        """Whether ``path`` (absolute) or one of its parents matches, the last deciding pattern winning."""
        parents = _parents(path)
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # only a pattern that could change the answer is tried
            if any(pattern.regex.match(candidate) for candidate in parents):
                matched = not pattern.exclusion
        return matched


def _parents(path: str) -> list[str]:
    """``path`` and each of its parent folders, the shortest last: /a/b/c, /a, /a/b."""
    parts = path.strip("/").split("/")
    return [path, *("/" + "/".join(parts[:count]) for count in range(1, len(parts)))]


def read_ignore_file(path: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file: comments (``#`` first) and blank lines dropped."""
    with open(path, encoding="utf-8") as handle:
        lines = (line.strip() for line in handle.read().splitlines())
        return [line for line in lines if line and not line.startswith("#")]


def dockerignore_of(context: str, dockerfile: str | None) -> list[str]:
    """The build's ignore patterns: ``<Dockerfile>.dockerignore`` when it exists (as BuildKit
    reads it), else ``.dockerignore``, else none."""
    candidates = [os.path.join(context, ".dockerignore")]
    if dockerfile:
        candidates.insert(0, os.path.join(context, dockerfile) + ".dockerignore")
    for path in candidates:
        if os.path.isfile(path):
            return read_ignore_file(path)
    return []
