"""NativeBackend without a registry: backend choice, observe on an empty or tagged store, the
one-line refusals of build and of the container operations."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from composer.backends import backend_class
from composer.backends.base import BuildSpec, ContainerRef
from composer.backends.native.backend import NativeBackend, image_aliases
from composer.backends.native.image.store import ImageRecord
from composer.backends.select import choose_backend
from composer.errors import UnsupportedFeatureError
from composer.spec.models import ServiceConfig


def test_native_is_accepted_but_not_the_default() -> None:
    assert choose_backend("native", {}).name == "native"
    assert choose_backend(None, {"COMPOSER_BACKEND": "native"}).name == "native"
    default = choose_backend(None, {})
    assert default.name == "docker"
    assert backend_class("native") is NativeBackend


def test_image_aliases() -> None:
    record = ImageRecord("docker.io/library/busybox:latest", "sha256:" + "1" * 64, "sha256:" + "2" * 64)
    assert {"busybox", "busybox:latest", "docker.io/library/busybox:latest", "library/busybox:latest",
            "sha256:" + "2" * 64} <= image_aliases(record)
    other = ImageRecord("127.0.0.1:5000/app/web:2", "sha256:" + "1" * 64, "sha256:" + "2" * 64)
    assert "127.0.0.1:5000/app/web:2" in image_aliases(other)
    assert "127.0.0.1:5000/app/web" not in image_aliases(other)


def test_observe_an_empty_store_and_one_line_refusals(tmp_path: Path) -> None:
    backend = NativeBackend(tmp_path / "root")

    async def main() -> None:
        observed = await backend.observe("demo")
        assert (observed.containers, observed.images) == ((), frozenset())
        assert await backend.list_images([]) == []
        service = ServiceConfig.model_validate({"name": "web", "build": {"context": "."}})
        with pytest.raises(UnsupportedFeatureError) as refused:
            await backend.build_image(BuildSpec("demo", service, "demo-web", {}), sink=None)  # type: ignore[arg-type]
        assert str(refused.value) == ("service web has build: ; the native backend cannot build images yet "
                                      "(use --backend docker)")
        with pytest.raises(UnsupportedFeatureError, match="not available yet on the native backend") as missing:
            await backend.start_container(ContainerRef("x", "demo-web-1"))
        assert "\n" not in str(missing.value)
        assert missing.value.hint is None

    anyio.run(main)
