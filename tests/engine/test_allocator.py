"""engine.allocator: freed activations stay in the process (glibc), and a user's own MALLOC_* wins.

Each case runs in a fresh interpreter: malloc's thresholds are process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A block of a click's size (20 MB), used and freed, then the same again: the second time its pages are
# either still mapped (kept) or mapped afresh (glibc's defaults give a first large block back to the
# kernel when it is freed).
SCRIPT = """
import json, resource, sys, torch
from engine.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
def block():
    torch.empty(5 << 20).fill_(1.0)  # 20 MB, freed at once
block()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block()
print(json.dumps({"kept": kept, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _run(mode: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**clean, "OMP_NUM_THREADS": "1", **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc thresholds: Linux only")
def test_freed_blocks_are_reused_without_page_faults():
    kept, default = _run("keep"), _run("default")
    if not kept["kept"]:
        pytest.skip("this C library is not glibc: nothing to set")
    pages = (20 << 20) // 4096  # the block's pages
    # The best of three: a VM's memory reclaim (this machine's kernel runs DAMON) may take kept pages
    # back now and then, which no setting of ours prevents.
    faults = [kept["faults"], *(_run("keep")["faults"] for _ in range(2) if kept["faults"] >= pages // 20)]
    assert min(faults) < pages // 20, faults
    assert default["faults"] > pages // 2, default


def test_a_users_own_malloc_settings_are_left_alone():
    assert _run("keep", MALLOC_TRIM_THRESHOLD_="131072")["kept"] is False
