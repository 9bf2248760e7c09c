"""``python -m ase_bodyorder.cli``: the ``ase-bodyorder`` command."""

import sys

from . import main

sys.exit(main())
