"""The Docker Engine backend, through docker-py (imported only when this backend is chosen)."""

from composer.backends.docker.backend import DockerBackend

__all__ = ["DockerBackend"]
