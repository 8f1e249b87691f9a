"""Readable graphs (issue 15, item 7): node captions placed by priority never overlap, hidden ones
come back on zoom and hover, the legend never covers the graph, row names are not cut, and raising
|w| makes the picture sparser. The placement rule is tested on its own (``engine.scene.labels``), then
in the window on the bundled ``bracket_counting`` circuit (112 nodes) at the default fit, and in the
exported picture.

Waits are on signals or conditions, never sleeps.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtGui import QFontMetricsF

from app.graph.token_row import B_ROW_Y
from engine.scene.labels import (ABOVE, BELOW, HIDDEN, caption_order, node_blockers, overlapping_pairs,
                                 place_captions)
from engine.scene.layout import ModelShape, build_graph

TASK = "bracket_counting"
SHAPE = ModelShape(n_layer=2, n_head=2, d_head=8, d_resid=32, d_model=32, d_mlp=64)


# -- the rule ------------------------------------------------------------------------------------
def test_placement_never_overlaps_and_prefers_below_then_above() -> None:
    rng = np.random.default_rng(0)
    centers = np.column_stack([rng.uniform(0, 300, 200), rng.integers(0, 6, 200) * 30.0])
    sizes = np.column_stack([rng.uniform(10, 40, 200), np.full(200, 11.0)])
    order = np.arange(200)
    slots, rects = place_captions(centers, sizes, np.full(200, 6.0), order, node_blockers(centers, 5.0),
                                  np.arange(200))
    shown = np.flatnonzero(slots != HIDDEN)
    assert 0 < len(shown) < 200
    assert not overlapping_pairs(rects[shown])
    # The first caption takes the spot under its node; a twin at the same place goes above; a third hides.
    c = np.array([[50.0, 50.0]] * 3)
    slots, rects = place_captions(c, np.array([[20.0, 10.0]] * 3), np.full(3, 6.0), np.array([2, 0, 1]),
                                  np.zeros((0, 4)), np.zeros(0))
    assert list(slots) == [ABOVE, HIDDEN, BELOW]
    assert rects[2][1] == 56.0 and rects[0][3] == 44.0
    # A blocker (another node) under the node sends its caption above; the visible area is respected.
    slots, _ = place_captions(c[:1], np.array([[20.0, 10.0]]), np.full(1, 6.0), np.array([0]),
                              np.array([[45.0, 60.0, 55.0, 70.0]]), np.array([-1]))
    assert list(slots) == [ABOVE]
    slots, _ = place_captions(c[:1], np.array([[20.0, 10.0]]), np.full(1, 6.0), np.array([0]),
                              np.zeros((0, 4)), np.zeros(0), bounds=(0.0, 40.0, 100.0, 100.0))
    assert list(slots) == [BELOW]


def test_priority_selected_then_labelled_then_ablated_then_strongest() -> None:
    nodes = [f"blocks.0.attn.read:{i}" for i in range(5)] + ["blocks.0.attn.q:0"]
    g = build_graph(SHAPE, nodes, nodes[:5], ["blocks.0.attn.q:0"] * 5,
                    np.array([0.1, 0.9, 0.5, 0.2, 0.3], np.float32))
    order = caption_order(g, {nodes[3]: "my label"}, {nodes[4]}, nodes[0])
    assert list(order[:4]) == [0, 3, 4, 5]  # selected, labelled, ablated, then the q node (sum of all |w|)
    assert list(order[4:]) == [1, 2]  # then by |w|


# -- the window ----------------------------------------------------------------------------------
@pytest.fixture
def demo_window(open_window, tmp_path: Path, monkeypatch):
    """A 1400x900 window with the bundled demo's bracket_counting circuit, at the default fit."""
    monkeypatch.setenv("CIRCUIT_INSPECTOR_DATA", str(tmp_path / "data"))  # labels are saved there
    win = open_window("demo", task=TASK)
    assert win.state.graph.n_nodes >= 100
    return win


def _settle(qtbot, win) -> None:
    """Placement runs on the next event-loop turn after a range change; a grab paints every item."""
    qtbot.waitUntil(lambda: not win.view.captions._timer.isActive() and win.view.is_drawn, timeout=10_000)
    win.view.grab()


def _caption_rects(view) -> np.ndarray:
    rects = [item.sceneBoundingRect() for item in view.captions.visible_items()]
    return np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects]).reshape(-1, 4)


def _text_rects(view) -> np.ndarray:
    rects = [t.sceneBoundingRect() for t in view.texts if t.isVisible()]
    return np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects]).reshape(-1, 4)


def _node_rects(view) -> np.ndarray:
    """Each node's disk as a square, in scene pixels."""
    g = view.graph
    centers = np.array([[p.x(), p.y()] for p in (view.vb.mapViewToScene(pg_point(*xy)) for xy in g.pos)])
    return node_blockers(centers, view._sizes / 2)


