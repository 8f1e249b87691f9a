"""Compiled CPU kernels (numba) for the hot loops torch does poorly at these sizes: AbsTopK's row
selection (:mod:`engine.compiled.topk_rows`, used by :mod:`engine.topk`) and attention over packed
prompt prefixes (:mod:`engine.compiled.trie_attention`, used by :mod:`engine.ablation.packed`).

numba is a dependency; each kernel is compiled on first use and its machine code cached beside its
module (``__pycache__``; about 2 s once per install, a fraction of a second to load afterwards). Every
kernel has a torch reference that serves when numba is missing, for CUDA and half precision, under
``kernels.dense_reference()`` and when ``CIRCUIT_INSPECTOR_KERNELS=torch`` is set; tests keep each
kernel equal to its reference. Knows nothing about models, files or Qt.
"""

from __future__ import annotations

import importlib
import os
import threading
from types import ModuleType

#: ``CIRCUIT_INSPECTOR_KERNELS=torch`` turns every compiled kernel off (the torch references serve).
ENV = "CIRCUIT_INSPECTOR_KERNELS"

_lock = threading.Lock()
_loaded: dict[str, ModuleType | None] = {}
#: Why a kernel is not in use (numba missing, or it could not compile or cache its code here): the
#: torch reference serves instead, with the same results.
failures: dict[str, str] = {}


def load(name: str) -> ModuleType | None:
    """The kernel module ``engine.compiled.<name>`` (imported once, which warms its machine code), or
    None when numba is missing, cannot compile or cache the kernel here (the reason goes to
    :data:`failures`), or the kernels are turned off."""
    with _lock:
        if name not in _loaded:
            mod = None
            if os.environ.get(ENV, "").strip().lower() != "torch":
                try:
                    mod = importlib.import_module(f"engine.compiled.{name}")
                    mod.warm()
                except Exception as exc:  # noqa: BLE001 - no numba, or it cannot compile or cache here
                    failures[name] = f"{type(exc).__name__}: {exc}"
                    mod = None
            _loaded[name] = mod
        return _loaded[name]
