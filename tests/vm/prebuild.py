"""``python -m tests.vm.prebuild [PACKAGE...]``: the guest image with these extra packages, built when missing.

``make vm-image`` runs it (and ``make test`` through it), so that a fresh machine builds the image the
focused guest run boots before the run (debootstrap, 3-5 minutes once; cached by recipe under
/var/cache/composer-vm, tests/vm/image.py).  Without root or the tools it says so and exits 0, except
under CI=true, where it fails.  (Not in image.py: that file's text is part of the recipe's hash.)
"""

from __future__ import annotations

import sys
import time

from tests.vm import prerequisites
from tests.vm.errors import VMError
from tests.vm.image import ensure_image


def say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def main(argv: list[str]) -> int:
    missing = prerequisites.missing()
    if missing:
        say(f"vm-image: {'CI=true and ' if prerequisites.on_ci() else 'skipped: '}{missing}")
        return 1 if prerequisites.on_ci() else 0
    started = time.monotonic()
    try:
        image = ensure_image(argv, say)
    except VMError as exc:
        say(f"vm-image: {exc}")
        return 1
    say(f"vm-image: {image.folder} ({', '.join(argv) or 'the base packages'}; {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
