"""Tests for composer.spec.template.

Every expected value below was observed with Docker Compose v2.40.3 (compose-go v2.9.1)
running ``config`` on the same template; the binary itself is not needed to run them.
"""

from __future__ import annotations

import pytest

from composer.spec.template import (
    InvalidTemplateError,
    MissingRequiredError,
    TemplateError,
    go_quote,
    substitute,
)

# X is set, E is set but empty, U (and anything else) is unset.
ENV = {"X": "xv", "E": "", "B": "bv", "D": "a$b"}


def lookup(name: str) -> str | None:
    return ENV.get(name)


SUBSTITUTIONS = [
    # plain text and escapes
    ("no dollar", "no dollar"),
    ("a$$b", "a$b"),
    ("$$X", "$X"),
    ("$$$X", "$xv"),
    ("$$$$X", "$$X"),
    # a "$" not followed by a name or "{" stays literal
    ("$ x", "$ x"),
    ("x$", "x$"),
    ("$1", "$1"),
    ("$\n", "$\n"),
    ("$İ", "$İ"),
    ("{$X}", "{xv}"),
    # named and braced references
    ("$X", "xv"),
    ("${X}", "xv"),
    ("$D", "a$b"),  # values are not re-interpolated
    ("$X$B", "xvbv"),
    ("$X-b", "xv-b"),
    ("$Xy", ""),
    ("${X}y", "xvy"),
    ("$Xü", "xvü"),
    ("$_x", ""),
    ("${x}", ""),  # names are case-sensitive
    ("$U", ""),
    ("${U}", ""),
    ("a${X}b${B}c", "axvbbvc"),
    ("a\tb $X\r\n", "a\tb xv\r\n"),
    # Go's case-insensitive [a-z] also accepts the long s and the Kelvin sign
    ("$\u017f", ""),
    ("${\u017f}", ""),
    ("$\u212a", ""),
    # defaults: ":-" on unset or empty, "-" on unset only
    ("${X:-d}", "xv"),
    ("${E:-d}", "d"),
    ("${U:-d}", "d"),
    ("${X-d}", "xv"),
    ("${E-d}", ""),
    ("${U-d}", "d"),
    ("${U:-}", ""),
    ("${U-}", ""),
    ("${X:-}", "xv"),
    ("${X-}", "xv"),
    ("${U:-a:-b}", "a:-b"),
    ("${U-a:-b}", "a:-b"),
    ("${U:-a-b}", "a-b"),
    ("${X:-a:-b}", "xv"),
    ("${U:-$}", "$"),
    ("${U:-a$}", "a$"),
    ("${U:-$$}", "$"),
    ("${U:-$ }", "$ "),
    ("${U:-x$1}", "x$1"),
    ("${X:-$}", "xv"),
    ("${U:-\r}", "\r"),
    # replacements: ":+" when set and non-empty, "+" when set; "" otherwise
    ("${X:+r}", "r"),
    ("${U:+r}", ""),
    ("${E:+r}", ""),
    ("${E+r}", "r"),
    ("${U+r}", ""),
    ("${U:+}", ""),
    ("${X:+${B}}", "bv"),
    # "?" only fails on unset
    ("${E?boom}", ""),
    ("${X?a}b}", "xvb}"),
    ("${X:?a}b}", "xvb}"),
    # nesting
    ("${A:-${B:-x}}", "bv"),
    ("${A:-${U:-x}}", "x"),
    ("${A:-pre${B}post}", "prebvpost"),
    ("${A:-pre${B}post}tail", "prebvposttail"),
    ("${U:-${U:-${U:-deep}}}", "deep"),
    ("${U:-$B}", "bv"),
    ("${U:-$U}", ""),
    ("${X:-a}${B:-b}", "xvbv"),
    ("${U:-a}${U:-b}", "ab"),
    ("${X:-a} and ${B?err}", "xv and bv"),
    ("${U:-a}\n${U:-b}", "a\nb"),
    # braces: greedy to the last "}" of the line, cut at the first balanced one
    ("${U:-{x}}", "{x}"),
    ("${U:-{x}}}", "{x}}"),
    ("${U:-a}b}", "ab}"),
    ("${U:-a}}", "a}"),
    ("${U:-a{b}c}", "a{b}c"),
    ("${U:-{}x}", "{}x"),
    ("${U:-a}}${U:-b}", "a}b"),
    ("${U:-a}\n}", "a\n}"),
]


@pytest.mark.parametrize(("template", "expected"), SUBSTITUTIONS)
def test_substitute(template: str, expected: str) -> None:
    assert substitute(template, lookup) == expected


MISSING = [
    ("$U", ["U"]),
    ("${U}", ["U"]),
    ("$Xy ${U}", ["Xy", "U"]),
    ("${U:-$U}", ["U"]),
    ("${U:-x} ${U-x} ${U:+x} ${U+x}", []),  # operators never warn
    ("${X}", []),
    ("${E}", []),  # empty is set
]


@pytest.mark.parametrize(("template", "names"), MISSING)
def test_on_missing_reports_unset_plain_references(template: str, names: list[str]) -> None:
    seen: list[str] = []
    substitute(template, lookup, seen.append)
    assert seen == names


def test_string_without_dollar_is_returned_untouched() -> None:
    text = "nothing to see"

    def refuse(name: str) -> str | None:
        raise AssertionError(f"lookup called for {name}")

    assert substitute(text, refuse) is text


