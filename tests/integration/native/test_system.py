"""``composer system check | df | prune`` and the reboot recovery, with real containers.

Docker has no ``system check``: dockerd owns its objects and cleans them at start. Here the
residue is made as a crash makes it (a project's run folder and network state lost while its
processes, links, rules and cgroups live on), ``check`` must list each kind, ``--fix`` remove them
without touching a live project beside it, and a second ``check`` find nothing. ``df`` and
``prune`` print what ``docker system df`` / ``prune`` print. The reboot is a new boot id recorded
for the run root and an emptied run root, after everything of the old boot was killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.network import firewall
from composer.backends.native.records import run_record
from composer.backends.native.trees import remove_tree
from tests.integration.native import test_lifecycle
from tests.integration.native.test_lifecycle import Env, Project, eventually
from tests.integration.registry import free_port
from tests.integration.timeouts import scaled

env = test_lifecycle.env
project = test_lifecycle.project

SLEEPER = """
web:
  image: IMAGE
  command: sleep 600
  ports: ["127.0.0.1:{port}:80"]
"""


def system(env: Env, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "composer", "--backend", "native", "system", *args], env=env.environ,
                          capture_output=True, text=True, timeout=scaled(120), input=stdin)


def ps(project: Project, *args: str) -> list[dict[str, Any]]:
    """``ps --format json``: one object a line, as v2 prints them."""
    return [json.loads(line) for line in project.run("ps", *args, "--format", "json").stdout.splitlines()
            if line.strip()]


def _json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_check_lists_a_lost_projects_residue_and_fix_removes_it_but_not_a_live_one(env: Env, project: Project,
                                                                                    tmp_path: Path) -> None:
    live = Project(env, tmp_path / "live")
    live.folder.mkdir()
    live.write(SLEEPER.format(port=free_port()))
    project.write(SLEEPER.format(port=free_port()))
    try:
        live.run("up", "-d")
        project.run("up", "-d")
        run_dir = project.run_dir()
        container = next(p for p in run_dir.iterdir() if (p / "config.json").is_file())
        config = _json(container / "config.json")
        state = _json(container / "state.json")
        supervisor = _json(run_dir / "supervisor.pid")["pid"]
        dns = _json(run_dir / "dns" / "pid.json")["pid"]
        network = next(n for n in (env.root / "run" / "networks").glob("cmp-*.json")
                       if _json(n)["project"] == project.name)
        bridge = _json(network)["bridge"]
        endpoint = _json(network)["endpoints"][container.name]
        proxy = endpoint["proxy"]["pid"]
        # the crash: the supervisor killed, the project's run folder and its network's state lost
        os.kill(supervisor, signal.SIGKILL)
        eventually(lambda: not _alive(supervisor))
        remove_tree(run_dir)
        network.unlink()

        found = system(env, "check")
        assert found.returncode == 1, found.stderr
        lines = found.stdout.splitlines()
        kinds = {line.split()[0] for line in lines}
        assert {"bridge", "veth", "iptables-rule", "cgroup", "monitor", "dns", "proxy", "container-data"} <= kinds
        assert any(line.startswith(f"bridge {bridge}:") for line in lines)
        assert any(line.startswith(f"veth {endpoint['veth']}:") for line in lines)
        assert any(line.startswith(f"dns {dns} ") for line in lines)
        assert any(line.startswith(f"proxy {proxy} ") for line in lines)
        assert any(line.startswith(f"monitor {state['monitor']} ") for line in lines)
        assert any(config["id"] in line for line in lines if line.startswith("container-data"))
        assert not any(live.name in line for line in lines), "the live project is not residue"
        as_json = [json.loads(line) for line in system(env, "check", "--format", "json").stdout.splitlines()]
        assert {"Kind", "Name", "Reason", "Project", "Removed", "Error"} <= set(as_json[0])
        assert len(as_json) == len(lines)

        fixed = system(env, "check", "--fix")
        assert fixed.returncode == 1
        assert all(line.startswith("removed ") for line in fixed.stdout.splitlines()), fixed.stdout
        again = system(env, "check")
        assert (again.returncode, again.stdout) == (0, ""), again.stdout
        assert not Path(f"/sys/class/net/{bridge}").exists()
        assert not Path(f"/sys/class/net/{endpoint['veth']}").exists()
        assert not any(bridge in line for line in firewall.composer_rules())
        assert not any(_alive(pid) for pid in (dns, proxy, state["monitor"], state["pid"]))
        assert not (env.root / "store" / "containers" / config["id"]).exists()
        assert "running" in live.run("ps", "--format", "json").stdout, "fix left the live project alone"
        assert system(env, "check", "--fix").stdout == "", "idempotent: nothing left to do"
    finally:
        live.down()


def test_df_and_prune_follow_docker(env: Env, project: Project) -> None:
    project.write("""
    web:
      image: IMAGE
      command: sleep 600
    job:
      image: IMAGE
      command: "true"
    """)
    project.run("up", "-d")
    eventually(lambda: '"exited"' in project.run("ps", "-a", "--format", "json").stdout)
    df = system(env, "df")
    assert df.returncode == 0, df.stderr
    lines = df.stdout.splitlines()
    assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert [line.split()[0] for line in lines[1:]] == ["Images", "Containers", "Local", "Build"]
    containers = lines[2].split()
    assert containers[1:3] == ["2", "1"], lines[2]
    rows = [json.loads(line) for line in system(env, "df", "--format", "json").stdout.splitlines()]
    assert [r["Type"] for r in rows] == ["Images", "Containers", "Local Volumes", "Build Cache"]
    assert rows[3] == {"Active": "0", "Reclaimable": "0B", "Size": "0B", "TotalCount": "0", "Type": "Build Cache"}

    refused = system(env, "prune", stdin="n\n")
    assert refused.returncode == 0
    assert "WARNING! This will remove:" in refused.stdout
    assert "all stopped containers" in refused.stdout
    assert project.run("ps", "-a", "--format", "json").stdout.count('"ID"') == 2, "n: nothing removed"
    assert system(env, "prune", "-f", "--filter", "bogus=1").returncode == 1
    kept = system(env, "prune", "-f", "--filter", "until=1h")
    assert kept.returncode == 0, kept.stderr
    assert "Deleted Containers:" not in kept.stdout, "created less than an hour ago: kept"
    pruned = system(env, "prune", "-f")
    assert pruned.returncode == 0, pruned.stderr
    assert "Deleted Containers:" in pruned.stdout
    assert pruned.stdout.rstrip().splitlines()[-1].startswith("Total reclaimed space: ")
    remaining = ps(project, "-a")
    assert [c["Service"] for c in remaining] == ["web"], "the running container stays"


def _pids_of(env: Env, project: Project) -> list[int]:
    """Every process the project has: supervisor, DNS, proxies, monitors and containers."""
    run_dir = project.run_dir()
    pids = []
    for name in ("supervisor.pid", "dns/pid.json"):
        with contextlib.suppress(OSError):
            pids.append(int(_json(run_dir / name)["pid"]))
    for child in run_dir.iterdir():
        with contextlib.suppress(OSError):
            state = _json(child / "state.json")
            pids += [int(state["monitor"]), int(state["pid"])]
            for hierarchy in state["cgroup"]["paths"].values():
                with contextlib.suppress(OSError):
                    pids += [int(p) for p in Path(hierarchy, "cgroup.procs").read_text().split()]
    for network in (env.root / "run" / "networks").glob("cmp-*.json"):
        for endpoint in _json(network).get("endpoints", {}).values():
            if endpoint.get("project") == project.name and endpoint.get("proxy"):
                pids.append(int(endpoint["proxy"]["pid"]))
    return pids


def _reboot(env: Env, project: Project) -> None:
    """What a reboot does to composer: every process, cgroup, link and rule gone, /run emptied;
    then a new boot id for the run root (the store keeps its record)."""
    for pid in _pids_of(env, project):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in _pids_of(env, project):
        eventually(lambda pid=pid: not _alive(pid))  # type: ignore[misc]
    bridges = [_json(n)["bridge"] for n in (env.root / "run" / "networks").glob("cmp-*.json")
               if _json(n)["project"] == project.name]
    for child in project.run_dir().iterdir():
        with contextlib.suppress(OSError):
            for hierarchy in _json(child / "state.json")["cgroup"]["paths"].values():
                eventually(lambda h=hierarchy: _rmdir(h))  # type: ignore[misc]
    for bridge in bridges:
        subprocess.run(["ip", "link", "del", bridge], check=False)
        with firewall.locked():
            firewall._remove_tagged(f"composer:net:{bridge}")
            firewall._remove_tagged(f"composer:port:{bridge}")
    remove_tree(env.root / "run")
    record = run_record(env.root / "store", env.root / "run")
    data = _json(record)
    record.write_text(json.dumps({**data, "boot_id": "00000000-0000-0000-0000-000000000000"}))


def _rmdir(path: str) -> bool:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def test_after_a_reboot_always_and_unless_stopped_come_back_and_stopped_ones_stay_stopped(
        env: Env, project: Project) -> None:
    project.write("""
    always:
      image: IMAGE
      command: sleep 600
      restart: always
    unless:
      image: IMAGE
      command: sleep 600
      restart: unless-stopped
    stopped:
      image: IMAGE
      command: sleep 600
      restart: unless-stopped
    plain:
      image: IMAGE
      command: sleep 600
    """)
    project.run("up", "-d")
    project.run("stop", "stopped")
    before = {c["Service"]: c for c in ps(project, "-a")}
    assert before["stopped"]["State"] == "exited"
    _reboot(env, project)
    started = time.monotonic()
    after = project.run("ps", "-a", "--format", "json")
    sys.stderr.write(f"first command after the reboot: {time.monotonic() - started:.2f}s\n{after.stderr}")
    listed = [json.loads(line) for line in after.stdout.splitlines() if line.strip()]
    states = {c["Service"]: c["State"] for c in listed}
    assert states == {"always": "running", "unless": "running", "stopped": "exited", "plain": "exited"}, states
    assert {c["Service"]: c["ID"] for c in listed} == {k: v["ID"] for k, v in before.items()}
    # as dockerd's restore: a stopped container keeps its exit code, one running at the reboot has 255
    codes = {c["Service"]: c["ExitCode"] for c in listed}
    assert codes["stopped"] == before["stopped"]["ExitCode"] == 137, (codes, before["stopped"])
    assert codes["plain"] == 255, codes
    # the network came back too: the containers reach each other by name
    assert project.run("exec", "always", "nslookup", "unless").returncode == 0
    project.run("start", "plain")
    assert '"running"' in project.run("ps", "plain", "--format", "json").stdout


def test_after_a_reboot_on_failure_weighs_the_last_exit_code_and_ps_shows_it(env: Env, project: Project) -> None:
    """Docker (moby's daemon.restore): a container running when the machine went down is stopped
    with 255, one that had exited keeps its exit code; then ``c.ShouldRestart()`` of each container
    started before: ``on-failure`` comes back when that code is not 0 and its max_attempts are not
    used up. The restart manager weighs a manual stop for ``unless-stopped`` alone, so an
    ``on-failure`` container stopped by the user (137) comes back too. ``ps -a`` shows the codes."""
    project.write("""
    running:
      image: IMAGE
      command: sleep 600
      restart: on-failure
    failed:
      image: IMAGE
      command: sh -c 'exit 3'
      restart: on-failure:2
    clean:
      image: IMAGE
      command: sh -c 'exit 0'
      restart: on-failure
    stopped:
      image: IMAGE
      command: sleep 600
      restart: on-failure
    plain:
      image: IMAGE
      command: sh -c 'exit 7'
    never:
      image: IMAGE
      command: sh -c 'exit 5'
      restart: on-failure
    """)
    project.run("up", "-d", "running", "failed", "clean", "stopped", "plain")
    project.run("create", "never")  # created, never started: Docker starts it not at boot (HasBeenStartedBefore)
    project.run("stop", "-t", "0", "stopped")

    def settled() -> dict[str, dict[str, Any]] | None:
        rows = {c["Service"]: c for c in ps(project, "-a")}
        failed = rows["failed"]["Name"]
        if rows["failed"]["State"] != "exited" or _json(project.run_dir() / failed / "supervise.json").get(
                "restarting") or _json(project.run_dir() / failed / "supervise.json").get("restart_count") != 2:
            return None
        return rows if all(rows[s]["State"] == "exited" for s in ("clean", "plain")) else None

    before = eventually(settled, timeout=60)
    assert {s: before[s]["ExitCode"] for s in ("failed", "clean", "stopped", "plain")} == {
        "failed": 3, "clean": 0, "stopped": 137, "plain": 7}, before
    assert before["never"]["State"] == "created", before["never"]
    _reboot(env, project)
    after = {c["Service"]: c for c in ps(project, "-a")}
    states = {s: (c["State"], c["ExitCode"]) for s, c in after.items()}
    sys.stderr.write(f"after the reboot: {states}\n")
    assert after["running"]["State"] == "running", states  # 255: a failure
    assert after["stopped"]["State"] == "running", states  # 137: a failure, the stop is not weighed
    assert states["failed"] == ("exited", 3), states  # its 2 attempts were used before the reboot
    assert states["clean"] == ("exited", 0), states
    assert states["plain"] == ("exited", 7), states
    assert after["never"]["State"] == "created", states
    assert {s: c["ID"] for s, c in after.items()} == {s: c["ID"] for s, c in before.items()}


def test_out_of_memory_is_reported_and_the_supervisor_survives(project: Project) -> None:
    """Docker: ``docker inspect`` says State.OOMKilled true and exit code 137. Here ``ps --format
    json`` (OOMKilled) says it, from the cgroup's OOM kill counter (v1 memory.oom_control, v2
    memory.events), and the project's supervisor, which watched it, lives on."""
    project.write("""
    hog:
      image: IMAGE
      command: ["sh", "-c", "sleep 1; x=$(head -c 200000000 /dev/zero | tr '\\\\0' a); echo done"]
      mem_limit: 24m
      memswap_limit: 24m
    keeper:
      image: IMAGE
      command: sleep 600
    """)
    project.run("up", "-d")
    supervisor = _json(project.run_dir() / "supervisor.pid")
    found = eventually(lambda: [c for c in ps(project, "-a")
                                if c["Service"] == "hog" and c["State"] == "exited"], timeout=60)
    assert found[0]["OOMKilled"] is True, found
    assert found[0]["ExitCode"] == 137, found
    keeper = next(c for c in ps(project) if c["Service"] == "keeper")
    assert keeper["OOMKilled"] is False
    assert _json(project.run_dir() / "supervisor.pid") == supervisor
    assert _alive(int(supervisor["pid"])), "the supervisor survived the OOM kill"


