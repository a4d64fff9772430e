"""``python -m kmcflow.cli``: the ``kmcflow`` command."""

import sys

from kmcflow.cli import main

sys.exit(main())
