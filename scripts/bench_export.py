"""Time each export format of a loaded view, as the window's File > Export runs it (run already loaded).

    QT_QPA_PLATFORM=offscreen python scripts/bench_export.py [RUN]     # default: the bundled demo

Loads RUN once per view (its circuit, then the whole model) with the exporter's loader, then times
``app.export.window.write_snapshot`` per format into a temporary folder (the median of 3) and prints one
line per view and format.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.export.window import _gui_app, headless_snapshot, write_snapshot  # noqa: E402
from engine import api  # noqa: E402

CASES = (("png", 1.0), ("png", 2.0), ("svg", 1.0), ("graphml", 1.0), ("json", 1.0), ("csv", 1.0))


def main() -> None:
    run = sys.argv[1] if len(sys.argv) > 1 else "demo"
    _gui_app()
    parser = argparse.ArgumentParser()
    api.add_export_arguments(parser)
    with tempfile.TemporaryDirectory() as tmp:
        for view in ("circuit", "model"):
            snap = headless_snapshot(parser.parse_args([run, "--format", "json", "--out", "x", "--view", view]))
            for fmt, scale in CASES:
                times = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    write_snapshot(snap, fmt, Path(tmp) / f"v.{fmt}", scale)
                    times.append(time.perf_counter() - t0)
                print(f"{view:<8} {snap.graph.n_nodes:>5} nodes {snap.graph.n_edges:>6} weights  {fmt:<8} "
                      f"{scale:g}x  {1000 * statistics.median(times):8.1f} ms")


if __name__ == "__main__":
    main()
