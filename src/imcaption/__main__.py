"""`python -m imcaption ...`, the same as the `imcaption` command (and what torchrun can launch)."""

import sys

from imcaption.cli import main

sys.exit(main())
