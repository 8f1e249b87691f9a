"""``python -m engine.cli``: the same as the ``circuit-engine`` command (torchrun starts it this way).

Under torchrun the process leaves with ``os._exit`` once its command returned (the process group
destroyed, every file written, outputs flushed here): a full interpreter shutdown can let gloo's
threads abort a rank whose work is done ("terminate called without an active exception"; seen twice
in full test runs on a loaded machine, never with the test alone), and torchrun then reports the
job as failed while the other node waits minutes in its exit barrier.
"""

import contextlib
import logging
import os
import sys

from engine.cli.main import main


def _under_torchrun() -> bool:
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:  # main() has said what is wrong with it
        return False


code = main()
if _under_torchrun():
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
sys.exit(code)
