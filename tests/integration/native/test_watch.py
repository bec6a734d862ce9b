"""``composer --backend native watch`` end to end: sync (initial, new, changed, ignored, deleted),
restart and sync+exec on real containers (the checks are tests/support/watch.py's, shared with
the docker backend's), and ``rebuild`` with the native builder, as the docker backend's test.

The fixtures are test_lifecycle's: a module store with the busybox test image, a tmp
COMPOSER_RUN_ROOT, ``down -v`` after each test and the runtime's residue check after the module.
"""

from __future__ import annotations

import sys
import time

from tests.integration.native import test_lifecycle
from tests.integration.native.test_lifecycle import Project, one_line
from tests.integration.timeouts import scaled
from tests.support.watch import Reader, WatchProcess, check_restart_and_exec, check_sync, until, write_project

env = test_lifecycle.env
project = test_lifecycle.project


def reader(project: Project) -> Reader:
    def read(script: str) -> str:
        return project.run("exec", "-T", "web", "sh", "-c", script, check=False).stdout

    return read


def test_watch_syncs_restarts_and_execs(project: Project) -> None:
    write_project(project.folder, project.env.image)
    command = [sys.executable, "-m", "composer", "--backend", "native", "-p", project.name, "watch"]
    watch = WatchProcess(command, project.folder, env=project.env.environ)
    try:
        watch.wait_for("Watch enabled")
        read = reader(project)
        check_sync(project.folder, read, watch)
        check_restart_and_exec(project.folder, read, watch)
    finally:
        code = watch.interrupt()
    assert code == 130, watch.errors
    assert reader(project)("echo alive") == "alive\n"  # Ctrl-C leaves the containers running, as v2's watch


def test_rebuild_rebuilds_with_the_native_builder_and_recreates(project: Project) -> None:
    (project.folder / "Dockerfile").write_text(f"FROM {project.env.image}\nCOPY v.txt /v.txt\n")
    (project.folder / "v.txt").write_text("v1\n")
    project.write(f"""
        web:
          image: {project.name}-web
          build: .
          command: ["sleep", "600"]
          init: true
          develop:
            watch:
              - path: ./v.txt
                action: rebuild
    """)
    command = [sys.executable, "-m", "composer", "--backend", "native", "-p", project.name, "watch"]
    watch = WatchProcess(command, project.folder, env=project.env.environ)
    try:
        watch.wait_for("Watch enabled", timeout=scaled(120))
        read = reader(project)
        assert read("cat /v.txt") == "v1\n"
        watch.edit(lambda: (project.folder / "v.txt").write_text("v2\n"), "a rebuild")
        until(read, "cat /v.txt 2>/dev/null", "v2\n", "a rebuild", timeout=scaled(120))
        watch.wait_for('service(s) ["web"] successfully built')
        assert any('Rebuilding service(s) ["web"] after changes were detected...' in line for line in watch.lines)
    finally:
        watch.interrupt()
    project.run("down", "--rmi", "all", "-t", "0")
    from composer.backends.native.image.store import ImageStore

    ImageStore.open(project.env.root / "store").gc()  # the builds' layers


def test_a_missing_path_is_watched_from_its_parent_in_the_project(project: Project) -> None:
    project.write("""
        web:
          image: IMAGE
          command: sleep 600
          init: true
          develop:
            watch:
              - path: ./later/sub
                action: sync
                target: /later
    """)
    project.run("up", "-d")
    command = [sys.executable, "-m", "composer", "--backend", "native", "-p", project.name, "watch", "--no-up"]
    watch = WatchProcess(command, project.folder, env=project.env.environ)
    try:
        watch.wait_for("Watch enabled")
        (project.folder / "later" / "sub").mkdir(parents=True)
        time.sleep(0.5)  # inotify watches a new folder once it is seen; what a folder made in the same
        # instant holds may come before its watch (v2's watcher has the same window)
        watch.edit(lambda: (project.folder / "later" / "sub" / "x.txt").write_text("x\n"), "a file in a new path")
        until(reader(project), "cat /later/x.txt 2>/dev/null", "x\n", "a file in a new path")
    finally:
        watch.interrupt()


def test_a_missing_path_outside_the_project_is_one_line(project: Project) -> None:
    project.write("""
        web:
          image: IMAGE
          command: sleep 600
          develop:
            watch:
              - path: /nonexistent-composer-watch/a
                action: sync
                target: /a
    """)
    result = project.run("watch", "--no-up", check=False)
    assert result.returncode != 0
    assert one_line(result) == "composer: develop.watch path /nonexistent-composer-watch/a does not exist"
