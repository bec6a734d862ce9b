"""The isolation probe's fixtures: the residue check after each test (tests/integration/system_check.py)."""

from tests.integration.system_check import system_check  # noqa: F401  (autouse: residue after each test)
