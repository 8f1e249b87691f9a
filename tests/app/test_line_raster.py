"""The compiled edge raster (app/graph/line_raster.py) against QPainter, its reference, and on
segments whose pixels are known."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from app.graph import edges as E
from app.graph import line_raster

pytestmark = pytest.mark.skipif(line_raster.kernel() is None, reason="numba cannot load here: QPainter draws the raster")


def _alpha(img: QImage) -> np.ndarray:
    argb = np.frombuffer(img.constBits(), np.uint32, img.width() * img.height()).reshape(img.height(), img.width())
    return ((argb >> 24) & 255).astype(np.int64)


def _request(segs, bucket, pens, rect, size, antialias) -> E.RasterRequest:
    return E.RasterRequest(0, np.asarray(segs, np.float64), np.asarray(bucket, np.int8), tuple(pens), rect, size, antialias)


def _both(req: E.RasterRequest) -> tuple[np.ndarray, np.ndarray]:
    drawn = np.arange(len(req.segs))
    return _alpha(E._render_compiled(line_raster.kernel(), req, drawn)), _alpha(E._render_painter(req, drawn))


@pytest.mark.parametrize("antialias", [False, True])
def test_a_layered_graph_looks_like_qpainters(qapp, antialias):
    rng = np.random.default_rng(0)
    n = 3000
    y0 = rng.integers(0, 8, n).astype(float)
    segs = np.stack([rng.uniform(0, 50, n), y0, rng.uniform(0, 50, n), y0 + 1], 1)
    pens = [(QColor(200, 60, 40, a), w) for a, w in [(30, 1.0), (60, 1.2), (120, 1.6), (230, 2.2)]]
    compiled, painter = _both(_request(segs, rng.integers(0, 4, n), pens, (0, 0, 50, 9), (400, 300), antialias))
    ink_c, ink_p = compiled > 0, painter > 0
    assert (ink_c & ink_p).sum() / (ink_c | ink_p).sum() > 0.93  # the same pixels inked
    assert abs(compiled.mean() - painter.mean()) < 0.03 * painter.mean()  # and as much ink


def test_known_pixels_order_and_clipping(qapp):
    pens = [(QColor(255, 0, 0, 255), 1.0), (QColor(0, 0, 255, 128), 1.0)]
    # data units = pixels: rect (0, 0, 32, 32) on a 32 x 32 image
    segs = [[2.0, 10.5, 20.0, 10.5],   # horizontal, row 10, columns 2..19
            [5.5, 0.0, 5.5, 31.0],     # vertical, column 5, rows 0..30
            [-100.0, 20.5, 100.0, 20.5],  # far beyond both sides: clipped to the image
            [40.0, 40.0, 60.0, 60.0],  # outside: nothing
            [7.5, 7.5, 7.5, 7.5]]      # a point: nothing
    req = _request(segs, [0, 1, 0, 0, 0], pens, (0, 0, 32, 32), (32, 32), False)
    img = E._render_compiled(line_raster.kernel(), req, np.arange(len(segs)))
    argb = np.frombuffer(img.constBits(), np.uint32, 32 * 32).reshape(32, 32)
    a = (argb >> 24) & 255
    assert (a[10, 2:20] == 255).all() and a[10, :2].sum() == 0 and a[10, 20:].sum() == 0
    assert (a[0:31, 5] > 0).all() and a[31, 5] == 0
    assert (a[20] == 255).all()  # the clipped one: the whole row
    assert a[7, 7] == 255 and a[6:9, 6:9].sum() == 255  # a point: its one pixel (QPainter's square cap)
    blue_on_red = int(argb[10, 5])  # the second bucket (translucent blue) is drawn after the first
    assert (blue_on_red >> 24) & 255 == 255 and (blue_on_red & 255) == 128 and ((blue_on_red >> 16) & 255) == 127
    assert a[30:, 25:].sum() == 0  # the outside segment left its corner empty


def test_render_edges_falls_back_to_qpainter(qapp, monkeypatch):
    rng = np.random.default_rng(1)
    segs = rng.uniform(0, 10, (500, 4))
    req = _request(segs, rng.integers(0, 2, 500), [(QColor(0, 0, 0, 100), 1.0), (QColor(0, 0, 0, 200), 1.6)],
                   (2, 2, 5, 5), (120, 90), True)
    image, drawn, crossing = E.render_edges(req)
    monkeypatch.setattr(line_raster, "kernel", lambda: None)
    image2, drawn2, crossing2 = E.render_edges(req)
    assert (drawn, crossing) == (drawn2, crossing2) and 0 < drawn <= crossing <= 500
    a, b = _alpha(image) > 0, _alpha(image2) > 0
    assert (a & b).sum() / (a | b).sum() > 0.9
