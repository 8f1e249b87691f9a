"""Keep freed memory in the process between clicks (glibc's malloc; docs/architecture.md, "Sparse
inference").

A click on a csp_yolo1-shaped run allocates and frees ~70 MB of activations of a few MB each. By
default glibc gives such blocks back to the kernel when they are freed (blocks over its mmap
threshold, and a heap top over its trim threshold), so every click faulted the same pages in again:
~18,000 page faults a click. :func:`keep_freed_memory` raises those thresholds so that the memory
stays in the process for the next click: measured side by side (alternating runs of 16 layer-0 clicks
of ``bench ablate --task class_init``'s nodes), 9 page faults instead of 160,000-400,000 and the
clicks 16% faster. The cost is resident memory: what a click freed stays counted to the process (up
to the trim threshold) until the next click reuses it.

Called by the two entry points (``circuit-engine``, ``circuit-inspector``) and re-exported by
``engine.api`` for notebooks. It does nothing where the C library is not glibc, and nothing when any
of glibc's own ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or ``MALLOC_TOP_PAD_`` variables
is set (the user chose). Imports no torch.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # mallopt's parameters (malloc.h)
#: Blocks up to this size come from the heap, not fresh mappings (glibc's largest allowed value on 64-bit).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of a heap kept before any is given back.
TRIM_THRESHOLD = 1 << 30
#: Extra memory asked for whenever a heap grows, so that a click's next block is already mapped.
TOP_PAD = 64 << 20
USER_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's thresholds once per process; True if they are in force (set now or before)."""
    global _done
    if _done is None:
        _done = _set()
    return _done


def _set() -> bool:
    if not sys.platform.startswith("linux") or any(v in os.environ for v in USER_VARIABLES):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's name (find_library would run ldconfig: ~20 ms at start-up)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (other C libraries' thresholds differ)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in
               ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD)))
