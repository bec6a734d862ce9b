"""run_args and heredoc_script: the process of a RUN with heredocs, as BuildKit's dispatchRun makes it."""

from __future__ import annotations

import pytest

from composer.backends.native.build.run import RunRefused, heredoc_script, run_args
from composer.dockerfile.instructions import RunCommand, build_stages
from composer.dockerfile.parser import heredoc_word
from composer.dockerfile.parser import parse as parse_dockerfile

SHELL = ["/bin/sh", "-c"]


def run_command(text: str) -> RunCommand:
    [command] = build_stages(parse_dockerfile(f"FROM scratch\n{text}"), "Dockerfile").stages[0].commands
    assert isinstance(command, RunCommand)
    return command


def test_one_heredoc_is_the_shell_s_script() -> None:
    command = run_command("RUN <<EOT\n  mkdir -p foo/bar\nEOT\n")
    assert run_args(command, SHELL) == ["/bin/sh", "-c", "  mkdir -p foo/bar\n"]
    assert heredoc_script(command) is None
    chomped = run_command("RUN <<-EOT\n\t\techo x\n\tEOT\n")
    assert run_args(chomped, SHELL) == ["/bin/sh", "-c", "echo x\n"]


def test_one_heredoc_with_a_shebang_runs_as_a_mounted_file() -> None:
    command = run_command("RUN <<EOT\n#!/usr/bin/env python3\nprint('hi')\nEOT\n")
    assert run_args(command, SHELL) == ["/bin/sh", "-c", "/dev/pipes/EOT"]
    assert heredoc_script(command) == ("EOT", "#!/usr/bin/env python3\nprint('hi')\n")
    quoted = run_command("RUN <<E'O'T\n#!/bin/sh\necho $0\nEOT\n")  # a partly quoted delimiter: one heredoc
    assert heredoc_script(quoted) == ("EOT", "#!/bin/sh\necho $0\n")


def test_a_heredoc_with_a_command_goes_to_the_shell_whole() -> None:
    text = "<<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nsecond\nFILE2\n"
    assert run_args(run_command(f"RUN {text}"), SHELL) == ["/bin/sh", "-c", text]
    shebang_with_a_command = run_command("RUN <<EOT python3\n#!/bin/false\nprint(1)\nEOT\n")
    assert heredoc_script(shebang_with_a_command) is None


def test_a_script_named_as_a_path_is_refused() -> None:
    with pytest.raises(RunRefused, match="not a file name"):
        run_args(run_command("RUN <<a/b\n#!/bin/sh\na/b\n"), SHELL)


@pytest.mark.parametrize(("word", "expected"), [
    ("<<EOF", ("EOF", False, False, None)),
    ("<<-EOF", ("EOF", False, True, None)),
    ("2<<EOF", ("EOF", False, False, 2)),
    ("<<'EOF'", ("EOF", True, False, None)),
    ('<<-"EOF"', ("EOF", True, True, None)),
    ("<<E'O'F", ("EOF", True, False, None)),  # "quote any part of the here-document word"
    ("<<\\EOF", ("EOF", False, False, None)),  # an escape is no quote (BuildKit counts quotes)
    ("<<", None), ("<<''", None), ("<<'EOF", None), ("EOF", None), ("<<EOF<<X", None),
])
def test_heredoc_words(word: str, expected: tuple[str, bool, bool, int | None] | None) -> None:
    assert heredoc_word(word) == expected
