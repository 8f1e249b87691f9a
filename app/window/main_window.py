"""The main window: the circuit graph in the middle, docks around it, menus and the toolbar.

Docks: Runs (bundled demo, recent runs, open folder, the run's config), Tasks, Metrics, Node
inspector and Log (with progress), and, from :mod:`app.panels.train` and :mod:`app.window.tools`,
Training, Pruning, Formation, Compare and Node effects. Layout, geometry and recent runs persist in QSettings;
View > Reset layout goes back to the first-start layout.

:class:`MainWindow` owns every part (each created in its ``__init__``) and wires them: the parts get what they
need passed in, never the window. The state (:class:`app.model.state.AppState`) is the single source
of truth; the ablation service follows it and puts results back into it; the views, the toolbar, the
menu actions and the :class:`app.window.controller.WindowController` subscribe to it
(``docs/architecture.md``, "Layers" and "The click path").

Loading never blocks the window: :meth:`MainWindow.load_run` checks the folder at once (a clear
dialog for a bad one) and hands the rest to the ablation worker, which imports the engine, loads the
model, lays out the graph and computes the baselines (:mod:`app.window.loading` keeps track of what
waits for what); :meth:`MainWindow._show_bundle` shows the result and applies a session that was
waiting for it. ``ready`` is emitted once a loaded run's graph, metrics and (if a node is selected)
inspector are drawn; ``--screenshot`` waits for it. Every error a user can cause becomes a dialog (or,
in the screenshot mode, a message) and the window keeps running.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from app.graph.view import CircuitView
from app.model.state import AppState
from app.panels import train as train_panel
from app.panels.docks import LogPanel, RunBrowser, TaskPicker, add_dock
from app.panels.inspector import InspectorView
from app.panels.job_box import PanelContext
from app.panels.metrics import MetricsView
from app.widgets import dialogs
from app.window import focus_bar
from app.window import session as session_view
from app.window import tools as circuit_tools
from app.window.actions import Commands, WindowActions
from app.window.controller import WindowController
from app.window.importing import OpenAIImport
from app.window.loading import RunLoader
from app.window.runs import (BUNDLED, RecentRuns, RunDirError, fit_to_screen, read_run_config, restore_layout,
                             save_layout)
from app.window.runs import app_settings
from app.window.toolbar import GraphToolbar
from app.workers import gc_guard
from app.workers.ablation import AblationService
from app.workers.jobs import JobController
from engine.scene.bundle import SetupSpec
from engine.scene.session import Session

__all__ = ["MainWindow", "WINDOW_TITLE", "app_settings"]  # app_settings: tests import it from here

WINDOW_TITLE = "Circuit Inspector"
PLACEHOLDER_TEXT = "No run loaded. File > Open run folder... (Ctrl+Shift+O) or pick the demo in the Runs dock."
LOG_ENV = "CIRCUIT_INSPECTOR_LOG"  # also append every Log dock line to this file

ErrorHandler = Callable[[QWidget | None, str, str], None]

#: Windows not shut down yet. A window freed by Python's GC without being closed would skip
#: closeEvent and leave its worker threads running, so an open window is never garbage.
_LIVE_WINDOWS: set["MainWindow"] = set()


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
    :func:`app.widgets.dialogs.show_error`, looked up at call time); ``warning_handler``: the same for
    warnings (default: :func:`app.widgets.dialogs.show_warning`). ``session``: a
    :class:`engine.scene.session.Session` applied when its run is loaded. ``deterministic``: leave timings
    out of what is drawn (screenshots).

    Every attribute is created here, in ``__init__``; other modules get the parts they need.
    """

    ready = Signal()
    firstPaint = Signal()

    def __init__(self, run_dir: Path | str | None = None, *, persist_settings: bool = True,
                 error_handler: ErrorHandler | None = None, session: Session | None = None,
                 deterministic: bool = False, warning_handler: ErrorHandler | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        gc_guard.install()  # cyclic GC in the GUI thread only (see app.workers.gc_guard)
        _LIVE_WINDOWS.add(self)
        self.setObjectName("MainWindow")
        self.setWindowTitle(WINDOW_TITLE)
        # Options and the window's own bookkeeping
        self._alive = True  # not shut down yet
        self._persist = persist_settings
        self._recent = RecentRuns(persist_settings)  # recent runs and where file dialogs start
        self._error_handler = error_handler
        self._warning_handler = warning_handler
        self._problems_told: set[tuple[str, str]] = set()  # (run, damaged-file message) already shown
        self._deterministic = deterministic
        self._painted = False  # the first paint has happened (a load waits for it)
        self._first_state = QByteArray()  # the docks as at the first start (View > Reset layout)
        # The run on screen: its folder and config (shown before the engine has looked at the run);
        # where File > Export… starts (empty: where runs are opened)
        self.run_dir: Path | None = None
        self.config: dict[str, Any] | None = None
        self.last_export_dir = ""
        # The single source of truth, the live ablation that follows it, the one background job
        self.state = AppState(self)
        self.service = AblationService(self.state, self)
        self.jobs = JobController(self)
        # The central graph, the panels of the side docks (run_panel: the Runs dock, which also shows
        # the run's config) and their docks
        self.view = CircuitView(self.state)
        self.runs = self.run_panel = RunBrowser()
        self.tasks = TaskPicker()
        self.metrics = MetricsView(self.state)
        self.inspector = InspectorView(self.state)
        self.log_panel = LogPanel()
        self.runs_dock, self.tasks_dock, self.metrics_dock, self.inspector_dock, self.log_dock = self._place_panels()
        # Reactions: results, failures, labels and jobs (controller); loads and ``ready`` (loader)
        self.controller = WindowController(
            state=self.state, service=self.service, jobs=self.jobs, inspector=self.inspector,
            log_panel=self.log_panel, show_status=self.statusBar().showMessage, report_error=self.report_error,
            reload_run=self.reload_run, deterministic=deterministic, parent=self)
        self.loader = RunLoader(
            state=self.state, service=self.service, view=self.view, log_panel=self.log_panel,
            show_status=self.statusBar().showMessage, report_error=self.report_error,
            held=lambda: self.isVisible() and not self._painted, show_bundle=self._show_bundle,
            session=session, parent=self)
        # File > Import OpenAI model… (a background job, then the new run opens)
        self.importer = OpenAIImport(jobs=self.jobs, log=self.log_panel.log, report_error=self.report_error,
                                     open_run=self.load_run, last_open_dir=self.last_open_dir, parent=self)
        # Menus, the graph toolbar, the Training dock (hidden until File > Train a model…) and the
        # circuit tools (Pruning, Formation and Compare docks, the Circuits menu)
        self.menu_actions = self._build_actions()
        self.toolbar = self._build_toolbar()
        self.train_panel, self.train_dock = train_panel.install(
            self, self.jobs, self.report_error, when_painted=self.when_painted, open_run=self.load_run,
            run_saved=self.add_recent_run, view_menu=self.menu_actions.view_menu)
        self.tools, self.focus_tools = self._build_tools()  # and the Focus toolbar, Circuits > Compare…
        self._connect()
        self._start_up(run_dir)

    # -- building ------------------------------------------------------------------------------
    def _place_panels(self) -> tuple[QDockWidget, ...]:
        """The graph in the middle; the Runs, Tasks, Metrics, Node inspector and Log docks (returned
        in this order) around it."""
        self.setCentralWidget(self.view)
        if os.environ.get(LOG_ENV):  # scripts and the real-window test read what the Log dock says
            self.log_panel.mirror = Path(os.environ[LOG_ENV])
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        docks = (add_dock(self, "Runs", "runDock", self.runs, left, min_width=180),
                 add_dock(self, "Tasks", "taskDock", self.tasks, left, min_width=180),
                 add_dock(self, "Metrics", "metricsDock", self.metrics, right, min_width=280),
                 add_dock(self, "Node inspector", "inspectorDock", self.inspector, right, min_width=280),
                 add_dock(self, "Log", "logDock", self.log_panel, Qt.DockWidgetArea.BottomDockWidgetArea))
        self.setCorner(Qt.Corner.BottomLeftCorner, left)
        self.setCorner(Qt.Corner.BottomRightCorner, right)
        return docks

    def _build_actions(self) -> WindowActions:
        actions = WindowActions(self, self.state, Commands(
            open_run=self.open_run_dialog, open_session=self.open_session_dialog,
            save_session=self.save_session_dialog, export=self.export_dialog,
            task_file=self.open_task_file_dialog, quit=self.close, fit=self.view.fit,
            find=lambda: self.toolbar.focus_find(), toggle=self.toggle_selected, switch_view=self.state.switch_view,
            record=self.controller.record_store, train=self.show_train_panel,
            import_openai=self.importer.ask_and_start, reset_layout=self.reset_layout))
        for dock in (self.runs_dock, self.tasks_dock, self.metrics_dock, self.inspector_dock, self.log_dock):
            actions.view_menu.addAction(dock.toggleViewAction())
        return actions

    def _build_toolbar(self) -> GraphToolbar:
        a = self.menu_actions
        toolbar = GraphToolbar(self.state, (a.undo, a.redo, a.clear, a.fit), self.report_error,
                               self.statusBar().showMessage, self.view.widget.setFocus, self)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
        return toolbar

    def _build_tools(self) -> tuple[circuit_tools.CircuitTools, focus_bar.FocusTools]:
        ctx = PanelContext(state=self.state, jobs=self.jobs, log=self.log_panel.log, report_error=self.report_error,
                           load_task=self.load_task, last_open_dir=self.last_open_dir, recent_runs=self.recent_runs,
                           center_on=self.view.center_on)
        tools = circuit_tools.install(self, ctx, tasks_dock=self.tasks_dock, log_dock=self.log_dock,
                                      view_menu=self.menu_actions.view_menu)
        focus = focus_bar.install(self, self.state, self.report_error, self.menu_actions.view_menu)
        focus.bar.add_leading("edges", self.toolbar.edge_combo)  # what edges show: weight or attribution
        return tools, focus

    def _connect(self) -> None:
        self.loader.ready.connect(self.ready)
        self.metrics.pairsRequested.connect(self.reload_run)
        self.runs.runActivated.connect(self._on_run_activated)
        self.runs.openFolderRequested.connect(self.open_run_dialog)
        self.tasks.taskActivated.connect(self._on_task_activated)
        self.tasks.taskFileRequested.connect(self.open_task_file_dialog)

    def _start_up(self, run_dir: Path | str | None) -> None:
        self.statusBar().showMessage("No run loaded. File > Open run folder... (Ctrl+Shift+O) opens one.")
        self._first_layout()  # once every dock exists: later docks would squeeze earlier ones
        self._first_state = self.saveState()
        self.refresh_runs()
        # Settle the dock layout now: before it first activates, its minimum still counts the tabbed
        # bottom docks side by side, and a saved geometry or a resize() before show() would be clamped
        # to that width.
        self.layout().activate()
        if self._persist:
            restore_layout(self)
        if run_dir is not None:
            self.load_run(run_dir)

    def _first_layout(self) -> None:
        """The first-start window size (within the screen, for a real window) and dock sizes."""
        self.resize(1400, 900)
        if self._persist:
            fit_to_screen(self)
        self.resizeDocks([self.runs_dock, self.metrics_dock], [260, 440], Qt.Orientation.Horizontal)
        self.resizeDocks([self.runs_dock, self.tasks_dock], [420, 380], Qt.Orientation.Vertical)
        self.resizeDocks([self.metrics_dock, self.inspector_dock], [430, 370], Qt.Orientation.Vertical)
        self.resizeDocks([self.log_dock], [105], Qt.Orientation.Vertical)

    @Slot()
    def reset_layout(self) -> None:
        """View > Reset layout: every dock where, and as large as, it is at the first start."""
        self.restoreState(self._first_state)
        self.train_dock.setProperty("placed", False)  # shown again as at first: floating, centred
        self._first_layout()

    @property
    def store(self):
        """The run's open activation store (the inspector reads it), or None."""
        return self.controller.store

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
                self.statusBar().showMessage(f"Could not open {path}", dialogs.STATUS_ERROR_MS)
                session = self.loader.take_session()  # it must not apply to a later run
                self.report_error(*(("Cannot open run", str(exc)) if session is None
                                    else session_view.missing_run_message(session, str(exc))))
                return False
            self.run_dir, self.config = path.resolve(), config
            self.runs.show_config(self.run_dir, config)
            text = str(self.run_dir)
        self.loader.start(SetupSpec(run=text, task=task, task_file=task_file, circuit=circuit))
        return True

    def open_default(self, run: str = "demo") -> bool:
        """Open the bundled demo at start. If it is not installed the window stays empty (with a hint
        in the log), no dialog; ``ready`` is emitted either way."""
        session = self.loader.pending_session
        self.loader.start(SetupSpec(run=run, task=session.task if session else None,
                                    task_file=session.task_file if session else None), default=True)
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
        self.loader.start(SetupSpec(run=str(b.run_path), task=task, task_file=task_file, circuit=circuit,
                                    checkpoint=checkpoint, layout_nodes=layout_nodes))

    def reload_run(self, n_pairs: int | None = None) -> None:
        """Load the shown run again (after recording its activation store, or with ``n_pairs`` held-out
        pairs behind the metrics); what is on screen comes back as a session."""
        b = self.state.bundle
        if b is None:
            return
        self.loader.pending_session = self.current_session()
        self.loader.start(SetupSpec(run=str(b.run_path), task=None if b.spec.task_file else b.task.name,
                                    task_file=b.spec.task_file, circuit=b.spec.circuit,
                                    n_pairs=n_pairs or b.spec.n_pairs))

    def open_session(self, session: Session) -> bool:
        """Load the session's run (or, without one, its task in the current run) and restore the view
        once it is shown. Returns whether loading started."""
        b = self.state.bundle
        if session.run is None and b is None:
            self.report_error("Cannot open session", "The session names no run and no run is open. Open a run "
                              "first (File > Open run folder…, Ctrl+Shift+O), then open the session again.")
            return False
        self.loader.pending_session = session
        if session.run is not None:
            return self.load_run(session.run, task=session.task, task_file=session.task_file, circuit=session.circuit)
        self.loader.start(SetupSpec(run=str(b.run_path), task=session.task, task_file=session.task_file,
                                    circuit=session.circuit))
        return True

    def current_session(self) -> Session:
        """What is on screen, as a session."""
        return session_view.capture_view(self.state, self.view)

    def _show_bundle(self, bundle, session: Session | None) -> None:
        """A loaded run: fill the docks, show it, and apply ``session`` if one waited for it."""
        self.run_dir, self.config = bundle.run_path, bundle.config_dict
        self.runs.show_config(bundle.run_path, bundle.config_dict)
        self.tasks.set_tasks(bundle.tasks, bundle.task.name, bundle.task.description)
        self.remember_run(bundle.run_path)
        problems = [*bundle.problems, self.controller.open_store(bundle)]
        self.state.set_bundle(bundle)  # its signals ask the ablation service for the first evaluation
        self.refresh_runs()
        self.setWindowTitle(f"{bundle.run_name} · {bundle.task.name} - {self.windowTitle().split(' - ')[-1]}")
        for note in bundle.notes[:-1] if self._deterministic else bundle.notes:
            self.log_panel.log(note)
        self.log_panel.set_progress("idle", 0.0, self.jobs.running is not None)
        self.statusBar().showMessage(f"Loaded {bundle.run_name}, task {bundle.task.name}. Click a node to ablate it.")
        self._tell_problems(bundle, [p for p in problems if p])
        if session is not None:
            dropped = session_view.apply(session, self.state, self.view, self.toolbar, self.log_panel.log)
            if dropped:
                self.report_warning("Session partly restored", session_view.dropped_message(session, dropped))

    def _tell_problems(self, bundle, problems: list[str]) -> None:
        """Damaged files of the run (kept as they are): a warning the first time each is seen (another
        task of the same run says nothing again), and a Log line."""
        new = [p for p in problems if (str(bundle.run_path), p) not in self._problems_told]
        self._problems_told.update((str(bundle.run_path), p) for p in new)
        for problem in new:
            self.log_panel.log(f"warning: {problem}")
        if new:
            self.report_warning(f"Damaged file{'s' if len(new) > 1 else ''} in {bundle.run_name}", " ".join(new))

    def report_error(self, title: str, text: str) -> None:
        handler = self._error_handler or dialogs.show_error
        handler(self, title, text)

    def report_warning(self, title: str, text: str) -> None:
        """Something was done, but not all of it: a warning box (the Log dock has the details)."""
        self.statusBar().showMessage(text, dialogs.STATUS_ERROR_MS)
        handler = self._warning_handler or dialogs.show_warning
        handler(self, title, text)

    # -- settings ------------------------------------------------------------------------------
    def recent_runs(self) -> list[str]:
        return self._recent.runs()

    def remember_run(self, path: Path) -> None:
        self._recent.remember(path)

    def refresh_runs(self) -> None:
        current = str(self.state.bundle.run_path) if self.state.bundle is not None else None
        self.runs.set_runs(BUNDLED, self.recent_runs(), current)

    def add_recent_run(self, run: Path) -> None:
        """A run folder a job made or trained: list it under the recent runs."""
        self.remember_run(run.resolve())
        self.refresh_runs()

    def last_open_dir(self) -> str:
        """Where file dialogs start: the folder of the last run opened, else the home folder."""
        return self._recent.last_open_dir()

    # -- first paint and shutdown --------------------------------------------------------------
    def event(self, ev: QEvent) -> bool:  # noqa: N802 (Qt naming)
        result = super().event(ev)
        # getattr: Qt delivers events while __init__ still runs, before _painted exists
        if ev.type() == QEvent.Type.UpdateRequest and not getattr(self, "_painted", True):
            self._painted = True
            QTimer.singleShot(0, self, self._after_first_paint)
        return result

    @Slot()
    def _after_first_paint(self) -> None:
        self.firstPaint.emit()
        self.loader.release()

    def when_painted(self, call: Callable[[], object]) -> None:
        """``call()`` now, or after the window's first paint (what imports torch must not delay it)."""
        if self._painted:
            call()
        else:
            self.firstPaint.connect(call)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        job = self.jobs.running
        if job is not None and self._alive and not dialogs.ask_yes_no(
                self, "Quit while a job runs?", f"The {job} job is still running. Cancel it and quit?\n\n"
                + _CANCEL_KEEPS.get(job, "What it has not finished yet is not saved.")):
            event.ignore()
            return
        if self._persist:
            save_layout(self)
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
                    self.controller.close_store()
                    gc_guard.uninstall()

    # -- commands (menu actions, dock buttons) ---------------------------------------------------
    @Slot()
    def open_run_dialog(self) -> None:
        start = str(self.run_dir.parent) if self.run_dir else self.last_open_dir()
        chosen = dialogs.ask_run_dir(self, start)
        if chosen is not None:
            self.load_run(chosen)

    @Slot()
    def open_task_file_dialog(self) -> None:
        path = dialogs.ask_task_file(self, self.last_open_dir())
        if path is not None:
            self.load_task(task_file=str(path))

    @Slot()
    def open_session_dialog(self) -> None:
        session = session_view.ask_session(self, self.state, self.last_open_dir(), self.report_error)
        if session is not None:
            self.open_session(session)

    @Slot()
    def save_session_dialog(self) -> None:
        path = session_view.save_session_dialog(self, self.state, self.view, self.last_open_dir(), self.report_error)
        if path is not None:
            self.statusBar().showMessage(f"Saved the session to {path}")
            self.log_panel.log(f"session saved to {path}")

    @Slot()
    def export_dialog(self) -> None:
        from app.window import export

        export.export_dialog(self)

    @Slot()
    def show_train_panel(self) -> None:
        train_panel.show(self.train_dock, self.train_panel, self)

    @Slot()
    def toggle_selected(self) -> None:
        if self.state.selected is None:
            self.statusBar().showMessage("Select a node first (click it, or press / to find one).")
            return
        self.state.toggle_nodes([self.state.selected])

    @Slot(str)
    def _on_run_activated(self, run: str) -> None:
        self.load_run(run)

    @Slot(str)
    def _on_task_activated(self, task: str) -> None:
        b = self.state.bundle
        if b is not None and task != b.task.name:
            self.load_task(task=task)
