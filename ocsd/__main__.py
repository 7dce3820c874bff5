"""``python -m ocsd``."""

import sys

from ocsd.cli import main

sys.exit(main())
