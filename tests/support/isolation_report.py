"""``make isolation-report``: the isolation probe on both backends and every setting, as a Markdown table.

Needs root, dockerd and Debian's docker-registry (``make test``'s set-up provides them). Starts its own
registry on 127.0.0.1, runs the probe (tests/support/isolation.py) and removes everything it made.
``--output FILE`` also writes the table there (docs/security.md keeps a copy)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

from tests.integration.registry import LocalRegistry, binary
from tests.support import isolation


def collect(workdir: Path) -> dict[tuple[str, str], dict[str, str]]:
    """Verdicts per (setting, backend)."""
    from composer.backends.docker.client import connect, resolve_endpoint
    import os

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
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", help="also write the table to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="composer-probe-") as workdir:
        try:
            results = collect(Path(workdir))
        except isolation.ProbeError as exc:
            print(f"isolation-report: {exc}", file=sys.stderr)
            return 1
    text = isolation.table(results)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