def pg_point(x: float, y: float):
    import pyqtgraph as pg
    return pg.Point(float(x), float(y))


def test_no_two_labels_overlap_at_the_default_fit(demo_window, qtbot) -> None:
    win = demo_window
    view = win.view
    _settle(qtbot, win)
    captions = _caption_rects(view)
    g = view.graph
    # Readable at the default fit: most nodes carry their caption, and no two texts overlap.
    assert len(captions) >= 0.6 * g.n_nodes, f"only {len(captions)} of {g.n_nodes} captions shown"
    texts = np.concatenate([captions, _text_rects(view)])
    assert not overlapping_pairs(texts), "captions or token/logit texts overlap"
    # No caption covers a node (its own included: captions sit beside their nodes).
    nodes = _node_rects(view)
    for r in captions:
        hit = (nodes[:, 0] < r[2]) & (nodes[:, 2] > r[0]) & (nodes[:, 1] < r[3]) & (nodes[:, 3] > r[1])
        assert not hit.any()
    # Every visible caption lies inside the plot.
    box = view.vb.sceneBoundingRect()
    assert (captions[:, 0] >= box.left() - 0.5).all() and (captions[:, 2] <= box.right() + 0.5).all()


def test_the_selected_and_labelled_nodes_keep_their_captions_clear_of_the_ring(demo_window, qtbot) -> None:
    win = demo_window
    view, state = win.view, win.state
    g = view.graph
    node = next(n for n in g.ids if n.startswith("blocks.0.attn.read"))  # the most crowded row
    label = "single-quote detector"  # 21 characters: shown whole, not "single-quot…"
    state.set_label(node, label)
    state.select(node)
    _settle(qtbot, win)
    i = g.index[node]
    item = view.captions.items[i]
    assert item.isVisible() and item.textItem.toPlainText() == label
    ring_r = (view._sizes[i] + 10) / 2
    c = view.vb.mapViewToScene(pg_point(*g.pos[i]))
    r = item.sceneBoundingRect()
    assert r.top() >= c.y() + ring_r or r.bottom() <= c.y() - ring_r, "the ring covers its node's caption"
    assert not overlapping_pairs(_caption_rects(view))


def test_hidden_captions_come_back_on_zoom_and_hover(demo_window, qtbot) -> None:
    win = demo_window
    view = win.view
    _settle(qtbot, win)
    hidden = np.flatnonzero(view.captions.slots == HIDDEN)
    assert len(hidden)  # the dense L0 rows do not all fit at the default fit
    i = int(hidden[0])
    view.captions.show_hover(i)
    assert view.captions.hover.isVisible() and view.captions.hover.textItem.toPlainText() == view.captions.text(i)
    view.captions.show_hover(None)
    assert not view.captions.hover.isVisible()
    x, y = view.graph.pos[i]
    view.vb.setRange(xRange=(x - 4, x + 4), yRange=(y - 1.5, y + 1.5), padding=0)
    _settle(qtbot, win)
    assert view.captions.slots[i] != HIDDEN
    assert not overlapping_pairs(_caption_rects(view))
    assert view._sizes[i] == 13.0  # zoomed in, crowded nodes get their full size back


def test_the_legend_never_covers_the_graph_and_row_names_are_whole(demo_window, qtbot) -> None:
    win = demo_window
    view = win.view
    _settle(qtbot, win)
    legend = view.legend.sceneBoundingRect()
    assert legend.height() > 0 and legend.width() <= view.plot.sceneBoundingRect().width()
    assert legend.bottom() <= view.vb.sceneBoundingRect().top() + 0.5  # above the plot, not in it
    nodes = _node_rects(view)
    assert not ((nodes[:, 0] < legend.right()) & (nodes[:, 2] > legend.left()) & (nodes[:, 1] < legend.bottom())
                & (nodes[:, 3] > legend.top())).any()
    for t in view.texts:  # the target logits' names included
        assert not legend.intersects(t.sceneBoundingRect())
    axis = view.plot.getAxis("left")
    fm = QFontMetricsF(axis.style.get("tickFont") or axis.font())
    widest = max(fm.horizontalAdvance(name) for _, name in view.graph.row_labels())
    assert widest <= axis.width(), "a row name is cut"


def _edge_stats(svg: str) -> dict[str, tuple[int, str, str]]:
    """Per edge bucket path: (segments, stroke-opacity, stroke-width)."""
    out = {}
    for cls, d, rest in re.findall(r'<path class="(edges-[a-z]+-\d)" d="([^"]*)"([^>]*)>', svg):
        out[cls] = (d.count("M"), re.search(r'stroke-opacity="([^"]+)"', rest).group(1),
                    re.search(r'stroke-width="([^"]+)"', rest).group(1))
    return out


