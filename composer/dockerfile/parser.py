"""The Dockerfile parser: text -> instructions, with BuildKit's rules (dockerfile syntax 1.x).

This is the first of the frontend's two steps, as in BuildKit: it only splits the file into
instructions and each instruction into its words, the way BuildKit's parser does, and keeps the
text raw (no variable expansion, no unquoting: the instructions' own step does that, with the
build arguments in scope). What it handles:

- parser directives (``# syntax=``, ``# escape=``, ``# check=``) before the first other line;
- the escape character (``\\`` or, with ``# escape=`````, a backtick): a line ending with it continues
  on the next; comment lines and empty lines inside a continued instruction are dropped;
- comments (``#`` first on a line), leading whitespace, a byte-order mark, CRLF line ends;
- ``--flag`` words after the instruction's name, up to the first other word (or ``--``);
- each instruction's argument form, as BuildKit's dispatch table has it: a JSON array of strings
  where one is allowed (RUN, CMD, ENTRYPOINT, SHELL, COPY, ADD, VOLUME) and the plain form
  otherwise; ``KEY value`` and ``KEY=value ...`` for ENV and LABEL; ONBUILD's nested instruction;
  HEALTHCHECK's type and command;
- heredocs (``<<EOF``, ``<<-EOF``, quoted delimiters, several on one line) on RUN, COPY and ADD.

``dump`` prints an instruction list as BuildKit's parser tests do, so the parser is checked against
BuildKit's own cases (tests/unit/dockerfile/test_parser.py, ../shared/dockerfile).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from composer.errors import ComposerError

DIRECTIVES = ("syntax", "escape", "check")
_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")  # Go's regexp class BuildKit splits words with
_HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)$")
HEREDOC_INSTRUCTIONS = frozenset({"run", "copy", "add"})


class DockerfileSyntaxError(ComposerError):
    """The Dockerfile cannot be parsed; ``line`` is 1-based (0: the file as a whole)."""

    def __init__(self, message: str, *, line: int = 0, path: str = "Dockerfile") -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")
        self.line = line
        self.path = path
        self.reason = message


@dataclass(frozen=True, slots=True)
class Heredoc:
    name: str  # the delimiter word, unquoted
    content: str  # the body, with its final newline
    expand: bool  # False when the delimiter was quoted: no variable expansion in the body
    chomp: bool  # <<-: leading tabs removed from each line of the body
    file_descriptor: int | None = None  # 2<<EOF


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction as the parser splits it: everything still raw text."""

    command: str  # lower case: "run"
    original: str  # the instruction's text, continuation lines joined
    flags: tuple[str, ...] = ()  # "--from=build", in order
    args: tuple[str, ...] = ()  # the words; for ENV/LABEL (key, value, separator) triples
    json: bool = False  # the arguments were a JSON array (the exec form)
    child: Instruction | None = None  # ONBUILD's instruction
    heredocs: tuple[Heredoc, ...] = ()
    start_line: int = 0
    end_line: int = 0
    comments: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class ParsedDockerfile:
    instructions: tuple[Instruction, ...]
    directives: dict[str, str]  # name -> value, as given
    escape: str
    warnings: tuple[str, ...] = ()


class _NotStringArray(Exception):
    """A JSON array with a non-string element: an error, where other invalid JSON falls back to
    the plain form."""


def _go_space(char: str) -> bool:
    return char.isspace()


def parse(text: str, *, path: str = "Dockerfile", heredocs: bool = True) -> ParsedDockerfile:
    """Parse a whole Dockerfile.

    :raises DockerfileSyntaxError: a directive is repeated or invalid, a JSON array holds a
        non-string, ENV/LABEL lack a value, a heredoc is not closed, or there is no instruction.
    """
    return _Parser(text, path, heredocs).run()


