"""engine.allocator: freed activations stay in the process (glibc), and a user's own MALLOC_* wins.
(The speed it buys is measured by ``bench ablate``, docs/architecture.md, "Sparse inference".)

Each case runs in a fresh interpreter: malloc's thresholds are process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# glibc's own account of a 20 MB block (a click's blocks are a few MB): malloc'd, is it a mapping of
# its own (mallinfo2's hblkhd), and once freed, does it stay in the heap (keepcost: the free top the
# heap could give back)? By glibc's defaults a first block this size is a mapping, unmapped on free.
SCRIPT = """
import ctypes, json, sys
from engine.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size = 20 << 20
before = libc.mallinfo2().hblkhd
p = libc.malloc(size)
mapped = libc.mallinfo2().hblkhd - before
libc.free(p)
print(json.dumps({"kept": kept, "own_mapping": mapped >= size, "kept_free": libc.mallinfo2().keepcost >= size}))
"""


def _run(mode: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**clean, "OMP_NUM_THREADS": "1", **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc thresholds: Linux only")
def test_freed_blocks_stay_in_the_heap():
    kept, default = _run("keep"), _run("default")
    if not kept["kept"]:
        pytest.skip("this C library is not glibc: nothing to set")
    assert not kept["own_mapping"] and kept["kept_free"], kept  # from the heap, and kept there when freed
    assert default["own_mapping"] and not default["kept_free"], default  # glibc's defaults: mapped, given back


def test_a_users_own_malloc_settings_are_left_alone():
    assert _run("keep", MALLOC_TRIM_THRESHOLD_="131072")["kept"] is False
