"""``down --rmi``: which images go, as v2 chooses them."""

from __future__ import annotations

from composer.contract.observed import ObservedState
from composer.planner.teardown import images_to_remove
from composer.spec import load_project
from composer.spec.options import ProjectOptions


def test_images_down_rmi_removes(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    (folder / "compose.yaml").write_text("""
name: proj
services:
  built:
    build: {context: .}
  tagged:
    image: custom:1
    build: {context: .}
  pulled:
    image: busybox
""")
    project = load_project(ProjectOptions(files=(str(folder / "compose.yaml"),)))
    observed = ObservedState("proj", images=frozenset({"proj-built", "proj-built:latest", "custom:1", "busybox",
                                                        "busybox:latest", "old:2"}),
                             project_images=(("custom:1", "tagged"), ("old:2", "gone")))
    assert images_to_remove("proj", project, observed, "local") == ["custom:1", "proj-built:latest"]
    assert images_to_remove("proj", project, observed, "local", remove_orphans=True) == [
        "custom:1", "old:2", "proj-built:latest"]
    assert images_to_remove("proj", project, observed, "all") == ["busybox:latest", "custom:1", "proj-built:latest"]