class _Parser:
    def __init__(self, text: str, path: str, heredocs: bool) -> None:
        self.lines = _split_lines(text.removeprefix("\ufeff"))
        self.path = path
        self.heredocs = heredocs
        self.escape = "\\"
        self.directives: dict[str, str] = {}
        self.directives_done = False
        self.position = 0  # the next line to read (0-based)
        self.warnings: list[str] = []

    def error(self, message: str, line: int) -> DockerfileSyntaxError:
        return DockerfileSyntaxError(message, line=line, path=self.path)

    # --- lines -------------------------------------------------------------------------------

    def _directive(self, line: str, number: int) -> None:
        """A parser directive, while they may still come (before any other line)."""
        if self.directives_done:
            return
        match = _DIRECTIVE.match(line)
        if match is None or match.group(1).lower() not in DIRECTIVES:
            self.directives_done = True
            return
        name, value = match.group(1).lower(), match.group(2)
        if name in self.directives:
            raise self.error(f"only one {name} parser directive can be used", number)
        if name == "escape":
            if value not in ("`", "\\"):
                raise self.error(f"invalid escape token '{value}' does not match ` or \\", number)
            self.escape = value
        self.directives[name] = value

    def _read(self, *, strip_left: bool) -> tuple[str, str] | None:
        """The next line (its text without comment, and the raw text), or None at the end."""
        if self.position >= len(self.lines):
            return None
        raw = self.lines[self.position].rstrip("\r\n")
        self.position += 1
        line = raw.lstrip() if strip_left else raw
        self._directive(raw.lstrip(), self.position)
        if _is_comment(raw):
            return "", raw
        return line, raw

    def _continues(self, line: str) -> tuple[str, bool]:
        """The line without its continuation mark, and whether the instruction continues."""
        escape = re.escape(self.escape)
        match = re.search(f"(^|[^{escape}]){escape}[ \\t]*$", line)
        if match is None:
            return line, False
        return line[: match.start()] + match.group(1), True

    def run(self) -> ParsedDockerfile:
        instructions: list[Instruction] = []
        comments: list[str] = []
        while True:
            read = self._read(strip_left=True)
            if read is None:
                break
            line, raw = read
            if _is_comment(raw):
                comment = raw.lstrip()[1:].strip()
                comments = [*comments, comment] if comment else []
            start = self.position
            line, continues = self._continues(line)
            if not continues and line == "":
                continue
            empty_continuation = False
            while continues:
                read = self._read(strip_left=False)
                if read is None:
                    break
                part, part_raw = read
                if _is_comment(part_raw):
                    continue
                if part.strip() == "":
                    empty_continuation = True
                    continue
                part, continues = self._continues(part)
                line += part
            if empty_continuation:
                self.warnings.append(f"{self.path}:{start}: empty continuation line")
            instruction = self._instruction(line, start, tuple(comments))
            instructions.append(instruction)
            comments = []
        if not instructions:
            raise self.error("file with no instructions", 0)
        return ParsedDockerfile(tuple(instructions), dict(self.directives), self.escape, tuple(self.warnings))

    # --- instructions ------------------------------------------------------------------------

    def _instruction(self, line: str, start: int, comments: tuple[str, ...]) -> Instruction:
        try:
            instruction = _node(line, self.escape)
        except _NotStringArray:
            raise self.error("failed to process JSON: not all elements are strings", start) from None
        except ValueError as exc:
            raise self.error(str(exc), start) from None
        heredocs: tuple[Heredoc, ...] = ()
        if self.heredocs and instruction.command in HEREDOC_INSTRUCTIONS and "<<" in line:
            heredocs = self._heredocs(instruction, start)
        end = self.position
        return Instruction(instruction.command, instruction.original, instruction.flags, instruction.args,
                           instruction.json, instruction.child, heredocs, start, end, comments)

    def _heredocs(self, instruction: Instruction, start: int) -> tuple[Heredoc, ...]:
        """The bodies of the heredocs the instruction's words open, read from the following lines
        in order (each ends at a line that is exactly its delimiter)."""
        found: list[Heredoc] = []
        if instruction.json:
            return ()
        for word in _shell_words(instruction.original, self.escape):
            opener = heredoc_word(word.raw)
            if opener is None:
                continue
            name, quoted, chomp, descriptor = opener
            body: list[str] = []
            while True:
                if self.position >= len(self.lines):
                    raise self.error(f"unterminated heredoc {name}", start)
                line = self.lines[self.position].rstrip("\r\n")
                self.position += 1
                check = line.lstrip("\t") if chomp else line
                if check == name:
                    break
                body.append(line.lstrip("\t") if chomp else line)
            content = "".join(f"{item}\n" for item in body)
            found.append(Heredoc(name, content, not quoted, chomp, descriptor))
        return tuple(found)


def _split_lines(text: str) -> list[str]:
    """Lines as BuildKit's scanner yields them: split on \\n, the \\r of a CRLF kept for trimming."""
    if text == "":
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


# --- one instruction: BuildKit's splitCommand and dispatch table -------------------------------


