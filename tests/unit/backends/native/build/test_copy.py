"""COPY's sources: the build context's walk (what a COPY of a folder writes and its cache key
reads), in the order BuildKit's fsutil walks it, with ``.dockerignore`` applied."""

from __future__ import annotations

import stat
from pathlib import Path

from composer.backends.native.build.copy import ContextSource, plan_copy
from composer.backends.native.build.ignore import Matcher, parse
from composer.backends.native.build.rootfs import RootFS


def test_the_context_walk_lists_a_folder_before_its_contents_sorted_without_what_is_ignored(tmp_path: Path) -> None:
    for name in ("b/z.txt", "b/a.txt", "a.txt", "logs/keep.txt", "logs/drop.txt", "tmp/x.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / "link").symlink_to("a.txt")
    source = ContextSource(tmp_path, Matcher(parse("logs\n!logs/keep.txt\ntmp\n")))
    items = list(source.walk(()))
    # an excluded folder stays only for what an exception re-includes below it
    assert [item.parts for item in items] == [(), ("a.txt",), ("b",), ("b", "a.txt"), ("b", "z.txt"), ("link",),
                                             ("logs",), ("logs", "keep.txt")]
    assert [str(item.host) for item in items][1:4] == [str(tmp_path / "a.txt"), str(tmp_path / "b"),
                                                       str(tmp_path / "b" / "a.txt")]
    assert stat.S_ISLNK(items[5].info.st_mode)  # lstat: a link below the named source is copied as a link
    assert list(source.walk(("tmp",))) == []  # excluded with all it holds

    # a named folder copies its contents; a named file is itself
    plan = plan_copy(RootFS([]), "/", "/app/", [(source, "b")], [], chown=None, chmod=None)
    assert [path for path in plan.entries if path[:1] == ("app",)] == [("app",), ("app", "a.txt"), ("app", "z.txt")]
    plan = plan_copy(RootFS([]), "/", "/app/", [(source, "b/z.txt")], [], chown=None, chmod=None)
    assert list(plan.entries) == [("app",), ("app", "z.txt")]
