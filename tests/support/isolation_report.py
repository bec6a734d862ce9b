"""``make isolation-report``: the isolation probe on both backends and every setting, as a Markdown table.

Needs root, dockerd and Debian's docker-registry (``make test``'s set-up provides them). Starts its own
registry on 127.0.0.1, runs the probe (tests/support/isolation.py) and removes everything it made.
``--docs FILE`` also puts the table into that Markdown file, between its two marker comments
(docs/security.md keeps a copy).

``--guest`` adds the columns of another host kind: the same probe in a Debian 12 guest of the guest lane
(tests/vm: kernel 6.1, pure cgroup v2 under systemd, with Debian's dockerd for the docker column), which
runs this module with ``--json FILE`` (the verdicts and the host's facts, into a shared folder).  Each
column is labelled with its host's cgroup layout (``hybrid``, ``v2``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.integration.registry import LocalRegistry, binary
from tests.support import isolation
from tests.vm.errors import VMError

START, END = "<!-- isolation-table:start -->", "<!-- isolation-table:end -->"
Results = dict[tuple[str, str], dict[str, str]]  # (setting, backend) -> check -> verdict


def collect(workdir: Path) -> Results:
    """Verdicts per (setting, backend)."""
    from composer.backends.docker.client import connect, resolve_endpoint

    executable = binary()
    if executable is None:
        raise isolation.ProbeError("Debian's docker-registry is not installed")
    api = connect(resolve_endpoint(os.environ), timeout=120)
    results: Results = {}
    with LocalRegistry(executable) as registry:
        reference = isolation.publish_image(api, registry.host, workdir)
        cgroup_parent = f"composer-probe-{uuid.uuid4().hex[:8]}"
        runs = {"docker": isolation.Run("docker", isolation.docker_environment()),
                "native": isolation.Run("native", isolation.native_environment(workdir / "native", cgroup_parent))}
        try:
            with isolation.host_loopback_service() as port:
                for setting in isolation.SETTINGS:
                    for backend in isolation.BACKENDS:
                        try:
                            results[(setting, backend)] = isolation.run_probe(runs[backend], reference, setting,
                                                                             port, workdir)
                        except isolation.ProbeError as exc:
                            results[(setting, backend)] = {"probe.error": isolation.last_line(str(exc))}
        finally:
            api.remove_image(reference, force=True)
            api.close()
            isolation.remove_cgroup_parent(cgroup_parent)
    return results


def run_in_guest(say: Callable[[str], None]) -> tuple[isolation.HostFacts, Results]:
    """This module with --json in a guest of the guest lane (dockerd and docker-registry in it)."""
    from tests.vm.focused import PACKAGES
    from tests.vm.machine import Options, guests

    with tempfile.TemporaryDirectory(prefix="composer-guest-out-") as folder, \
            guests(Options(packages=PACKAGES, shares=(Path(folder),)), say) as (guest,):
        output = Path(folder) / "verdicts.json"
        result = guest.run(["python", "-m", "tests.support.isolation_report", "--json", str(output)])
        if result.status != 0:
            raise isolation.ProbeError(f"the probe in the guest exited {result.status}:\n{result.output}\n"
                                       f"--- the guest's journal (last 100 lines):\n{result.journal}")
        return load(output)


def dump(path: Path, facts: isolation.HostFacts, results: Results) -> None:
    path.write_text(json.dumps({"facts": {"cgroup_mode": facts.cgroup_mode, "kernel": facts.kernel,
                                          "kernel_answers": dict(facts.kernel_answers), "bounding": facts.bounding},
                                "results": [{"setting": setting, "backend": backend, "verdicts": verdicts}
                                            for (setting, backend), verdicts in results.items()]}, indent=1))


def load(path: Path) -> tuple[isolation.HostFacts, Results]:
    data = json.loads(path.read_text())
    facts = isolation.HostFacts(**data["facts"])
    return facts, {(entry["setting"], entry["backend"]): entry["verdicts"] for entry in data["results"]}


def legend(hosts: dict[str, isolation.HostFacts], guest: str | None) -> str:
    return "Columns by host kind: " + "; ".join(
        f"`{label}`: {facts.kind} ({'a Debian 12 guest of the guest lane' if label == guest else 'this host'})"
        for label, facts in hosts.items()) + "."


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--docs", help="also put the table into this Markdown file, between its markers")
    parser.add_argument("--json", help="write the verdicts and this host's facts to this file instead of a table")
    parser.add_argument("--guest", action="store_true", help="add the columns of a Debian 12 guest (pure cgroup v2)")
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        sys.stderr.write(message + "\n")

    facts = isolation.HostFacts.of_this_host()
    with tempfile.TemporaryDirectory(prefix="composer-probe-") as workdir:
        try:
            results = collect(Path(workdir))
        except isolation.ProbeError as exc:
            say(f"isolation-report: {exc}")
            return 1
    if args.json:
        dump(Path(args.json), facts, results)
        return 0
    kinds = {facts.cgroup_mode: facts}
    hosts = {facts.cgroup_mode: results}
    guest_label = None
    if args.guest:
        try:
            guest_facts, guest_results = run_in_guest(say)
        except (isolation.ProbeError, VMError) as exc:
            say(f"isolation-report: {exc}")
            return 1
        guest_label = guest_facts.cgroup_mode if guest_facts.cgroup_mode != facts.cgroup_mode else "guest"
        kinds[guest_label], hosts[guest_label] = guest_facts, guest_results
    text = (legend(kinds, guest_label) + "\n\n" if len(hosts) > 1 else "") + isolation.table(hosts)
    sys.stdout.write(text + "\n")
    if args.docs:
        document = Path(args.docs)
        before, start, rest = document.read_text().partition(START)
        _, end, after = rest.partition(END)
        if not start or not end:
            say(f"isolation-report: {document} has no {START} ... {END} section")
            return 1
        document.write_text(f"{before}{START}\n{text}\n{END}{after}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