def _node(line: str, escape: str) -> Instruction:
    parts = _WHITESPACE.split(line.strip(), maxsplit=1)
    command = parts[0].lower()
    flags: list[str] = []
    rest = ""
    if len(parts) == 2:
        rest, flags = _flags(parts[1])
    rest = rest.strip()
    args, is_json, child = _arguments(command, rest, escape)
    return Instruction(command, line, tuple(flags), tuple(args), is_json, child)


def _arguments(command: str, rest: str, escape: str) -> tuple[list[str], bool, Instruction | None]:
    if command in ("run", "cmd", "entrypoint", "shell"):
        args, is_json = _maybe_json(rest)
        return args, is_json, None
    if command in ("copy", "add", "volume"):
        try:
            return _json(rest), True, None
        except _NotStringArray:
            raise
        except ValueError:
            return _whitespace_words(rest), False, None
    if command in ("env", "label"):
        return _name_values(command, rest, escape), False, None
    if command == "arg":
        return _words(rest, escape), False, None
    if command in ("expose", "from"):
        return _whitespace_words(rest), False, None
    if command in ("user", "workdir", "stopsignal", "maintainer"):
        return ([rest] if rest else []), False, None
    if command == "onbuild":
        return [], False, (_node(rest, escape) if rest else None)
    if command == "healthcheck":
        return _health(rest)
    return [], False, None  # not an instruction: the instructions' step refuses it, with its name


def _flags(line: str) -> tuple[str, list[str]]:
    """The ``--name[=value]`` words at the start of ``line`` and what follows them (BuildKit's
    extractBuilderFlags: quotes group, a backslash escapes, ``--`` alone ends the flags)."""
    words: list[str] = []
    position = 0
    while True:
        while position < len(line) and _go_space(line[position]):
            position += 1
        if position >= len(line):
            return "", words
        if not line.startswith("--", position):
            return line[position:], words
        word, blank_ok, position = _flag_word(line, position)
        if word == "--":
            return line[position:], words
        if blank_ok or word:
            words.append(word)
        if position >= len(line):
            return "", words


def _flag_word(line: str, position: int) -> tuple[str, bool, int]:
    """One flag word from ``position``: its text (quotes removed, escapes applied), whether it was
    quoted (an empty quoted word counts), and where it ended."""
    word = ""
    blank_ok = False
    quote = ""
    length = len(line)
    while position < length:
        char = line[position]
        if not quote and _go_space(char):
            break
        if quote and char == quote:
            quote = ""
        elif char == "\\":
            if position + 1 < length:
                position += 1
                word += line[position]
            elif quote:
                quote = ""
        elif not quote and char in "'\"":
            quote = char
            blank_ok = True
        else:
            word += char
        position += 1
    return word, blank_ok, position


def _words(rest: str, escape: str) -> list[str]:
    """Words separated by whitespace, quotes and escapes kept in them (BuildKit's parseWords):
    quoting only decides where a word ends. A single quote escapes nothing."""
    words: list[str] = []
    word = ""
    in_word = False
    blank_ok = False
    quote = ""
    position = 0
    length = len(rest)
    while position < length:
        char = rest[position]
        if not in_word:
            if _go_space(char):
                position += 1
                continue
            in_word = True
        if quote:
            if char == quote:
                quote = ""
            elif char == escape and quote != "'":
                if position + 1 == length:
                    quote = ""
                    position += 1
                    continue
                word += char
                position += 1
                char = rest[position]
            word += char
            position += 1
            continue
        if _go_space(char):
            if blank_ok or word:
                words.append(word)
            word, blank_ok, in_word = "", False, False
            position += 1
            continue
        if char in "'\"":
            quote = char
            blank_ok = True
        if char == escape:
            if position + 1 == length:
                position += 1
                continue
            word += char
            position += 1
            char = rest[position]
        word += char
        position += 1
    if in_word and (blank_ok or word):
        words.append(word)
    return words


def _name_values(command: str, rest: str, escape: str) -> list[str]:
    """ENV and LABEL: ``KEY value`` (the old form: the rest of the line is the value) or
    ``KEY=value ...``; each pair as (key, value, separator), the separator "" or "="."""
    words = _words(rest, escape)
    name = command.upper()
    if not words:
        raise ValueError(f"{name} must have two arguments")
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise ValueError(f"{name} must have two arguments")
        return [parts[0], parts[1], ""]
    result: list[str] = []
    for word in words:
        if "=" not in word:
            raise ValueError(f"Syntax error - can't find = in {_go_quote(word)}. Must be of the form: name=value")
        key, _, value = word.partition("=")
        result += [key, value, "="]
    return result


