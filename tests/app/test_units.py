"""Pure parts of the app (layout, state, session files, token heatmaps) and the edge layer's two
drawing modes; plus a guard against a Qt binding that leaks references (see pyproject)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.scene.layout import (KINDS, ModelShape, all_node_ids, build_graph, column_ends, io_edges,
                              split_id, token_positions)
from engine.scene.session import Session, SessionError, read_session, write_session
from app.model.state import AppState
from app.panels.token_html import examples_html

SHAPE = ModelShape(n_layer=2, n_head=4, d_head=8, d_resid=32, d_model=32, d_mlp=64)


def test_the_layouts_nodes_are_the_engines() -> None:
    """Every node the engine can ablate (block sites and final_resid) has a place in the layout."""
    from engine import api

    run_like = api.make_config("tiny").model
    shape = ModelShape.from_config(run_like)
    engine_ids = [f"{s}:{i}" for s in api.all_sites(run_like, final=True) for i in range(api.site_width(run_like, s))]
    assert all_node_ids(shape) == engine_ids and shape.n_nodes == len(engine_ids)
    assert KINDS[:-1] == tuple(api.SITE_KINDS) and KINDS[-1] == "final_resid"


def test_residual_channels_are_aligned_and_qkv_grouped_by_head() -> None:
    nodes = ["blocks.0.attn.read:3", "blocks.0.attn.write:3", "blocks.1.mlp.read:3", "blocks.1.mlp.write:7",
             "blocks.0.attn.read:7", "blocks.0.attn.q:9", "blocks.0.attn.k:1", "blocks.0.attn.v:8",
             "blocks.0.attn.q:0", "blocks.1.mlp.neuron:40", "blocks.1.mlp.neuron:2"]
    g = build_graph(SHAPE, nodes, ["blocks.0.attn.read:3"], ["blocks.0.attn.q:0"], np.array([0.5], np.float32))
    x = {n: g.pos[g.index[n]][0] for n in nodes}
    y = {n: g.pos[g.index[n]][1] for n in nodes}
    assert x["blocks.0.attn.read:3"] == x["blocks.0.attn.write:3"] == x["blocks.1.mlp.read:3"]
    assert x["blocks.0.attn.read:7"] == x["blocks.1.mlp.write:7"] > x["blocks.0.attn.read:3"]
    # Rows: attention read < q/k/v < attention write < ... and layer 1 above layer 0.
    assert y["blocks.0.attn.read:3"] < y["blocks.0.attn.q:0"] == y["blocks.0.attn.v:8"] < y["blocks.0.attn.write:3"]
    assert y["blocks.1.mlp.read:3"] < y["blocks.1.mlp.neuron:2"] < y["blocks.1.mlp.write:7"]
    # q/k/v by head (d_head 8): head 0 = q0, k1 (then v of head 0 would follow); head 1 = v8, q9.
    order = sorted(["blocks.0.attn.q:0", "blocks.0.attn.k:1", "blocks.0.attn.v:8", "blocks.0.attn.q:9"],
                   key=lambda n: x[n])
    assert order == ["blocks.0.attn.q:0", "blocks.0.attn.k:1", "blocks.0.attn.q:9", "blocks.0.attn.v:8"]
    # Residual links connect the column of channel 3 bottom to top.
    links = {tuple(sorted((g.ids[a], g.ids[b]))) for a, b in g.resid}
    assert ("blocks.0.attn.read:3", "blocks.0.attn.write:3") in links
    assert g.n_edges == 1 and g.edge_id(0) == "blocks.0.attn.read:3->blocks.0.attn.q:0"
    low, high = column_ends(g)
    assert g.ids[low[3]] == "blocks.0.attn.read:3" and g.ids[high[3]] == "blocks.1.mlp.read:3"


def test_whole_model_rows_span_the_width_and_io_edges() -> None:
    g = build_graph(SHAPE, None, [], [], np.zeros(0, np.float32))
    assert g.n_nodes == SHAPE.n_nodes
    for kinds in ([0], [1, 2, 3], [4], [5], [6], [7]):  # every row (q, k and v share one)
        xs = g.pos[np.isin(g.kind, kinds), 0]
        assert xs.min() < -0.4 * g.width and xs.max() > 0.4 * g.width
    embed = np.zeros(32)
    embed[[1, 2]] = [0.5, -0.5]
    segs, w = io_edges(g, embed, np.ones(32), -np.ones(32), token_x=0.0)
    assert len(w) == 2 + 64 and segs.shape == (66, 4)
    assert len(token_positions(g.width, 100)) == 24
    with pytest.raises(ValueError):
        split_id("blocks.0.attn.x:1")


def test_state_toggles_undo_redo_and_history(qtbot) -> None:
    s = AppState()
    seen = []
    s.ablationChanged.connect(seen.append)
    s.toggle_nodes(["a:1"])
    s.toggle_nodes(["a:1", "a:2"])  # not all ablated -> ablate both
    assert s.ablation.nodes == {"a:1", "a:2"}
    s.toggle_nodes(["a:1", "a:2"])  # all ablated -> restore both
    assert s.ablation.nodes == frozenset()
    s.toggle_edge("x->y")
    s.undo()
    s.undo()
    assert s.ablation.nodes == {"a:1", "a:2"} and s.can_redo()
    s.redo()
    s.clear_ablation()
    assert s.ablation.nodes == frozenset() and s.ablation.edges == frozenset() and len(seen) == 7
    s.set_label("a:1", "  quote  ")
    assert s.labels == {"a:1": "quote"}
    s.set_label("a:1", "")
    assert s.labels == {}


def test_session_round_trip_and_errors(tmp_path: Path) -> None:
    sess = Session(run="demo", task="t", circuit="/r/circuits/t/mean.json", view="model", mode="zero",
                   ablated_nodes=("blocks.0.attn.q:1",), ablated_edges=("blocks.0.attn.read:2->blocks.0.attn.q:1",),
                   labels={"blocks.0.attn.q:1": "quote type"}, selected="blocks.0.attn.q:1", pair=2,
                   threshold=0.01, view_range=(-3.5, 4.25, 0.5, 13.0))
    path = write_session(tmp_path / "s.json", sess)
    assert read_session(path) == sess and read_session(path).source == str(path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # shareable like any file, not mkstemp's 0600
    (tmp_path / "v1.json").write_text('{"kind": "session", "schema_version": 1, "run": "demo", "pair": 1}')
    assert read_session(tmp_path / "v1.json") == Session(run="demo", pair=1)  # version 1 files still load
    for text, message in (("{", "not valid JSON"), ('{"kind": "x"}', "not a session"),
                          ('{"kind": "session", "viev": "model"}', "unknown key"),
                          ('{"kind": "session", "mode": "half"}', "mode must be one of"),
                          ('{"kind": "session", "schema_version": 3}', "not supported"),
                          ('{"kind": "session", "view_range": [1, 0, 0, 1]}', "x0 < x1"),
                          ('{"kind": "session", "view_range": [0, 1]}', "view_range must be a list"),
                          ('{"kind": "session", "labels": ["a"]}', "labels must be an object")):
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(SessionError, match=message):
            read_session(tmp_path / "bad.json")
    with pytest.raises(SessionError, match="not found"):
        read_session(tmp_path / "missing.json")
    assert json.loads(path.read_text())["kind"] == "session"


def test_a_session_read_for_the_window_leaves_out_what_it_cannot_use(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_text('{"kind": "session", "run": "demo", "mode": "zero", "pair": -3, "threshold": NaN, '
                    '"view_range": [-1e308, 1e308, 0, 1], "view": "graph", "typo": 1, "ablated_nodes": ["a:1"]}')
    with pytest.raises(SessionError, match="unknown key"):  # strict by default (circuit-engine export)
        read_session(path)
    s = read_session(path, drop_invalid=True)
    assert (s.run, s.mode, s.ablated_nodes) == ("demo", "zero", ("a:1",))  # what is valid is kept
    assert (s.pair, s.threshold, s.view_range, s.view) == (0, 0.0, None, "circuit")  # the rest: defaults
    assert [d.split(" ")[0] for d in s.dropped] == ["the", "view", "pair", "threshold", "view_range"]
    assert "typo" in s.dropped[0] and "-3" in s.dropped[2] and "nan" in s.dropped[3]
    assert "dropped" not in s.to_dict()  # never written back


def test_token_heatmap_keeps_whitespace_and_escapes() -> None:
    class Ex:
        value, center = 1.5, 1
        tokens = ("<", " ", "\n")
        values = np.array([0.1, 1.5, -0.7], np.float32)

    html = examples_html("Top", [Ex()])
    assert "&lt;" in html and "⏎" in html and "white-space: pre" in html and "+  1.500" not in html
    assert html.count("background-color") == 3 and "font-weight:bold" in html


def test_token_windows_fit_the_width_with_the_peak_in_the_middle() -> None:
    from app.panels.token_html import fit_window

    tokens = ("ab", "c", "\n", "PEAK", "d", "ef", "g")
    first, stop, pad = fit_window(tokens, 3, 12)  # the peak starts at column (12 - 4) // 2 = 4
    assert (first, stop, pad) == (0, 7, 0)  # "ab" "c" "⏎" = 4 characters before it, 4 after
    first, stop, pad = fit_window(tokens, 3, 8)  # column 2: "c⏎" fits before, only "d" after
    assert (first, stop, pad) == (1, 5, 0)
    first, stop, pad = fit_window(tokens, 3, 9)  # column 2 again, room for "d" "ef" after
    assert (first, stop, pad) == (1, 6, 0)
    assert fit_window(("x", "LONGER-THAN-WIDTH"), 1, 5) == (1, 2, 0)  # the peak alone
    assert fit_window(("PEAK", "z"), 0, 10) == (0, 2, 3)  # nothing before it: spaces put it in place


def test_edge_layer_vector_then_raster(qtbot) -> None:
    import pyqtgraph as pg

    from app.graph import edges as edge_layer

    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.show()
    layer = edge_layer.EdgeLayer(widget.getPlotItem().vb)
    rng = np.random.default_rng(0)
    n = edge_layer.VECTOR_MAX + 500
    segs = rng.uniform(-10, 10, (n, 4))
    w = rng.standard_normal(n).astype(np.float32)
    with qtbot.waitSignal(layer.drawn, timeout=30_000):
        layer.set_edges(segs, w, np.arange(n))
    assert layer.mode == "raster" and layer.raster.boundingRect().width() > 0
    layer.set_threshold(float(np.quantile(np.abs(w), 0.5)))
    assert layer.mode == "vector" and layer.is_drawn
    drawn = sum(len(item.xData) for item in layer.items if item.xData is not None) // 2
    assert drawn == layer.n_shown <= n // 2 + 1
    # The strongest shown edge is hit by a click on its middle.
    e = int(np.argmax(np.abs(w)))
    widget.getPlotItem().vb.setRange(xRange=(-10, 10), yRange=(-10, 10))
    mx, my = (segs[e, 0] + segs[e, 2]) / 2, (segs[e, 1] + segs[e, 3]) / 2
    assert layer.nearest(mx, my, tolerance_px=3.0) is not None
    assert layer.nearest(1e4, 1e4) is None
    layer.shutdown()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None/True are immortal from Python 3.12 on")
def test_qt_binding_does_not_leak_references_to_none(qtbot) -> None:
    """PySide6 6.12.0 drops a reference to None on calls such as processEvents(); on Python < 3.12
    the app then aborts with "deallocating None" after a few minutes (pyproject excludes it)."""
    from PySide6.QtWidgets import QApplication

    before = sys.getrefcount(None)
    for _ in range(2000):
        QApplication.processEvents()
    assert sys.getrefcount(None) > before - 500


def test_gc_guard_freezes_the_heap_once_the_engine_is_imported_and_unfreezes_on_exit(qtbot) -> None:
    """After torch is in, full collections must not rescan its ~190k objects (a GUI pause each time)."""
    import gc

    from app.workers import gc_guard
    from engine import api  # noqa: F401  (the guard freezes once this has finished importing)

    assert gc.get_freeze_count() == 0
    gc_guard.install()
    try:
        assert not gc.isenabled()
        gc_guard._guard.check()
        assert gc.get_freeze_count() > 10_000
        gc_guard._guard.check()  # only once
    finally:
        gc_guard.uninstall()
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_counted_agrees_in_number():
    from engine.scene.snapshot import counted
    assert counted(1, "weight") == "1 weight"
    assert counted(0, "node") == "0 nodes"
    assert counted(2816, "node") == "2,816 nodes"


def test_a_circuit_laid_out_in_a_larger_frame_keeps_the_frames_positions() -> None:
    frame = ["blocks.0.attn.read:3", "blocks.0.attn.read:9", "blocks.0.attn.q:0", "blocks.0.attn.k:17",
             "blocks.0.mlp.neuron:5", "blocks.0.mlp.neuron:40", "blocks.1.attn.write:9"]
    big = build_graph(SHAPE, frame, [], [], np.zeros(0, np.float32))
    sub = ["blocks.0.attn.read:9", "blocks.0.attn.k:17", "blocks.0.mlp.neuron:40"]
    alone = build_graph(SHAPE, sub, [], [], np.zeros(0, np.float32))
    framed = build_graph(SHAPE, sub, ["blocks.0.attn.read:9"], ["blocks.0.attn.k:17"],
                         np.array([0.3], np.float32), layout_ids=frame)
    assert np.array_equal(framed.pos, big.pos[[frame.index(n) for n in sub]]) and framed.width == big.width
    assert not np.array_equal(alone.pos, framed.pos)  # on its own the circuit would be laid out tighter
    assert framed.n_edges == 1 and framed.ids == tuple(sub)
    extra = build_graph(SHAPE, sub + ["blocks.1.mlp.neuron:2"], [], [], np.zeros(0, np.float32), layout_ids=frame)
    assert extra.n_nodes == 4  # a node outside the frame is still drawn


def test_the_run_summary_says_a_synthetic_run_was_never_trained() -> None:
    from app.panels.docks import model_summary

    cfg = {"preset": "synth-csp_yolo1", "model": {"n_layer": 8, "d_model": 1024},
           "sparsity": {"enabled": True, "density": 0.002}}
    assert "never trained" in model_summary(cfg)
    assert "never trained" not in model_summary({**cfg, "preset": "demo"})


def test_queries_are_paired_with_their_keys_in_circuits_only() -> None:
    """Issue 18 item 3: q:i and k:i of one layer (same head and dimension) are linked; a key without
    its query, another layer's query and the whole-model view get no link."""
    from engine.scene.layout import qk_arcs

    shape = ModelShape(n_layer=2, n_head=8, d_head=16, d_resid=128, d_model=128, d_mlp=512)
    ids = ["blocks.1.attn.q:97", "blocks.1.attn.k:97", "blocks.1.attn.k:98", "blocks.0.attn.q:97",
           "blocks.1.attn.v:97", "blocks.0.mlp.neuron:3"]
    g = build_graph(shape, ids, (), (), np.zeros(0, np.float32))
    assert [(g.ids[a], g.ids[b]) for a, b in g.qk] == [("blocks.1.attn.q:97", "blocks.1.attn.k:97")]
    arcs = qk_arcs(g.pos, g.qk, points=10)
    assert arcs.shape == (9, 4)  # one polyline of 9 segments from the q node to the k node
    q, k = g.pos[g.qk[0, 0]], g.pos[g.qk[0, 1]]
    np.testing.assert_allclose(arcs[0, :2], q)
    np.testing.assert_allclose(arcs[-1, 2:], k)
    assert arcs[:, [1, 3]].max() > q[1] and arcs[:, [1, 3]].max() < q[1] + 0.5  # above the row, below the next
    assert len(build_graph(shape, None, (), (), np.zeros(0, np.float32)).qk) == 0
