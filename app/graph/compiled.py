"""The app's compiled drawing loops (numba), loaded once per process: the edge raster's segments
(:mod:`app.graph.line_raster_kernel`) and the node raster's discs (:mod:`app.graph.node_raster_kernel`).

Each kernel module is imported on first use, which imports numba and loads (or, once per install,
compiles) its machine code; that takes up to a second, so callers on the GUI thread ask with
``block=False`` and draw the slow way until a background thread has loaded it. Where numba is
missing, cannot compile or cache here, or ``CIRCUIT_INSPECTOR_KERNELS=torch`` turns compiled kernels
off (as it does the engine's), :func:`load` returns None and QPainter draws. Knows nothing about
graphs or Qt.
"""

from __future__ import annotations

import importlib
import os
import threading
from types import ModuleType

#: The switch the engine's kernels honour too (engine/compiled): ``torch`` turns every compiled loop off.
ENV = "CIRCUIT_INSPECTOR_KERNELS"

_lock = threading.Lock()
_loaded: dict[str, ModuleType | None] = {}
_loading: set[str] = set()


def _import(name: str) -> ModuleType | None:
    if os.environ.get(ENV, "").strip().lower() == "torch":
        return None
    try:
        mod = importlib.import_module(f"app.graph.{name}")
        mod.warm()
        return mod
    except Exception:  # noqa: BLE001 - no numba, or it cannot compile or cache here: QPainter draws
        return None


def load(name: str, block: bool = True) -> ModuleType | None:
    """The kernel module ``app.graph.<name>`` (loaded once), or None where it cannot load. With
    ``block=False`` a kernel not loaded yet returns None at once and loads in a background thread."""
    with _lock:
        if name in _loaded:
            return _loaded[name]
        if not block:
            if name not in _loading:
                _loading.add(name)
                threading.Thread(target=load, args=(name,), name=f"load-{name}", daemon=True).start()
            return None
    mod = _import(name)  # outside the lock: a blocking caller waits only for its own import
    with _lock:
        return _loaded.setdefault(name, mod)
