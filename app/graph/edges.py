"""Drawing many weighted edges cheaply: a few big items fed with arrays, never one item per edge.

Edges are sorted by |w| once; the |w| threshold keeps a prefix of that order. Each edge falls into
one bucket (colour group x |w| level by quantile; the group is the sign, or a diff's side), and each
bucket has one pen; with a focus (:class:`EdgeStyle` ``lit``) the edges outside it go to one faint
bucket per group, drawn first (:func:`style_buckets`, :func:`style_pens`, shared with the exported
pictures):

* up to ``VECTOR_MAX`` edges: one ``PlotDataItem`` per bucket (``connect='pairs'``,
  ``skipFiniteCheck=True``), crisp and cheap;
* more (the whole-model view, the 1M-edge benchmark): the edges are rasterised into a QImage by a
  background thread (:class:`RasterWorker`, newest request wins; the compiled loop of
  :mod:`app.graph.line_raster`, 0.25-0.45 s for 100,000 edges where QPainter took 2.3-4.6 s, which
  stays the fallback) over the visible range plus a margin; panning just moves the image (a frame costs one image blit, whatever the edge count), and
  a new image is requested once the view has settled outside the rendered area or zoomed. A raster
  draws at most the ``RASTER_MAX`` strongest edges crossing its area (level of detail: zooming in
  or raising the threshold shows the rest); ``capped`` says when that happened.

``drawn`` is emitted when what is on screen matches the current edges and threshold (the screenshot
mode and tests wait for it). Knows nothing about runs, tasks or ablation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QImage, QPainter, QPen

from app.graph import line_raster
from app.widgets import theme
from app.workers.latest import Done, LatestWorker, WorkerThread
from app.workers.priority import yield_to_interactive

LEVELS = 4
QUANTILES = (0.5, 0.8, 0.95)
VECTOR_MAX = 6000
RASTER_MAX = 100_000  # strongest edges in the rendered area that a raster draws (LOD cap)
ANTIALIAS_MAX = 60_000
CHUNK = 600  # segments per drawPath call in the raster thread (~10 ms of drawing)
COMPILED_CHUNK = 20_000  # segments per call of the compiled loop (a click may come first between calls)
MARGIN = 0.35  # rendered area beyond the view, per side, as a fraction of the view
SETTLE_MS = 120
ALPHA = (70, 115, 170, 235)
WIDTH = (1.0, 1.2, 1.6, 2.2)
MAX_IMAGE = 6000


def bucket_pens(n_edges: int) -> list[tuple[QColor, float]]:
    """(colour, width) per bucket: index ``2 * level + sign`` (sign 1 = positive), so drawing in
    bucket order paints weak edges first and mixes the signs. A graph with many edges gets fainter
    pens so that density, not overdraw, shows; the strongest level stays visible. ``n_edges`` is the
    graph's edge count, not the count above the |w| threshold: raising the threshold removes edges
    and leaves the others as they were, so the picture gets sparser (it used to turn the remaining
    edges thick and opaque, which looked denser)."""
    fade = float(np.clip(2000.0 / max(n_edges, 1), 0.06, 1.0))
    pens = []
    for level in range(LEVELS):
        strong = level == LEVELS - 1
        alpha = int(max(8, ALPHA[level] * (max(fade, 0.35) if strong else fade)))
        for positive in (False, True):
            pens.append((theme.weight_color(positive, alpha), WIDTH[level] if fade > 0.5 else 1.0))
    return pens


@dataclass(frozen=True, eq=False)
class EdgeStyle:
    """How edges are coloured and which are bright: ``group`` (E,) is a colour group per edge in the
    caller's order (None: the sign, coral + and blue -), ``colors`` an (r, g, b) per group, ``lit`` (E,)
    the bright edges (None: all; the others are faint context, as outside a focus)."""

    group: np.ndarray | None = None
    colors: tuple = field(default=())
    lit: np.ndarray | None = None

    @property
    def n_groups(self) -> int:
        return 2 if self.group is None else len(self.colors)

    def color(self, group: int, alpha: int) -> QColor:
        return theme.weight_color(bool(group), alpha) if self.group is None else QColor(*self.colors[group], alpha)


def edge_levels(absw: np.ndarray) -> np.ndarray:
    """(E,) the |w| level of each edge (0 weakest .. LEVELS - 1), by quantile."""
    cuts = np.quantile(absw, QUANTILES) if len(absw) else np.zeros(len(QUANTILES))
    return np.searchsorted(cuts, absw, side="right")


def style_buckets(level: np.ndarray, group: np.ndarray, lit: np.ndarray | None, n_groups: int) -> np.ndarray:
    """(E,) the pen of each edge: a dimmed edge's is its group (0 .. G-1, drawn first), a bright one's
    G + G * level + group (weak levels first), as in :func:`style_pens`."""
    bucket = n_groups + n_groups * np.asarray(level) + group
    return (bucket if lit is None else np.where(lit, bucket, group)).astype(np.int8)


def style_pens(n_edges: int, style: EdgeStyle) -> list[tuple[QColor, float]]:
    """(colour, width) per bucket of :func:`style_buckets`: :func:`bucket_pens`' opacity and width per
    level in each group's colour, after one faint pen per group for the dimmed edges."""
    base = bucket_pens(n_edges)
    groups = range(style.n_groups)
    dim = [(style.color(g, theme.DIM_EDGE_ALPHA), 1.0) for g in groups]
    return dim + [(style.color(g, base[2 * level][0].alpha()), base[2 * level][1])
                  for level in range(LEVELS) for g in groups]


