"""The ``composer`` command line: parses arguments, calls the library, prints, picks exit codes.

This is the only place that writes to the terminal or maps errors to exit codes: the
library raises ComposerError subclasses and never prints.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from composer.cli.parser import build_parser
from composer.errors import ComposerError

EXIT_ERROR = 1
EXIT_INTERNAL = 2
EXIT_INTERRUPTED = 130


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        from composer.cli import commands

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
    except Exception as error:  # a bug of ours: one line, unless debugging is asked for
        if os.environ.get("COMPOSER_DEBUG"):
            import traceback  # only when asked: importing it costs 5 ms on every run

            traceback.print_exc()
        print(f"composer: internal error: {type(error).__name__}: {error} "
              "(set COMPOSER_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_INTERNAL
