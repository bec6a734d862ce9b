"""The native builder's cache across stores and services, with real builds: ``build.cache_to`` /
``build.cache_from`` of ``type=local`` (composer.backends.native.build.cache_io) give a store that
never built the Dockerfile the recorded steps (``CACHED``) and the same image ID, ``mode=min``
only the final stage's steps; a cache folder is untrusted (a changed blob, a link) and refused in
one line; other cache types are refused in one line naming them. And ``composer build`` of three
services sharing their first steps (the executor runs their builds at once): built concurrently,
the shared steps once (the others wait on the step's lock and report CACHED), one record per step,
three exports into one cache folder, then all CACHED.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import anyio
import pytest

from composer import engine
from composer.backends.native.build.cache import StepCache
from composer.backends.native.build.cache_io import ImportedCache, LocalCache
from composer.backends.native.build.rootfs import RootFS
from composer.backends.native.image import oci
from composer.backends.native.image.store import ImageStore
from composer.contract.options import BuildOptions
from composer.errors import ImageBuildError, UnsupportedFeatureError
from composer.events import Event, ListSink
from composer.spec import load_project
from composer.spec.options import ProjectOptions
from tests.integration.native.test_build_cache import (
    Result,
    _backend,
    _spec,
    build,
    context,
    steps_of,
)
from tests.integration.native.test_build_cache import (
    _the_cgroup_parent_goes as _the_cgroup_parent_goes,  # its autouse cleanup, for this module too
)
from tests.integration.registry import LocalRegistry

__all__ = ["context"]  # a fixture used here

MULTI_STAGE = """\
FROM {busybox} AS side
COPY a.txt /a.txt
RUN cut -c1 /a.txt > /out && cat /proc/uptime >> /out
FROM {busybox}
WORKDIR /srv
RUN cat /proc/uptime > /stamp
COPY --from=side /out /out
"""
SIDE = ["COPY a.txt /a.txt", "RUN cut -c1 /a.txt > /out && cat /proc/uptime >> /out"]
FINAL = ["WORKDIR /srv", "RUN cat /proc/uptime > /stamp", "COPY --from=side /out /out"]


def _records(folder: Path) -> list[str]:
    """The descriptions of the records the folder's ``latest`` manifest holds."""
    index = json.loads((folder / "index.json").read_text())
    [entry] = [entry for entry in index["manifests"]
               if entry["annotations"]["org.opencontainers.image.ref.name"] == "latest"]
    manifest = json.loads((folder / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_text())
    config = json.loads((folder / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]).read_text())
    assert manifest["config"]["mediaType"] == "application/vnd.composer.native.buildcache.v1+json"
    return [record["description"] for record in config["records"]]


def _fresh(tmp_path: Path, name: str) -> ImageStore:
    return ImageStore.open(tmp_path / name)


def test_cache_to_and_cache_from_local_give_a_fresh_store_the_same_image(store: ImageStore, context: Path,
                                                                         tmp_path: Path,
                                                                         local_registry: LocalRegistry) -> None:
    dockerfile = MULTI_STAGE.format(busybox=local_registry.busybox)
    small, full = tmp_path / "cache-min", tmp_path / "cache-max"
    first = build(store, context, dockerfile, cache_to=[f"type=local,dest={small}",
                                                        f"type=local,dest={full},mode=max"])
    assert first.built() == SIDE + FINAL
    assert sorted(_records(small)) == sorted(FINAL)  # mode=min: the final stage's steps
    assert sorted(_records(full)) == sorted(SIDE + FINAL)  # mode=max: every stage's
    assert (full / "oci-layout").is_file()

    # a store that never built it, from the max cache: every step CACHED, nothing run, the same image ID
    other = _fresh(tmp_path, "other")
    imported = build(other, context, dockerfile, cache_from=[f"type=local,src={full}"])
    assert (imported.built(), sorted(imported.cached())) == ([], sorted(SIDE + FINAL))
    assert imported.record.config == first.record.config
    assert imported.record.manifest == first.record.manifest
    assert (imported.read("/stamp"), imported.read("/out")) == (first.read("/stamp"), first.read("/out"))
    # the import went into that store's own cache: without cache_from, all CACHED again
    again = build(other, context, dockerfile)
    assert (again.built(), again.record.config) == ([], first.record.config)
    assert len(StepCache(other).records()) == len(SIDE + FINAL)

    # from the min cache: the side stage is built again (its stamp differs, so the COPY --from too),
    # the final stage's steps before it are CACHED
    third = _fresh(tmp_path, "third")
    partial = build(third, context, dockerfile, cache_from=[f"type=local,src={small}"])
    assert (partial.built(), partial.cached()) == ([*SIDE, FINAL[2]], FINAL[:2])
    assert partial.read("/stamp") == first.read("/stamp")

    # no cache there yet (a CI runner's first build): nothing imported, everything built
    fourth = _fresh(tmp_path, "fourth")
    empty = build(fourth, context, dockerfile, cache_from=[f"type=local,src={tmp_path / 'nothing'}"])
    assert empty.built() == SIDE + FINAL
    # --no-cache ignores cache_from (as BuildKit's): every step runs
    assert build(_fresh(tmp_path, "fifth"), context, dockerfile, cache_from=[f"type=local,src={full}"],
                 no_cache=True).built() == SIDE + FINAL


