"""The one knob for the tests' subprocess time-outs: COMPOSER_TEST_TIMEOUT_SCALE (a positive number,
default 1) multiplies them. tests/vm/focused.py sets it for guests under TCG, where an emulated
CPU on a loaded host makes a small project's ``up -d`` take over a minute. Timings are never
asserted (house rules); a time-out only stops a hung command."""

from __future__ import annotations

import os

SCALE_VARIABLE = "COMPOSER_TEST_TIMEOUT_SCALE"


def scaled(seconds: float) -> float:
    """``seconds`` times the scale; a malformed scale is an error, not silently 1."""
    text = os.environ.get(SCALE_VARIABLE, "1")
    try:
        scale = float(text)
    except ValueError:
        scale = 0.0
    if not scale > 0:
        raise ValueError(f"{SCALE_VARIABLE}={text!r}: expected a positive number")
    return seconds * scale
