#!/usr/bin/python3
"""The guest's agent (composer-vm-agent.service): runs the host's commands and hands back their results.

Everything goes through the job folder, the 9p share ``composer-job`` mounted at /run/composer-vm:
the host writes ``config.json`` before boot, then ``<id>.cmd`` (JSON: argv, env, cwd) per command; the
agent runs each as root and writes ``<id>.out`` (stdout and stderr), then ``<id>.rc`` (the exit status;
written last, so its presence means done) and, on a non-zero status, ``<id>.journal`` (the journal's last
100 lines).  ``poweroff`` in the folder powers the guest off.  ``ready`` says the guest is set up.
Polling a 9p folder (0.1 s) is the simplest channel that needs nothing on either side but files.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

JOB = Path("/run/composer-vm")
SOURCE_LINK = Path("/opt/composer/src")
JOURNAL_LINES = 100


def sh(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"agent: {' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")


def mount_9p(tag: str, path: str, readonly: bool) -> None:
    Path(path).mkdir(parents=True, exist_ok=True)
    options = "trans=virtio,version=9p2000.L,msize=524288,cache=loose" if readonly else \
        "trans=virtio,version=9p2000.L,msize=524288"
    sh("mount", "-t", "9p", "-o", options + (",ro" if readonly else ""), tag, path)


def interface_by_mac(mac: str, wait: float = 60.0) -> str:
    """The NIC's name; udev may still be loading virtio_net when the agent starts, hence the wait."""
    deadline = time.monotonic() + wait
    while True:
        for link in Path("/sys/class/net").iterdir():
            address = (link / "address").read_text().strip() if (link / "address").exists() else ""
            if address == mac.lower():
                return link.name
        if time.monotonic() > deadline:
            raise SystemExit(f"agent: no interface with MAC {mac} after {wait:.0f} s")
        time.sleep(0.1)


def set_up(config: dict[str, Any]) -> None:
    sh("hostname", str(config["hostname"]))
    repo = str(config["repo"])
    mount_9p("composer-repo", repo, readonly=True)
    if SOURCE_LINK.is_symlink() or SOURCE_LINK.exists():
        SOURCE_LINK.unlink()
    SOURCE_LINK.symlink_to(repo)
    for index, share in enumerate(config.get("shares") or []):
        mount_9p(f"composer-share{index}", str(share), readonly=False)
    hosts = ["127.0.0.1 localhost", f"127.0.1.1 {config['hostname']}"]
    for nic in config.get("nics") or []:
        name = interface_by_mac(nic["mac"])
        sh("ip", "link", "set", name, "up")
        sh("ip", "address", "add", nic["address"], "dev", name)
        if nic.get("gateway"):
            sh("ip", "route", "add", "default", "via", nic["gateway"], "dev", name)
    for peer, address in (config.get("peers") or {}).items():
        hosts.append(f"{address} {peer}")
    Path("/etc/hosts").write_text("\n".join(hosts) + "\n")


def run(command_file: Path) -> None:
    request = json.loads(command_file.read_text())
    stem = command_file.with_suffix("")
    env = {**os.environ, **request.get("env", {})}
    with stem.with_suffix(".out").open("wb") as output:
        try:
            status = subprocess.run(request["argv"], stdin=subprocess.DEVNULL, stdout=output,
                                    stderr=subprocess.STDOUT, env=env, cwd=request.get("cwd") or "/",
                                    check=False).returncode
        except OSError as exc:
            output.write(f"composer-vm: cannot run {request['argv'][0]}: {exc}\n".encode())
            status = 127
    if status != 0:
        journal = subprocess.run(["journalctl", "--no-pager", "-n", str(JOURNAL_LINES)], capture_output=True,
                                 check=False)
        stem.with_suffix(".journal").write_bytes(journal.stdout + journal.stderr)
    temporary = stem.with_suffix(".rc.tmp")
    temporary.write_text(f"{status}\n")
    temporary.rename(stem.with_suffix(".rc"))


def main() -> None:
    config = json.loads((JOB / "config.json").read_text())
    set_up(config)
    uptime = Path("/proc/uptime").read_text().split()[0]
    (JOB / "ready.tmp").write_text(f"{uptime}\n")  # the guest's uptime when ready (the rest: before its kernel)
    (JOB / "ready.tmp").rename(JOB / "ready")
    done: set[str] = set()
    while True:
        names = set(os.listdir(JOB))
        if "poweroff" in names:
            os.sync()
            subprocess.run(["systemctl", "poweroff", "--no-block"], check=False)
            return
        for name in sorted(names):
            if name.endswith(".cmd") and name not in done:
                done.add(name)
                # Each in a thread of its own: a second command (a look at a hung test) need not wait.
                threading.Thread(target=run, args=(JOB / name,), daemon=True).start()
        time.sleep(0.1)


if __name__ == "__main__":
    main()
