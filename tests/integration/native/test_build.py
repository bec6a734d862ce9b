"""Real builds with the native builder into a tmp store: FROM (the busybox test image pulled from
the local registry, and scratch), metadata through image_config, COPY from the context with
.dockerignore, --chown/--chmod and Docker's destination rules, COPY --from, multi-stage targets,
and the one-line refusals of what is not built yet. The result is checked in the store: the
record, its config and history, and the files of its layers as overlay would show them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import anyio
import pytest

from composer.backends.native.backend import NativeBackend
from composer.backends.native.build.rootfs import RootFS
from composer.backends.native.image.store import ImageStore
from composer.contract.backend import BuildSpec
from composer.errors import ImageBuildError, UnsupportedFeatureError
from composer.events import ListSink
from composer.spec.models.service import ServiceConfig
from tests.integration.registry import LocalRegistry


def build(store: ImageStore, context: Path, dockerfile: str, *, image: str = "demo-web", target: str | None = None,
          tags: tuple[str, ...] = (), labels: dict[str, str] | None = None, **build: object) -> RootFS:
    (context / "Dockerfile").write_text(dockerfile)
    service = ServiceConfig.model_validate({"name": "web", "build": {"context": str(context), "target": target,
                                                                     **build}})
    backend = NativeBackend(store.root)
    anyio.run(backend.build_image, BuildSpec("demo", service, image, labels or {}, tags=tags), ListSink())
    record = backend.store.get(f"docker.io/library/{image}:latest")
    assert record is not None
    assert record.source == "build"
    return RootFS([layer.path for layer in backend.store.layers(record)])


def config_of(store: ImageStore, image: str = "demo-web") -> dict[str, object]:
    record = store.get(f"docker.io/library/{image}:latest")
    assert record is not None
    return store.config(record)


def mode_owner(rootfs: RootFS, path: str) -> tuple[str, int, int]:
    _, entry = rootfs.resolve(path)
    assert entry is not None, path
    return oct(stat.S_IMODE(entry.info.st_mode)), entry.info.st_uid, entry.info.st_gid


def read(rootfs: RootFS, path: str) -> str:
    _, entry = rootfs.resolve(path)
    assert entry is not None, path
    return entry.host.read_text()


@pytest.fixture
def context(tmp_path: Path) -> Path:
    folder = tmp_path / "ctx"
    (folder / "app" / "sub").mkdir(parents=True)
    (folder / "app" / "main.sh").write_text("echo main\n")
    os.chmod(folder / "app" / "main.sh", 0o751)
    (folder / "app" / "sub" / "data.txt").write_text("data\n")
    (folder / "app" / "secret.key").write_text("nope\n")
    (folder / "app" / "keep.key").write_text("kept\n")
    (folder / "notes.md").write_text("notes\n")
    (folder / "logs").mkdir()
    (folder / "logs" / "a.log").write_text("log\n")
    (folder / ".dockerignore").write_text("# comment\nlogs\n**/*.key\n!app/keep.key\n")
    return folder


def test_from_an_image_copy_rules_dockerignore_and_metadata(store: ImageStore, context: Path,
                                                            local_registry: LocalRegistry) -> None:
    rootfs = build(store, context, f"""\
