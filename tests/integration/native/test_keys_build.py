"""The ``build:`` keys on the native builder, seen in what it made: the image's labels, tags and
platform in the store, the files its RUN step wrote, and which base a build used (pull). One
project for the family; tests/integration/docker/test_keys_build.py shows the same keys on
dockerd's classic builder."""

from __future__ import annotations

from composer.backends.native.image.store import ImageStore
from tests.integration.native.test_lifecycle import Project, env, project

__all__ = ["env", "project"]  # the fixtures, imported for pytest

INLINE = "FROM BASE\nRUN cat /proc/sys/kernel/random/uuid > /stamp; ls / > /root.txt\n"


def _build(project: Project, build: str) -> None:
    project.write(f"app:\n  image: {project.name}-app\n  build:\n" + "".join(f"    {line}\n"
                                                                          for line in build.splitlines()))
    project.run("build", timeout=180)


def _cat(project: Project, path: str) -> str:
    project.write(f"show:\n  image: {project.name}-app\n  pull_policy: never\n")
    return project.run("run", "--rm", "-T", "show", "cat", path).stdout


def test_build_keys_shape_what_the_native_builder_makes(project: Project) -> None:
    inline = INLINE.replace("BASE", project.env.image).replace("\n", "\\n")
    extra = f"{project.name}-extra:v1"
    _build(project, f'dockerfile_inline: "{inline}"\nlabels: {{dev.composer.test: built}}\ntags: ["{extra}"]\n'
                    "platforms: [linux/amd64]\nno_cache: true")
    store = ImageStore.open(project.env.root / "store")
    record = store.get(f"docker.io/library/{project.name}-app:latest") or store.get(f"{project.name}-app")
    assert record is not None, [image.reference for image in store.images()]
    config = store.config(record)
    assert config["config"]["Labels"]["dev.composer.test"] == "built"  # labels
    assert (config["os"], config["architecture"]) == ("linux", "amd64")  # platforms
    tagged = store.get(f"docker.io/library/{extra}") or store.get(extra)  # tags: the same image
    assert tagged is not None
    assert tagged.config == record.config
    first = _cat(project, "/stamp")  # dockerfile_inline: its RUN ran
    assert len(first.strip()) == 36
    _build(project, f'dockerfile_inline: "{inline}"\nno_cache: true')
    assert _cat(project, "/stamp") != first  # no_cache: the step ran again
    project.run("down", "--rmi", "all", check=False)
    for reference in (tagged.reference, record.reference):
        store.remove(reference)
    store.gc()  # the layers and blobs of the builds


def test_pull_takes_the_registrys_base_over_the_stores(project: Project) -> None:
    store = ImageStore.open(project.env.root / "store")
    base = store.get(project.env.image)
    assert base is not None
    # A decoy under the base's reference: an image built here, with a marker file in it.
    _build(project, f'dockerfile_inline: "FROM {project.env.image}\\nRUN touch /decoy"')
    decoy = store.get(f"docker.io/library/{project.name}-app:latest") or store.get(f"{project.name}-app")
    assert decoy is not None
    store.put(decoy._replace(reference=base.reference))
    try:
        inline = INLINE.replace("BASE", project.env.image).replace("\n", "\\n")
        _build(project, f'dockerfile_inline: "{inline}"')
        assert "decoy" in _cat(project, "/root.txt")  # without pull: the store's base
        _build(project, f'dockerfile_inline: "{inline}"\npull: true')
        assert "decoy" not in _cat(project, "/root.txt")  # pull: the registry's
        assert store.get(base.reference) == base._replace(pulled=store.get(base.reference).pulled)  # type: ignore[union-attr]
    finally:
        store.put(base)
        for image in store.images():
            if image.reference != base.reference:
                store.remove(image.reference)
        store.gc()  # the layers and blobs of the builds
