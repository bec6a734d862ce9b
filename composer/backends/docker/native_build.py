"""BuildKit syntax on the docker backend: built by composer's native builder, loaded into the engine.

The engine here (Debian's dockerd 20.10) has BuildKit with the dockerfile frontend 1.2 built
in: no heredocs, ``--link``, ``--parents``, ``--exclude`` or ``--checksum``, no RUN
``--network``, and the ``# syntax=`` images that would bring a newer frontend cannot be pulled.
docker-py only drives the classic builder. So a Dockerfile that needs BuildKit's syntax (or a
build with ``build.secrets``) is built by composer.backends.native.build, in composer's own
store and runtime (root is needed, as for the native backend), and the result is handed to the
engine with ``docker load``: the image the engine gets has the layers and config the native
builder wrote, equal to what the native backend builds. Everything else keeps the engine's
classic builder (composer.backends.docker.images.build).

Base images come from the engine first (``docker save`` of the image into the native store, as
BuildKit on the docker image store uses a local image), else from their registry (``build.pull``:
the registry always). After the load the image's records leave the native store again, with
the blobs and layers only it used (the base images loaded from the engine stay, as pulled ones).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.contract.backend import BuildSpec
from composer.dockerfile.instructions import CopyCommand, RunCommand

if TYPE_CHECKING:
    from composer.backends.native.image.store import ImageRecord, ImageStore
    from composer.events import EventSink


def buildkit_features(spec: BuildSpec) -> list[str]:
    """What in ``spec`` the engine's classic builder cannot build (empty: it can).

    :raises DockerfileSyntaxError: the Dockerfile does not parse; ImageBuildError: it cannot be read.
    """
    from composer.backends.native.build.builder import read_dockerfile

    build = spec.service.build
    if build is None or build.context is None or "://" in build.context or build.context.startswith("git@"):
        return []
    found = ["build.secrets"] if build.secrets else []
    dockerfile, _context = read_dockerfile(spec)
    for stage in dockerfile.stages:
        for command in stage.commands:
            if isinstance(command, RunCommand):
                form = command.command
                found += [flag for flag, value in (("heredoc", form.files), ("RUN --mount", command.mounts),
                                                   ("RUN --network", command.network),
                                                   ("RUN --security", command.security)) if value]
            elif isinstance(command, CopyCommand):
                found += [flag for flag, value in (("heredoc", command.inline), ("--link", command.link),
                                                   ("--parents", command.parents), ("--exclude", command.excludes),
                                                   ("--checksum", command.checksum)) if value]
    return sorted(set(found))


async def build(api_run: Any, spec: BuildSpec, sink: EventSink) -> None:
    """Build ``spec`` with the native builder and load the image into the engine.

    ``api_run(name, function)`` runs ``function(api)`` with docker-py's APIClient in a thread
    (DockerBackend._run). :raises ComposerError: what the build or the load reports.
    """
    import anyio.to_thread

    from composer.backends.native.backend import NativeBackend
    from composer.backends.native.build.builder import Builder
    from composer.backends.native.build.layer import drop_unreferenced
    from composer.backends.native.image.pull import pull

    native = NativeBackend()
    try:
        store = await anyio.to_thread.run_sync(lambda: native.store)

        async def pull_base(image: str) -> ImageRecord:
            if not spec.pull:
                record: ImageRecord | None = await api_run("build", lambda api: _from_engine(api, store, image))
                if record is not None:
                    return record
            from composer.backends.native.backend import _LayerEvents

            return await pull(image, store, _LayerEvents(sink), "always" if spec.pull else "missing")

        with contextlib.ExitStack() as stack:
            await anyio.to_thread.run_sync(lambda: stack.enter_context(store.session()))
            builder = Builder(store, spec, pull_base, lambda: native.containers.runtime, sink)
            records = await builder.build()
            try:
                await api_run("build", lambda api: _load(api, store, [record.reference for record in records]))
            finally:
                for record in records:
                    store.remove(record.reference)
                # what only the built image used goes with it (no residue for `composer system check`)
                written = {digest for record in records for digest in (record.manifest, record.config)}
                await anyio.to_thread.run_sync(drop_unreferenced, store, builder.new_blobs | written,
                                               builder.new_layers)
    finally:
        await native.aclose()


def _spool(store: ImageStore) -> Path:
    folder = store.root / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="engine-image.", suffix=".tar", dir=folder)
    os.close(handle)
    return Path(name)


def _from_engine(api: Any, store: ImageStore, image: str) -> ImageRecord | None:
    """The engine's copy of ``image`` (``docker save``) loaded into the store; None when the
    engine does not have it."""
    import docker.errors

    from composer.backends.native.image import archive
    from composer.image_reference import parse as parse_reference

    if image == "scratch":
        return None
    try:
        api.inspect_image(image)
    except docker.errors.ImageNotFound:
        return None
    path = _spool(store)
    try:
        with path.open("wb") as out:
            for chunk in api.get_image(image):
                out.write(chunk)
        archive.load(store, path)
    finally:
        path.unlink(missing_ok=True)
    return store.get(str(parse_reference(image)))


def _load(api: Any, store: ImageStore, references: list[str]) -> None:
    """``docker load`` of the built image with its tags."""
    from composer.backends.native.image import archive

    path = _spool(store)
    try:
        archive.save_to_path(store, references, path)
        with path.open("rb") as source:
            for message in api.load_image(source):
                if isinstance(message, dict) and message.get("error"):
                    from composer.backends.docker.errors import BACKEND_NAME
                    from composer.errors import ImageBuildError

                    raise ImageBuildError(f"cannot load the built image into the engine: {message['error']}",
                                          backend_name=BACKEND_NAME, operation="build")
    finally:
        path.unlink(missing_ok=True)
