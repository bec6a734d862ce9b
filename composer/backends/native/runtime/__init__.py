"""Containers for the native backend: the spawner and its helper (``init``), cgroups, seccomp,
and the runtime API (``containers.Runtime``). Nothing is imported here: the helper runs as
``python -S -m composer.backends.native.runtime.init`` and must stay import-free."""
