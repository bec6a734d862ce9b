"""The labels Compose v2 puts on what it creates; composer uses the same, so that each tool
sees and manages the other's stacks."""

from __future__ import annotations

PREFIX = "com.docker.compose"
PROJECT = f"{PREFIX}.project"
SERVICE = f"{PREFIX}.service"
CONTAINER_NUMBER = f"{PREFIX}.container-number"
CONFIG_HASH = f"{PREFIX}.config-hash"
ONEOFF = f"{PREFIX}.oneoff"
NETWORK = f"{PREFIX}.network"
VOLUME = f"{PREFIX}.volume"
WORKING_DIR = f"{PREFIX}.project.working_dir"
CONFIG_FILES = f"{PREFIX}.project.config_files"
ENVIRONMENT_FILE = f"{PREFIX}.project.environment_file"
DEPENDS_ON = f"{PREFIX}.depends_on"
IMAGE = f"{PREFIX}.image"
VERSION = f"{PREFIX}.version"
REPLACE = f"{PREFIX}.replace"
# v2 writes its own version here; we write the v2 version we are compatible with.
COMPATIBLE_VERSION = "2.40.3"
# composer's own labels, for what v2 has no label for.
COMPOSER_PREFIX = "dev.composer"
OWNER = f"{COMPOSER_PREFIX}.owner"  # boot id, pid and start time of the process that owns a test stack

# docker stack deploy's labels: the swarm backend sets and reads them, so both tools see each other's stacks.
STACK_NAMESPACE = "com.docker.stack.namespace"  # on every service, network, secret, config and volume of a stack
STACK_IMAGE = "com.docker.stack.image"  # on a service: the image as the file names it
STACK_OBJECT_KEY = f"{COMPOSER_PREFIX}.stack.object"  # composer's, on a secret or config: its Compose key
