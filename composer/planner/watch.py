"""``watch``'s decisions (docker/compose pkg/compose/watch.go): which paths to watch, which rule a
changed host path falls under, and what a batch of changes asks for (files to sync and to delete,
services to restart, rebuild or exec in). Pure: the effects are composer.planner.sync's and the
loop is composer.engine.watch's.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from composer.errors import UnsupportedFeatureError, UsageError
from composer.planner.patterns import PatternMatcher, dockerignore_of
from composer.spec.models import Project, ServiceConfig
from composer.spec.models.service import ServiceHook, WatchRule
from composer.spec.options import DEFAULT_FILENAMES, DEFAULT_OVERRIDE_FILENAMES

# Editors' temporary and lock files (v2's ephemeral matcher: GoLand, Emacs, Vim), and .git, which
# v2 means to ignore (its pattern, relative to "/", only ever matches /.git: here, any .git folder).
EPHEMERAL = ("**/*___jb_old___", "**/*___jb_tmp___", "**/.idea/**", "**/.#*", "**/4913", "**/*~",
             "**/.*.swp", "**/.*.swx", "**/.*.swo", "**/.*.swn", "**/.git")
SYNC_ACTIONS = ("sync", "sync+restart", "sync+exec")


@dataclass(frozen=True, slots=True)
class PathMapping:
    """A changed host path and where it goes in the service's containers (None: no ``target``)."""

    host_path: str
    container_path: str | None


@dataclass(frozen=True, slots=True)
class Trigger:
    """One ``develop.watch`` rule of one service, with its matchers."""

    service: str
    rule: WatchRule
    ignore: PatternMatcher
    include: PatternMatcher | None  # None: everything

    def mapping(self, host_path: str) -> PathMapping | None:
        """Where ``host_path`` goes, or None when this rule does not take it (outside its path,
        not included, or ignored)."""
        root = self.rule.path
        if host_path != root and not host_path.startswith(root.rstrip("/") + "/"):
            return None
        if self.include is not None and not self.include.matches(host_path):
            return None
        if self.ignore.matches(host_path):
            return None
        target = None
        if self.rule.target:
            relative = os.path.relpath(host_path, root)
            target = posixpath.normpath(posixpath.join(self.rule.target, relative))
        return PathMapping(host_path, target)


@dataclass(frozen=True, slots=True)
class ServiceSync:
    """Paths to copy into, and to delete from, one service's containers."""

    copy: tuple[PathMapping, ...]
    delete: tuple[str, ...]  # container paths

    @property
    def count(self) -> int:
        return len(self.copy) + len(self.delete)


@dataclass(frozen=True, slots=True)
class Batch:
    """What one debounced batch of changes asks for, in v2's order: rebuild, sync, restart, exec."""

    rebuild: tuple[str, ...] = ()
    sync: Mapping[str, ServiceSync] = field(default_factory=dict)
    restart: tuple[str, ...] = ()
    exec: tuple[tuple[str, ServiceHook], ...] = ()  # (service, hook), each rule's once

    @property
    def is_empty(self) -> bool:
        return not (self.rebuild or self.sync or self.restart or self.exec)


def selected(project: Project, services: Sequence[str]) -> list[ServiceConfig]:
    """The services to watch: those named (all when none is), with a ``develop.watch``.

    :raises UsageError: a named service does not exist, or none has a ``develop`` section (v2's words).
    """
    for name in services:
        if name not in project.services:
            raise UsageError(f"no such service: {name}")
    chosen = [project.services[name] for name in (services or project.services)]
    watched = [service for service in chosen if service.develop is not None and service.develop.watch]
    if not watched:
        raise UsageError("none of the selected services is configured for watch, consider setting a "
                         "'develop' section")
    return watched


def check_rules(services: Sequence[ServiceConfig], *, can_build: bool, backend: str, build: bool | None) -> None:
    """v2's checks at watch start, and this backend's: a ``rebuild`` needs a ``build`` section, builds
    allowed (not ``--no-build``) and a backend that builds.

    :raises UsageError: a rule v2 refuses.
    :raises UnsupportedFeatureError: ``rebuild`` on a backend that cannot build.
    """
    for service in services:
        assert service.develop is not None
        for rule in service.develop.watch:
            if rule.action == "rebuild":
                if service.build is None:
                    raise UsageError(f'can\'t watch service "{service.name}" with action rebuild without a build '
                                     "context")
                if build is False:
                    raise UsageError(f"--no-build is incompatible with watch action rebuild in service {service.name}")
                if not can_build:
                    raise UnsupportedFeatureError(
                        f'service "{service.name}": develop.watch action rebuild needs an image build, which the '
                        f"{backend} backend cannot do yet", backend_name=backend, operation="watch")
            if rule.action == "sync+exec" and not (rule.exec and rule.exec.command):
                raise UsageError(f'can\'t watch with action "sync+exec" on service {service.name} without a command')


def _bind_mounted(path: str, service: ServiceConfig) -> bool:
    """Whether ``path`` is under a bind mount's source (v2 does not sync what a bind already shares)."""
    for volume in service.volumes:
        if volume.type == "bind" and volume.source:
            relative = os.path.relpath(path, volume.source)
            if not relative.startswith(".."):
                return True
    return False