def _whitespace_words(rest: str) -> list[str]:
    return _WHITESPACE.split(rest) if rest else []


def _json(rest: str) -> list[str]:
    """A JSON array of strings, as Go's decoder reads the first value (text after it is ignored).

    :raises _NotStringArray: an element is not a string.
    :raises ValueError: ``rest`` is not a JSON array.
    """
    if not rest.startswith("["):
        raise ValueError(f"Error parsing {rest!r} as a JSON array")

    def refuse(constant: str) -> object:
        raise ValueError(f"invalid character {constant[0]!r}")

    value, _ = json.JSONDecoder(parse_constant=refuse).raw_decode(rest)
    if not isinstance(value, list):
        raise ValueError("not a JSON array")
    if not all(isinstance(item, str) for item in value):
        raise _NotStringArray
    return [str(item) for item in value]


def _maybe_json(rest: str) -> tuple[list[str], bool]:
    """The exec form when ``rest`` is a JSON array of strings, else the shell form (one word)."""
    if rest == "":
        return [], False
    try:
        return _json(rest), True
    except _NotStringArray:
        raise
    except ValueError:
        return [rest], False


def _health(rest: str) -> tuple[list[str], bool, None]:
    """HEALTHCHECK: its type (CMD, NONE...) and, for CMD, the command in either form."""
    end = 0
    while end < len(rest) and not _go_space(rest[end]):
        end += 1
    if end == 0:
        return [], False, None
    start = end
    while start < len(rest) and _go_space(rest[start]):
        start += 1
    command, is_json = _maybe_json(rest[start:])
    return [rest[:end], *command], is_json, None


# --- heredoc words ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ShellWord:
    raw: str


def _shell_words(line: str, escape: str) -> list[_ShellWord]:
    """The instruction's words as a shell splits them (quotes kept), to find ``<<NAME`` openers."""
    return [_ShellWord(word) for word in _words(line, escape)]


def heredoc_word(raw: str) -> tuple[str, bool, bool, int | None] | None:
    """A word that opens a heredoc (``<<EOF``, ``<<-EOF``, ``2<<EOF``): its delimiter without quotes,
    whether any part of it was quoted (the body is then not expanded: ``<<"EOF"``, ``<<E'O'F``), whether
    leading tabs go (``<<-``) and the file descriptor; None for any other word. As BuildKit's
    ParseHeredoc: the delimiter is one shell word, quotes removed, a backslash taking the next
    character (which does not count as quoting)."""
    match = _HEREDOC.match(raw)
    if match is None or not match.group(3):
        return None
    descriptor, chomp, rest = match.groups()
    name: list[str] = []
    quote, quoted, position = "", False, 0
    while position < len(rest):
        char = rest[position]
        position += 1
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                name.append(char)
        elif quote == '"':
            if char == '"':
                quote = ""
            elif char == "\\" and position < len(rest) and rest[position] in '"\\$`':
                name.append(rest[position])
                position += 1
            else:
                name.append(char)
        elif char in "'\"":
            quote, quoted = char, True
        elif char == "\\":
            if position < len(rest):
                name.append(rest[position])
                position += 1
        elif char.isspace():
            return None  # not one word
        else:
            name.append(char)
    if quote or not name:
        return None
    return "".join(name), quoted, chomp == "-", int(descriptor) if descriptor else None


# --- BuildKit's dump, for its parser test files ------------------------------------------------


def _go_quote(text: str) -> str:
    """Go's strconv.Quote: a double-quoted string with Go's escapes."""
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               "\\": "\\\\", '"': '\\"'}
    out = ['"']
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif 0xDC80 <= ord(char) <= 0xDCFF:  # an undecodable byte (surrogateescape)
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def dump_instruction(instruction: Instruction) -> str:
    """One instruction as BuildKit's ``Node.Dump`` prints it: ``(copy ["--from=a"] "x" "/y")``."""
    text = instruction.command
    if instruction.flags:
        text += " [" + " ".join(_go_quote(flag) for flag in instruction.flags) + "]"
    if instruction.child is not None:
        text += " " + dump_instruction(instruction.child)
    for arg in instruction.args:
        text += " " + _go_quote(arg)
    for heredoc in instruction.heredocs:
        text += " " + _go_quote(heredoc.content)
    return f"({text})"


def dump(instructions: Sequence[Instruction]) -> str:
    """A whole file as BuildKit's parser tests compare it (without the final newline)."""
    return "\n".join(dump_instruction(instruction) for instruction in instructions)
