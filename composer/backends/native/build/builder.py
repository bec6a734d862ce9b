"""Building a service's image on the native backend: the stages the target needs, in order,
each from its base (an image pulled into the store as ``ensure_image`` pulls, ``scratch``, or an
earlier stage), the metadata instructions through composer.dockerfile.image_config, COPY/ADD as
new layers; the result is an OCI manifest and config in the store, tagged as the BuildSpec says.

RUN runs in a native container (composer.backends.native.build.run): ``--network=none``, or
the default, a bridge network of the build's own.

RUN ``--mount`` (build/mounts.py: cache, bind, tmpfs, secret from ``BuildSpec.secrets``),
``--network=host`` and ``--security=insecure`` behind their entitlements (build/run.py),
COPY/ADD ``--link``, ``--parents``, ``--exclude``; ADD of local archives (extracted) and of
http(s) URLs with ``--checksum`` (build/fetch.py, fetched on the host side).

Not built yet, and refused in one line naming it: RUN --mount=type=ssh, heredoc scripts with a
``#!`` line, ADD of git repositories, ``--keep-git-dir``, FROM ``--platform``, COPY ``--from``
an image, and the ``build:`` keys that need them (ssh, cache_from/cache_to,
additional_contexts, network other than default or none, extra_hosts, shm_size, ulimits, other
platforms, entitlements other than network.host and security.insecure, isolation). There is no cache
yet: every build builds every step (``no_cache`` holds trivially).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.from_thread
import anyio.to_thread

from composer.backends.native.build.copy import (
    ContextSource,
    CopyError,
    CopyPlan,
    Source,
    StageSource,
    parse_chmod,
    parse_chown,
    plan_copy,
)
from composer.backends.native.build.fetch import ArchiveSource, FetchedSource, fetch, is_archive
from composer.backends.native.build.ignore import Matcher, parse
from composer.backends.native.build.layer import LayerWriter, drop_unreferenced
from composer.backends.native.build.mounts import MountError, MountSpec, Prepared, parse_mount, prepare, stub_parts
from composer.backends.native.build.rootfs import RootFS
from composer.backends.native.build.run import (
    NotEntitled,
    RunRefused,
    RunResult,
    check_flags,
    diff,
    last_lines,
    run_args,
    run_container,
)
from composer.backends.native.coverage import BUILDER_LACKS, BUILDER_REFUSAL
from composer.backends.native.image import oci
from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.contract.backend import BuildSpec
from composer.dockerfile import image_config
from composer.dockerfile.expand import ExpansionError, expand_word
from composer.dockerfile.instructions import CopyCommand, Dockerfile, RunCommand, Stage, WordsCommand, build_stages
from composer.dockerfile.parser import DockerfileSyntaxError
from composer.dockerfile.parser import parse as parse_dockerfile
from composer.dockerfile.stages import global_scope, needed_stages
from composer.errors import ImageBuildError, UnsupportedFeatureError
from composer.events import Event, EventSink, EventStatus
from composer.image_reference import parse as parse_reference

if TYPE_CHECKING:
    from composer.backends.native.runtime.api import Runtime

BACKEND = "native"
ENTITLEMENTS = ("network.host", "security.insecure")
Pull = Callable[[str], Awaitable[ImageRecord]]
RuntimeFactory = Callable[[], "Runtime"]


def _refuse(what: str) -> UnsupportedFeatureError:
    return UnsupportedFeatureError(BUILDER_REFUSAL.format(what), backend_name=BACKEND, operation="build")


def _created() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Built:
    """A stage's result: its config (the whole OCI image config), layers and their blobs."""

    config: dict[str, Any]
    diff_ids: list[str] = field(default_factory=list)
    layers: list[oci.Descriptor] = field(default_factory=list)

    def rootfs(self, store: ImageStore) -> RootFS:
        return RootFS([store.layer(chain).path for chain in oci.chain_ids(self.diff_ids)])


