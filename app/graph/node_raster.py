"""The graph's nodes drawn as one image when there are many (docs/architecture.md, "The app's
packages").

pyqtgraph draws a scatter plot's markers one pixmap fragment each, after mapping and culling every
point in Python: about 15 ms a frame for the 91,136 nodes of a csp_yolo1-shaped whole-model view,
most of a pan frame. :class:`NodeScatter` is that ``ScatterPlotItem`` (hover, clicks, tooltips and
the point data are pyqtgraph's, unchanged) whose paint, from :data:`RASTER_MIN` points on, draws
the nodes into an image by a compiled loop (:mod:`app.graph.node_raster_kernel`: antialiased
discs, each fill then its outline, as if blended source over in point order as pyqtgraph draws
them; the loop goes front to back and skips pixels already opaque) and keeps that image while only
the view's offset changes: a pan draws the same image shifted, a frame of one ``drawImage``. The
image covers the nodes on screen and half a screen around them (the whole graph when it fits; no
margin past :data:`MAX_PIXELS`), and is drawn again when the zoom, the window, a node's position,
size, fill, outline or visibility change, or the pan reaches past it.

Below :data:`RASTER_MIN` points, while the kernel loads (in the background, the first time a large
graph is shown), where it cannot load, and when exporting (SVG stays vector), pyqtgraph paints.
tests/app/test_node_raster.py compares the two. Knows nothing about the engine.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QImage

from app.graph import compiled

#: From this many points on, the nodes are one image (a circuit's few hundred stay pyqtgraph's).
RASTER_MIN = 20_000
#: The image reaches this fraction of the viewport past each side of it, so a pan stays inside it.
MARGIN = 0.5
#: An image with its margin above this many device pixels (64 MB) is drawn without the margin.
MAX_PIXELS = 16_000_000
KERNEL = "node_raster_kernel"


def premultiplied(color) -> int:
    """A QColor as premultiplied ARGB32 (the image format drawn into)."""
    r, g, b, a = color.red(), color.green(), color.blue(), color.alpha()
    k = a / 255.0
    return (a << 24) | (round(r * k) << 16) | (round(g * k) << 8) | round(b * k)


def _brush_argb(brush) -> int:
    return 0 if brush is None or brush.style() == Qt.BrushStyle.NoBrush else premultiplied(brush.color())


def _pen_argb_width(pen) -> tuple[int, float]:
    """(colour, width in px) of a marker's outline; Qt draws a width-0 pen one pixel wide."""
    if pen is None or pen.style() == Qt.PenStyle.NoPen:
        return 0, 0.0
    return premultiplied(pen.color()), max(float(pen.widthF()), 1.0)


def _per_point(objs: np.ndarray, default, convert) -> list[np.ndarray]:
    """``convert`` applied to each point's object (None: ``default``), once per distinct object."""
    n = len(objs)
    ids = np.fromiter((id(o) for o in objs), np.int64, n)
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    values = [convert(default if objs[i] is None else objs[i]) for i in first.tolist()]
    columns = list(zip(*values)) if isinstance(values[0], tuple) else [values]
    return [np.asarray(c)[inverse] for c in columns]


