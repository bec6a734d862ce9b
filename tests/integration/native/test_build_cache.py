"""The native builder's step cache, with real builds into a tmp store: after one edit (a context
file, an instruction, a build argument) exactly the steps that depend on it are built again and
the others are reported CACHED, as BuildKit's (``#N CACHED``); a CACHED RUN does not run (the
time it wrote is the first build's). Each build is its own backend, as each composer command is:
the cache lives in the store. Also: RUN --mount (a bind's source by content, never a secret's
value), ADD of a URL (--checksum: cached without fetching), cache mounts and builder prune,
--no-cache, concurrent builds of one step, ``builder prune``,
SOURCE_DATE_EPOCH's reproducible digests, and independent stages built in parallel.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from composer.backends.native.backend import NativeBackend
from composer.backends.native.build.cache import StepCache
from composer.backends.native.build.rootfs import RootFS
from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.backends.native.system import NativeSystem
from composer.contract.backend import BuildSecret, BuildSpec
from composer.contract.system import PruneOptions
from composer.errors import ImageBuildError
from composer.events import ListSink
from composer.spec.models.service import ServiceConfig
from tests.integration.registry import LocalRegistry
from tests.integration.timeouts import scaled
from tests.support.file_server import serving

CGROUP_PARENT = f"composer-test-build-cache-{os.getpid()}"


@pytest.fixture(scope="module", autouse=True)
def _the_cgroup_parent_goes() -> Iterator[None]:
    from tests.support.isolation import remove_cgroup_parent

    yield
    remove_cgroup_parent(CGROUP_PARENT)


@dataclass
class Result:
    record: ImageRecord
    rootfs: RootFS
    steps: dict[str, str]  # instruction -> "CACHED" or "DONE"

    def read(self, path: str) -> str:
        _, entry = self.rootfs.resolve(path)
        assert entry is not None, path
        return entry.host.read_text()

    def built(self) -> list[str]:
        return [step for step, status in self.steps.items() if status == "DONE" and not step.startswith("FROM")]

    def cached(self) -> list[str]:
        return [step for step, status in self.steps.items() if status == "CACHED"]


def _backend(store: ImageStore) -> NativeBackend:
    return NativeBackend(store.root, environ={"COMPOSER_RUN_ROOT": str(store.root.parent / "run"),
                                              "COMPOSER_CGROUP_PARENT": CGROUP_PARENT})


def _spec(context: Path, image: str, args: dict[str, str] | None, secrets: dict[str, BuildSecret] | None = None,
          **build: object) -> BuildSpec:
    service = ServiceConfig.model_validate({"name": "web", "build": {"context": str(context), **build}})
    return BuildSpec("demo", service, image, {}, args=args or {}, no_cache=bool(build.get("no_cache")),
                     secrets=secrets or {})


def steps_of(sink: ListSink) -> dict[str, str]:
    """The progress lines as v2 prints them (``#N [web k/n] INSTRUCTION``, then ``#N CACHED`` or
    ``#N DONE 0.1s``): each step's instruction and how it ended."""
    names: dict[str, str] = {}
    ends: dict[str, str] = {}
    for event in sink.events:
        number, _, rest = (event.details or "").partition(" ")
        if not number.startswith("#"):
            continue
        if rest.startswith("["):
            names[number] = rest.partition("] ")[2]
        elif rest == "CACHED" or rest.startswith("DONE "):
            ends[number] = rest.split()[0]
    return {names[number]: ends.get(number, "?") for number in names}


def build(store: ImageStore, context: Path, dockerfile: str, *, image: str = "demo-web",
          args: dict[str, str] | None = None, secrets: dict[str, BuildSecret] | None = None,
          **options: object) -> Result:
    (context / "Dockerfile").write_text(dockerfile)
    backend = _backend(store)
    sink = ListSink()
    try:
        anyio.run(backend.build_image, _spec(context, image, args, secrets, **options), sink)
    finally:
        anyio.run(backend.aclose)
    record = backend.store.get(f"docker.io/library/{image}:latest")
    assert record is not None
    return Result(record, RootFS([layer.path for layer in backend.store.layers(record)]), steps_of(sink))


@pytest.fixture
def context(tmp_path: Path) -> Path:
    folder = tmp_path / "ctx"
    folder.mkdir()
    (folder / "a.txt").write_text("a\n")
    (folder / "b.txt").write_text("b\n")
    (folder / "noise.log").write_text("ignored\n")
    (folder / ".dockerignore").write_text("*.log\nDockerfile\n")
    return folder


DOCKERFILE = """\
FROM {busybox}
WORKDIR /srv
COPY a.txt ./
RUN cat /proc/uptime > /srv/first && cat /srv/a.txt >> /srv/first
COPY . /ctx/
ARG FLAVOUR=plain
RUN cat /proc/uptime > /srv/second && echo $FLAVOUR >> /srv/second && cat /ctx/b.txt >> /srv/second
LABEL stage={label}
"""
WORKDIR, COPY_A = "WORKDIR /srv", "COPY a.txt ./"
RUN_1 = "RUN cat /proc/uptime > /srv/first && cat /srv/a.txt >> /srv/first"
COPY_ALL = "COPY . /ctx/"
RUN_2 = "RUN cat /proc/uptime > /srv/second && echo $FLAVOUR >> /srv/second && cat /ctx/b.txt >> /srv/second"
ALL = [WORKDIR, COPY_A, RUN_1, COPY_ALL, RUN_2]


def test_an_edit_rebuilds_exactly_the_steps_that_depend_on_it(store: ImageStore, context: Path,
                                                              local_registry: LocalRegistry) -> None:
    dockerfile = DOCKERFILE.format(busybox=local_registry.busybox, label="one")
    first = build(store, context, dockerfile)
    assert first.built() == ALL
    stamps = (first.read("/srv/first"), first.read("/srv/second"))
    assert stamps[1].endswith("plain\nb\n")

    # nothing changed (another composer command): every step CACHED, no RUN ran, the same image
    again = build(store, context, dockerfile)
    assert (again.built(), again.cached()) == ([], ALL)
    assert (again.read("/srv/first"), again.read("/srv/second")) == stamps
    assert again.record.config == first.record.config  # the image ID, as BuildKit's cached rebuild

    # a touched file (mtime only), an edited file that .dockerignore excludes, a LABEL: nothing to build
    os.utime(context / "a.txt", (time.time() + 100, time.time() + 100))
    (context / "noise.log").write_text("other noise\n")
    relabelled = build(store, context, DOCKERFILE.format(busybox=local_registry.busybox, label="two"))
    assert (relabelled.built(), relabelled.cached()) == ([], ALL)
    assert (relabelled.read("/srv/first"), relabelled.read("/srv/second")) == stamps

    # an edited context file: the COPY that reads it and what follows
    (context / "b.txt").write_text("b, edited\n")
    edited = build(store, context, dockerfile)
    assert (edited.built(), edited.cached()) == ([COPY_ALL, RUN_2], [WORKDIR, COPY_A, RUN_1])
    assert edited.read("/srv/first") == stamps[0]
    second = edited.read("/srv/second")
    assert second != stamps[1]
    assert second.endswith("plain\nb, edited\n")

    # a build argument: only the RUN after its ARG
    flavoured = build(store, context, dockerfile, args={"FLAVOUR": "spicy"})
    assert (flavoured.built(), flavoured.cached()) == ([RUN_2], [WORKDIR, COPY_A, RUN_1, COPY_ALL])
    assert flavoured.read("/srv/second").endswith("spicy\nb, edited\n")

    # an edited instruction: it and every step after it
    changed = dockerfile.replace("cat /srv/a.txt >> /srv/first", "cat /srv/a.txt >> /srv/first && true")
    rerun = build(store, context, changed)
    assert (rerun.built(), rerun.cached()) == ([RUN_1 + " && true", COPY_ALL, RUN_2], [WORKDIR, COPY_A])
    rerun_first = rerun.read("/srv/first")
    assert rerun_first != stamps[0]

    # --no-cache: every step runs again (and the result is recorded: the next build is all CACHED;
    # the layers it replaced in the cache and the image go, as nothing reaches them)
    fresh = build(store, context, changed, no_cache=True)
    assert fresh.built() == [WORKDIR, COPY_A, RUN_1 + " && true", COPY_ALL, RUN_2]
    assert fresh.read("/srv/first") != rerun_first
    assert build(store, context, changed).built() == []


def test_the_context_hashes_known_by_stat_miss_no_edit(store: ImageStore, context: Path,
                                                      local_registry: LocalRegistry) -> None:
    """The context's file digests are kept by their stat (build.hashes, as BuildKit's content hash
    cache keeps them), so an unchanged file is not read again; what the stat cannot hide: an edit
    of the same size with the mtime put back (the ctime moved), a file replaced by another of the
    same size and mtime (another inode). Each rebuilds the COPY that reads it, as BuildKit's does."""
    from composer.backends.native.build.hashes import FILE, RACY_SECONDS

    dockerfile = f"FROM {local_registry.busybox}\nCOPY a.txt b.txt /in/\n"
    old = time.time() - 3600
    for name in ("a.txt", "b.txt"):
        os.utime(context / name, (old, old))
    time.sleep(RACY_SECONDS + 0.2)  # the files' ctime is no longer racy: their digests are kept
    assert build(store, context, dockerfile).built() == ["COPY a.txt b.txt /in/"]
    known = json.loads(store.root.joinpath(*FILE).read_bytes())["files"]
    assert sorted(key.rpartition(":")[2] for key in known) == [str(context / "a.txt"), str(context / "b.txt")]
    assert build(store, context, dockerfile).built() == []

    # the same size, the mtime put back: the ctime tells
    stat = os.stat(context / "a.txt")
    (context / "a.txt").write_text("A\n")
    os.utime(context / "a.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    edited = build(store, context, dockerfile)
    assert edited.built() == ["COPY a.txt b.txt /in/"]
    assert edited.read("/in/a.txt") == "A\n"

    # replaced by a rename with the same size and times: another inode
    stat = os.stat(context / "b.txt")
    (context / "b.new").write_text("B\n")
    os.utime(context / "b.new", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.rename(context / "b.new", context / "b.txt")
    replaced = build(store, context, dockerfile)
    assert replaced.built() == ["COPY a.txt b.txt /in/"]
    assert replaced.read("/in/b.txt") == "B\n"
    assert build(store, context, dockerfile).built() == []


def test_a_stage_rebuilt_to_the_same_files_keeps_what_copies_from_it_cached(store: ImageStore, context: Path,
                                                                           local_registry: LocalRegistry) -> None:
    dockerfile = f"""\
FROM {local_registry.busybox} AS side
COPY a.txt /a.txt
RUN cut -c1 /a.txt > /out
FROM {local_registry.busybox} AS unused
RUN exit 3
FROM {local_registry.busybox}
RUN cat /proc/uptime > /stamp
COPY --from=side /out /out
RUN cat /proc/uptime > /after
"""
    (context / "a.txt").write_text("xyz\n")
    first = build(store, context, dockerfile)
    assert first.built() == ["COPY a.txt /a.txt", "RUN cut -c1 /a.txt > /out", "RUN cat /proc/uptime > /stamp",
                             "COPY --from=side /out /out", "RUN cat /proc/uptime > /after"]  # not the unused stage
    assert first.read("/out") == "x\n"
    # the side stage's input changes, its output does not: its steps run, the final stage's stay cached
    (context / "a.txt").write_text("xab\n")
    second = build(store, context, dockerfile)
    assert second.built() == ["COPY a.txt /a.txt", "RUN cut -c1 /a.txt > /out"]
    assert second.cached() == ["RUN cat /proc/uptime > /stamp", "COPY --from=side /out /out",
                               "RUN cat /proc/uptime > /after"]
    assert (second.read("/stamp"), second.read("/after")) == (first.read("/stamp"), first.read("/after"))
    # now the output changes: the COPY --from and the RUN after it are built again
    (context / "a.txt").write_text("yab\n")
    third = build(store, context, dockerfile)
    assert third.built() == ["COPY a.txt /a.txt", "RUN cut -c1 /a.txt > /out", "COPY --from=side /out /out",
                             "RUN cat /proc/uptime > /after"]
    assert third.read("/out") == "y\n"
    assert third.read("/stamp") == first.read("/stamp")


def test_two_concurrent_builds_run_a_shared_step_once(store: ImageStore, context: Path,
                                                      local_registry: LocalRegistry) -> None:
    (context / "Dockerfile").write_text(f"FROM {local_registry.busybox}\nRUN sleep 1; cat /proc/uptime > /stamp\n")
    sinks = [ListSink(), ListSink()]

    async def both() -> None:
        backends = [_backend(store), _backend(store)]
        try:
            async with anyio.create_task_group() as group:
                for index, (backend, sink) in enumerate(zip(backends, sinks, strict=True)):
                    group.start_soon(backend.build_image, _spec(context, f"demo-{index}", None), sink)
        finally:
            for backend in backends:
                await backend.aclose()

    anyio.run(both)
    statuses = sorted(steps_of(sink)["RUN sleep 1; cat /proc/uptime > /stamp"] for sink in sinks)
    assert statuses == ["CACHED", "DONE"]  # one ran it, the other waited on the step's lock and reused it
    stamps = set()
    for index in range(2):
        record = store.get(f"docker.io/library/demo-{index}:latest")
        assert record is not None
        stamps.add(Result(record, RootFS([layer.path for layer in store.layers(record)]), {}).read("/stamp"))
    assert len(stamps) == 1


def test_builder_prune_removes_dangling_records_all_and_by_last_use(store: ImageStore, context: Path,
                                                                    local_registry: LocalRegistry) -> None:
    dockerfile = f"FROM {local_registry.busybox}\nCOPY a.txt /a.txt\nRUN echo made > /made\n"
    first = build(store, context, dockerfile)
    cache = StepCache(store)
    assert len(cache.records()) == 2
    layers = [layer.chain_id for layer in store.layers(first.record)]
    system = NativeSystem(store.root, environ={"COMPOSER_RUN_ROOT": str(store.root.parent / "run"),
                                               "COMPOSER_CGROUP_PARENT": CGROUP_PARENT})
    cache_row = system.disk_usage()[3]  # system df: the step cache's records and their layers' bytes
    assert (cache_row.type, cache_row.total) == ("Build Cache", 2)
    assert cache_row.size > 0
    # the image uses both records' layers: none is dangling
    assert system.prune_build_cache(PruneOptions()).build_cache == []
    # store gc and system prune keep what the cache names
    store.remove(first.record.reference)
    store.gc()
    assert all(store.has_layer(chain) for chain in layers)
    assert build(store, context, dockerfile).built() == []
    # until: records used in the last hour stay
    assert system.prune_build_cache(PruneOptions(all=True, until=time.time() - 3600)).build_cache == []
    # untagged, the records are dangling: the CLI's builder prune removes them and their layers
    store.remove(first.record.reference)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3]), "COMPOSER_ROOT": str(store.root),
           "COMPOSER_RUN_ROOT": str(store.root.parent / "run"), "COMPOSER_CGROUP_PARENT": CGROUP_PARENT}
    done = subprocess.run([sys.executable, "-m", "composer", "--backend", "native", "builder", "prune", "-f"],
                          capture_output=True, text=True, env=env, timeout=scaled(120), check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Deleted build cache objects:"
    assert len(lines[1:3]) == 2
    assert lines[-1].startswith("Total reclaimed space: ")
    assert cache.records() == []
    assert not any(store.has_layer(chain) for chain in layers[-2:])  # the built ones (the base image stays tagged)
    assert build(store, context, dockerfile).built() == ["COPY a.txt /a.txt", "RUN echo made > /made"]
    # --all: also what an image uses
    assert len(system.prune_build_cache(PruneOptions(all=True)).build_cache) == 2


def test_source_date_epoch_gives_equal_digests_without_the_cache(store: ImageStore, context: Path,
                                                                 local_registry: LocalRegistry) -> None:
    dockerfile = f"""\
FROM {local_registry.busybox}
WORKDIR /srv/app
COPY . ./
RUN mkdir -p /made && echo same > /made/file && touch /made/file
ENV MODE=prod
"""
    epoch = {"SOURCE_DATE_EPOCH": "1700000000"}
    first = build(store, context, dockerfile, args=epoch, no_cache=True)
    second = build(store, context, dockerfile, args=epoch, no_cache=True)
    assert first.built() == second.built() == ["WORKDIR /srv/app", "COPY . ./",
                                               "RUN mkdir -p /made && echo same > /made/file && touch /made/file"]
    assert (first.record.manifest, first.record.config) == (second.record.manifest, second.record.config)
    config = store.config(second.record)
    assert config["created"] == "2023-11-14T22:13:20Z"
    history = config["history"]
    assert [entry["created"] for entry in history[-4:]] == ["2023-11-14T22:13:20Z"] * 4
    run_layer = store.manifest(second.record)["layers"][-1]
    with tarfile.open(store.blob_path(run_layer["digest"]), "r:*") as archive:
        times = {member.name: member.mtime for member in archive.getmembers()}
    assert times["made/file"] == 1700000000  # made during the build: clamped to the epoch
    # without it, the same two builds differ (times in the config and the layers)
    plain = [build(store, context, dockerfile, no_cache=True).record for _ in range(2)]
    assert plain[0].manifest != plain[1].manifest
    with pytest.raises(ImageBuildError, match="invalid SOURCE_DATE_EPOCH 'soon'"):
        build(store, context, dockerfile, args={"SOURCE_DATE_EPOCH": "soon"})


def test_independent_stages_build_in_parallel_and_a_failure_is_one_line(store: ImageStore, context: Path,
                                                                         local_registry: LocalRegistry) -> None:
    dockerfile = f"""\
FROM {local_registry.busybox} AS left
RUN cut -d' ' -f1 /proc/uptime > /start; sleep 5; cut -d' ' -f1 /proc/uptime > /end; echo left
FROM {local_registry.busybox} AS right
RUN cut -d' ' -f1 /proc/uptime > /start; sleep 5; cut -d' ' -f1 /proc/uptime > /end; echo right
FROM {local_registry.busybox}
COPY --from=left /start /end /left/
COPY --from=right /start /end /right/
"""
    (context / "Dockerfile").write_text(dockerfile)
    backend = _backend(store)
    sink = ListSink()
    try:
        anyio.run(backend.build_image, _spec(context, "demo-web", None), sink)
    finally:
        anyio.run(backend.aclose)
    lines = [event.details or "" for event in sink.events if (event.details or "").startswith("#")]
    runs = [index for index, line in enumerate(lines) if "] RUN cut" in line]
    numbers = {lines[index].split()[0] for index in runs}
    ends = [index for index, line in enumerate(lines) if line.split()[0] in numbers and line.split()[1] == "DONE"]
    assert len(runs) == 2
    assert len(ends) == 2
    assert runs[1] < ends[0]  # the second stage's RUN began before the first one's ended
    record = store.get("docker.io/library/demo-web:latest")
    assert record is not None
    result = Result(record, RootFS([layer.path for layer in store.layers(record)]), {})
    spans = {side: (float(result.read(f"/{side}/start")), float(result.read(f"/{side}/end")))
             for side in ("left", "right")}
    assert spans["left"][0] < spans["right"][1]  # the two RUNs overlapped
    assert spans["right"][0] < spans["left"][1]
    # a failing stage among parallel ones: the build's one-line error names its step
    (context / "Dockerfile").write_text(dockerfile.replace("echo left", "exit 7"))
    backend = _backend(store)
    try:
        with pytest.raises(ImageBuildError, match=r"exit code: 7"):
            anyio.run(backend.build_image, _spec(context, "demo-web", None, no_cache=True), ListSink())
    finally:
        anyio.run(backend.aclose)


BIND_RUN = ("RUN --mount=type=bind,source=conf.txt,target=/conf --mount=type=secret,id=token "
            "cat /proc/uptime > /stamp && cat /conf >> /stamp")


def test_a_run_with_a_bind_mount_rebuilds_when_the_bound_file_changes(store: ImageStore, context: Path,
                                                                       local_registry: LocalRegistry) -> None:
    """BuildKit keys a bind mount on the content it binds (after .dockerignore) and a secret
    mount on its id only: a changed secret value rebuilds nothing (BuildKit's documented
    behaviour: secrets are not part of the cache key), and the value is in no cache record."""
    (context / "conf.txt").write_text("one\n")
    dockerfile = f"FROM {local_registry.busybox}\n{BIND_RUN}\n"
    first = build(store, context, dockerfile, secrets={"token": BuildSecret(value=b"first-s3cret")})
    assert first.built() == [BIND_RUN]
    stamp = first.read("/stamp")
    assert stamp.endswith("one\n")

    # the same bound content (touched, another context file edited): CACHED, the RUN did not run
    os.utime(context / "conf.txt", (time.time() + 100, time.time() + 100))
    (context / "b.txt").write_text("b, edited\n")
    again = build(store, context, dockerfile, secrets={"token": BuildSecret(value=b"other-s3cret")})
    assert (again.built(), again.cached()) == ([], [BIND_RUN])
    assert again.read("/stamp") == stamp
    records = b"".join(path.read_bytes() for path in (store.root / "cache").rglob("*") if path.is_file())
    assert b"s3cret" not in records

    # the bound file edited: the RUN runs again and sees it
    (context / "conf.txt").write_text("two\n")
    edited = build(store, context, dockerfile, secrets={"token": BuildSecret(value=b"other-s3cret")})
    assert edited.built() == [BIND_RUN]
    assert edited.read("/stamp").endswith("two\n")
    assert edited.read("/stamp") != stamp

    # excluded by .dockerignore, the bind's source is missing: a one-line error, not a cached step
    (context / ".dockerignore").write_text("*.log\nDockerfile\nconf.txt\n")
    with pytest.raises(ImageBuildError, match=r"conf\.txt"):
        build(store, context, dockerfile, image="excluded")


def test_add_of_a_url_with_checksum_is_cached_without_fetching(store: ImageStore, context: Path) -> None:
    """BuildKit's http source keys on --checksum when it is given (a hit fetches nothing), else
    on the fetched content."""
    files: dict[str, bytes] = {"/f.txt": b"over http\n"}
    requests: list[str] = []
    with serving(files, requests) as base:
        url = f"{base}/f.txt"
        digest = hashlib.sha256(b"over http\n").hexdigest()
        pinned = f"ADD --checksum=sha256:{digest} {url} /dl/"
        first = build(store, context, f"FROM scratch\n{pinned}\n")
        assert (first.built(), first.read("/dl/f.txt"), len(requests)) == ([pinned], "over http\n", 1)
        again = build(store, context, f"FROM scratch\n{pinned}\n")
        assert (again.built(), again.cached(), len(requests)) == ([], [pinned], 1)
        assert again.record.config == first.record.config

        # without --checksum: fetched each build, keyed by what came
        plain = f"ADD {url} /dl/"
        assert build(store, context, f"FROM scratch\n{plain}\n").built() == [plain]
        cached = build(store, context, f"FROM scratch\n{plain}\n")
        assert (cached.built(), cached.cached(), len(requests)) == ([], [plain], 3)
        files["/f.txt"] = b"changed\n"
        changed = build(store, context, f"FROM scratch\n{plain}\n")
        assert (changed.built(), changed.read("/dl/f.txt")) == ([plain], "changed\n")


def test_cache_mounts_outlive_gc_and_check_and_go_with_builder_prune(store: ImageStore, context: Path,
                                                                       local_registry: LocalRegistry) -> None:
    """docker builder prune removes BuildKit's cache mounts (exec.cachemount records) with or
    without --all; the store's gc and composer system check keep them (no residue)."""
    run = "RUN --mount=type=cache,target=/c,id=counter echo x >> /c/n && wc -l < /c/n > /count"
    dockerfile = f"FROM {local_registry.busybox}\n{run}\n"
    first = build(store, context, dockerfile)
    assert first.read("/count").strip() == "1"
    mounts = [path for path in (store.root / "cache-mounts").iterdir() if path.is_dir()]
    assert len(mounts) == 1
    store.gc()
    system = NativeSystem(store.root, environ={"COMPOSER_RUN_ROOT": str(store.root.parent / "run"),
                                               "COMPOSER_CGROUP_PARENT": CGROUP_PARENT})
    assert [finding for finding in system.check() if "cache-mounts" in finding.name] == []
    assert (mounts[0] / "n").read_text() == "x\n"
    # another RUN (a new key) sees what the first left in the cache folder
    second = build(store, context, dockerfile.replace("> /count", "> /count2"))
    assert second.read("/count2").strip() == "2"
    assert system.disk_usage()[3].total == len(StepCache(store).records()) + 1
    report = system.prune_build_cache(PruneOptions())
    assert mounts[0].name in report.build_cache
    assert not mounts[0].exists()
    third = build(store, context, dockerfile.replace("> /count", "> /count3"))
    assert third.read("/count3").strip() == "1"


def test_a_build_under_its_run_root_leaves_nothing_elsewhere(store: ImageStore, context: Path, tmp_path: Path,
                                                             local_registry: LocalRegistry,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The build's network (a RUN on the default network makes a bridge, its state and lock under
    the run root) and its containers go under the backend's run root (COMPOSER_RUN_ROOT as the
    command got it), never under the process's own or /run/composer; nothing stays there after."""
    elsewhere = tmp_path / "process-run-root"
    monkeypatch.setenv("COMPOSER_RUN_ROOT", str(elsewhere))  # what code reading os.environ would use
    default_existed = os.path.exists("/run/composer")
    dockerfile = f"FROM {local_registry.busybox}\nRUN echo built > /built && ls /sys/class/net > /nets\n"
    result = build(store, context, dockerfile)
    assert result.read("/built") == "built\n"
    assert "eth0" in result.read("/nets").split()  # it ran on the build's bridge network
    assert not elsewhere.exists()
    if not default_existed:  # another composer on the host may use /run/composer: then nothing to say
        assert not os.path.exists("/run/composer")
    run_root = store.root.parent / "run"
    assert (run_root / "networks" / ".lock").exists()  # the network was made here
    assert [path.name for path in run_root.iterdir() if path.name.startswith("build-")] == []
    assert [path.name for path in (run_root / "networks").iterdir() if path.name != ".lock"] == []


def test_a_record_whose_layer_is_gone_is_built_again(store: ImageStore, context: Path,
                                                     local_registry: LocalRegistry) -> None:
    """A fully cached build still checks that each step's layers are in the store (once per
    build): a record whose layer went (a store damaged by hand) is a miss, built and recorded again."""
    dockerfile = f"FROM {local_registry.busybox}\nCOPY a.txt /a.txt\nRUN echo made > /made\n"
    first = build(store, context, dockerfile)
    assert build(store, context, dockerfile).built() == []
    shutil.rmtree(store.layer_root([layer.chain_id for layer in store.layers(first.record)][-1]))
    again = build(store, context, dockerfile)
    assert (again.built(), again.cached()) == (["RUN echo made > /made"], ["COPY a.txt /a.txt"])
    assert again.read("/made") == "made\n"
    assert build(store, context, dockerfile).built() == []
