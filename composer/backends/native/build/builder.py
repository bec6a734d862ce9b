"""Building a service's image on the native backend: the stages the target needs, in order,
each from its base (an image pulled into the store as ``ensure_image`` pulls, ``scratch``, or an
earlier stage), the metadata instructions through composer.dockerfile.image_config, COPY/ADD as
new layers (COPY ``--from`` a stage or an image, pulled as a base is); the result is an OCI
manifest and config in the store, tagged as the BuildSpec says. What it makes is compared with
BuildKit's by tests/integration/native/test_build_conformance.py.

RUN runs in a native container (composer.backends.native.build.run): ``--network=none``, or
the default, a bridge network of the build's own. The stages the target needs build in
parallel, each once the stages it reads are built; the others are not built.

RUN ``--mount`` (build/mounts.py: cache, bind, tmpfs, secret from ``BuildSpec.secrets``),
``--network=host`` and ``--security=insecure`` behind their entitlements (build/run.py),
COPY/ADD ``--link``, ``--parents``, ``--exclude``; ADD of local archives (extracted) and of
http(s) URLs with ``--checksum`` (build/fetch.py, fetched on the host side). Heredocs on RUN, COPY
and ADD; a RUN heredoc with a ``#!`` line runs as a file mounted at /dev/pipes/, as BuildKit's.

Not built yet, and refused in one line naming it: RUN --mount=type=ssh, ADD of git repositories,
``--keep-git-dir``, FROM ``--platform`` of another platform than the host's, and the ``build:``
keys that need them (ssh, network other than default, none or host, other platforms, entitlements
other than network.host and security.insecure, isolation).

``build.additional_contexts`` (build/contexts.py): a folder, ``docker-image://`` or
``service:`` context, by name in ``FROM``, ``COPY --from`` and ``RUN --mount from=`` (looked up
after the stages, before images, as BuildKit does); a mount's ``from=`` may name an image too.

``build.extra_hosts`` (``host-gateway`` included), ``shm_size`` and ``ulimits`` shape every RUN
container as the service keys of those names shape a service's (the runtime applies them).

The filesystem steps (RUN, COPY, ADD, WORKDIR) go through the step cache
(composer.backends.native.build.cache, keys by cache_key): a hit reuses the step's layer
without running anything and is reported ``#N CACHED``; ``no_cache`` builds every step (and
records the results, as BuildKit's --no-cache). A RUN's key holds its mounts as parsed and a
bind mount's source by content, never a secret's value (BuildKit does not key on secrets
either: a changed secret alone rebuilds nothing); ADD of a URL is keyed by its ``--checksum``
(nothing is fetched on a hit), else by the fetched content. Each step's history ``created`` is
when its result was made, the metadata entries and the image's ``created`` the stage's last
step's, so a fully cached rebuild gives the same image ID, as BuildKit's. ``SOURCE_DATE_EPOCH``
(a build argument, as BuildKit takes it) sets every ``created`` to it and clamps the layers'
file times to it (BuildKit's ``rewrite-timestamp``): two builds of the same sources give equal
digests.

``build.cache_to`` / ``build.cache_from`` of ``type=local`` export the steps' records and layers to
a folder and import them from one (composer.backends.native.build.cache_io: its format, and why
it is not BuildKit's cache config); other cache types are refused in one line naming them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from composer.backends.native.build import cache_key
from composer.backends.native.build.cache import StepCache, StepResult
from composer.backends.native.build.cache_io import CacheIOError, CacheRefused, ImportedCache, LocalCache, Record
from composer.backends.native.build.cache_io import export as export_cache
from composer.backends.native.build.cache_io import parse_entry as parse_cache_entry
from composer.backends.native.build.contexts import FolderContext, ImageContext, named_contexts
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
from composer.backends.native.build.hashes import ContentHashes
from composer.backends.native.build.ignore import Matcher, parse
from composer.backends.native.build.layer import LayerWriter, drop_unreferenced
from composer.backends.native.build.mounts import MountError, MountSpec, Prepared, parse_mount, prepare, stub_parts
from composer.backends.native.build.rootfs import RootFS
from composer.backends.native.build.run import (
    SCRIPTS,
    BuildNetwork,
    NotEntitled,
    RunRefused,
    RunResult,
    check_flags,
    diff,
    heredoc_script,
    last_lines,
    run_args,
    run_container,
)
from composer.backends.native.coverage import ATTESTATIONS, BUILDER_LACKS, BUILDER_REFUSAL
from composer.backends.native.image import oci
from composer.backends.native.image.layers import apply_layer
from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.backends.native.network.settings import HOST_GATEWAY
from composer.contract.backend import BuildSpec
from composer.dockerfile import image_config
from composer.dockerfile.expand import ExpansionError, expand_word
from composer.dockerfile.instructions import (
    Command,
    CopyCommand,
    Dockerfile,
    RunCommand,
    Stage,
    WordsCommand,
    build_stages,
)
from composer.dockerfile.parser import DockerfileSyntaxError
from composer.dockerfile.parser import parse as parse_dockerfile
from composer.dockerfile.stages import HOST_PLATFORM, dependencies, global_scope, needed_stages
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


def source_date_epoch(args: Mapping[str, str]) -> int | None:
    """The ``SOURCE_DATE_EPOCH`` build argument (seconds since the epoch), or None.

    :raises ImageBuildError: not a non-negative integer.
    """
    text = args.get("SOURCE_DATE_EPOCH")
    if text is None or text == "":
        return None
    if not text.strip().isdigit():
        raise ImageBuildError(f"invalid SOURCE_DATE_EPOCH {text!r}: seconds since the epoch expected",
                              backend_name=BACKEND, operation="build")
    return int(text.strip())


def _rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Built:
    """A stage's result: its config (the whole OCI image config), layers and their blobs."""

    config: dict[str, Any]
    diff_ids: list[str] = field(default_factory=list)
    layers: list[oci.Descriptor] = field(default_factory=list)
    key: str = cache_key.SCRATCH  # the cache key the stage's files are at (composer.backends.native.build.cache_key)
    run_env: dict[str, str] = field(default_factory=dict)  # its RUNs' environment, for a stage built FROM it
    steps: list[Record] = field(default_factory=list)  # the steps its layers came from (cache_to mode=min)


