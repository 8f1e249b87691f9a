"""The node raster (app/graph/node_raster.py): its markers (the compiled loop) on pixels whose values
are known, and the scatter item that uses it against pyqtgraph's own painting, its reference."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtGui import QColor

from app.graph import compiled, node_raster
from app.graph.node_raster import NodeScatter, premultiplied

MOD = compiled.load(node_raster.KERNEL)
pytestmark = pytest.mark.skipif(MOD is None, reason="numba cannot load here: pyqtgraph draws the nodes")
RED, BLUE = premultiplied(QColor(255, 0, 0)), premultiplied(QColor(0, 0, 255))


def _discs(xs, ys, diam, fill, ring=0, ring_w=0.0, size=(20, 20)) -> np.ndarray:
    n = len(xs)
    out = np.zeros(size, np.uint32)
    full = lambda v, dt: np.full(n, v, dt)  # noqa: E731
    styles = node_raster.marker_styles(full(diam, float), full(ring_w, float))
    node_raster.draw_markers(xs, ys, styles, full(fill, np.uint32), full(ring, np.uint32), out)
    return out


def _channel(img: np.ndarray, shift: int) -> np.ndarray:
    return ((img >> shift) & 255).astype(np.int64)


def test_a_disc_covers_its_area_in_its_colour():
    img = _discs([10.0], [10.0], 8.0, RED)
    assert img[10, 10] == RED and img[9, 9] == RED  # the inside: exactly the fill
    assert img[0, 0] == 0 and img[10, 16] == 0  # outside: untouched
    alpha = _channel(img, 24) / 255.0
    assert alpha.sum() == pytest.approx(math.pi * 16, rel=0.02)  # antialiased edge: the disc's area
    assert (_channel(img, 8) == 0).all() and (_channel(img, 0) == 0).all()  # no green or blue anywhere


def test_later_discs_lie_on_top_and_blend_premultiplied():
    img = _discs([8.0, 12.0], [10.0, 10.0], 8.0, RED)
    assert img[10, 8] == RED
    half = premultiplied(QColor(0, 0, 255, 128))
    out = np.zeros((20, 20), np.uint32)
    n = 2
    styles = node_raster.marker_styles(np.full(n, 8.0), np.zeros(n))
    node_raster.draw_markers([8.0, 12.0], [10.0, 10.0], styles, np.array([RED, half], np.uint32),
                             np.zeros(n, np.uint32), out)
    overlap = out[10, 10]  # half-transparent blue over opaque red: source over
    assert _channel(np.uint32(overlap), 24) == 255
    assert abs(_channel(np.uint32(overlap), 16) - 127) <= 1 and abs(_channel(np.uint32(overlap), 0) - 128) <= 1
    assert out[10, 6] == RED  # only the first disc there


def test_an_outline_is_drawn_over_the_edge_and_none_without_width():
    ringed = _discs([10.0], [10.0], 10.0, RED, BLUE, 1.0)
    assert ringed[10, 10] == RED  # the middle: fill
    assert _channel(ringed, 0)[10, 15] > 100 and _channel(ringed, 16)[10, 15] < 150  # on the edge: mostly ring
    plain = _discs([10.0], [10.0], 10.0, RED, BLUE, 0.0)
    assert (_channel(plain, 0) == 0).all()


def test_discs_off_the_image_or_not_finite_are_skipped():
    img = _discs([-50.0, 100.0, float("nan"), 10.0], [10.0, 10.0, 10.0, float("inf")], 6.0, RED)
    assert (img == 0).all()
    edge = _discs([0.0], [0.0], 5.0, RED)  # a quarter of it on the image (a 6 px square centred on a corner)
    assert _channel(edge, 24).sum() / 255 == pytest.approx(math.pi * 6.25 / 4, rel=0.05)


# -- the scatter item ---------------------------------------------------------------------------------

KINDS = [QColor(c) for c in ("#c792ea", "#4fd1c5", "#f2c14e", "#8fa3c7")]


def _plot(qapp, n_rows=40, per_row=700, pen=None, width=500):
    """A plot of n_rows x per_row nodes (above RASTER_MIN by default), coloured by row, as the graph
    view builds one, ``width`` px wide."""
    widget = pg.PlotWidget()
    widget.resize(width, 400)
    widget.hideAxis("left"), widget.hideAxis("bottom")
    xs, ys = np.meshgrid(np.arange(per_row, dtype=float), np.arange(n_rows, dtype=float))
    brushes = [pg.mkBrush(KINDS[r % len(KINDS)]) for r in ys.ravel().astype(int)]
    item = NodeScatter(pxMode=True)
    item.setData(pos=np.stack([xs.ravel() * 3.0, ys.ravel() * 10.0], 1), size=5, brush=brushes,
                 pen=pen if pen is not None else pg.mkPen(None), data=np.arange(xs.size))
    widget.addItem(item)
    widget.getViewBox().setRange(xRange=(0, 3 * per_row), yRange=(-10, 10 * n_rows), padding=0)
    widget.show()
    qapp.processEvents()
    return widget, item


def _grab(qapp, widget) -> np.ndarray:
    qapp.processEvents()
    img = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_RGB32)
    bits = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return bits[:, :img.width(), :3].astype(np.int64)


@pytest.mark.parametrize("pen", [None, pg.mkPen("#1e1f24", width=1.5)])
def test_the_raster_looks_like_pyqtgraphs_markers(qapp, monkeypatch, pen):
    widget, item = _plot(qapp, n_rows=12, per_row=100, pen=pen, width=800)  # 8 px apart: every marker seen
    monkeypatch.setattr(node_raster, "RASTER_MIN", 1000)
    assert item.rastered()
    ours = _grab(qapp, widget)
    assert item.renders >= 1
    monkeypatch.setattr(node_raster, "RASTER_MIN", 10**9)
    assert not item.rastered()
    theirs = _grab(qapp, widget)
    diff = np.abs(ours - theirs).sum(-1)
    ink_o, ink_t = ours.sum(-1) > 0, theirs.sum(-1) > 0
    assert (ink_o & ink_t).sum() / (ink_o | ink_t).sum() > 0.8  # the same pixels inked
    assert diff.mean() < 0.1 * theirs.sum(-1).mean()  # and about the same colours
    widget.close()


def test_a_pan_redraws_no_image_but_a_zoom_or_a_restyle_does(qapp):
    widget, item = _plot(qapp)
    assert len(item.data) >= node_raster.RASTER_MIN and item.rastered()
    first = _grab(qapp, widget)
    drawn = item.renders
    assert drawn >= 1 and first.sum() > 0
    vb = widget.getViewBox()
    vb.translateBy(x=vb.viewRect().width() * 0.02)
    moved = _grab(qapp, widget)
    assert item.renders == drawn  # the same image, moved
    assert not np.array_equal(moved, first)
    vb.scaleBy((0.5, 0.5))
    _grab(qapp, widget)
    assert item.renders == drawn + 1  # a zoom draws again
    item.setBrush([pg.mkBrush("#ffffff")] * len(item.data))  # per point, as the graph view restyles
    white = _grab(qapp, widget)
    assert item.renders == drawn + 2 and white.max() == 255  # so does a new fill
    widget.close()


def test_few_points_exports_and_other_symbols_stay_pyqtgraphs(qapp, monkeypatch):
    widget, item = _plot(qapp)
    assert item.rastered()
    item._exportOpts = {"antialias": True}  # what pyqtgraph's exporters set while they draw
    assert not item.rastered()
    item._exportOpts = False
    item.setSymbol("s")
    assert not item.rastered()
    item.setData(pos=np.zeros((10, 2)), size=5)
    assert not item.rastered()
    monkeypatch.setattr(compiled, "load", lambda name, block=True: None)  # no numba here
    item.setData(pos=np.zeros((node_raster.RASTER_MIN, 2)), size=5)
    assert not item.rastered()
    _grab(qapp, widget)  # pyqtgraph paints
    widget.close()


def test_clicks_and_hover_still_find_the_points(qapp):
    widget, item = _plot(qapp)
    _grab(qapp, widget)
    assert item.rastered()
    hits = [p.data() for p in item.pointsAt(pg.Point(30.0, 50.0))]  # node (10, 5) of the grid and the
    assert 5 * 700 + 10 in hits  # markers overlapping it in its row (clicks and hover go through
    assert all(abs(h - (5 * 700 + 10)) <= 6 for h in hits)  # pyqtgraph's pointsAt, which paint leaves alone)
    widget.close()


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")  # pyqtgraph's own bounds, all NaN
def test_points_off_the_number_line_are_left_out(qapp):
    """NaN positions (some, or every one) draw nothing there and break nothing. (An infinite one makes
    pyqtgraph's bounds infinite, and Qt then paints the item nowhere, raster or not.)"""
    widget, item = _plot(qapp)
    pos = np.stack([item.data["x"], item.data["y"]], 1)
    pos[::7] = np.nan
    pos[1::7, 0] = np.nan
    item.setData(pos=pos, size=5, brush=pg.mkBrush("#c792ea"), pen=pg.mkPen(None))
    assert item.rastered()
    some = _grab(qapp, widget)
    assert some.sum() > 0
    item.setData(pos=np.full((node_raster.RASTER_MIN, 2), np.nan), size=5)
    nothing = _grab(qapp, widget)
    assert nothing.sum() == 0
    widget.close()


def test_pixmap_lookups_wait_until_pyqtgraph_paints(qapp, monkeypatch):
    """While the raster draws, a restyle leaves pyqtgraph's marker pixmaps unlooked-up (the costly
    part of a restyle at 91k nodes); hit tests still see each marker's size, and when pyqtgraph
    paints after all (here: the threshold raised) it looks them up first and draws the same picture."""
    widget, item = _plot(qapp)
    _grab(qapp, widget)
    item.setBrush([pg.mkBrush(KINDS[i % 3]) for i in range(len(item.data))])
    rect = item.data["sourceRect"]
    assert item._spots_stale and (rect["x"] == 0).all() and (rect["y"] == 0).all()
    assert (rect["w"] == 6).all() and (rect["h"] == 6).all()  # size 5 plus a one-pixel outline box
    assert 5 * 700 + 10 in [p.data() for p in item.pointsAt(pg.Point(30.0, 50.0))]
    ours = _grab(qapp, widget)
    monkeypatch.setattr(node_raster, "RASTER_MIN", 10**9)
    theirs = _grab(qapp, widget)
    assert not item._spots_stale and (item.data["sourceRect"]["w"] > 0).all()
    ink_o, ink_t = ours.sum(-1) > 0, theirs.sum(-1) > 0
    assert (ink_o & ink_t).sum() / (ink_o | ink_t).sum() > 0.9
    assert np.abs(ours - theirs).sum(-1).mean() < 0.1 * theirs.sum(-1).mean()
    widget.close()