def marker_side(size: np.ndarray, width: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The side of pyqtgraph's marker pixmap (device px at ``scale`` device pixels per pixel): the
    size plus the outline's width rounded up, at least one pixel (pyqtgraph's own rule, which its
    hit test also reads)."""
    return np.ceil(scale * (size + np.maximum(np.ceil(width), 1.0)))


def marker_styles(size: np.ndarray, width: np.ndarray) -> tuple:
    """Each marker's style (an index) and, per style, the coverage of its square by the fill and by the
    outline (antialiased by the distance of each pixel's centre from the edge) and its side: the
    square of pyqtgraph's marker pixmap, the size plus the outline rounded up."""
    size, width = np.asarray(size, np.float64), np.asarray(width, np.float64)
    side = marker_side(size, width)
    key = np.rint(size * 64).astype(np.int64) * (1 << 24) + np.rint(width * 64).astype(np.int64)
    _, first, style = np.unique(key, return_index=True, return_inverse=True)
    sides = side[first].astype(np.int64)
    m = int(sides.max()) if len(sides) else 1
    fill_cov = np.zeros((len(first), m, m), np.float32)
    ring_cov = np.zeros((len(first), m, m), np.float32)
    for k, (d, w, n) in enumerate(zip(size[first], width[first], sides.tolist())):
        o = np.arange(n) + 0.5 - n / 2  # pixel centres from the marker's centre
        dist = np.hypot(o[None, :], o[:, None])
        fill_cov[k, :n, :n] = np.clip(d / 2 + 0.5 - dist, 0.0, 1.0)
        if w > 0:
            ring_cov[k, :n, :n] = np.clip(w / 2 + 0.5 - np.abs(dist - d / 2), 0.0, 1.0)
    return style.reshape(-1).astype(np.int64), fill_cov, ring_cov, sides


def draw_markers(x, y, styles: tuple, fill, ring, out: np.ndarray) -> None:
    """Round markers centred at (x, y) (image px) in their ``styles`` (:func:`marker_styles`), filled
    with ``fill`` and outlined in ``ring`` (premultiplied ARGB32), blended into ``out`` (H, W) uint32
    in order. Each lands as pyqtgraph's marker pixmap does, its square's corner on the pixel grid, so
    markers of one style look alike."""
    style, fill_cov, ring_cov, sides = styles
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    fill, ring = np.asarray(fill, np.uint32), np.asarray(ring, np.uint32)
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.all():
        x, y, style, fill, ring = (a[keep] for a in (x, y, style, fill, ring))
    half = sides[style] / 2
    corner = lambda v: np.floor(v - half + 0.5).astype(np.int64)  # noqa: E731
    compiled.load(KERNEL).sprites(corner(x), corner(y), style, fill, ring, fill_cov, ring_cov, sides, out)


class NodeScatter(pg.ScatterPlotItem):
    """A ``ScatterPlotItem`` that paints many points as one cached image: see the module docstring."""

    def __init__(self, *args, **kwargs) -> None:
        self._version = 0
        self._points: tuple | None = None  # (version, *what _point_style returns)
        self._styles: tuple | None = None  # ((version, device pixel ratio), marker_styles(...))
        self._image: tuple | None = None  # (key, QImage, buffer, image rect in device px at render, dx, dy)
        self.renders = 0  # images drawn (tests: a pan must not draw one)
        self._spots_stale = False  # pyqtgraph's marker pixmaps not looked up yet (see updateSpots)
        super().__init__(*args, **kwargs)

    # -- anything that changes what the image shows ------------------------------------------
    # pyqtgraph calls one of these two after every change of the points (positions, sizes, symbols,
    # fills, outlines, visibility): each makes the image stale.
    def invalidate(self) -> None:
        self._changed()
        super().invalidate()

    def updateSpots(self, dataSet=None) -> None:  # noqa: N802, N803 (pyqtgraph naming)
        self._changed()
        own = dataSet is None or dataSet is self.data or dataSet.base is self.data
        if own and self._can_raster():  # pyqtgraph's marker pixmaps go unused: look them up if they are
            self._spots_stale = True
            self._hit_sizes()
            self._updateMaxSpotSizes(data=self.data)  # (the bounds need the largest marker)
            super().invalidate()
            return
        super().updateSpots(dataSet)

    def _hit_sizes(self) -> None:
        """Each point's pixmap square (the size plus its outline rounded up, in the atlas's device
        pixels), which pyqtgraph's hit test reads from the pixmap's rectangle, without looking the
        pixmap up."""
        d = self.data
        _, width = _per_point(d["pen"], self.opts["pen"], _pen_argb_width) if len(d) else (None, np.zeros(0))
        side = marker_side(self._sizes(d), width, self.fragmentAtlas.devicePixelRatio())
        d["sourceRect"] = 0
        d["sourceRect"]["w"] = side
        d["sourceRect"]["h"] = side

    def _sizes(self, d: np.ndarray) -> np.ndarray:
        """The points' diameters (px): their own, else the item's."""
        return np.where(d["size"] < 0, self.opts["size"], d["size"]).astype(np.float64)

    def _fresh_spots(self) -> None:
        """Look up the marker pixmaps that updateSpots left for later (before pyqtgraph paints)."""
        if getattr(self, "_spots_stale", False):
            self._spots_stale = False
            self.data["sourceRect"] = 0  # every one looked up again
            super().updateSpots()

    def _changed(self) -> None:
        self._version = getattr(self, "_version", 0) + 1  # pyqtgraph's __init__ changes points before ours ran
        if len(self.data) >= RASTER_MIN:
            compiled.load(KERNEL, block=False)  # load in the background: the next paints use it

    def _can_raster(self) -> bool:
        return (len(self.data) >= RASTER_MIN and self.opts["pxMode"] is True and self._exportOpts is False
                and compiled.load(KERNEL, block=False) is not None)

    def rastered(self) -> bool:
        """Whether paint draws the nodes as an image now (else pyqtgraph draws its markers): many
        round markers sized in pixels, on screen (not an export), with the kernel loaded."""
        return self._can_raster() and self._point_style()[7]

    # -- painting ----------------------------------------------------------------------------
    def paint(self, p, option, widget) -> None:
        t = p.transform()
        if not self.rastered() or widget is None or t.isRotating() or t.m12() or t.m21():
            self._fresh_spots()
            super().paint(p, option, widget)
            return
        dpr = float(widget.devicePixelRatioF())
        view = QRectF(widget.rect())
        style = self._point_style()
        key = (self._version, t.m11(), t.m22(), dpr, view.width(), view.height())
        cached = self._image
        if cached is None or cached[0] != key or not self._covers(cached, t, view, style):
            cached = self._image = self._render(key, t, view, dpr, style)
        _, image, _, rect, dx, dy = cached
        p.save()
        p.resetTransform()
        p.drawImage(QPointF(round(rect.left() + t.dx() - dx), round(rect.top() + t.dy() - dy)), image)
        p.restore()

    def _point_style(self) -> tuple:
        """(x, y, diameter, fill, ring, ring width, data bounds, all round) of the visible points, in
        point order; memoised until the points change."""
        if self._points is None or self._points[0] != self._version:
            d = self.data[self.data["visible"]] if "visible" in self.data.dtype.names else self.data
            x, y = d["x"].astype(np.float64), d["y"].astype(np.float64)
            size = self._sizes(d)
            finite = np.isfinite(x) & np.isfinite(y)
            if finite.any():
                fill, = _per_point(d["brush"], self.opts["brush"], _brush_argb)
                ring, width = _per_point(d["pen"], self.opts["pen"], _pen_argb_width)
                reach = float((size + width).max()) / 2 + 1  # how far past its centre a marker reaches (px)
                xf, yf = x[finite], y[finite]
                bounds = (float(xf.min()), float(yf.min()), float(xf.max()), float(yf.max()), reach)
            else:  # nothing to draw
                fill = ring = np.zeros(len(d), np.uint32)
                width = np.zeros(len(d))
                bounds = None
            round_ = self.opts["symbol"] == "o" and all(m is None or m == "o" for m in d["symbol"].tolist())
            self._points = (self._version, x, y, size, fill.astype(np.uint32), ring.astype(np.uint32),
                            width.astype(np.float64), bounds, round_)
        return self._points[1:]

    @staticmethod
    def _device_bounds(t, style: tuple) -> QRectF:
        """The points' markers, in device px under the transform ``t`` (empty without points)."""
        b = style[6]
        if b is None:
            return QRectF()
        x0, x1 = sorted((b[0] * t.m11() + t.dx(), b[2] * t.m11() + t.dx()))
        y0, y1 = sorted((b[1] * t.m22() + t.dy(), b[3] * t.m22() + t.dy()))
        return QRectF(QPointF(x0 - b[4], y0 - b[4]), QPointF(x1 + b[4], y1 + b[4]))

    def _covers(self, cached: tuple, t, view: QRectF, style: tuple) -> bool:
        """Whether the cached image, moved by the pan since it was drawn, holds every marker on screen."""
        rect = cached[3].translated(t.dx() - cached[4], t.dy() - cached[5])
        needed = view.intersected(self._device_bounds(t, style))
        return needed.isEmpty() or rect.contains(needed)

    def _render(self, key: tuple, t, view: QRectF, dpr: float, style: tuple) -> tuple:
        """Draw the markers within the viewport (and ``MARGIN`` of it around) into a new image."""
        grow = view.adjusted(-MARGIN * view.width(), -MARGIN * view.height(),
                             MARGIN * view.width(), MARGIN * view.height())
        if grow.width() * grow.height() * dpr * dpr > MAX_PIXELS:  # a very large screen: no margin
            grow = view
        rect = grow.intersected(self._device_bounds(t, style)).toAlignedRect()
        w, h = max(1, int(np.ceil(rect.width() * dpr))), max(1, int(np.ceil(rect.height() * dpr)))
        buf = np.zeros((h, w), np.uint32)
        x, y, size, fill, ring, width = style[:6]
        if self._styles is None or self._styles[0] != (self._version, dpr):
            self._styles = ((self._version, dpr), marker_styles(size * dpr, width * dpr))
        draw_markers((x * t.m11() + t.dx() - rect.left()) * dpr, (y * t.m22() + t.dy() - rect.top()) * dpr,
                     self._styles[1], fill, ring, buf)
        image = QImage(buf.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
        image.setDevicePixelRatio(dpr)
        self.renders += 1
        return key, image, buf, QRectF(rect), t.dx(), t.dy()