def test_a_link_step_comes_from_cache_from_onto_other_layers(store: ImageStore, context: Path, tmp_path: Path,
                                                             local_registry: LocalRegistry) -> None:
    """COPY --link is keyed without the steps below it (BuildKit's --link: "don't get invalidated when
    commands on previous layers are changed"): its exported record is imported by a build whose
    earlier step differs, its layer put on that build's layers; the steps after it run again."""
    dockerfile = (f"FROM {local_registry.busybox}\nRUN echo {{word}} > /below\nCOPY --link a.txt /linked/\n"
                  "RUN cat /linked/a.txt /below > /after\n")
    folder = tmp_path / "cache"
    first = build(store, context, dockerfile.format(word="one"), cache_to=[f"type=local,dest={folder}"])
    same = build(_fresh(tmp_path, "same"), context, dockerfile.format(word="one"),
                 cache_from=[f"type=local,src={folder}"])
    assert (same.built(), same.record.config) == ([], first.record.config)
    other = build(_fresh(tmp_path, "other"), context, dockerfile.format(word="two"),
                  cache_from=[f"type=local,src={folder}"])
    assert (other.built(), other.cached()) == (["RUN echo two > /below", "RUN cat /linked/a.txt /below > /after"],
                                               ["COPY --link a.txt /linked/"])
    assert other.read("/linked/a.txt") == first.read("/linked/a.txt")
    assert other.read("/after") == first.read("/linked/a.txt") + "two\n"


def _layer_blob(folder: Path) -> Path:
    """The blob of the last layer the folder's manifest lists (a built step's, not the base's)."""
    index = json.loads((folder / "index.json").read_text())
    manifest = json.loads((folder / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]).read_text())
    return folder / "blobs" / "sha256" / str(manifest["layers"][-1]["digest"]).split(":")[1]


def test_a_tampered_cache_folder_is_refused_in_one_line(store: ImageStore, context: Path, tmp_path: Path,
                                                        local_registry: LocalRegistry) -> None:
    dockerfile = f"FROM {local_registry.busybox}\nRUN cat /proc/uptime > /stamp\n"
    good = tmp_path / "cache"
    build(store, context, dockerfile, cache_to=[f"type=local,dest={good}"])

    def attempt(name: str, change: object) -> str:
        folder = tmp_path / name
        shutil.copytree(good, folder, symlinks=True)
        assert callable(change)
        change(_layer_blob(folder))
        target = _fresh(tmp_path, f"store-{name}")
        with pytest.raises(ImageBuildError) as failed:
            build(target, context, dockerfile, cache_from=[f"type=local,src={folder}"])
        message = str(failed.value)
        sys.stdout.write(f"\n{name} -> {message}\n")
        assert "\n" not in message
        assert f"cache_from {folder}" in message
        assert StepCache(target).records() == []  # nothing recorded
        assert list((target.root / "incoming").iterdir()) == []  # nothing half-written left
        return message

    def flip(blob: Path) -> None:
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(bytes(data))

    assert "failed verification" in attempt("flipped", flip)

    def link(blob: Path) -> None:
        (tmp_path / "elsewhere").write_bytes(blob.read_bytes())
        blob.unlink()
        blob.symlink_to(tmp_path / "elsewhere")

    assert "is a symbolic link" in attempt("linked", link)

    def truncate_index(blob: Path) -> None:
        (blob.parents[2] / "index.json").write_text('{"manifests": 3}')

    assert "no manifests list" in attempt("index", truncate_index)


@pytest.mark.parametrize(("key", "entry", "expected"), [
    ("cache_to", "type=registry,ref=localhost/cache", "build.cache_to: type=registry"),
    ("cache_from", "app:cache", "build.cache_from: type=registry (app:cache)"),
    ("cache_from", "type=gha", "build.cache_from: type=gha"),
    ("cache_to", "type=inline", "build.cache_to: type=inline"),
    ("cache_to", "type=local,dest=/tmp/x,compression=zstd", "build.cache_to: type=local option compression="),
])
def test_other_cache_types_are_refused_in_one_line(store: ImageStore, context: Path, key: str, entry: str,
                                                   expected: str) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a.txt /\n")
    backend = _backend(store)
    try:
        with pytest.raises(UnsupportedFeatureError) as refused:
            anyio.run(backend.build_image, _spec(context, "demo-web", None, None, **{key: [entry]}), ListSink())
    finally:
        anyio.run(backend.aclose)
    assert expected in str(refused.value)
    assert "\n" not in str(refused.value)
    assert store.images() == []


