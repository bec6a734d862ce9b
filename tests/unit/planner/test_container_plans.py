"""Plans for kill and rm, and the one-off container of run, as text (no engine)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from composer import labels
from composer.contract.observed import ObservedState
from composer.contract.options import RunOptions
from composer.errors import SpecValidationError, UsageError
from composer.planner.container_plans import (
    oneoff_name,
    oneoff_spec,
    reconcile_kill,
    reconcile_remove,
    reconcile_run_prerequisites,
)
from tests.unit.conftest import LoadFn
from tests.unit.planner.conftest import container, converged

PROJECT = """
services:
  db:
    image: busybox
  web:
    image: busybox
    ports: ["80"]
    depends_on: [db]
"""


def test_kill_signals_running_containers_only(load: LoadFn) -> None:
    project = load(PROJECT)
    observed = ObservedState("demo", (container(project, "db"), container(project, "web", state="exited")))
    assert reconcile_kill(observed, (), "SIGTERM").render() == "[] -> #1 service:db:1, KillContainer, kill SIGTERM"
    assert reconcile_kill(observed, ("web",)).render() == ""


def test_rm_removes_stopped_and_with_stop_stops_dependents_first(load: LoadFn) -> None:
    project = load(PROJECT)
    observed = ObservedState("demo", (container(project, "db"), container(project, "web", state="exited")))
    assert reconcile_remove(project, observed).render() == "[] -> #1 service:web:1, RemoveContainer, rm"
    running = converged(project)
    assert reconcile_remove(project, running, stop=True).render() == "\n".join([
        "[] -> #1 service:web:1, StopContainer, rm",
        "[1] -> #2 service:web:1, RemoveContainer, rm",
        "[1] -> #3 service:db:1, StopContainer, rm",
        "[3] -> #4 service:db:1, RemoveContainer, rm",
    ])


def test_run_prerequisites_start_dependencies_and_leave_the_service_alone(load: LoadFn) -> None:
    project = load(PROJECT)
    observed = converged(project)
    stopped = replace(observed, containers=(container(project, "db", state="exited"),
                                            container(project, "web", state="exited")))
    plan = reconcile_run_prerequisites(project, stopped, "web")
    assert plan.render() == "[] -> #1 service:db:1, StartContainer, container is exited"
    assert reconcile_run_prerequisites(project, stopped, "web", no_deps=True).render() == ""
    with pytest.raises(SpecValidationError, match="no such service: nosuch"):
        reconcile_run_prerequisites(project, stopped, "nosuch")


def test_oneoff_spec_labels_name_and_overrides(load: LoadFn) -> None:
    project = load(PROJECT)
    slug = "ab" * 32
    options = RunOptions(command=("echo", "hi"), environment={"X": "1"}, user="65534", workdir="/bin")
    spec = oneoff_spec(project, "web", options, slug)
    assert spec.container_name == oneoff_name("demo", "web", slug) == "demo-web-run-abababababab"
    assert spec.labels[labels.ONEOFF] == "True"
    assert spec.labels["com.docker.compose.slug"] == slug
    assert labels.CONTAINER_NUMBER not in spec.labels
    assert spec.service.command == ("echo", "hi")
    assert spec.service.environment["X"] == "1"
    assert (spec.service.user, spec.service.working_dir) == ("65534", "/bin")
    assert spec.service.ports == ()  # v2 publishes the service's ports only with --service-ports
    assert all("web" not in network.aliases for network in spec.networks)
    kept = oneoff_spec(project, "web", RunOptions(service_ports=True, name="custom"), slug)
    assert kept.container_name == "custom"
    assert len(kept.service.ports) == 1
    entry = oneoff_spec(project, "web", RunOptions(entrypoint=("sleep",)), slug)
    assert entry.service.entrypoint == ("sleep",)
    assert entry.service.command == ()


@pytest.mark.parametrize("name", ["../../../xy", "-ab", ".hidden", "a/b/c.."])
def test_a_container_name_docker_refuses_is_refused_when_planning_up_and_run(load: LoadFn, name: str) -> None:
    # v2's config accepts these (the schema's pattern is unanchored); Docker's engine refuses them at
    # create ("Invalid container name"), and the native backend would make paths of them: every
    # backend refuses them while planning, before anything is created.
    from composer.planner.reconcile import reconcile_up

    project = load(f'services:\n  web:\n    image: busybox\n    container_name: "{name}"\n')
    with pytest.raises(SpecValidationError) as refused:
        reconcile_up(project, ObservedState("demo"))
    assert str(refused.value) == (f'services.web.container_name: invalid container name "{name}": '
                                  "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    with pytest.raises(UsageError, match=r'^run --name: invalid container name "\.\./x"'):
        oneoff_spec(load(PROJECT), "web", RunOptions(name="../x"), "ab" * 32)
