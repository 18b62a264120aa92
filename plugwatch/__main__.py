"""`python -m plugwatch` runs the command line."""

import sys

from plugwatch.cli import main

sys.exit(main())
