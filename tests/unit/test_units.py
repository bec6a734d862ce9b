"""go-units' HumanDuration, which every backend's status text and the CLI's tables share."""

from __future__ import annotations

import pytest

from composer.units import human_duration

MINUTE, HOUR, DAY = 60, 3600, 86400
WEEK, MONTH, YEAR = 7 * DAY, 30 * DAY, 365 * DAY


@pytest.mark.parametrize(("seconds", "text"), [
    # go-units' own cases (duration_test.go)
    (0.45, "Less than a second"), (1, "1 second"), (45, "45 seconds"), (59, "59 seconds"),
    (60, "About a minute"), (3 * MINUTE, "3 minutes"), (35 * MINUTE + 40, "35 minutes"), (59 * MINUTE, "59 minutes"),
    (HOUR, "About an hour"), (HOUR + 29 * MINUTE, "About an hour"), (HOUR + 31 * MINUTE, "2 hours"),
    (3 * HOUR + 29 * MINUTE, "3 hours"), (3 * HOUR + 31 * MINUTE, "4 hours"), (DAY, "24 hours"),
    (DAY + 12 * HOUR, "36 hours"), (2 * DAY, "2 days"), (13 * DAY + 5 * HOUR, "13 days"), (2 * WEEK, "2 weeks"),
    (2 * WEEK + 4 * DAY, "2 weeks"), (MONTH, "4 weeks"), (MONTH + 2 * WEEK, "6 weeks"), (2 * MONTH, "2 months"),
    (5 * MONTH + 2 * WEEK, "5 months"), (24 * MONTH, "24 months"), (24 * MONTH + 2 * WEEK, "2 years"),
    (3 * YEAR + 2 * MONTH, "3 years"),
    # Go rounds half hours up (math.Round); Python's round would say "2 hours" and "4 hours" here
    (2 * HOUR + 30 * MINUTE, "3 hours"), (4 * HOUR + 30 * MINUTE, "5 hours"),
])
def test_human_duration_is_go_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text
