"""``logs --since/--until`` on the native backend, through the real CLI and real containers: the
lines written in the window, by each line's own time in the log file, with the time given as
Docker takes it (RFC 3339, Unix seconds, a duration back from now). tests/integration/docker/
test_cli_flags.py runs the same checks against dockerd."""

from __future__ import annotations

import calendar
import time

from tests.integration.native.test_lifecycle import Project, env, eventually, project

__all__ = ["env", "project"]  # the fixtures, shared with test_lifecycle (same store, same residue check)


def unix(stamp: str) -> float:
    head, _, fraction = stamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")


def test_logs_since_and_until(project: Project) -> None:
    project.write("""
    talk:
      image: IMAGE
      command: ["sh", "-c", "echo first; sleep 2; echo second; sleep 300"]
    """)
    project.run("up", "-d")
    eventually(lambda: "second" in project.run("logs").stdout, timeout=30)
    stamped = project.run("logs", "-t", "talk").stdout.splitlines()
    first_stamp, second_stamp = (line.split()[2] for line in stamped)
    assert [line.split()[3] for line in stamped] == ["first", "second"]
    # the second line came ~2s after the first: a bound between the two splits them (RFC 3339)
    after_first = project.run("logs", "--since", second_stamp, "talk").stdout
    assert "second" in after_first
    assert "first" not in after_first
    before_second = project.run("logs", "--until", first_stamp, "talk").stdout
    assert "first" in before_second
    assert "second" not in before_second
    # Unix seconds (with a fraction), and durations back from now
    between = f"{unix(first_stamp) + 1:.3f}"
    assert "first" not in project.run("logs", "--since", between, "talk").stdout
    assert "second" not in project.run("logs", "--until", between, "talk").stdout
    assert project.run("logs", "--since", "1h", "talk").stdout.count("first") == 1
    assert project.run("logs", "--until", "1h", "talk").stdout == ""
    # --tail first, then the window (dockerd's json-file reader): the last line is "second"
    assert project.run("logs", "--tail", "1", "--until", first_stamp, "talk").stdout == ""
    bad = project.run("logs", "--since", "garbage", check=False)
    assert bad.returncode == 1
    assert 'invalid value for "since": failed to parse value as time or duration: "garbage"' in bad.stderr


def test_follow_ends_once_until_has_passed(project: Project) -> None:
    """``-f --until`` stops following at ``until``, though the container still runs and writes."""
    project.write("""
    tick:
      image: IMAGE
      command: ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]
    """)
    project.run("up", "-d")
    eventually(lambda: "tick" in project.run("logs").stdout)
    began = time.monotonic()
    followed = project.run("logs", "-f", "--until", f"{time.time() + 2:.3f}", "tick", timeout=60)
    assert "tick" in followed.stdout
    assert "Up" in project.ps()
    print(f"logs -f --until (2 s ahead) returned after {time.monotonic() - began:.1f} s")  # noqa: T201
