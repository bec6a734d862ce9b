"""The pure pieces of attached ``up``: v2's log prefixes and colours, the exit-code rules of the
cascades, the choice of attached services."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from composer.cli.attach import (
    RAINBOW,
    Cascade,
    ExitTracker,
    LogFormatter,
    attached_services,
    cascade_of,
    colour_enabled,
    display_name,
    epoch_key,
    timestamp_key,
)
from composer.errors import UsageError
from composer.spec import load_project
from composer.spec.models import Project


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_prefix_is_padded_to_the_longest_name_so_far_plus_one() -> None:
    formatter = LogFormatter(color=False)
    assert formatter.line("a-1", "hi") == "a-1  | hi\n"
    formatter.register("longername-1")
    assert formatter.line("longername-1", "hello") == "longername-1  | hello\n"
    assert formatter.line("a-1", "hi") == "a-1           | hi\n"


def test_colours_rotate_per_container_in_registration_order() -> None:
    formatter = LogFormatter(color=True)
    names = [f"s{index:x}" for index in range(len(RAINBOW) + 1)]  # all two characters
    for name in names:
        formatter.register(name)
    assert formatter.line("s0", "x") == "\x1b[36ms0  | \x1b[0mx\n"  # cyan first, as v2
    assert formatter.line("s1", "x").startswith("\x1b[33m")  # then yellow
    assert formatter.line("s5", "x").startswith("\x1b[36;1m")  # then the bold ones
    assert formatter.line(names[-1], "x").startswith("\x1b[36m")  # and round again


def test_status_line_resets_the_line_and_takes_the_colour() -> None:
    assert LogFormatter(color=False).status("one-1", "exited with code 0") == "\r\x1b[Kone-1 exited with code 0\n"
    coloured = LogFormatter(color=True)
    coloured.register("one-1")
    assert coloured.status("one-1", "exited with code 3") == "\x1b[36m\r\x1b[Kone-1 exited with code 3\n\x1b[0m"


def test_no_log_prefix_and_timestamps() -> None:
    stamp = "2024-01-02T03:04:05.123456789Z"
    assert LogFormatter(color=True, prefix=False).line("a-1", "hi", stamp) == "hi\n"
    assert LogFormatter(color=False, prefix=False, timestamps=True).line("a-1", "hi", stamp) == f"{stamp} hi\n"
    assert LogFormatter(color=False, timestamps=True).line("a-1", "hi", stamp) == f"a-1  | {stamp} hi\n"


@pytest.mark.parametrize(("no_color", "environ", "tty", "expected"), [
    (False, {}, True, True),
    (False, {}, False, False),
    (True, {}, True, False),
    (False, {"COMPOSE_ANSI": "never"}, True, False),
    (False, {"COMPOSE_ANSI": "always"}, False, True),
    (False, {"NO_COLOR": "1"}, True, False),
    (True, {"COMPOSE_ANSI": "always"}, True, False),
])
def test_colour_enabled(no_color: bool, environ: dict[str, str], tty: bool, expected: bool) -> None:
    stream = _Tty() if tty else io.StringIO()
    assert colour_enabled(no_color, stream, environ) is expected


def test_display_name_drops_the_project_unless_the_name_is_custom() -> None:
    assert display_name("demo-web-2", "demo", "web", 2) == "web-2"
    assert display_name("my-proxy", "demo", "proxy", 1) == "my-proxy"


# (cascade, exit_code_from, exits in order, expected exit code, index of the exit that aborts)
CASES = [
    (Cascade.NONE, None, [("a", 0), ("b", 3)], 0, None),
    (Cascade.STOP, None, [("a", 2), ("b", 143)], 2, 0),
    (Cascade.STOP, None, [("a", 0), ("c", 143), ("b", 4)], 0, 0),
    (Cascade.FAIL, None, [("a", 0), ("b", 4), ("c", 143)], 4, 1),
    (Cascade.FAIL, None, [("a", 0), ("b", 0)], 0, None),
    (Cascade.STOP, "b", [("a", 2), ("b", 143)], 143, 0),
    (Cascade.STOP, "b", [("b", 5), ("a", 143)], 5, 0),
]


@pytest.mark.parametrize(("cascade", "exit_code_from", "exits", "expected", "aborts_at"), CASES)
def test_exit_code_rules(cascade: Cascade, exit_code_from: str | None, exits: list[tuple[str, int]],
                         expected: int, aborts_at: int | None) -> None:
    tracker = ExitTracker(cascade, exit_code_from)
    aborts = [index for index, (service, code) in enumerate(exits) if tracker.exited(service, code)]
    assert tracker.exit_code == expected
    assert aborts == ([] if aborts_at is None else [aborts_at])


def test_cascade_of_flags() -> None:
    assert cascade_of(False, False, None) is Cascade.NONE
    assert cascade_of(True, False, None) is Cascade.STOP
    assert cascade_of(False, False, "web") is Cascade.STOP
    assert cascade_of(False, True, None) is Cascade.FAIL
    with pytest.raises(UsageError, match="cannot be combined"):
        cascade_of(True, True, None)


def test_timestamp_keys_order_despite_trimmed_fractions() -> None:
    early = timestamp_key("2024-01-02T03:04:05.2Z")
    late = timestamp_key("2024-01-02T03:04:05.123456789Z")
    assert early is not None
    assert late is not None
    assert late < early  # .123456789 < .2, though the strings sort the other way
    assert timestamp_key(None) is None
    assert epoch_key(0) == ("1970-01-01T00:00:00", 0)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""
        services:
          db:
            image: x
          cache:
            image: x
            attach: false
          web:
            image: x
            depends_on: [db, cache]
          other:
            image: x
    """))
    return load_project(files=[str(tmp_path / "compose.yaml")], environment={}, working_directory=str(tmp_path),
                        project_name="demo")


def test_attached_services_as_v2_picks_them(project: Project) -> None:
    assert set(attached_services(project)) == {"db", "web", "other"}  # not attach: false
    assert attached_services(project, ["web"]) == ["web"]
    assert set(attached_services(project, ["web"], attach_dependencies=True)) == {"db", "web"}
    assert set(attached_services(project, no_attach=["other"])) == {"db", "web"}
    assert attached_services(project, ["web"], attach=["cache"]) == ["cache"]


def test_attach_outside_the_up_is_a_usage_error(project: Project) -> None:
    with pytest.raises(UsageError, match="cannot attach to services not included in up: other"):
        attached_services(project, ["web"], attach=["other"])