def refuse_build_keys(spec: BuildSpec) -> None:
    """Refuse, in one line naming it, each ``build:`` key this builder does not apply."""
    build = spec.service.build
    assert build is not None
    for key in BUILDER_LACKS:  # the coverage table's refusals of build keys
        if getattr(build, key):
            raise _refuse(f"service {spec.service.name}: build.{key}")
    if build.network not in (None, "default", "none"):
        raise _refuse(f"service {spec.service.name}: build.network: {build.network}")
    for entitlement in build.entitlements:
        if entitlement not in ENTITLEMENTS:
            raise _refuse(f"service {spec.service.name}: build.entitlements: {entitlement}")
    for grant in build.secrets:
        for key in ("uid", "gid", "mode"):
            if getattr(grant, key) is not None:
                raise _refuse(f"service {spec.service.name}: build.secrets.{key} (the RUN --mount=type=secret "
                              "options set the file's owner and mode)")
    if any(platform not in ("linux/amd64", "linux/x86_64") for platform in build.platforms):
        raise _refuse(f"service {spec.service.name}: build.platforms other than linux/amd64")
    if build.context is None or "://" in build.context or build.context.startswith("git@"):
        raise _refuse(f"service {spec.service.name}: a build context that is not a local folder")


def read_dockerfile(spec: BuildSpec) -> tuple[Dockerfile, Path]:
    """The typed Dockerfile and the context folder.

    :raises ImageBuildError: the Dockerfile cannot be read; DockerfileSyntaxError: it does not parse.
    """
    build = spec.service.build
    assert build is not None
    assert build.context is not None
    context = Path(build.context)
    if not context.is_dir():
        raise ImageBuildError(f"service {spec.service.name}: build context {context} is not a folder",
                              backend_name=BACKEND, operation="build")
    if build.dockerfile_inline is not None:
        text, path = build.dockerfile_inline, "Dockerfile"
    else:
        name = build.dockerfile or "Dockerfile"
        file = Path(name) if Path(name).is_absolute() else context / name
        try:
            text = file.read_text()
        except OSError as exc:
            raise ImageBuildError(f"service {spec.service.name}: cannot read {file}: {exc.strerror}",
                                  backend_name=BACKEND, operation="build") from None
        path = str(file)
    return build_stages(parse_dockerfile(text, path=path), path), context


