"""The main window: the circuit graph in the middle, docks around it, and the wiring between the
state, the ablation worker and the views.

Docks: Runs (bundled demo, recent runs, open folder, the run's config), Tasks, Metrics, Node
inspector and Log (with progress). Layout, geometry and recent runs persist in QSettings.

Loading never blocks the window: :meth:`MainWindow.load_run` checks the folder at once (a clear
dialog for a bad one) and hands the rest to the ablation worker, which imports the engine, loads the
model, lays out the graph and computes the baselines; :meth:`_on_bundle` shows the result.
``ready`` is emitted once a loaded run's graph, metrics and (if a node is selected) inspector are
drawn; ``--screenshot`` waits for it. Every error a user can cause becomes a dialog (or, in the
screenshot mode, a message) and the window keeps running.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QEvent, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from app.window import tools as circuit_tools

from app.window import dialogs

from app.workers import gc_guard

from app.window import session as session_view

from app.panels import train as train_panel

from app.window import controller as window_controller
from app.workers.ablation import AblationService
from engine.scene.bundle import SetupSpec
from app.graph.view import CircuitView
from app.panels.inspector import InspectorView
from app.workers.jobs import JobController
from app.panels.metrics import MetricsView
from app.panels.docks import LogPanel, RunBrowser, TaskPicker
from app.model.state import AppState
from app.window.actions import build_actions

WINDOW_TITLE = "Circuit Inspector"
SETTINGS_ORG = "CircuitInspector"
SETTINGS_APP = "CircuitInspector"
CONFIG_FILE = "config.json"
PLACEHOLDER_TEXT = "No run loaded. File > Open run folder... (Ctrl+Shift+O) or pick the demo in the Runs dock."
BUNDLED = [("demo", "demo (sparse, bundled)"), ("demo-dense", "demo-dense (dense twin, bundled)")]
MAX_RECENT = 8
LOG_ENV = "CIRCUIT_INSPECTOR_LOG"  # also append every Log dock line to this file

ErrorHandler = Callable[[QWidget | None, str, str], None]

#: Windows not shut down yet. A window freed by Python's GC without being closed would skip
#: closeEvent and leave its worker threads running, so an open window is never garbage.
_LIVE_WINDOWS: set["MainWindow"] = set()


class RunDirError(ValueError):
    """A folder that cannot be opened as a run; the message says why and what to do."""


def app_settings() -> QSettings:
    """The app's persistent settings (tests redirect them with ``QSettings.setPath``)."""
    return QSettings(SETTINGS_ORG, SETTINGS_APP)


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """Read ``run_dir/config.json`` as a JSON object; raise :class:`RunDirError` if that fails."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunDirError(f"The run folder {run_dir} does not exist.")
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is a file, not a run folder. Choose the folder that holds {CONFIG_FILE}.")
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise RunDirError(f"{run_dir} has no {CONFIG_FILE}, so it is not a run folder. "
                          "Choose a folder created by training (File > Train a model…, or circuit-engine train).")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"Cannot read {config_path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{config_path} is not valid JSON (line {exc.lineno}, column "
                          f"{exc.colno}: {exc.msg}).") from exc
    if not isinstance(config, dict):
        raise RunDirError(f"{config_path} must hold a JSON object, not a {type(config).__name__}.")
    return config


#: What cancelling each kind of background job leaves behind (said when closing the window during it).
_CANCEL_KEEPS = {
    "training": "A cancelled training keeps a checkpoint of its last completed step; Resume continues it.",
    "prune": "The circuit being pruned is not saved; circuits saved before are kept.",
    "formation": "The circuits of the checkpoints already pruned are kept; the others are not pruned.",
    "compare": "The comparison stops; circuits it already pruned are kept, no summary is written.",
    "record store": "The partial activation store is removed; an earlier complete store is kept.",
}


class MainWindow(QMainWindow):
    """The Circuit Inspector main window.

    ``run_dir``: a run folder or alias (``demo``) to open once the window has painted.
    ``persist_settings``: restore geometry/docks/recent runs now and save them on close; off for
    screenshots. ``error_handler(parent, title, text)``: for errors the user caused (default:
    :func:`app.window.dialogs.show_error`, looked up at call time). ``session``: a
    :class:`engine.scene.session.Session` applied when its run is loaded. ``deterministic``: leave timings
    out of what is drawn (screenshots).
    """

    ready = Signal()
    firstPaint = Signal()

    def __init__(self, run_dir: Path | str | None = None, *, persist_settings: bool = True,
                 error_handler: ErrorHandler | None = None, session=None, deterministic: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        gc_guard.install()  # cyclic GC in the GUI thread only (see app.workers.gc_guard)
        self._alive = True
        _LIVE_WINDOWS.add(self)
        self.setObjectName("MainWindow")
        self.setWindowTitle(WINDOW_TITLE)
        self.run_dir: Path | None = None
        self.config: dict[str, Any] | None = None
        self._persist = persist_settings
        self._error_handler = error_handler
        self._deterministic = deterministic
        self._session = session
        self._painted = False
        self._pending_spec: SetupSpec | None = None
        self._default_load = False
        self._ready_sent = False
        self.store = None
        self.state = AppState(self)
        self.service = AblationService(self)
        self.jobs = JobController(self)
        self.view = CircuitView(self.state)
        self.setCentralWidget(self.view)
        self.runs = RunBrowser()
        self.tasks = TaskPicker()
        self.metrics = MetricsView(self.state)
        self.inspector = InspectorView(self.state)
        self.log_panel = LogPanel()
        self.run_panel = self.runs  # the config tree lives in the Runs dock
        if os.environ.get(LOG_ENV):  # scripts and the real-window test read what the Log dock says
            self.log_panel.mirror = Path(os.environ[LOG_ENV])
        self._build_docks()
        build_actions(self)
        for dock in (self.runs_dock, self.tasks_dock, self.metrics_dock, self.inspector_dock, self.log_dock):
            self.view_menu.addAction(dock.toggleViewAction())
        train_panel.install(self)  # the Training dock (hidden until File > Train a model...)
        window_controller.connect(self)
        circuit_tools.install(self)  # Pruning, Formation and Compare docks, the Circuits menu
        self.statusBar().showMessage("No run loaded. File > Open run folder... (Ctrl+Shift+O) opens one.")
        self.resize(1400, 900)
        self._default_dock_sizes()
        self.refresh_runs()
        if self._persist:
            self._restore_settings()
        if run_dir is not None:
            self.load_run(run_dir)

    # -- layout --------------------------------------------------------------------------------
    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState() needs object names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.runs_dock = self._dock("Runs", "runDock", self.runs, left)
        self.tasks_dock = self._dock("Tasks", "taskDock", self.tasks, left)
        self.metrics_dock = self._dock("Metrics", "metricsDock", self.metrics, right)
        self.inspector_dock = self._dock("Node inspector", "inspectorDock", self.inspector, right)
        self.log_dock = self._dock("Log", "logDock", self.log_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.setCorner(Qt.Corner.BottomLeftCorner, left)
        self.setCorner(Qt.Corner.BottomRightCorner, right)

    def _default_dock_sizes(self) -> None:
        """The first-start layout (once every dock exists: later docks would squeeze earlier ones)."""
        self.resizeDocks([self.runs_dock, self.metrics_dock], [260, 440], Qt.Orientation.Horizontal)
        self.resizeDocks([self.runs_dock, self.tasks_dock], [420, 380], Qt.Orientation.Vertical)
        self.resizeDocks([self.metrics_dock, self.inspector_dock], [430, 370], Qt.Orientation.Vertical)
        self.resizeDocks([self.log_dock], [105], Qt.Orientation.Vertical)

    # -- loading -------------------------------------------------------------------------------
    def load_run(self, run_dir: Path | str, task: str | None = None, task_file: str | None = None,
                 circuit: str | None = None) -> bool:
        """Open a run folder (or ``demo``/``demo-dense``), optionally with a circuit file. A bad folder
        is reported at once and the current run stays; otherwise the run loads in the background.
        Returns whether it started."""
        text = str(run_dir)
        if text not in dict(BUNDLED):
            path = Path(run_dir).expanduser()
            try:
                config = read_run_config(path)
            except RunDirError as exc:
                self.statusBar().showMessage(f"Could not open {path}")
                session, self._session = self._session, None  # it must not apply to a later run
                self.report_error(*(("Cannot open run", str(exc)) if session is None
                                    else session_view.missing_run_message(session, str(exc))))
                return False
            self.run_dir, self.config = path.resolve(), config
            self.runs.show_config(self.run_dir, config)
            text = str(self.run_dir)
        self._start_setup(SetupSpec(run=text, task=task, task_file=task_file, circuit=circuit))
        return True

    def _start_setup(self, spec: SetupSpec) -> None:
        """Hand a setup to the worker; while a shown window has not painted yet, wait for its first
        paint (the worker's engine import would otherwise compete with it)."""
        self._ready_sent = False
        if self.isVisible() and not self._painted:
            self._pending_spec = spec
        else:
            self.service.load(spec)
        self.log_panel.set_progress(f"loading {Path(spec.run).name}…", None, False)
        self.statusBar().showMessage(f"Loading {spec.run}…")

    def open_default(self, run: str = "demo") -> bool:
        """Open the bundled demo at start. If it is not installed the window stays empty (with a hint
        in the log), no dialog; ``ready`` is emitted either way."""
        self._default_load = True
        self._start_setup(SetupSpec(run=run, task=self._session.task if self._session else None,
                                    task_file=self._session.task_file if self._session else None))
        return True

    def load_task(self, task: str | None = None, task_file: str | None = None, circuit: str | None = None,
                  checkpoint: int | None = None, layout_nodes: tuple[str, ...] | None = None) -> None:
        """Show another task of the current run; ``circuit``: a circuit file instead of the task's
        default one; ``checkpoint``: the run's weights at that training step (circuit formation);
        ``layout_nodes``: draw the circuit in the frame of these nodes (formation keeps nodes in place)."""
        b = self.state.bundle
        if b is None:
            self.report_error("No run loaded", "Open a run first (File > Open run folder…, Ctrl+Shift+O), then pick a task.")
            return
        self._start_setup(SetupSpec(run=str(b.run_path), task=task, task_file=task_file, circuit=circuit,
                                    checkpoint=checkpoint, layout_nodes=layout_nodes))

    def report_error(self, title: str, text: str) -> None:
        handler = self._error_handler or dialogs.show_error
        handler(self, title, text)

    # -- settings ------------------------------------------------------------------------------
    def recent_runs(self) -> list[str]:
        if not self._persist:
            return []
        value = app_settings().value("recent_runs", [])
        return [str(v) for v in (value if isinstance(value, list) else [value] if value else [])]

    def remember_run(self, path: Path) -> None:
        if not self._persist or path.parent.parent.name == "resources":
            return
        recent = [str(path)] + [r for r in self.recent_runs() if r != str(path)]
        settings = app_settings()
        settings.setValue("recent_runs", recent[:MAX_RECENT])
        settings.setValue("last_open_dir", str(path.parent))

    def refresh_runs(self) -> None:
        current = str(self.state.bundle.run_path) if self.state.bundle is not None else None
        self.runs.set_runs(BUNDLED, self.recent_runs(), current)

    def _last_open_dir(self) -> str:
        value = app_settings().value("last_open_dir", "") if self._persist else ""
        return str(value) if value else str(Path.home())

    def _restore_settings(self) -> None:
        settings = app_settings()
        geometry = settings.value("main_window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            screen = self.screen()
            if screen is not None:
                avail = screen.availableGeometry()
                self.resize(min(self.width(), int(avail.width() * 0.9)), min(self.height(), int(avail.height() * 0.9)))
        state = settings.value("main_window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)

    def save_settings(self) -> None:
        settings = app_settings()
        settings.setValue("main_window/geometry", self.saveGeometry())
        settings.setValue("main_window/state", self.saveState())
        settings.sync()

    # -- first paint and shutdown --------------------------------------------------------------
    def event(self, ev: QEvent) -> bool:  # noqa: N802 (Qt naming)
        result = super().event(ev)
        if ev.type() == QEvent.Type.UpdateRequest and not getattr(self, "_painted", True):
            self._painted = True
            QTimer.singleShot(0, self, self._after_first_paint)
        return result

    @Slot()
    def _after_first_paint(self) -> None:
        self.firstPaint.emit()
        if self._pending_spec is not None:
            spec, self._pending_spec = self._pending_spec, None
            self.service.load(spec)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        job = self.jobs.running
        if job is not None and self._alive and not dialogs.ask_yes_no(
                self, "Quit while a job runs?", f"The {job} job is still running. Cancel it and quit?\n\n"
                + _CANCEL_KEEPS.get(job, "What it has not finished yet is not saved.")):
            event.ignore()
            return
        if self._persist:
            self.save_settings()
        self.hide()  # gone at once, even while a job finishes its current step
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the workers and close the store (idempotent)."""
        if not self._alive:
            return
        self._alive = False
        _LIVE_WINDOWS.discard(self)
        try:  # every step runs even if one fails: a thread left running would abort the process
            self.service.shutdown()
        finally:
            try:
                self.view.shutdown()
            finally:
                try:
                    self.jobs.shutdown()
                finally:
                    if self.store is not None:
                        self.store.close()
                        self.store = None
                    gc_guard.uninstall()

    # -- small slots used by the actions -------------------------------------------------------
    @Slot()
    def open_run_dialog(self) -> None:
        start = str(self.run_dir.parent) if self.run_dir else self._last_open_dir()
        chosen = dialogs.ask_run_dir(self, start)
        if chosen is not None:
            self.load_run(chosen)

    @Slot()
    def show_train_panel(self) -> None:
        train_panel.show(self)

    @Slot()
    def focus_find(self) -> None:
        self.find_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.find_edit.selectAll()

    @Slot()
    def toggle_selected(self) -> None:
        if self.state.selected is None:
            self.statusBar().showMessage("Select a node first (click it, or press / to find one).")
            return
        self.state.toggle_nodes([self.state.selected])

    @Slot()
    def switch_view(self) -> None:
        self.state.set_view("model" if self.state.view == "circuit" else "circuit")

    def open_session_dialog(self) -> None:
        session_view.open_session_dialog(self)

    def save_session_dialog(self) -> None:
        session_view.save_session_dialog(self)

    def export_dialog(self) -> None:
        from app.export import window as export

        export.export_dialog(self)

    def open_task_file_dialog(self) -> None:
        window_controller.open_task_file_dialog(self)

    def record_store(self) -> None:
        window_controller.record_store(self)

    def find_node(self) -> None:
        window_controller.find_node(self)

    def on_threshold_slider(self, value: int) -> None:
        window_controller.on_threshold_slider(self, value)

    def on_mode_combo(self, mode: str) -> None:
        if mode and self.state.bundle is not None:
            window_controller.set_mode(self, mode)

    def on_baseline_combo(self, baseline: str) -> None:
        if baseline and self.state.bundle is not None:
            self.state.set_baseline(baseline)
