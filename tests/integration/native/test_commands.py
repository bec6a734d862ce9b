"""``scale``, ``volumes``, ``down SERVICE...`` and ``ps --format`` on the native backend: the checks
of tests/support/commands.py (shared with the docker backend's, which also compares with v2).

The fixtures are test_lifecycle's (a module store with the busybox test image, a tmp run root,
``down -v`` after each test).
"""

from __future__ import annotations

import subprocess

from tests.integration.native import test_lifecycle
from tests.integration.native.test_lifecycle import Project, one_line
from tests.support.commands import STACK, check_commands, check_run_flags, check_run_remove_orphans

env = test_lifecycle.env
project = test_lifecycle.project


def test_commands(project: Project) -> None:
    (project.folder / "compose.yaml").write_text(STACK.format(image=project.env.image))

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return project.run(*args, check=check)

    check_commands(run, project.name)
    assert not (project.env.root / "store" / "volumes" / f"{project.name}_data").exists()


def test_run_flags(project: Project) -> None:
    (project.folder / "compose.yaml").write_text(STACK.format(image=project.env.image))
    check_run_flags(project.run, project.folder)


def test_commit_and_export_are_refused_in_one_line(project: Project) -> None:
    (project.folder / "compose.yaml").write_text(STACK.format(image=project.env.image))
    project.run("up", "-d", "db")
    for args, what in ((("commit", "db", "x:y"), "commit"), (("export", "db", "-o", "db.tar"), "export")):
        refused = project.run(*args, check=False)
        assert refused.returncode != 0
        assert one_line(refused) == (f"composer: {what} is not supported by the native backend yet "
                                     "(use --backend docker)")
    assert not (project.folder / "db.tar").exists()
    assert not (project.folder / "db.tar.partial").exists()


def test_run_remove_orphans(project: Project) -> None:
    (project.folder / "compose.yaml").write_text(STACK.format(image=project.env.image))
    check_run_remove_orphans(project.run, project.folder)
