"""The native builder's cache across stores and services, with real builds: ``build.cache_to`` /
``build.cache_from`` of ``type=local`` (composer.backends.native.build.cache_io) give a store that
never built the Dockerfile the recorded steps (``CACHED``) and the same image ID, ``mode=min``
only the final stage's steps; a cache folder is untrusted (a changed blob, a link) and refused in
one line; other cache types are refused in one line naming them.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import anyio
import pytest

from composer.backends.native.build.cache import StepCache
from composer.backends.native.image.store import ImageStore
from composer.errors import ImageBuildError, UnsupportedFeatureError
from composer.events import ListSink
from tests.integration.native.test_build_cache import (
    _backend,
    _spec,
    build,
    context,
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
