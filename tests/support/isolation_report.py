"""``make isolation-report``: the isolation probe on both backends and every setting, as a Markdown table.

Needs root, dockerd and Debian's docker-registry (``make test``'s set-up provides them). Starts its own
registry on 127.0.0.1, runs the probe (tests/support/isolation.py) and removes everything it made.
``--docs FILE`` also puts the table into that Markdown file, between its two marker comments
(docs/security.md keeps a copy)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

from tests.integration.registry import LocalRegistry, binary
from tests.support import isolation

START, END = "<!-- isolation-table:start -->", "<!-- isolation-table:end -->"


def collect(workdir: Path) -> dict[tuple[str, str], dict[str, str]]:
    """Verdicts per (setting, backend)."""
    from composer.backends.docker.client import connect, resolve_endpoint

    executable = binary()
    if executable is None:
        raise isolation.ProbeError("Debian's docker-registry is not installed")
    api = connect(resolve_endpoint(os.environ), timeout=120)
    results: dict[tuple[str, str], dict[str, str]] = {}
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--docs", help="also put the table into this Markdown file, between its markers")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="composer-probe-") as workdir:
        try:
            results = collect(Path(workdir))
        except isolation.ProbeError as exc:
            sys.stderr.write(f"isolation-report: {exc}\n")
            return 1
    text = isolation.table(results)
    sys.stdout.write(text + "\n")
    if args.docs:
        document = Path(args.docs)
        before, start, rest = document.read_text().partition(START)
        _, end, after = rest.partition(END)
        if not start or not end:
            sys.stderr.write(f"isolation-report: {document} has no {START} ... {END} section\n")
            return 1
        document.write_text(f"{before}{START}\n{text}\n{END}{after}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
