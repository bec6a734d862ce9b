"""``watch``'s decisions: the services and rules it takes or refuses, which rule a changed path
falls under, and what a batch of changes asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import UnsupportedFeatureError, UsageError
from composer.planner.watch import check_rules, initial_sync, plan_batch, selected, triggers
from tests.unit.conftest import LoadFn

RULES = """
services:
  web:
    image: busybox
    build: .
    volumes: ["./shared:/shared"]
    develop:
      watch:
        - {path: ./app, action: sync, target: /srv, ignore: ["*.tmp", "cache/"], include: ["*.py", "*.txt", "sub"]}
        - {path: ./conf, action: sync+restart, target: /etc/app}
        - {path: ./hooks, action: sync+exec, target: /hooks, exec: {command: ["make"]}}
        - {path: ./req.txt, action: rebuild}
        - {path: ./shared/x, action: sync, target: /x}
        - {path: ./restart, action: restart}
  db:
    image: busybox
"""


def test_batches_follow_the_rules(load: LoadFn, tmp_path: Path) -> None:
    project = load(RULES)
    services = selected(project, ())
    assert [service.name for service in services] == ["web"]
    found, paths, warnings = triggers(services)
    root = str(tmp_path)
    assert f"{root}/shared/x" not in paths  # a bind mount shares it already
    assert warnings == [f"path '{root}/shared/x' also declared by a bind mount volume, this path won't be monitored!"]
    present = {f"{root}/app/a.py": True, f"{root}/app/gone.txt": False, f"{root}/app/b.tmp": True,
               f"{root}/app/cache/c.py": True, f"{root}/app/other.md": True, f"{root}/app/sub/d.bin": True,
               f"{root}/app/.a.py.swp": True, f"{root}/conf/c.ini": True, f"{root}/hooks/h": True,
               f"{root}/hooks/i": True, f"{root}/req.txt": True, f"{root}/restart/x": True, f"{root}/elsewhere": True}
    batch = plan_batch(found, present, present)
    assert batch.rebuild == ("web",)
    assert batch.restart == ("web",)
    assert [hook.command for _, hook in batch.exec] == [("make",)]  # once, however many files
    sync = batch.sync["web"]
    assert sorted(m.container_path or "" for m in sync.copy) == [
        "/etc/app/c.ini", "/hooks/h", "/hooks/i", "/srv/a.py", "/srv/sub/d.bin"]
    assert sync.delete == ("/srv/gone.txt",)
    assert plan_batch(found, [f"{root}/app/b.tmp"], {f"{root}/app/b.tmp": True}).is_empty


def test_selection_and_refusals(load: LoadFn) -> None:
    project = load(RULES)
    with pytest.raises(UsageError, match="none of the selected services is configured for watch"):
        selected(project, ("db",))
    with pytest.raises(UsageError, match="no such service: nope"):
        selected(project, ("nope",))
    services = selected(project, ("web",))
    with pytest.raises(UnsupportedFeatureError) as refused:
        check_rules(services, can_build=False, backend="native", build=None)
    assert str(refused.value) == ('service "web": develop.watch action rebuild needs an image build, which the '
                                  "native backend cannot do yet")
    with pytest.raises(UsageError, match="--no-build is incompatible with watch action rebuild in service web"):
        check_rules(services, can_build=True, backend="docker", build=False)
    check_rules(services, can_build=True, backend="docker", build=None)
    no_build = load("services:\n  web:\n    image: x\n    develop:\n      watch: [{path: ., action: rebuild}]\n")
    with pytest.raises(UsageError, match='can\'t watch service "web" with action rebuild without a build context'):
        check_rules(selected(no_build, ()), can_build=True, backend="docker", build=None)


def test_initial_sync_skips_ignored_compose_and_dockerfiles(load: LoadFn, tmp_path: Path) -> None:
    for name in ("app/a.txt", "app/sub/b.txt", "app/x.tmp", "app/Dockerfile", "app/compose.yaml", "app/cache/c.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    project = load(RULES)
    found, _, _ = triggers(selected(project, ()))
    mappings = initial_sync(found[0], project.services["web"])
    assert [(m.host_path, m.container_path) for m in mappings] == [
        (str(tmp_path / "app/a.txt"), "/srv/a.txt"), (str(tmp_path / "app/sub/b.txt"), "/srv/sub/b.txt")]
