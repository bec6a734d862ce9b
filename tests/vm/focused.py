"""The focused guest run that ``make test`` includes (``make test-guest``): pure cgroup v2 under systemd.

    python -m tests.vm.focused [--whole] [PYTEST ARGS...]

Boots one guest with dockerd and docker-registry (the isolation probe's docker column, the test
images' registry) and runs FOCUSED_TESTS there: the native backend's lifecycle, network and isolation
tests and the WordPress example's tests.  ``--whole`` (``make test-vm``) runs the whole native suite
(WHOLE_TESTS) instead.  Extra arguments go to the guest's pytest (``-k``, ``-x``, ...).

The WordPress example's stand-in images are built on the host (scripts/prepare-example-images, as the
host's tests do), and the guest pulls them through the host's registry, which it reaches at its own
127.0.0.1:5000 (COMPOSER_EXAMPLE_IMAGES=served: it builds nothing).

On failure it prints the guest's test report (each failed test and its message, from the JUnit file
the guest writes into a shared folder) and the last 100 lines of the guest's journal.  Without root,
qemu or debootstrap it says so and exits 0 ("skipped"), except under CI=true, where it fails.
Prints how long the boot and the tests took.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.integration.timeouts import SCALE_VARIABLE
from tests.vm import prerequisites
from tests.vm.errors import VMError
from tests.vm.machine import REPOSITORY, Options, echo_to_stdout, guests

PACKAGES = ("docker.io", "docker-registry")
FOCUSED_TESTS = (
    "tests/integration/native/test_lifecycle.py",
    "tests/integration/native/test_network.py",
    "tests/integration/isolation",
    "examples/wordpress-mysql/tests",
)
# Tests of FOCUSED_TESTS the focused run leaves out, each with why: what they show does not depend on the
# host kind, and under TCG they alone would take a large part of the run.  ``--whole`` runs them.
LEFT_OUT = {
    "tests/integration/native/test_network.py::test_twenty_up_down_cycles_leave_nothing":
        "200 container starts (20 cycles of 10) looking for leaks over many cycles; the host's run has it",
    **{f"examples/wordpress-mysql/tests/test_wordpress_site.py::{test}[build]":
       "the example's build variant (a build under TCG, then the same stack again): the native builder's tests "
       "run in the whole run (--whole), the stack's on pure v2 in the [images] variant"
       for test in ("test_a_fresh_site_shows_the_installer", "test_install_then_log_in",
                    "test_the_database_is_healthy_and_answers",
                    "test_the_built_image_serves_the_site_s_plugin_and_settings")},
}
WHOLE_TESTS = ("tests/integration/native", "tests/integration/isolation", "examples/wordpress-mysql/tests")
PREPARE_IMAGES = REPOSITORY / "scripts" / "prepare-example-images"
TCG_TIMEOUT_SCALE = 5  # the guest's tests' subprocess time-outs, under TCG (tests/integration/timeouts.py)
REPORT_LINES = 60  # of each failed test's message


def say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def prepare_example_on_host() -> None:
    """The stand-in images in the host's registry, and the example's secret files (the guest's copy of the
    repository is read-only)."""
    from tests.e2e.conftest import ensure_secrets

    started = time.monotonic()
    done = subprocess.run([str(PREPARE_IMAGES)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise VMError(f"scripts/prepare-example-images exited {done.returncode}:\n{done.stdout[-3000:]}"
                      f"{done.stderr[-3000:]}")
    ensure_secrets()
    say(f"vm: the example's images served by the host's registry ({time.monotonic() - started:.0f} s)")


def report(junit: Path) -> str:
    """Each failed or erroring test of a JUnit file with the start of its message."""
    if not junit.is_file():
        return "(the guest wrote no JUnit report: pytest did not get to the end)"
    try:
        root = ET.parse(junit).getroot()
    except ET.ParseError as exc:
        return f"(the JUnit report is unreadable: {exc})"
    lines: list[str] = []
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in root.iter("testsuite"):
        for name in totals:
            totals[name] += int(suite.get(name, "0"))
    lines.append(", ".join(f"{count} {name}" for name, count in totals.items()))
    for case in root.iter("testcase"):
        for outcome in ("failure", "error"):
            found = case.find(outcome)
            if found is None:
                continue
            lines.append(f"--- {outcome.upper()}: {case.get('classname')}::{case.get('name')}")
            text = (found.get("message") or "") + "\n" + (found.text or "")
            lines += text.strip().splitlines()[-REPORT_LINES:]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    missing = prerequisites.missing()
    if missing:
        if prerequisites.on_ci():
            say(f"vm: CI=true and {missing}: the focused guest run cannot run")
            return 1
        say(f"vm: SKIPPED the focused guest run: {missing}")
        return 0
    tests: tuple[str, ...] = FOCUSED_TESTS
    deselect = [f"--deselect={test}" for test in LEFT_OUT]
    if argv[:1] == ["--whole"]:
        tests, argv, deselect = WHOLE_TESTS, argv[1:], []
    started = time.monotonic()
    try:
        prepare_example_on_host()
        with tempfile.TemporaryDirectory(prefix="composer-guest-out-") as folder:
            out = Path(folder)
            junit = out / "report.xml"
            # -p composer.pytest_plugin: the guest's venv reaches the repository through a .pth file, with no
            # entry point that would load composer's pytest plugin (the example's tests use its fixtures);
            # -p no:composer first: an editable install's egg-info in the repository registers that entry
            # point after all (a fresh clone's `make install`), and the plugin may be loaded only once.
            pytest = ["python", "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:composer",
                      "-p", "composer.pytest_plugin", "-q",
                      "-rfEs", "--durations=15",
                      f"--junitxml={junit}", *deselect, *tests, *argv]
            env = {"COMPOSER_EXAMPLE_IMAGES": "served"}
            if "CI" in os.environ:
                env["CI"] = os.environ["CI"]
            with guests(Options(packages=PACKAGES, shares=(out,)), say) as (guest,):
                booted = time.monotonic() - started
                if guest.accelerator == "tcg":  # an emulated CPU: a small project's `up -d` alone can take >60 s
                    env[SCALE_VARIABLE] = str(TCG_TIMEOUT_SCALE)
                say(f"vm: pytest {' '.join(tests)} in {guest.name} ({booted:.0f} s after start)")
                result = guest.run(pytest, env=env, echo=echo_to_stdout)
                say(f"vm: the guest run: exit status {result.status}; boot {booted:.0f} s, tests "
                    f"{result.seconds:.0f} s, {time.monotonic() - started:.0f} s in all")
                if result.status != 0:
                    say(f"vm: the guest's test report ({junit.name}):\n{report(junit)}")
                    say(f"vm: the guest's journal (last 100 lines):\n{result.journal}")
                return result.status
    except VMError as exc:
        say(f"vm: the focused guest run failed: {exc}")
        return 125


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
