"""``scale``, ``volumes``, ``down SERVICE...`` and ``ps --format`` through the CLI, the same checks
on every backend: what the commands print, and what the project holds after them (seen through
``ps`` and ``volumes``, which the backends' own tests check against the engine)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

Run = Callable[..., "subprocess.CompletedProcess[str]"]
"""Runs composer with the arguments in the project's folder (``check=False`` to get a failure)."""

STACK = """\
services:
  web:
    image: {image}
    command: ["sleep", "600"]
    init: true
    volumes: [data:/data, other:/other]
  db:
    image: {image}
    command: ["sleep", "600"]
    init: true
    volumes: [data:/data]
volumes:
  data:
  other:
    labels: {{team: blue}}
"""


def names(run: Run, *args: str) -> list[str]:
    return run("ps", "-a", *args, "--format", "{{.Name}}").stdout.split()


def check_commands(run: Run, project: str) -> None:
    run("up", "-d")
    # ps --format
    rows = [json.loads(line) for line in run("ps", "--format", "json").stdout.splitlines()]
    assert [(row["Name"], row["Service"], row["State"]) for row in rows] == [
        (f"{project}-db-1", "db", "running"), (f"{project}-web-1", "web", "running")]
    assert all(len(row["ID"]) == 12 for row in rows)
    web = rows[1]
    assert web["Networks"] == f"{project}_default"
    assert sorted(web["Mounts"].split(",")) == sorted(f"{project}_{key}"[:14] + "…" if len(f"{project}_{key}") > 15
                                                      else f"{project}_{key}" for key in ("data", "other"))
    assert web["LocalVolumes"] == "2"
    assert "com.docker.compose.service=web" in web["Labels"].split(",")
    assert (web["Size"], web["ExitCode"]) == ("0B", 0)
    assert all(len(json.loads(line)["ID"]) == 64 for line in run("ps", "--format", "json", "--no-trunc")
               .stdout.splitlines())
    assert run("ps", "--format", "table {{.Service}}\\t{{upper .State}}").stdout.splitlines() == [
        "SERVICE   STATE", "db        RUNNING", "web       RUNNING"]
    # volumes
    assert run("volumes").stdout.splitlines() == [
        "DRIVER    VOLUME NAME", f"local     {project}_data", f"local     {project}_other"]
    assert run("volumes", "db", "-q").stdout.split() == [f"{project}_data"]
    other = json.loads(run("volumes", "--format", "json").stdout.splitlines()[1])
    assert other["Name"] == f"{project}_other"
    assert "team=blue" in other["Labels"].split(",")
    assert other["Mountpoint"]
    # scale
    run("scale", "web=3")
    assert names(run) == [f"{project}-db-1", f"{project}-web-1", f"{project}-web-2", f"{project}-web-3"]
    run("scale", "web=1")
    assert names(run) == [f"{project}-db-1", f"{project}-web-1"]
    for bad, message in (("web", "invalid scale specifier: web"),
                         ("web=x", "invalid scale specifier: can't parse replica value as int: web=x"),
                         ("nope=1", "no such service: nope")):
        failed = run("scale", bad, check=False)
        assert failed.returncode != 0
        assert failed.stderr.strip().splitlines() == [f"composer: {message}"]
    # down SERVICE: only its containers; the network and the volumes db still uses stay
    run("down", "-v", "web")
    assert names(run) == [f"{project}-db-1"]
    assert run("volumes", "-q").stdout.split() == [f"{project}_data"]  # other was web's alone
    assert run("exec", "-T", "db", "echo", "alive").stdout == "alive\n"
    run("down", "-v")
    assert names(run) == []
    assert run("volumes", "-q").stdout == ""


def check_run_flags(run: Run, folder: object) -> None:
    """run --cap-add/--cap-drop/--env-from-file/-q/--quiet-pull on a one-off container."""
    from pathlib import Path

    env_file = Path(str(folder)) / "run.env"
    env_file.write_text("A=1\nB=${A}x\nC=c\n")
    done = run("run", "--rm", "-q", "--quiet-pull", "-T", "--env-from-file", str(env_file), "-e", "A=2",
               "--cap-drop", "CHOWN", "--cap-add", "NET_ADMIN", "db", "sh", "-c",
               "echo $A $B $C; grep CapEff /proc/self/status")
    lines = done.stdout.splitlines()
    assert lines[0] == "2 2x c"  # -e wins; the file's ${A} sees it (v2)
    effective = int(lines[1].split()[1], 16)
    assert effective & (1 << 12)  # CAP_NET_ADMIN added
    assert not effective & (1 << 0)  # CAP_CHOWN dropped
    assert effective & (1 << 5)  # CAP_KILL, a default, kept
    assert done.stderr == ""  # -q: no progress
    missing = run("run", "--rm", "-T", "--env-from-file", "/nonexistent.env", "db", "true", check=False)
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines() == [
        "composer: --env-from-file: Couldn't find env file: /nonexistent.env"]


def check_run_remove_orphans(run: Run, folder: object) -> None:
    """run --remove-orphans removes the containers of a service the file no longer declares."""
    from pathlib import Path

    compose = Path(str(folder)) / "compose.yaml"
    original = compose.read_text()
    run("up", "-d")
    compose.write_text(original[:original.index("  web:")] + original[original.index("  db:"):])
    try:
        assert run("run", "--rm", "-T", "db", "true").returncode == 0
        assert [name.rsplit("-", 2)[1] for name in names(run)] == ["db", "web"]  # without the flag: kept
        run("run", "--rm", "-T", "--remove-orphans", "db", "true")
        assert [name.rsplit("-", 2)[1] for name in names(run)] == ["db"]
    finally:
        compose.write_text(original)  # so that the project's down -v removes its volumes
