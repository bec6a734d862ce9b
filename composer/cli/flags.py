"""Values of flags as Go's flag package reads them (the docker CLI's)."""

from __future__ import annotations

import argparse


def flag_value(text: str) -> bool:
    """A Go flag's boolean value (``--orphans=false``): strconv.ParseBool's words."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")