class TimedSink(ListSink):
    """Each event with when it came (printed as a timeline; no assertion on the times)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def emit(self, event: Event) -> None:
        self.times.append(time.monotonic())
        super().emit(event)


SHARED = "RUN cat /proc/uptime > /shared && sleep 2"


def test_services_sharing_their_first_steps_build_concurrently_and_share_the_cache(
        store: ImageStore, tmp_path: Path, local_registry: LocalRegistry) -> None:
    project_dir = tmp_path / "project"
    services = ("alpha", "beta", "gamma")
    for name in services:
        (project_dir / name).mkdir(parents=True)
        (project_dir / name / "Dockerfile").write_text(
            f"FROM {local_registry.busybox}\nWORKDIR /app\n{SHARED}\n"
            f"RUN cut -d' ' -f1 /proc/uptime > /start; sleep 3; cut -d' ' -f1 /proc/uptime > /end; echo {name}\n")
    shared_cache = tmp_path / "shared-cache"  # every service exports to it, each under its own tag
    (project_dir / "compose.yaml").write_text("services:\n" + "".join(
        f"  {name}:\n    build:\n      context: ./{name}\n"
        f"      cache_to: ['type=local,dest={shared_cache},tag={name}']\n" for name in services))
    project = load_project(ProjectOptions(files=[str(project_dir / "compose.yaml")], project_name="shared",
                                          environment={}))

    def run() -> TimedSink:
        sink = TimedSink()
        backend = _backend(store)

        async def go() -> None:
            try:
                await engine.build(project, backend, BuildOptions(), sink)
            finally:
                await backend.aclose()

        anyio.run(go)
        start = sink.times[0]
        for when, event in zip(sink.times, sink.events, strict=True):
            sys.stdout.write(f"+{when - start:6.2f}s {event.resource_id:24} {event.text:10} {event.details}\n")
        return sink

    sink = run()
    by_service = {name: ListSink([event for event in sink.events if event.resource_id == f"image:shared-{name}"])
                  for name in services}
    steps = {name: steps_of(events) for name, events in by_service.items()}
    # the shared steps: built by one build, the two others waited on the step's lock and found them
    assert sorted(steps[name]["WORKDIR /app"] for name in services) == ["CACHED", "CACHED", "DONE"]
    assert sorted(steps[name][SHARED] for name in services) == ["CACHED", "CACHED", "DONE"]
    assert all(list(steps[name].values())[-1] == "DONE" for name in services)  # each one's own RUN
    # concurrently: each service's own RUN overlapped the others' (the uptimes the RUNs wrote)
    spans: dict[str, tuple[float, float]] = {}
    shared = set()
    for name in services:
        record = store.get(f"docker.io/library/shared-{name}:latest")
        assert record is not None
        built = Result(record, RootFS([layer.path for layer in store.layers(record)]), {})
        spans[name] = (float(built.read("/start")), float(built.read("/end")))
        shared.add(built.read("/shared"))
    sys.stdout.write(f"RUN spans (uptime start, end): {spans}\n")
    assert len(shared) == 1  # one run of the shared step
    for one in services:
        for other in services:
            assert spans[one][0] < spans[other][1]  # every one began before every other ended
    # the store: one record per step key (2 shared + 3 own), each whole and its layers there
    records = StepCache(store).records()
    assert len(records) == 5
    assert all(StepCache(store).get(record.key) is not None for record in records)
    assert {record.path.name for record in records} == {
        path.name for path in (store.root / "cache" / "steps").iterdir()}  # no stray temp files

    # the folder the three exported to at once (taking turns on its lock): a whole manifest per
    # tag, each record's blobs there and equal to their digests
    index = json.loads((shared_cache / "index.json").read_text())
    assert sorted(entry["annotations"]["org.opencontainers.image.ref.name"] for entry in index["manifests"]) == \
        sorted(services)
    for name in services:
        exported = ImportedCache.load(LocalCache(shared_cache, tag=name))
        assert sorted(record.description for record in exported.records.values()) == sorted(
            ["WORKDIR /app", SHARED, next(step for step in steps[name] if step.startswith("RUN cut"))])
        for step in exported.records.values():
            for layer in step.result.layers:
                blob = shared_cache / "blobs" / "sha256" / oci.digest_hex(layer.digest)
                assert oci.sha256_digest(blob.read_bytes()) == layer.digest

    # again: every step of every service CACHED, the same images
    before = {name: store.get(f"docker.io/library/shared-{name}:latest") for name in services}
    again = run()
    for name in services:
        mine = steps_of(ListSink([event for event in again.events if event.resource_id == f"image:shared-{name}"]))
        assert [status for step, status in mine.items() if not step.startswith("FROM")] == ["CACHED"] * 3
        record = store.get(f"docker.io/library/shared-{name}:latest")
        assert record is not None
        assert record.config == before[name].config  # type: ignore[union-attr]