def _blobs_verified(store: Path) -> list[str]:
    """The store's blobs whose content is not what their name says (none may be partial)."""
    import hashlib

    folder = store / "blobs" / "sha256"
    return [p.name for p in folder.iterdir() if hashlib.sha256(p.read_bytes()).hexdigest() != p.name] \
        if folder.is_dir() else []


@pytest.mark.parametrize("size", ["300k", "1200k"], ids=["while-downloading", "while-unpacking"])
def test_a_pull_into_a_full_store_fails_in_one_line_leaves_no_partial_content_and_then_succeeds(
        env: Env, project: Project, tmp_path: Path, size: str) -> None:
    """Docker: ``write /var/lib/docker/...: no space left on device`` and the pull can be redone.
    Here the store on a tmpfs too small for the image: one line naming the store, nothing partial
    under blobs/ or layers/, and once there is room the same pull succeeds."""
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(small)], check=True)
    try:
        store = small / "store"
        project.env = Env(env.root, env.image, "unused")
        project.env.environ = {**env.environ, "COMPOSER_ROOT": str(store)}
        project.write("""
        web:
          image: IMAGE
        """)
        failed = project.run("pull", check=False)
        sys.stderr.write(failed.stderr)
        assert failed.returncode == 1
        errors = [line for line in failed.stderr.splitlines() if line.startswith("composer:")]
        assert len(errors) == 1, failed.stderr
        assert str(store) in errors[0]
        assert "no space left" in errors[0].lower()
        assert "Traceback" not in failed.stderr
        assert _blobs_verified(store) == []
        layers = list((store / "layers").iterdir()) if (store / "layers").is_dir() else []
        assert all((layer / "layer.json").is_file() for layer in layers), "only whole layers"
        assert not list((store / "tmp").iterdir())
        subprocess.run(["mount", "-o", "remount,size=64m", str(small)], check=True)
        again = project.run("pull", check=False)
        assert again.returncode == 0, again.stderr
        assert _blobs_verified(store) == []
        assert env.image in json.loads((store / "images.json").read_text())["images"]
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_check_judges_only_links_labelled_with_its_run_root(tmp_path: Path) -> None:
    """Three bridges named as composer names them: labelled with this run root (residue: no state
    lists it), with another run root that exists (not ours), and with no label (an older composer's
    or another's: only the default run root judges it). ``--fix`` removes the first alone."""
    import secrets

    from composer.backends.native.network import owners
    from composer.backends.native.residue import Scope, check

    ours, other = tmp_path / "run", tmp_path / "other-run"
    ours.mkdir()
    other.mkdir()
    names = [f"cmp-{secrets.token_hex(4)}" for _ in range(3)]
    try:
        for name in names:
            subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
        owners.label(names[0], ours)
        owners.label(names[1], other)
        scope = Scope(ours, tmp_path / "store", f"composer-none-{secrets.token_hex(4)}")
        found = [f for f in check(scope) if f.kind == "bridge"]
        assert [f.name for f in found if f.name in names] == [names[0]]
        fixed = [f for f in check(scope, fix=True) if f.name in names]
        assert [(f.name, f.removed) for f in fixed] == [(names[0], True)]
        assert not Path(f"/sys/class/net/{names[0]}").exists()
        assert all(Path(f"/sys/class/net/{name}").exists() for name in names[1:])
        assert [f for f in check(scope) if f.name in names] == []
    finally:
        for name in names:
            subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


