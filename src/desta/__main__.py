"""`python -m desta` runs the CLI."""

import sys

from desta.cli import main

sys.exit(main())
