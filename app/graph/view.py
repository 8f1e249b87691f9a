"""The circuit graph: a layered layout drawn with a handful of pyqtgraph items.

Items (bottom to top): residual links (one ``connect='pairs'`` item), the weight edges
(:class:`app.graph.edges.EdgeLayer`: a few array-fed items or one raster image), display-only
embedding/unembedding edges, ablated weights (dashed), the nodes (ONE ``ScatterPlotItem``), the
ablated overlay (hollow + crossed), the selection ring, input tokens and the two target logits.
Row names are the ticks of the left axis, so they stay aligned while panning. Node captions are
placed by priority and never overlap (:mod:`app.graph.captions`); the legend sits in a strip above
the plot, never over the graph. With no run loaded the axis and the legend are hidden (nothing to
name or explain).

Mouse: click a node = toggle its ablation and inspect it; shift+click = toggle only; ctrl+click =
inspect only; shift+drag = rubber band (ablate every node inside, or restore them if all are);
click an edge = toggle that one weight; drag = pan; wheel = zoom; right-click = view menu.

The view is built from :class:`app.model.state.AppState`, subscribes to its signals and calls its
methods; it holds no truth of its own.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal, Slot
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.graph import focus_style
from app.graph import items as gi
from app.graph.captions import CaptionLayer
from app.graph.edges import EdgeLayer
from app.graph.attribution import AttributionMode
from app.graph.node_raster import NodeScatter
from app.graph.node_style import node_brushes
from app.graph.row_names import RowNames
from app.graph.token_row import NO_PEN, TokenRow
from app.workers.trace import head_of
from app.widgets import theme
from engine.scene.layout import GraphData, io_edges, logit_positions, row_gaps, token_positions
from engine.scene.snapshot import counted


class GraphViewBox(pg.ViewBox):
    """A ViewBox that reports left clicks on the background and shift+drag rectangles."""

    sigBackgroundClicked = Signal(object, object)  # QPointF in data coords, modifiers
    sigRubberBand = Signal(object, object)  # QRectF in data coords, modifiers

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (Qt naming)
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.sigBackgroundClicked.emit(self.mapSceneToView(ev.scenePos()), ev.modifiers())
            return
        super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton and ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            ev.accept()
            if ev.isFinish():
                self.rbScaleBox.hide()
                rect = QRectF(ev.buttonDownPos(), ev.pos()).normalized()
                self.sigRubberBand.emit(self.childGroup.mapRectFromParent(rect), ev.modifiers())
            else:
                self.updateScaleBox(ev.buttonDownPos(), ev.pos())
            return
        super().mouseDragEvent(ev, axis)


class PassiveScatter(pg.ScatterPlotItem):
    """An overlay (ablated marks, selection ring) that lets clicks through to the nodes below."""

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (Qt naming)
        ev.ignore()


class CircuitView(QWidget):
    """The central widget: a one-line header and the graph. See the module docstring."""

    drawn = Signal()  # nodes placed and edges on screen for the current graph and threshold

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.graph: GraphData | None = None
        self._degrees = (np.zeros(0), np.zeros(0))
        self.header = QLabel("No run loaded. File > Open run folder... (Ctrl+Shift+O) or pick the demo in the Runs dock.")
        self.header.setObjectName("graphHeader")
        self.header.setWordWrap(True)
        self.header.setStyleSheet(f"padding: 4px 8px; color: {theme.TEXT}; background: {theme.BG};")
        self.vb = GraphViewBox()
        self.widget = pg.PlotWidget(viewBox=self.vb, background=theme.BG)
        self.plot = self.widget.getPlotItem()
        self.plot.hideAxis("bottom")
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        axis = self.plot.getAxis("left")
        axis.setPen(pg.mkPen(theme.GRID))
        axis.setTextPen(pg.mkPen(theme.MUTED))
        axis.setStyle(tickLength=0, autoExpandTextSpace=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.lod_label = QLabel("")
        self.lod_label.setStyleSheet(f"padding: 2px 8px; color: {theme.MUTED}; background: {theme.BG};")
        self.lod_label.setVisible(False)
        layout.addWidget(self.header)
        layout.addWidget(self.lod_label)
        layout.addWidget(self.widget, 1)
        self._build_items()
        self.legend = gi.build_legend(self.plot)
        self.plot.geometryChanged.connect(self._fit_legend)
        self.attribution = AttributionMode(state, self)  # edges and nodes by attribution on the pair
        self._show_frame(False)
        self.edges.drawn.connect(self._on_edges_drawn)
        self.vb.sigRangeChanged.connect(self._size_nodes)
        self.vb.sigResized.connect(self._size_nodes)
        self.vb.sigBackgroundClicked.connect(self._on_background_click)
        self.vb.sigRubberBand.connect(self._on_rubber_band)
        for signal, slot in ((state.bundleChanged, self._rebuild), (state.viewChanged, self._rebuild),
                             (state.labelsChanged, self._show_captions),
                             (state.ablationChanged, self._show_ablation),
                             (state.selectionChanged, self._show_selection),
                             (state.pairChanged, self._show_io), (state.thresholdChanged, self._set_threshold),
                             (state.nodeHeatChanged, self._on_heat), (state.emphasisChanged, self.restyle_nodes),
                             (state.traceChanged, self._paint_tokens), (state.selectionChanged, self._paint_tokens)):
            signal.connect(slot)
        state.diffChanged.connect(self._rebuild)  # the circuit view shows a diff's union (app/graph/focus_style.py)

    def _build_items(self) -> None:
        vb = self.vb
        self.resid = pg.PlotDataItem(pen=pg.mkPen(theme.RESIDUAL_LINK, width=1), connect="pairs")
        self.qk = pg.PlotDataItem(pen=pg.mkPen(theme.QK_LINK, width=1.3, style=Qt.PenStyle.DotLine), connect="pairs")
        self.qk_dim = focus_style.dim_qk_item()  # q-k arcs outside a focus
        self.io_items = [pg.PlotDataItem(connect="pairs") for _ in range(2)]
        self.cut_edges = pg.PlotDataItem(pen=pg.mkPen(theme.ABLATED, width=2, style=Qt.PenStyle.DashLine),
                                         connect="pairs")
        self.cut_marks = PassiveScatter(symbol="x", size=11, pen=pg.mkPen(theme.ABLATED, width=2),
                                            brush=pg.mkBrush(theme.ABLATED))
        self.nodes = NodeScatter(hoverable=True, tip=self._tip, pxMode=True)  # one image when many
        self.ablated = PassiveScatter(symbol=gi.ablated_symbol(), brush=pg.mkBrush(theme.BG),
                                          pen=pg.mkPen(theme.ABLATED, width=2.2))
        self.ring = PassiveScatter(symbol="o", brush=None, pen=pg.mkPen(theme.SELECTED, width=2.5))
        self.io_nodes = pg.ScatterPlotItem(hoverable=True, tip=self._io_tip, size=12,
                                           pen=pg.mkPen(theme.TEXT, width=1.5), brush=pg.mkBrush(theme.PANEL))
        for z, item in enumerate((self.resid, self.qk_dim, self.qk, *self.io_items, self.cut_edges, self.nodes,
                                  self.cut_marks, self.ablated, self.ring, self.io_nodes)):
            item.setZValue(2 + z)
            vb.addItem(item)
        self.edges = EdgeLayer(vb, self)
        self._segs = np.zeros((0, 4))  # (E, 4) every weight's segment in the graph on screen
        self.nodes.sigClicked.connect(self._on_node_click)
        self.nodes.sigHovered.connect(self._on_hover)
        self.texts: list[pg.TextItem] = []  # the target logits' names
        self.tokens = TokenRow(vb, lambda *a: self._add_text(*a, mono=True))  # prompts A and B
        self.row_names = RowNames(self.plot.getAxis("left"), vb, self.tokens)
        vb.sigRangeChanged.connect(self.row_names.fit)
        vb.sigResized.connect(self.row_names.fit)
        self.captions = CaptionLayer(vb, self)  # node captions
        self._key: tuple | None = None
        self._sizes = np.zeros(0)  # (n,) node diameters in pixels at the current zoom
        self._row_gap = np.zeros(0)  # (n,) data units between the closest two nodes of each node's row
        self._view = "circuit"
        self._in_circuit: np.ndarray | None = None  # whole-model view: which nodes are the circuit's

    # -- building ------------------------------------------------------------------------------
    @Slot()
    def _rebuild(self, *args) -> None:
        """Show the state's current graph (circuit or whole model) from scratch."""
        graph = self.state.graph
        key = (self.state.serial, id(graph))
        if key == self._key:
            return
        self._key, self.graph = key, graph
        self._show_frame(graph is not None)
        self.captions.set_graph(graph, enabled=True)
        if graph is None:
            self._clear_texts(self.texts)
            self.tokens.clear()
            for item in (self.resid, self.qk, self.qk_dim, self.nodes, self.ablated, self.ring, self.io_nodes,
                         self.cut_marks, self.cut_edges, *self.io_items):
                item.setData([], [])
            self.edges.set_edges(np.zeros((0, 4)), np.zeros(0, np.float32), np.zeros(0, np.int64))
            return
        bundle = self.state.bundle
        self._degrees = graph.degrees()
        view = "circuit" if graph is bundle.circuit_graph else "model"
        self._in_circuit = None
        if view == "model" and bundle.circuit is not None:
            kept = {str(n) for n in bundle.circuit.nodes}
            self._in_circuit = np.fromiter((i in kept for i in graph.ids), bool, graph.n_nodes)
        self._row_gap = row_gaps(graph)
        size = self._zoom_size(view)
        self.nodes.setData(pos=graph.pos, size=size, brush=self._brushes(),
                           # no outline in the whole model (a pen of width 0 would be Qt's one-pixel pen,
                           # which at that zoom hid the fills of the overlapping nodes under their outlines)
                           pen=pg.mkPen(theme.BG, width=0.6) if view == "circuit" else pg.mkPen(None),
                           data=np.arange(graph.n_nodes))
        self._sizes = size
        self._view = view
        self.fit()  # before the edges: a raster is rendered for the range on screen
        self._segs = np.concatenate([graph.pos[graph.src], graph.pos[graph.dst]], axis=1)
        self.show_edges()
        links = graph.pos[graph.resid.reshape(-1)] if len(graph.resid) else np.zeros((0, 2))
        self.resid.setData(links[:, 0], links[:, 1], connect="pairs")
        focus_style.restyle_links(self)  # q-k arcs; a diff's colours, a focus's faint weights
        self.row_names.set_rows(graph.row_labels())
        self._show_io()
        self._show_ablation()
        self._show_selection(self.state.selected, center=False)

    def _brushes(self) -> list:
        return node_brushes(self.graph, self._in_circuit, self.state.node_heat, self.state.emphasis,
                            focus_style.categories(self.state, self.graph))

    @Slot()
    def _on_heat(self, *args) -> None:
        """A node overlay came or went: new fills, and the header says what the colours mean."""
        self.restyle_nodes()
        if self.graph is not None:
            self._update_header(self._view)

    @Slot()
    def restyle_nodes(self, *args) -> None:
        """Node fills again after the heat overlay or the emphasis set changed (app/graph/node_style.py),
        and the weights and q-k arcs between bright nodes (app/graph/focus_style.py)."""
        if self.graph is not None:
            self.nodes.setBrush(self._brushes())
            focus_style.restyle_links(self)

    def _show_frame(self, on: bool) -> None:
        """The row-name axis and the legend, shown only while a graph is."""
        self.plot.showAxis("left", on)
        self.legend.setVisible(on)
        self._fit_legend()

    @Slot()
    def _fit_legend(self) -> None:
        gi.fit_legend(self.plot, self.legend)

    def _zoom_size(self, view: str) -> np.ndarray:
        """(n,) node diameters in pixels: the circuit's size (``items.NODE_SIZE``), smaller in a row
        whose nodes would touch at this zoom (down to ``items.MIN_NODE_SIZE``); the whole model's
        nodes grow when zoomed in."""
        px = self._row_gap * self.vb.width() / max(self.vb.viewRect().width(), 1e-9)
        return gi.zoom_node_size(view, px)

    @Slot()
    def _size_nodes(self, *args) -> None:
        """Resize the nodes (and the ablated marks and the ring) after the zoom changed."""
        if self.graph is None:
            return
        size = self._zoom_size(self._view)
        if np.array_equal(size, self._sizes):
            return
        self._sizes = size
        self.nodes.setSize(size)
        self._show_ablation()
        self._show_selection(self.state.selected, center=False)

    def _clear_texts(self, items: list) -> None:
        for t in items:
            self.vb.removeItem(t)
        items.clear()

    @Slot()
    def _show_captions(self, *args) -> None:
        """Node captions (the label, q/k/v head.dim or the channel), placed by priority (the selected
        node, labelled, ablated, strongest first) where they overlap nothing."""
        if self.graph is not None:
            self.captions.set_state(self.state.labels, self.state.ablation.nodes, self.state.selected,
                                    self._sizes)

    def _add_text(self, text: str, pos, anchor, color: str, size: float, mono: bool = False) -> pg.TextItem:
        item = pg.TextItem(text, color=color, anchor=anchor)
        font = theme.mono_font(size) if mono else item.textItem.font()
        font.setPointSizeF(size)
        item.setFont(font)
        item.setPos(float(pos[0]), float(pos[1]))
        item.setZValue(20)
        self.vb.addItem(item, ignoreBounds=True)
        return item

    def _update_header(self, view: str) -> None:
        b, g = self.state.bundle, self.graph
        task = b.task.name
        diff = focus_style.diff_header(self.state, g)
        if diff:
            text = diff
        elif b.circuit is None:
            text = (f"<b>{b.run_name}</b> · task <b>{task}</b> · whole model ({g.n_nodes:,} nodes, "
                    f"{g.n_edges:,} weights). <span style='color:{theme.MUTED}'>No circuit for this task "
                    f"yet: Circuits &gt; Prune a task… finds one</span>")
        elif view == "circuit":
            text = (f"<b>{b.run_name}</b> · task <b>{task}</b> · circuit <b>{b.circuit.name}</b>: "
                    f"{counted(g.n_nodes, 'node')}, {counted(g.n_edges, 'weight')}")
        else:
            text = (f"<b>{b.run_name}</b> · task <b>{task}</b> · whole model: {g.n_nodes:,} nodes, "
                    f"{g.n_edges:,} weights; circuit nodes bright")
        heat = self.state.node_heat
        if self.attribution.on:
            text += f"<br><span style='color:{theme.MUTED}'>{self.attribution.caption()}</span>"
        elif heat is not None:  # another overlay (node effects): what the node colours are
            text += (f"<br><span style='color:{theme.MUTED}'>nodes coloured by {html.escape(heat.title)} "
                     "(coral +, blue −; grey: none)</span>")
        self.header.setText(text)

    # -- state -> items ------------------------------------------------------------------------
    @Slot()
    def _show_io(self, *args) -> None:
        """Input tokens, target logits and their display-only edges for the selected pair."""
        graph, bundle = self.graph, self.state.bundle
        self._clear_texts(self.texts)
        if graph is None:
            return
        tv, pair = bundle.task_view, self.state.pair
        a, b = 2 * pair, 2 * pair + 1
        self.tokens.show(graph.width, tv.tokens[a], tv.tokens[b], gi.visible_token)
        self.row_names.fit()  # prompt B's tokens only where they do not run into A's
        lx = logit_positions(graph.width)
        for x, s, side in zip(lx, (tv.target_str[a], tv.target_str[b]), "AB"):
            self.texts.append(self._add_text(f"{side}: {gi.visible_token(s)}", (x, graph.top), (0.5, 1.25),
                                             theme.TEXT, 11.0, mono=True))
        token_x = self.tokens.x_last
        io_pos = np.array([[token_x, 0.0], [lx[0], graph.top], [lx[1], graph.top]])
        self.captions.set_io(io_pos, self.tokens.items + self.texts)
        self._paint_tokens()
        # the input's square draws no outline: its token's frame (TokenRow) is the box, as wide as the text
        io_pen = self.io_nodes.opts["pen"]
        self.io_nodes.setData(pos=io_pos, data=np.arange(3), symbol=["s", "o", "o"], size=[22, 14, 14],
                              pen=[NO_PEN, io_pen, io_pen],
                              brush=[pg.mkBrush(None), pg.mkBrush(theme.PANEL), pg.mkBrush(theme.PANEL)])
        segs, w = io_edges(graph, tv.embed[a], tv.unembed[a], tv.unembed[b], token_x)
        keep = np.argsort(-np.abs(w))[:48]
        segs, w = segs[keep], w[keep]
        for item, positive in zip(self.io_items, (True, False)):
            sel = segs[(w > 0) == positive]
            item.setPen(pg.mkPen(theme.weight_color(positive, 90), width=1, style=Qt.PenStyle.DotLine))
            item.setData(sel[:, [0, 2]].ravel(), sel[:, [1, 3]].ravel(), connect="pairs")

    @Slot()
    def _paint_tokens(self, *args) -> None:
        """The selected node's activation at every position of A and B as the tokens' backgrounds, and
        for a q/k/v node its head's attention from the last position as gold frames (app/graph/token_row.py)."""
        t, node = self.state.current_trace(), self.state.selected
        values = attention = None
        if self.graph is not None and t is not None and node is not None:
            tr = t.trace
            values = tr.positions(node)
            head = head_of(node, tr.d_head)
            if head is not None:
                attention = tr.pattern(*head)[np.arange(2), tr.last]  # (2, T)
        self.tokens.paint(values, attention)

    @Slot()
    def _show_ablation(self, *args) -> None:
        graph = self.graph
        if graph is None:
            return
        ablation = self.state.ablation
        idx = [graph.index[n] for n in ablation.nodes if n in graph.index]
        self.ablated.setData(pos=graph.pos[idx].reshape(-1, 2), size=self._sizes[idx] + 3)
        segs = []
        for e in ablation.edges:
            a, _, b = e.partition("->")
            if a in graph.index and b in graph.index:
                segs.append((*graph.pos[graph.index[a]], *graph.pos[graph.index[b]]))
        s = np.array(segs, dtype=float).reshape(-1, 4)
        self.cut_edges.setData(s[:, [0, 2]].ravel(), s[:, [1, 3]].ravel(), connect="pairs")
        self.cut_marks.setData(pos=(s[:, :2] + s[:, 2:]) / 2)
        self._show_captions()

    @Slot(object)
    def _show_selection(self, node, center: bool = True) -> None:
        graph = self.graph
        i = graph.index.get(node) if graph is not None and node else None
        self._show_captions()
        if i is None:
            self.ring.setData([], [])
            return
        self.ring.setData(pos=graph.pos[[i]], size=self._sizes[[i]] + 10)
        if center and not self.vb.viewRect().contains(*graph.pos[i]):
            self.center_on(node)

    @Slot(float)
    def _set_threshold(self, value: float) -> None:
        if self.attribution.on:
            self.show_edges()
        else:
            self.edges.set_threshold(value)

    def show_edges(self) -> None:
        """The edges of the graph on screen: by weight, or (attribution mode) by their contribution on
        the selected pair, among the weights at or above the |w| threshold (app/graph/attribution.py);
        the header and the legend say which."""
        graph = self.graph
        if graph is None:
            return
        values = self.attribution.values(graph)
        if values is None:
            self.edges.set_edges(self._segs, graph.weight, np.arange(graph.n_edges), self.state.threshold)
        else:
            keep = np.flatnonzero((np.abs(graph.weight) >= self.state.threshold) & (values != 0))
            self.edges.set_edges(self._segs[keep], values[keep], keep, 0.0)
        gi.set_sign_labels(self.legend, "weight" if values is None else "attribution")  # what is drawn
        self._update_header(self._view)

    @Slot()
    def _on_edges_drawn(self) -> None:
        capped = self.edges.capped
        self.lod_label.setText(f"drawing the {capped[0]:,} strongest of {capped[1]:,} weights here; zoom in "
                               "or raise |w| to see the rest" if capped else "")
        self.lod_label.setVisible(capped is not None)
        self.drawn.emit()

    @property
    def is_drawn(self) -> bool:
        return self.graph is not None and self.edges.is_drawn

    # -- navigation ----------------------------------------------------------------------------
    def fit(self) -> None:
        """Show the whole graph, tokens and logits included."""
        if self.graph is None:
            return
        half = self.graph.width / 2
        tv = self.state.bundle.task_view if self.state.bundle is not None else None
        if tv is not None and len(tv.tokens):  # a small circuit is narrower than its input tokens
            rows = tv.tokens[2 * self.state.pair:2 * self.state.pair + 2]
            xs = token_positions(self.graph.width, max(len(t) for t in rows) if rows else 0)
            half = max(half, float(np.abs(xs).max()) if len(xs) else 0.0)
        half += 1.0
        label = max((t.boundingRect().height() for t in self.texts), default=0.0)
        token = max((t.boundingRect().height() for t in self.tokens.items), default=0.0)
        below, above = self.row_names.fit_margins(self.graph.top, label, token)
        self.vb.setRange(xRange=(-half, half), yRange=(-below, self.graph.top + above), padding=0.02)

    def center_on(self, node: str) -> None:
        i = self.graph.index.get(node) if self.graph is not None else None
        if i is not None:
            rect = self.vb.viewRect()
            x, y = self.graph.pos[i]
            self.vb.setRange(xRange=(x - rect.width() / 2, x + rect.width() / 2),
                             yRange=(y - rect.height() / 2, y + rect.height() / 2), padding=0)

    def node_scene_pos(self, node: str):
        """Where a node is drawn, in the PlotWidget's viewport pixels (tests, benchmarks)."""
        i = self.graph.index[node]
        scene = self.vb.mapViewToScene(pg.Point(*self.graph.pos[i]))
        return self.widget.mapFromScene(scene)

    # -- mouse ---------------------------------------------------------------------------------
    def _tip(self, x, y, data) -> str:
        i = int(data)
        node = self.graph.ids[i]
        return gi.node_tooltip(self.graph, i, self.state.bundle, self.state.pair, self.state.labels,
                               node in self.state.ablation.nodes, self._degrees) + \
            focus_style.tip_line(self.state, self.graph, i)

    def _io_tip(self, x, y, data) -> str:
        tv, pair = self.state.bundle.task_view, self.state.pair
        if int(data) == 0:
            p = tv.pairs[pair]
            return f"input (pair {pair})\nA: {p.prompt_a!r}\nB: {p.prompt_b!r}"
        side = int(data) - 1
        return (f"target logit {'AB'[side]}: {tv.target_str[2 * pair + side]!r}\n"
                "edges: unembedding row x final-norm gain (display only)")

    def _on_hover(self, item, points, ev) -> None:
        """Show the hovered node's caption (hidden ones too, user labels in full)."""
        self.captions.show_hover(int(points[0].data()) if len(points) else None)

    def _on_node_click(self, item, points, ev) -> None:
        node = self.graph.ids[int(points[0].data())]
        mods = ev.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            self.state.select(node)
            return
        self.state.toggle_nodes([node])
        if not mods & Qt.KeyboardModifier.ShiftModifier:
            self.state.select(node)

    def _on_background_click(self, pos, mods) -> None:
        if self.graph is None:
            return
        e = self.edges.nearest(pos.x(), pos.y())
        if e is not None:
            self.state.toggle_edge(self.graph.edge_id(e))

    def _on_rubber_band(self, rect: QRectF, mods) -> None:
        if self.graph is None:
            return
        p = self.graph.pos
        inside = np.flatnonzero((p[:, 0] >= rect.left()) & (p[:, 0] <= rect.right())
                                & (p[:, 1] >= rect.top()) & (p[:, 1] <= rect.bottom()))
        self.state.toggle_nodes([self.graph.ids[i] for i in inside])

    def shutdown(self) -> None:
        self.edges.shutdown()
