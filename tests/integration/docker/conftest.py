"""The docker backend's integration tests run ``composer`` without ``--backend``: pin the docker
backend for them (and the processes they start), since the native backend is the default as root."""

from __future__ import annotations

import os

os.environ.setdefault("COMPOSER_BACKEND", "docker")
