"""Variable substitution in Compose strings, matching compose-go v2 (``template`` package).

What it does:
    ``substitute(text, lookup)`` expands ``$$``, ``$VAR``, ``${VAR}`` and the braced operators
    ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``, ``${VAR?err}``,
    ``${VAR:+replacement}`` and ``${VAR+replacement}``, with nested expressions inside the
    operator argument. The behaviour (including compose-go's quirks, listed below) was checked
    side by side against Docker Compose v2.40.3, which embeds compose-go v2.9.1.

What it does not do:
    It does not walk a Compose document, know about model paths, read the environment or
    ``.env`` files, or print the "variable is not set" warning: the caller supplies ``lookup``
    and, if it wants the warning, ``on_missing``. Errors carry no path; the loader adds one with
    ``TemplateError.in_context(path)``, which renders compose's exact wording.

compose-go semantics reproduced here (all confirmed with the real binary):
    * A ``$`` not followed by ``$``, a name or ``{`` is kept literally (``$ x``, ``$1``, ``x$``).
      A ``${`` that does not start a well-formed braced expression is an error
      (``${}``, ``${1}``, ``${X``, ``${X }``, ``${X:x}``, ``${X#y}``).
    * Names are ``[_A-Za-z][_A-Za-z0-9]*``; Go's case-insensitive regexp also accepts
      U+017F (long s) and U+212A (Kelvin sign), so we do too.
    * The braced body is matched greedily up to the *last* ``}`` on the line (``.`` never
      crosses a newline, so ``${A:-x<newline>}`` is an error), then cut at the first
      "balanced" ``}``. The balance counter counts every ``{`` and skips the character right
      after it, so ``${U?{}x}`` has the message ``{}x``. Text after the cut is substituted
      separately, and it is the template named by an error raised in it.
    * The operator argument is substituted *before* the variable is looked up, whatever the
      operator, so ``${SET:-${}}`` fails even though the default is never used.
    * ``:-``/``:?``/``:+`` treat an empty value like an unset one; ``-``/``?``/``+`` only unset.
      ``${VAR:+x}`` and ``${VAR+x}`` give ``""`` when the condition fails.
    * An invalid-format error names the innermost template that failed to match: the operator
      argument (``${U:-${}}`` names ``${}``), or the text after a cut (``${U:-a} ${ }`` names
      `` ${ }``), or the whole string.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = [
    "InvalidTemplateError",
    "Lookup",
    "MissingRequiredError",
    "OnMissing",
    "TemplateError",
    "go_quote",
    "substitute",
]

Lookup = Callable[[str], str | None]
"""Returns a variable's value, or None when the variable is unset (empty is a value)."""

OnMissing = Callable[[str], None]
"""Called with the name of a plain ``$VAR``/``${VAR}`` reference that is unset."""

# Go's (?i)[a-z] also folds to U+017F (long s) and U+212A (Kelvin sign); Python's IGNORECASE
# would add dotted/dotless i as well, so the class is spelled out instead.
_NAME = "[_a-zA-Z\u017f\u212a][_a-zA-Z0-9\u017f\u212a]*"

# One match per ``$`` construct, scanned left to right like Go's ReplaceAllStringFunc. The
# ``invalid`` branch matches a bare ``${`` so malformed braces are reported, not skipped.
_PATTERN = re.compile(
    rf"\$(?:(?P<escaped>\$)|(?P<named>{_NAME})|\{{(?:(?P<braced>{_NAME}(?::?[-+?].*)?)\}}|(?P<invalid>)))"
)

# Splits an already-validated braced body into name, operator and argument.
_BODY = re.compile(rf"({_NAME})(:?[-+?])?")

_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(text: str) -> str:
    """Quote ``text`` the way Go's ``%q`` / ``%#v`` does, for error messages that must match."""
    out = ['"']
    for char in text:
        escaped = _GO_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(_go_escape_rune(ord(char)))
    out.append('"')
    return "".join(out)


def _go_escape_rune(code: int) -> str:
    """Go's escape for a non-printable rune: ``\\xNN`` for controls, else ``\\u``/``\\U``."""
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:
        # A byte that was not UTF-8, kept by the "surrogateescape" codec: Go prints raw bytes so.
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        # Any other lone surrogate is not a valid rune; Go would print U+FFFD in its place.
        code = 0xFFFD
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


class TemplateError(Exception):
    """A string cannot be interpolated; ``message`` is compose-go's own error text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def in_context(self, path: str) -> str:
        """Compose's message for this error at model path ``path`` (e.g. ``services.a.image``)."""
        return f"error while interpolating {path}: {self.message}"


