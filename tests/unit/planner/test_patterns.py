"""The .dockerignore matcher of ``watch`` (moby/patternmatcher's rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.planner.patterns import PatternMatcher, dockerignore_of


@pytest.mark.parametrize(("patterns", "path", "expected"), [
    (["*.tmp"], "/p/a.tmp", True),
    (["*.tmp"], "/p/sub/a.tmp", False),  # "*" stays in one folder, from the root
    (["**/*.tmp"], "/p/sub/deep/a.tmp", True),
    (["**/*.tmp"], "/p/a.tmp", True),  # "**/" may be no folder at all
    (["node_modules"], "/p/node_modules/x/y.js", True),  # a parent that matches takes its files
    (["node_modules/"], "/p/node_modules/x", True),
    (["build/**"], "/p/build/a/b", True),
    (["a?c"], "/p/abc", True),
    (["a?c"], "/p/a/c", False),
    (["[ab].txt"], "/p/b.txt", True),
    (["[ab].txt"], "/p/c.txt", False),
    (["*.txt", "!keep.txt"], "/p/keep.txt", False),  # the last deciding pattern wins
    (["*.txt", "!keep.txt", "keep.txt"], "/p/keep.txt", True),
    (["!keep.txt"], "/p/keep.txt", False),
    (["a+b(c).txt"], "/p/a+b(c).txt", True),  # regex characters are literal
    (["/abs/x"], "/abs/x/y", True),  # an absolute pattern is not rooted again
    (["../p/x"], "/p/x", True),  # cleaned against the root
    (["  ", ""], "/p/x", False),
])
def test_patterns(patterns: list[str], path: str, expected: bool) -> None:
    assert PatternMatcher("/p", patterns).matches(path) is expected


def test_dockerignore_of_prefers_the_dockerfile_s_own(tmp_path: Path) -> None:
    assert dockerignore_of(str(tmp_path), "Dockerfile") == []
    (tmp_path / ".dockerignore").write_text("# comment\n\n*.log\n !x \n")
    assert dockerignore_of(str(tmp_path), "Dockerfile") == ["*.log", "!x"]
    (tmp_path / "Dockerfile.dockerignore").write_text("only\n")
    assert dockerignore_of(str(tmp_path), "Dockerfile") == ["only"]
