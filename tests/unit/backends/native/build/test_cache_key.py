"""The step cache's keys: a chain (the parent's key in each), and a COPY keyed by what it writes,
by content and metadata but never by mtime (as BuildKit's content checksums)."""

from __future__ import annotations

import os
from pathlib import Path

from composer.backends.native.build.cache_key import SCRATCH, image_key, plan_digest, step_key
from composer.backends.native.build.copy import ContextSource, plan_copy
from composer.backends.native.build.ignore import Matcher, parse
from composer.backends.native.build.rootfs import RootFS


def _digest(context: Path, ignore: str = "") -> str:
    plan = plan_copy(RootFS([]), "/", "/app/", [(ContextSource(context, Matcher(parse(ignore))), ".")], [],
                     chown=None, chmod=None)
    return plan_digest(plan)


def test_a_step_key_chains_its_parent_and_its_description() -> None:
    op = {"op": "RUN", "process": ["/bin/sh", "-c", "true"]}
    assert step_key(SCRATCH, op) == step_key(SCRATCH, dict(reversed(list(op.items()))))  # order-free
    assert step_key(SCRATCH, op) != step_key(image_key("sha256:" + "a" * 64), op)
    assert step_key(SCRATCH, op) != step_key(SCRATCH, {**op, "env": ["A=1"]})
    assert step_key(SCRATCH, op).startswith("sha256:")


def test_a_copy_is_keyed_by_content_not_mtime(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a\n")
    (tmp_path / "noise.log").write_text("x\n")
    first = _digest(tmp_path)
    os.utime(tmp_path / "sub" / "a.txt", (1, 1))
    os.utime(tmp_path / "sub", (2, 2))
    assert _digest(tmp_path) == first  # touched only
    (tmp_path / "sub" / "a.txt").write_text("b\n")
    changed = _digest(tmp_path)
    assert changed != first  # same size, other content
    os.chmod(tmp_path / "sub" / "a.txt", 0o600)
    assert _digest(tmp_path) != changed  # a mode is content too
    # an excluded file does not count
    ignored = _digest(tmp_path, "*.log")
    (tmp_path / "noise.log").write_text("other\n")
    assert _digest(tmp_path, "*.log") == ignored
    assert _digest(tmp_path) != ignored