def refuse_build_keys(spec: BuildSpec) -> None:
    """Refuse, in one line naming it, each ``build:`` key this builder does not apply."""
    build = spec.service.build
    assert build is not None
    for key in BUILDER_LACKS:  # the coverage table's refusals of build keys
        if getattr(build, key):
            raise _refuse(f"service {spec.service.name}: build.{key}")
    for key in build.attestations():
        raise UnsupportedFeatureError(f"service {spec.service.name}: {ATTESTATIONS.format(f'build.{key}')}",
                                      backend_name=BACKEND, operation="build")
    # host: the file's own choice, as `docker build --network host` on dockerd (whose builder allows
    # network-host by default); a Dockerfile's RUN --network=host still needs build.entitlements
    if build.network not in (None, "default", "none", "host"):
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
    cache_entries(spec)


def cache_entries(spec: BuildSpec) -> tuple[list[LocalCache], list[LocalCache]]:
    """``build.cache_from`` and ``build.cache_to``, parsed (composer.backends.native.build.cache_io).

    :raises UnsupportedFeatureError: a type other than local, or an option it lacks;
        ImageBuildError: a malformed entry.
    """
    build = spec.service.build
    assert build is not None
    found: tuple[list[LocalCache], list[LocalCache]] = ([], [])
    for key, entries, into in (("cache_from", build.cache_from, found[0]), ("cache_to", build.cache_to, found[1])):
        for entry in entries:
            try:
                into.append(parse_cache_entry(entry, export=key == "cache_to"))
            except CacheRefused as exc:
                raise _refuse(f"service {spec.service.name}: build.{key}: {exc}") from None
            except CacheIOError as exc:
                raise ImageBuildError(f"service {spec.service.name}: build.{key}: {exc}", backend_name=BACKEND,
                                      operation="build") from None
    return found


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
        self.cache = StepCache(store)
        self.steps = 0  # the #N of the last step reported
        self.pending: list[Event] = []  # events said in a step's worker thread (_say)
        self.pending_lock = threading.Lock()
        self.loop_thread = threading.get_ident()
        self.images: dict[str, Built] = {}  # the images COPY --from names, pulled once per build
        self.imports: list[ImportedCache] = []  # build.cache_from's folders
        self.named: dict[str, Built | FolderContext | ImageContext] = {}  # build.additional_contexts, by name
        self.network = BuildNetwork()  # the bridge its RUN steps share (made by the first), removed at the end
        self.hashes = ContentHashes(store.root)  # the context's file digests, known by their stat
        self.layer_folders: dict[str, Path] = {}  # chain id -> its diff folder (_rootfs)

    def _rootfs(self, built: Built) -> RootFS:
        """The stage's files: its layers' diff folders (each looked up in the store once per build:
        a cached build reads the same stack for each of its steps)."""
        folders = []
        for chain in oci.chain_ids(built.diff_ids):
            folder = self.layer_folders.get(chain)
            if folder is None:
                folder = self.layer_folders[chain] = self.store.layer(chain).path
            folders.append(folder)
        return RootFS(folders)

    def _fail(self, command: Any, message: str) -> ImageBuildError:
        return ImageBuildError(f"service {self.spec.service.name}: {self.dockerfile.path}:{command.line}: "
                               f"{command.original.strip()}: {message}", backend_name=BACKEND, operation="build")

    async def build(self) -> list[ImageRecord]:
        try:
            return await self._build()
        finally:
            if self.network.made():  # no RUN ran (a cached build): no thread to remove nothing
                with anyio.CancelScope(shield=True):  # removed also when the build is cancelled
                    await anyio.to_thread.run_sync(self.network.close)
            self.hashes.save()
            if self.new_blobs or self.new_layers:
                await anyio.to_thread.run_sync(drop_unreferenced, self.store, self.new_blobs, self.new_layers)

    async def _build(self) -> list[ImageRecord]:
        refuse_build_keys(self.spec)
        self.dockerfile, self.context = read_dockerfile(self.spec)
        build = self.spec.service.build
        assert build is not None
        args = dict(self.spec.args)
        self.epoch = source_date_epoch(args)
        self.matcher = ignore_matcher(self.context, self.dockerfile.path)
        self.scope = global_scope(self.dockerfile, args)
        await self._named_contexts()
        stages = needed_stages(self.dockerfile, build.target, args)
        self.multi_stage = len(self.dockerfile.stages) > 1
        imports, exports = cache_entries(self.spec)
        if imports and not self.spec.no_cache:  # --no-cache ignores cache_from, as BuildKit's
            await self._in_thread(self._load_imports, imports)
        await self._stages(stages, args)
        final = self.built[stages[-1].index]
        labels = dict(final.config["config"].get("Labels") or {})
        labels.update(self.spec.labels)
        if labels:
            final.config["config"]["Labels"] = labels
        records = self._write(final)
        for target in exports:
            steps = final.steps if target.mode == "min" else [
                step for stage in stages for step in self.built[stage.index].steps]
            await self._in_thread(self._export, list({step.key: step for step in steps}.values()), target)
        return records

    def _failed(self, error: CacheIOError) -> ImageBuildError:
        return ImageBuildError(f"service {self.spec.service.name}: {error}", backend_name=BACKEND, operation="build")

    def _load_imports(self, sources: list[LocalCache]) -> None:
        for source in sources:
            try:
                cache = ImportedCache.load(source)
            except CacheIOError as exc:
                raise self._failed(exc) from None
            self.steps += 1
            self._say(f"#{self.steps} importing cache manifest from local:{source.path} "
                      f"({cache.manifest or 'none there'}, {len(cache.records)} records)")
            self.imports.append(cache)

    def _export(self, steps: list[Record], target: LocalCache) -> None:
        self.steps += 1
        number = self.steps
        started = time.monotonic()
        self._say(f"#{number} exporting cache to client directory {target.path} (mode={target.mode}, "
                  f"{len(steps)} records)")
        try:
            digest = export_cache(self.store, steps, target)
        except CacheIOError as exc:
            raise self._failed(exc) from None
        self._say(f"#{number} writing cache manifest {digest} done")
        self._report(number, f"DONE {time.monotonic() - started:.1f}s")

    async def _stages(self, stages: list[Stage], args: dict[str, str]) -> None:
        """Build the stages, each once those it reads are built: independent ones in parallel
        (as BuildKit's solver), a failure cancelling the others."""
        done = {stage.index: anyio.Event() for stage in stages}

        async def one(stage: Stage) -> None:
            for other in dependencies(self.dockerfile, stage, self.scope):
                await done[other.index].wait()
            self.built[stage.index] = await self._stage(stage, args)
            done[stage.index].set()

        if len(stages) == 1:
            self.built[stages[0].index] = await self._stage(stages[0], args)
            return
        from composer.backends.native.image.pull import _first_error

        try:
            async with anyio.create_task_group() as group:
                for stage in stages:
                    group.start_soon(one, stage)
        except BaseExceptionGroup as failed:
            first = _first_error(failed)
            raise first from first.__cause__

    def _expand(self, stage: Stage | Any, word: str, scope: dict[str, str], *, heredoc: bool = False) -> str:
        """``word`` expanded; a heredoc's body as BuildKit's raw lexer does it: its quotes kept, and
        ``\\`` its escape character whatever ``# escape=`` says."""
        try:
            if heredoc:
                return expand_word(word, scope, quotes=False)
            return expand_word(word, scope, escape=self.dockerfile.escape)
        except ExpansionError as exc:
            raise DockerfileSyntaxError(str(exc), line=stage.line, path=self.dockerfile.path) from None

    def _stage_named(self, name: str) -> Stage | None:
        for stage in self.dockerfile.stages:
            if (stage.name and stage.name == name.lower()) or (name.isdigit() and stage.index == int(name)):
                return stage
        return None

    async def _base(self, stage: Stage) -> Built:
        if stage.platform:  # the host's platform only (BuildKit's $BUILDPLATFORM is the host's too)
            wanted = self._expand(stage, stage.platform, self.scope)
            try:
                host = str(oci.Platform.parse(wanted)) == HOST_PLATFORM
            except ValueError:
                host = False
            if not host:
                raise _refuse(f"{self.dockerfile.path}:{stage.line}: FROM --platform={wanted} (not the host's "
                              f"{HOST_PLATFORM})")
        name = self._expand(stage, stage.base, self.scope)
        other = self._stage_named(name)
        if other is not None and other.index < stage.index:
            base = self.built[other.index]
            return Built(json.loads(json.dumps(base.config)), list(base.diff_ids), list(base.layers), base.key,
                         dict(base.run_env), list(base.steps))
        named = await self._ready(name)
        if isinstance(named, Built):  # a named context's image: in place of what FROM names
            return Built(json.loads(json.dumps(named.config)), list(named.diff_ids), list(named.layers), named.key)
        if isinstance(named, FolderContext):  # its files as the one layer of an image without config
            return await anyio.to_thread.run_sync(self._folder_image, named)
        if name == "scratch":  # BuildKit's empty image: WorkingDir "/"
            return _scratch()
        return await self._image(name)

    async def _named_contexts(self) -> None:
        """Read ``build.additional_contexts``; its images are resolved when a step names them
        (``_ready``), as BuildKit resolves only the named contexts the Dockerfile uses."""
        build = self.spec.service.build
        assert build is not None
        found = named_contexts(self.spec.service.name, build.additional_contexts, self.spec.service_images)
        for name, context in found.items():
            if self._stage_named(name) is not None:  # BuildKit's context would replace the stage
                raise _refuse(f"service {self.spec.service.name}: build.additional_contexts.{name} replacing the "
                              "stage of that name")
            self.named[name] = context

    async def _ready(self, name: str) -> Built | FolderContext | None:
        """Make what a FROM or ``--from`` that is no stage names ready: a named context's image
        (pulled as a base is; a service's from the store only: the planner built it), else an
        image pulled once per build into ``images`` (COPY --from and mount from=, as BuildKit);
        the named context, or None."""
        named = self.named.get(name)
        if isinstance(named, ImageContext):
            named = self.named[name] = (await self._image(named.reference) if named.pull
                                        else self._service_image(name, named))
        return named

    def _service_image(self, name: str, context: ImageContext) -> Built:
        record = self.store.get(str(parse_reference(context.reference)))
        if record is None:
            raise ImageBuildError(f"service {self.spec.service.name}: build.additional_contexts.{name}: image "
                                  f"{context.reference} is not built", backend_name=BACKEND, operation="build")
        return self._built_of(record)

    def _folder_image(self, context: FolderContext) -> Built:
        """FROM a folder context, as BuildKit's: scratch with the folder's files (after its
        .dockerignore) as a layer, owned by root; keyed by their content."""
        built = _scratch()
        try:
            plan = plan_copy(RootFS([]), "/", "/", [(ContextSource(context.path, context.matcher), ".")], [],
                             chown=None, chmod=None)
        except CopyError as exc:
            raise ImageBuildError(f"service {self.spec.service.name}: context {context.path}: {exc}",
                                  backend_name=BACKEND, operation="build") from None
        result = self._make(built, plan.write)
        built.diff_ids, built.layers = list(result.diff_ids), list(result.layers)
        built.key = cache_key.step_key(cache_key.SCRATCH, {"op": "context",
                                                           "plan": cache_key.plan_digest(plan, self.hashes)})
        return built

    async def _image(self, name: str) -> Built:
        """An image, pulled as ``ensure_image`` pulls (a base, or a COPY --from source)."""
        return self._built_of(await self.pull(name))

    def _built_of(self, record: ImageRecord) -> Built:
        config = json.loads(json.dumps(self.store.config(record)))
        manifest = self.store.manifest(record)
        layers = [oci.Descriptor.from_json(layer) for layer in manifest.get("layers") or []]
        diff_ids = [str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or []]
        return Built(config, diff_ids, layers, cache_key.image_key(record.config))

    async def _stage(self, stage: Stage, args: dict[str, str]) -> Built:
        total = 1 + sum(1 for command in stage.commands if _is_step(command))
        number = self._announce(stage, 1, total, f"FROM {self._expand(stage, stage.base, self.scope)}")
        started = time.monotonic()
        built = await self._base(stage)
        self._report(number, f"DONE {time.monotonic() - started:.1f}s")
        base_created = str(built.config.get("created") or "") or _created()
        state = image_config.start(built.config.get("config"), built.config.get("history") or [],
                                   path=self.dockerfile.path, escape=self.dockerfile.escape, run_env=built.run_env)
        state.globals = dict(self.scope)
        made: list[str] = []  # each step's created
        metadata: list[dict[str, Any]] = []  # the metadata instructions' history entries
        position = 1
        build = self.spec.service.build
        assert build is not None
        triggers = self._triggers(stage, state)
        total += sum(1 for command in triggers if _is_step(command))
        for command in [*triggers, *stage.commands]:
            if isinstance(command, CopyCommand) and command.from_:
                name = self._expand(command, command.from_, self.scope)
                if self._stage_named(name) is None and await self._ready(name) is None and name not in self.images:
                    self.images[name] = await self._image(name)  # COPY --from an image, as BuildKit
            if isinstance(command, RunCommand):
                try:
                    network = check_flags(command, entitlements=build.entitlements, privileged=build.privileged)
                    process = run_args(command, state.config.get("Shell") or image_config.DEFAULT_SHELL)
                except NotEntitled as exc:
                    raise self._fail(command, str(exc)) from None
                except RunRefused as exc:
                    raise _refuse(f"{self.dockerfile.path}:{command.line}: {exc}") from None
                mounts = self._mounts(command, state)
                for mount in mounts:  # RUN --mount from= an image, pulled as COPY --from's
                    name = self._expand(command, mount.from_, self.scope) if mount.from_ else ""
                    if name and self._stage_named(name) is None and await self._ready(name) is None and \
                            name not in self.images:
                        self.images[name] = await self._image(name)
            before = len(state.history)
            image_config.apply(state, command, args)
            if not _is_step(command):
                metadata += state.history[before:]
                continue
            position += 1
            number = self._announce(stage, position, total, " ".join(command.original.split()))
            if isinstance(command, CopyCommand):
                await self._in_thread(self._copy, command, state, built, number)
            elif isinstance(command, RunCommand):
                built.config["config"] = state.config
                if not command.network and build.network:
                    network = build.network
                self._check_gateway(command, network)
                await self._run_or_hit(command, process, state, built, number, network, mounts)
            elif not self._hit(number, command, self._workdir_op(state), state, built):  # cached: no thread
                await self._in_thread(self._workdir, command, state, built, number)
            made.append(str(state.history[-1]["created"]))
        # BuildKit's times: the metadata entries and the image are the stage's last step's (so a
        # cached rebuild is the same image), or SOURCE_DATE_EPOCH
        stamp = _rfc3339(self.epoch) if self.epoch is not None else (max(made) if made else base_created)
        for entry in metadata:
            entry["created"] = stamp
        built.config["config"] = state.config
        built.config["history"] = state.history
        built.run_env = state.run_env
        built.config["created"] = stamp
        built.config["rootfs"] = {"type": "layers", "diff_ids": list(built.diff_ids)}
        return built

    async def _run_or_hit(self, command: RunCommand, process: list[str], state: image_config.StageState,
                          built: Built, number: int, network: str, mounts: list[MountSpec]) -> None:
        """A cached RUN is done here (``_hit``), the others in a thread; so is one with a bind
        mount, whose key reads what it binds (a walk of the context or a stage)."""
        if any(mount.type == "bind" for mount in mounts) or not self._hit(
                number, command, self._run_op(command, process, state, network, mounts), state, built):
            await self._in_thread(self._run_step, command, process, state, built, number, network, mounts)

    # --- steps, through the cache -------------------------------------------------------------

    def _announce(self, stage: Stage, position: int, total: int, text: str) -> int:
        """Report a step as v2/BuildKit print it (``#N [service stage k/n] INSTRUCTION``); its N."""
        self.steps += 1
        where = self.spec.service.name
        if self.multi_stage:
            where += " " + (stage.name or f"stage-{stage.index}")
        self._say(f"#{self.steps} [{where} {position}/{total}] {text}")
        return self.steps

    def _report(self, number: int, text: str) -> None:
        self._say(f"#{number} {text}")

    def _say(self, details: str) -> None:
        """An event of the build's; from a step's worker thread it waits in ``pending`` until the
        step returns (a hop to the event loop per line cost more than a cached step)."""
        if self.sink is None:
            return
        event = Event(f"image:{self.spec.image}", EventStatus.WORKING, "Building", details=details)
        if threading.get_ident() == self.loop_thread:
            self.sink.emit(event)
        else:
            with self.pending_lock:  # stages build in parallel: several steps' threads at once
                self.pending.append(event)

    async def _in_thread(self, function: Callable[..., None], *args: Any) -> None:
        """Run a step in a worker thread, then emit what it said (also when it failed)."""
        try:
            await anyio.to_thread.run_sync(function, *args)
        finally:
            with self.pending_lock:
                events, self.pending = self.pending, []
            for event in events:
                if self.sink is not None:
                    self.sink.emit(event)

    def _step(self, number: int, command: Any, op: dict[str, Any], state: image_config.StageState, built: Built,
              produce: Callable[[LayerWriter], None], *, keep_empty: bool = False) -> None:
        """One filesystem step: its result from the cache (``#N CACHED``, nothing run), else
        ``produce`` writes its layer, which is stored and recorded under the step's key."""
        key, linked = self._key(op, built)
        started = time.monotonic()
        result = None if self.spec.no_cache else self.cache.get(key)
        if result is not None:
            self._report(number, "CACHED")
        else:
            with self.cache.computing(key):  # a concurrent build of the same step: wait, then reuse
                result = None if self.spec.no_cache else self.cache.get(key)
                if result is None:
                    result = self._imported(key, built, " ".join(command.original.split()), linked=linked)
                if result is not None:
                    self._report(number, "CACHED")
                else:
                    result = self._make(built, produce, keep_empty=keep_empty)
                    previous = self.cache.peek(key)  # --no-cache: the record it replaces
                    self.cache.put(key, " ".join(command.original.split()), result)
                    if previous is not None and not previous.empty and previous.layers != result.layers:
                        self.new_blobs.add(previous.layers[-1].digest)  # its layer, dropped at the end if unreached
                        self.new_layers.add(oci.chain_ids(list(previous.diff_ids))[-1])
                    # recorded: the cache keeps them now (builder prune removes them)
                    self.new_blobs.difference_update(layer.digest for layer in result.layers)
                    self.new_layers.difference_update(oci.chain_ids(list(result.diff_ids)))
                    self._report(number, f"DONE {time.monotonic() - started:.1f}s")
        self._apply(command, key, linked, result, state, built)

    def _key(self, op: dict[str, Any], built: Built) -> tuple[str, bool]:
        """A step's cache key, and whether it is a --link step's."""
        if self.epoch is not None:
            op = {**op, "source_date_epoch": self.epoch}
        # COPY/ADD --link whose key holds what it writes (its plan): keyed without the stage below, as
        # BuildKit's --link layers "don't get invalidated when commands on previous layers are changed"
        linked = bool(op.get("link")) and "plan" in op
        return cache_key.step_key(cache_key.LINKED if linked else built.key, op), linked

    def _hit(self, number: int, command: Any, op: dict[str, Any], state: image_config.StageState,
             built: Built) -> bool:
        """The step done from the store's cache when its record is there (``#N CACHED``), on the
        calling thread: on the event loop a cached step costs no hop to a worker thread and back
        (~0.2 ms each, more than the lookup). False: the step is to be built (``_step``, in a
        thread, which looks again under the step's lock)."""
        if self.spec.no_cache:
            return False
        key, linked = self._key(op, built)
        result = None if linked else self.cache.get(key)
        if result is None:
            return False
        self._report(number, "CACHED")
        self._apply(command, key, linked, result, state, built)
        return True

    def _apply(self, command: Any, key: str, linked: bool, result: StepResult, state: image_config.StageState,
               built: Built) -> None:
        """The stage after a step: its layers and key, and the step's history entry."""
        if linked:
            result = self._linked(built, result)
            built.steps.append(Record(key, " ".join(command.original.split()), result))  # cache_to's
            key = cache_key.step_key(built.key, {"linked": key})  # the later steps' parent: both
        else:
            built.steps.append(Record(key, " ".join(command.original.split()), result))
        built.diff_ids, built.layers, built.key = list(result.diff_ids), list(result.layers), key
        entry = state.history[-1]
        entry["created"] = result.created
        if result.empty:  # no layer: BuildKit's exporter marks the entry empty_layer
            entry["empty_layer"] = True
        else:
            entry.pop("empty_layer", None)

    def _linked(self, built: Built, result: StepResult) -> StepResult:
        """A --link step's layer (its own, made in an empty folder) on top of this stage's layers,
        whatever stage it was made on: unpacked as a new chain when the layers below differ."""
        if result.empty:
            return StepResult(tuple(built.diff_ids), tuple(built.layers), True, result.created)
        diff_id, descriptor = result.diff_ids[-1], result.layers[-1]
        chains = oci.chain_ids([*built.diff_ids, diff_id])
        if not self.store.has_layer(chains[-1]):
            blob = self.store.blob_path(descriptor.digest)

            def populate(directory: Path) -> int:
                with blob.open("rb") as handle:
                    return apply_layer(handle, directory, compression="gzip", diff_id=diff_id,
                                       what=f"built layer {descriptor.digest}")

            self.store.add_layer(chains[-1], diff_id, chains[-2] if len(chains) > 1 else None, populate)
            self.new_layers.add(chains[-1])
        return StepResult((*built.diff_ids, diff_id), (*built.layers, descriptor), False, result.created)

    def _imported(self, key: str, built: Built, description: str, *, linked: bool = False) -> StepResult | None:
        """The step's result from a ``cache_from`` folder, its layers put into the store and its
        record into the store's cache (under the step's lock, described by this Dockerfile's
        instruction, not the folder's text), or None. A --link step's record extends the layers
        it was made on, not necessarily this stage's (``_linked`` puts its layer on these)."""
        for cache in self.imports:
            record = cache.find(key)
            if record is None:
                continue
            below = record.result if linked else None
            parent_ids = list(below.diff_ids[:-1] if not below.empty else below.diff_ids) if below else built.diff_ids
            parent_layers = list(below.layers[:-1] if not below.empty else below.layers) if below else built.layers
            try:
                cache.materialize(self.store, record, parent_ids, parent_layers)
            except CacheIOError as exc:  # what it put in the store before failing goes at the end
                self.new_blobs.update(layer.digest for layer in record.result.layers)
                self.new_layers.update(oci.chain_ids(list(record.result.diff_ids)))
                raise self._failed(exc) from None
            self.cache.put(key, description, record.result)
            return record.result
        return None

    def _make(self, built: Built, produce: Callable[[LayerWriter], None], *, keep_empty: bool = False) -> StepResult:
        """Build a step's layer on top of the stage's; an empty one is dropped."""
        writer = LayerWriter(self.store, clamp=self.epoch)
        try:
            produce(writer)
        except BaseException:
            writer.discard()
            raise
        created = _rfc3339(self.epoch) if self.epoch is not None else _created()
        if not writer.entries and not keep_empty:  # keep_empty: WORKDIR's, an empty layer as BuildKit's
            writer.discard()
            return StepResult(tuple(built.diff_ids), tuple(built.layers), True, created)
        chains = oci.chain_ids(built.diff_ids)
        layer = writer.commit(chains[-1] if chains else None)
        if layer.new_blob:
            self.new_blobs.add(layer.descriptor.digest)
        if layer.new_layer:
            self.new_layers.add(layer.chain_id)
        return StepResult((*built.diff_ids, layer.diff_id), (*built.layers, layer.descriptor), False, created)

    def _triggers(self, stage: Stage, state: image_config.StageState) -> list[Command]:
        """The base's ONBUILD triggers, run first, as BuildKit does (for a base stage too), and
        dropped from the new image's config."""
        triggers = state.config.pop("OnBuild", None) or []
        if not triggers:
            return []
        text = "FROM scratch\n" + "".join(f"{trigger}\n" for trigger in triggers)
        try:
            parsed = build_stages(parse_dockerfile(text, path=f"{self.dockerfile.path} (ONBUILD of line "
                                                             f"{stage.line})"), self.dockerfile.path)
        except DockerfileSyntaxError as exc:
            raise self._fail(stage, f"an ONBUILD trigger of the base image: {exc}") from None
        return list(parsed.stages[0].commands)

    def _copy(self, command: CopyCommand, state: image_config.StageState, built: Built, number: int) -> None:
        if command.keep_git_dir:
            raise _refuse(f"{self.dockerfile.path}:{command.line}: {command.name} --keep-git-dir")
        scope = state.environment()
        rootfs = self._rootfs(built)
        source: Source
        if command.from_:
            name = self._expand(command, command.from_, self.scope)
            other = self._stage_named(name)
            if other is not None and other.index in self.built:
                source = StageSource(self._rootfs(self.built[other.index]))
            else:
                source = self._named_source(command, name)
        else:
            source = ContextSource(self.context, self.matcher)
        words = [self._expand(command, word, scope) for word in command.sources]
        if command.name == "ADD" and any(is_git_url(word) for word in words):
            raise _refuse(f"{self.dockerfile.path}:{command.line}: ADD of a git repository")
        if command.checksum and not (command.name == "ADD" and all("://" in word for word in words)):
            raise self._fail(command, "--checksum can only be used with HTTP(S) sources")
        inline = [(doc.path, (self._expand(command, doc.content, scope, heredoc=True) if doc.expand
                                    else doc.content).encode())
                  for doc in command.inline]
        excludes = [self._expand(command, word, scope) for word in command.excludes]
        destination = self._expand(command, command.destination, scope)
        chown = self._expand(command, command.chown, scope)
        workdir = state.config.get("WorkingDir") or "/"
        # --link: the files as a layer of their own, not resolved against the stage's (BuildKit's
        # link: the destination's links are not followed, missing folders are made as new)
        target = RootFS([]) if command.link else rootfs

        def plan(fetched: contextlib.ExitStack) -> CopyPlan:
            pairs: list[tuple[Source, str]] = []
            for word in words:
                if command.name == "ADD" and "://" in word:
                    pairs.append((self._fetch(command, word, fetched), word))
                else:
                    pairs.append((source, word))
            try:
                return plan_copy(target, workdir, destination, pairs, inline, chown=parse_chown(chown, rootfs),
                                 chmod=parse_chmod(command.chmod),
                                 unpack=(lambda source, path: _unpack(source, path, self._spool(fetched)))
                                 if command.name == "ADD" and not command.from_ else None,
                                 exclude=Matcher(parse("\n".join(excludes))) if excludes else None,
                                 parents=command.parents)
            except CopyError as exc:
                raise self._fail(command, str(exc)) from None

        # the key: what the copy writes, by content (the sources' files after .dockerignore, the
        # other stage's, or what a URL gave), not where it read them or when they were touched
        op = {"op": command.name, "from": bool(command.from_), "words": words, "destination": destination,
              "workdir": workdir, "chown": chown, "chmod": command.chmod, "link": command.link,
              "parents": command.parents, "excludes": excludes, "checksum": command.checksum}
        if command.checksum:
            # every source is a URL pinned by its checksum: the key needs nothing fetched (BuildKit's
            # http source keys on the checksum too), and a hit fetches nothing
            def produce(writer: LayerWriter) -> None:
                with contextlib.ExitStack() as fetched:
                    plan(fetched).write(writer)

            self._step(number, command, op, state, built, produce)
            return
        with contextlib.ExitStack() as fetched:
            planned = plan(fetched)
            self._step(number, command, {**op, "plan": cache_key.plan_digest(planned, self.hashes)}, state, built,
                       planned.write)

    def _spool(self, cleanup: contextlib.ExitStack) -> Path:
        """A private folder in the store's tmp/ for one step, removed after it."""
        folder = Path(tempfile.mkdtemp(prefix="build-spool.", dir=self.store.root / "tmp"))
        cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
        return folder

    def _fetch(self, command: CopyCommand, url: str, cleanup: contextlib.ExitStack) -> Source:
        """ADD of an http(s) URL: fetched on the host into the store's tmp/, removed after the step."""
        from composer.backends.native.build.fetch import FetchedSource, fetch  # urllib: only for ADD of a URL

        try:
            fetched = fetch(url, self.store.root / "tmp", command.checksum)
        except CopyError as exc:
            raise self._fail(command, str(exc)) from None
        cleanup.callback(fetched.path.unlink, missing_ok=True)
        return FetchedSource(fetched)

    @staticmethod
    def _workdir_op(state: image_config.StageState) -> dict[str, Any]:
        return {"op": "WORKDIR", "path": state.config.get("WorkingDir") or "/", "user": state.config.get("User") or ""}

    def _workdir(self, command: Any, state: image_config.StageState, built: Built, number: int) -> None:
        """WORKDIR makes its folder (and parents) when missing, owned by the stage's USER, as
        BuildKit's ``mkdir -p``; a layer, empty when the folder exists (none for ``/``)."""
        op = self._workdir_op(state)
        folder, user = op["path"], op["user"]

        def produce(writer: LayerWriter) -> None:
            rootfs = self._rootfs(built)
            if folder == "/" or rootfs.resolve(folder)[1] is not None:
                return
            try:
                plan = plan_copy(rootfs, "/", folder.rstrip("/") + "/", [], [], chown=parse_chown(user, rootfs),
                                 chmod=None)
            except CopyError as exc:
                raise self._fail(command, str(exc)) from None
            plan.write(writer)

        # BuildKit's mkdir -p makes a layer, empty when the folder exists; none for "/"
        self._step(number, command, op, state, built, produce, keep_empty=folder != "/")

    def _run_op(self, command: RunCommand, process: list[str], state: image_config.StageState, network: str,
                mounts: list[MountSpec]) -> dict[str, Any]:
        inner = state.config
        return {"op": "RUN", "process": process, "env": list(inner.get("Env") or []),
                "args": sorted(state.args.items()), "run_env": sorted(state.run_env.items()),
                "user": inner.get("User") or "", "workdir": inner.get("WorkingDir") or "/", "network": network,
                "mounts": [self._mount_key(command, mount) for mount in mounts], "security": command.security,
                **self._container_key()}

    def _run_step(self, command: RunCommand, process: list[str], state: image_config.StageState, built: Built,
                  number: int, network: str, mounts: list[MountSpec]) -> None:
        self._step(number, command, self._run_op(command, process, state, network, mounts), state, built,
                   lambda writer: self._run(command, process, state, built, network, mounts, number, writer))

    def _container_keys(self) -> dict[str, Any]:
        """``build.extra_hosts``, ``shm_size`` and ``ulimits`` as ServiceConfig keys of every RUN
        container: the runtime applies them as it does a service's (``host-gateway`` included)."""
        build = self.spec.service.build
        assert build is not None
        found: dict[str, Any] = {}
        if build.extra_hosts:
            found["extra_hosts"] = list(build.extra_hosts)
        if build.shm_size is not None:
            found["shm_size"] = int(build.shm_size)
        if build.ulimits:
            found["ulimits"] = {name: {"soft": limit.soft, "hard": limit.hard} for name, limit in build.ulimits.items()}
        return found

    def _check_gateway(self, command: RunCommand, network: str) -> None:
        """``host-gateway`` is the gateway of the RUN's network (the build's own bridge), as a
        service's is of its first network: a RUN without one is refused in one line, as a service
        with ``network_mode: none`` or ``host`` is (composer.backends.native.network.settings)."""
        build = self.spec.service.build
        assert build is not None
        if network != "default" and any(entry.partition("=")[2] == HOST_GATEWAY for entry in build.extra_hosts):
            raise UnsupportedFeatureError(
                f"service {self.spec.service.name}: {self.dockerfile.path}:{command.line}: "
                f"{' '.join(command.original.split())}: build.extra_hosts: {HOST_GATEWAY} needs a network (it is the "
                f"gateway of the build's network), not --network={network}", backend_name=BACKEND, operation="build")

    def _container_key(self) -> dict[str, Any]:
        """What of ``_container_keys`` a RUN's cache key holds, as BuildKit's: its ExecOp's cache
        map (solver/llbsolver/ops/exec.go, CacheMap) marshals the op's Meta with the extra hosts'
        names but their IPs blanked, and its ulimits; the Dockerfile frontend makes shm_size a
        tmpfs mount of that size on /dev/shm, a mount of the op, keyed too. So a changed address
        rebuilds nothing, a new name, size or limit rebuilds the RUNs. Absent keys add nothing
        (the keys of builds without them stay as they were)."""
        keys = self._container_keys()
        if "extra_hosts" in keys:
            keys["extra_hosts"] = [_host_name(entry) for entry in keys["extra_hosts"]]
        return keys

    def _mount_key(self, command: RunCommand, mount: MountSpec) -> dict[str, Any]:
        """A mount as the step's key holds it: its parsed options (a secret's id, target and env,
        never its value: BuildKit does not key on secret content) and a bind's source by content
        (the context after .dockerignore, or the stage's files), as BuildKit keys a bind on the
        content of what it mounts. A cache mount's folder is not keyed (it is a cache)."""
        found: dict[str, Any] = dataclasses.asdict(mount)
        if mount.type == "bind":
            found["content"] = cache_key.source_digest(self._source_for(command, mount.from_), mount.source or ".",
                                                       self.hashes)
        return found

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
        """What a mount's ``from=`` names: the build context (""), an earlier stage, a named
        context or an image."""
        if not name:
            return ContextSource(self.context, self.matcher)
        name = self._expand(command, name, self.scope)
        other = self._stage_named(name)
        if other is not None and other.index in self.built:
            return StageSource(self._rootfs(self.built[other.index]))
        return self._named_source(command, name)

    def _named_source(self, command: Any, name: str) -> Source:
        """The files a ``--from`` that is no stage names: a named context (BuildKit looks them
        up before images), else an image pulled before the step."""
        named = self.named.get(name)
        if isinstance(named, FolderContext):
            return ContextSource(named.path, named.matcher)
        found = named if isinstance(named, Built) else self.images.get(name)
        if found is None:
            raise self._fail(command, f"--from={name}: neither a stage built before, a named context nor an image")
        return StageSource(self._rootfs(found))

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
             network: str, mounts: list[MountSpec], number: int, writer: LayerWriter) -> None:
        lower = self._rootfs(built)
        try:
            prepared = self._prepare(command, state, mounts)
            with contextlib.ExitStack() as cleanup, prepared as ready, run_container(
                    self.store, self.runtime(), built.config, built.diff_ids, process, state.run_env, network=network,
                    volumes=[*ready.volumes, *self._script_mount(command, cleanup)], environment=ready.environment,
                    privileged=command.security == "insecure", service_keys=self._container_keys(),
                    build_network=self.network) as (result, upper):
                self._finish(command, process, result, upper, lower, stub_parts(ready.targets), number, writer)
        except MountError as exc:
            raise self._fail(command, str(exc)) from None

    def _script_mount(self, command: RunCommand, cleanup: contextlib.ExitStack) -> list[dict[str, Any]]:
        """A RUN heredoc's #! script (run.heredoc_script) as a read-only mount of a folder holding only
        it (0755), at run.SCRIPTS, where BuildKit mounts it; under /dev, so never in the layer."""
        script = heredoc_script(command)
        if script is None:
            return []
        folder = self._spool(cleanup)
        os.chmod(folder, 0o755)
        file = folder / script[0]
        file.write_text(script[1])
        file.chmod(0o755)
        return [{"type": "bind", "source": str(folder), "target": SCRIPTS, "read_only": True}]

    def _prepare(self, command: RunCommand, state: image_config.StageState,
                 mounts: list[MountSpec]) -> contextlib.AbstractContextManager[Prepared]:
        return prepare(mounts, store_root=self.store.root, workdir=state.config.get("WorkingDir") or "/",
                       secrets=self._secrets(mounts), source_for=lambda name: self._source_for(command, name))

    def _finish(self, command: RunCommand, process: list[str], result: RunResult, upper: Path, lower: RootFS,
                stubs: set[tuple[str, ...]], number: int, writer: LayerWriter) -> None:
        for line in result.output.splitlines():
            self._say(f"#{number} {line}")
        if result.exit_code != 0:
            shown = " ".join(process)
            tail = last_lines(result.output)
            raise self._fail(command, f'process "{shown}" did not complete successfully: exit code: '
                                      f"{result.exit_code}" + (f": {tail}" if tail else ""))
        diff(upper, lower, writer, stubs)


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
            replaced = self.store.get(record.reference)
            if replaced is not None and (replaced.manifest, replaced.config, replaced.source) == (
                    manifest_digest, config_digest, "build"):
                records.append(replaced)  # the same image (a cached rebuild): the index stays as it is
                continue
            self.store.put(record)
            if replaced is not None and replaced.manifest != manifest_digest:  # dropped at the end if unreached
                self.new_blobs.update((replaced.manifest, replaced.config))
            records.append(record)
        return records


