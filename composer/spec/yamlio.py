"""Stage 1 of the loader: YAML text to plain Python trees, remembering where every node was.

Scalars are resolved the way Compose v2's YAML library (go-yaml v3) resolves them, not
the way ruamel.yaml would: only ``true``/``false`` are booleans (``yes`` stays a string),
``0777`` is octal, underscores in numbers are ignored. Doing this ourselves keeps
``composer config`` output identical to v2's.

What this module does not do: interpolation, merging, or any Compose semantics besides
the ``!reset`` and ``!override`` tags, which must be seen on the YAML node itself.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from composer.errors import SourceLocation, YamlSyntaxError
from composer.spec.flowquote import quote_flow_scalars
from composer.spec.limits import MAX_TREE_DEPTH, check_nesting

# Go-yaml v3 lets documents expand aliases freely; v2 hangs on the "billion laughs"
# input. A Compose file with more expanded nodes than this is refused up front.
MAX_EXPANDED_NODES = 2_000_000

PathKey = tuple[str | int, ...]

_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUES = frozenset({"true", "True", "TRUE"})
_FALSES = frozenset({"false", "False", "FALSE"})
_SPECIAL_FLOATS = {
    ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan,
    ".inf": math.inf, ".Inf": math.inf, ".INF": math.inf,
    "+.inf": math.inf, "+.Inf": math.inf, "+.INF": math.inf,
    "-.inf": -math.inf, "-.Inf": -math.inf, "-.INF": -math.inf,
}
RESET_TAG = "!reset"
OVERRIDE_TAG = "!override"


class Document:
    """One YAML document: its tree, positions by model path, and its !reset/!override paths."""

    __slots__ = ("filename", "positions", "reset_paths", "tree")

    def __init__(
        self, filename: str, tree: Any, positions: dict[PathKey, tuple[int, int]] | None = None,
        reset_paths: list[PathKey] | None = None,
    ) -> None:
        self.filename = filename
        self.tree = tree
        self.positions = positions if positions is not None else {}
        self.reset_paths = reset_paths if reset_paths is not None else []

    def location(self, path: PathKey) -> SourceLocation:
        """The position of the nearest known ancestor of ``path``."""
        for end in range(len(path), -1, -1):
            position = self.positions.get(path[:end])
            if position is not None:
                return SourceLocation(self.filename, position[0], position[1])
        return SourceLocation(self.filename)


def resolve_plain_scalar(text: str) -> Any:
    """Resolve an untagged plain scalar as go-yaml v3 does."""
    if text in _NULLS:
        return None
    if text in _TRUES:
        return True
    if text in _FALSES:
        return False
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    first = text[0]
    if not (first.isdigit() or first in "+-."):
        return text
    return _resolve_number(text)


def _resolve_number(text: str) -> Any:
    """go-yaml v3's order: an int64, else a uint64, else a finite float64, else the text.

    So an integer out of 64 bits reads as a float (``99999999999999999999`` is 1e+20), and a
    number out of float64's range (``1e400``, 5,000 digits) stays a string, as in v2.
    """
    plain = text.replace("_", "")
    integer = _go_parse_int(plain)
    if integer is not None and -(1 << 63) <= integer < (1 << 64):
        return integer
    if _FLOAT_RE.match(plain):
        number = float(plain)
        if math.isfinite(number):
            return number
    return text


def _go_parse_int(plain: str) -> int | None:
    """strconv.ParseInt(plain, 0, ...) without the range check: sign, 0x/0o/0b, leading-0 octal."""
    digits = plain[1:] if plain[:1] in "+-" else plain
    sign = -1 if plain[:1] == "-" else 1
    base = _BASE_PREFIXES.get(digits[:2])
    if base is not None:
        digits = digits[2:]
    elif len(digits) > 1 and digits[0] == "0":
        base = 8  # YAML 1.1 octal, still honoured by go-yaml v3
    else:
        base = 10
    significant = digits.lstrip("0") or "0"
    # Beyond 64 bits whatever the base: no need to convert (nor to hit int()'s 4,300-digit guard).
    if not digits or len(significant) > 64 or not all(char in _DIGITS[base] for char in significant):
        return None
    return sign * int(significant, base)


_BASE_PREFIXES = {"0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2}
_DIGITS = {2: frozenset("01"), 8: frozenset("01234567"), 10: frozenset("0123456789"),
           16: frozenset("0123456789abcdefABCDEF")}


class _Builder:
    """Turns a ruamel node graph into dicts, lists and scalars, recording positions."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.positions: dict[PathKey, tuple[int, int]] = {}
        self.reset_paths: list[PathKey] = []
        self._sizes: dict[int, int] = {}
        # Collections on the longest path down from a node (itself included), aliases expanded.
        self._heights: dict[int, int] = {}
        self._seen: set[int] = set()
        self._alias_paths: dict[int, set[str]] = {}
        self._alias_prefixes: dict[int, set[str]] = {}

    def error(self, node: Node, message: str) -> YamlSyntaxError:
        mark = node.start_mark
        return YamlSyntaxError(message, location=SourceLocation(self.filename, mark.line + 1, mark.column + 1))

    def expanded_size(self, node: Node, path: str = "", active: dict[int, str] | None = None, level: int = 0) -> int:
        """Number of nodes once every alias is expanded (memoised per node).

        An alias inside the node it refers to (``a: &x {b: *x}``) would expand forever:
        it is refused, as v2 does. So is a tree nested deeper than MAX_TREE_DEPTH once aliases
        are expanded (``&a1 [*a0]``, ``&a2 [*a1]``...): the text was checked, not the aliases.
        """
        known = self._sizes.get(id(node))
        if known is not None:
            if level + self._heights[id(node)] > MAX_TREE_DEPTH:
                raise self.error(node, f"exceeded max depth of {MAX_TREE_DEPTH} once aliases are expanded")
            return known
        collection = isinstance(node, MappingNode | SequenceNode)
        if collection and level + 1 > MAX_TREE_DEPTH:
            raise self.error(node, f"exceeded max depth of {MAX_TREE_DEPTH} once aliases are expanded")
        active = {} if active is None else active
        if id(node) in active:
            raise self.error(node, f"cycle detected: node at path {path} references node at path {active[id(node)]}")
        active[id(node)] = path
        total = 1
        height = 0
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                child = f"{path}.{key_node.value}" if path else str(key_node.value)
                total += self.expanded_size(key_node, child, active, level + 1)
                total += self.expanded_size(value_node, child, active, level + 1)
                height = max(height, self._heights[id(key_node)], self._heights[id(value_node)])
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                total += self.expanded_size(item, f"{path}.{index}" if path else str(index), active, level + 1)
                height = max(height, self._heights[id(item)])
        del active[id(node)]
        self._sizes[id(node)] = total
        self._heights[id(node)] = height + 1 if collection else 0
        return total

    def check_alias(self, node: Node, path: PathKey, via_merge: bool) -> None:
        """Refuse an alias used inside the value it points to, as v2 does.

        A node seen a second time is reached through an alias. v2 compares the dotted paths
        of the uses of one alias: one inside the other, in the same service, is a cycle.
        """
        if id(node) not in self._seen:
            self._seen.add(id(node))
            return
        current = _dotted(path) + (".<<" if via_merge else "")
        if "<<" in current:
            return
        # Sets of earlier paths and of their dotted prefixes keep this linear in the uses.
        previous_paths = self._alias_paths.setdefault(id(node), set())
        previous_prefixes = self._alias_prefixes.setdefault(id(node), set())
        ancestors = _dotted_prefixes(current)
        for previous in ancestors & previous_paths:
            if not _in_different_services(current, previous):
                raise self.error(node, f"cycle detected: node at path {current} references node at path {previous}")
        if current in previous_prefixes:
            for previous in sorted(previous_paths):
                if previous.startswith(current + ".") and not _in_different_services(current, previous):
                    raise self.error(
                        node, f"cycle detected: node at path {current} references node at path {previous}")
        previous_paths.add(current)
        previous_prefixes.update(ancestors)

    def build(self, node: Node, path: PathKey, via_merge: bool = False) -> Any:
        self.check_alias(node, path, via_merge)
        self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        tag = node.tag if isinstance(node.tag, str) else str(node.tag)
        if tag == RESET_TAG:
            self.reset_paths.append(path)
            return _RESET
        if tag == OVERRIDE_TAG:
            self.reset_paths.append(path)
        if isinstance(node, ScalarNode):
            return self.scalar(node, tag)
        if isinstance(node, SequenceNode):
            items = [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            return [item for item in items if item is not _RESET]
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        raise self.error(node, "unsupported YAML node")

    def scalar(self, node: ScalarNode, tag: str) -> Any:
        text = str(node.value)
        if node.style:  # quoted or block scalars are always strings
            return text
        if tag.startswith("!") and tag != OVERRIDE_TAG:
            return text  # an application tag we do not know: keep the text
        return resolve_plain_scalar(text)

    def mapping(self, node: MappingNode, path: PathKey) -> dict[str, Any]:
        result: dict[str, Any] = {}
        seen_lines: dict[str, int] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if _is_merge_key(key_node):
                self.merge_into(merged, value_node, path)
                continue
            key = self.key(key_node, path)
            if key in seen_lines:
                raise self.error(
                    key_node, f"mapping key {key!r} already defined at line {seen_lines[key]}"
                )
            seen_lines[key] = key_node.start_mark.line + 1
            self.positions[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            value = self.build(value_node, (*path, key))
            if value is not _RESET:
                result[key] = value
            else:
                result.pop(key, None)
        if merged:
            # Keys written in the mapping win over merged ones.
            for key, value in merged.items():
                if key not in seen_lines:
                    result[key] = value
        return result

    def merge_into(self, merged: dict[str, Any], value_node: Node, path: PathKey) -> None:
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, MappingNode):
                raise self.error(source, "map merge requires map or sequence of maps as the value")
            built = self.build(source, path, via_merge=True)
            for key, value in built.items():
                # In a sequence of merged maps, the first one that sets a key wins.
                merged.setdefault(key, value)

    def key(self, key_node: Node, path: PathKey) -> str:
        if not isinstance(key_node, ScalarNode):
            raise self.error(key_node, "mapping keys must be scalars")
        value = self.scalar(key_node, key_node.tag if isinstance(key_node.tag, str) else str(key_node.tag))
        if not isinstance(value, str):
            # v2 refuses keys that YAML reads as numbers, booleans or null: quote them.
            where = f"in {_dotted(path)}" if path else "at top level"
            raise self.error(key_node, f"non-string key {where}: {key_node.value}")
        return value


def _dotted(path: PathKey) -> str:
    return ".".join(str(part) for part in path)


def _dotted_prefixes(dotted: str) -> set[str]:
    """Every proper prefix of ``dotted`` that ends just before a dot."""
    return {dotted[:index] for index, char in enumerate(dotted) if char == "."}


def _in_different_services(first: str, second: str) -> bool:
    first_parts, second_parts = first.split("."), second.split(".")
    if len(first_parts) < 2 or len(second_parts) < 2:
        return False
    if first_parts[0] == "services" and second_parts[0] == "services":
        return first_parts[1] != second_parts[1]
    return False


def _is_merge_key(key_node: Node) -> bool:
    return isinstance(key_node, ScalarNode) and not key_node.style and key_node.value == "<<"


class _Reset:
    def __repr__(self) -> str:
        return "!reset"


_RESET: Any = _Reset()


def _compose_nodes(text: str, filename: str) -> list[Node]:
    """Compose with the C parser, falling back to the pure-Python one when the C one refuses.

    libyaml follows YAML 1.1 and rejects some YAML 1.2 plain scalars that v2 accepts, such
    as ``[vol:/data]`` in a flow sequence; the pure parser is YAML 1.2 but several times slower.
    Each text is checked for nesting depth before a composer sees it (limits.check_nesting).
    """
    try:
        check_nesting(text, filename, pure=False)
        return list(YAML(typ="safe", pure=False).compose_all(text))
    except YAMLError:
        pass
    quoted = quote_flow_scalars(text)
    if quoted is not None:
        try:
            check_nesting(quoted, filename, pure=False)
            return list(YAML(typ="safe", pure=False).compose_all(quoted))
        except YAMLError:
            pass
    check_nesting(text, filename, pure=True)
    pure = YAML(typ="safe", pure=True)
    # YAML lets a later anchor of the same name replace an earlier one, and go-yaml does so
    # silently (libyaml refuses it, hence this path): no Python warning on stderr.
    pure.composer.warn_double_anchors = False
    return list(pure.compose_all(text))


def parse_documents(text: str, filename: str) -> list[Document]:
    """Parse every YAML document of a Compose file.

    :raises YamlSyntaxError: the text is not YAML, a key repeats, or aliases expand too far.
    """
    try:
        nodes = _compose_nodes(text, filename)
    except MarkedYAMLError as exc:
        raise _syntax_error(exc, filename) from None
    except YAMLError as exc:
        raise YamlSyntaxError(str(exc).splitlines()[0], location=SourceLocation(filename)) from None
    documents = []
    if all(node is None for node in nodes):
        raise YamlSyntaxError("empty compose file", location=SourceLocation(filename))
    for node in nodes:
        if node is None:
            continue
        builder = _Builder(filename)
        if builder.expanded_size(node) > MAX_EXPANDED_NODES:
            raise YamlSyntaxError(
                f"document expands to more than {MAX_EXPANDED_NODES:,} nodes through aliases"
                " (a YAML alias bomb?); refusing to expand it",
                location=SourceLocation(filename, node.start_mark.line + 1, node.start_mark.column + 1),
            )
        tree = builder.build(node, ())
        documents.append(Document(filename, tree, builder.positions, builder.reset_paths))
    return documents


def _syntax_error(exc: MarkedYAMLError, filename: str) -> YamlSyntaxError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    if exc.context and exc.problem:
        problem = f"{exc.problem} ({exc.context})"
    if mark is None:
        return YamlSyntaxError(problem, location=SourceLocation(filename))
    return YamlSyntaxError(problem, location=SourceLocation(filename, mark.line + 1, mark.column + 1))