def test_a_create_on_a_full_store_fails_in_one_line_and_leaves_nothing(env: Env, project: Project,
                                                                        tmp_path: Path) -> None:
    """The image is there, the store's filesystem is then filled: ``up`` fails in one line naming
    the store, leaves no container behind, and works once there is room again."""
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(small)], check=True)
    try:
        store = small / "store"
        project.env = Env(env.root, env.image, env.environ["COMPOSER_CGROUP_PARENT"])
        project.env.environ = {**env.environ, "COMPOSER_ROOT": str(store)}
        project.write("""
        web:
          image: IMAGE
          command: sleep 600
        """)
        project.run("pull")
        filler = small / "filler"
        with open(filler, "wb") as file, contextlib.suppress(OSError):
            while True:
                file.write(b"\0" * (1 << 16))
        failed = project.run("up", "-d", check=False)
        sys.stderr.write(failed.stderr)
        errors = [line for line in failed.stderr.splitlines() if line.startswith("composer:")]
        assert failed.returncode == 1
        assert len(errors) == 1, failed.stderr
        assert str(store) in errors[0]
        assert "no space left" in errors[0].lower()
        assert not list((store / "containers").iterdir()) if (store / "containers").is_dir() else True
        filler.unlink()
        project.run("up", "-d")
        assert '"running"' in project.run("ps", "--format", "json").stdout
        project.down()
    finally:
        project.down()
        subprocess.run(["umount", "-l", str(small)], check=False)
