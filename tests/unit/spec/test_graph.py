from __future__ import annotations

import pytest

from composer.errors import DependencyCycleError
from composer.spec.graph import Graph, service_graph
from tests.unit.conftest import LoadFn


def _graph(edges: dict[str, list[str]]) -> Graph[None]:
    graph: Graph[None] = Graph()
    for key in edges:
        graph.add_vertex(key, None)
    for key, targets in edges.items():
        for target in targets:
            graph.add_edge(key, target)
    return graph


def test_roots_leaves_and_order_are_sorted() -> None:
    graph = _graph({"web": ["db", "cache"], "worker": ["db"], "db": [], "cache": []})
    assert graph.leaves() == ["cache", "db"]
    assert graph.roots() == ["web", "worker"]
    assert graph.topological_order() == ["cache", "db", "web", "worker"]
    assert graph.topological_order(reverse=True) == ["web", "cache", "worker", "db"]
    assert graph.dependents("db") == ["web", "worker"]


def test_find_cycle_returns_the_path() -> None:
    graph = _graph({"a": ["b"], "b": ["c"], "c": ["a"], "d": []})
    assert graph.find_cycle() == ["a", "b", "c", "a"]
    with pytest.raises(DependencyCycleError, match=r"cycle found: a -> b -> c -> a") as info:
        graph.topological_order()
    assert info.value.cycle == ["a", "b", "c", "a"]


def test_self_loop_is_a_cycle() -> None:
    assert _graph({"a": ["a"]}).find_cycle() == ["a", "a"]


def test_acyclic_graph_has_no_cycle() -> None:
    assert _graph({"a": ["b", "c"], "b": ["c"], "c": []}).find_cycle() is None


def test_long_chain_does_not_recurse() -> None:
    graph = _graph({f"s{i:04d}": [f"s{i + 1:04d}"] if i < 1999 else [] for i in range(2000)})
    assert graph.find_cycle() is None
    assert graph.topological_order()[0] == "s1999"


def test_service_graph_from_project(load: LoadFn) -> None:
    project = load("""
        services:
          web: {image: nginx, depends_on: [api], links: [cache]}
          api: {image: api, depends_on: {db: {condition: service_healthy}}}
          db: {image: postgres}
          cache: {image: redis, network_mode: "service:db"}
    """)
    graph = service_graph(project)
    assert graph.dependencies("web") == ["api", "cache"]
    assert graph.dependencies("cache") == ["db"]
    assert graph.topological_order() == ["db", "api", "cache", "web"]


def test_service_graph_skips_dependencies_that_are_not_enabled(load: LoadFn) -> None:
    project = load("""
        services:
          web: {image: nginx, depends_on: [db]}
          db: {image: postgres}
    """).with_selected_services(["web"], include_dependencies=False)
    assert service_graph(project).dependencies("web") == []
