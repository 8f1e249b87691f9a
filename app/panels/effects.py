"""The Node effects dock (issue 18, item 5; ``docs/architecture.md``, "Node effects"): which nodes matter
most for the loaded task.

Rank runs ``engine.api.rank_job`` as the window's background job (:class:`app.panels.job_box.PanelJob`:
one job at a time, Cancel stops it between forwards), with the window's task, held-out pairs and
ablation mode: in the circuit view, every circuit node ablated alone on top of the circuit alone
(exact, what a click shows); in the whole-model view, or for a task without a circuit, an
attribution-patching estimate for every node, the 50 largest checked exactly (the summary gives their
Spearman rank correlation). The job builds its own Ablator in its own thread, so the click path never
waits for it (both share the CPU while it runs; nothing runs while it is idle).

The table sorts by any column; a click on a row selects its node and centres the graph on it. "colour
nodes by effect" puts the change of loss (or the estimate) on the graph as a signed colour overlay
(``AppState.set_node_heat``, source ``effects``); it is the state's ``overlay`` ("effects"), which
sessions keep, and turning it on without a ranking ranks (the window passes in the graph's
``NodeHeat``: panels do not import the graph). Another run, task or circuit clears the
table and the overlay (and, with the overlay on, ranks again); another ablation mode marks them
stale until ranked again. Knows nothing about the engine's computations; imports it in the job.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QHeaderView, QLabel, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from app.panels.job_box import JobRow, PanelContext, PanelJob
from app.widgets import theme

JOB_NAME = "rank"
OVERLAY = "effects"  # AppState.overlay and the sessions' "overlay" key
RANK_MODES = ("mean", "zero")  # one value per node (engine.mechanism.rank.RANK_MODES)
MAX_ROWS = 500  # whole model: the rows with the largest |estimate| shown (the overlay has every node)
COLUMNS = ("#", "node", "label", "estimate", "Δ loss", "Δ acc (pp)", "|Δ logit diff|", "no effect")
NUMERIC = {0: "rank", 3: "estimate", 4: "delta_loss", 5: "delta_accuracy", 6: "mean_abs_dlogit_diff"}
SORT_ROLE = Qt.ItemDataRole.UserRole


class _Number(QTableWidgetItem):
    """A cell shown as text and sorted by its number (missing numbers last)."""

    def __init__(self, value, spec: str) -> None:
        ok = value is not None and math.isfinite(value)
        super().__init__(format(value, spec) if ok else "–")
        self.setData(SORT_ROLE, float(value) if ok else math.inf)
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:  # noqa: D105
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        return a < b if a is not None and b is not None else super().__lt__(other)


def summary_text(r: dict, stale: str = "") -> str:
    """What the table holds, qualified: exact or estimated, over how many pairs, which ablation."""
    pairs = f"{r['pairs']} held-out pairs, {r['mode']} ablation"
    base = f"loss {r['loss_baseline']:.4f}, accuracy {100 * r['accuracy_baseline']:.1f}%"
    if r["kind"] == "exact":
        text = (f"<b>Exact</b>: each of the {r['n_nodes']} circuit nodes ablated alone on top of the circuit "
                f"alone ({base}; rest of the model: {r['circuit_mode']} ablation), {pairs}. "
                f"{r['n_no_effect']} with no effect. Sorted by |Δ loss|.")
    else:
        rho = r.get(f"spearman_top{r['n_checked']}")
        text = (f"<b>Estimate</b> (attribution patching) for all {r['n_nodes']} nodes of the full model ({base}), "
                f"{pairs}; the top {r['n_checked']} checked exactly (Δ columns), Spearman rank correlation "
                f"of estimate and exact Δ loss {'–' if rho is None else f'{rho:.2f}'}. Sorted by |estimate|.")
    return (f"<span style='color:{theme.BAD}'><b>Stale</b>: {stale}</span><br>" if stale else "") + text


class EffectsPanel(QWidget):
    """Widgets only; :class:`EffectsController` runs the ranking and calls :meth:`show_result`."""

    nodeClicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("")
        self.summary.setObjectName("effectsSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.job = JobRow("Rank nodes")
        self.overlay = QCheckBox("colour nodes by effect")
        self.overlay.setObjectName("effectsOverlay")
        self.overlay.setToolTip("colour the graph's nodes by the change of task loss when each is ablated alone "
                                "(coral: the loss goes up, blue: down); kept in sessions")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("effectsTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.cellClicked.connect(self._on_cell)
        box = QVBoxLayout(self)
        box.setContentsMargins(6, 6, 6, 6)
        box.addWidget(self.job)
        box.addWidget(self.overlay)
        box.addWidget(self.summary)
        box.addWidget(self.table, 1)
        self.clear("Rank the nodes of the loaded task: the circuit's exactly, or the whole model's by estimate.")

    def clear(self, text: str) -> None:
        self.table.setSortingEnabled(False)
        self.table.setRowCount(0)
        self.summary.setText(text)
        self.table.setStyleSheet("")

    def show_result(self, result: dict, labels: dict) -> None:
        """Fill the table (engine order: by |effect|), the summary, and the labels."""
        exact = result["kind"] == "exact"
        rows = result["rows"][:MAX_ROWS]
        t = self.table
        t.setSortingEnabled(False)
        t.setUpdatesEnabled(False)
        t.setRowCount(len(rows))
        for i, row in enumerate(rows):
            cells = [_Number(i + 1, "d"), QTableWidgetItem(row["node"]), QTableWidgetItem(labels.get(row["node"], "")),
                     _Number(row.get("estimate"), "+.4f"), _Number(row.get("delta_loss"), "+.4f"),
                     _Number(row.get("delta_accuracy"), "+.1f"), _Number(row.get("mean_abs_dlogit_diff"), ".4f"),
                     QTableWidgetItem("" if "no_effect" not in row else ("yes" if row["no_effect"] else "no"))]
            for j, cell in enumerate(cells):
                t.setItem(i, j, cell)
        t.setColumnHidden(3, exact)
        t.setUpdatesEnabled(True)
        t.setSortingEnabled(True)
        t.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        shown = "" if len(rows) == len(result["rows"]) else f" The table shows the first {len(rows)}."
        self.summary.setText(summary_text(result) + shown)
        t.setStyleSheet("")

    def set_stale(self, result: dict, why: str) -> None:
        """Keep the rows but say they were made for other settings (greyed)."""
        self.summary.setText(summary_text(result, why))
        self.table.setStyleSheet(f"QTableWidget {{ color: {theme.MUTED}; }}")

    def set_labels(self, labels: dict) -> None:
        for i in range(self.table.rowCount()):
            self.table.item(i, 2).setText(labels.get(self.table.item(i, 1).text(), ""))

    def nodes(self) -> list[str]:
        """The node column, top to bottom as shown (tests)."""
        return [self.table.item(i, 1).text() for i in range(self.table.rowCount())]

    @Slot(int, int)
    def _on_cell(self, row: int, _column: int) -> None:
        self.nodeClicked.emit(self.table.item(row, 1).text())


class EffectsController(PanelJob):
    """Runs the ranking for the window's task and mode, fills the panel, keeps the overlay."""

    def __init__(self, ctx: PanelContext, panel: EffectsPanel, heat: Callable[..., Any],
                 parent: QObject | None = None) -> None:
        super().__init__(ctx, JOB_NAME, panel.job, parent)
        self.panel = panel
        self._heat = heat  # NodeHeat(title, values, signed=, source=): app.graph.node_style's, passed in
        self.result: dict | None = None
        self._started: tuple | None = None  # (state serial, mode, whole model) of the running job
        self._made: tuple | None = None  # (mode, whole model) the result was made with
        self._stale = False  # the table is marked stale (another ablation mode)
        s = ctx.state
        panel.job.startClicked.connect(self.start)
        panel.nodeClicked.connect(self.show_node)
        panel.overlay.toggled.connect(self._on_overlay_box)
        s.bundleChanged.connect(self._on_bundle)
        s.modeChanged.connect(self._on_setting)
        s.viewChanged.connect(self._on_setting)
        s.labelsChanged.connect(panel.set_labels)
        s.overlayChanged.connect(self._on_overlay)
        self._refresh()

    # -- starting ---------------------------------------------------------------------------------
    def _whole_model(self) -> bool:
        b = self.ctx.state.bundle
        return b is None or b.circuit is None or self.ctx.state.view == "model"

    @Slot()
    def start(self) -> None:
        s = self.ctx.state
        b = self.loaded_bundle("Open a run first (File > Open run folder…, Ctrl+Shift+O), then rank its nodes.")
        if b is None:
            return
        if s.mode not in RANK_MODES:
            self.ctx.report_error("Cannot rank nodes", f"Node effects use mean or zero ablation (one value per "
                                  f"node); the toolbar says {s.mode}. Choose mean or zero there and rank again.")
            return
        whole = self._whole_model()
        spec = dict(run_dir=str(b.run_path), task=None if b.spec.task_file else b.task.name,
                    task_file=b.spec.task_file, circuit=None if whole else str(b.circuit_path), mode=s.mode,
                    n_pairs=b.spec.n_pairs, whole_model=whole, checkpoint=b.spec.checkpoint)

        def job():
            from engine import api

            return api.rank_job(**spec)

        if self.run_job(job):
            self._started = (s.serial, s.mode, whole)
            what = "every node of the whole model (estimate)" if whole else f"the {b.circuit.n_nodes} circuit nodes"
            self.ctx.log(f"ranking {what} of {b.task.name}, {s.mode} ablation, {b.spec.n_pairs} held-out pairs")

    def _auto_start(self) -> None:
        """The overlay is on and there is nothing to show: rank, unless another job runs."""
        if self.result is not None or self.ctx.state.bundle is None or self.ctx.jobs.running is not None:
            if self.ctx.jobs.running not in (None, JOB_NAME):
                self.row.status.setText(f"the colours wait: {self.ctx.jobs.running} is running; press Rank when it ends")
            return
        if self.ctx.state.mode in RANK_MODES:
            self.start()

    def on_outcome(self, outcome) -> None:
        started, self._started = self._started, None
        if outcome.status != "done":
            return
        s = self.ctx.state
        if started is None or started[0] != s.serial:
            self.row.finish("the run, task or circuit changed while ranking: rank again", False)
            return
        self.result, self._made, self._stale = outcome.result, started[1:], False
        self.panel.show_result(self.result, s.labels)
        t = self.result["timing_s"].get("exact", self.result["timing_s"].get("estimate", 0.0))
        self.row.finish(f"ranked {self.result['n_nodes']} nodes ({t:.2f} s)", True)
        self._refresh()

    # -- following the state --------------------------------------------------------------------
    @Slot(object)
    def _on_bundle(self, bundle) -> None:
        self.result = self._made = None
        self._stale = False
        self.panel.clear("Rank the nodes of the loaded task: the circuit's exactly, or the whole model's by estimate.")
        self._refresh()
        if self.ctx.state.overlay == OVERLAY and bundle is not None:
            self._auto_start()

    @Slot(str)
    def _on_setting(self, _value: str) -> None:
        self._refresh()

    def _refresh(self) -> None:
        """Start's label and whether it can be used; the stale mark; the overlay."""
        s = self.ctx.state
        whole = self._whole_model()
        self.row.start_button.setText("Rank all nodes (estimate)" if whole else "Rank circuit nodes (exact)")
        self.row.set_allowed(s.bundle is not None and s.mode in RANK_MODES,
                             "" if s.mode in RANK_MODES else f"node effects need mean or zero ablation, not {s.mode}")
        stale = self.result is not None and self._made is not None and self._made[0] != s.mode
        if stale:
            self.panel.set_stale(self.result, f"ranked with {self._made[0]} ablation; the toolbar now says "
                                              f"{s.mode}. Rank again.")
        elif self._stale and self.result is not None:
            self.panel.show_result(self.result, s.labels)
        self._stale = stale
        self._show_overlay()

    def _show_overlay(self) -> None:
        s = self.ctx.state
        mine = s.node_heat is not None and getattr(s.node_heat, "source", "") == OVERLAY
        if s.overlay != OVERLAY or self.result is None:
            if mine:
                s.set_node_heat(None)
            return
        r, exact = self.result, self.result["kind"] == "exact"
        key = "delta_loss" if exact else "estimate"
        stale = "; stale" if self._made is not None and self._made[0] != s.mode else ""
        title = (f"{'Δ loss, ablated alone' if exact else 'estimated Δ loss'} ({r['mode']}, {r['pairs']} pairs{stale})")
        values = {row["node"]: float(row[key]) for row in r["rows"] if row.get(key) is not None}
        if mine and s.node_heat.title == title and s.node_heat.values == values:
            return
        s.set_node_heat(self._heat(title, values, signed=True, source=OVERLAY))

    @Slot(bool)
    def _on_overlay_box(self, on: bool) -> None:
        self.ctx.state.set_overlay(OVERLAY if on else None)

    @Slot(object)
    def _on_overlay(self, overlay) -> None:
        on = overlay == OVERLAY
        if self.panel.overlay.isChecked() != on:
            self.panel.overlay.blockSignals(True)
            self.panel.overlay.setChecked(on)
            self.panel.overlay.blockSignals(False)
        self._show_overlay()
        if on:
            self._auto_start()

    @Slot(str)
    def show_node(self, node: str) -> None:
        """A row was clicked: select its node and centre the graph on it (in the whole model if the
        circuit view does not have it)."""
        s = self.ctx.state
        if s.graph is not None and node not in s.graph.index and s.bundle is not None:
            s.set_view("model")
        s.select(node)
        if self.ctx.center_on is not None:
            self.ctx.center_on(node)