FROM {local_registry.busybox}
ENV GREETING=hi
WORKDIR /srv
COPY app ./app/
COPY notes.md .
COPY --chown=1000:1001 --chmod=640 notes.md /opt/deep/dir/renamed.md
COPY app/main.sh /usr/local/bin/
COPY . /whole/
LABEL org.example.stage=final
EXPOSE 8080
CMD ["sh", "/srv/app/main.sh"]
""", tags=("demo-web:v1",), labels={"com.docker.compose.service": "web"})
    assert read(rootfs, "/srv/app/main.sh") == "echo main\n"
    assert mode_owner(rootfs, "/srv/app/main.sh") == ("0o751", 0, 0)
    assert read(rootfs, "/srv/app/sub/data.txt") == "data\n"
    assert read(rootfs, "/srv/notes.md") == "notes\n"
    assert read(rootfs, "/usr/local/bin/main.sh") == "echo main\n"
    assert mode_owner(rootfs, "/opt/deep/dir/renamed.md") == ("0o640", 1000, 1001)
    assert mode_owner(rootfs, "/opt/deep/dir") == ("0o755", 1000, 1001)  # created parents: --chown's
    # .dockerignore: logs and *.key gone, the exception kept
    assert rootfs.resolve("/srv/app/secret.key")[1] is None
    assert read(rootfs, "/srv/app/keep.key") == "kept\n"
    assert rootfs.resolve("/whole/logs")[1] is None
    assert read(rootfs, "/whole/notes.md") == "notes\n"
    assert rootfs.resolve("/bin/busybox")[1] is not None  # the base's layers are below
    config = config_of(store)
    inner = config["config"]
    assert isinstance(inner, dict)
    assert inner["WorkingDir"] == "/srv"
    assert inner["Cmd"] == ["sh", "/srv/app/main.sh"]
    assert inner["ExposedPorts"] == {"8080/tcp": {}}
    assert inner["Labels"] == {"org.example.stage": "final", "com.docker.compose.service": "web"}
    assert "GREETING=hi" in inner["Env"]
    history = config["history"]
    assert isinstance(history, list)
    created_by = [entry["created_by"] for entry in history if entry.get("comment") == "buildkit.dockerfile.v0"]
    assert created_by[:3] == ["ENV GREETING=hi", "WORKDIR /srv", "COPY app ./app/ # buildkit"]
    rootfs_section = config["rootfs"]
    assert isinstance(rootfs_section, dict)
    layered = [entry for entry in history if not entry.get("empty_layer")]
    assert len(layered) == len(rootfs_section["diff_ids"])
    tagged, latest = store.get("docker.io/library/demo-web:v1"), store.get("docker.io/library/demo-web:latest")
    assert tagged is not None
    assert latest is not None
    assert (tagged.manifest, tagged.config) == (latest.manifest, latest.config)


def test_multi_stage_copy_from_scratch_and_target(store: ImageStore, context: Path) -> None:
    dockerfile = """\
FROM scratch AS files
COPY --chown=7:8 app/sub /data/
FROM files AS unused
COPY notes.md /never
FROM scratch AS final
COPY --from=files /data/data.txt /out/
COPY --from=files /data /copied
"""
    rootfs = build(store, context, dockerfile)
    assert read(rootfs, "/out/data.txt") == "data\n"
    assert mode_owner(rootfs, "/out/data.txt") == ("0o644", 7, 8)  # a stage's files keep their owners
    assert read(rootfs, "/copied/data.txt") == "data\n"
    assert rootfs.resolve("/never")[1] is None
    config = config_of(store)
    assert len(config["rootfs"]["diff_ids"]) == 2  # type: ignore[index]
    target = build(store, context, dockerfile, image="demo-target", target="unused")
    assert read(target, "/never") == "notes\n"
    assert read(target, "/data/data.txt") == "data\n"


def test_errors_and_refusals_are_one_line(store: ImageStore, context: Path) -> None:
    with pytest.raises(ImageBuildError, match=r'Dockerfile:2: COPY missing /x: "/missing": not found$'):
        build(store, context, "FROM scratch\nCOPY missing /x\n")
    with pytest.raises(ImageBuildError, match=r"\"/logs/a.log\": not found$"):
        build(store, context, "FROM scratch\nCOPY logs/a.log /x\n")  # excluded by .dockerignore
    with pytest.raises(UnsupportedFeatureError, match=r"Dockerfile:2: RUN is not supported by the native builder"):
        build(store, context, "FROM scratch\nRUN true\n")
    with pytest.raises(UnsupportedFeatureError, match=r"COPY --link is not supported"):
        build(store, context, "FROM scratch\nCOPY --link notes.md /\n")
    with pytest.raises(UnsupportedFeatureError, match=r"build.secrets is not supported"):
        build(store, context, "FROM scratch\n", secrets=[{"source": "s"}])
    assert store.get("docker.io/library/demo-web:latest") is None
    assert not list((store.root / "tmp").iterdir())
