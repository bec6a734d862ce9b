"""The credentials file v2 gives a ``use_api_socket`` service (pkg/compose/apiSocket.go): every
credential of the user's docker CLI configuration (``$DOCKER_CONFIG/config.json``, its
credential store and helpers included), saved as the docker CLI saves a config file, at
/run/secrets/docker/config.json in the container (composer.planner.api_socket adds the socket
bind, DOCKER_CONFIG and the config's grant; the content is read here, where the engine's
client is)."""

from __future__ import annotations

import base64
import json
from typing import Any

from composer.contract.backend import InjectedFile

CONFIG_TARGET = "/run/secrets/docker/config.json"


def credentials_file() -> InjectedFile:
    """The file, root's and 0444 as v2 writes it (a config without uid, gid or mode)."""
    import docker.auth  # docker-py loads lazily

    return InjectedFile(CONFIG_TARGET, saved_config(docker.auth.load_config().get_all_credentials()))


def saved_config(credentials: dict[str, Any]) -> bytes:
    """``{"auths": ...}`` as Go's configfile.SaveToWriter writes it: tab-indented, registries
    sorted, user and password folded into ``auth``, the server address left out."""
    auths: dict[str, dict[str, str]] = {}
    for registry in sorted(credentials):
        found = {str(key).lower(): value for key, value in (credentials[registry] or {}).items()}
        entry: dict[str, str] = {}
        user, password = found.get("username") or "", found.get("password") or ""
        if user or password:
            entry["auth"] = base64.b64encode(f"{user}:{password}".encode()).decode()
        elif found.get("auth"):
            entry["auth"] = str(found["auth"])
        for key in ("email", "identitytoken", "registrytoken"):
            if found.get(key):
                entry[key] = str(found[key])
        auths[registry] = entry
    return json.dumps({"auths": auths}, indent="\t").encode()
