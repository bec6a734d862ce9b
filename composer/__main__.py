"""``python -m composer`` runs the CLI."""

from composer.cli import entry

entry()
