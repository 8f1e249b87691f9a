"""``circuit-inspector --bench-graph [--json]`` and ``--bench-export``: how fast the app feels, offscreen.

``make bench`` is the one entry point that runs every benchmark: the engine's (``circuit-engine
bench train|prune|ablate|store``, :mod:`engine.cli.bench`) and these two.

* ``first_paint_s``: process launch -> the window's first paint (a child process on the demo,
  timestamps from the child); ``ready_s``: launch -> graph and metrics of the demo drawn.
* ``pan_frame_ms``: the whole-model view (demo layout) with 100k and 1M synthetic edges (and the
  demo's own weights): one frame = move the view by 1% and repaint it synchronously; median and
  95th percentile over 60 frames, after the raster of the edges has arrived (``raster_s``).
* ``click_to_metric_ms``: ablating one circuit node (from the baseline) in the running window -> the
  new metrics in the GUI thread (the latency the status bar shows), median / p95 over 24 nodes;
  ``engine_median`` is the Ablator's own time, ``median_by_layer`` splits by the node's layer;
  ``paced_300ms_apart``: the same with the user pausing between clicks, with nothing selected and with
  a q/k/v node selected (the pair's trace then runs after each result, and a click may wait for it).

``--bench-export`` (:func:`export_times`): each export format of the demo's circuit view and of its
whole-model view, written as the window's File > Export writes it (the run already loaded), median
of 3 per format.

Targets (issue #6): first paint <= 2 s, frame <= 33 ms, click-to-metric <= 50 ms. The benchmarks
print; they assert nothing. Reports whether a ``circuit-engine train`` was running meanwhile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TARGETS = {"first_paint_s": 2.0, "pan_frame_ms": 33.0, "click_to_metric_ms": 50.0}
FRAMES = 60
CLICKS = 24
PACED = 12  # nodes clicked twice each, PACE_MS apart (with and without a q/k/v node selected)
PACE_MS = 300


def _training_running() -> bool:
    try:
        out = subprocess.run(["pgrep", "-f", "circuit-engine train"], capture_output=True, text=True)
        return bool(out.stdout.strip())
    except OSError:
        return False


def startup_times(run: str = "demo") -> dict:
    """Launch the app in a child process; the child reports its first paint and readiness."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CIRCUIT_INSPECTOR_BENCH_STARTUP="1")
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "app.main", run], env=env, capture_output=True,
                          text=True, timeout=300)
    events = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            events[data["event"]] = data["t"] - t0
    return {"first_paint_s": events.get("first_paint"), "ready_s": events.get("ready"),
            "error": None if events else (proc.stderr.strip().splitlines() or ["no output"])[-1]}


@dataclass(frozen=True, eq=False)
class _BenchBundle:
    """The few fields of engine.scene.bundle.Bundle that the graph view reads."""

    model_graph: object
    task_view: object
    circuit: object = None
    circuit_graph: object = None
    store_path: object = None
    labels: dict = field(default_factory=dict)
    means: dict = field(default_factory=dict)
    run_name: str = "bench"
    run_path: Path = Path("bench")
    task: object = None


@dataclass(frozen=True)
class _TaskView:
    tokens: tuple = (("b", "e", "n", "c", "h"), ("b", "e", "n", "c", "h"))
    target_str: tuple = ('"', "'")
    pairs: tuple = ()
    node_values: dict = field(default_factory=dict)
    embed: np.ndarray = field(default_factory=lambda: np.zeros((2, 1)))
    unembed: np.ndarray = field(default_factory=lambda: np.zeros((2, 1)))


@dataclass(frozen=True)
class _Task:
    name: str = "bench"


def synthetic_graph(n_edges: int, seed: int = 0):
    """The demo-sized whole-model layout with ``n_edges`` random edges between consecutive rows."""
    from engine.scene.layout import ModelShape, build_graph

    shape = ModelShape(n_layer=2, n_head=8, d_head=16, d_resid=128, d_model=128, d_mlp=512)
    g = build_graph(shape, None, (), (), np.zeros(0, np.float32))
    rng = np.random.default_rng(seed)
    rows = np.unique(g.pos[:, 1])
    members = [np.flatnonzero(g.pos[:, 1] == y) for y in rows]
    pick = rng.integers(0, len(rows) - 1, n_edges)
    src, dst = np.zeros(n_edges, np.int64), np.zeros(n_edges, np.int64)
    for r in range(len(rows) - 1):
        sel = np.flatnonzero(pick == r)
        src[sel] = rng.choice(members[r], len(sel))
        dst[sel] = rng.choice(members[r + 1], len(sel))
    return g.with_edges(src, dst, rng.standard_normal(n_edges).astype(np.float32) * 0.1)


