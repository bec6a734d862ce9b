"""``.dockerignore`` matching, with the cases moby's patternmatcher tests state."""

from __future__ import annotations

import pytest

from composer.backends.native.build.ignore import Matcher, clean, parse


@pytest.mark.parametrize(("patterns", "path", "excluded"), [
    ("**", "a/b/c", True),
    ("**/*.go", "b.go", True),
    ("**/*.go", "a/b/c.go", True),
    ("**/*.go", "a/b/c.gox", False),
    ("docs", "docs/x/y.md", True),  # a folder's pattern excludes what is in it
    ("docs", "docsx", False),
    ("*.md\n!README.md", "README.md", False),
    ("*.md\n!README.md", "CHANGES.md", True),
    ("!README.md\n*.md", "README.md", True),  # the last match wins
    ("dir/**/file", "dir/file", True),
    ("dir/**/file", "dir/a/b/file", True),
    ("dir/**/file", "other/dir/file", False),
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
    ("a*", "a/b", True),  # a parent matches
    ("/abs/./x/../y", "abs/y", True),  # cleaned, leading / dropped
    ("logs\n!logs/keep.log", "logs/keep.log", False),
    ("# comment\n\n  spaced  ", "spaced", True),
    ("[a-c].txt", "b.txt", True),
    ("[^a-c].txt", "b.txt", False),  # Go's negation is ^ (moby passes the class to the regexp as it is)
    ("[!a-c].txt", "b.txt", True),
    ("\\*.txt", "*.txt", True),
    ("\\*.txt", "a.txt", False),
])
def test_moby_pattern_semantics(patterns: str, path: str, excluded: bool) -> None:
    assert Matcher(parse(patterns)).excluded(path) is excluded


def test_clean_is_gos_filepath_clean_without_the_root() -> None:
    assert [clean(path) for path in ("/", "a//b/", "./a/../b", "../../x")] == [".", "a/b", "b", "x"]


def test_the_rule_that_excludes_is_named() -> None:
    matcher = Matcher(parse("logs\n**/*.key\n!app/keep.key\n"))
    assert matcher.excluded_by("logs/a.log") == "logs"
    assert matcher.excluded_by("app/x.key") == "**/*.key"
    assert matcher.excluded_by("app/keep.key") is None
