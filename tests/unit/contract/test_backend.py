"""The contract's one rule with behaviour: the detach keys (Docker's escape proxy)."""

from __future__ import annotations

import pytest

from composer.contract.backend import DETACH_KEYS, DetachScanner


@pytest.mark.parametrize(("chunks", "passed", "detached"), [
    ([b"ls\r"], b"ls\r", False),
    ([b"a\x10\x11b"], b"a", True),  # what follows the sequence is not passed on
    ([b"a\x10", b"\x11"], b"a", True),  # split across reads
    ([b"\x10x"], b"\x10x", False),  # ctrl-p then another key: both passed on, in order
    ([b"\x10", b"x"], b"\x10x", False),
    ([b"\x10\x10\x11"], b"\x10", True),  # a second ctrl-p restarts the sequence
    ([b"\x11\x10"], b"\x11", False),  # ctrl-p held back: it may start the sequence
])
def test_detach_scanner(chunks: list[bytes], passed: bytes, detached: bool) -> None:
    scanner = DetachScanner(DETACH_KEYS)
    out = b""
    done = False
    for chunk in chunks:
        data, done = scanner.feed(chunk)
        out += data
        if done:
            break
    assert (out, done) == (passed, detached)


def test_no_detach_keys_pass_everything() -> None:
    assert DetachScanner(b"").feed(b"\x10\x11") == (b"\x10\x11", False)
