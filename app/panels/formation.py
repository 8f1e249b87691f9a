"""The Formation panel: watch a circuit form over training.

"Prune at every checkpoint" runs ``engine.api.formation`` (the same as ``circuit-engine formation``)
for the open run and task in the background; for a run with fewer than two checkpoints the button
is off and its tooltip gives the engine's reason. The slider then steps through the checkpoints (its label
names the training step, the validation loss, the full model's task loss and the circuit's size).
Each position loads the run *at that checkpoint* with that checkpoint's circuit, so the graph's
weights, the means and the live ablation all belong to that step; a step where the task had not
formed yet (the full model above the target) shows the whole model at that step. "Final model"
goes back to the run's latest weights. A saved formation of the task is picked up when the run or
task is opened.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from app.widgets import theme
from app.panels.job_box import JobRow, PanelContext, PanelJob, PruneSettings

JOB_NAME = "formation"


def _num(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def step_text(row: dict) -> str:
    """One line describing a formation row."""
    size = (f"{row['nodes']} nodes, {row['edges']} edges (loss {row['circuit_loss']:.3f})"
            if row["status"] == "circuit" else row["status"])
    return (f"step {row['step']}: val loss {_num(row['val_loss'], '.3f')}, full model task loss "
            f"{row['full_loss']:.3f}; {size}")


class FormationPanel(QWidget):
    """Widgets only; :class:`FormationController` drives them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task_label = QLabel("Task: (no run loaded)")
        self.task_label.setWordWrap(True)
        self.checkpoints_label = QLabel("")
        self.checkpoints_label.setWordWrap(True)
        self.checkpoints_label.setStyleSheet(f"color: {theme.MUTED};")
        self.settings = PruneSettings()
        self.job = JobRow("Prune at every checkpoint")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("formationSlider")
        self.slider.setEnabled(False)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setPageStep(1)
        self.first_label = QLabel("")
        self.last_label = QLabel("")
        ends = QHBoxLayout()
        ends.addWidget(self.first_label)
        ends.addStretch(1)
        ends.addWidget(self.last_label)
        self.step_label = QLabel("No formation yet for this task.")
        self.step_label.setObjectName("formationStep")
        self.step_label.setWordWrap(True)
        self.final_button = QPushButton("Final model")
        self.final_button.setToolTip("show the run's latest weights and the task's circuit again")
        self.final_button.setEnabled(False)
        box = QVBoxLayout(self)
        box.setContentsMargins(6, 6, 6, 6)
        box.addWidget(self.task_label)
        box.addWidget(self.checkpoints_label)
        box.addWidget(self.settings)
        box.addWidget(self.job)
        box.addWidget(QLabel("Checkpoint"))
        box.addWidget(self.slider)
        box.addLayout(ends)
        box.addWidget(self.step_label)
        box.addWidget(self.final_button)
        box.addStretch(1)

    def set_rows(self, rows: list[dict], index: int | None) -> None:
        """Formation rows (oldest first); select ``index`` without emitting valueChanged."""
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(rows) - 1))
        self.slider.setEnabled(len(rows) > 1)
        if index is not None:
            self.slider.setValue(index)
        self.slider.blockSignals(False)
        self.first_label.setText(f"step {rows[0]['step']}" if rows else "")
        self.last_label.setText(f"step {rows[-1]['step']}" if rows else "")
        if not rows:
            self.step_label.setText("No formation yet for this task.")


