"""The native backend's supervision rules without containers: restart decisions, restart
policies from ``restart``/``deploy.restart_policy``, the effective healthcheck (service over
image), and the one-line refusal of a bad healthcheck test."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from composer.backends.native.container_settings import healthcheck, restart_policy
from composer.backends.native.runtime.supervisor import (
    health_probe_args,
    restart_wanted,
    supervise_state,
    update_intent,
)
from composer.errors import UnsupportedFeatureError
from composer.spec.models.service import ServiceConfig


def service(**settings: object) -> ServiceConfig:
    return ServiceConfig.model_validate({"name": "web", "image": "busybox", **settings})


def test_restart_decisions_follow_docker() -> None:
    always, failure, capped = {"name": "always"}, {"name": "on-failure"}, {"name": "on-failure", "max_attempts": 2}
    assert restart_wanted(always, 0, 10, manual_stop=False)
    assert not restart_wanted(always, 1, 0, manual_stop=True)
    assert restart_wanted({"name": "unless-stopped"}, 0, 0, manual_stop=False)
    assert not restart_wanted(failure, 0, 0, manual_stop=False)
    assert restart_wanted(failure, 3, 100, manual_stop=False)
    assert restart_wanted(capped, 3, 1, manual_stop=False)
    assert not restart_wanted(capped, 3, 2, manual_stop=False)
    assert not restart_wanted({"name": "no"}, 1, 0, manual_stop=False)
    assert not restart_wanted(None, 1, 0, manual_stop=False)


def test_restart_policies_from_restart_and_deploy() -> None:
    assert restart_policy(service()) is None
    assert restart_policy(service(restart="on-failure:3")) == {"name": "on-failure", "max_attempts": 3}
    assert restart_policy(service(restart="unless-stopped")) == {"name": "unless-stopped", "max_attempts": 0}
    deployed = service(deploy={"restart_policy": {"condition": "any", "delay": "2s", "max_attempts": 4}})
    assert restart_policy(deployed) == {"name": "always", "max_attempts": 4, "delay": 2.0}
    assert restart_policy(service(deploy={"restart_policy": {"condition": "none"}}))["name"] == "no"  # type: ignore[index]


def test_healthcheck_service_over_image() -> None:
    image = {"config": {"Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000, "Retries": 5}}}
    assert healthcheck(service(), {}) is None
    inherited = healthcheck(service(), image)
    assert inherited == {"test": ["CMD-SHELL", "true"], "interval": 2.0, "timeout": 30.0, "start_period": 0.0,
                         "start_interval": None, "retries": 5}
    own = healthcheck(service(healthcheck={"test": ["CMD", "false"], "interval": "500ms", "start_period": "3s"}), image)
    assert own is not None
    assert (own["test"], own["interval"], own["start_period"], own["retries"]) == (["CMD", "false"], 0.5, 3.0, 5)
    timed = healthcheck(service(healthcheck={"test": ["CMD", "true"], "start_interval": "1s"}), image)
    assert timed is not None
    assert timed["start_interval"] == 1.0
    assert healthcheck(service(healthcheck={"disable": True}), image) is None
    assert healthcheck(service(healthcheck={"test": ["NONE"]}), image) is None
    assert health_probe_args(["CMD-SHELL", "test -e /x"]) == ["/bin/sh", "-c", "test -e /x"]
    assert health_probe_args(["CMD", "test", "-e", "/x"]) == ["test", "-e", "/x"]


@pytest.mark.parametrize("test", [["BOGUS", "x"], ["CMD"], ["CMD-SHELL", "  "]])
def test_a_bad_healthcheck_test_is_one_line(test: list[str]) -> None:
    with pytest.raises(UnsupportedFeatureError) as refused:
        healthcheck(service(healthcheck={"test": test}), {})
    assert "healthcheck test" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_intent_updates_from_many_threads_are_never_lost(tmp_path: Path) -> None:
    """supervise.json's read-modify-write under its lock: every thread's key survives (unlocked,
    a stop's manual_stop written between another writer's read and write was lost)."""
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(index: int) -> None:
        start.wait()
        try:
            for count in range(25):
                update_intent(tmp_path, **{f"writer{index}": count})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    state = supervise_state(tmp_path)
    assert {f"writer{i}": 24 for i in range(8)}.items() <= state.items(), state


def test_an_intent_update_of_a_removed_container_writes_nothing(tmp_path: Path) -> None:
    assert update_intent(tmp_path / "gone", manual_stop=True)["manual_stop"] is True
    assert not (tmp_path / "gone").exists()
