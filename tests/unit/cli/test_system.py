"""``composer system``'s pure parts: prune's filters and question, df's table (docker's words)."""

from __future__ import annotations

import argparse

import pytest

from composer.cli.system import builder_prune_options, human_size, prune_options, warning
from composer.cli.tables import table
from composer.contract.system import PruneOptions
from composer.errors import UsageError

NOW = 1_700_000_000.0


def args(*filters: str, all: bool = False, volumes: bool = False) -> argparse.Namespace:
    return argparse.Namespace(filter=list(filters), all=all, volumes=volumes)


def test_until_takes_a_duration_back_from_now_or_a_time() -> None:
    assert prune_options(args("until=24h"), NOW).until == NOW - 86400
    assert prune_options(args("until=1600000000"), NOW).until == 1_600_000_000


def test_labels_and_negated_labels_as_docker_spells_them() -> None:
    options = prune_options(args("label=a=b", "label!=c", "label=d"), NOW)
    assert options.labels == ("a=b", "!c", "d")


@pytest.mark.parametrize("bad", ["bogus=1", "until", "until=", "until=yesterday"])
def test_a_bad_filter_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError):
        prune_options(args(bad), NOW)


def test_the_question_lists_what_goes_as_docker_system_prune_does() -> None:
    assert warning(PruneOptions()) == ("WARNING! This will remove:\n  - all stopped containers\n"
                                       "  - all networks not used by at least one container\n"
                                       "  - all dangling images\n  - unused build cache\n")
    text = warning(PruneOptions(all=True, volumes=True))
    assert "  - all anonymous volumes not used by at least one container\n" in text
    assert "  - all images without at least one container associated to them\n" in text


def test_sizes_have_go_units_four_digits_and_the_table_its_columns() -> None:
    assert [human_size(n) for n in (0, 36, 731_600_000, 729_600_000)] == ["0B", "36B", "731.6MB", "729.6MB"]
    rows = table([["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], ["Local Volumes", "0", "0", "0B", "0B"]],
                  min_width=10, padding=3)
    assert rows == ["TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE",
                    "Local Volumes   0         0         0B        0B"]  # docker system df's own lines


def test_builder_prune_takes_until_and_its_old_name_unused_for() -> None:
    assert builder_prune_options(args("until=24h"), NOW).until == NOW - 86400
    assert builder_prune_options(args("unused-for=1h", all=True), NOW) == PruneOptions(all=True, until=NOW - 3600)
    assert builder_prune_options(args(), NOW) == PruneOptions()


@pytest.mark.parametrize("bad", ["label=a", "until", "until=soon"])
def test_builder_prune_refuses_other_filters_in_one_line(bad: str) -> None:
    with pytest.raises(UsageError):
        builder_prune_options(args(bad), NOW)