def test_lookup_sees_names_only_not_operators() -> None:
    asked: list[str] = []

    def spy(name: str) -> str | None:
        asked.append(name)
        return None

    substitute("${A:-x}$C${D:+e}", spy)
    assert asked == ["A", "C", "D"]


# (template, the template compose-go names in its message)
INVALID = [
    ("${}", "${}"),
    ("${", "${"),
    ("${1}", "${1}"),
    ("${X", "${X"),
    ("${X }", "${X }"),
    ("${ X}", "${ X}"),
    ("${X:x}", "${X:x}"),
    ("${X:}", "${X:}"),
    ("${X#y}", "${X#y}"),
    ("${X/a/b}", "${X/a/b}"),
    ("${X:1}", "${X:1}"),
    ("${Xü}", "${Xü}"),
    ("${é}", "${é}"),
    ("pre ${ post", "pre ${ post"),
    ("${U:-a}${", "${U:-a}${"),
    ("${\n}", "${\n}"),
    # "." does not cross a newline, so the braced form cannot span lines
    ("${U:-a\nb}", "${U:-a\nb}"),
    ("${X:-a\nb}", "${X:-a\nb}"),
    ("${U?a\nb}", "${U?a\nb}"),
    ("${U:-a\n}}", "${U:-a\n}}"),
    # an error in an operator argument names the argument ...
    ("${U:-${}}", "${}"),
    ("${U:-${}", "${"),
    ("${U:-${B}", "${B"),
    ("${U:-${}x}", "${}x"),
    ("pre ${U:-${}} post", "${}"),
    ("${U:-${B}\n}", "${B"),
    # ... and arguments are substituted even when the operator will not use them
    ("${X:-${}}", "${}"),
    ("${X:+${}}", "${}"),
    ("${U:+${}}", "${}"),
    ("${X:?${}}", "${}"),
    ("${U:?${}}", "${}"),
    # text after the first balanced "}" is substituted as a template of its own
    ("${U:-a} ${ }", " ${ }"),
]


@pytest.mark.parametrize(("template", "named"), INVALID)
def test_invalid_template(template: str, named: str) -> None:
    with pytest.raises(InvalidTemplateError) as info:
        substitute(template, lookup)
    assert info.value.template == named
    assert info.value.message == f"Invalid template: {go_quote(named)}"
    assert str(info.value) == info.value.message


def test_invalid_template_in_context_matches_compose() -> None:
    with pytest.raises(InvalidTemplateError) as info:
        substitute("a ${", lookup)
    assert info.value.in_context("services.a.image") == (
        "invalid interpolation format for services.a.image.\n"
        "You may need to escape any $ with another $.\n"
        "a ${"
    )


# (template, variable, reason)
REQUIRED = [
    ("${U:?boom}", "U", "boom"),
    ("${E:?boom}", "E", "boom"),
    ("${U?boom}", "U", "boom"),
    ("${U?}", "U", ""),
    ("${U:?}", "U", ""),
    ("${U:?${B} missing}", "U", "bv missing"),
    ("${U:?$$}", "U", "$"),
    ("${U?a}b}", "U", "a"),
    ("${U?{a}b}", "U", "{a}b"),
    ("${U?{}x}", "U", "{}x"),  # the brace counter skips the char after "{"
    ("${U?${X}${B}}", "U", "xvbv"),
    ("${U?$$X}", "U", "$X"),
    ("${U?${U2-d}}", "U", "d"),
    ("${U?a}${U?b}", "U", "a"),  # the first error wins
    ("${U:-${U?inner}}", "U", "inner"),
    ("${X:-${U?inner}}", "U", "inner"),  # eager: the unused default still fails
]


@pytest.mark.parametrize(("template", "variable", "reason"), REQUIRED)
def test_missing_required(template: str, variable: str, reason: str) -> None:
    with pytest.raises(MissingRequiredError) as info:
        substitute(template, lookup)
    assert info.value.variable == variable
    assert info.value.reason == reason
    expected = f"required variable {variable} is missing a value"
    if reason:
        expected += f": {reason}"
    assert info.value.message == expected
    in_context = info.value.in_context("services.a.image")
    assert in_context == f"error while interpolating services.a.image: {expected}"


def test_missing_required_exact_text() -> None:
    with pytest.raises(TemplateError, match=r"^required variable U is missing a value: msg$"):
        substitute("${U:?msg}", lookup)


def test_long_line_of_expressions_does_not_recurse() -> None:
    # Each "${U:-x}" leaves the rest of the line as a tail; tails are iterative.
    assert substitute("${U:-x}" * 1000, lookup) == "x" * 1000


def test_absurd_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(TemplateError, match="nested too deeply"):
        substitute("${U:-" * 2000 + "}" * 2000, lookup)


GO_QUOTES = [
    ("${", '"${"'),
    ('a"b\\c', '"a\\"b\\\\c"'),
    ("\n\t\r\a\b\f\v", '"\\n\\t\\r\\a\\b\\f\\v"'),
    ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
    ("é€", '"é€"'),
    ("\u3000\u00a0", '"\\u3000\\u00a0"'),
    ("\U000e0001", '"\\U000e0001"'),
    ("\udcff", '"\\xff"'),  # an undecodable byte kept by surrogateescape
    ("\ud800", '"\\ufffd"'),
]


@pytest.mark.parametrize(("text", "quoted"), GO_QUOTES)
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted
