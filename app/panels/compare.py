"""The sparse-vs-dense comparison view (the paper's Figure 2 in small).

The sparse model is the open run; the dense run is chosen (default: the bundled ``demo-dense``
when the open run is the demo), with the tasks and the pruning settings. The job is
``engine.api.compare``, the same as ``circuit-engine compare``: both models (and, when the dense
run kept checkpoints, the dense checkpoint closest in validation loss to the sparse model) are
pruned for every task. The plot shows task loss against circuit edges along each circuit's node
ranking (log x; a point with no edges is drawn at 1), one colour per model, the chosen circuits
as dots and the target as a dashed line; the table gives edges per task and the ratios, with the
geometric means and both validation losses below.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.widgets import dialogs

from app.widgets import theme
from app.panels.job_box import JobRow, PanelContext, PanelJob, PruneSettings

JOB_NAME = "compare"
FORM_MIN_WIDTH = 280  # the run, task and settings column: "demo-dense" and "Browse…" side by side
MODEL_COLORS = {"sparse": theme.ACCENT, "dense": "#ef8354", "dense_matched": theme.GOOD}


def model_label(model: str, result: dict) -> str:
    if model == "dense_matched":
        m = result.get("matched") or {}
        return f"dense @ step {m.get('step')} (matched loss)"
    return "dense (same steps)" if model == "dense" else "sparse"


def _fmt(v, spec: str = "") -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


class CompareView(QWidget):
    """Widgets only; :class:`CompareController` runs the job and calls :meth:`show_result`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = self._build_form()
        self.plot = pg.PlotWidget(background=theme.BG)
        self.plot.setObjectName("comparePlot")
        self.plot.setLogMode(x=True, y=False)
        self.plot.setLabel("bottom", "circuit edges (log)")
        self.plot.setLabel("left", "held-out task loss")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self._show_axes(False)  # no 0-1 axes before there is a result to plot
        self.curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        self.table = QTableWidget(0, 0)
        self.table.setObjectName("compareTable")
        self.table.verticalHeader().setVisible(False)
        self.summary = QLabel("Run a comparison to see circuit sizes of both models.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        results = QWidget()
        rbox = QVBoxLayout(results)
        rbox.setContentsMargins(0, 0, 0, 0)
        rbox.addWidget(self.table, 1)
        rbox.addWidget(self.summary)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(form)
        split.addWidget(self.plot)
        split.addWidget(results)
        split.setChildrenCollapsible(False)
        split.setSizes([FORM_MIN_WIDTH, 520, 420])
        for i, stretch in enumerate((0, 3, 2)):  # extra width goes to the plot and the table
            split.setStretchFactor(i, stretch)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(split)

    def _build_form(self) -> QWidget:
        """The left column: the sparse run, the dense run (combo and Browse…), the tasks, the pruning
        settings and the job row; never narrower than :data:`FORM_MIN_WIDTH`."""
        self.sparse_label = QLabel("(no run loaded)")
        self.sparse_label.setWordWrap(True)
        self.dense_combo = QComboBox()
        self.dense_combo.setObjectName("denseRun")
        self.dense_combo.setEditable(True)
        self.dense_combo.setToolTip("the dense twin: a run folder, or demo-dense")
        self.dense_combo.setMinimumContentsLength(12)  # "demo-dense" whole, not "mo-dense"
        self.dense_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.browse_button = QPushButton("Browse…")
        dense_row = QHBoxLayout()
        dense_row.addWidget(self.dense_combo, 1)
        dense_row.addWidget(self.browse_button)
        self.task_list = QListWidget()
        self.task_list.setObjectName("compareTasks")
        self.settings = PruneSettings()
        self.job = JobRow("Compare")
        form = QWidget()
        form.setMinimumWidth(FORM_MIN_WIDTH)
        fbox = QVBoxLayout(form)
        fbox.setContentsMargins(6, 6, 6, 6)
        for part in (QLabel("Sparse run (the open run):"), self.sparse_label, QLabel("Dense run:"), dense_row,
                     QLabel("Tasks:"), self.task_list, self.settings, self.job):
            if isinstance(part, QHBoxLayout):
                fbox.addLayout(part)
            else:
                fbox.addWidget(part, 1 if part is self.task_list else 0)
        return form

    # -- inputs ----------------------------------------------------------------------------------
    def set_run(self, run_name: str, run_path: str, tasks: list[str], current: str, dense_default: str | None,
                recent: list[str]) -> None:
        """A newly opened sparse run: its name, the task list (the current task ticked), the dense
        run suggestions (the default first)."""
        self.sparse_label.setText(run_name)
        self.sparse_label.setToolTip(run_path)
        checked = set(self.chosen_tasks()) or {current}
        self.task_list.clear()
        for name in tasks:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if name in checked else Qt.CheckState.Unchecked)
            self.task_list.addItem(item)
        typed = self.dense_combo.currentText().strip()
        self.dense_combo.clear()
        options = ([dense_default] if dense_default else []) + [r for r in recent if r not in (dense_default, run_path)]
        self.dense_combo.addItems(options)
        self.dense_combo.setCurrentText(typed if typed and typed != run_path else (dense_default or ""))

    def chosen_tasks(self) -> list[str]:
        return [self.task_list.item(i).text() for i in range(self.task_list.count())
                if self.task_list.item(i).checkState() == Qt.CheckState.Checked]

    def set_checked_tasks(self, names: list[str]) -> None:
        for i in range(self.task_list.count()):
            item = self.task_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    # -- results ---------------------------------------------------------------------------------
    def show_result(self, result: dict) -> None:
        self._plot(result)
        self._fill_table(result)
        self._fill_summary(result)

    def _show_axes(self, on: bool) -> None:
        for axis in ("left", "bottom"):
            self.plot.getPlotItem().showAxis(axis, on)
        self.plot.getPlotItem().showGrid(x=on, y=on, alpha=0.2)

    def _plot(self, result: dict) -> None:
        self._show_axes(True)
        self.plot.clear()
        self.legend.clear()
        self.curves = {}
        rows = result["tasks"]
        by_key: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for pt in result.get("curves", []):
            by_key.setdefault((pt["model"], pt["task"]), []).append((max(1, pt["edges"]), pt["loss"]))
        named: set[str] = set()
        for (model, task), pts in sorted(by_key.items()):
            pts.sort()
            color = MODEL_COLORS.get(model, theme.TEXT)
            style = Qt.PenStyle.SolidLine if model == "sparse" else Qt.PenStyle.DashLine
            name = model_label(model, result) if model not in named else None
            named.add(model)
            item = self.plot.plot([p[0] for p in pts], [p[1] for p in pts], pen=pg.mkPen(color, width=2, style=style),
                                  name=name)
            self.curves[(model, task)] = item
            chosen = [(max(1, r[f"{model}_edges"]), r[f"{model}_loss"]) for r in rows
                      if r["task"] == task and r.get(f"{model}_edges") is not None]
            if chosen:
                self.plot.plot([c[0] for c in chosen], [c[1] for c in chosen], pen=None, symbol="o", symbolSize=9,
                               symbolBrush=pg.mkBrush(color), symbolPen=pg.mkPen(theme.BG))
        self.plot.addItem(pg.InfiniteLine(pos=result["target_loss"], angle=0,
                                          pen=pg.mkPen(theme.MUTED, style=Qt.PenStyle.DashLine)))
        self.plot.autoRange()

    def _columns(self, result: dict) -> list[tuple[str, str, str]]:
        cols = [("task", "task", ""), ("sparse edges", "sparse_edges", "d"), ("dense edges", "dense_edges", "d"),
                ("ratio", "dense_ratio", ".2f")]
        m = result.get("matched")
        if m is not None and not m["same_as_final"]:
            cols += [(f"dense@{m['step']} edges", "dense_matched_edges", "d"),
                     (f"ratio @{m['step']}", "dense_matched_ratio", ".2f")]
        return cols

    def _fill_table(self, result: dict) -> None:
        cols = self._columns(result)
        rows = result["tasks"]
        self.table.clear()
        self.table.setColumnCount(len(cols))
        self.table.setHorizontalHeaderLabels([c[0] for c in cols])
        self.table.setRowCount(len(rows) + 1)
        for i, r in enumerate(rows):
            errors = "\n".join(f"{k.replace('_error', '')}: {v}" for k, v in r.items() if k.endswith("_error"))
            for j, (_, key, spec) in enumerate(cols):
                cell = QTableWidgetItem(_fmt(r.get(key), spec) if key != "task" else r["task"])
                if errors:
                    cell.setToolTip(errors)
                self.table.setItem(i, j, cell)
        geo = {"task": "geometric mean", "sparse_edges": result["sparse_edges_geomean"],
               "dense_edges": result["dense_edges_geomean"], "dense_ratio": result["ratio"]}
        m = result.get("matched")
        if m is not None:
            geo.update({"dense_matched_edges": m["dense_edges_geomean"], "dense_matched_ratio": m["ratio"]})
        for j, (_, key, spec) in enumerate(cols):
            value = geo.get(key)
            text = value if key == "task" else _fmt(value, ".1f" if spec == "d" else spec)
            self.table.setItem(len(rows), j, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    def _fill_summary(self, result: dict) -> None:
        lines = [f"Same steps ({_fmt(result['sparse_steps'])} vs {_fmt(result['dense_steps'])}): ratio "
                 f"<b>{_fmt(result['ratio'], '.2f')}</b> (validation loss sparse {_fmt(result['sparse_val_loss'], '.4f')}, "
                 f"dense {_fmt(result['dense_val_loss'], '.4f')}; {result['tasks_compared']} task(s))."]
        m = result.get("matched")
        if m is not None:
            lines.append(f"Matched loss (dense step {m['step']}: {m['val_loss']:.4f} vs sparse "
                         f"{m['sparse_val_loss']:.4f}): ratio <b>{_fmt(m['ratio'], '.2f')}</b>.")
        else:
            lines.append(f"Matched loss: {result['matched_note']}.")
        lines.append(f"Target {result['target_loss']}, {result['ablation']} ablation. Curves: {result['csv']}")
        self.summary.setText("<br>".join(lines))


class CompareController(PanelJob):
    """Runs the comparison for the open run and fills the view."""

    def __init__(self, ctx: PanelContext, view: CompareView, parent: QObject | None = None) -> None:
        super().__init__(ctx, JOB_NAME, view.job, parent)
        self.view = view
        self.result: dict | None = None
        self._run: str | None = None
        view.job.startClicked.connect(self.start)
        view.browse_button.clicked.connect(self.browse)
        ctx.state.bundleChanged.connect(self.on_bundle)

    @Slot(object)
    def on_bundle(self, bundle) -> None:
        if bundle is None or str(bundle.run_path) == self._run:
            return
        self._run = str(bundle.run_path)
        default = "demo-dense" if bundle.run_name == "demo" else None
        self.view.set_run(bundle.run_name, self._run, [t.name for t in bundle.tasks], bundle.task.name, default,
                          self.ctx.recent_runs())

    @Slot()
    def browse(self) -> None:
        chosen = dialogs.ask_run_dir(self.view, self.ctx.last_open_dir())
        if chosen is not None:
            self.view.dense_combo.setCurrentText(str(chosen))

    @Slot()
    def start(self) -> None:
        b = self.loaded_bundle("Open the sparse run first (File > Open run folder…, Ctrl+Shift+O).")
        if b is None:
            return
        dense = self.view.dense_combo.currentText().strip()
        tasks = self.view.chosen_tasks()
        if not dense:
            self.ctx.report_error("Cannot compare", "Choose the dense run to compare with (a run folder or demo-dense).")
            return
        if not tasks:
            self.ctx.report_error("Cannot compare", "Tick at least one task.")
            return
        from engine import api

        cfg = self.prune_config(self.view.settings, "Cannot compare")
        if cfg is None:
            return
        sparse = str(b.run_path)
        if self.run_job(lambda: api.compare(sparse, dense, tasks, cfg)):
            self.ctx.log(f"comparing {b.run_name} with {dense} on {', '.join(tasks)}")

    def on_outcome(self, outcome) -> None:
        if outcome.status != "done":
            return
        self.result = outcome.result
        self.view.show_result(self.result)
        r = self.result
        self.row.finish(f"{r['tasks_compared']} task(s) compared; same-steps ratio {_fmt(r['ratio'], '.2f')}", True)
        self.ctx.log(f"compare: ratio {_fmt(r['ratio'], '.2f')}; curves in {r['csv']}")