@dataclass(frozen=True, eq=False)
class RasterRequest:
    gen: int
    segs: np.ndarray  # (K, 4) x0, y0, x1, y1 (read-only)
    bucket: np.ndarray  # (K,) int8
    pens: tuple  # ((QColor, width), ...)
    rect: tuple[float, float, float, float]  # x, y, w, h in data units
    size: tuple[int, int]  # image pixels
    antialias: bool
    serial: int = 0  # which request this is (the layer knows whether its newest one came back)


def render_edges(req: RasterRequest) -> tuple[QImage, int, int]:
    """Rasterise the strongest ``RASTER_MAX`` segments that cross ``req.rect`` (any thread), by the
    compiled loop of :mod:`app.graph.line_raster` where it loads, else with QPainter; returns
    (image, edges drawn, edges crossing the area)."""
    x, y, rw, rh = req.rect
    s = req.segs
    lo_x, hi_x = np.minimum(s[:, 0], s[:, 2]), np.maximum(s[:, 0], s[:, 2])
    lo_y, hi_y = np.minimum(s[:, 1], s[:, 3]), np.maximum(s[:, 1], s[:, 3])
    crossing = np.flatnonzero((hi_x >= x) & (lo_x <= x + rw) & (hi_y >= y) & (lo_y <= y + rh))
    drawn = crossing[:RASTER_MAX]  # segments come sorted by |w|, strongest first
    fn = line_raster.kernel()
    image = _render_painter(req, drawn) if fn is None else _render_compiled(fn, req, drawn)
    return image, len(drawn), len(crossing)


