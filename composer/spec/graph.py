"""A small directed acyclic graph keyed by strings, and the service dependency graph of a project.

Edges point from a dependent to what it depends on (``web -> db``). So ``leaves()`` are the
vertices that depend on nothing (they start first) and ``roots()`` those nothing depends on
(they stop first). Every listing is sorted by key, so plans built by walking the graph are
deterministic. This module does no I/O and knows nothing of engines.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from composer.errors import DependencyCycleError

if TYPE_CHECKING:
    from composer.spec.models import Project, ServiceConfig

T = TypeVar("T")


@dataclass(slots=True)
class Vertex(Generic[T]):
    key: str
    value: T
    dependencies: set[str] = field(default_factory=set)  # outgoing edges
    dependents: set[str] = field(default_factory=set)  # incoming edges


class Graph(Generic[T]):
    """Vertices by key; ``add_edge(a, b)`` records that ``a`` depends on ``b``."""

    def __init__(self) -> None:
        self._vertices: dict[str, Vertex[T]] = {}

    def add_vertex(self, key: str, value: T) -> None:
        """Add (or replace the value of) the vertex ``key``."""
        vertex = self._vertices.get(key)
        if vertex is None:
            self._vertices[key] = Vertex(key, value)
        else:
            vertex.value = value

    def add_edge(self, dependent: str, dependency: str) -> None:
        """Record that ``dependent`` depends on ``dependency``; both must be vertices.

        :raises KeyError: either key is not a vertex.
        """
        self._vertices[dependent].dependencies.add(dependency)
        self._vertices[dependency].dependents.add(dependent)

    def __contains__(self, key: object) -> bool:
        return key in self._vertices

    def __len__(self) -> int:
        return len(self._vertices)

    def keys(self) -> list[str]:
        return sorted(self._vertices)

    def value(self, key: str) -> T:
        return self._vertices[key].value

    def dependencies(self, key: str) -> list[str]:
        """What ``key`` depends on directly, sorted."""
        return sorted(self._vertices[key].dependencies)

    def dependents(self, key: str) -> list[str]:
        """What depends directly on ``key``, sorted."""
        return sorted(self._vertices[key].dependents)

    def leaves(self) -> list[str]:
        """Vertices that depend on nothing (the first to start)."""
        return sorted(key for key, vertex in self._vertices.items() if not vertex.dependencies)

    def roots(self) -> list[str]:
        """Vertices nothing depends on (the first to stop)."""
        return sorted(key for key, vertex in self._vertices.items() if not vertex.dependents)

    def find_cycle(self) -> list[str] | None:
        """A dependency cycle as a path whose first key is repeated last (``[a, b, a]``),
        or None. The search starts from the smallest key, so the answer is deterministic."""
        state: dict[str, int] = {}  # 1: on the current path, 2: fully explored
        for start in self.keys():
            if state.get(start) is None:
                cycle = self._cycle_from(start, state)
                if cycle is not None:
                    return cycle
        return None

    def _cycle_from(self, start: str, state: dict[str, int]) -> list[str] | None:
        # Iterative depth-first search: a 1,000-service chain must not hit the recursion limit.
        path: list[str] = [start]
        pending: list[list[str]] = [self.dependencies(start)]
        state[start] = 1
        while path:
            if not pending[-1]:
                state[path.pop()] = 2
                pending.pop()
                continue
            key = pending[-1].pop(0)
            if state.get(key) == 1:
                return [*path[path.index(key):], key]
            if state.get(key) is None:
                state[key] = 1
                path.append(key)
                pending.append(self.dependencies(key))
        return None

    def check_acyclic(self) -> None:
        """:raises DependencyCycleError: the graph has a cycle (the error lists its path)."""
        cycle = self.find_cycle()
        if cycle is not None:
            raise DependencyCycleError(cycle)

    def topological_order(self, *, reverse: bool = False) -> list[str]:
        """Every key, dependencies before their dependents (``reverse``: dependents first);
        among keys that are ready at the same time, the smallest comes first.

        :raises DependencyCycleError: the graph has a cycle.
        """
        self.check_acyclic()
        remaining = {
            key: len(vertex.dependents if reverse else vertex.dependencies) for key, vertex in self._vertices.items()
        }
        ready = [key for key, count in remaining.items() if count == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            key = heapq.heappop(ready)
            order.append(key)
            vertex = self._vertices[key]
            for follower in vertex.dependencies if reverse else vertex.dependents:
                remaining[follower] -= 1
                if remaining[follower] == 0:
                    heapq.heappush(ready, follower)
        return order

    def subgraph_closure(self, keys: Iterable[str]) -> set[str]:
        """``keys`` and everything they depend on, transitively."""
        found: set[str] = set()
        pending = list(keys)
        while pending:
            key = pending.pop()
            if key not in found:
                found.add(key)
                pending.extend(self._vertices[key].dependencies)
        return found


def service_graph(project: Project) -> Graph[ServiceConfig]:
    """The enabled services and their ``depends_on`` edges (which the loader already extended
    with links, ``volumes_from`` and ``service:`` namespace modes). Dependencies on services
    that are not enabled (``required: false``, or left out by ``--no-deps``) are not edges.

    :raises DependencyCycleError: the services depend on each other in a cycle.
    """
    graph: Graph[ServiceConfig] = Graph()
    for name, service in project.services.items():
        graph.add_vertex(name, service)
    for name, service in project.services.items():
        for dependency in service.depends_on:
            if dependency in graph:
                graph.add_edge(name, dependency)
    graph.check_acyclic()
    return graph
