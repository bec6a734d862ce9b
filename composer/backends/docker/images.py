"""Building and pushing images through the Docker Engine API (the engine's classic builder).

Blocking functions, run in a worker thread by DockerBackend. ``build_kwargs`` turns a BuildSpec
into docker-py's ``APIClient.build`` arguments (pure, so it is unit-tested without an engine);
``build_context`` tars a local context honouring ``.dockerignore``; ``build`` and ``push``
stream the engine's messages as events and raise one-line composer errors.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any

from composer.backends.docker.errors import BACKEND_NAME, explanation
from composer.errors import ImageBuildError, ImagePushError, UnsupportedFeatureError
from composer.events import Event, EventStatus

if TYPE_CHECKING:
    from composer.contract.backend import BuildSpec
    from composer.spec.models import ServiceConfig

Emit = Callable[[Event], None]
_REMOTE_PREFIXES = ("http://", "https://", "git://", "github.com/", "git@")


def is_remote(context: str) -> bool:
    return context.startswith(_REMOTE_PREFIXES)


def _unsupported(service: ServiceConfig, what: str) -> UnsupportedFeatureError:
    return UnsupportedFeatureError(
        f'service "{service.name}": the engine\'s classic builder does not support {what}',
        backend_name=BACKEND_NAME, operation="build", hint="use BuildKit (docker buildx bake) for this service")


def build_platform(service: ServiceConfig) -> str | None:
    """The one platform to build for: ``build.platforms`` (at most one here), else ``platform``."""
    assert service.build is not None
    platforms = service.build.platforms
    if len(platforms) > 1:
        raise _unsupported(service, f"multi-platform builds ({', '.join(platforms)})")
    if platforms:
        return platforms[0]
    return service.platform


def extra_hosts(entries: Iterable[str]) -> list[str]:
    """Compose ``host=address`` (or ``host:address``) entries as the engine's ``host:address``."""
    result = []
    for entry in entries:
        host, sep, address = entry.partition("=")
        if not sep:
            host, _, address = entry.partition(":")
        result.append(f"{host}:{address}")
    return result


def build_kwargs(spec: BuildSpec) -> dict[str, Any]:
    """``APIClient.build`` keyword arguments for ``spec``, without the context itself.

    :raises UnsupportedFeatureError: the spec asks for what the classic builder cannot do.
    """
    service = spec.service
    build = service.build
    if build is None:
        raise ImageBuildError(f'service "{service.name}" has no build section', backend_name=BACKEND_NAME,
                              operation="build")
    from composer.backends.docker.coverage import ATTESTATIONS, BUILDER_LACKS

    for key, what in BUILDER_LACKS.items():  # the coverage table's refusals of build keys
        if getattr(build, key):
            raise _unsupported(service, what)
    for key in build.attestations():
        raise _unsupported(service, ATTESTATIONS[key])
    kwargs: dict[str, Any] = {
        "tag": spec.image,
        "rm": True,
        "forcerm": True,
        "decode": True,
        "nocache": spec.no_cache,
        "pull": spec.pull,
        "buildargs": dict(spec.args),
        "labels": dict(spec.labels),
    }
    optional: Mapping[str, Any] = {
        "target": build.target,
        "cache_from": list(build.cache_from) or None,
        "network_mode": build.network,
        "extra_hosts": extra_hosts(build.extra_hosts) or None,
        "shmsize": int(build.shm_size) if build.shm_size else None,
        "platform": build_platform(service),
        "isolation": build.isolation,
    }
    kwargs.update({key: value for key, value in optional.items() if value is not None})
    return kwargs


def _ignore_patterns(context: str, dockerfile: str | None) -> list[str]:
    """``<Dockerfile>.dockerignore`` when it exists (as BuildKit reads it), else ``.dockerignore``."""
    candidates = [os.path.join(context, ".dockerignore")]
    if dockerfile:
        candidates.insert(0, os.path.join(context, dockerfile) + ".dockerignore")
    for path in candidates:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                lines = (line.strip() for line in handle.read().splitlines())
                return [line for line in lines if line and not line.startswith("#")]
    return []


