"""Go's boolean flag values."""

from __future__ import annotations

import argparse

import pytest

from composer.cli.flags import flag_value


def test_go_booleans() -> None:
    assert [flag_value(word) for word in ("1", "t", "true", "TRUE", "True")] == [True] * 5
    assert [flag_value(word) for word in ("0", "f", "false", "FALSE", "False")] == [False] * 5
    with pytest.raises(argparse.ArgumentTypeError, match="invalid boolean value 'yes'"):
        flag_value("yes")
