"""Variable expansion as BuildKit's shell lexer does it: cases whose results BuildKit's own tests
state (frontend/dockerfile/shell), and quoting and word splitting."""

from __future__ import annotations

import pytest

from composer.dockerfile.expand import ExpansionError, expand, expand_word, expand_words

ENV = {"FOO": "xxx", "BAR": ""}

CASES = [
    ("x", {}, "x"),
    ("x ${UNUSED}", {}, "x "),
    ("x ${FOO}", {"FOO": "y"}, "x y"),
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", ENV, "xxx  ccc"),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", ENV, "xxx bbb ccc"),
    ("${FOO:-}", ENV, "xxx"),
    ("${FOO:-}", {}, ""),
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", ENV, "aaa bbb "),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", ENV, "aaa  "),
    ("${FOO?aaa}", ENV, "xxx"),
    ("${BAR?bbb}", ENV, ""),
    ("${FOO:?aaa}", ENV, "xxx"),
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x"),
    ("${FOO%%\\**}", {"FOO": "xx**"}, "xx"),
    ("${FOO#*x*y}", {"FOO": "xxyy"}, "y"),
    ("${FOO#*}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    ("${FOO#}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO##*x}", {"FOO": "xxyy"}, "yy"),
    ("${FOO##}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO#?\\?}", {"FOO": "???y"}, "?y"),
    ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy."),
    ("${FOO%%\\**\\*}", {"FOO": "a***yy*"}, "a"),
    ("${FOO%}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO%%$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    ("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", {"FOO": "/foo*/*/*.txt", "NEEDLE": "\\*/"},
     "/foo.*/*.txt - /foo..*.txt"),
    ("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"}, "/tmp/bar.txt - /bar.txt"),
    ("${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
     {"FOO": "/a/foo/b/c.txt", "NEEDLE": "/?/", "REPLACEMENT": "/"}, "/foo/b/c.txt - /foo/c.txt"),
    ("${FOO/$NEEDLE/$REPLACEMENT}", {"FOO": "http://google.de", "NEEDLE": "http://", "REPLACEMENT": "https://"},
     "https://google.de"),
    ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt"),
    ("${FOO/$BAR/ww}", {"FOO": "xxyy", "BAR": ""}, "wwxxyy"),
    ("${FOO///}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO///}", {}, ""),
    ("something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
     {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm", "TARGETVARIANT": "v7"},
     "something-v1.2.3.linux-arm-v7.tar.gz"),
    # quoting, as a shell: single quotes literal, double quotes expand, escapes
    ("'$FOO' \"$FOO\" \\$FOO", ENV, "$FOO xxx $FOO"),
    ('"a\\"b\\$c\\d"', {}, 'a"b$c\\d'),
    ("$", {}, "$"),
    ("a$1b ${PWD}", {"PWD": "/home"}, "ab /home"),
]
ERRORS = [
    ("${BAZ?ccc}", ENV, "BAZ: ccc"), ("${BAR:?bbb}", ENV, "BAR: bbb"), ("${BAZ:?}", ENV, "is not allowed to be unset"),
    ("${FOO=aaa}", ENV, "unsupported modifier (=)"), ("${FOO=:aaa}", ENV, "unsupported modifier"),
    ("${FOO=}", {}, "unsupported modifier"), ("${FOO//ww}", {"FOO": "xxyy"}, "missing '/'"),
    ("${FOO//}", {"FOO": "xxyy"}, "missing '/'"), ("${FOO", {}, "missing '}'"), ("${}", {}, "bad substitution"),
    ("'open", {}, "matching single-quote"), ('"open', {}, "matching double-quote"),
    ("${FOO#\\x}", {"FOO": "a"}, "invalid escape"),
]


@pytest.mark.parametrize(("source", "environment", "expected"), CASES)
def test_expansion_as_buildkit(source: str, environment: dict[str, str], expected: str) -> None:
    assert expand_word(source, environment) == expected


@pytest.mark.parametrize(("source", "environment", "message"), ERRORS)
def test_bad_expansions_are_refused(source: str, environment: dict[str, str], message: str) -> None:
    with pytest.raises(ExpansionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand_word(source, environment)


def test_words_split_after_expansion_but_not_inside_quotes() -> None:
    environment = {"LIST": "a b  c", "EMPTY": ""}
    assert expand_words('$LIST "d e" f\\ g $EMPTY', environment) == ["a", "b", "c", "d e", "f g"]
    assert expand_words("", environment) == []


def test_the_used_and_unset_variables_are_reported() -> None:
    result = expand("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", ENV)
    assert (result.used, result.unset) == ({"FOO", "BAR"}, {"BAZ"})


def test_a_backtick_escape() -> None:
    assert expand_word("a`$b `\"c", {"b": "x"}, escape="`") == 'a$b "c'


def test_a_heredoc_body_keeps_its_quotes() -> None:
    """BuildKit expands a COPY heredoc's body with ``SkipProcessQuotes``: an apostrophe is text, and
    ``$`` expands inside quotes too; the escape character still escapes (dockerfile2llb's ExpandRaw)."""
    body = "; it's ${SIZE}\nname = \"$SIZE\" '$SIZE'\n\\$SIZE\n"
    assert expand_word(body, {"SIZE": "32M"}, quotes=False) == "; it's 32M\nname = \"32M\" '32M'\n$SIZE\n"
    with pytest.raises(ExpansionError, match="matching single-quote"):
        expand_word(body, {"SIZE": "32M"})
