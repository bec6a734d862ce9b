"""Build the compiled ``composer`` client (composer/cli/client.c) for this installation.

``python -m composer.cli.build_client OUTPUT`` compiles client.c with the C compiler (``$CC``,
else ``cc``) and puts the program at OUTPUT (replaced at once, never half-written). What it
compiles in (client_identity.h) ties it to this installation: the interpreter it falls back to
(``sys.executable``) and the identity client.py's ``server_key`` hashes, so both clients find
the same command server. The Makefile's install builds it over the ``composer`` script; without
a compiler the script stays, and is only ~10 ms slower to start.

Exit status 0 when built, 1 with a one-line reason when not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from composer.cli.client import identity

SOURCE = Path(__file__).with_name("client.c")


class BuildError(Exception):
    """The client could not be built (no compiler, or it failed)."""


def c_string(data: bytes) -> str:
    """``data`` as a C string literal (octal escapes: a digit after one cannot extend it)."""
    plain = set(range(0x20, 0x7F)) - {ord('"'), ord("\\"), ord("?")}
    return '"' + "".join(chr(byte) if byte in plain else f"\\{byte:03o}" for byte in data) + '"'


def identity_header(python: str | None = None) -> str:
    installation = b"\0".join(identity())
    return (f"#define COMPOSER_PYTHON {c_string(os.fsencode(python or sys.executable))}\n"
            f"#define COMPOSER_IDENTITY {c_string(installation)}\n"
            f"#define COMPOSER_IDENTITY_SIZE {len(installation)}\n")


def build(output: Path, compiler: str | None = None, python: str | None = None) -> None:
    """Compile the client to ``output`` (falling back to ``python``, default this interpreter).

    :raises BuildError: no C compiler, or it failed (its last line of output).
    """
    chosen = compiler or os.environ.get("CC") or "cc"
    if shutil.which(chosen) is None:
        raise BuildError(f"no C compiler ({chosen}) to build the composer client with")
    with tempfile.TemporaryDirectory(prefix="composer-client-") as folder:
        (Path(folder) / "client_identity.h").write_text(identity_header(python))
        built = Path(folder) / "composer"
        result = subprocess.run([chosen, "-O2", "-Wall", "-Wextra", "-I", folder, "-o", str(built), str(SOURCE)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines() or [f"exit status {result.returncode}"]
            raise BuildError(f"cannot build the composer client: {lines[-1]}")
        staged = output.with_name(f".{output.name}.new")
        shutil.copyfile(built, staged)
        staged.chmod(0o755)
        os.replace(staged, output)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m composer.cli.build_client OUTPUT", file=sys.stderr)
        return 2
    try:
        build(Path(argv[1]))
    except (BuildError, OSError) as exc:
        print(f"composer: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
