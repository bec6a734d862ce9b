"""scripts/vm-run: boot guests, run a command as root in the first, print its output, exit with its status.

    scripts/vm-run [--guests N] [--share DIR]... [--packages P,...] [--shell] -- COMMAND...

On failure it prints the guest's journal (last 100 lines).  --shell gives a root shell on the first
guest's serial console instead (leave it with ``poweroff``, or Ctrl-a x).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tests.vm.errors import VMError
from tests.vm.machine import Options, echo_to_stdout, guests

# What the guest's commands see of the caller's environment: CI decides between skip and fail.
PASSED_ENV = ("CI",)


def say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vm-run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--guests", type=int, default=1, metavar="N",
                        help="guests to boot (the command runs in the first)")
    parser.add_argument("--share", action="append", default=[], metavar="DIR",
                        help="a host folder, read-write at the same path in every guest")
    parser.add_argument("--packages", default="", metavar="P,...",
                        help="Debian packages the guests need beyond the base image's (another cached image)")
    parser.add_argument("--shell", action="store_true", help="a root shell on the first guest's serial console")
    parser.add_argument("command", nargs="*", help="the command (after --)")
    args = parser.parse_args(argv)
    if args.guests < 1:
        parser.error("--guests: at least 1")
    if not args.command and not args.shell:
        parser.error("a command after --, or --shell")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    options = Options(guests=args.guests, shares=tuple(Path(s).resolve() for s in args.share),
                      packages=tuple(p for p in args.packages.split(",") if p), shell=args.shell)
    started = time.monotonic()
    try:
        with guests(options, say) as booted:
            first = booted[0]
            if args.shell:
                assert first.process is not None
                first.process.wait()
                return 0
            env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
            say(f"vm: running {' '.join(args.command)} in {first.name} "
                f"({time.monotonic() - started:.1f} s after start)")
            result = first.run(args.command, env=env, echo=echo_to_stdout)
            say(f"vm: exit status {result.status} after {result.seconds:.1f} s "
                f"({time.monotonic() - started:.1f} s in all)")
            if result.status != 0:
                say(f"vm: the guest's journal (last 100 lines):\n{result.journal}")
            return result.status
    except VMError as exc:
        say(f"vm-run: {exc}")
        return 125
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
