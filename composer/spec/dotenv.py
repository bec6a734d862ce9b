"""``.env`` / ``env_file`` parsing, matching compose-go v2's ``dotenv`` package.

What it does:
    ``parse_dotenv(text, lookup)`` turns dotenv text into an ordered ``{key: value}`` dict and
    ``read_dotenv_file(path, lookup)`` does the same for a file, with compose's messages for a
    missing file, a directory and a parse error. Unquoted and double-quoted values are
    interpolated with ``composer.spec.template.substitute``; single-quoted values are literal.
    The behaviour, quirks included, was checked against Docker Compose v2.40.3
    (compose-go v2.9.1).

What it does not do:
    It does not merge several env files, apply OS-environment precedence, drop keys that start
    with a digit (compose-go's ``ReadWithLookup`` does that, its ``env_file`` path does not), or
    print the "variable is not set" warning (pass ``on_missing``). Those belong to the loader.

compose-go rules reproduced here:
    * Interpolation inside a value consults ``lookup`` FIRST and only then the keys already
      defined earlier in the same file. A key defined in the file is never overridden by
      ``lookup`` itself, only references to it are.
    * ``KEY`` alone on a line is "inherited": it takes ``lookup(KEY)``, and is omitted when
      that is unset. A bare word on the LAST line with no newline after it is instead read as
      the value of an empty key (``{"": "KEY"}``), and so is ``export WORD`` there.
    * ``KEY=value``, ``KEY = value`` and ``KEY: value`` are all accepted; keys may hold
      letters, digits, ``_ . - [ ]``; spaces around the separator are dropped.
    * Unquoted values run to the end of the line, are cut at the first `` #`` and
      right-trimmed (so ``A=#x`` and ``A= #x`` are ``#x``: the space was already skipped).
    * Quoted values may span lines; ``\\<quote>`` is the quote, any other ``\\c`` is kept for
      the escape pass. Double quotes then expand ``\\a \\b \\f \\n \\r \\t \\v \\" \\\\ \\$``
      and ``\\0NNN`` octal; backticks are not quotes. Text after the closing quote on the
      same line is parsed as if it began a new statement (``A='x' OS`` inherits ``OS``).
    * Line numbers in messages come from compose-go's counter, which is off in places:
      an unterminated quote reports the line where the file ENDS, and an inherited key with
      trailing blanks (``KEY  <newline>``) does not advance the count.
"""

from __future__ import annotations

import os
import re
import unicodedata

from composer.spec.limits import InputLimitError, read_bounded
from composer.spec.template import Lookup, OnMissing, TemplateError, go_quote, substitute

__all__ = ["DotenvError", "parse_dotenv", "read_dotenv_file"]

# Go's unicode.IsSpace: used to find a statement's start and to right-trim values.
_GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_GO_SPACE_CHARS = "".join(sorted(_GO_SPACE))
# The dotenv parser's own isSpace: blanks but not line breaks, used around keys.
_BLANK = frozenset("\t\v\f\r \x85\xa0")
_KEY_PUNCTUATION = frozenset("_.-[]")

# Go's regexp \s is ASCII-only and has no \v.
_EXPORT = re.compile(r"export[\t\n\f\r ]")

# Escapes recognised inside double quotes; Go's \d is ASCII, hence [0-9].
_ESCAPE = re.compile(r'\\(?:[abcfnrtv$"\\]|0[0-9]{0,3})')
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    '"': '"',
    "\\": "\\",
    # A "$$" survives as a literal "$" through the interpolation that follows.
    "$": "$$",
}


