"""The Pruning panel: prune a task of the open run in the background and open the circuit.

Task: a built-in task or a task file (loaded and encoded with the run's tokenizer the moment it is
picked, so a broken file or a target that is not one token gives the engine's message in a dialog
at once); target loss, mean or zero ablation,
frozen norm, mask steps per k_coef; Start / Cancel and a progress bar that follows the k_coef sweep
and each bisection. The job is ``engine.api.prune_run``, the same as ``circuit-engine prune``, so
the circuit is saved where the CLI saves it (``<derived>/circuits/<task>/<ablation>.json``); when it
is done the window loads it into the graph. Below, the run's circuit list (every saved circuit,
double-click to open; the one on screen is selected).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QWidget)

from app.widgets import dialogs
from app.panels.job_box import JobRow, PanelContext, PanelJob, PruneSettings

ROLE = Qt.ItemDataRole.UserRole
JOB_NAME = "prune"


class PrunePanel(QWidget):
    """Widgets only; :class:`PruneController` acts on what they ask for."""

    taskFileRequested = Signal()
    circuitActivated = Signal(str)  # circuit file path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task_combo = QComboBox()
        self.task_combo.setObjectName("pruneTask")
        self.task_combo.setToolTip("the task to prune: built-in, or a task file (Task file…)")
        self.file_button = QPushButton("Task file…")
        self.file_button.setToolTip("a JSON task file (see resources/tasks/); it is checked at once")
        self.file_button.clicked.connect(self.taskFileRequested)
        row = QHBoxLayout()
        row.addWidget(self.task_combo, 1)
        row.addWidget(self.file_button)
        self.settings = PruneSettings()
        self.job = JobRow("Prune")
        self.circuit_list = QListWidget()
        self.circuit_list.setObjectName("circuitList")
        self.circuit_list.setToolTip("circuits saved for this run; double-click one to open it")
        self.circuit_list.itemActivated.connect(self._on_activated)
        self.circuit_list.itemDoubleClicked.connect(self._on_activated)
        box = QVBoxLayout(self)
        box.setContentsMargins(6, 6, 6, 6)
        box.addWidget(QLabel("Task"))
        box.addLayout(row)
        box.addWidget(self.settings)
        box.addWidget(self.job)
        box.addWidget(QLabel("Circuits of this run (double-click to open)"))
        box.addWidget(self.circuit_list, 1)

    def set_tasks(self, names: list[str], current: str | None, task_file: str | None) -> None:
        """Built-in task names plus, if given, the task file; select ``task_file`` or ``current``
        unless the user's own choice is still in the list."""
        keep = self.task_combo.currentData(ROLE)
        self.task_combo.blockSignals(True)
        self.task_combo.clear()
        for name in names:
            self.task_combo.addItem(name, f"task:{name}")
        files = [keep[5:]] if keep and keep.startswith("file:") else []
        if task_file and task_file not in files:
            files.append(task_file)
        for f in files:
            self.add_task_file(f, select=False)
        want = keep if keep and self.task_combo.findData(keep) >= 0 else \
            (f"file:{task_file}" if task_file else f"task:{current}")
        self.task_combo.setCurrentIndex(max(0, self.task_combo.findData(want)))
        self.task_combo.blockSignals(False)

    def add_task_file(self, path: str, name: str | None = None, select: bool = True) -> None:
        data = f"file:{path}"
        idx = self.task_combo.findData(data)
        if idx < 0:
            self.task_combo.addItem(f"{name or Path(path).stem} (file: {Path(path).name})", data)
            idx = self.task_combo.count() - 1
            self.task_combo.setItemData(idx, str(path), Qt.ItemDataRole.ToolTipRole)
        if select:
            self.task_combo.setCurrentIndex(idx)

    def chosen_task(self) -> tuple[str | None, str | None]:
        """(built-in name, None) or (None, task file path)."""
        data = self.task_combo.currentData(ROLE) or ""
        kind, _, value = data.partition(":")
        if not value:
            return None, None
        return (value, None) if kind == "task" else (None, value)

    def set_circuits(self, entries, current: Path | None) -> None:
        self.circuit_list.clear()
        for e in entries:
            loss = f", loss {e.circuit_loss:.3f}" if e.circuit_loss is not None else ""
            item = QListWidgetItem(f"{e.task} · {e.name}: {e.nodes} nodes, {e.edges} edges{loss}")
            item.setData(ROLE, str(e.path))
            item.setToolTip(str(e.path))
            self.circuit_list.addItem(item)
            if current is not None and Path(e.path).resolve() == Path(current).resolve():
                self.circuit_list.setCurrentItem(item)

    def circuit_paths(self) -> list[str]:
        return [self.circuit_list.item(i).data(ROLE) for i in range(self.circuit_list.count())]

    def _on_activated(self, item: QListWidgetItem) -> None:
        self.circuitActivated.emit(str(item.data(ROLE)))


