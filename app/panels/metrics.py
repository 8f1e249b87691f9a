"""The metrics panel: task loss and accuracy (full model, circuit, now) with deltas, per-pair logit
differences (baseline vs now), the circuit's faithfulness checks and the history of ablation steps.

Built from :class:`app.model.state.AppState`; reads ``bundle.full``, ``bundle.circuit_result``,
``bundle.circuit.metrics["faithfulness"]`` and the latest :class:`Evaluation`. The circuit row is the
circuit alone as the latest evaluation's worker computed it (in zero and resample mode the rest of the
model is ablated that way too), else the bundle's; its label names that ablation. Clicking the bar
chart selects a pair. Knows nothing about threads or the engine.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QListWidget,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.widgets import theme
from engine.ablation.modes import PRUNE_MODES, circuit_alone_label
from engine.scene.snapshot import counted

ROWS = ("full model", "circuit", "now")
FAITH_ROWS = (("sufficiency_loss", "sufficiency: circuit alone"),
              ("necessity_loss", "necessity: circuit ablated"),
              ("random_loss_mean", "random same-size set ablated"))


def _item(text: str, color: str | None = None, bold: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if color:
        item.setForeground(QColor(color))
    if bold:
        font = item.font()
        font.setBold(True)
        item.setFont(font)
    return item


def _table(rows: int, cols: list[str], row_names: list[str]) -> QTableWidget:
    t = QTableWidget(rows, len(cols))
    t.setHorizontalHeaderLabels(cols)
    t.setVerticalHeaderLabels(row_names)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    t.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    t.verticalHeader().setDefaultSectionSize(22)
    t.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    t.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    t.setMaximumHeight(t.horizontalHeader().sizeHint().height() + 22 * rows + 4)
    t.setMinimumHeight(t.horizontalHeader().sizeHint().height() + 22 * min(rows, 3) + 4)
    return t


def pair_means(logit_diff: np.ndarray) -> np.ndarray:
    """Per-pair mean of the two sides' (target - foil) logit differences: (N,) -> (N / 2,)."""
    d = np.asarray(logit_diff, dtype=float)
    return d[: len(d) // 2 * 2].reshape(-1, 2).mean(axis=1)


FAITH_TIP = ("Task loss with the circuit alone (sufficiency: should stay low), with only the circuit ablated "
             "(necessity: should be high), and with random node sets of the same size ablated (should stay low), "
             "under mean and zero ablation.")
VERDICT_WORDS = {"faithful": ("faithful", theme.GOOD), "not_faithful": ("not faithful", theme.BAD),
                 "not_a_circuit": ("not a circuit", theme.BAD)}


def _faith_cell(values: dict, key: str) -> str:
    """One number of the faithfulness table; the random baseline with its spread and set count, or why
    there is none."""
    v = values.get(key)
    if key == "random_loss_mean":
        if v is None:
            why = values.get("random_unavailable", "not computed")
            return f"<span title='{why}'>unavailable</span>"
        return f"{v:.3f} ± {values.get('random_loss_std', 0.0):.3f}"
    return "—" if v is None else f"{v:.3f}"


def verdict_html(verdict: dict | None) -> str:
    """The verdict in one coloured word, then its first reason (all of them in the tooltip)."""
    if not verdict:
        return ""
    word, color = VERDICT_WORDS.get(verdict.get("verdict"), (str(verdict.get("verdict")), theme.MUTED))
    reasons = verdict.get("reasons", [])
    shown = "".join(f"<br><span style='color:{theme.MUTED}'>· {r}</span>" for r in reasons[:1])
    more = f" <span style='color:{theme.MUTED}'>(+{len(reasons) - 1} in the tooltip)</span>" if len(reasons) > 1 else ""
    return f"<b style='color:{color}'>verdict: {word}</b>{more}{shown}"


PAIR_CHOICES = (24, 64, 200)  # held-out pairs the table can use (200: the faithfulness checks' count)


class MetricsView(QWidget):
    """See the module docstring. ``pairsRequested(n)``: the user asked for the metrics on n held-out
    pairs (the window loads the task again with that many)."""

    pairsRequested = Signal(int)

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.table = _table(3, ["loss", "Δ loss", "accuracy", "Δ acc"], list(ROWS))
        self.table.setObjectName("metricsTable")
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.info.setStyleSheet(f"color: {theme.MUTED};")
        self.bars = pg.PlotWidget(background=theme.BG)
        self.bars.setMinimumHeight(36)  # the window fits 680 pixels of height (two toolbar rows)
        self.bars.setMenuEnabled(False)
        self.bars.hideButtons()
        self.bars.setMouseEnabled(x=False, y=False)
        self.bars.getPlotItem().setLabel("left", "logit diff", color=theme.MUTED)
        self.bars.getPlotItem().setLabel("bottom", "pair  (grey: baseline, colour: now; click to pick)",
                                         color=theme.MUTED)
        for axis in ("left", "bottom"):
            self.bars.getAxis(axis).setTextPen(pg.mkPen(theme.MUTED))
            self.bars.getAxis(axis).enableAutoSIPrefix(False)
        self.base_bars = pg.BarGraphItem(x=[], height=[], width=0.4, brush=pg.mkBrush(120, 126, 145, 150))
        self.now_bars = pg.BarGraphItem(x=[], height=[], width=0.4)
        self.pair_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(theme.SELECTED, width=1,
                                                                style=Qt.PenStyle.DotLine))
        for item in (self.base_bars, self.now_bars, self.pair_line):
            self.bars.addItem(item)
        self.bars.addItem(pg.InfiniteLine(angle=0, pos=0, pen=pg.mkPen(theme.GRID)))
        self.bars.scene().sigMouseClicked.connect(self._on_bar_click)
        self.faith = QLabel("")
        self.faith.setObjectName("faithfulness")
        self.faith.setWordWrap(True)
        self.faith.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.faith.setToolTip(FAITH_TIP)
        self.history = QListWidget()
        self.history.setObjectName("historyList")
        self.history.setMinimumHeight(24)  # the splitter gives it more room by default (setSizes below)
        self.history.setWordWrap(True)
        self.history.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.table)
        self.pairs_combo = self._pairs_combo()
        info_row = QHBoxLayout()
        info_row.addWidget(self.info, 1)
        info_row.addWidget(self.pairs_combo, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(info_row)
        self.split = QSplitter(Qt.Orientation.Vertical)  # shrinks gracefully on small screens
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self.bars)
        self.split.addWidget(self.faith)
        self.split.addWidget(self._box("History", self.history))
        self.split.setSizes([220, 130, 80])
        for i, stretch in enumerate((3, 0, 1)):  # the bar chart takes what the others leave
            self.split.setStretchFactor(i, stretch)
        layout.addWidget(self.split, 1)
        state.bundleChanged.connect(self._on_bundle)
        state.evaluationChanged.connect(self._refresh)
        state.baselineChanged.connect(self._refresh)
        state.historyChanged.connect(self._on_history)
        state.pairChanged.connect(self._on_pair)

    def _pairs_combo(self) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName("pairsCombo")
        for n in PAIR_CHOICES:
            combo.addItem(f"{n} pairs", n)
        combo.setToolTip("Held-out pairs behind the table, the bars and live ablation (more pairs: steadier "
                         "numbers, slower clicks). The Faithfulness checks state their own count.")
        combo.activated.connect(self._on_pairs_chosen)
        return combo

    @staticmethod
    def _box(title: str, *widgets: QWidget) -> QWidget:
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 2, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(QLabel(f"<b>{title}</b>"))
        for w in widgets:
            lay.addWidget(w)
        return box

    # -- state -> widgets ----------------------------------------------------------------------
    @Slot(object)
    def _on_bundle(self, bundle) -> None:
        if bundle is not None:
            n = len(bundle.task_view.pairs)
            if self.pairs_combo.findData(n) < 0:
                self.pairs_combo.addItem(f"{n} pairs", n)
            self.pairs_combo.setCurrentIndex(self.pairs_combo.findData(n))
        self._fill_faithfulness(bundle)
        self._refresh()
        self._on_pair(self.state.pair)

    def _circuit_result(self):
        """The circuit alone: the latest evaluation's (the rest of the model ablated as its mode says), or
        the bundle's (the circuit's own mode) before the first one."""
        b, ev = self.state.bundle, self.state.evaluation
        if b is None:
            return None
        alone = getattr(ev, "circuit_result", None)
        return alone if alone is not None else b.circuit_result

    def _baseline_result(self):
        b = self.state.bundle
        if b is None:
            return None
        alone = self._circuit_result()
        return alone if self.state.baseline == "circuit" and alone is not None else b.full

    @Slot()
    def _refresh(self, *args) -> None:
        b = self.state.bundle
        t = self.table
        t.clearContents()
        if b is None:
            self.info.setText("")
            return
        base = self._baseline_result()
        ev = self.state.evaluation
        now = ev.result if ev is not None else None
        alone = self._circuit_result()
        t.setVerticalHeaderItem(1, QTableWidgetItem(circuit_alone_label(alone) if alone is not None else ROWS[1]))
        rows = (b.full, alone, now)
        refs = (None, b.full, base)
        for r, (res, ref) in enumerate(zip(rows, refs)):
            if res is None:
                t.setItem(r, 0, _item("—" if r == 1 else "…", theme.MUTED))
                continue
            t.setItem(r, 0, _item(f"{res.loss:.4f}", bold=r == 2))
            t.setItem(r, 2, _item(f"{res.accuracy:.1%}", bold=r == 2))
            if ref is not None:
                dl, da = res.loss - ref.loss, res.accuracy - ref.accuracy
                t.setItem(r, 1, _item(f"{dl:+.4f}", theme.BAD if dl > 1e-6 else theme.GOOD if dl < -1e-6 else None))
                t.setItem(r, 3, _item(f"{100 * da:+.1f} pp", theme.BAD if da < 0 else theme.GOOD if da > 0 else None))
        pairs = f"on {counted(len(b.task_view.pairs), 'held-out pair')}"
        if ev is not None:
            req = ev.request
            what = circuit_alone_label(ev.result) if req.baseline == "circuit" else "full model"
            self.info.setText(f"now = {what} + {counted(len(req.nodes), 'node')}, {counted(len(req.edges), 'weight')} ablated "
                              f"({req.mode}); Δ vs {what}; {pairs}")
        else:
            self.info.setText(f"evaluating… ({pairs})")
        self._draw_bars(base, now)

    def _draw_bars(self, base, now) -> None:
        if base is None:
            self.base_bars.setOpts(x=[], height=[])
            self.now_bars.setOpts(x=[], height=[])
            return
        b = pair_means(base.logit_diff)
        x = np.arange(len(b), dtype=float)
        self.base_bars.setOpts(x=x - 0.2, height=b, width=0.4)
        n = pair_means(now.logit_diff) if now is not None else b
        brushes = [pg.mkBrush(theme.GOOD if v > 0 else theme.BAD) for v in n]
        self.now_bars.setOpts(x=x + 0.2, height=n, width=0.4, brushes=brushes, pen=None)
        self.bars.setXRange(-0.8, len(b) - 0.2, padding=0)

    def _fill_faithfulness(self, bundle) -> None:
        """A compact table: sufficiency / necessity / random baseline losses, mean and zero ablation,
        and the circuit's verdict with its reasons."""
        circuit = bundle.circuit if bundle is not None else None
        faith = (circuit.metrics.get("faithfulness") if circuit is not None else None) or {}
        muted = theme.MUTED
        if circuit is None:
            self.faith.setText(f"<b>Faithfulness</b> <span style='color:{muted}'>— no circuit for this task yet</span>")
            return
        reasons = (bundle.verdict or {}).get("reasons", [])
        self.faith.setToolTip(FAITH_TIP + ("\n\nVerdict:\n" + "\n".join(f"· {r}" for r in reasons) if reasons else ""))
        if not faith:
            self.faith.setText(f"<b>Faithfulness</b> <span style='color:{muted}'>not computed for this circuit "
                               f"(Circuits &gt; Prune a task… computes it with every circuit)</span><br>"
                               + verdict_html(bundle.verdict))
            return
        cells = []
        for key, name in FAITH_ROWS:
            row = [f"<td>{name}</td>"]
            for mode in PRUNE_MODES:
                row.append(f"<td align='right'>&nbsp;&nbsp;{_faith_cell(faith.get(mode, {}), key)}</td>")
            cells.append("<tr>" + "".join(row) + "</tr>")
        mean = faith.get("mean", {})
        full, target = mean.get("full_loss"), circuit.metrics.get("target_loss")
        n_pairs = mean.get("n_pairs") or circuit.settings.get("val_pairs")
        note = "; ".join(p for p in (f"{n_pairs} held-out pairs" if n_pairs else "",
                                     f"full model {full:.3f}" if full is not None else "",
                                     f"target ≤ {target}" if target is not None else "") if p)
        self.faith.setText(
            f"<b>Faithfulness</b> <span style='color:{muted}'>(task loss{'; ' + note if note else ''})</span>"
            f"<table cellspacing='0' cellpadding='1'><tr><td></td><td align='right' style='color:{muted}'>mean abl."
            f"</td><td align='right' style='color:{muted}'>zero abl.</td></tr>{''.join(cells)}</table>"
            + verdict_html(bundle.verdict))
        # the table and the verdict word always show; its reasons wrap below (all of them in the tooltip)
        self.faith.setMinimumHeight(int(6.6 * self.faith.fontMetrics().lineSpacing()))

    @Slot(int)
    def _on_pairs_chosen(self, index: int) -> None:
        b, n = self.state.bundle, int(self.pairs_combo.itemData(index))
        if b is not None and n != len(b.task_view.pairs):
            self.info.setText(f"loading {n} held-out pairs…")
            self.pairsRequested.emit(n)

    @Slot(object)
    def _on_history(self, history) -> None:
        self.history.clear()
        base = self._baseline_result()
        for k, h in enumerate(history, 1):
            delta = f" ({h.loss - base.loss:+.3f})" if base is not None else ""
            self.history.addItem(f"{k}. {h.action} [{h.mode}] → loss {h.loss:.3f}{delta}, acc {h.accuracy:.0%}")
        self.history.scrollToBottom()

    @Slot(int)
    def _on_pair(self, pair: int) -> None:
        self.pair_line.setPos(pair)

    def _on_bar_click(self, ev) -> None:
        b = self.state.bundle
        if b is None or ev.button() != Qt.MouseButton.LeftButton:
            return
        x = self.bars.getPlotItem().vb.mapSceneToView(ev.scenePos()).x()
        n_pairs = len(b.task_view.pairs)
        pair = int(round(x))
        if 0 <= pair < n_pairs:
            self.state.set_pair(pair)