def _pixels(req: RasterRequest, segs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segments (K, 4) in data units -> their x and y columns in image pixels."""
    x, y, rw, rh = req.rect
    w, h = req.size
    return (segs[:, [0, 2]] - x) * (w / rw), (segs[:, [1, 3]] - y) * (h / rh)


def _render_compiled(fn, req: RasterRequest, drawn: np.ndarray) -> QImage:
    """The segments ``drawn`` by bucket (weak first), strongest first in each, by the compiled loop
    (no GIL held; a click's evaluation still comes first between chunks, app/workers/priority.py)."""
    w, h = req.size
    order = drawn[np.argsort(req.bucket[drawn], kind="stable")]
    px, py = _pixels(req, req.segs[order])
    seg = np.ascontiguousarray(np.stack([px[:, 0], py[:, 0], px[:, 1], py[:, 1]], 1), dtype=np.float64)
    pen = req.bucket[order].astype(np.int64)
    colors = np.array([[c.redF(), c.greenF(), c.blueF(), c.alphaF()] for c, _ in req.pens], np.float32).reshape(-1, 4)
    widths = np.array([width for _, width in req.pens], np.float64)
    acc = np.zeros((h, w, 4), np.float32)
    for c in range(0, len(seg), COMPILED_CHUNK):
        fn(seg[c:c + COMPILED_CHUNK], pen[c:c + COMPILED_CHUNK], colors, widths, req.antialias, acc)
        yield_to_interactive()
    argb = line_raster.to_argb32(acc)
    return QImage(argb.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied).copy()


def _render_painter(req: RasterRequest, drawn: np.ndarray) -> QImage:
    """The same with QPainter (any thread: QImage painting is thread-safe): the fallback without
    numba, and the reference of the compiled loop's tests."""
    w, h = req.size
    image = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(0)
    inside = np.zeros(len(req.segs), bool)
    inside[drawn] = True
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, req.antialias)
        for b, (color, width) in enumerate(req.pens):
            sel = np.flatnonzero(inside & (req.bucket == b))
            painter.setPen(QPen(color, width))
            # Small chunks: QPainter holds the GIL while it draws, and the GUI thread must get it
            # back every few milliseconds or panning stutters; a click's evaluation gets the cores
            # to itself (app/workers/priority.py).
            for c in range(0, len(sel), CHUNK):
                px, py = _pixels(req, req.segs[sel[c:c + CHUNK]])
                painter.drawPath(pg.arrayToQPath(px.ravel(), py.ravel(), connect="pairs", finiteCheck=False))
                time.sleep(0)  # let the GUI thread run
                yield_to_interactive()
    finally:
        painter.end()
    return image


class RasterWorker(LatestWorker):
    SLOTS = ("render",)

    def process(self, kind: str, request: RasterRequest) -> tuple[QImage, int, int]:
        return render_edges(request)


class RasterItem(pg.GraphicsObject):
    """A QImage shown over a rectangle of data coordinates (image row 0 at the rectangle's top)."""

    def __init__(self) -> None:
        super().__init__()
        self._image: QImage | None = None
        self._rect = QRectF()

    def set_image(self, image: QImage | None, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self._image, self._rect = image, QRectF(rect)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt naming)
        return QRectF(self._rect)

    def paint(self, painter: QPainter, *args) -> None:
        if self._image is not None:
            # Nearest-neighbour: a smooth rescale of a screen-sized image costs ~15 ms a frame; the
            # image is re-rendered at the screen's scale once the view settles anyway.
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(self._rect, self._image)


class EdgeLayer(QObject):
    """The weight edges of one graph in one ViewBox. See the module docstring."""

    drawn = Signal()

    def __init__(self, viewbox: pg.ViewBox, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.vb = viewbox
        self.items = []
        self.style = EdgeStyle()
        self._ensure_items(2 + 2 * LEVELS)
        self.raster = RasterItem()
        self.raster.setZValue(0.5)
        viewbox.addItem(self.raster, ignoreBounds=True)
        self._worker = RasterWorker()
        self._worker.done.connect(self._on_rendered)
        self._owner = WorkerThread(self._worker, "edge-raster", self)
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        self._settle.timeout.connect(self._request_raster)
        viewbox.sigRangeChanged.connect(self._on_range_changed)
        viewbox.sigResized.connect(self._on_range_changed)
        self._gen = 0
        self._posted = 0
        self._posted_done = True
        self._rendered: tuple[QRectF, float] | None = None
        self.mode = "vector"
        self.is_drawn = True
        self.capped: tuple[int, int] | None = None  # (drawn, crossing) when a raster hit RASTER_MAX
        self.set_edges(np.zeros((0, 4)), np.zeros(0, np.float32), np.zeros(0, np.int64))

    # -- data ----------------------------------------------------------------------------------
    def set_edges(self, segs: np.ndarray, weight: np.ndarray, ids: np.ndarray, threshold: float = 0.0) -> None:
        """New edges: segments (E, 4), weights (E,), the caller's edge index of each (E,); only those
        with |w| >= threshold are shown."""
        order = np.argsort(-np.abs(weight), kind="stable")
        self.segs = np.ascontiguousarray(segs[order], dtype=np.float64)
        self.weight = np.asarray(weight, np.float32)[order]
        self.ids = np.asarray(ids)[order]
        absw = np.abs(self.weight)
        self._level = edge_levels(absw)
        self._neg_abs = -absw
        self.k = int(np.searchsorted(self._neg_abs, -float(threshold), side="right"))
        self.set_style(self.style if self._fits(self.style) else EdgeStyle())  # new values, same edges: kept

    def _fits(self, style: EdgeStyle) -> bool:
        """Whether ``style``'s arrays cover the caller's edge indices (kept over new values of the same
        edges, e.g. attributions instead of weights; the owner sets it again for another graph)."""
        top = int(self.ids.max()) if len(self.ids) else -1
        return all(a is None or len(a) > top for a in (style.group, style.lit))

    def set_style(self, style: EdgeStyle) -> None:
        """Colour groups and bright edges (:class:`EdgeStyle`, arrays in the caller's edge order)."""
        self.style = style
        group = (self.weight > 0).astype(np.int64) if style.group is None else np.asarray(style.group)[self.ids]
        lit = None if style.lit is None else np.asarray(style.lit, bool)[self.ids]
        self.bucket = style_buckets(self._level, group, lit, style.n_groups)
        self._refresh()

    def _ensure_items(self, n: int) -> None:
        """At least ``n`` vector items, one per bucket, painted in bucket order (the dimmed first)."""
        while len(self.items) < n:
            item = pg.PlotDataItem(connect="pairs", skipFiniteCheck=True)
            item.setZValue(1)
            self.vb.addItem(item, ignoreBounds=True)
            self.items.append(item)

    def set_threshold(self, threshold: float) -> None:
        """Show only edges with |w| >= threshold."""
        self.k = int(np.searchsorted(self._neg_abs, -float(threshold), side="right"))
        self._refresh()

    @property
    def rendering(self) -> bool:
        """Whether a raster is being rendered (or waits for the view to settle)."""
        return self.mode == "raster" and (not self._posted_done or self._settle.isActive())

    @property
    def n_shown(self) -> int:
        return self.k

    def _refresh(self) -> None:
        self._gen += 1
        pens = style_pens(len(self.weight), self.style)
        self._pens = tuple(pens)
        self.capped = None
        if self.k <= VECTOR_MAX:
            self.mode = "vector"
            self.raster.set_image(None, QRectF())
            self._rendered = None
            segs, bucket = self.segs[: self.k], self.bucket[: self.k]
            self._ensure_items(len(pens))
            for b, item in enumerate(self.items):
                sel = segs[bucket == b]
                color, width = pens[min(b, len(pens) - 1)]
                item.setPen(pg.mkPen(color, width=width))
                item.setData(sel[:, [0, 2]].ravel(), sel[:, [1, 3]].ravel(), connect="pairs",
                             skipFiniteCheck=True)
            self._set_drawn(True)
        else:
            self.mode = "raster"
            for item in self.items:
                item.setData([], [])
            self._set_drawn(False)
            self._settle.start()  # after the layout has settled: one render at the final size

    def _set_drawn(self, value: bool) -> None:
        self.is_drawn = value
        if value:
            self.drawn.emit()

    # -- raster --------------------------------------------------------------------------------
    @Slot()
    def _on_range_changed(self, *args) -> None:
        if self.mode != "raster":
            return
        if self._rendered is None or not self._covers():
            self.is_drawn = False  # until the raster for this range arrives
            self._settle.start()

    def _covers(self) -> bool:
        """Whether the last raster covers the visible range at about the current scale."""
        if self._rendered is None:
            return False
        rect, px = self._rendered
        view = self.vb.viewRect()
        now_px = view.width() / max(self.vb.width(), 1.0)
        return rect.contains(view) and 0.97 < now_px / px < 1.03

    @Slot()
    def _request_raster(self) -> None:
        if self.mode != "raster":
            return
        width, height = self.vb.width(), self.vb.height()
        if width < 2 or height < 2:
            self._settle.start()
            return
        view = self.vb.viewRect()
        rect = view.adjusted(-MARGIN * view.width(), -MARGIN * view.height(),
                             MARGIN * view.width(), MARGIN * view.height())
        scale = (1 + 2 * MARGIN)
        size = (min(MAX_IMAGE, int(width * scale)), min(MAX_IMAGE, int(height * scale)))
        self._posted += 1
        self._posted_done = False
        self._worker.post("render", RasterRequest(
            self._gen, self.segs[: self.k], self.bucket[: self.k], self._pens,
            (rect.x(), rect.y(), rect.width(), rect.height()), size, antialias=self.k <= ANTIALIAS_MAX,
            serial=self._posted))

    @Slot(object)
    def _on_rendered(self, done: Done) -> None:
        req: RasterRequest = done.request
        if req.serial == self._posted:
            self._posted_done = True
        if req.gen != self._gen or self.mode != "raster":
            return
        rect = QRectF(*req.rect)
        image, drawn, crossing = done.result
        self.capped = (drawn, crossing) if drawn < crossing else None
        self.raster.set_image(image, rect)
        self._rendered = (rect, rect.width() / req.size[0])
        self._set_drawn(True)
        if not self._covers():
            self._settle.start()

    # -- hit testing ---------------------------------------------------------------------------
    def nearest(self, x: float, y: float, tolerance_px: float = 5.0) -> int | None:
        """The caller's index of the shown edge nearest to (x, y) within ``tolerance_px``, or None."""
        if self.k == 0:
            return None
        pw, ph = self.vb.viewPixelSize()
        s = self.segs[: self.k]
        ax, ay = (s[:, 0] - x) / pw, (s[:, 1] - y) / ph
        bx, by = (s[:, 2] - x) / pw, (s[:, 3] - y) / ph
        dx, dy = bx - ax, by - ay
        t = np.clip(-(ax * dx + ay * dy) / np.maximum(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
        dist = np.hypot(ax + t * dx, ay + t * dy)
        best = int(np.argmin(dist))
        return int(self.ids[best]) if dist[best] <= tolerance_px else None

    def shutdown(self) -> None:
        self.mode = "closed"  # late renders and range changes are ignored from now on
        self._settle.stop()
        self._owner.stop()
