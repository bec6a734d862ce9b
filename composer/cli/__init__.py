"""The ``composer`` command line: parses arguments, calls the library, prints, picks exit codes.

This is the only place that writes to the terminal or maps errors to exit codes: the
library raises ComposerError subclasses and never prints.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself is not imported: the client path must stay import-free
if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_ERROR = 1
EXIT_INTERNAL = 2
EXIT_INTERRUPTED = 130
# Start-up (pydantic models, docker-py) allocates a great deal and frees little, so the collector's
# default thresholds make it scan the growing heap many times over for nothing. With the freeze at the
# end, ~0.1 s of CPU less per run on a 2-vCPU machine.
GC_THRESHOLDS = (50_000, 50, 100)


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code.

    As the process's entry point (``argv`` None: the console script, ``python -m composer``)
    the command goes to the warm command server when one answers (composer/cli/client.py)."""
    if argv is None:
        from composer.cli.client import run_via_server

        code = run_via_server(list(sys.argv))
        if code is not None:
            return code
    return _in_process(argv)


def entry() -> None:
    """The process's entry point (the ``composer`` script, ``python -m composer``); never returns.

    A command the server ran leaves this process nothing to flush, join or free: it exits at
    once, without the interpreter's teardown (~3 ms of every command)."""
    from composer.cli.client import run_via_server

    code = run_via_server(list(sys.argv))
    if code is not None:
        os._exit(code)
    sys.exit(_in_process(None))


def _in_process(argv: Sequence[str] | None) -> int:
    entry = argv is None  # the process's entry point, not a caller's
    import gc

    if entry:
        gc.set_threshold(*GC_THRESHOLDS)
    try:
        return _main(argv)
    finally:
        if entry:
            gc.freeze()  # the process ends: spare its teardown a last scan of every object


def _main(argv: Sequence[str] | None) -> int:
    from composer.cli import parser as parsers
    from composer.errors import ComposerError

    parser = parsers.prebuilt or parsers.build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        from composer import faults
        from composer.cli import commands

        faults.check()  # a bad COMPOSER_FAULTS stops the command here, in one line
        return commands.run(args)
    except ComposerError as error:
        print(f"composer: {_one_line(error)}", file=sys.stderr)
        if error.hint:
            print(f"hint: {error.hint}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("composer: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except ModuleNotFoundError as error:  # a dependency missing from the environment, not a bug of ours
        if error.name is None or error.name.partition(".")[0] == "composer":
            return _internal(error)
        from composer.backends.select import missing_module

        missing = missing_module(error.name)
        print(f"composer: {missing}\nhint: {missing.hint}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as error:
        return _internal(error)


def _internal(error: BaseException) -> int:
    """A bug of ours: one line, unless debugging is asked for."""
    if os.environ.get("COMPOSER_DEBUG"):
        import traceback  # only when asked: importing it costs 5 ms on every run

        traceback.print_exception(error)
    print(f"composer: internal error: {type(error).__name__}: {error} "
          "(set COMPOSER_DEBUG=1 for details)", file=sys.stderr)
    return EXIT_INTERNAL
