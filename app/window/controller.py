"""What happens between the state, the ablation worker, the background jobs and the docks.

:class:`WindowController` is a QObject in the GUI thread whose ``@Slot`` methods receive the
service's and the job controller's signals: a new bundle fills the docks and applies a pending
session; an ablation change becomes an evaluation request; a result updates the state; errors
become dialogs. It also holds the dialog-driven commands (task file, record store, find); sessions
are captured and restored by :mod:`app.window.session`. Imports the engine only inside functions,
after the worker has loaded it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Slot

from app.window import dialogs

from app.window import session as session_view
from engine.scene.session import Session
from engine.scene.snapshot import counted


RECORD_TOKENS = 50_000  # pretraining tokens the "Record activation store" button records


def connect(w) -> None:
    w.controller = WindowController(w)


class WindowController(QObject):
    def __init__(self, w) -> None:
        super().__init__(w)
        self.w = w
        s = w.state
        w.service.setupDone.connect(self.on_bundle)
        w.service.setupFailed.connect(self.on_setup_failed)
        w.service.resultReady.connect(self.on_result)
        w.service.evalFailed.connect(self.on_eval_failed)
        s.ablationChanged.connect(self.on_ablation)
        s.modeChanged.connect(self.on_mode_changed)
        s.baselineChanged.connect(self.on_baseline_changed)
        s.viewChanged.connect(self.on_view)
        s.modeChanged.connect(self.on_mode)
        s.baselineChanged.connect(self.on_baseline)
        s.labelsChanged.connect(self.save_labels)
        w.view.drawn.connect(self.check_ready)
        w.runs.runActivated.connect(self.on_run_activated)
        w.runs.openFolderRequested.connect(w.open_run_dialog)
        w.tasks.taskActivated.connect(self.on_task_activated)
        w.tasks.taskFileRequested.connect(w.open_task_file_dialog)
        w.inspector.recordRequested.connect(w.record_store)
        w.log_panel.cancelRequested.connect(w.jobs.cancel)
        w.jobs.progress.connect(self.on_job_progress)
        w.jobs.finished.connect(self.on_job_finished)

    # -- loading -------------------------------------------------------------------------------
    @Slot(object)
    def on_bundle(self, bundle) -> None:
        w = self.w
        w._default_load = False
        w.run_dir, w.config = bundle.run_path, bundle.config_dict
        w.runs.show_config(bundle.run_path, bundle.config_dict)
        w.tasks.set_tasks(bundle.tasks, bundle.task.name, bundle.task.description)
        w.remember_run(bundle.run_path)
        self.open_store(bundle)
        session, w._session = w._session, None
        w.state.set_bundle(bundle)
        w.refresh_runs()
        w.setWindowTitle(f"{bundle.run_name} · {bundle.task.name} - {w.windowTitle().split(' - ')[-1]}")
        notes = bundle.notes[:-1] if w._deterministic else bundle.notes
        for note in notes:
            w.log_panel.log(note)
        w.log_panel.set_progress("idle", 0.0, w.jobs.running is not None)
        w.statusBar().showMessage(f"Loaded {bundle.run_name}, task {bundle.task.name}. Click a node to ablate it.")
        self.update_threshold_label()
        if session is not None:  # set_bundle has already asked for the first evaluation
            self.apply_session(session)

    @Slot(object)
    def on_setup_failed(self, failed) -> None:
        w = self.w
        w.log_panel.set_progress("idle", 0.0, False)
        w.log_panel.log(f"error: {failed.message}")
        w._session = None  # a session waiting for this load must not apply to a later one
        if w._default_load:  # the demo at start: an empty window with a hint, no dialog
            w._default_load = False
            w.statusBar().showMessage("The bundled demo is not available. File > Open run folder... (Ctrl+Shift+O) opens a run.")
            w._ready_sent = True
            w.ready.emit()
            return
        w.statusBar().showMessage(f"Could not open {Path(failed.request.run).name}")
        same_run = w.state.bundle is not None and failed.request.run == str(w.state.bundle.run_path)
        w.report_error("Cannot load task" if same_run else "Cannot open run", failed.message)

    def open_store(self, bundle) -> None:
        """Open the run's activation store for the inspector (or explain why there is none)."""
        w = self.w
        if w.store is not None:
            w.store.close()
            w.store = None
        message = ""
        if bundle.store_path is not None:
            from engine import api

            try:
                w.store = api.ActivationStore.open(bundle.store_path, expected_model_hash=bundle.model_hash)
            except api.UserError as exc:
                message = f"{exc}"
        w.inspector.set_store(w.store, message)

    def apply_session(self, session: Session) -> None:
        session_view.apply(self.w, session)

    def current_session(self) -> Session:
        return session_view.capture(self.w)

    # -- ablation ------------------------------------------------------------------------------
    @Slot(object)
    def on_ablation(self, ablation) -> None:
        s = self.w.state
        self.w.undo_action.setEnabled(s.can_undo())
        self.w.redo_action.setEnabled(s.can_redo())
        self.w.clear_action.setEnabled(bool(ablation.nodes or ablation.edges))
        self.request_eval(ablation.action, ablation.t_action)

    @Slot(str)
    def on_mode_changed(self, mode: str) -> None:
        self.request_eval(f"ablate with {mode}")

    @Slot(str)
    def on_baseline_changed(self, baseline: str) -> None:
        self.request_eval(f"on top of the {'circuit' if baseline == 'circuit' else 'full model'}")

    def request_eval(self, action: str = "baseline", t_action: float | None = None) -> None:
        """Evaluate the state's current ablation set (the newest request wins)."""
        s = self.w.state
        if s.bundle is None:
            return
        baseline = s.baseline if s.bundle.circuit is not None else "full"
        self.w.service.request(s.ablation.nodes, s.ablation.edges, s.mode, baseline,
                               t_action or time.perf_counter(), action)

    @Slot(object)
    def on_result(self, evaluation) -> None:
        w = self.w
        w.state.set_evaluation(evaluation)
        r = evaluation.result
        timing = "" if w._deterministic else f" · {evaluation.latency_ms:.0f} ms click-to-metric"
        w.statusBar().showMessage(f"loss {r.loss:.4f}, accuracy {r.accuracy:.1%} "
                                  f"({counted(len(evaluation.request.nodes), 'node')}, "
                                  f"{counted(len(evaluation.request.edges), 'weight')} ablated, "
                                  f"{evaluation.request.mode}){timing}")
        if evaluation.request.action:
            w.log_panel.log(f"{evaluation.request.action}: loss {r.loss:.6f}, accuracy {r.accuracy:.4f}")
        self.check_ready()

    @Slot(object)
    def on_eval_failed(self, failed) -> None:
        w = self.w
        w.log_panel.log(f"error: {failed.message}")
        undone = w.state.can_undo()
        if undone:
            w.state.undo()
        w.report_error("Cannot evaluate this ablation",
                       failed.message + ("\n\nThe last ablation step was undone." if undone else ""))

    @Slot()
    def check_ready(self) -> None:
        w = self.w
        if (not w._ready_sent and w.state.bundle is not None and w.state.evaluation is not None
                and w.view.is_drawn and not w.service.busy_setup):
            w._ready_sent = True
            w.ready.emit()

    # -- toolbar sync --------------------------------------------------------------------------
    @Slot(str)
    def on_view(self, view: str) -> None:
        w = self.w
        has_circuit = w.state.bundle is not None and w.state.bundle.circuit is not None
        w.circuit_view_action.setEnabled(has_circuit)
        (w.circuit_view_action if view == "circuit" else w.model_view_action).setChecked(True)
        self.on_threshold_slider(w.threshold_slider.value())

    @Slot(str)
    def on_mode(self, mode: str) -> None:
        self.w.mode_combo.blockSignals(True)
        self.w.mode_combo.setCurrentText(mode)
        self.w.mode_combo.blockSignals(False)

    @Slot(str)
    def on_baseline(self, baseline: str) -> None:
        w = self.w
        w.baseline_combo.blockSignals(True)
        w.baseline_combo.setCurrentText(baseline)
        w.baseline_combo.model().item(0).setEnabled(w.state.bundle is not None and w.state.bundle.circuit is not None)
        w.baseline_combo.blockSignals(False)

    def on_threshold_slider(self, value: int) -> None:
        graph = self.w.state.graph
        if graph is None:
            return
        absw = np.abs(graph.weight)
        t = float(np.quantile(absw, value / 100.0)) if value > 0 and len(absw) else 0.0
        self.w.state.set_threshold(t)
        self.update_threshold_label()

    def update_threshold_label(self) -> None:
        w, graph = self.w, self.w.state.graph
        if graph is None:
            return
        shown = int(np.sum(np.abs(graph.weight) >= w.state.threshold))
        w.threshold_label.setText(f"{w.state.threshold:.3g}  ({shown:,} of {graph.n_edges:,})")

    @Slot(str)
    def save_labels(self, labels) -> None:
        b = self.w.state.bundle
        if b is None or dict(b.labels) == labels:
            return
        import json

        try:
            b.derived.mkdir(parents=True, exist_ok=True)
            (b.derived / "labels.json").write_text(json.dumps(labels, indent=1, sort_keys=True), encoding="utf-8")
        except OSError as exc:
            self.w.log_panel.log(f"cannot save labels to {b.derived}: {exc}")

    # -- docks ---------------------------------------------------------------------------------
    @Slot(str)
    def on_run_activated(self, run: str) -> None:
        self.w.load_run(run)

    @Slot(str)
    def on_task_activated(self, task: str) -> None:
        b = self.w.state.bundle
        if b is not None and task != b.task.name:
            self.w.load_task(task=task)

    # -- jobs ----------------------------------------------------------------------------------
    @Slot(str, object)
    def on_job_progress(self, name: str, event) -> None:
        total = getattr(event, "total_tokens", 0) or 0
        done = getattr(event, "done_tokens", 0) / total if total else getattr(event, "fraction", None)
        self.w.log_panel.set_progress(f"{name}: {getattr(event, 'kind', '')} %p%", done, True)
        if getattr(event, "message", ""):
            self.w.log_panel.log(f"{name}: {event.message}")

    @Slot(object)
    def on_job_finished(self, outcome) -> None:
        w = self.w
        w.log_panel.set_progress("idle", 0.0, False)
        w.inspector.set_recording(False)
        w.log_panel.log(f"{outcome.name}: {outcome.status}" + (f" ({outcome.message})" if outcome.message else ""))
        if outcome.status == "failed":
            w.report_error(f"{outcome.name} failed", outcome.message)
        if outcome.status == "done" and outcome.name == "record store" and w.state.bundle is not None:
            # Reload in the background so that the Ablator gets the recorded activations (resample
            # ablation); what is on screen (ablations, selection, view) comes back as a session.
            b = w.state.bundle
            w._session = self.current_session()
            w.log_panel.log("reloading the run with its new activation store")
            from engine.scene.bundle import SetupSpec

            w._start_setup(SetupSpec(run=str(b.run_path), task=None if b.spec.task_file else b.task.name,
                                     task_file=b.spec.task_file,
                                     circuit=b.spec.circuit, n_pairs=b.spec.n_pairs))


