"""Compose features no backend of composer runs, refused before anything is pulled or made.

``models:`` (top-level, and a service's ``models:``) asks for the Docker Model Runner, and a
service with ``provider:`` is run by an external plugin (``docker model``, a cloud provider's),
not as a container: v2 hands both to Docker Desktop's plugins. composer has neither, so rather
than try to pull an image such a service does not have, it refuses them in one line each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from composer.contract.coverage import MODELS_REFUSAL, PROVIDER_REFUSAL
from composer.errors import PlanError

if TYPE_CHECKING:
    from composer.spec.models import Project


def refuse_unsupported(project: Project) -> None:
    """Check the selected services (a top-level model no selected service uses is left out by
    the loader, as v2 leaves it, and refused with the first service that uses it).

    :raises PlanError: a service uses ``models`` or is a ``provider`` service (the first, in file order).
    """
    for service in project.services.values():
        if service.provider is not None:
            raise PlanError(f"service {service.name}: {PROVIDER_REFUSAL.format(type=service.provider.type)}")
        if service.models:
            raise PlanError(f"service {service.name}: {MODELS_REFUSAL.format(models=', '.join(service.models))}")
