"""Quote plain scalars holding ``:`` inside flow collections, so that libyaml can read them.

YAML 1.2 (and v2's parser) accepts ``volumes: [./data:/srv:ro]``; libyaml, which implements
YAML 1.1, refuses a ``:`` inside a plain scalar in a flow collection. Rather than fall back
to the pure-Python parser (several times slower), the loader first tries the C parser on a
copy of the text where such scalars are single-quoted. They read as the same strings: a
plain scalar with a ``:`` inside is never a number, boolean or null for go-yaml v3.

The rewrite is deliberately narrow: flow collections are only recognised where a value
starts, block scalars (``|``, ``>``) are skipped, and anything this scanner does not
understand (a quoted scalar running over a line end) makes it give up and return None.
Columns after a quoted scalar on the same line move right by two.
"""

from __future__ import annotations

import re

_SEQUENCE_PREFIX = re.compile(r"^\s*(-\s+)*-?$")
_BLOCK_SCALAR = re.compile(r"^[|>][-+0-9]*\s*(#.*)?$")
_FLOW_END = ",[]{}"


class _GiveUp(Exception):
    pass


def _skip_quoted(line: str, start: int) -> int:
    """Index just past the quoted scalar starting at ``start``."""
    quote = line[start]
    index = start + 1
    while index < len(line):
        char = line[index]
        if quote == '"' and char == "\\":
            index += 2
            continue
        if char == quote:
            if quote == "'" and line[index + 1:index + 2] == "'":
                index += 2
                continue
            return index + 1
        index += 1
    raise _GiveUp  # runs over the line end


def _plain_end(line: str, start: int) -> int:
    index = start
    while index < len(line):
        char = line[index]
        if char in _FLOW_END:
            break
        if char == ":" and (index + 1 == len(line) or line[index + 1] in " \t" + _FLOW_END):
            break
        if char == "#" and line[index - 1] in " \t":
            break
        index += 1
    return index


class _Rewriter:
    def __init__(self) -> None:
        self.depth = 0
        self.block_indent: int | None = None
        self.changed = False

    def line(self, line: str) -> str:
        if self.block_indent is not None:
            indent = len(line) - len(line.lstrip(" "))
            if not line.strip() or indent > self.block_indent:
                return line
            self.block_indent = None
        if self.depth == 0:
            return self.block_line(line)
        return self.flow(line, 0)

    def block_line(self, line: str) -> str:
        index = 0
        while index < len(line):
            char = line[index]
            if char == "#" and (index == 0 or line[index - 1] in " \t"):
                return line
            if char in "\"'" and self.value_start(line, index):
                index = _skip_quoted(line, index)
                continue
            if char in "[{" and self.value_start(line, index):
                return self.flow(line, index)
            if char in "|>" and self.value_start(line, index) and _BLOCK_SCALAR.match(line[index:]):
                self.block_indent = len(line) - len(line.lstrip(" "))
                return line
            if char not in " \t-" and self.value_start(line, index):
                # A key or a plain scalar: skip to its value, if any.
                colon = line.find(": ", index)
                if colon < 0:
                    return line
                index = colon + 2
                continue
            index += 1
        return line

    @staticmethod
    def value_start(line: str, index: int) -> bool:
        before = line[:index].rstrip()
        return before == "" or before.endswith(":") or bool(_SEQUENCE_PREFIX.match(before))

    def flow(self, line: str, index: int) -> str:
        parts = [line[:index]]
        while index < len(line):
            char = line[index]
            if char in "[{":
                self.depth += 1
            elif char in "]}":
                self.depth -= 1
                if self.depth == 0:
                    parts.append(char)
                    parts.append(self.block_line(line[index + 1:]) if line[index + 1:].strip() else line[index + 1:])
                    return "".join(parts)
            elif char == "#" and line[index - 1] in " \t":
                parts.append(line[index:])
                return "".join(parts)
            elif char in "\"'":
                end = _skip_quoted(line, index)
                parts.append(line[index:end])
                index = end
                continue
            elif char not in " \t,:?&*!":
                end = _plain_end(line, index)
                scalar = line[index:end].rstrip()
                if ":" in scalar:
                    scalar = "'" + scalar.replace("'", "''") + "'"
                    self.changed = True
                parts.append(scalar + line[index + len(line[index:end].rstrip()):end])
                index = end
                continue
            parts.append(char)
            index += 1
        return "".join(parts)


def quote_flow_scalars(text: str) -> str | None:
    """The text with colon-holding plain scalars in flow collections quoted; None if unsure."""
    rewriter = _Rewriter()
    try:
        lines = [rewriter.line(line) for line in text.split("\n")]
    except _GiveUp:
        return None
    return "\n".join(lines) if rewriter.changed else None
