"""``python -m composer`` runs the CLI."""

import sys

from composer.cli import main

sys.exit(main())
