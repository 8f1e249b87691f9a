"""Run Python's cyclic garbage collector in the GUI thread only.

Python's GC runs in whichever thread happens to allocate when a threshold is crossed. When that is
a worker thread (importing torch, evaluating an ablation) and the garbage holds Qt objects (a
closed view, removed text items), their C++ destructors run in the wrong thread: Qt warns
"Timers cannot be stopped from another thread" and may crash. While installed, this guard
switches automatic collection off and collects from a GUI-thread timer instead, with the same
generation thresholds. Reference-counted objects are freed as usual; only cycles wait (at most
``INTERVAL_MS``).

Once the engine (and with it torch, ~190k objects) has finished importing, the guard collects once and
moves every surviving object to the permanent generation (:func:`gc.freeze`): a full collection then
scans only what was created since, about 0.1 ms instead of 130 ms idle (0.6 s on busy cores), so a
long training or pruning job no longer stalls the window every few seconds. Knows nothing about the
rest of the app.
"""

from __future__ import annotations

import gc
import sys

from PySide6.QtCore import QObject, QTimer, Slot

INTERVAL_MS = 500
FULL_EVERY = 10
FREEZE_AFTER = "engine.api"  # freeze the heap once this module (it imports torch) has finished importing
_guard: "_Guard | None" = None
_users = 0


class _Guard(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.threshold = gc.get_threshold()
        self.was_enabled = gc.isenabled()
        self.frozen = False
        gc.disable()
        self.timer = QTimer(self)
        self.timer.setInterval(INTERVAL_MS)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    @Slot()
    def check(self) -> None:
        if not self.frozen and _imported(FREEZE_AFTER):
            self.frozen = True
            gc.collect()
            gc.freeze()
            return
        counts = gc.get_count()
        # Full collections are expensive with torch loaded (tens of ms): like CPython's own rule
        # (which also waits for 25% new long-lived objects), run them far less often than young ones.
        if counts[2] > FULL_EVERY * self.threshold[2]:
            gc.collect(2)
        elif counts[1] > self.threshold[1]:
            gc.collect(1)
        elif counts[0] > self.threshold[0]:
            gc.collect(0)

    def stop(self) -> None:
        self.timer.stop()
        if self.frozen:
            gc.unfreeze()  # what was frozen may be garbage by now
        gc.collect()
        if self.was_enabled:
            gc.enable()


def _imported(name: str) -> bool:
    """Whether module ``name`` has finished importing (an import in progress is in sys.modules already)."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and not getattr(spec, "_initializing", False)


def install() -> None:
    """Start guarding (call in the GUI thread, with a QApplication); nested calls are counted."""
    global _guard, _users
    _users += 1
    if _guard is None:
        _guard = _Guard()


def uninstall() -> None:
    """Undo one :func:`install`; the last one collects once and switches automatic GC back on."""
    global _guard, _users
    _users = max(0, _users - 1)
    if _users == 0 and _guard is not None:
        guard, _guard = _guard, None
        guard.stop()
