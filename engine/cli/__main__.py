"""``python -m engine.cli``: the same as the ``circuit-engine`` command (torchrun starts it this way)."""

import sys

from engine.cli.main import main

sys.exit(main())
