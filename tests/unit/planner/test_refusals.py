"""models and provider services: refused in one line before anything is planned."""

from __future__ import annotations

import pytest

from composer.contract.observed import ObservedState
from composer.contract.options import UpOptions
from composer.errors import PlanError
from composer.planner.reconcile import reconcile_up, reconcile_up_images
from composer.planner.refusals import refuse_unsupported
from tests.unit.conftest import LoadFn

COMPOSE = """
services:
  llm:
    provider:
      type: model
      options:
        model: ai/smollm2
  app:
    image: busybox
    models: [m1]
  other:
    image: busybox
models:
  m1:
    model: ai/smollm2
"""


def test_a_provider_service_and_models_are_refused(load: LoadFn) -> None:
    project = load(COMPOSE)
    with pytest.raises(PlanError, match=r"^service llm: provider: services run by a provider \(type model\) are "
                                        "not supported by composer$"):
        refuse_unsupported(project)
    with pytest.raises(PlanError, match=r"^service app: models: AI models .* \(model m1\)$"):
        reconcile_up_images(project, ObservedState("demo"), UpOptions(services=("app",)))


def test_services_that_use_neither_are_planned(load: LoadFn) -> None:
    project = load(COMPOSE)
    plan = reconcile_up(project, ObservedState("demo"), UpOptions(services=("other",)))
    assert [op.resource_id for op in plan.operations if op.kind.name == "PULL_IMAGE"] == ["image:busybox"]