class FormationController(PanelJob):
    """Runs formation jobs and turns slider positions into checkpoint loads."""

    def __init__(self, ctx: PanelContext, panel: FormationPanel, parent: QObject | None = None) -> None:
        super().__init__(ctx, JOB_NAME, panel.job, parent)
        self.panel = panel
        self.rows: list[dict] = []
        self.summary: dict | None = None
        self._frame: tuple[str, ...] | None = None  # every node of the summary's circuits (fixed layout)
        self._key: tuple[str, str] | None = None  # (run, task) the rows belong to
        panel.job.startClicked.connect(self.start)
        panel.slider.valueChanged.connect(self.show_step)
        panel.final_button.clicked.connect(self.show_final)
        ctx.state.bundleChanged.connect(self.on_bundle)

    @Slot(object)
    def on_bundle(self, bundle) -> None:
        if bundle is None:
            return
        from engine import api

        key = (str(bundle.run_path), bundle.task.name)
        self.panel.task_label.setText(f"Task: <b>{bundle.task.name}</b> (the task on screen)")
        self.panel.final_button.setEnabled(bundle.spec.checkpoint is not None)
        if key != self._key:
            self._key = key
            n = len(api.run_checkpoints(bundle.run_path))
            self.panel.checkpoints_label.setText(f"{bundle.run_name} has {n} checkpoint{'s' if n != 1 else ''}.")
            self._allow_start(bundle)
            try:
                self.summary = api.load_formation(bundle.run_path, bundle.task.name)
            except api.UserError as exc:
                self.summary = None
                self.panel.step_label.setText(str(exc))
            self.rows = list(self.summary["steps"]) if self.summary else []
            self._frame = None
            self.panel.set_rows(self.rows, len(self.rows) - 1 if self.rows else None)
            if self.rows:
                self.panel.step_label.setText(f"Saved formation: {len(self.rows)} checkpoints. Move the slider.")
        step = bundle.spec.checkpoint
        if step is not None:
            row = next((r for r in self.rows if r["step"] == step), None)
            if row is not None:
                self.panel.step_label.setText(step_text(row))
            if bundle.circuit is not None:
                self.ctx.state.set_view("circuit")  # a step without a circuit switched to the whole model

    def _allow_start(self, bundle) -> None:
        """Start only for a run with checkpoints to prune; the tooltip says why not."""
        from engine import api

        try:
            api.formation_checkpoints(bundle.run_path)
        except api.UserError as exc:
            self.row.set_allowed(False, f"Not for this run: {exc}")
        else:
            self.row.set_allowed(True, "Prune the task on screen at every checkpoint of the run")

    @Slot()
    def start(self) -> None:
        b = self.loaded_bundle("Open a run with checkpoints first (File > Open run folder…, Ctrl+Shift+O).")
        if b is None:
            return
        from engine import api

        try:
            api.formation_checkpoints(b.run_path)
        except api.UserError as exc:
            self.ctx.report_error("Cannot run circuit formation", str(exc))
            return
        cfg = self.prune_config(self.panel.settings, "Cannot run circuit formation")
        if cfg is None:
            return
        run, task_file = str(b.run_path), b.spec.task_file
        task = None if task_file else b.task.name
        if self.run_job(lambda: api.formation(run, task, task_file, cfg)):
            self.ctx.log(f"circuit formation: pruning {b.task.name} at every checkpoint of {b.run_name}")

    def on_outcome(self, outcome) -> None:
        if outcome.status != "done":
            return
        self.summary = outcome.result
        self.rows = list(self.summary["steps"])
        self._frame = None
        b = self.ctx.state.bundle
        self._key = (str(b.run_path), b.task.name) if b is not None else None
        formed = [i for i, r in enumerate(self.rows) if r["status"] == "circuit"]
        self.row.finish(f"{len(formed)} of {len(self.rows)} checkpoints have a circuit; saved in "
                        f"{self.summary['folder']}", True)
        self.ctx.log(f"formation: {len(formed)} circuits in {self.summary['folder']}")
        self.panel.set_rows(self.rows, None)
        if self.rows:
            target = formed[-1] if formed else len(self.rows) - 1
            if self.panel.slider.value() == target:
                self.show_step(target)
            else:
                self.panel.slider.setValue(target)  # valueChanged -> show_step

    @Slot(int)
    def show_step(self, index: int) -> None:
        """Load checkpoint ``index`` of the rows with its circuit (the newest request wins)."""
        if not 0 <= index < len(self.rows) or self.summary is None:
            return
        from engine import api

        row = self.rows[index]
        self.panel.step_label.setText(f"loading {step_text(row)}…")
        if self._frame is None:  # one layout for all checkpoints: shared nodes stay put while scrubbing
            self._frame = api.formation_nodes(self.summary)
        task_file = self.summary.get("task_file")
        self.ctx.load_task(task=None if task_file else self.summary["task"], task_file=task_file,
                           circuit=row["circuit"], checkpoint=row["step"], layout_nodes=self._frame)

    @Slot()
    def show_final(self) -> None:
        b = self.ctx.state.bundle
        if b is not None:
            self.ctx.load_task(task=None if b.spec.task_file else b.task.name, task_file=b.spec.task_file)
