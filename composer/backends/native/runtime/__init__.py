"""Containers for the native backend: the spawner and its helper (``init``), cgroups, seccomp,
and the runtime API (``api.Runtime``). Nothing is imported here: the helpers run without
composer's package ``__init__``s (see bootstrap.py), and this one stays import-free for the rest."""
