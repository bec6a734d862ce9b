"""docker's system df rows, added up from the engine's /system/df as docker/cli does."""

from __future__ import annotations

from composer.backends.docker.system import build_prune_params, filters, usage_rows
from composer.contract.system import PruneOptions, UsageRow


def test_rows_from_the_engines_answer() -> None:
    df = {"LayersSize": 1000,
          "Images": [{"Containers": 1, "Size": 600, "SharedSize": 100},
                     {"Containers": 0, "Size": 400, "SharedSize": 0}],
          "Containers": [{"SizeRw": 10, "State": "running"}, {"SizeRw": 5, "State": "exited"}],
          "Volumes": [{"UsageData": {"Size": 7, "RefCount": 1}}, {"UsageData": {"Size": 3, "RefCount": 0}},
                      {"UsageData": {"Size": -1, "RefCount": 0}}],
          "BuildCache": [{"Size": 4, "InUse": False, "Shared": False}, {"Size": 9, "InUse": True, "Shared": True}]}
    assert usage_rows(df) == [UsageRow("Images", 2, 1, 1000, 500), UsageRow("Containers", 2, 1, 15, 5),
                              UsageRow("Local Volumes", 3, 1, 10, 3), UsageRow("Build Cache", 2, 1, 4, 4)]


def test_an_empty_engine_is_four_zero_rows() -> None:
    assert [(r.type, r.total, r.size) for r in usage_rows({})] == [
        ("Images", 0, 0), ("Containers", 0, 0), ("Local Volumes", 0, 0), ("Build Cache", 0, 0)]


def test_prune_filters_for_the_api() -> None:
    assert filters(PruneOptions(until=12.5, labels=("a=b", "!c")), dangling="true") == {
        "dangling": "true", "until": "12", "label": ["a=b"], "label!": ["c"]}


def test_build_prune_sends_until_as_the_duration_the_engine_parses() -> None:
    assert build_prune_params(PruneOptions(), now=1000.0) == {"all": "0"}
    assert build_prune_params(PruneOptions(all=True, until=1000.0 - 86400), now=1000.0) == {
        "all": "1", "filters": '{"until": ["86400s"]}'}