def triggers(services: Sequence[ServiceConfig]) -> tuple[list[Trigger], list[str], list[str]]:
    """(the rules with their matchers, the host paths to watch, warnings). A sync rule whose path
    a bind mount already shares is not watched, with v2's warning."""
    found: list[Trigger] = []
    paths: list[str] = []
    warnings: list[str] = []
    for service in services:
        assert service.develop is not None
        ignored = _service_ignores(service)
        for rule in service.develop.watch:
            if rule.action in ("sync", "sync+restart") and _bind_mounted(rule.path, service):
                warnings.append(f"path '{rule.path}' also declared by a bind mount volume, this path won't be "
                                "monitored!")
                continue
            include = PatternMatcher(rule.path, rule.include) if rule.include else None
            found.append(Trigger(service.name, rule, PatternMatcher(rule.path, (*ignored, *_rooted(rule.path,
                                                                                                   rule.ignore))),
                                 include))
            paths.append(rule.path)
    return found, paths, warnings


def _service_ignores(service: ServiceConfig) -> list[str]:
    """The build's .dockerignore (absolute, from the context) and the editors' files."""
    patterns = list(EPHEMERAL)
    build = service.build
    if build is not None and build.context and os.path.isdir(build.context):
        for pattern in dockerignore_of(build.context, build.dockerfile):
            negated = pattern.startswith("!")
            body = pattern[1:] if negated else pattern
            absolute = posixpath.join(build.context, posixpath.normpath(body.strip()))
            patterns.append(("!" if negated else "") + absolute)
    return patterns


def _rooted(root: str, patterns: Iterable[str]) -> list[str]:
    """A rule's own patterns, relative to its path, made absolute."""
    rooted = []
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = posixpath.normpath((pattern[1:] if negated else pattern).strip())
        rooted.append(("!" if negated else "") + (body if body.startswith("/") else posixpath.join(root, body)))
    return rooted


def plan_batch(found: Sequence[Trigger], changed: Iterable[str], exists: Mapping[str, bool]) -> Batch:
    """What the changed host paths ask for (v2's handleWatchBatch). ``exists``: whether each
    changed path exists now; a missing one is deleted from the containers (``rm -rf``)."""
    rebuild: dict[str, None] = {}
    restart: dict[str, None] = {}
    copies: dict[str, dict[str, PathMapping]] = {}
    deletes: dict[str, dict[str, None]] = {}
    hooks: dict[tuple[str, int], ServiceHook] = {}
    for path in sorted(set(changed)):
        for index, trigger in enumerate(found):
            mapping = trigger.mapping(path)
            if mapping is None:
                continue
            action = trigger.rule.action
            if action == "rebuild":
                rebuild[trigger.service] = None
                continue
            if action == "restart":
                restart[trigger.service] = None
                continue
            if mapping.container_path is not None:  # a sync rule without target syncs nothing (v2)
                if exists.get(path, False):
                    copies.setdefault(trigger.service, {})[mapping.container_path] = mapping
                else:
                    deletes.setdefault(trigger.service, {})[mapping.container_path] = None
            if action == "sync+restart":
                restart[trigger.service] = None
            elif action == "sync+exec" and trigger.rule.exec is not None:
                hooks[(trigger.service, index)] = trigger.rule.exec
    sync = {service: ServiceSync(tuple(copies.get(service, {}).values()), tuple(deletes.get(service, {})))
            for service in sorted(set(copies) | set(deletes))}
    return Batch(tuple(rebuild), sync, tuple(restart),
                 tuple((service, hook) for (service, _), hook in sorted(hooks.items(), key=lambda item: item[0])))


def initial_sync(trigger: Trigger, service: ServiceConfig) -> list[PathMapping]:
    """The files an ``initial_sync`` copies (v2's initialSync): every file under the rule's path
    but those ignored, the Dockerfile and the Compose files, and what a bind mount already shares."""
    rule = trigger.rule
    names = ["Dockerfile", *DEFAULT_FILENAMES, *DEFAULT_OVERRIDE_FILENAMES]
    if service.build is not None and service.build.dockerfile:
        names.append(os.path.basename(service.build.dockerfile))
    skipped = set(names)

    def skip(path: str) -> bool:
        return os.path.basename(path) in skipped or trigger.ignore.matches(path) or _bind_mounted(path, service)

    if not rule.target:
        return []
    if os.path.isfile(rule.path):
        return [] if skip(rule.path) else [PathMapping(rule.path, rule.target)]
    mappings: list[PathMapping] = []
    for folder, dirs, files in os.walk(rule.path):
        dirs[:] = sorted(name for name in dirs if not skip(os.path.join(folder, name)))
        for name in sorted(files):
            path = os.path.join(folder, name)
            if skip(path) or (trigger.include is not None and not trigger.include.matches(path)):
                continue
            relative = os.path.relpath(path, rule.path)
            mappings.append(PathMapping(path, posixpath.join(rule.target, relative)))
    return mappings