class PruneController(PanelJob):
    """Starts pruning jobs from the panel and opens their circuits; keeps the lists current."""

    def __init__(self, ctx: PanelContext, panel: PrunePanel, parent: QObject | None = None) -> None:
        super().__init__(ctx, JOB_NAME, panel.job, parent)
        self.panel = panel
        self._entries: dict[str, object] = {}
        self._request: tuple[str, str | None, str | None] | None = None
        panel.job.startClicked.connect(self.start)
        panel.taskFileRequested.connect(self.pick_task_file)
        panel.circuitActivated.connect(self.open_circuit)
        ctx.state.bundleChanged.connect(self.on_bundle)

    @Slot(object)
    def on_bundle(self, bundle) -> None:
        if bundle is None:
            return
        self.panel.set_tasks([t.name for t in bundle.tasks], bundle.task.name, bundle.spec.task_file)
        self.refresh_circuits(bundle)

    def refresh_circuits(self, bundle) -> None:
        from engine import api

        entries = api.circuit_index(bundle.run_path)
        self._entries = {str(e.path): e for e in entries}
        self.panel.set_circuits(entries, bundle.circuit_path if bundle.spec.checkpoint is None else None)

    @Slot()
    def pick_task_file(self) -> None:
        path = dialogs.ask_task_file(self.panel, self.ctx.last_open_dir())
        b = self.ctx.state.bundle
        if path is None or b is None:
            return
        from engine import api

        try:
            task = api.check_task_file(b.run_path, path)
        except api.UserError as exc:
            self.ctx.report_error("Cannot use this task file", str(exc))
            return
        self.panel.add_task_file(str(path), task.name)

    @Slot()
    def start(self) -> None:
        b = self.loaded_bundle("Open a run first (File > Open run folder…, Ctrl+Shift+O), then prune one of its tasks.")
        if b is None:
            return
        from engine import api

        task, task_file = self.panel.chosen_task()
        cfg = self.prune_config(self.panel.settings, "Cannot prune")
        if cfg is None:
            return
        run = str(b.run_path)
        if self.run_job(lambda: api.prune_run(run, task, task_file, cfg)):
            self._request = (run, task, task_file)
            self.ctx.log(f"pruning {task or task_file} of {b.run_name} (target {cfg.target_loss}, "
                         f"{cfg.ablation} ablation{', frozen norm' if cfg.frozen_norm else ''})")

    def on_outcome(self, outcome) -> None:
        request, self._request = self._request, None
        if outcome.status != "done" or request is None:
            return
        circuit, path = outcome.result
        self.row.finish(f"{circuit.n_nodes} nodes, {circuit.n_edges} edges, held-out loss "
                        f"{circuit.metrics['circuit_loss']:.4f}; saved to {path}", True)
        self.ctx.log(f"prune: saved {path}")
        _, task, task_file = request
        b = self.ctx.state.bundle
        if b is not None and str(b.run_path) == request[0]:
            self.ctx.load_task(task=task, task_file=task_file, circuit=str(path))

    @Slot(str)
    def open_circuit(self, path: str) -> None:
        entry = self._entries.get(path)
        if entry is None:
            return
        if entry.task_file:
            self.ctx.load_task(task_file=entry.task_file, circuit=path)
        else:
            self.ctx.load_task(task=entry.task, circuit=path)
