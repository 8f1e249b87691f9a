"""Interactive work first: a click's evaluation runs while background drawing waits.

Python runs one thread at a time (the GIL), and QPainter keeps it while it draws. The whole-model
view's edge raster (:mod:`app.graph.edges`) draws in chunks of ~10 ms on its own thread; a click's
evaluation on the ablation worker needs the GIL back hundreds of times (every torch call), and
behind a drawing thread each of those waits up to a chunk. Measured on a csp_yolo1-shaped run right
after loading: a layer-0 click took 2.5 s of engine time while the raster drew, 0.15 s after.

So interactive computations mark themselves: :func:`interactive` around a block (the ablation
worker's evaluations and traces), or a named :func:`hold` from the click until its result is on
screen (the GUI thread's own work for the click needs the GIL too; a hold expires by itself after
``HOLD_S`` in case nobody releases it). Background loops call :func:`yield_to_interactive` between
chunks: it returns at once when nothing interactive runs, else waits (without the GIL) until it is
done, at most ``max_wait_s`` per call, so that a long run of clicks slows the raster down but never
stops it. Knows nothing about runs, graphs or Qt.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

MAX_WAIT_S = 1.0
HOLD_S = 10.0

_cond = threading.Condition()
_active = 0
_holds: dict[str, float] = {}  # name -> when it expires (time.monotonic())


def _busy() -> bool:
    """(Under _cond.) Whether an interactive block runs or an unexpired hold is held."""
    if _active:
        return True
    now = time.monotonic()
    for name in [n for n, until in _holds.items() if until <= now]:
        del _holds[name]
    return bool(_holds)


def hold(name: str, max_s: float = HOLD_S) -> None:
    """Start (or renew) the hold ``name``: interactive until :func:`release` or ``max_s`` from now."""
    with _cond:
        _holds[name] = time.monotonic() + max_s


def release(name: str) -> None:
    """End the hold ``name`` (nothing if it is not held)."""
    with _cond:
        if _holds.pop(name, None) is not None and not _busy():
            _cond.notify_all()


@contextmanager
def interactive() -> Iterator[None]:
    """Within this block background loops that call :func:`yield_to_interactive` wait."""
    global _active
    with _cond:
        _active += 1
    try:
        yield
    finally:
        with _cond:
            _active -= 1
            if not _busy():
                _cond.notify_all()


def interactive_running() -> bool:
    """Whether an :func:`interactive` block runs on some thread or a hold is held."""
    with _cond:
        return _busy()


def yield_to_interactive(max_wait_s: float = MAX_WAIT_S) -> bool:
    """Wait while interactive work runs (at most ``max_wait_s``); True when nothing interactive runs
    any more."""
    with _cond:
        return _cond.wait_for(lambda: not _busy(), timeout=max_wait_s)
