"""The variables a Compose model interpolates, with their defaults (compose-go's
ExtractVariables: what ``config --variables`` lists). Pure: it reads the uninterpolated model.

``${NAME:-default}`` and ``${NAME-default}`` give a default, ``${NAME:?message}`` and
``${NAME?message}`` make it required, ``${NAME:+alternate}`` and ``${NAME+alternate}`` give the
value used when it is set; ``$$`` is a literal dollar. A default may itself hold variables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    default: str = ""
    presence: str = ""  # the ``:+`` value
    required: bool = False


def extract(model: Any) -> dict[str, Variable]:
    """Every variable in the model's strings (keys included), by name; the last spelling of a
    name that says more than its bare form wins."""
    found: dict[str, Variable] = {}
    for text in _strings(model):
        for variable in _variables(text):
            if variable.name not in found or variable != Variable(variable.name):
                found[variable.name] = variable
    return found


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _variables(text: str) -> Iterator[Variable]:
    index = 0
    while (index := text.find("$", index)) != -1:
        following = text[index + 1:index + 2]
        if following == "$":
            index += 2
            continue
        if following == "{":
            end = _closing(text, index + 2)
            if end is None:
                return
            yield from _braced(text[index + 2:end])
            index = end + 1
            continue
        name = _NAME.match(text, index + 1)
        if name:
            yield Variable(name.group())
            index = name.end()
        else:
            index += 1


def _closing(text: str, start: int) -> int | None:
    depth = 1
    for position in range(start, len(text)):
        if text[position] == "{":
            depth += 1
        elif text[position] == "}":
            depth -= 1
            if depth == 0:
                return position
    return None


def _braced(body: str) -> Iterator[Variable]:
    name = _NAME.match(body)
    if not name:
        return
    rest = body[name.end():]
    for operator in _OPERATORS:
        if rest.startswith(operator):
            argument = rest[len(operator):]
            if operator in (":-", "-"):
                yield Variable(name.group(), default=argument)
            elif operator in (":?", "?"):
                yield Variable(name.group(), required=True)
            else:
                yield Variable(name.group(), presence=argument)
            yield from _variables(argument)
            return
    yield Variable(name.group())