def test_raising_w_makes_the_whole_model_sparser_not_bolder(demo_window, qtbot) -> None:
    from app.export.render import render_svg
    from app.window import export

    win = demo_window
    view, state = win.view, win.state
    state.set_view("model")
    qtbot.waitUntil(lambda: view.graph is state.bundle.model_graph and view.is_drawn, timeout=30_000)
    pens0, shown0 = view.edges._pens, view.edges.n_shown
    svg0 = _edge_stats(render_svg(export.window_snapshot(win)))
    state.set_threshold(0.15)
    qtbot.waitUntil(lambda: view.is_drawn, timeout=30_000)
    assert view.edges.n_shown < shown0  # fewer edges drawn...
    assert [(c.rgba(), w) for c, w in view.edges._pens] == [(c.rgba(), w) for c, w in pens0]  # ...each as before
    svg1 = _edge_stats(render_svg(export.window_snapshot(win)))
    assert sum(v[0] for v in svg1.values()) < sum(v[0] for v in svg0.values())
    for cls, (_, alpha, width) in svg1.items():
        assert (alpha, width) == svg0[cls][1:], f"{cls} got bolder"




def _axis_texts(axis) -> list[tuple[object, str]]:
    """(scene-independent rect, text) of every row name the left axis draws now."""
    from PySide6.QtGui import QImage, QPainter

    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [] if specs is None else [(rect, text) for rect, _, text in specs[2]]


def test_row_names_thin_out_when_crowded_and_never_overlap(demo_window, qtbot) -> None:
    """Zoomed out until the whole model's rows crowd, the left axis names fewer rows (each layer's q·k·v
    row, the prompts and the logits first), none overlapping; prompt B's tokens move down to stay a text
    line under A's; zoomed in, every row is named again and B's row is back at its place."""
    win = demo_window
    win.state.set_view("model")
    _settle(qtbot, win)
    axis = win.view.plot.getAxis("left")
    every = {name for _, name in win.view.graph.row_labels()} - {"input tokens"} | {"prompt A", "prompt B"}

    def check() -> set[str]:
        texts = _axis_texts(axis)
        rects = [r for r, _ in texts]
        assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:]), "row names overlap"
        return {t for _, t in texts}

    assert every <= check()  # the demo's 15 rows fit at this size: all named
    win.view.vb.scaleBy((1.0, 5.0))  # zoom out vertically: 5x denser rows
    _settle(qtbot, win)
    crowded = check()
    assert {"prompt A", "prompt B", "L0 q·k·v by head", "L1 q·k·v by head", "target logits"} <= crowded < every
    assert all(name.endswith(("q·k·v by head", "MLP neurons")) or name in ("prompt A", "prompt B", "target logits")
               for name in crowded)
    view = win.view
    b_tokens, a_tokens = view.tokens.side_items(1), view.tokens.side_items(0)
    assert b_tokens and all(t.isVisible() for t in b_tokens)
    gap = view.vb.mapViewToScene(pg.Point(0, 0)).y() - view.vb.mapViewToScene(pg.Point(0, b_tokens[0].pos().y())).y()
    assert abs(gap) >= view.row_names.line_height() - 0.5  # a text line under A's: the rows never overlap
    assert b_tokens[0].pos().y() < B_ROW_Y and a_tokens[0].pos().y() == 0.0
    win.view.vb.scaleBy((1.0, 0.2))
    _settle(qtbot, win)
    assert every <= check()
    assert all(t.isVisible() and t.pos().y() == B_ROW_Y for t in b_tokens)


def test_fit_keeps_the_logit_names_and_both_prompts_inside_when_rows_crowd(demo_window, qtbot) -> None:
    """Fit on a short window, where the whole model's rows are a few pixels apart (as csp_yolo1's ~50
    rows are at full size): the margins over the logits and under the prompts are measured in pixels,
    so the target logits' names and both prompts' tokens are inside the plot, none cut at its edge."""
    win = demo_window
    win.state.set_view("model")
    win.view.widget.setMaximumHeight(230)  # as short as a csp_yolo1 view is dense: rows ~10 px apart
    _settle(qtbot, win)
    view = win.view
    view.fit()
    _settle(qtbot, win)
    y0, y1 = view.vb.viewRange()[1]
    assert view.vb.height() / (y1 - y0) < 14  # rows crowd: under 14 pixels apart
    box = view.vb.sceneBoundingRect()
    texts = [*view.texts, *view.tokens.side_items(0), *view.tokens.side_items(1)]
    assert len(texts) > 2 and all(t.isVisible() for t in texts)
    for item in texts:
        r = item.sceneBoundingRect()
        assert box.top() <= r.top() and r.bottom() <= box.bottom(), item.toPlainText()
