"""``.dockerignore`` patterns with moby's semantics (github.com/moby/patternmatcher).

Each line is a pattern, cleaned as Go's ``filepath.Clean`` and without a leading ``/``; ``#``
lines and blank lines are skipped; ``!`` makes an exception. ``*`` and ``?`` match within one
path element, ``**`` any number of elements. A pattern matches a path or any of its parent
folders, and the last pattern that matches decides.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def _regex(pattern: str) -> re.Pattern[str]:
    out = "^"
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            if pattern[index + 1:index + 2] == "*":
                index += 1
                if pattern[index + 1:index + 2] == "/":
                    index += 1
                out += ".*" if index + 1 >= len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out += re.escape(pattern[index])
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end < 0:
                out += re.escape(char)
            else:
                out += "[" + pattern[index + 1:end].replace("\\", "\\\\") + "]"  # as moby: Go's [^...]
                index = end
        else:
            out += re.escape(char)
        index += 1
    return re.compile(out + "$", re.DOTALL)


def clean(path: str) -> str:
    """Go's filepath.Clean without a leading ``/`` (``.`` for the root)."""
    cleaned = posixpath.normpath("/" + path).lstrip("/")
    return cleaned or "."


def parse(text: str) -> list[Pattern]:
    """The patterns of a ``.dockerignore`` file's text."""
    patterns: list[Pattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        if not line:
            continue
        cleaned = clean(line)
        patterns.append(Pattern(cleaned, exclusion, _regex(cleaned)))
    return patterns


class Matcher:
    """Whether a context path (relative, ``/``-separated) is excluded."""

    def __init__(self, patterns: list[Pattern]) -> None:
        self.patterns = patterns

    def excluded(self, path: str) -> bool:
        return self.excluded_by(path) is not None

    def excluded_by(self, path: str) -> str | None:
        """The pattern that excludes ``path`` (the last one that matched), or None."""
        path = clean(path)
        parents = path.split("/")[:-1]
        prefixes = ["/".join(parents[:count + 1]) for count in range(len(parents))]
        rule: str | None = None
        for pattern in self.patterns:
            if pattern.exclusion == (rule is None):  # cannot change the outcome
                continue
            hit = pattern.regex.match(path) is not None or any(
                pattern.regex.match(prefix) is not None for prefix in prefixes)
            if hit:
                rule = None if pattern.exclusion else pattern.text
        return rule

    def may_include_below(self, directory: str) -> bool:
        """Whether an exception pattern could re-include something under an excluded folder."""
        return any(pattern.exclusion for pattern in self.patterns)
