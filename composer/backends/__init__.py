"""Backends carry a plan to an engine: docker (docker-py against dockerd), native (composer's own
runtime, composer.backends.native) and memory (an engine simulated in memory, for tests).

Each implements composer.contract.backend.Backend and imports the contract, never the planner.
composer.backends.select chooses one and imports only that one, lazily; callers (the CLI, the
library) reach a backend through it and the contract, never through a backend's modules.
"""
