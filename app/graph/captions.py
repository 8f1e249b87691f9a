"""Node captions in the graph view: placed by priority, never overlapping, revealed by zoom or hover.

Where captions go is decided by :func:`engine.scene.labels.place_captions` (the exports use the same
rule), in the scene's pixels, each time the view's range or size changes and when the labels, the
ablation or the selection change: the selected node first, then user labels, ablated nodes and the
strongest nodes; a caption whose spots under and above its node are taken (by another caption, a
node, the selection ring, the input tokens or the target logits) is hidden until zooming in makes
room. Hovering a node shows its caption (a user label in full) whatever the placement.

One ``pg.TextItem`` per node that has been in view, created on first need (the whole model's
captions appear once at most ``MAX_CAPTIONS`` nodes are in view). Each item is anchored to its node
with a pixel offset, so panning and zooming move captions with their nodes at no cost.
Knows nothing about the state or the engine beyond the graph data it is given.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtGui import QColor

from app.graph import items as gi
from app.widgets import theme
from engine.scene.labels import (BELOW, HIDDEN, MAX_CAPTIONS, caption_order, node_blockers, node_strength,
                                 place_captions)
from engine.scene.layout import GraphData

CAPTION_PT = 7.0
FILL_ALPHA = 200  # the caption's background, so it reads over the edges it sits on
TEXT_MARGIN = 1.0  # QTextDocument margin around a caption, in pixels (the default 4 wastes room)
RING = 10.0  # the selection ring is this many pixels wider than its node (as in the view)
RING_GAP = 2.5  # pixels between the selection ring and its node's caption


def _fill(alpha: int = FILL_ALPHA) -> QColor:
    color = QColor(theme.BG)
    color.setAlpha(alpha)
    return color


class CaptionLayer(QObject):
    """The captions of one graph in one ViewBox. See the module docstring."""

    def __init__(self, viewbox: pg.ViewBox, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.vb = viewbox
        self.graph: GraphData | None = None
        self.enabled = False
        self.items: dict[int, pg.TextItem] = {}
        self.slots = np.zeros(0, np.int8)  # (n,) HIDDEN, BELOW or ABOVE per node
        self.strength = np.zeros(0)  # (n,) summed |w| per node (priority after selection, labels, ablation)
        self._anchors: dict[int, tuple[float, float]] = {}  # last anchor set per item
        self.labels: dict[str, str] = {}
        self.ablated: frozenset[str] = frozenset()
        self.selected: str | None = None
        self.node_px = np.zeros(0)  # (n,) node diameters in pixels (the view sizes them to the zoom)
        self.io_points = np.zeros((0, 2))  # the input token's square and the two logits, data coords
        self.io_radius = 11.0
        self.io_texts: list[pg.TextItem] = []
        self.hover = self._new_item("", theme.TEXT, 240)
        self.hover.setZValue(30)
        self.hover.setVisible(False)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.place)
        viewbox.sigRangeChanged.connect(self.schedule)
        viewbox.sigResized.connect(self.schedule)

    # -- inputs --------------------------------------------------------------------------------
    def set_graph(self, graph: GraphData | None, enabled: bool) -> None:
        """A new graph (drops every caption item); ``enabled``: whether this view shows captions."""
        for item in self.items.values():
            self.vb.removeItem(item)
        self.items.clear()
        self.graph, self.enabled = graph, enabled and graph is not None
        self.slots = np.full(graph.n_nodes if graph is not None else 0, HIDDEN, np.int8)
        self.strength = node_strength(graph) if graph is not None else np.zeros(0)
        self._anchors: dict[int, tuple[float, float]] = {}
        self.hover.setVisible(False)

    def set_state(self, labels: dict[str, str], ablated, selected: str | None, node_px: np.ndarray) -> None:
        """What decides texts and priorities; refreshes the texts of existing items and places again."""
        self.labels, self.ablated, self.selected = dict(labels), frozenset(ablated), selected
        self.node_px = np.asarray(node_px, np.float64)
        for i, item in self.items.items():
            self._style(i, item)
        self.place()

    def set_io(self, points: np.ndarray, texts: list[pg.TextItem]) -> None:
        """The input token's square, the target logits (data coords) and their texts: captions avoid them."""
        self.io_points, self.io_texts = np.asarray(points, np.float64).reshape(-1, 2), list(texts)
        self.schedule()

    @Slot()
    def schedule(self, *args) -> None:
        if self.graph is not None:
            self._timer.start()

    # -- items ---------------------------------------------------------------------------------
    def _new_item(self, text: str, color: str, fill_alpha: int = FILL_ALPHA) -> pg.TextItem:
        item = pg.TextItem(text, color=color, fill=pg.mkBrush(_fill(fill_alpha)))
        font = item.textItem.font()
        font.setPointSizeF(CAPTION_PT)
        item.setFont(font)
        item.textItem.document().setDocumentMargin(TEXT_MARGIN)
        item.updateTextPos()
        item.setZValue(20)
        self.vb.addItem(item, ignoreBounds=True)
        return item

    def text(self, i: int, full: bool = False) -> str:
        return gi.caption(self.graph, i, self.labels, full=full)

    def _color(self, i: int) -> str:
        node = self.graph.ids[i]
        if node == self.selected:
            return theme.SELECTED
        return theme.TEXT if self.labels.get(node) else theme.MUTED

    def _style(self, i: int, item: pg.TextItem) -> None:
        item.setText(self.text(i), color=self._color(i))
        item.updateTextPos()

    def _item(self, i: int) -> pg.TextItem:
        item = self.items.get(i)
        if item is None:
            item = self.items[i] = self._new_item(self.text(i), self._color(i))
            item.setPos(*self.graph.pos[i])
        return item

    def _offset(self, i: int) -> float:
        node = self.graph.ids[i]
        if node == self.selected:
            return self.node_px[i] / 2 + RING / 2 + RING_GAP
        return self.node_px[i] / 2 + (2.5 if node in self.ablated else 1.0)

    @staticmethod
    def _anchor(item: pg.TextItem, slot: int, offset: float):
        h = max(item.textItem.boundingRect().height(), 1.0)
        return (0.5, -offset / h) if slot == BELOW else (0.5, 1.0 + offset / h)

    # -- placement -----------------------------------------------------------------------------
    def _scene_map(self):
        """(scale x, scale y, dx, dy): data coords -> scene pixels (the view has no rotation)."""
        self.vb.updateMatrix()  # pyqtgraph defers it to the next paint after a range change
        t = self.vb.childGroup.sceneTransform()
        return t.m11(), t.m22(), t.m31(), t.m32()

    def _candidates(self, centers: np.ndarray, bounds) -> np.ndarray:
        x0, y0, x1, y1 = bounds
        inside = np.flatnonzero((centers[:, 0] >= x0) & (centers[:, 0] <= x1)
                                & (centers[:, 1] >= y0) & (centers[:, 1] <= y1))
        return inside if len(inside) <= MAX_CAPTIONS else inside[:0]

    def _blockers(self, centers: np.ndarray, near: np.ndarray, m) -> tuple[np.ndarray, np.ndarray]:
        """Rectangles captions must not overlap (nodes near the view, the ring, io nodes and texts)."""
        rects = [node_blockers(centers[near], self.node_px[near] / 2)]
        owners = [near]
        sel = self.graph.index.get(self.selected) if self.selected else None
        if sel is not None:
            rects.append(node_blockers(centers[[sel]], self.node_px[sel] / 2 + RING / 2 + 1.5))
            owners.append(np.array([sel]))
        if len(self.io_points):
            io = self.io_points * [m[0], m[1]] + [m[2], m[3]]
            rects.append(node_blockers(io, self.io_radius))
            owners.append(np.full(len(io), -1))
        for t in self.io_texts:
            if t.isVisible():
                r = text_scene_rect(t, m)
                rects.append(np.array([r]))
                owners.append(np.array([-1]))
        return np.concatenate(rects), np.concatenate(owners)

    @Slot()
    def place(self) -> None:
        """Decide which captions show and where, for the range on screen (see the module docstring)."""
        self._timer.stop()
        graph = self.graph
        if graph is None:
            return
        if not self.enabled or self.vb.width() < 2 or len(self.node_px) != graph.n_nodes:
            for item in self.items.values():
                item.setVisible(False)
            return
        m = self._scene_map()
        centers = graph.pos * [m[0], m[1]] + [m[2], m[3]]
        r = self.vb.sceneBoundingRect()
        bounds = (r.left(), r.top(), r.right(), r.bottom())
        candidates = self._candidates(centers, bounds)
        margin = 40.0
        near = np.flatnonzero((centers[:, 0] >= bounds[0] - margin) & (centers[:, 0] <= bounds[2] + margin)
                              & (centers[:, 1] >= bounds[1] - margin) & (centers[:, 1] <= bounds[3] + margin))
        if len(near) > 8 * MAX_CAPTIONS:
            candidates = candidates[:0]
        order = caption_order(graph, self.labels, self.ablated, self.selected, candidates, self.strength) \
            if len(candidates) else candidates
        sizes = np.zeros((graph.n_nodes, 2))
        offsets = np.zeros(graph.n_nodes)
        for i in order.tolist():
            br = self._item(i).textItem.boundingRect()
            sizes[i] = (br.width(), br.height())
            offsets[i] = self._offset(i)
        blockers, owners = self._blockers(centers, near, m) if len(order) else (np.zeros((0, 4)), np.zeros(0))
        self.slots, rects = place_captions(centers, sizes, offsets, order, blockers, owners, bounds)
        for i, item in self.items.items():
            shown = bool(self.slots[i] != HIDDEN)
            item.setVisible(shown)
            if shown:  # the node's point, as a fraction of the caption's box: the box follows its node
                x0, y0, x1, y1 = rects[i]
                anchor = ((centers[i, 0] - x0) / (x1 - x0), (centers[i, 1] - y0) / (y1 - y0))
                if self._anchors.get(i) != anchor:
                    self._anchors[i] = anchor
                    item.setAnchor(anchor)

    # -- hover ---------------------------------------------------------------------------------
    def show_hover(self, i: int | None) -> None:
        """Show node ``i``'s caption (a user label in full) on top of everything; None hides it."""
        if i is None or self.graph is None or i >= self.graph.n_nodes:
            self.hover.setVisible(False)
            return
        self.hover.setText(self.text(i, full=True), color=self._color(i) if self._color(i) != theme.MUTED
                           else theme.TEXT)
        self.hover.updateTextPos()
        self.hover.setPos(*self.graph.pos[i])
        self.hover.setAnchor(self._anchor(self.hover, BELOW, self._offset(i)))
        self.hover.setVisible(True)

    def visible_items(self) -> list[pg.TextItem]:
        """The captions on screen now (tests)."""
        return [item for item in self.items.values() if item.isVisible()]


def text_scene_rect(item: pg.TextItem, m) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) in scene pixels of a TextItem (pixel-sized, anchored at its data position)."""
    br = item.textItem.boundingRect()
    x = item.pos().x() * m[0] + m[2] - item.anchor[0] * br.width()
    y = item.pos().y() * m[1] + m[3] - item.anchor[1] * br.height()
    return (x, y, x + br.width(), y + br.height())
