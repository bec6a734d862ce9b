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


def test_down_services_removes_theirs_and_what_no_other_uses(tmp_path: object) -> None:
    from pathlib import Path

    from composer.contract.observed import ObservedContainer, ObservedNetwork, ObservedVolume
    from composer.contract.options import DownOptions
    from composer.planner.teardown import reconcile_down

    folder = Path(str(tmp_path))
    (folder / "compose.yaml").write_text("""
name: proj
services:
  web: {image: busybox, volumes: [data:/d, mine:/m], networks: [front, back]}
  db: {image: busybox, volumes: [data:/d], networks: [back]}
volumes: {data: {}, mine: {}}
networks: {front: {}, back: {}}
""")
    project = load_project(ProjectOptions(files=(str(folder / "compose.yaml"),)))

    def container(service: str) -> ObservedContainer:
        return ObservedContainer(service.ljust(64, "0"), f"proj-{service}-1", service, 1, "h", "running")

    observed = ObservedState(
        "proj", containers=(container("db"), container("web"), container("gone")),
        networks=(ObservedNetwork("n1", "proj_back", "back"), ObservedNetwork("n2", "proj_front", "front")),
        volumes=(ObservedVolume("proj_data", "data"), ObservedVolume("proj_mine", "mine")))
    plan = reconcile_down("proj", project, observed, DownOptions(services=("web",), remove_volumes=True))
    assert sorted(op.resource_id for op in plan.operations) == [
        "network:front", "service:web:1", "service:web:1", "volume:mine"]
    assert plan.warnings == ()  # the orphan is not this down's business
