"""Tests for composer.spec.dotenv.

Expected values were observed with Docker Compose v2.40.3 (compose-go v2.9.1) reading the same
text through ``env_file:``; the binary itself is not needed to run them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from composer.spec.dotenv import DotenvError, parse_dotenv, read_dotenv_file

# What the caller's lookup knows: OS and X are set, EMPTY is set but empty.
ENV = {"OS": "osv", "X": "xos", "EMPTY": ""}


def lookup(name: str) -> str | None:
    return ENV.get(name)


PARSED = [
    # basics, spacing, yaml-ish separator
    ("A=1\nB=2", {"A": "1", "B": "2"}),
    ("A = spaced  \n B : yaml\nC:d", {"A": "spaced", "B": "yaml", "C": "d"}),
    ("  A=1  \n\tB=2", {"A": "1", "B": "2"}),
    ("A=  x  y  ", {"A": "x  y"}),
    ("A:=1", {"A": "=1"}),
    ("A==1", {"A": "=1"}),
    ("A=1=2", {"A": "1=2"}),
    ("A=1\nA=2", {"A": "2"}),
    ("A-B=1\nC.D=2\nE[0]=3", {"A-B": "1", "C.D": "2", "E[0]": "3"}),
    ("Aé=1\nΩ=2\n\u0661=3", {"Aé": "1", "Ω": "2", "\u0661": "3"}),  # U+0661 ARABIC-INDIC ONE
    ("1A=x\nB=2", {"1A": "x", "B": "2"}),  # digit-led keys are kept here
    ("A\tB=1", {"A\tB": "1"}),  # only a real space is refused inside a key
    ("=1", {"": "1"}),
    (":x", {"": "x"}),
    # export prefix
    ("export A=1\nexport  B=2\nexportC=3", {"A": "1", "B": "2", "exportC": "3"}),
    ("export\tA=1", {"A": "1"}),
    ("export\nA=1", {"A": "1"}),
    ("export=1", {"export": "1"}),
    ("exportA=1\nexport_B=2", {"exportA": "1", "export_B": "2"}),
    ("export  \n", {}),
    ("export  :x", {"": "x"}),
    ("A=1\n  export   B=2\n", {"A": "1", "B": "2"}),
    # comments
    ("# c\nA=1 # inline\nB=x#y\nC=x #y\nD=x\t#y", {"A": "1", "B": "x#y", "C": "x", "D": "x\t#y"}),
    ("   # indented comment\nA=1", {"A": "1"}),
    ("#!x\n#\nA=1#x\n", {"A": "1#x"}),
    ("A=#x", {"A": "#x"}),
    ("A= #c", {"A": "#c"}),  # the blank before "#" was already skipped
    ("A=a # b # c", {"A": "a"}),
    ('A="x" # comment\nB=2', {"A": "x", "B": "2"}),
    ('A="q"#c', {"A": "q"}),
    ("A=1 ; B=2", {"A": "1 ; B=2"}),
    # empty values
    ("A=\nB=''\nC=\"\"", {"A": "", "B": "", "C": ""}),
    # KEY alone: inherited from lookup, omitted when unset; "" counts as set
    ("OS\nNOTSET\nA=1", {"OS": "osv", "A": "1"}),
    ("EMPTY\nA=1", {"EMPTY": "", "A": "1"}),
    ("export OS\n", {"OS": "osv"}),
    ("A=x\nA\n", {"A": "x"}),  # an unset inherited key does not erase the earlier value
    # ... but a bare word on the last line with no newline is the value of key ""
    ("A=1\nB", {"A": "1", "": "B"}),
    ("A=1\nOS", {"A": "1", "": "OS"}),
    ("A=x\nA", {"A": "x", "": "A"}),
    ("export", {"": "export"}),
    ("export A", {"": "A"}),
    ("A=x\\\ny", {"A": "x\\", "": "y"}),
    # single quotes are literal, except that \' is a quote
    ("A='lit $X \\n'", {"A": "lit $X \\n"}),
    ("A='it\\'s'", {"A": "it's"}),
    ("A='a\\b'", {"A": "a\\b"}),
    ("A='\\\"'", {"A": '\\"'}),
    ("A=' x '", {"A": " x "}),
    ("A='${'", {"A": "${"}),
    ("A='$$'", {"A": "$$"}),
    ("A='multi\nline'\nB=2", {"A": "multi\nline", "B": "2"}),
    # double quotes: escapes, then interpolation
    ('A="a\\nb\\t\\"q\\" \\\\ \\$X $X"', {"A": 'a\nb\t"q" \\ $X xos'}),
    ('A="a\\rb\\fc\\vd\\be"', {"A": "a\rb\fc\vd\be"}),
    ('A="\\a\\b"', {"A": "\a\b"}),
    ('A="\\z\\x\\c"', {"A": "\\z\\x\\c"}),
    ('A="\\u0041"', {"A": "\\u0041"}),
    ('A="\\0101\\a\\x41"', {"A": "A\a\\x41"}),
    ('A="\\0\\01\\012\\0123\\0999\\0400"', {"A": "\\\\1\\12S\\999\\400"}),
    ('A="\\0089\\0777\\01234"', {"A": "\\089\\777S4"}),
    ('A="\\0377"', {"A": "\xff"}),
    ('A="\\\'"', {"A": "\\'"}),
    ('A="x\\\\"', {"A": "x\\"}),
    ('A="$$X \\$X"', {"A": "$X $X"}),
    ('A="\\$\\$X"', {"A": "$$X"}),
    ('A=" x "', {"A": " x "}),
    ('A="multi\nline"\nB=2', {"A": "multi\nline", "B": "2"}),
    ('A="a\\\nb"', {"A": "a\\\nb"}),
    ('A="é\\t"', {"A": "é\t"}),
    ('A="${U:-d e}"', {"A": "d e"}),
    # backticks are not quotes; a stray quote inside an unquoted value is kept
    ("A=`bq`", {"A": "`bq`"}),
    ('A=unterminated"', {"A": 'unterminated"'}),
    # text after a closing quote is parsed as a new statement
    ("A='x' trailing\nB=2", {"A": "x", "B": "2"}),
    ("A='x' OS\nB=2", {"A": "x", "OS": "osv", "B": "2"}),
    ("A='x'OS=3\nB=2", {"A": "x", "OS": "3", "B": "2"}),
    ('A="q" x\n', {"A": "q"}),
    # interpolation of unquoted values
    ("A=${U:-def}\nB=${OS:-no}", {"A": "def", "B": "osv"}),
    ("A=$$X", {"A": "$X"}),
    ("A=\\$X", {"A": "\\xos"}),  # no escapes outside double quotes
    ("A=$NOPE", {"A": ""}),
    ('A=${U-"q"}', {"A": '"q"'}),
    ("A=${U:-'q'}", {"A": "'q'"}),
    ("A=${U:-a b} #c", {"A": "a b"}),
    # earlier keys are visible, but the caller's lookup is asked first
    ("A=x\nB=${A}\nX=file\nC=$X", {"A": "x", "B": "x", "X": "file", "C": "xos"}),
    ("A=1\nB=$A\nA=3\nC=$A", {"A": "3", "B": "1", "C": "3"}),
    ("A=x\nB=${A:-$OS}\nOS=file\nC=${OS}", {"A": "x", "B": "x", "OS": "file", "C": "osv"}),
    # whitespace flavours
    ("A=1 \r\nB=2\r\n", {"A": "1", "B": "2"}),
    ("A\r\nB=2", {"B": "2"}),
    ("A=\xa0x\xa0", {"A": "x"}),
    ("A=x\u2003", {"A": "x"}),
    ("A=x\x1c", {"A": "x\x1c"}),  # not a Go space
    ("\u2003A=1", {"A": "1"}),
    ("A=\x85x", {"A": "x"}),
    ("\x85A=1", {"A": "1"}),
    ("A\x85=1", {"A": "1"}),
    ("A\xa0B=1", {"A\xa0B": "1"}),
    ("A\x0bB=1", {"A\x0bB": "1"}),
    ("A=\x00", {"A": "\x00"}),
    ("\ufeffA=1", {"A": "1"}),
    ("", {}),
    ("\n\n  \n# only comments", {}),
]


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_parse(text: str, expected: dict[str, str]) -> None:
    assert parse_dotenv(text, lookup) == expected


def test_keys_keep_file_order() -> None:
    assert list(parse_dotenv("Z=1\nA=2\nM=3\nA=4", lookup)) == ["Z", "A", "M"]


def test_lookup_is_consulted_before_earlier_keys() -> None:
    asked: list[str] = []

    def spy(name: str) -> str | None:
        asked.append(name)
        return "from-lookup" if name == "A" else None

    result = parse_dotenv("A=file\nB=$A\nC=$B", spy)
    # A's own line never asks the lookup: a file value is not overridden.
    assert result == {"A": "file", "B": "from-lookup", "C": "from-lookup"}
    assert asked == ["A", "B"]


def test_on_missing_reports_unset_references() -> None:
    seen: list[str] = []
    parse_dotenv("A=$NOPE\nB='$QUIET'\nC=\"${LOUD}\"\nD=${SOFT:-x}\nE=$OS", lookup, seen.append)
    assert seen == ["NOPE", "LOUD"]


# (text, compose-go's message, line)
ERRORS = [
    ("A@=1", 'line 1: unexpected character "@" in variable name "A@=1"', 1),
    ("A B=1", "line 1: key cannot contain a space", 1),
    ("A\\=1", 'line 1: unexpected character "\\\\" in variable name "A\\\\=1"', 1),
    ('"A"=1', 'line 1: unexpected character "\\"" in variable name "\\"A\\"=1"', 1),
    ('A="x""y"', 'line 1: unexpected character "\\"" in variable name "\\"y\\""', 1),
    ("A='q'\"r\"", 'line 1: unexpected character "\\"" in variable name "\\"r\\""', 1),
    ('A="x" "', 'line 1: unexpected character "\\"" in variable name "\\""', 1),
    ("A\x00=1", 'line 1: unexpected character "\\x00" in variable name "A\\x00=1"', 1),
    ("A\u3000=1\nB=2", 'line 1: unexpected character "\\u3000" in variable name "A\\u3000=1"', 1),
    ("A=1\nB=2\nC@", 'line 3: unexpected character "@" in variable name "C@"', 3),
    ("\n\n# c\n\nB@", 'line 5: unexpected character "@" in variable name "B@"', 5),
    ('A="x\ny"\nB@', 'line 3: unexpected character "@" in variable name "B@"', 3),
    ("A='\n\n'\nB@", 'line 4: unexpected character "@" in variable name "B@"', 4),
    ('A="x"\nB@', 'line 2: unexpected character "@" in variable name "B@"', 2),
    ('A="x" \n\nB@', 'line 3: unexpected character "@" in variable name "B@"', 3),
    ('A="x"B@', 'line 1: unexpected character "@" in variable name "B@"', 1),
    ("A\nB@", 'line 2: unexpected character "@" in variable name "B@"', 2),
    # compose-go's counter does not advance after an inherited key with a trailing blank
    ("A \nB@", 'line 1: unexpected character "@" in variable name "B@"', 1),
    ("A B\nC@", "line 1: key cannot contain a space", 1),
    # an unterminated quote reports the line where the file ends
    ('A="open', 'line 1: unterminated quoted value "open', 1),
    ('A="open\nB=1', 'line 2: unterminated quoted value "open', 2),
    ('A=1\n\nB="x\nC=1\nD=2', 'line 5: unterminated quoted value "x', 5),
    ("A='x", "line 1: unterminated quoted value 'x", 1),
    ('A="x\\"', 'line 1: unterminated quoted value "x\\"', 1),
    # "export" with nothing after it at the very end
    ("export ", "zero length string", 1),
    ("A=1\nexport ", "zero length string", 2),
    # template errors carry compose-go's template message, without a line prefix
    ("A=${", 'Invalid template: "${"', 1),
    ('A="${"', 'Invalid template: "${"', 1),
    ("A=x\nB=x ${U:-${}}", 'Invalid template: "${}"', 2),
    ('A="${U:-a\nb}"', 'Invalid template: "${U:-a\\nb}"', 1),
    ("A=${U:?msg}", "required variable U is missing a value: msg", 1),
    ("A=1\n\nB=${EMPTY:?}", "required variable EMPTY is missing a value", 3),
]


@pytest.mark.parametrize(("text", "message", "line"), ERRORS)
def test_parse_errors(text: str, message: str, line: int) -> None:
    with pytest.raises(DotenvError) as info:
        parse_dotenv(text, lookup)
    assert info.value.message == message
    assert str(info.value) == message
    assert info.value.line == line
    assert info.value.path is None


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


FILES = [
    (b"A=1\nB=${OS}\n", {"A": "1", "B": "osv"}),
    (b"\xef\xbb\xbfA=1", {"A": "1"}),
    (b"A=1\r\nB='x'\r\n", {"A": "1", "B": "x"}),
    (b"A=caf\xc3\xa9", {"A": "café"}),
    # Go keeps raw bytes; compose's output shows them as U+FFFD
    (b"A=\xff\n", {"A": "\ufffd"}),
    (b'A="\xff\n"', {"A": "\ufffd\n"}),
    (b"A=\xc3\n", {"A": "\ufffd"}),
]


@pytest.mark.parametrize(("data", "expected"), FILES)
def test_read_file(tmp_path: Path, data: bytes, expected: dict[str, str]) -> None:
    assert read_dotenv_file(write(tmp_path / ".env", data), lookup) == expected


def test_read_file_error_names_the_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "vars.env", b"A=1\nB@\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DotenvError) as info:
        read_dotenv_file("vars.env", lookup)
    absolute = os.path.join(str(tmp_path), "vars.env")
    assert info.value.message == (
        f'failed to read {absolute}: line 2: unexpected character "@" in variable name "B@"'
    )
    assert info.value.line == 2
    assert info.value.path == absolute


def test_read_file_template_error(tmp_path: Path) -> None:
    path = write(tmp_path / ".env", b"A=1\nB=${U:?set it}\n")
    with pytest.raises(DotenvError) as info:
        read_dotenv_file(path, lookup)
    assert info.value.message == f"failed to read {path}: required variable U is missing a value: set it"
    assert info.value.line == 2


def test_read_file_shows_undecodable_key_bytes_like_go(tmp_path: Path) -> None:
    path = write(tmp_path / ".env", b"\xffA=1")
    with pytest.raises(DotenvError) as info:
        read_dotenv_file(path, lookup)
    assert info.value.message == (
        f'failed to read {path}: line 1: unexpected character "\ufffd" in variable name "\\xffA=1"'
    )


def test_read_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.env")
    with pytest.raises(DotenvError) as info:
        read_dotenv_file(path, lookup)
    assert info.value.message == f"Couldn't find env file: {path}"
    assert info.value.line is None
    assert info.value.path == path


def test_read_directory(tmp_path: Path) -> None:
    with pytest.raises(DotenvError) as info:
        read_dotenv_file(str(tmp_path), lookup)
    assert info.value.message == f"{tmp_path} is a directory"
    assert info.value.line is None


def test_read_file_passes_on_missing(tmp_path: Path) -> None:
    seen: list[str] = []
    read_dotenv_file(write(tmp_path / ".env", b"A=$NOPE\n"), lookup, seen.append)
    assert seen == ["NOPE"]
