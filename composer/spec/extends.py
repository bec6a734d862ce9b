"""Stage 3b: ``extends``, resolved per file after interpolation and before merging files.

A service that extends another starts from a copy of the base service (from the same
document, or from another file, itself fully resolved) and merges its own attributes on
top with the usual merge rules. Relative paths of a base service read from another file
are made absolute against that file's folder, so they keep pointing at the same place.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from composer.errors import ExtendsError, SourceLocation
from composer.spec.canonical import NullService
from composer.spec.merge import delete_paths, merge_values
from composer.spec.modelpath import PathKey

# Loads another file's canonical, interpolated services (the loader provides it).
FileLoader = Callable[[str], dict[str, Any]]
Locate = Callable[[PathKey], SourceLocation | None]
PathResolver = Callable[[dict[str, Any], str], dict[str, Any]]


class ExtendsResolver:
    """Resolves every ``extends`` of one document's services."""

    def __init__(
        self, filename: str, load_file: FileLoader, resolve_paths: PathResolver, locate: Locate,
        reset_paths: Callable[[str], list[PathKey]],
    ) -> None:
        self.filename = filename
        self.reset_paths = reset_paths
        self.load_file = load_file
        self.resolve_paths = resolve_paths
        self.locate = locate

    def resolve_all(self, services: dict[str, Any]) -> dict[str, Any]:
        resolved: dict[str, Any] = {}
        for name in services:
            resolved[name] = self.resolve(self.filename, services, name, [])
        return resolved

    def resolve(self, filename: str, services: dict[str, Any], name: str, chain: list[tuple[str, str]]) -> Any:
        service = services[name]
        if not isinstance(service, dict) or "extends" not in service:
            return service
        reference = (filename, name)
        if reference in chain:
            cycle = " -> ".join(f"{svc} ({os.path.basename(path)})" for path, svc in [*chain, reference])
            raise ExtendsError(
                f"circular reference with extends: {cycle}",
                location=self.locate(("services", name, "extends")), path=f"services.{name}.extends",
            )
        extends = service["extends"]
        base_name = extends.get("service")
        base_file = extends.get("file")
        if base_file:
            base_path = os.path.join(os.path.dirname(filename), os.path.expanduser(base_file))
            base_services = self.load_file(base_path)
            source_file = base_path
        else:
            base_services, source_file = services, filename
        if base_name not in base_services:
            where = f" in {base_file}" if base_file else ""
            raise ExtendsError(
                f"cannot extend service {name!r}: service {base_name!r} not found{where}",
                location=self.locate(("services", name, "extends")), path=f"services.{name}.extends",
            )
        if isinstance(base_services[base_name], NullService):
            return service  # v2 leaves an extends of an empty service unresolved
        base = self.resolve(source_file, base_services, base_name, [*chain, reference])
        base = dict(base or {})
        if source_file != filename and os.path.dirname(source_file) != os.path.dirname(filename):
            base = self.resolve_paths(base, os.path.dirname(source_file))
        # !reset and !override in the extending service clear what the base set there.
        cleared = [path[2:] for path in self.reset_paths(filename) if path[:2] == ("services", name) and len(path) > 2]
        base = delete_paths(base, cleared)
        own = {key: value for key, value in service.items() if key != "extends"}
        merged = merge_values(base, own, ("services", name))
        return merged
