"""The docker backend's part in the CLI's command server warm-up (composer.backends.select.warm_up_hooks):
what it imports inside functions, and docker-py's first client and request, done once before the
server forks the workers that run commands."""

from __future__ import annotations

import contextlib
import os

# docker-py alone is ~0.1 s: a worker must not import it again after every fork.
MODULES = ("docker", "docker.errors", "docker.utils", "docker.tls", "docker.api.build", "requests.exceptions")


def warm_up() -> None:
    """docker-py's first client and first request build requests', urllib3's and http.client's
    machinery (~2.5 ms of a worker's first request): done once here, with a request the engine
    answers at once when one runs. The connection is closed before any fork."""
    with contextlib.suppress(Exception):
        from composer.backends.docker.client import connect, resolve_endpoint

        api = connect(resolve_endpoint(os.environ), timeout=2)
        try:
            api.ping()
            api.containers(all=True, filters={"label": "com.docker.compose.project=composer-server-warm-up"})
        finally:
            api.close()
        return
    with contextlib.suppress(Exception):  # no engine: at least the client's own machinery
        import docker

        docker.APIClient(base_url="unix:///var/run/docker.sock", version="1.41").close()
