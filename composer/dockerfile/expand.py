"""Variable expansion in Dockerfile words, with the rules of BuildKit's shell lexer.

Instructions other than RUN, CMD and ENTRYPOINT expand ``$name`` and ``${name...}`` in their
arguments with the build arguments and environment in scope, and remove quotes and escapes, as a
shell would, but without running one. The forms:

- ``$name``, ``${name}``; a name is letters, digits and ``_``, or digits alone (``$1``), or one
  special parameter (``$@ $* $# $? $- $$ $! $0``), which is never set here;
- ``${name:-word}`` / ``${name-word}``: the word when unset (or empty, with ``:``);
- ``${name:+word}`` / ``${name+word}``: the word when set (and not empty, with ``:``);
- ``${name:?message}`` / ``${name?message}``: an error when unset (or empty);
- ``${name#pattern}``, ``${name##pattern}``: the value without its shortest (longest) matching
  prefix; ``${name%pattern}``, ``${name%%pattern}``: suffix; ``*`` and ``?`` are wildcards;
- ``${name/pattern/replacement}``, ``${name//pattern/replacement}``: the first (every) match replaced.

Outside quotes the escape character takes the next character literally; in single quotes
nothing is special; in double quotes ``$`` expands and the escape character escapes only
``"``, ``$`` and itself. ``expand_words`` also splits the result into words on whitespace that
is neither quoted nor escaped, after expansion (an expanded value may split).

``quotes=False`` leaves quotes as they are (BuildKit's ``SkipProcessQuotes``): the body of a COPY/ADD
heredoc is a file's text, not a Dockerfile word, so only its variables expand (``it's`` stays).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from composer.errors import ComposerError

_SPECIAL = frozenset("@*#?-$!0")


class ExpansionError(ComposerError):
    """A word cannot be expanded: an unterminated quote or ``${``, a bad substitution, ``${v?}``."""


@dataclass
class _Words:
    """The words of an expansion as they form (only whitespace outside quotes separates them)."""

    current: str = ""
    in_word: bool = False
    done: list[str] = field(default_factory=list)

    def char(self, char: str) -> None:
        if char.isspace():
            if self.in_word and self.current:
                self.done.append(self.current)
                self.current, self.in_word = "", False
            return
        self.raw(char)

    def raw(self, text: str) -> None:
        self.current += text
        self.in_word = True

    def text(self, text: str) -> None:
        for char in text:
            self.char(char)

    def finish(self) -> list[str]:
        if self.current:
            self.done.append(self.current)
            self.current, self.in_word = "", False
        return self.done


@dataclass
class Expansion:
    """The result of expanding one word."""

    text: str
    words: list[str]
    used: set[str]  # the variables that were set and read
    unset: set[str]  # the variables read while unset


class _Lexer:
    def __init__(self, source: str, environment: Mapping[str, str], escape: str, *, quotes: bool = True) -> None:
        self.source = source
        self.quotes = quotes
        self.position = 0
        self.environment = environment
        self.escape = escape
        self.raw_escapes = False
        self.used: set[str] = set()
        self.unset: set[str] = set()

    # --- the scanner ---------------------------------------------------------------------------

    def peek(self) -> str:
        return self.source[self.position] if self.position < len(self.source) else ""

    def next(self) -> str:
        char = self.peek()
        if char:
            self.position += 1
        return char

    def fail(self, message: str) -> ExpansionError:
        return ExpansionError(f"failed to process {self.source!r}: {message}")

    # --- words ---------------------------------------------------------------------------------

    def until(self, stop: str, *, raw_escapes: bool) -> tuple[str, list[str]]:
        """The text up to ``stop`` (consumed; "" means the end), expanded, and its words."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._until(stop)
        finally:
            self.raw_escapes = saved

    def _until(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while self.peek():
            char = self.peek()
            if stop and char == stop:
                self.next()
                return "".join(result), words.finish()
            if char == "$":
                value = self.dollar()
                result.append(value)
                words.text(value)  # an expanded value splits on its whitespace
                continue
            if char in "'\"" and self.quotes:
                value = self.single_quoted() if char == "'" else self.double_quoted()
                result.append(value)
                words.raw(value)
                continue
            self.next()
            if char == self.escape:
                if self.raw_escapes:
                    words.raw(char)
                    result.append(char)
                char = self.next()
                if not char:  # an escape at the very end is dropped
                    break
                words.raw(char)
            else:
                words.char(char)
            result.append(char)
        if stop:
            raise self.fail(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.finish()

    def single_quoted(self) -> str:
        self.next()
        result: list[str] = []
        while True:
            char = self.next()
            if not char:
                raise self.fail("unexpected end of statement while looking for matching single-quote")
            if char == "'":
                return "".join(result)
            result.append(char)

    def double_quoted(self) -> str:
        self.next()
        result: list[str] = []
        while True:
            char = self.peek()
            if not char:
                raise self.fail("unexpected end of statement while looking for matching double-quote")
            if char == '"':
                self.next()
                return "".join(result)
            if char == "$":
                result.append(self.dollar())
                continue
            self.next()
            if char == self.escape:
                if self.raw_escapes:
                    result.append(char)
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", self.escape):
                    char = self.next()
            result.append(char)

    # --- $ -------------------------------------------------------------------------------------

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.environment:
            self.used.add(name)
            return self.environment[name], True
        self.unset.add(name)
        return "", False

    def name(self) -> str:
        """A variable's name at the position: letters, digits and _, or digits, or one special."""
        first = self.peek()
        if first.isdigit():
            digits = ""
            while self.peek().isdigit():
                digits += self.next()
            return digits
        if first and first in _SPECIAL:
            return self.next()
        name = ""
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            name += self.next()
        return name

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.lookup(name)[0] if name else "$"
        self.next()
        if not self.peek():
            raise self.fail("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise self.fail("syntax error: bad substitution")
        name = self.name()
        operator = self.next()
        if operator == "":  # BuildKit reports an "unsupported modifier" here; the brace is what is missing
            raise self.fail("syntax error: missing '}'")
        if operator == "}":
            return self.lookup(name)[0]
        if operator == "/":
            return self.replace(name)
        null_is_unset = operator == ":"
        if null_is_unset:
            operator = self.next()
        if operator not in ("+", "-", "?", "#", "%"):
            shown = (":" if null_is_unset else "") + operator
            raise self.fail(f"unsupported modifier ({shown}) in substitution")
        try:
            word, _ = self.until("}", raw_escapes=operator in "#%")
        except ExpansionError:
            if not self.peek():
                raise self.fail("syntax error: missing '}'") from None
            raise
        value, is_set = self.lookup(name)
        return self.modified(name, operator, word, value, is_set, null_is_unset)

    def modified(self, name: str, operator: str, word: str, value: str, is_set: bool, null_is_unset: bool) -> str:
        """``${name<operator>word}`` once the word is read and the variable looked up."""
        empty = not is_set or (null_is_unset and value == "")
        if operator == "-":
            return word if empty else value
        if operator == "+":
            return "" if empty else word
        if operator == "?":
            if not is_set:
                raise self.fail(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise self.fail(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        greedy = word.startswith(operator)
        if greedy:
            word = word[1:]
        if operator == "#":
            return _trim_prefix(word, value, greedy, self)
        return _trim_suffix(word, value, greedy, self)

    def replace(self, name: str) -> str:
        every = self.peek() == "/"
        if every:
            self.next()
        try:
            pattern, _ = self.until("/", raw_escapes=True)
        except ExpansionError:
            if not self.peek():
                raise self.fail("syntax error: missing '/' in ${}") from None
            raise
        try:
            replacement, _ = self.until("}", raw_escapes=True)
        except ExpansionError:
            if not self.peek():
                raise self.fail("syntax error: missing '}'") from None
            raise
        value, _ = self.lookup(name)
        regex = _pattern(pattern, greedy=True, anchored=False, lexer=self)
        return regex.sub(lambda _: replacement, value, count=0 if every else 1)


def _pattern(pattern: str, *, greedy: bool, anchored: bool, lexer: _Lexer) -> re.Pattern[str]:
    """A shell wildcard pattern (``*``, ``?``, escapes; no brackets) as a regular expression."""
    out = "^" if anchored else ""
    position = 0
    while position < len(pattern):
        char = pattern[position]
        position += 1
        if char == "*":
            out += ".*" if greedy else ".*?"
        elif char == "?":
            out += "."
        elif char == "\\":
            following = pattern[position] if position < len(pattern) else ""
            if following in ("}", "/"):  # escaped only to end the ${...}: not part of the pattern
                continue
            if following not in ("*", "?", "\\"):
                raise lexer.fail(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{following}'")
            out += re.escape(following)
            position += 1
        else:
            out += re.escape(char)
    return re.compile(out, re.DOTALL)


def _reverse_pattern(pattern: str) -> str:
    """The pattern read backwards, each escape kept before the character it escapes."""
    units: list[str] = []
    position = 0
    while position < len(pattern):
        if pattern[position] == "\\" and position + 1 < len(pattern):
            units.append(pattern[position : position + 2])
            position += 2
        else:
            units.append(pattern[position])
            position += 1
    return "".join(reversed(units))


def _trim_prefix(pattern: str, value: str, greedy: bool, lexer: _Lexer) -> str:
    match = _pattern(pattern, greedy=greedy, anchored=True, lexer=lexer).search(value)
    return value[match.end() :] if match else value


def _trim_suffix(pattern: str, value: str, greedy: bool, lexer: _Lexer) -> str:
    # The shortest match at the end is the shortest at the start of the reversed value.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy, lexer)[::-1]


def expand(word: str, environment: Mapping[str, str], *, escape: str = "\\", quotes: bool = True) -> Expansion:
    """``word`` with its variables expanded and its quotes (unless ``quotes`` is False) and escapes removed.

    :raises ExpansionError: an unterminated quote or substitution, a bad one, or ``${v?}``.
    """
    lexer = _Lexer(word, environment, escape, quotes=quotes)
    text, words = lexer.until("", raw_escapes=False)
    return Expansion(text, words, lexer.used, lexer.unset)


def expand_word(word: str, environment: Mapping[str, str], *, escape: str = "\\", quotes: bool = True) -> str:
    return expand(word, environment, escape=escape, quotes=quotes).text


def expand_words(word: str, environment: Mapping[str, str], *, escape: str = "\\") -> list[str]:
    return expand(word, environment, escape=escape).words
