"""Hold the loader to the Compose v2 conformance corpus (../shared/conformance, beside the repository)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "conformance"
RUNNER = CORPUS / "run-conformance"
COMPOSER = Path(sys.executable).parent / "composer"
# Floors: percentage of v2-accepted cases with identical JSON, of v2-rejected cases rejected too.
MIN_VALID = 97
MIN_REJECTED = 97
MAX_CRASHES = 0
# How many non-passing cases to quote in the failure message.
QUOTED_CASES = 25


def _failures(report: Path) -> list[str]:
    lines = []
    for raw in report.read_text(encoding="utf-8").splitlines():
        row = json.loads(raw)
        if row["status"] in ("identical", "rejected", "finished"):
            continue
        detail = row.get("difference") or " | ".join(row.get("stderr_head") or [])
        lines.append(f"  {row['status']:16} {row['source']}/{row['case']}: {detail}")
    return lines


@pytest.mark.conformance
def test_conformance_corpus(tmp_path: Path) -> None:
    assert RUNNER.is_file(), f"conformance corpus missing: expected {RUNNER} (../shared beside the repo)"
    assert COMPOSER.is_file(), f"composer executable missing: {COMPOSER} (run `make install`)"
    report = tmp_path / "conformance.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            str(RUNNER),
            "--jobs",
            "2",
            "--min-valid",
            str(MIN_VALID),
            "--min-rejected",
            str(MIN_REJECTED),
            "--max-crashes",
            str(MAX_CRASHES),
            "--report",
            str(report),
            "--",
            str(COMPOSER),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    returncode = proc.returncode
    message = [f"run-conformance exited {returncode}", proc.stdout.strip()]
    if proc.stderr.strip():
        message.append(proc.stderr.strip())
    if returncode != 0 and report.is_file():
        failures = _failures(report)
        message.append(f"{len(failures)} cases not passing (first {QUOTED_CASES}):")
        message.extend(failures[:QUOTED_CASES])
    assert returncode == 0, "\n".join(message)
