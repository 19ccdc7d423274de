"""`python -m poseir` runs the CLI."""

import sys

from poseir.cli import main

sys.exit(main())
