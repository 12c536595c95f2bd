"""``python -m lbkit``: the same command line as the ``lbkit`` script."""

import sys

from lbkit.cli import main

sys.exit(main())