class DotenvError(Exception):
    """A dotenv file cannot be read or parsed.

    ``message`` is compose's text: ``line N: ...`` for syntax errors, compose-go's template
    message for a bad ``${...}`` in a value, and with ``failed to read <path>: `` in front
    when raised by ``read_dotenv_file``. ``line`` (1-based) is where the error was found
    (for a template error, the line the statement starts on), or None for file errors.
    """

    def __init__(self, message: str, *, line: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.path = path


def read_dotenv_file(path: str, lookup: Lookup, on_missing: OnMissing | None = None) -> dict[str, str]:
    """Parse the dotenv file at ``path``; the path in messages is made absolute like compose's."""
    absolute = os.path.abspath(path)
    if not os.path.exists(absolute):
        raise DotenvError(f"Couldn't find env file: {absolute}", path=absolute)
    if os.path.isdir(absolute):
        raise DotenvError(f"{absolute} is a directory", path=absolute)
    try:
        data = read_bounded(absolute)  # capped: ``env_file: /dev/zero`` is refused, not read forever
    except InputLimitError as exc:
        raise DotenvError(f"failed to read {absolute}: {exc.message}", path=absolute) from None
    except OSError as exc:
        raise DotenvError(f"Couldn't read env file: {absolute}", path=absolute) from exc
    # Go parses bytes. Undecodable bytes are carried as surrogates so that messages can show
    # them as \xNN like Go does, then become U+FFFD in the result, as in compose's JSON output.
    try:
        text, clean = data.decode("utf-8"), True
    except UnicodeDecodeError:
        text, clean = data.decode("utf-8", errors="surrogateescape"), False
    try:
        result = parse_dotenv(text, lookup, on_missing)
    except DotenvError as exc:
        raise DotenvError(f"failed to read {absolute}: {exc.message}", line=exc.line, path=absolute) from None
    if clean:
        return result
    return {_scrub(key): _scrub(value) for key, value in result.items()}


def _scrub(text: str) -> str:
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def parse_dotenv(text: str, lookup: Lookup, on_missing: OnMissing | None = None) -> dict[str, str]:
    """Parse dotenv ``text`` into a dict in file order (a repeated key keeps its last value)."""
    # Editors on Windows like to prepend a BOM; compose-go strips it before parsing.
    if text.startswith("\ufeff"):
        text = text[1:]
    return _Parser(text, lookup, on_missing).parse()


class _Parser:
    """A cursor over the text; ``line`` advances exactly where compose-go's counter does."""

    def __init__(self, text: str, lookup: Lookup, on_missing: OnMissing | None) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lookup = lookup
        self.on_missing = on_missing
        self.out: dict[str, str] = {}

    def parse(self) -> dict[str, str]:
        while self._seek_statement():
            self._statement()
        return self.out

    def _error(self, message: str) -> DotenvError:
        return DotenvError(f"line {self.line}: {message}", line=self.line)

    def _seek_statement(self) -> bool:
        """Skip blank space and comment lines; False at the end of the text."""
        text, length = self.text, len(self.text)
        while True:
            pos = self.pos
            while pos < length and text[pos] in _GO_SPACE:
                if text[pos] == "\n":
                    self.line += 1
                pos += 1
            self.pos = pos
            if pos == length:
                return False
            if text[pos] != "#":
                return True
            newline = text.find("\n", pos)
            if newline == -1:
                return False
            # Stop ON the newline so the next round counts it.
            self.pos = newline

    def _statement(self) -> None:
        key, inherited = self._key()
        if " " in key:
            raise self._error("key cannot contain a space")
        if inherited:
            value = self.lookup(key)
            if value is not None:
                self.out[key] = value
            return
        start_line = self.line
        try:
            self.out[key] = self._value()
        except TemplateError as exc:
            raise DotenvError(exc.message, line=start_line) from None

    def _key(self) -> tuple[str, bool]:
        """Read a key up to ``=``, ``:`` or a newline (inherited); leave pos on the value."""
        text = self.text
        if _EXPORT.match(text, self.pos):
            self.pos = self._skip_blanks(self.pos + len("export"))
        start = self.pos
        raw, end, inherited = self._scan_key(start)
        if start == len(text):
            # Only "export" and blanks were left at the end of the file.
            raise DotenvError("zero length string", line=self.line)
        # compose-go skips this count when the raw key held a blank: a known off-by-one.
        if inherited and " " not in raw:
            self.line += 1
        self.pos = self._skip_blanks(end)
        return raw.rstrip(_GO_SPACE_CHARS), inherited

    def _scan_key(self, start: int) -> tuple[str, int, bool]:
        """Return (raw key, offset after its terminator, inherited).

        Running off the end without a terminator yields an empty key whose value is the
        remaining text: compose-go's behaviour for a last line without a newline.
        """
        text = self.text
        for index in range(start, len(text)):
            char = text[index]
            if char in _BLANK:
                continue
            if char in "=:\n":
                return text[start:index], index + 1, char == "\n"
            if not _is_key_char(char):
                raise self._bad_key_char(char, start)
        return "", start, False

    def _bad_key_char(self, char: str, start: int) -> DotenvError:
        # Go decodes a stray byte (a surrogate here) to U+FFFD when it ranges over runes.
        shown = "\ufffd" if "\udc80" <= char <= "\udcff" else char
        first_line = self.text[start:].split("\n", 1)[0]
        return self._error(f"unexpected character {go_quote(shown)} in variable name {go_quote(first_line)}")

    def _skip_blanks(self, pos: int) -> int:
        text, length = self.text, len(self.text)
        while pos < length and text[pos] in _BLANK:
            pos += 1
        return pos

    def _value(self) -> str:
        text, pos = self.text, self.pos
        quote = text[pos] if pos < len(text) else ""
        if quote not in ("'", '"'):
            return self._unquoted_value()
        raw = self._quoted_value(quote)
        if quote == "'":
            return raw
        return self._expand(_expand_escapes(raw))

    def _unquoted_value(self) -> str:
        text, pos = self.text, self.pos
        newline = text.find("\n", pos)
        end = len(text) if newline == -1 else newline
        self.pos = end if newline == -1 else end + 1
        self.line += 1
        # An inline comment needs a blank before it: "a#b" keeps its "#".
        value = text[pos:end].split(" #", 1)[0].rstrip(_GO_SPACE_CHARS)
        return self._expand(value)

    def _quoted_value(self, quote: str) -> str:
        """Read up to the closing ``quote``; ``\\<quote>`` loses its backslash, others keep it."""
        text, start = self.text, self.pos
        chars: list[str] = []
        escaped = False
        for index in range(start + 1, len(text)):
            char = text[index]
            if char == "\n":
                self.line += 1
            if escaped:
                escaped = False
                if char != quote:
                    chars.append("\\")
                chars.append(char)
            elif char == "\\":
                escaped = True
            elif char == quote:
                self.pos = index + 1
                return "".join(chars)
            else:
                chars.append(char)
        # By now the counter has walked every newline to the end of the file, as compose-go's does.
        first_line = text[start:].split("\n", 1)[0]
        raise self._error(f"unterminated quoted value {first_line}")

    def _expand(self, value: str) -> str:
        if "$" not in value:
            return value
        out, lookup = self.out, self.lookup

        def resolve(name: str) -> str | None:
            # compose-go asks the caller's lookup before the keys this file already set.
            found = lookup(name)
            return found if found is not None else out.get(name)

        return substitute(value, resolve, self.on_missing)


def _is_key_char(char: str) -> bool:
    if char.isascii():
        return char.isalnum() or char in _KEY_PUNCTUATION
    # Go's unicode.IsLetter / IsNumber: any L* or N* category.
    return unicodedata.category(char)[0] in "LN"


def _expand_escapes(value: str) -> str:
    """Apply compose-go's double-quote escapes in a single left-to-right pass."""
    if "\\" not in value:
        return value
    return _ESCAPE.sub(_unescape, value)


def _unescape(match: re.Match[str]) -> str:
    sequence = match.group(0)
    simple = _SIMPLE_ESCAPES.get(sequence[1])
    if simple is not None:
        return simple
    if sequence[1] == "0":
        # "\0NNN" is read as Go's "\NNN": exactly three octal digits up to 0o377. Anything
        # else fails Go's unquoting and comes out with the "0" dropped ("\01" -> "\1").
        digits = sequence[2:]
        if len(digits) == 3 and all(d in "01234567" for d in digits) and int(digits, 8) <= 0o377:
            return chr(int(digits, 8))
        return "\\" + digits
    # "\c" is matched by compose-go's pattern but is no Go escape, so it stays as written.
    return sequence
