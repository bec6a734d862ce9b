"""The native system commands' label filter (docker's label= / label!=)."""

from __future__ import annotations

from composer.backends.native.system import matches_labels


def test_label_filters() -> None:
    labels = {"a": "1", "b": "2"}
    assert matches_labels(labels, ())
    assert matches_labels(labels, ("a", "b=2"))
    assert not matches_labels(labels, ("a=2",))
    assert not matches_labels(labels, ("!a",))
    assert matches_labels(labels, ("!c", "!a=2"))
