"""``--format`` as the docker CLI reads it (docker/cli's formatter): ``table``, ``json``,
``table TEMPLATE`` or a Go template, of which the part the listing commands use is understood:
``{{.Field}}``, ``{{json .}}``, ``{{json .Field}}``, ``{{upper .Field}}``, ``{{lower .Field}}``
and ``{{title .Field}}``; anything else is refused in one line. ``\\t`` and ``\\n`` typed in a
template are a tab and a newline; a table's columns are laid out as Go's tabwriter does. Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from composer.cli.tables import table
from composer.errors import UsageError

_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}")
_FUNCTIONS: dict[str, Callable[[str], str]] = {"upper": str.upper, "lower": str.lower, "title": str.title}


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed ``--format``: its pieces (text, or a (function, field) to print) and whether it is a table."""

    pieces: tuple[str | tuple[str, str], ...]
    is_table: bool

    def render(self, row: Mapping[str, Any]) -> str:
        out = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            function, field = piece
            value: Any = row if field == "." else _field(row, field)
            if function == "json":
                out.append(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
            elif function:
                out.append(_FUNCTIONS[function](_text(value)))
            else:
                out.append(_text(value))
        return "".join(out)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _field(row: Mapping[str, Any], field: str) -> Any:
    name = field[1:]
    if name not in row:
        raise UsageError(f'template: can\'t evaluate field {name} (fields: {", ".join(sorted(row))})')
    return row[name]


def parse(text: str) -> Template:
    """A Go template, or ``table`` followed by one.

    :raises UsageError: an action this subset does not understand.
    """
    is_table = text.startswith("table ") or text == "table"
    body = text[len("table"):] if is_table else text
    body = body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    pieces: list[str | tuple[str, str]] = []
    position = 0
    for match in _ACTION.finditer(body):
        if match.start() > position:
            pieces.append(body[position:match.start()])
        words = match.group(1).split()
        if len(words) == 1 and words[0].startswith(".") and (words[0] == "." or words[0][1:].isidentifier()):
            pieces.append(("", words[0]))
        elif len(words) == 2 and (words[0] == "json" or words[0] in _FUNCTIONS) and words[1].startswith("."):
            pieces.append((words[0], words[1]))
        else:
            raise UsageError(f"unsupported template action {{{{{match.group(1)}}}}} in --format: composer "
                             "understands {{.Field}}, {{json .}}, {{json .Field}}, {{upper|lower|title .Field}}")
        position = match.end()
    if position < len(body):
        pieces.append(body[position:])
    return Template(tuple(pieces), is_table)


def render(format_: str, rows: Sequence[Mapping[str, Any]], *, default_table: str,
           headers: Mapping[str, str]) -> list[str]:
    """The lines ``--format`` asks for: ``table`` (``default_table``), ``json`` (one object per
    row), ``table TEMPLATE`` (a header row, tabwriter columns) or a template (one line per row)."""
    if format_ == "json":
        return [json.dumps(dict(row), separators=(",", ":"), ensure_ascii=False) for row in rows]
    template = parse(default_table if format_ in ("", "table") else format_)
    if not template.is_table:
        return [template.render(row) for row in rows]
    header = template.render({name: headers.get(name, name.upper()) for name in headers}) if headers else ""
    lines = [header, *(template.render(row) for row in rows)]
    cells = [line.split("\t") for text in lines for line in text.split("\n")]
    return table(cells, padding=3, min_width=10)
