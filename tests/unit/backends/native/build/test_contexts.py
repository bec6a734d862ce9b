"""build.additional_contexts parsed into named contexts: the kinds and the one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.backends.native.build.contexts import FolderContext, ImageContext, named_contexts
from composer.errors import ImageBuildError, UnsupportedFeatureError


def test_each_kind_of_context(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("*.log\n")
    found = named_contexts("app", {"files": str(tmp_path), "img": "docker-image://busybox:1", "base": "service:base"},
                           {"base": "demo-base"})
    folder = found["files"]
    assert isinstance(folder, FolderContext)
    assert folder.path == tmp_path
    assert folder.matcher.excluded("x.log")  # the folder's own .dockerignore
    assert found["img"] == ImageContext("busybox:1", pull=True)
    assert found["base"] == ImageContext("demo-base", pull=False)  # a service's image is never pulled


@pytest.mark.parametrize(("value", "error", "message"), [
    ("/nowhere/at-all", ImageBuildError, "build.additional_contexts.x: /nowhere/at-all is not a folder"),
    ("docker-image://", ImageBuildError, "build.additional_contexts.x: 'docker-image://' names no image"),
    ("service:nope", ImageBuildError, "build.additional_contexts.x: service:nope: no such service"),
    ("oci-layout:///l", UnsupportedFeatureError, "build.additional_contexts.x: oci-layout:///l is not supported"),
    ("https://example.invalid/c.tar", UnsupportedFeatureError, "is not supported"),
    ("relative/folder", UnsupportedFeatureError, "is not supported"),
    ("", ImageBuildError, "a name and a value are needed"),
])
def test_bad_contexts_are_one_line(value: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=r"^service app: [^\n]*$") as raised:
        named_contexts("app", {"x": value}, {})
    assert message in str(raised.value)
