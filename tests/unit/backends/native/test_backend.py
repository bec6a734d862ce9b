"""NativeBackend without a registry: backend choice, observe on an empty or tagged store, the
one-line refusals of build and of the container operations."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

from composer.backends.native.backend import NativeBackend
from composer.backends.native.image.aliases import image_aliases
from composer.backends.native.image.store import ImageRecord
from composer.backends.select import BackendChoice, backend_class, choose_backend
from composer.contract.backend import BuildSpec, ContainerRef
from composer.errors import NotFoundError, UnsupportedFeatureError
from composer.spec.models import ServiceConfig


def test_native_is_the_default_as_root_on_linux() -> None:
    assert choose_backend("native", {}).name == "native"
    assert choose_backend(None, {"COMPOSER_BACKEND": "docker"}).name == "docker"
    default = choose_backend(None, {})
    if sys.platform.startswith("linux") and os.geteuid() == 0 and os.path.exists("/proc/self/ns/net"):
        assert default == BackendChoice("native", "default on Linux as root with namespaces")
    else:
        assert default.name == "docker"
        assert default.reason.startswith("default: ")
    assert backend_class("native") is NativeBackend


def test_image_aliases() -> None:
    record = ImageRecord("docker.io/library/busybox:latest", "sha256:" + "1" * 64, "sha256:" + "2" * 64)
    assert {"busybox", "busybox:latest", "docker.io/library/busybox:latest", "library/busybox:latest",
            "sha256:" + "2" * 64} <= image_aliases(record)
    other = ImageRecord("127.0.0.1:5000/app/web:2", "sha256:" + "1" * 64, "sha256:" + "2" * 64)
    assert "127.0.0.1:5000/app/web:2" in image_aliases(other)
    assert "127.0.0.1:5000/app/web" not in image_aliases(other)


@pytest.mark.root  # observe refuses a caller who is not root (no rootless mode yet)
def test_observe_an_empty_store_and_one_line_refusals(tmp_path: Path) -> None:
    backend = NativeBackend(tmp_path / "root", environ={"COMPOSER_RUN_ROOT": str(tmp_path / "run")})

    async def main() -> None:
        observed = await backend.observe("demo")
        assert (observed.containers, observed.images) == ((), frozenset())
        assert await backend.list_images([]) == []
        service = ServiceConfig.model_validate({"name": "web", "build": {"context": str(tmp_path),
                                                                         "ssh": ["default"]}})
        with pytest.raises(UnsupportedFeatureError) as refused:
            await backend.build_image(BuildSpec("demo", service, "demo-web", {}), sink=None)  # type: ignore[arg-type]
        assert str(refused.value) == ("service web: build.ssh is not supported by the native builder yet "
                                      "(use --backend docker)")
        with pytest.raises(NotFoundError, match="No such container: demo-web-1") as missing:
            await backend.start_container(ContainerRef("x", "demo-web-1"))
        assert "\n" not in str(missing.value)
        assert missing.value.hint is None
        with pytest.raises(NotFoundError, match=r"^No such container: demo-web-1$"):
            await backend.copy_from_container(ContainerRef("x", "demo-web-1"), "/etc")
        await backend.aclose()
        assert not (tmp_path / "run" / "demo").exists()

    anyio.run(main)
