"""compose-go's ExtractVariables, as ``config --variables`` lists them."""

from __future__ import annotations

from composer.spec.variables import Variable, extract


def test_extract() -> None:
    model = {"services": {"a": {"image": "${IMG:-busybox}", "command": ["$A", "$$B", "${C?x}", "x${D+on}y",
                                                                      "${E:-${F}}", "${BROKEN"],
                                "${KEY}": "v"}}}
    assert extract(model) == {
        "IMG": Variable("IMG", default="busybox"), "A": Variable("A"), "C": Variable("C", required=True),
        "D": Variable("D", presence="on"), "E": Variable("E", default="${F}"), "F": Variable("F"),
        "KEY": Variable("KEY")}
    assert extract({"a": "$X ${X:-d} $X"}) == {"X": Variable("X", default="d")}  # the fuller spelling stays