def record_store(w) -> None:
    b = w.state.bundle
    if b is None:
        w.report_error("No run loaded", "Open a run first (File > Open run folder…, Ctrl+Shift+O).")
        return
    from engine import api

    run, task = str(b.run_path), b.spec.task_file or b.task.name

    def job():
        return api.record_store(run, n_tokens=RECORD_TOKENS, tasks=[task])

    try:
        w.jobs.start("record store", job)
    except RuntimeError as exc:
        w.report_error("A job is running", str(exc))
        return
    w.inspector.set_recording(True)
    w.log_panel.log(f"recording an activation store for {b.run_name} (task {b.task.name}) into {b.derived}")


def find_node(w) -> None:
    """Select the node whose id or label matches the find box; switch to the whole model if needed."""
    text, s = w.find_edit.text().strip(), w.state
    if not text or s.bundle is None:
        return
    model = s.bundle.model_graph
    low = text.lower()
    hit = text if text in model.index else next(
        (n for n, lab in s.labels.items() if lab.lower() == low and n in model.index), None)
    if hit is None:
        graph = s.graph
        hit = next((n for n in graph.ids if low in n.lower()), None) or \
            next((n for n in model.ids if low in n.lower()), None)
    if hit is None:
        w.statusBar().showMessage(f"No node matches {text!r} (ids look like blocks.0.mlp.neuron:12)")
        return
    if hit not in s.graph.index:
        s.set_view("model")
    s.select(hit)  # the view brings it into sight if it is off screen
    w.view.widget.setFocus()
    w.statusBar().showMessage(f"Found {hit}. Press A to toggle its ablation.")


def set_mode(w, mode: str) -> None:
    if mode == "resample" and not w.state.bundle.resample:
        w.report_error("Resample ablation needs an activation store",
                       "Resample ablation replaces a node by its value at random pretraining positions, "
                       "which come from the run's activation store. Record one (File > Record activation "
                       "store) and try again.")
        w.mode_combo.setCurrentText(w.state.mode)
        return
    w.state.set_mode(mode)


def open_task_file_dialog(w) -> None:
    path = dialogs.ask_task_file(w, w._last_open_dir())
    if path is not None:
        w.load_task(task_file=str(path))


def on_threshold_slider(w, value: int) -> None:
    w.controller.on_threshold_slider(value)
