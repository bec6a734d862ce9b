"""``down --rmi local|all`` on the native backend, through the real CLI and real containers, by v2's
rule (composer.planner.teardown.images_to_remove) and dockerd's image delete without force: the
images the project built (``local``), or every image its services use (``all``), lose their name,
and their content with their last name; an image another project's container still uses keeps its
last name (dockerd answers a conflict, which v2 shows as a warning, and the down goes on)."""

from __future__ import annotations

import uuid

from composer.backends.native.image.store import ImageStore
from composer.image_reference import parse
from tests.integration.native.test_lifecycle import Env, Project, env, nothing_left, project

__all__ = ["env", "project"]  # the fixtures, shared with test_lifecycle (same store, same residue check)


def store(env: Env) -> ImageStore:
    return ImageStore.open(env.root / "store")


def present(env: Env, image: str) -> bool:
    return store(env).get(str(parse(image))) is not None


def blobs(env: Env) -> set[str]:
    return {path.name for path in (env.root / "store" / "blobs" / "sha256").iterdir()}


def test_rmi_local_removes_the_built_image_and_its_content_not_the_base(project: Project) -> None:
    (project.folder / "Dockerfile").write_text(f"FROM {project.env.image}\nLABEL built=yes\n")
    project.write("""
    built:
      build: .
      command: sleep 300
    pulled:
      image: IMAGE
      command: sleep 300
    """)
    before = blobs(project.env)
    project.run("up", "-d")
    built = f"{project.name}-built"
    assert present(project.env, built)
    plan = project.run("--dry-run", "down", "--rmi", "local").stdout
    assert f"image:{built}:latest, RemoveImage" in plan
    assert project.env.image not in plan
    result = project.run("down", "--rmi", "local", "-t", "0")
    assert f"Image {built}:latest  Removed" in result.stderr, result.stderr
    assert not present(project.env, built)
    assert present(project.env, project.env.image)  # not built by the project: kept
    assert blobs(project.env) == before  # the build's config blob went with its last name
    nothing_left(project)


def test_rmi_all_untags_a_second_name_and_keeps_an_image_another_project_uses(
        project: Project) -> None:
    env = project.env
    record = store(env).get(env.image)
    assert record is not None
    alias = f"rmi-test/alias:{uuid.uuid4().hex[:8]}"
    store(env).put(record._replace(reference=str(parse(alias)), source="tag"))
    # the other project builds an image of its own, under a name this project's service uses too
    other = Project(env, project.folder / "other")
    other.folder.mkdir()
    shared = f"rmi-test/shared:{uuid.uuid4().hex[:8]}"
    (other.folder / "Dockerfile").write_text(f"FROM {env.image}\nLABEL shared=yes\n")
    other.write(f"""
    keeper:
      build: .
      image: {shared}
      command: sleep 300
    """)
    try:
        other.run("up", "-d")
        project.write(f"""
    aliased:
      image: {alias}
      command: sleep 300
    borrower:
      image: {shared}
      pull_policy: never
      command: sleep 300
    """)
        project.run("up", "-d")
        result = project.run("down", "--rmi", "all", "-t", "0")
        # a second name of an image only loses that name, as dockerd's rmi untags
        assert not present(env, alias)
        assert present(env, env.image)
        # the other project's container uses the shared image and this is its only name: kept, one warning
        assert present(env, shared)
        assert "conflict: unable to remove repository reference" in result.stderr, result.stderr
        assert "is using its referenced image" in result.stderr
        nothing_left(project)
        assert "Up" in other.ps()
        other.run("down", "--rmi", "local", "-t", "0")
        assert not present(env, shared)
    finally:
        other.down()
        store(env).remove(str(parse(alias)))
