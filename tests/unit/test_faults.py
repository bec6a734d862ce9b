"""composer.faults: the registry of crash points, COMPOSER_FAULTS's syntax, and the points in the
source being exactly the registry's (each one reached by name, each name reached somewhere)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import composer
from composer import faults

PACKAGE = Path(composer.__file__).parent


def points_in_source() -> dict[str, list[str]]:
    """Every crash point named in the package: ``faults.point("x")`` and ``fault="x"``."""
    found: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            names = []
            if isinstance(node.func, ast.Attribute) and node.func.attr == "point" and node.args:
                names.append(node.args[0])
            names += [k.value for k in node.keywords if k.arg == "fault"]
            for name in names:
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    found.setdefault(name.value, []).append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def test_the_source_reaches_exactly_the_registered_points() -> None:
    used = points_in_source()
    assert sorted(used) == sorted(faults.POINTS), (sorted(set(used) ^ set(faults.POINTS)))
    for name, places in used.items():
        assert len(places) == 1, f"{name} is reached in more than one place: {places}"


def test_every_point_says_what_it_interrupts() -> None:
    for name, text in faults.POINTS.items():
        assert name.count(".") >= 2, name
        assert text.strip(), name


def test_the_syntax_of_composer_faults() -> None:
    armed = faults.parse("runtime.create.staged:kill, store.index.writing:error:0.25,")
    assert armed["runtime.create.staged"].action == "kill"
    assert armed["runtime.create.staged"].probability == 1.0
    assert armed["store.index.writing"].action == "error"
    assert armed["store.index.writing"].probability == 0.25
    assert faults.parse("") == {}
    for bad in ("nowhere.at.all:kill", "runtime.create.staged:explode", "runtime.create.staged:kill:2",
                "runtime.create.staged:kill:often"):
        with pytest.raises(ValueError, match="COMPOSER_FAULTS"):
            faults.parse(bad)


def run(code: str, spec: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COMPOSER_FAULTS"}
    if spec is not None:
        env["COMPOSER_FAULTS"] = spec
    env["PYTHONPATH"] = str(PACKAGE.parent)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


POINT = "from composer import faults; faults.point('runtime.create.staged'); print('passed')"


def test_unset_nothing_happens_and_set_the_point_kills_or_fails() -> None:
    unset = run("from composer import faults; print(faults.ENABLED); " + POINT.split("; ", 1)[1], None)
    assert unset.stdout.split() == ["False", "passed"]
    killed = run(POINT, "runtime.create.staged:kill")
    assert killed.returncode == -9
    assert "passed" not in killed.stdout
    failed = run(POINT, "runtime.create.staged:error")
    assert failed.returncode == 1
    assert "injected fault at runtime.create.staged" in failed.stderr
    other = run(POINT, "runtime.create.renamed:kill")
    assert other.stdout.strip() == "passed"
    never = run(POINT, "runtime.create.staged:kill:0")
    assert never.stdout.strip() == "passed"


def test_an_armed_process_refuses_an_unregistered_point() -> None:
    result = run("from composer import faults; faults.point('made.up.point')", "runtime.create.staged:kill")
    assert result.returncode == 1
    assert "not in composer.faults.POINTS" in result.stderr


def test_arm_follows_the_environment_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command server's worker re-arms from its client's environment (composer/cli/server.py):
    what the server started with is dropped, a bad value is kept for check, never raised at import."""
    from composer.errors import UsageError

    try:
        monkeypatch.setenv("COMPOSER_FAULTS", "runtime.create.staged:kill:0.5")
        faults.arm()
        assert faults.ENABLED
        assert faults.armed()["runtime.create.staged"].probability == 0.5
        faults.check()
        monkeypatch.setenv("COMPOSER_FAULTS", "runtime.create.staged:kill,bogus.point:error")
        faults.arm()
        assert not faults.ENABLED
        assert faults.armed() == {}
        with pytest.raises(UsageError, match=r"^COMPOSER_FAULTS: unknown point 'bogus\.point'$"):
            faults.check()
        monkeypatch.delenv("COMPOSER_FAULTS")
        faults.arm()
        assert not faults.ENABLED
        assert faults.armed() == {}
        faults.check()
    finally:
        monkeypatch.delenv("COMPOSER_FAULTS", raising=False)
        faults.arm()


BAD_VALUES = {
    "bogus:kill": "COMPOSER_FAULTS: unknown point 'bogus'",
    "runtime.create.staged": "COMPOSER_FAULTS: runtime.create.staged: the action is kill or error, not ''",
    "runtime.create.staged:kill:2": "COMPOSER_FAULTS: runtime.create.staged: the probability is a number in "
                                    "[0, 1], not '2'",
}


@pytest.mark.parametrize("value", sorted(BAD_VALUES))
def test_a_bad_value_is_one_line_from_the_cli(value: str, tmp_path: Path) -> None:
    """Through ``python -m composer`` (in process: COMPOSER_SERVER=0): one line naming the variable
    and the bad part, exit 1, no traceback, nothing done (the project's file is never read)."""
    env = {k: v for k, v in os.environ.items() if k != "COMPOSER_FAULTS"}
    env.update(COMPOSER_FAULTS=value, COMPOSER_SERVER="0", PYTHONPATH=str(PACKAGE.parent))
    result = subprocess.run([sys.executable, "-m", "composer", "up", "-d"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"composer: {BAD_VALUES[value]}\n"