def _scratch() -> Built:
    """BuildKit's empty image: WorkingDir "/"."""
    return Built({"architecture": "amd64", "os": "linux", "config": {"WorkingDir": "/"},
                  "rootfs": {"type": "layers", "diff_ids": []}, "history": []})


def _host_name(entry: str) -> str:
    """The name of an ``extra_hosts`` entry (``name=address``: the loader's canonical form)."""
    return entry.partition("=")[0]


def _is_step(command: Any) -> bool:
    """Whether an instruction is a filesystem step (a cache step and a line of the progress)."""
    return isinstance(command, CopyCommand | RunCommand) or (
        isinstance(command, WordsCommand) and command.name == "WORKDIR")


def _unpack(source: Source, path: Path, spool: Path) -> Source | None:
    """ADD's rule for a file named in the context: a tar archive (plain or compressed) is
    extracted (a downloaded one is not, as Docker documents)."""
    if not isinstance(source, ContextSource):
        return None
    from composer.backends.native.build.fetch import ArchiveSource, is_archive  # urllib: not on a cached build's path

    return ArchiveSource(path, spool) if is_archive(path) else None


def is_git_url(word: str) -> bool:
    """A git source as BuildKit tells them apart: git@, git://, a .git URL or a #fragment on one."""
    return word.startswith(("git@", "git://")) or (
        "://" in word and (word.split("#")[0].endswith(".git") or ("github.com/" in word and "#" in word)))
