"""The parser against BuildKit's own parser test files (../shared/dockerfile, from moby/buildkit):
every positive case's dump must equal BuildKit's byte for byte, every negative case must be refused.
Plus what the corpus has no case for: directives, heredocs, flags with quotes, line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.dockerfile.parser import DockerfileSyntaxError, dump, parse

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "dockerfile"
POSITIVE = sorted(path.name for path in (CORPUS / "testfiles").iterdir()) if CORPUS.is_dir() else []
NEGATIVE = sorted(path.name for path in (CORPUS / "testfiles-negative").iterdir()) if CORPUS.is_dir() else []


def _text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "surrogateescape")


def test_the_corpus_is_there() -> None:
    assert len(POSITIVE) >= 30
    assert len(NEGATIVE) >= 4


@pytest.mark.parametrize("case", POSITIVE)
def test_buildkits_positive_cases_dump_as_buildkit_dumps_them(case: str) -> None:
    folder = CORPUS / "testfiles" / case
    parsed = parse(_text(folder / "Dockerfile"))
    assert dump(parsed.instructions) + "\n" == _text(folder / "result")


@pytest.mark.parametrize("case", NEGATIVE)
def test_buildkits_negative_cases_are_refused(case: str) -> None:
    with pytest.raises(DockerfileSyntaxError):
        parse(_text(CORPUS / "testfiles-negative" / case / "Dockerfile"))


def test_directives_only_at_the_top_and_once() -> None:
    parsed = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM a `\n  b\n")
    assert parsed.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert dump(parsed.instructions) == '(from "a" "b")'
    late = parse("FROM a\n# escape=`\nRUN x \\\n y\n")
    assert late.escape == "\\"
    assert dump(late.instructions).splitlines()[1] == '(run "x  y")'
    with pytest.raises(DockerfileSyntaxError, match="Dockerfile:2: only one escape parser directive can be used"):
        parse("# escape=`\n# escape=\\\nFROM a\n")
    with pytest.raises(DockerfileSyntaxError, match="invalid escape token 'x' does not match"):
        parse("# escape=x\nFROM a\n")


def test_heredocs_and_their_delimiters() -> None:
    parsed = parse('FROM a\nRUN <<EOF bash\necho hi\n  EOF\nEOF\n'
                   'COPY <<-"A" <<B /x/\n\tone $v\n\tA\ntwo\nB\nRUN true\n')
    run, copy, last = parsed.instructions[1:]
    assert [(doc.name, doc.content, doc.expand, doc.chomp) for doc in run.heredocs] == [
        ("EOF", "echo hi\n  EOF\n", True, False)]
    assert [(doc.name, doc.content, doc.expand, doc.chomp) for doc in copy.heredocs] == [
        ("A", "one $v\n", False, True), ("B", "two\n", True, False)]
    assert (run.start_line, run.end_line, copy.start_line, last.start_line) == (2, 5, 6, 11)
    with pytest.raises(DockerfileSyntaxError, match="Dockerfile:2: unterminated heredoc EOF"):
        parse("FROM a\nRUN <<EOF\necho\n")
    assert parse("FROM a\nRUN [\"sh\", \"<<EOF\"]\n").instructions[1].heredocs == ()  # the exec form has none


def test_flags_keep_quoted_values_and_stop_at_the_first_word() -> None:
    parsed = parse('FROM a\nRUN --mount=type=cache,target="/root/.cache x" --network=none echo --not-a-flag\n')
    run = parsed.instructions[1]
    assert run.flags == ("--mount=type=cache,target=/root/.cache x", "--network=none")
    assert run.args == ("echo --not-a-flag",)


def test_errors_name_the_file_and_the_line() -> None:
    with pytest.raises(DockerfileSyntaxError, match=r"^build/Dockerfile\.dev:3: ENV must have two arguments$"):
        parse("FROM a\n\nENV ONLY\n", path="build/Dockerfile.dev")
    with pytest.raises(DockerfileSyntaxError, match="Dockerfile:2: failed to process JSON: not all elements"):
        parse('FROM a\nCMD ["a", 1]\n')
    with pytest.raises(DockerfileSyntaxError, match="Dockerfile: file with no instructions"):
        parse("\n# only a comment\n")