def build_context(spec: BuildSpec) -> tuple[IO[bytes] | None, str | None, str | None]:
    """(the context as a tar file, the Dockerfile's name in it, a remote context URL).

    A local context is tarred with ``.dockerignore`` honoured; ``dockerfile_inline`` and a
    Dockerfile outside the context are added to the archive under a generated name.
    """
    from docker.api.build import process_dockerfile
    from docker.utils import build as build_utils

    service = spec.service
    build = service.build
    assert build is not None
    context = build.context or "."
    if is_remote(context):
        if build.dockerfile_inline is not None:
            raise _unsupported(service, "dockerfile_inline with a remote context")
        return None, build.dockerfile, context
    if not os.path.isdir(context):
        raise ImageBuildError(f'service "{service.name}" failed to build: context {context} is not a directory',
                              backend_name=BACKEND_NAME, operation="build")
    dockerfile: tuple[str | None, str | None]
    if build.dockerfile_inline is not None:
        dockerfile = (f".dockerfile.inline.{secrets.token_hex(8)}", build.dockerfile_inline)
    else:
        path = os.path.join(context, build.dockerfile or "Dockerfile")
        if not os.path.isfile(path):
            raise ImageBuildError(f'service "{service.name}" failed to build: no Dockerfile at {path}',
                                  backend_name=BACKEND_NAME, operation="build")
        dockerfile = process_dockerfile(build.dockerfile or "Dockerfile", context)
    exclude = _ignore_patterns(context, build.dockerfile if build.dockerfile_inline is None else None)
    archive: IO[bytes] = build_utils.tar(context, exclude=exclude, dockerfile=dockerfile)
    return archive, dockerfile[0], None


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _BuildStream:
    """Turns build messages into events; remembers the step in progress for the error message."""

    def __init__(self, spec: BuildSpec, emit: Emit) -> None:
        self.spec = spec
        self.emit = emit
        self.parent = f"image:{spec.image}"
        self.resource = f"build:{spec.service.name}"
        self.step = ""
        self.image_id: str | None = None

    def failure(self, message: str) -> ImageBuildError:
        where = f" at {self.step}" if self.step else ""
        return ImageBuildError(f'service "{self.spec.service.name}" failed to build{where}: {_one_line(message)}',
                               backend_name=BACKEND_NAME, operation="build")

    def message(self, message: Mapping[str, Any]) -> None:
        if message.get("error"):
            raise self.failure(str(message["error"]))
        aux = message.get("aux")
        if isinstance(aux, Mapping) and aux.get("ID"):
            self.image_id = str(aux["ID"])
        if "stream" in message:
            for line in str(message["stream"]).splitlines():
                self.line(line.rstrip())
        elif message.get("status"):
            status = str(message["status"])
            layer = message.get("id")
            text = f"{layer}: {status}" if layer else status
            detail = message.get("progressDetail") or {}
            self.emit(Event(self.resource, EventStatus.WORKING, text, parent_id=self.parent,
                            current=detail.get("current"), total=detail.get("total")))

    def line(self, line: str) -> None:
        if not line.strip():
            return
        current = total = None
        if line.startswith("Step "):
            self.step = _one_line(line)
            numbers = line[5:].split(" ", 1)[0].split("/")
            if len(numbers) == 2 and all(part.isdigit() for part in numbers):
                current, total = int(numbers[0]), int(numbers[1])
        elif line.startswith("Successfully built "):
            self.image_id = self.image_id or line.removeprefix("Successfully built ").strip()
        self.emit(Event(self.resource, EventStatus.WORKING, line, parent_id=self.parent, current=current,
                        total=total, units="steps" if total is not None else ""))


def build(api: Any, spec: BuildSpec, emit: Emit) -> str:
    """Build ``spec`` through ``api`` (blocking), tag its extra tags; return the image id.

    :raises ImageBuildError: the engine reported an error (one line: service and failing step).
    :raises UnsupportedFeatureError: the spec asks for what the classic builder cannot do.
    """
    import docker.errors
    import docker.utils

    kwargs = build_kwargs(spec)
    archive, dockerfile, remote = build_context(spec)
    stream = _BuildStream(spec, emit)
    try:
        if remote is not None:
            messages = api.build(path=remote, dockerfile=dockerfile, **kwargs)
        else:
            messages = api.build(fileobj=archive, custom_context=True, dockerfile=dockerfile, **kwargs)
        for message in messages:
            stream.message(message)
        for extra in spec.tags:
            repository, tag = docker.utils.parse_repository_tag(extra)
            api.tag(spec.image, repository, tag or "latest")
    except docker.errors.APIError as exc:
        raise stream.failure(explanation(exc)) from exc
    finally:
        if archive is not None:
            archive.close()
    emit(Event(stream.resource, EventStatus.DONE, "Built", parent_id=stream.parent))
    return stream.image_id or ""


def push(api: Any, image: str, emit: Emit) -> None:
    """Push ``image`` (blocking) with one event per layer message.

    :raises ImagePushError: the engine or the registry reported an error.
    """
    import docker.errors
    import docker.utils

    parent = f"image:{image}"
    repository, tag = docker.utils.parse_repository_tag(image)
    try:
        for message in api.push(repository, tag=tag or "latest", stream=True, decode=True):
            _push_message(message, image, parent, emit)
    except docker.errors.APIError as exc:
        raise ImagePushError(f"failed to push {image}: {explanation(exc)}", backend_name=BACKEND_NAME,
                             operation="push") from exc


_LAYER_DONE = ("Pushed", "Layer already exists", "Mounted from")


def _push_message(message: Mapping[str, Any], image: str, parent: str, emit: Emit) -> None:
    if message.get("error"):
        raise ImagePushError(f"failed to push {image}: {_one_line(str(message['error']))}",
                             backend_name=BACKEND_NAME, operation="push")
    layer = message.get("id")
    status = str(message.get("status") or "")
    if not layer or not status or status.startswith("The push refers to"):
        return
    detail = message.get("progressDetail") or {}
    done = status.startswith(_LAYER_DONE)
    emit(Event(f"layer:{layer}", EventStatus.DONE if done else EventStatus.WORKING, status, parent_id=parent,
               current=detail.get("current"), total=detail.get("total")))
