"""The node inspector: id, editable label, weights in and out (click to jump; the circuit's own
weights marked ● and bold), top and bottom examples from the activation store with per-token
heatmaps (each cut to the panel's width around its marked peak token, peaks in one column, redrawn
when the panel is resized), task A/B activations and a histogram; above the tabs, for a q, k or v
node on the selected pair at every position and, for a q, k or v node, its head's attention
(:mod:`app.panels.pair_strips`; the full pattern in :mod:`app.panels.pattern`).

Without an activation store the examples tab offers a button that records one in the background;
the panel fills in when it is ready (the window's controller owns the job and calls :meth:`set_store`).
Built from :class:`app.model.state.AppState`. Reads the store in the GUI thread (a few small reads per
selection; the top-K index makes them sub-millisecond), never per ablation click.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (QAbstractItemView, QFormLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QSplitter, QStackedWidget, QTableWidget, QTableWidgetItem, QTabWidget,
                               QTextBrowser, QVBoxLayout, QWidget)

from app.widgets import theme
from engine.scene.layout import KINDS
from app.panels.pair_strips import PairStrips
from app.panels.token_html import PREFIX_CHARS, examples_html

MAX_EDGES = 60  # rows per table besides the circuit's own weights (always listed)
N_EXAMPLES = 8
WINDOW = 24  # tokens read on each side of a peak; the panel's width decides how many are shown
IN_CIRCUIT = "● "  # marks a circuit weight in the Weights tab


def _edge_table(title: str) -> QTableWidget:
    t = QTableWidget(0, 2)
    t.setHorizontalHeaderLabels([title, "weight"])
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    t.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
    t.verticalHeader().setVisible(False)
    t.verticalHeader().setDefaultSectionSize(20)
    t.setToolTip("click a row to jump to that node")
    t.setMinimumHeight(36)
    return t


def _small_plot(left: str, bottom: str) -> pg.PlotWidget:
    p = pg.PlotWidget(background=theme.BG)
    p.setMenuEnabled(False)
    p.hideButtons()
    p.setMinimumHeight(40)
    p.getPlotItem().setLabel("left", left, color=theme.MUTED)
    p.getPlotItem().setLabel("bottom", bottom, color=theme.MUTED)
    for axis in ("left", "bottom"):
        p.getAxis(axis).setTextPen(pg.mkPen(theme.MUTED))
        p.getAxis(axis).enableAutoSIPrefix(False)
    return p


class InspectorView(QWidget):
    recordRequested = Signal()

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.store = None
        self.node: str | None = None
        self._examples: tuple | None = None  # (top, bottom, scale) of the node shown, redrawn on resize
        self._chars = 0  # the characters per example line they were drawn with
        self._circuit_edges: tuple[object, frozenset[str]] = (None, frozenset())  # (bundle, its circuit's weights)
        self.pattern = None  # the full attention pattern's window, when open
        header = self._build_header()
        self.strips = PairStrips(state)  # the node at every position of the pair; a head's attention
        self.strips.patternRequested.connect(self._show_pattern)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_examples(), "Examples")
        self.tabs.addTab(self._build_weights(), "Weights")
        self.tabs.addTab(self._build_activations(), "Activations")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addLayout(header)
        layout.addWidget(self.stats)
        layout.addWidget(self.strips)
        layout.addWidget(self.tabs, 1)
        state.selectionChanged.connect(self.show_node)
        state.bundleChanged.connect(self._on_bundle)
        state.pairChanged.connect(self._on_pair)
        state.labelsChanged.connect(self._on_labels)
        self._set_enabled(False)

    def _build_header(self) -> QFormLayout:
        """The node's id (``title``), its editable label and a line of statistics (``stats``)."""
        self.title = QLabel("Click a node (or press / to find one)")
        self.title.setFont(theme.mono_font(10))
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.title.setWordWrap(True)
        self.label_edit = QLineEdit()
        self.label_edit.setPlaceholderText("label this node (saved with the run's derived files)")
        self.label_edit.editingFinished.connect(self._on_label_edited)
        self.stats = QLabel("")
        self.stats.setWordWrap(True)
        self.stats.setStyleSheet(f"color: {theme.MUTED};")
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Label:", self.label_edit)
        return form

    def _build_examples(self) -> QStackedWidget:
        """Top and bottom examples, or (without an activation store) a button that records one."""
        self.examples = QTextBrowser()
        self.examples.setObjectName("examplesBrowser")
        self.examples.setFont(theme.mono_font(9))
        self.examples.setLineWrapMode(QTextBrowser.LineWrapMode.NoWrap)
        self.no_store = QWidget()
        self.no_store_text = QLabel("This run has no activation store yet, so there are no examples to show.")
        self.no_store_text.setWordWrap(True)
        self.record_button = QPushButton("Record activation store (runs in the background)")
        self.record_button.setObjectName("recordStoreButton")
        self.record_button.clicked.connect(self.recordRequested)
        box = QVBoxLayout(self.no_store)
        box.addWidget(self.no_store_text)
        box.addWidget(self.record_button)
        box.addStretch(1)
        self.example_stack = QStackedWidget()
        self.example_stack.addWidget(self.examples)
        self.example_stack.addWidget(self.no_store)
        return self.example_stack

    def _build_weights(self) -> QWidget:
        """The weights in and out of the node (click a row to jump to the other node); a line above
        says which are the circuit's."""
        self.in_table, self.out_table = _edge_table("from (in)"), _edge_table("to (out)")
        for t in (self.in_table, self.out_table):
            t.cellClicked.connect(self._on_edge_clicked)
        self.weights_note = QLabel("")
        self.weights_note.setObjectName("weightsNote")
        self.weights_note.setWordWrap(True)
        self.weights_note.setStyleSheet(f"color: {theme.MUTED};")
        edges = QSplitter(Qt.Orientation.Vertical)
        edges.addWidget(self.in_table)
        edges.addWidget(self.out_table)
        page = QWidget()
        box = QVBoxLayout(page)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.weights_note)
        box.addWidget(edges, 1)
        return page

    def _build_activations(self) -> QWidget:
        """The task's A/B activations and the histogram over recorded tokens."""
        self.task_plot = _small_plot("activation", "task side (A, B); ● = selected pair")
        self.hist_plot = _small_plot("count (log)", "activation over recorded tokens")
        self.hist_plot.getPlotItem().setLogMode(y=True)
        self.hist_note = QLabel("")
        self.hist_note.setStyleSheet(f"color: {theme.MUTED};")
        acts = QWidget()
        acts_box = QVBoxLayout(acts)
        acts_box.setContentsMargins(0, 0, 0, 0)
        for w in (self.task_plot, self.hist_plot, self.hist_note):
            acts_box.addWidget(w)
        return acts

    # -- store ---------------------------------------------------------------------------------
    def set_store(self, store, message: str = "") -> None:
        """Use ``store`` (an open ActivationStore, or None) and refill; ``message`` explains a None."""
        self.store = store
        if store is None:
            self.no_store_text.setText(message or "This run has no activation store yet, so there are "
                                       "no examples to show.")
        self.show_node(self.node)

    def set_recording(self, active: bool) -> None:
        self.record_button.setEnabled(not active)
        self.record_button.setText("Recording… (see the Log dock)" if active
                                   else "Record activation store (runs in the background)")

    # -- state -> widgets ----------------------------------------------------------------------
    def _set_enabled(self, on: bool) -> None:
        self.label_edit.setEnabled(on)
        self.tabs.setEnabled(on)

    @Slot(object)
    def _on_bundle(self, bundle) -> None:
        self.show_node(None)

    @Slot(object)
    def _on_labels(self, labels) -> None:
        if self.node is not None and not self.label_edit.hasFocus():
            self.label_edit.setText(labels.get(self.node, ""))

    @Slot(int, int)
    def _show_pattern(self, layer: int, head: int) -> None:
        """The head's full pattern on the pair, in a window of its own (one per head, kept while open)."""
        from app.panels.pattern import PatternDialog

        self.pattern = PatternDialog(self.state, layer, head, self)
        self.pattern.show()

    @Slot(int)
    def _on_pair(self, pair: int) -> None:
        if self.node is not None:
            self._fill_stats()
            self._fill_task_plot()

    @Slot(object)
    def show_node(self, node: str | None) -> None:
        bundle = self.state.bundle
        self.node = node if bundle is not None and node in bundle.model_graph.index else None
        self._set_enabled(self.node is not None)
        if self.node is None:
            self.title.setText("Click a node (or press / to find one)")
            self.label_edit.setText("")
            self.stats.setText("")
            for t in (self.in_table, self.out_table):
                t.setRowCount(0)
            self.weights_note.setText("")
            self._examples = None
            self.examples.setHtml("")
            self.task_plot.clear()
            self.hist_plot.clear()
            self.hist_note.setText("")
            self.example_stack.setCurrentIndex(0 if self.store is not None else 1)
            return
        site, _, idx = self.node.rpartition(":")
        final = site == KINDS[-1]
        kind = len(KINDS) - 1 if final else KINDS.index(site.split(".", 2)[2])
        where = "" if final else f", layer {site.split('.')[1]}"
        self.title.setText(f"<b>{self.node}</b><br><span style='color:{theme.MUTED}'>"
                           f"{theme.KIND_NAMES[kind]}{where}, channel {idx}</span>")
        self.label_edit.setText(self.state.labels.get(self.node, ""))
        self._fill_stats()
        self._fill_edges()
        self._fill_examples()
        self._fill_task_plot()
        self._fill_histogram()

    def _fill_stats(self) -> None:
        b, node = self.state.bundle, self.node
        site, _, idx = node.rpartition(":")
        i, pair = int(idx), self.state.pair
        vals = b.task_view.node_values[site][:, i]
        g = b.model_graph
        n = g.index[node]
        in_c = b.circuit is not None and node in {str(x) for x in b.circuit.nodes}
        self.stats.setText(
            f"mean {float(b.means[site][i]):+.4f} · pair {pair}, full model, last token: A {vals[2 * pair]:+.4f}, "
            f"B {vals[2 * pair + 1]:+.4f}"
            f" · {int(np.sum(g.dst == n))} weights in, {int(np.sum(g.src == n))} out"
            + (" · in circuit" if in_c else (" · not in circuit" if b.circuit is not None else "")))

    def circuit_edges(self) -> frozenset[str]:
        """The ids (``SRC->DST``) of the shown circuit's weights (empty without a circuit)."""
        b = self.state.bundle
        if self._circuit_edges[0] is not b:
            cg = b.circuit_graph if b is not None else None
            ids = frozenset(cg.edge_id(e) for e in range(cg.n_edges)) if cg is not None else frozenset()
            self._circuit_edges = (b, ids)
        return self._circuit_edges[1]

    def _fill_edges(self) -> None:
        g = self.state.bundle.model_graph
        n = g.index[self.node]
        ours = self.circuit_edges()
        marked = []
        for table, sel, other in ((self.in_table, g.dst == n, g.src), (self.out_table, g.src == n, g.dst)):
            idx = np.flatnonzero(sel)
            idx = idx[np.argsort(-np.abs(g.weight[idx]), kind="stable")]
            in_c = np.array([g.edge_id(e) in ours for e in idx], bool) if ours else np.zeros(len(idx), bool)
            keep = in_c | (np.arange(len(idx)) < MAX_EDGES)  # the strongest, and every circuit weight
            idx, in_c = idx[keep], in_c[keep]
            marked.append(int(in_c.sum()))
            table.setRowCount(len(idx))
            for r, (e, c) in enumerate(zip(idx, in_c)):
                self._edge_row(table, r, g.ids[other[e]], float(g.weight[e]), bool(c))
        self.weights_note.setText(
            f"{IN_CIRCUIT}bold: the circuit's weights ({marked[0]} in, {marked[1]} out)" if ours
            else "No circuit for this task: every weight of the model is listed.")

    @staticmethod
    def _edge_row(table: QTableWidget, row: int, node: str, w: float, in_circuit: bool) -> None:
        name = QTableWidgetItem(node)  # the node id only: a click jumps to it
        val = QTableWidgetItem(f"{IN_CIRCUIT if in_circuit else ''}{w:+.4f}")
        val.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        val.setForeground(theme.weight_color(w > 0, 255))
        for item in (name, val):
            if in_circuit:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
                item.setToolTip("a weight of the circuit")
        table.setItem(row, 0, name)
        table.setItem(row, 1, val)

    def _fill_examples(self) -> None:
        if self.store is None:
            self.example_stack.setCurrentIndex(1)
            return
        self.example_stack.setCurrentIndex(0)
        try:
            top = self.store.top_examples(self.node, k=N_EXAMPLES, window=WINDOW)
            bottom = self.store.top_examples(self.node, k=N_EXAMPLES, window=WINDOW, bottom=True)
        except Exception as exc:  # noqa: BLE001 - a damaged store must not break the panel
            self.examples.setHtml(f"<p>Cannot read examples: {exc}</p>")
            return
        vals = [abs(float(v)) for ex in top + bottom for v in ex.values]
        self._examples = (top, bottom, max(vals) if vals and max(vals) > 0 else 1.0)
        self._draw_examples()

    def example_chars(self) -> int:
        """How many characters of tokens fit on one example line of the panel."""
        font = self.examples.document().defaultFont()
        char = max(1, QFontMetrics(font).horizontalAdvance("M"))
        margin = 2 * int(self.examples.document().documentMargin()) + 4
        bar = self.examples.verticalScrollBar()
        width = self.examples.viewport().width() - (0 if bar.isVisible() else bar.sizeHint().width())
        return max(8, (width - margin) // char - PREFIX_CHARS - 1)

    def _draw_examples(self) -> None:
        top, bottom, scale = self._examples
        self._chars = chars = self.example_chars()
        self.examples.setHtml(examples_html(f"Top {len(top)} activations", top, scale, chars)
                              + examples_html(f"Bottom {len(bottom)} activations", bottom, scale, chars))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        """Examples are cut to the panel's width: draw them again when it changes."""
        super().resizeEvent(event)
        if self._examples is not None and self.example_chars() != self._chars:
            self._draw_examples()

    def _fill_task_plot(self) -> None:
        b, node = self.state.bundle, self.node
        site, _, idx = node.rpartition(":")
        vals = b.task_view.node_values[site][:, int(idx)]
        a, bb = vals[0::2], vals[1::2]
        rng = np.random.default_rng(0)
        p = self.task_plot
        p.clear()
        for x, v, color in ((0, a, theme.weight_color(True, 200)), (1, bb, theme.weight_color(False, 200))):
            jitter = x + rng.uniform(-0.18, 0.18, len(v))
            p.addItem(pg.ScatterPlotItem(jitter, v, size=6, pen=None, brush=pg.mkBrush(color)))
            p.addItem(pg.PlotDataItem([x - 0.3, x + 0.3], [float(v.mean())] * 2, pen=pg.mkPen(theme.TEXT, width=2)))
        pair = self.state.pair
        p.addItem(pg.ScatterPlotItem([0, 1], [a[pair], bb[pair]], size=11, brush=None,
                                     pen=pg.mkPen(theme.SELECTED, width=2)))
        p.getAxis("bottom").setTicks([[(0, "A"), (1, "B")]])
        p.setXRange(-0.6, 1.6, padding=0)

    def _fill_histogram(self) -> None:
        p = self.hist_plot
        p.clear()
        if self.store is None:
            self.hist_note.setText("The histogram needs an activation store.")
            return
        try:
            counts, edges = self.store.histogram(self.node)
        except Exception as exc:  # noqa: BLE001 - e.g. a store still recording
            self.hist_note.setText(str(exc))
            return
        p.addItem(pg.PlotDataItem(edges, counts.astype(float) + 1.0, stepMode="center", fillLevel=0,
                                  pen=pg.mkPen(theme.ACCENT), brush=pg.mkBrush(90, 169, 230, 90)))
        self.hist_note.setText(f"{int(counts.sum()):,} recorded activations; min {edges[0]:+.3f}, max {edges[-1]:+.3f}")

    # -- user -> state -------------------------------------------------------------------------
    def _on_label_edited(self) -> None:
        if self.node is not None:
            self.state.set_label(self.node, self.label_edit.text())

    def _on_edge_clicked(self, row: int, col: int) -> None:
        table = self.sender()
        item = table.item(row, 0) if table is not None else None
        if item is not None:
            self.state.select(item.text())