class InvalidTemplateError(TemplateError):
    """A ``${`` does not start a well-formed expression; ``template`` is the failing text."""

    def __init__(self, template: str) -> None:
        super().__init__(f"Invalid template: {go_quote(template)}")
        self.template = template

    def in_context(self, path: str) -> str:
        return (
            f"invalid interpolation format for {path}.\n"
            f"You may need to escape any $ with another $.\n{self.template}"
        )


class MissingRequiredError(TemplateError):
    """``${VAR:?reason}`` / ``${VAR?reason}`` met a missing value; ``reason`` may be empty."""

    def __init__(self, variable: str, reason: str) -> None:
        message = f"required variable {variable} is missing a value"
        if reason:
            message = f"{message}: {reason}"
        super().__init__(message)
        self.variable = variable
        self.reason = reason


def substitute(text: str, lookup: Lookup, on_missing: OnMissing | None = None) -> str:
    """Expand every ``$`` expression in ``text``; raise a TemplateError subclass on failure."""
    if "$" not in text:
        # Most strings in a Compose file hold no variable at all.
        return text
    try:
        return _substitute(text, lookup, on_missing)
    except RecursionError:
        # Only operator arguments recurse; Go has no such limit, but nobody nests this deep.
        raise TemplateError("expression nested too deeply") from None


def _substitute(template: str, lookup: Lookup, on_missing: OnMissing | None) -> str:
    """Scan ``template`` left to right, as Go's ReplaceAllStringFunc does.

    A braced match can leave a tail (the text after its first balanced ``}``) that compose-go
    substitutes as a template of its own before resuming after the match. Tails are kept on
    an explicit stack, not recursion, so a long line of ``${A:-x}${B:-y}...`` is cheap.
    """
    out: list[str] = []
    resume: list[tuple[str, int]] = []
    pos = 0
    while True:
        match = _PATTERN.search(template, pos)
        if match is None:
            out.append(template[pos:])
            if not resume:
                return "".join(out)
            template, pos = resume.pop()
            continue
        out.append(template[pos : match.start()])
        pos = match.end()
        if match.group("invalid") is not None:
            # compose-go names the template being scanned: the whole string, an operator
            # argument, or a tail.
            raise InvalidTemplateError(template)
        value, tail = _expand(match, lookup, on_missing)
        out.append(value)
        if tail:
            resume.append((template, pos))
            template, pos = tail, 0


def _expand(match: re.Match[str], lookup: Lookup, on_missing: OnMissing | None) -> tuple[str, str]:
    """Return the value of one valid match and the tail still to be substituted."""
    if match.group("escaped") is not None:
        return "$", ""
    named = match.group("named")
    if named is not None:
        return _plain(named, lookup, on_missing), ""
    head, tail = _split_at_closing_brace(match.group(0))
    # The head is "${" + body + "}" and the body re-matches the braced group in full.
    body = head[2:-1]
    parsed = _BODY.match(body)
    assert parsed is not None  # guaranteed by _PATTERN
    name, operator = parsed.group(1), parsed.group(2)
    if operator is None:
        return _plain(name, lookup, on_missing), tail
    argument = substitute(body[parsed.end() :], lookup, on_missing)
    return _apply(operator, name, argument, lookup), tail


def _plain(name: str, lookup: Lookup, on_missing: OnMissing | None) -> str:
    value = lookup(name)
    if value is None:
        if on_missing is not None:
            on_missing(name)
        return ""
    return value


def _apply(operator: str, name: str, argument: str, lookup: Lookup) -> str:
    """Evaluate one operator; ``argument`` is already substituted (compose-go is eager)."""
    value = lookup(name)
    # The colon forms treat an empty value like an unset one.
    present = value is not None and (value != "" or not operator.startswith(":"))
    kind = operator[-1]
    if kind == "-":
        return value if present and value is not None else argument
    if kind == "+":
        return argument if present else (value or "")
    # kind == "?"
    if not present or value is None:
        raise MissingRequiredError(name, argument)
    return value


def _split_at_closing_brace(text: str) -> tuple[str, str]:
    """Cut ``text`` after its first balanced ``}``, reproducing compose-go's counter.

    compose-go counts every ``{`` and then skips the character after it, so in ``${U?{}x}``
    the ``}`` right after ``{`` is not seen and the cut falls at the end. Without a
    balanced ``}`` the whole text is the head.
    """
    depth = 0
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char == "}":
            depth -= 1
            if depth == 0:
                return text[: index + 1], text[index + 1 :]
        elif char == "{":
            depth += 1
            index += 1
        index += 1
    return text, ""