def pan_frames(app, graph, size=(760, 680)) -> dict:
    """Frame times while panning the whole-model view of ``graph``."""
    from app.graph.view import CircuitView
    from app.model.state import AppState

    state = AppState()
    view = CircuitView(state)
    view.resize(*size)
    view.show()
    app.processEvents()
    t0 = time.perf_counter()
    state.set_bundle(_BenchBundle(model_graph=graph, task_view=_TaskView(), task=_Task()))
    _settle(app, view)
    raster_s = time.perf_counter() - t0
    result = {"edges": graph.n_edges, "raster_s": round(raster_s, 3), **measure_pan(app, view)}
    view.shutdown()
    view.close()
    return result


def _settle(app, view, timeout_s: float = 180.0) -> None:
    """Wait (sleeping) until the edges on screen match the view: drawn, and no re-render pending."""
    edges = view.edges
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()
        if view.is_drawn and not edges.rendering and (edges.mode == "vector" or edges._covers()):
            return
        time.sleep(0.01)


def measure_pan(app, view) -> dict:
    """Pan ``view`` by 1% of its width per frame, repainting synchronously; frame times in ms."""
    viewport = view.widget.viewport()
    dx = view.vb.viewRect().width() * 0.01
    times = []
    for i in range(FRAMES):
        t = time.perf_counter()
        view.vb.translateBy(x=dx if (i // 20) % 2 == 0 else -dx)
        viewport.repaint()
        times.append(1000 * (time.perf_counter() - t))
        app.processEvents()
    return {"mode": view.edges.mode, "median": round(float(np.median(times)), 2),
            "p95": round(float(np.percentile(times, 95)), 2)}


def click_latency(app, run: str = "demo") -> dict:
    """Toggle circuit nodes in a real window and time click -> metrics shown."""
    from app.window.main_window import MainWindow

    window = MainWindow(persist_settings=False, error_handler=lambda *a: None)
    window.resize(1400, 900)
    window.show()
    window.open_default(run)
    deadline = time.monotonic() + 300
    while window.state.evaluation is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    graph = window.state.graph
    if graph is None:
        window.shutdown()
        return {"error": f"could not load {run}"}
    rng = np.random.default_rng(0)
    nodes = [graph.ids[i] for i in rng.choice(graph.n_nodes, size=min(CLICKS, graph.n_nodes), replace=False)]
    latencies, engine_ms, per_layer = [], [], {}
    click = lambda node: _click(window, node)  # noqa: E731
    for node in nodes:  # each node ablated from the baseline, then restored (two clicks)
        ev = click(node)
        if ev is None or click(node) is None:
            break
        latencies.append(ev.latency_ms)
        engine_ms.append(ev.result.elapsed_ms)
        per_layer.setdefault(node.split(".")[1], []).append(ev.latency_ms)
    paced = {"nothing selected": _paced(app, window, nodes[:PACED], None),
             "q/k/v node selected": _paced(app, window, nodes[:PACED], _head_node(graph))}
    shown = "circuit" if window.state.view == "circuit" else "whole model"
    window.state.set_view("model")  # the demo's own weights, whole-model view
    _settle(app, window.view)
    demo_pan = {"edges": window.state.graph.n_edges, **measure_pan(app, window.view)}
    window.shutdown()
    window.close()
    return {"nodes": len(nodes), "median": round(float(np.median(latencies)), 1),
            "p95": round(float(np.percentile(latencies, 95)), 1),
            "median_by_layer": {k: round(float(np.median(v)), 1) for k, v in sorted(per_layer.items())},
            "engine_median": round(float(np.median(engine_ms)), 1),
            "graph": shown, f"paced_{PACE_MS}ms_apart": paced, "whole_model_pan_ms": demo_pan}


def _click(window, node: str):
    """Toggle ``node``; the Evaluation it produced, or None (no result within a minute)."""
    from PySide6.QtCore import QEventLoop, QTimer

    before = window.state.evaluation
    loop = QEventLoop()
    window.state.evaluationChanged.connect(loop.quit)
    QTimer.singleShot(60_000, loop.quit)
    window.state.toggle_nodes([node])
    loop.exec()  # sleeps until the result arrives (a busy loop would steal the worker's GIL)
    window.state.evaluationChanged.disconnect(loop.quit)
    return None if window.state.evaluation is before else window.state.evaluation


def _head_node(graph) -> str | None:
    return next((n for n in graph.ids if ".attn.k:" in n or ".attn.q:" in n or ".attn.v:" in n), None)


def _paced(app, window, nodes: list[str], selected: str | None) -> dict:
    """Click-to-metric with the user pausing :data:`PACE_MS` between clicks, so that whatever follows
    the metrics (the pair's trace when a node is selected: positions, attention, attributions) runs
    between clicks and a click may land while it does."""
    window.state.select(selected)
    latencies = []
    for node in nodes:
        for _ in range(2):
            ev = _click(window, node)
            if ev is None:
                break
            latencies.append(ev.latency_ms)
            end = time.monotonic() + PACE_MS / 1000
            while time.monotonic() < end:
                app.processEvents()
                time.sleep(0.003)
    window.state.select(None)
    if not latencies:
        return {"error": "no result"}
    return {"clicks": len(latencies), "median": round(float(np.median(latencies)), 1),
            "p95": round(float(np.percentile(latencies, 95)), 1)}


EXPORT_CASES = (("png", 1.0), ("png", 2.0), ("svg", 1.0), ("graphml", 1.0), ("json", 1.0), ("csv", 1.0))


def export_times(run: str = "demo", repeats: int = 3) -> list[dict]:
    """Milliseconds to write each export format of ``run``'s circuit view and whole-model view."""
    import argparse
    import statistics
    import tempfile

    from app.export.command import _gui_app
    from app.export.write import write_snapshot
    from engine.scene.export import add_export_arguments
    from engine.scene.headless import headless_snapshot

    _gui_app()
    parser = argparse.ArgumentParser()
    add_export_arguments(parser)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for view in ("circuit", "model"):
            snap = headless_snapshot(parser.parse_args([run, "--format", "json", "--out", "x", "--view", view]))
            for fmt, scale in EXPORT_CASES:
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    write_snapshot(snap, fmt, Path(tmp) / f"v.{fmt}", scale)
                    times.append(time.perf_counter() - t0)
                rows.append({"view": view, "nodes": snap.graph.n_nodes, "weights": snap.graph.n_edges,
                             "format": fmt, "scale": scale, "median_ms": round(1000 * statistics.median(times), 1)})
    return rows


def main_export(as_json: bool = False, run: str | None = None) -> int:
    """``--bench-export``: one line per view and format (one JSON object with ``--json``)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    run = run or os.environ.get("CIRCUIT_INSPECTOR_BENCH_RUN", "demo")
    rows = export_times(run)
    if as_json:
        print(json.dumps({"benchmark": "export", "run": run, "cases": rows}))
    else:
        for r in rows:
            print(f"{r['view']:<8} {r['nodes']:>5} nodes {r['weights']:>6} weights  {r['format']:<8} "
                  f"{r['scale']:g}x  {r['median_ms']:8.1f} ms")
    return 0


def main(as_json: bool = False, run: str | None = None) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    training = _training_running()
    run = run or os.environ.get("CIRCUIT_INSPECTOR_BENCH_RUN", "demo")
    report: dict = {"run": run, "training_running_at_start": training}
    report.update(startup_times(run))
    from app.window.application import make_app

    app = make_app()
    pan_frames(app, synthetic_graph(20_000))  # warm-up (fonts, symbol atlases, first paints): not reported
    report["pan_frame_ms"] = {f"{n // 1000}k" if n < 10**6 else f"{n // 10**6}M": pan_frames(app, synthetic_graph(n))
                              for n in (100_000, 1_000_000)}
    report["click_to_metric_ms"] = click_latency(app, run)
    report["targets"] = TARGETS
    report["training_running_at_end"] = _training_running()
    if as_json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:28s} {value}")
    return 0