def ignore_matcher(context: Path, dockerfile: str) -> Matcher:
    """``<Dockerfile>.dockerignore`` beside the Dockerfile, else the context's ``.dockerignore``."""
    for candidate in (Path(dockerfile + ".dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            return Matcher(parse(candidate.read_text()))
    return Matcher([])


class Builder:
    """One build: ``build()`` returns the image record of the target stage, tagged."""

    def __init__(self, store: ImageStore, spec: BuildSpec, pull: Pull, runtime: RuntimeFactory,
                 sink: EventSink | None = None) -> None:
        self.store = store
        self.spec = spec
        self.pull = pull
        self.runtime = runtime
        self.sink = sink
        self.new_blobs: set[str] = set()  # what this build wrote, dropped at the end unless an image uses it
        self.new_layers: set[str] = set()
        self.built: dict[int, Built] = {}

    def _fail(self, command: Any, message: str) -> ImageBuildError:
        return ImageBuildError(f"service {self.spec.service.name}: {self.dockerfile.path}:{command.line}: "
                               f"{command.original.strip()}: {message}", backend_name=BACKEND, operation="build")

    async def build(self) -> list[ImageRecord]:
        try:
            return await self._build()
        finally:
            await anyio.to_thread.run_sync(drop_unreferenced, self.store, self.new_blobs, self.new_layers)

    async def _build(self) -> list[ImageRecord]:
        refuse_build_keys(self.spec)
        self.dockerfile, self.context = read_dockerfile(self.spec)
        build = self.spec.service.build
        assert build is not None
        args = dict(self.spec.args)
        self.matcher = ignore_matcher(self.context, self.dockerfile.path)
        self.scope = global_scope(self.dockerfile, args)
        stages = needed_stages(self.dockerfile, build.target, args)
        for stage in stages:
            self.built[stage.index] = await self._stage(stage, args)
        final = self.built[stages[-1].index]
        labels = dict(final.config["config"].get("Labels") or {})
        labels.update(self.spec.labels)
        if labels:
            final.config["config"]["Labels"] = labels
        return self._write(final)

    def _expand(self, stage: Stage | Any, word: str, scope: dict[str, str]) -> str:
        try:
            return expand_word(word, scope, escape=self.dockerfile.escape)
        except ExpansionError as exc:
            raise DockerfileSyntaxError(str(exc), line=stage.line, path=self.dockerfile.path) from None

    def _stage_named(self, name: str) -> Stage | None:
        for stage in self.dockerfile.stages:
            if (stage.name and stage.name == name.lower()) or (name.isdigit() and stage.index == int(name)):
                return stage
        return None

    async def _base(self, stage: Stage) -> Built:
        if stage.platform:
            raise _refuse(f"{self.dockerfile.path}:{stage.line}: FROM --platform")
        name = self._expand(stage, stage.base, self.scope)
        other = self._stage_named(name)
        if other is not None and other.index < stage.index:
            base = self.built[other.index]
            return Built(json.loads(json.dumps(base.config)), list(base.diff_ids), list(base.layers))
        if name == "scratch":
            return Built({"architecture": "amd64", "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": []}, "history": []})
        record = await self.pull(name)
        config = json.loads(json.dumps(self.store.config(record)))
        manifest = self.store.manifest(record)
        layers = [oci.Descriptor.from_json(layer) for layer in manifest.get("layers") or []]
        diff_ids = [str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or []]
        return Built(config, diff_ids, layers)

    async def _stage(self, stage: Stage, args: dict[str, str]) -> Built:
        built = await self._base(stage)
        state = image_config.start(built.config.get("config"), built.config.get("history") or [],
                                   path=self.dockerfile.path, escape=self.dockerfile.escape)
        state.globals = dict(self.scope)
        build = self.spec.service.build
        assert build is not None
        for command in stage.commands:
            if isinstance(command, RunCommand):
                try:
                    network = check_flags(command, entitlements=build.entitlements, privileged=build.privileged)
                    process = run_args(command, state.config.get("Shell") or image_config.DEFAULT_SHELL)
                except NotEntitled as exc:
                    raise self._fail(command, str(exc)) from None
                except RunRefused as exc:
                    raise _refuse(f"{self.dockerfile.path}:{command.line}: {exc}") from None
                mounts = self._mounts(command, state)
            before = len(state.history)
            image_config.apply(state, command, args)
            stamp = _created()
            for entry in state.history[before:]:
                entry["created"] = stamp
            if isinstance(command, CopyCommand):
                self._copy(command, state, built)
            elif isinstance(command, WordsCommand) and command.name == "WORKDIR":
                self._workdir(command, state, built)
            elif isinstance(command, RunCommand):
                built.config["config"] = state.config
                if not command.network and build.network:
                    network = build.network
                await anyio.to_thread.run_sync(self._run, command, process, state, built, network, mounts)
        built.config["config"] = state.config
        built.config["history"] = state.history
        built.config["created"] = _created()
        built.config["rootfs"] = {"type": "layers", "diff_ids": list(built.diff_ids)}
        return built

    def _copy(self, command: CopyCommand, state: image_config.StageState, built: Built) -> None:
        if command.keep_git_dir:
            raise _refuse(f"{self.dockerfile.path}:{command.line}: {command.name} --keep-git-dir")
        scope = state.environment()
        rootfs = built.rootfs(self.store)
        source: Source
        if command.from_:
            name = self._expand(command, command.from_, self.scope)
            other = self._stage_named(name)
            if other is None or other.index not in self.built:
                raise _refuse(f"{self.dockerfile.path}:{command.line}: COPY --from={name} (an image, not a stage)")
            source = StageSource(self.built[other.index].rootfs(self.store))
        else:
            source = ContextSource(self.context, self.matcher)
        words = [self._expand(command, word, scope) for word in command.sources]
        if command.name == "ADD" and any(is_git_url(word) for word in words):
            raise _refuse(f"{self.dockerfile.path}:{command.line}: ADD of a git repository")
        if command.checksum and not (command.name == "ADD" and all("://" in word for word in words)):
            raise self._fail(command, "--checksum can only be used with HTTP(S) sources")
        inline = [(doc.path, (self._expand(command, doc.content, scope) if doc.expand else doc.content).encode())
                  for doc in command.inline]
        excludes = [self._expand(command, word, scope) for word in command.excludes]
        # --link: the files as a layer of their own, not resolved against the stage's (BuildKit's
        # link: the destination's links are not followed, missing folders are made as new)
        target = RootFS([]) if command.link else rootfs
        with contextlib.ExitStack() as fetched:
            pairs: list[tuple[Source, str]] = []
            for word in words:
                if command.name == "ADD" and "://" in word:
                    pairs.append((self._fetch(command, word, fetched), word))
                else:
                    pairs.append((source, word))
            try:
                plan = plan_copy(target, state.config.get("WorkingDir") or "/",
                                 self._expand(command, command.destination, scope), pairs, inline,
                                 chown=parse_chown(self._expand(command, command.chown, scope), rootfs),
                                 chmod=parse_chmod(command.chmod),
                                 unpack=(lambda source, path: _unpack(source, path, self._spool(fetched)))
                                 if command.name == "ADD" and not command.from_ else None,
                                 exclude=Matcher(parse("\n".join(excludes))) if excludes else None,
                                 parents=command.parents)
            except CopyError as exc:
                raise self._fail(command, str(exc)) from None
            self._write_layer(plan, state, built)

    def _spool(self, cleanup: contextlib.ExitStack) -> Path:
        """A private folder in the store's tmp/ for one step, removed after it."""
        folder = Path(tempfile.mkdtemp(prefix="build-spool.", dir=self.store.root / "tmp"))
        cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
        return folder

    def _fetch(self, command: CopyCommand, url: str, cleanup: contextlib.ExitStack) -> Source:
        """ADD of an http(s) URL: fetched on the host into the store's tmp/, removed after the step."""
        try:
            fetched = fetch(url, self.store.root / "tmp", command.checksum)
        except CopyError as exc:
            raise self._fail(command, str(exc)) from None
        cleanup.callback(fetched.path.unlink, missing_ok=True)
        return FetchedSource(fetched)

    def _write_layer(self, plan: CopyPlan, state: image_config.StageState, built: Built) -> None:
        writer = LayerWriter(self.store)
        try:
            plan.write(writer)
        except BaseException:
            writer.discard()
            raise
        self._commit(writer, state, built)

    def _commit(self, writer: LayerWriter, state: image_config.StageState, built: Built) -> None:
        """The step's layer on top of the stage's; an empty one is dropped and its history entry
        marked empty_layer, as BuildKit's exporter does."""
        if not writer.entries:
            writer.discard()
            state.history[-1]["empty_layer"] = True
            return
        chains = oci.chain_ids(built.diff_ids)
        layer = writer.commit(chains[-1] if chains else None)
        if layer.new_blob:
            self.new_blobs.add(layer.descriptor.digest)
        if layer.new_layer:
            self.new_layers.add(layer.chain_id)
        built.diff_ids.append(layer.diff_id)
        built.layers.append(layer.descriptor)
        state.history[-1].pop("empty_layer", None)

    def _workdir(self, command: Any, state: image_config.StageState, built: Built) -> None:
        """WORKDIR makes its folder (and parents) when missing, owned by the stage's USER, as
        BuildKit's ``mkdir -p``; a layer then, else none."""
        folder = state.config.get("WorkingDir") or "/"
        rootfs = built.rootfs(self.store)
        if folder == "/" or rootfs.resolve(folder)[1] is not None:
            return
        try:
            plan = plan_copy(rootfs, "/", folder.rstrip("/") + "/", [], [],
                             chown=parse_chown(state.config.get("User") or "", rootfs), chmod=None)
        except CopyError as exc:
            raise self._fail(command, str(exc)) from None
        writer = LayerWriter(self.store)
        try:
            plan.write(writer)
        except BaseException:
            writer.discard()
            raise
        self._commit(writer, state, built)

    def _mounts(self, command: RunCommand, state: image_config.StageState) -> list[MountSpec]:
        """The RUN's ``--mount`` flags, expanded with the stage's variables and parsed.

        :raises UnsupportedFeatureError: type=ssh; ImageBuildError: a malformed mount.
        """
        found = []
        for text in command.mounts:
            try:
                found.append(parse_mount(self._expand(command, text, state.environment())))
            except MountError as exc:
                if "type=ssh" in str(exc):
                    raise _refuse(f"{self.dockerfile.path}:{command.line}: RUN --mount=type=ssh") from None
                raise self._fail(command, str(exc)) from None
        return found

    def _source_for(self, command: RunCommand, name: str) -> Source:
        """What a mount's ``from=`` names: the build context ("") or an earlier stage."""
        if not name:
            return ContextSource(self.context, self.matcher)
        name = self._expand(command, name, self.scope)
        other = self._stage_named(name)
        if other is None or other.index not in self.built:
            raise _refuse(f"{self.dockerfile.path}:{command.line}: RUN --mount from={name} (an image, not a stage)")
        return StageSource(self.built[other.index].rootfs(self.store))

    def _secrets(self, mounts: list[MountSpec]) -> dict[str, bytes]:
        """The values of the secrets the mounts ask for (read now, kept in memory only)."""
        found = {}
        for mount in mounts:
            secret = self.spec.secrets.get(mount.id) if mount.type == "secret" else None
            if secret is not None:
                try:
                    found[mount.id] = secret.read()
                except OSError as exc:
                    raise ImageBuildError(f"service {self.spec.service.name}: secret {mount.id}: cannot read "
                                          f"{secret.file}: {exc.strerror}", backend_name=BACKEND,
                                          operation="build") from None
        return found

    def _run(self, command: RunCommand, process: list[str], state: image_config.StageState, built: Built,
             network: str, mounts: list[MountSpec]) -> None:
        lower = built.rootfs(self.store)
        try:
            prepared = self._prepare(command, state, mounts)
            with prepared as ready, run_container(
                    self.store, self.runtime(), built.config, built.diff_ids, process, state.args, network=network,
                    volumes=ready.volumes, environment=ready.environment,
                    privileged=command.security == "insecure") as (result, upper):
                self._finish(command, process, state, built, result, upper, lower, stub_parts(ready.targets))
        except MountError as exc:
            raise self._fail(command, str(exc)) from None

    def _prepare(self, command: RunCommand, state: image_config.StageState,
                 mounts: list[MountSpec]) -> contextlib.AbstractContextManager[Prepared]:
        return prepare(mounts, store_root=self.store.root, workdir=state.config.get("WorkingDir") or "/",
                       secrets=self._secrets(mounts), source_for=lambda name: self._source_for(command, name))

    def _finish(self, command: RunCommand, process: list[str], state: image_config.StageState, built: Built,
                result: RunResult, upper: Path, lower: RootFS, stubs: set[tuple[str, ...]]) -> None:
        for line in result.output.splitlines():
            self._emit(line)
        if result.exit_code != 0:
            shown = " ".join(process)
            tail = last_lines(result.output)
            raise self._fail(command, f'process "{shown}" did not complete successfully: exit code: '
                                      f"{result.exit_code}" + (f": {tail}" if tail else ""))
        writer = LayerWriter(self.store)
        try:
            diff(upper, lower, writer, stubs)
        except BaseException:
            writer.discard()
            raise
        self._commit(writer, state, built)

    def _emit(self, line: str) -> None:
        if self.sink is not None:
            anyio.from_thread.run_sync(self.sink.emit, Event(f"image:{self.spec.image}", EventStatus.WORKING,
                                                             "Building", details=line))

    def _write(self, final: Built) -> list[ImageRecord]:
        config = json.dumps(final.config, separators=(",", ":")).encode()
        config_digest = self.store.write_blob(config)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                               "config": {"mediaType": oci.OCI_CONFIG, "digest": config_digest, "size": len(config)},
                               "layers": [layer.to_json() for layer in final.layers]},
                              separators=(",", ":")).encode()
        manifest_digest = self.store.write_blob(manifest)
        platform = "/".join(str(part) for part in (final.config.get("os") or "linux",
                                                   final.config.get("architecture") or "amd64",
                                                   final.config.get("variant")) if part)
        records = []
        for name in (self.spec.image, *self.spec.tags):
            record = ImageRecord(str(parse_reference(name)), manifest_digest, config_digest, None, platform,
                                 time.time(), "build")
            self.store.put(record)
            records.append(record)
        return records


def _unpack(source: Source, path: Path, spool: Path) -> Source | None:
    """ADD's rule for a file named in the context: a tar archive (plain or compressed) is
    extracted (a downloaded one is not, as Docker documents)."""
    return ArchiveSource(path, spool) if isinstance(source, ContextSource) and is_archive(path) else None


def is_git_url(word: str) -> bool:
    """A git source as BuildKit tells them apart: git@, git://, a .git URL or a #fragment on one."""
    return word.startswith(("git@", "git://")) or (
        "://" in word and (word.split("#")[0].endswith(".git") or ("github.com/" in word and "#" in word)))
