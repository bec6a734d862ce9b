"""``use_api_socket``: the engine's API socket and the user's registry credentials, given to the
service's containers as v2 gives them (pkg/compose/apiSocket.go, a client-side transform of the
project, since the engine has no such option):

* the socket of the endpoint (``DOCKER_HOST``, a ``unix://`` one only; else /var/run/docker.sock)
  bound at /var/run/docker.sock;
* ``DOCKER_CONFIG=/run/secrets/docker`` unless the service sets DOCKER_CONFIG itself;
* a config ``#apisocket`` at /run/secrets/docker/config.json, holding the credentials of the
  user's docker CLI configuration; its content is written by the backend (the docker backend's
  create_container), which alone reads the credentials.

The service is transformed before it is hashed, as in v2, so that both tools agree on the
container's config-hash label. A backend with no engine socket refuses the key (native).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from composer.errors import PlanError

if TYPE_CHECKING:
    from composer.spec.models import Project, ServiceConfig

SOCKET_TARGET = "/var/run/docker.sock"
DEFAULT_HOST = "unix:///var/run/docker.sock"
CONFIG_SOURCE = "#apisocket"  # v2's name of the credentials config
CONFIG_DIR = "/run/secrets/docker"
CONFIG_TARGET = f"{CONFIG_DIR}/config.json"


def socket_path(project: Project) -> str:
    """The endpoint's socket on the host.

    :raises PlanError: the endpoint is not a unix socket (v2's message).
    """
    host = project.environment.get("DOCKER_HOST") or DEFAULT_HOST
    if not host.startswith("unix://"):
        raise PlanError(f"use_api_socket can only be used with unix sockets: docker endpoint {host} is incompatible")
    return host.removeprefix("unix://")


def with_api_socket(project: Project, service: ServiceConfig) -> ServiceConfig:
    """``service`` with v2's socket bind, DOCKER_CONFIG and credentials config added (unchanged
    without ``use_api_socket``)."""
    if not service.use_api_socket:
        return service
    from composer.spec.models import FileMount, ServiceVolume, freeze  # the models load lazily

    bind = ServiceVolume(type="bind", source=socket_path(project), target=SOCKET_TARGET)
    environment = dict(service.environment)
    environment.setdefault("DOCKER_CONFIG", CONFIG_DIR)
    grant = FileMount(source=CONFIG_SOURCE, target=CONFIG_TARGET)
    return service.model_copy(update={"volumes": (*service.volumes, bind), "environment": freeze(environment),
                                      "configs": (*service.configs, grant)})
