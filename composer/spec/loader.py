"""The loader pipeline, from Compose files to a resolved project tree (see docs/loading.md).

Per document: parse (yamlio) → interpolate → schema → canonical long syntax → extends →
include → merge into the model built from the earlier files (after ``!reset``/``!override``
have cleared their paths). Then, once: object rules → env files → defaults → absolute
paths → profiles → consistency → unused resources dropped.

The tree stays a plain dict inside composer.spec; outside it, the typed models of
composer.spec.models are all anyone sees.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple

from composer.errors import (
    IncludeError,
    ProjectNotFoundError,
    SourceLocation,
    SpecError,
    SpecValidationError,
)
from composer.spec import consistency, normalize
from composer.spec.canonical import CanonicalError, NullService, canonical_tree
from composer.spec.deepstack import run_deep
from composer.spec.dotenv import DotenvError, read_dotenv_file
from composer.spec.extends import ExtendsResolver
from composer.spec.interpolate import interpolate_document
from composer.spec.limits import InputLimitError, read_bounded, read_stdin_bounded
from composer.spec.merge import delete_paths, enforce_unicity, merge_values
from composer.spec.modelpath import PathKey, format_path
from composer.spec.options import (
    STDIN,
    ProjectOptions,
    ResolvedOptions,
    checked_project_name,
    normalize_project_name,
    resolve_options,
)
from composer.spec.schema import SchemaViolation, validate
from composer.spec.sources import Sources
from composer.spec.template import substitute
from composer.spec.yamlio import Document, parse_documents

RESOURCE_SECTIONS = ("services", "networks", "volumes", "secrets", "configs", "models")


class LoadOptions(NamedTuple):
    """Which optional stages run (the ``config --no-*`` flags)."""

    interpolate: bool = True
    normalize: bool = True
    consistency: bool = True
    resolve_paths: bool = True
    services: Sequence[str] = ()


class LoadedConfig(NamedTuple):
    """A resolved project as a canonical tree, with what it was made from."""

    tree: dict[str, Any]
    project_name: str
    working_dir: str
    files: list[str]
    environment: dict[str, str]
    profiles: list[str]
    disabled: dict[str, Any]
    warnings: list[str] = []  # a NamedTuple default: never mutated in place


class _Context(NamedTuple):
    """What one model load (the main project, or an included one) works with."""

    working_dir: str
    environment: dict[str, str]
    options: LoadOptions
    sources: Sources
    warnings: list[str]
    included: list[str]


def _read_text(path: str) -> str:
    try:
        if path == STDIN:
            return read_stdin_bounded()
        data = read_bounded(path)
    except InputLimitError as exc:
        raise SpecError(exc.message, location=SourceLocation("-" if path == STDIN else path)) from None
    except FileNotFoundError:
        raise ProjectNotFoundError(f"open {path}: no such file or directory", location=SourceLocation(path)) from None
    except IsADirectoryError:
        raise ProjectNotFoundError(f"read {path}: is a directory", location=SourceLocation(path)) from None
    except OSError as exc:
        raise ProjectNotFoundError(f"open {path}: {exc.strerror or exc}", location=SourceLocation(path)) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"file is not valid UTF-8: {exc.reason}", location=SourceLocation(path)) from None


def _documents(path: str, working_dir: str) -> list[Document]:
    display = "-" if path == STDIN else path
    documents = parse_documents(_read_text(path), display)
    for document in documents:
        if not isinstance(document.tree, dict):
            raise SpecError("Top-level object must be a mapping", location=document.location(()))
    return documents


class _ModelLoader:
    """Loads one or more files into one merged canonical tree."""

    def __init__(self, context: _Context) -> None:
        self.context = context
        self.reset_paths: dict[str, list[PathKey]] = {}
        # A file that many services extend is read once.
        self.extended_files: dict[str, dict[str, Any]] = {}

    def lookup(self, name: str) -> str | None:
        return self.context.environment.get(name)

    def load_files(self, files: Sequence[str]) -> dict[str, Any]:
        model: dict[str, Any] = {}
        for path in files:
            for document in _documents(path, self.context.working_dir):
                model = self.add_document(model, document, path)
        return model

    def add_document(self, model: dict[str, Any], document: Document, path: str) -> dict[str, Any]:
        self.context.sources.add(document)
        tree = self.prepare(document)
        if "services" in tree and isinstance(tree["services"], dict):
            self.reset_paths[path] = document.reset_paths
            resolver = ExtendsResolver(path, self.load_extended_file, self.resolve_base_paths,
                                       self.context.sources.locate, lambda name: self.reset_paths.get(name, []))
            tree["services"] = resolver.resolve_all(tree["services"])
        if "include" in tree:
            tree = self.apply_include(tree, path)
        model = delete_paths(model, document.reset_paths)
        try:
            return enforce_unicity(merge_values(model, tree, ()))
        except (TypeError, AttributeError, KeyError) as exc:
            raise SpecError(f"cannot merge {path}: {exc}", location=SourceLocation(document.filename)) from None

    def prepare(self, document: Document) -> dict[str, Any]:
        """Interpolate, validate against the schema and canonicalise one document."""
        tree = interpolate_document(document, self.lookup) if self.context.options.interpolate else document.tree
        tree = _without_section_extensions(tree)
        try:
            validate(tree)
        except SchemaViolation as exc:
            raise SpecValidationError(
                exc.message, location=document.location(exc.path), path=format_path(exc.path) or None
            ) from None
        try:
            return canonical_tree(tree, self.context.warnings)
        except CanonicalError as exc:
            raise SpecValidationError(
                exc.message, location=document.location(exc.path), path=format_path(exc.path)
            ) from None

    def load_extended_file(self, path: str) -> dict[str, Any]:
        cached = self.extended_files.get(path)
        if cached is not None:
            return cached
        services: dict[str, Any] = {}
        for document in _documents(path, self.context.working_dir):
            self.context.sources.add(document)
            self.reset_paths[path] = [*self.reset_paths.get(path, []), *document.reset_paths]
            tree = self.prepare(document)
            services.update(tree.get("services") or {})
        self.extended_files[path] = services
        return services

    def resolve_base_paths(self, service: dict[str, Any], base_dir: str) -> dict[str, Any]:
        home = self.context.environment.get("HOME")
        return normalize.resolve_service_paths(service, base_dir, home)

    def apply_include(self, tree: dict[str, Any], path: str) -> dict[str, Any]:
        result = {key: value for key, value in tree.items() if key != "include"}
        base_dir = os.path.dirname(path) if path != STDIN else self.context.working_dir
        for index, entry in enumerate(tree.get("include") or []):
            imported = self.load_include(entry, index, base_dir, path)
            result = _import_resources(result, imported, self.context.sources, index)
        return result

    def load_include(self, entry: Any, index: int, base_dir: str, parent: str) -> dict[str, Any]:
        spec = entry if isinstance(entry, dict) else {"path": entry}
        raw_paths = spec.get("path")
        paths = [raw_paths] if isinstance(raw_paths, str) else list(raw_paths or [])
        working_dir = self.context.working_dir
        files = [os.path.normpath(os.path.join(working_dir, os.path.expanduser(p))) for p in paths]
        if not files:
            raise IncludeError("include entry has no path", location=self.context.sources.locate(("include", index)),
                               path=f"include[{index}]")
        main_file = files[0]
        if main_file in self.context.included:
            chain = [*self.context.included, main_file]
            raise IncludeError("include cycle detected: " + " -> include ".join(chain),
                               location=self.context.sources.locate(("include", index)), path=f"include[{index}]")
        for file in files:
            if not os.path.exists(file):
                raise IncludeError(f"open {file}: no such file or directory",
                                   location=self.context.sources.locate(("include", index)), path=f"include[{index}]")
        project_dir = spec.get("project_directory")
        project_dir = os.path.join(working_dir, project_dir) if project_dir else os.path.dirname(main_file)
        environment = dict(self.context.environment)
        environment.update(self.include_env(spec, project_dir, working_dir, index))
        context = _Context(project_dir, environment, LoadOptions(interpolate=self.context.options.interpolate),
                           self.context.sources, self.context.warnings, [*self.context.included, main_file])
        imported = _ModelLoader(context).load_files(files)
        imported = _default_build_context(imported)
        home = environment.get("HOME")
        return normalize.resolve_paths(imported, project_dir, home)

    def include_env(self, spec: dict[str, Any], project_dir: str, working_dir: str, index: int) -> dict[str, str]:
        env_files = spec.get("env_file")
        if env_files is None:
            default = os.path.join(project_dir, ".env")
            paths = [default] if os.path.isfile(default) else []
        else:
            names = [env_files] if isinstance(env_files, str) else list(env_files)
            paths = [os.path.join(working_dir, name) for name in names]
        values: dict[str, str] = {}
        environment = self.context.environment

        def lookup(name: str) -> str | None:
            # The project environment wins over earlier env files, as in v2.
            return environment[name] if name in environment else values.get(name)

        for env_path in paths:
            try:
                values.update(read_dotenv_file(env_path, lookup))
            except DotenvError as exc:
                raise IncludeError(exc.message, location=self.context.sources.locate(("include", index)),
                                   path=f"include[{index}].env_file") from None
        return values


def _default_build_context(tree: dict[str, Any]) -> dict[str, Any]:
    """An included service builds from its own project directory unless it says otherwise."""
    services = tree.get("services")
    if not isinstance(services, dict):
        return tree
    fixed = {
        name: {**service, "build": {"context": ".", **service["build"]}}
        if isinstance(service, dict) and isinstance(service.get("build"), dict) else service
        for name, service in services.items()
    }
    return {**tree, "services": fixed}


def _without_section_extensions(tree: dict[str, Any]) -> dict[str, Any]:
    """Null services become empty ones; ``x-`` keys among networks, volumes... are extensions."""
    result = dict(tree)
    services = tree.get("services")
    if isinstance(services, dict):
        result["services"] = {
            name: NullService() if service is None else service for name, service in services.items()
        }
    for section in ("networks", "volumes", "secrets", "configs", "models"):
        resources = tree.get(section)
        if isinstance(resources, dict):
            result[section] = {name: value for name, value in resources.items() if not name.startswith("x-")}
    return result


def _import_resources(model: dict[str, Any], imported: dict[str, Any], sources: Sources, index: int) -> dict[str, Any]:
    result = dict(model)
    for section in RESOURCE_SECTIONS:
        incoming = imported.get(section)
        if not isinstance(incoming, dict):
            continue
        existing = dict(result.get(section) or {})
        for name, value in incoming.items():
            if name in existing and existing[name] != value:
                raise IncludeError(f"{section}.{name} conflicts with imported resource",
                                   location=sources.locate((section, name)), path=f"{section}.{name}")
            existing[name] = value
        result[section] = existing
    return result


def _project_name(resolved: ResolvedOptions, documents_names: list[Any], sources: Sources) -> str:
    if resolved.project_name:
        return checked_project_name(resolved.project_name)
    for value in reversed(documents_names):
        if isinstance(value, str) and value:
            normalized = normalize_project_name(value)
            if not normalized:
                raise SpecValidationError(f'invalid project name "{value}"', location=sources.locate(("name",)),
                                          path="name")
            return normalized
    name = normalize_project_name(os.path.basename(os.path.abspath(resolved.working_dir)))
    if not name:
        raise SpecValidationError("project name must not be empty")
    return name


def _declared_names(
    files: Sequence[str], environment: dict[str, str], interpolate: bool
) -> tuple[list[Any], dict[str, list[Document]]]:
    """The ``name:`` of every document (interpolated), and the parsed documents for reuse."""
    names: list[Any] = []
    parsed: dict[str, list[Document]] = {}
    for path in files:
        documents = _documents(path, "")
        parsed[path] = documents
        for document in documents:
            value = document.tree.get("name")
            if isinstance(value, str) and interpolate and "$" in value:
                value = substitute(value, environment.get)
            names.append(value)
    return names, parsed


def load_config(project: ProjectOptions, options: LoadOptions | None = None) -> LoadedConfig:
    """Run the whole pipeline (on a thread with room for deep nesting: composer.spec.deepstack).

    :raises SpecError: the project is invalid; the error names file, line and model path.
    """
    return run_deep(lambda: _load_config(project, options), project.files)


def _load_config(project: ProjectOptions, options: LoadOptions | None) -> LoadedConfig:
    options = options or LoadOptions()
    resolved = resolve_options(project)
    sources = Sources()
    environment = dict(resolved.environment)
    names, parsed = _declared_names(resolved.files, environment, options.interpolate)
    project_name = _project_name(resolved, names, sources)
    environment.setdefault("COMPOSE_PROJECT_NAME", project_name)
    warnings = list(resolved.warnings)
    context = _Context(resolved.working_dir, environment, options, sources, warnings, list(resolved.files))
    loader = _ModelLoader(context)
    model: dict[str, Any] = {}
    for path in resolved.files:
        for document in parsed[path]:
            model = loader.add_document(model, document, path)
    if "version" in model:
        warnings.append(f"{resolved.files[0]}: the attribute `version` is obsolete, it will be ignored, "
                        "please remove it to avoid potential confusion")
        model.pop("version")
    model["name"] = project_name
    return _finish(model, resolved, environment, options, sources, warnings)


def _finish(
    model: dict[str, Any], resolved: ResolvedOptions, environment: dict[str, str], options: LoadOptions,
    sources: Sources, warnings: list[str],
) -> LoadedConfig:
    locate = sources.locate
    project_name = model["name"]
    consistency.validate_objects(model, locate)
    home = environment.get("HOME")
    if options.normalize:
        model = normalize.apply_defaults(model, project_name)
    if options.resolve_paths:
        model = normalize.resolve_paths(model, resolved.working_dir, home)
    model = normalize.resolve_environment(model, environment, resolved.working_dir)
    model, disabled = normalize.apply_profiles(model, resolved.profiles, list(options.services))
    unknown = [name for name in options.services if name not in (model.get("services") or {})]
    if unknown:
        raise SpecValidationError(f"no such service: {unknown[0]}")
    if options.consistency:
        consistency.check_consistency(model, disabled, locate)
    if options.services:
        model = normalize.select_services(model, list(options.services))
    model = normalize.drop_unused_resources(model)
    return LoadedConfig(model, project_name, resolved.working_dir, resolved.files, environment,
                        resolved.profiles, disabled, warnings)


def locate_path(sources: Sources, path: PathKey) -> SourceLocation | None:
    return sources.locate(path)
