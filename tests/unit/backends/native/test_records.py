"""What the store keeps for a reboot: stop marks."""

from __future__ import annotations

from pathlib import Path

from composer.backends.native import records


def test_the_stop_mark_comes_and_goes(tmp_path: Path) -> None:
    records.remember_stop(tmp_path, True)
    assert (tmp_path / records.STOPPED).exists()
    records.remember_stop(tmp_path, False)
    records.remember_stop(tmp_path, False)
    assert not (tmp_path / records.STOPPED).exists()
    records.remember_stop(tmp_path / "gone", True)  # a removed container: nothing to mark, no error
