"""The Training dock: pick a preset, edit the config, start / cancel / resume a training in the
background, and watch its progress bar, ETA and live curves.

The training is the engine's ``train`` generator run by the window's :class:`app.workers.jobs.JobController`
(one background job at a time), so the window stays responsive and closing it cancels the job. The
engine decides what is valid: every edit rebuilds the config through ``engine.api`` and the engine's
message appears under the form (Start stays disabled); an unusable output folder, a run that cannot
be resumed or a busy job controller become dialogs. A cancelled run keeps a checkpoint of its last
completed step and Resume continues it; Resume on a finished run trains on to a higher Steps value.
When a job leaves a model behind, the run joins the run browser and "Open in graph" opens it.

The form is the user's: typing an output path never changes it, not even on the way through an
existing run's folder (``/tmp/runs/tiny`` while typing ``/tmp/runs/tiny2``). A run's config is put
into the form only on an explicit choice: "Load its config", choosing the folder with the "…"
picker, or Resume (which trains that run's own config to the form's Steps). Start trains exactly
the config the form shows.

``engine.api`` (and with it torch) is imported the first time the panel is shown, never at start-up,
so the window still paints before the engine loads. Knows nothing about the graph or ablations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QDockWidget, QHBoxLayout, QLabel, QMainWindow, QMenu, QProgressBar, QPushButton,
                               QScrollArea, QSplitter, QVBoxLayout, QWidget)

from app.widgets import theme
from app.panels.docks import add_dock
from app.panels.train_curves import TrainCurves
from app.panels.train_form import ConfigForm, config_patch, config_values, default_output

TRAIN_JOB = "training"
DEFAULT_PRESET = "tiny"


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "—"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


class TrainPanel(QWidget):
    """Config form, Start / Cancel / Resume / Open in graph, progress with ETA, and live curves."""

    openRunRequested = Signal(str)  # a run folder to open in the graph
    runSaved = Signal(str)  # a job left a model in this run folder (finished, or cancelled with a checkpoint)

    def __init__(self, jobs, report_error: Callable[[str, str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self._report = report_error
        self._api = None  # engine.api, imported by ensure_ready()
        self._auto_output = ""
        self._config_ok = False
        self._folder = None  # TrainStatus of the output folder
        self._shown_run: Path | None = None  # the run whose logged curves are shown
        self._log_note = ""  # what the status says about that run's damaged log lines ("" if none)
        self._base = None  # the RunConfig loaded by "Load its config" (fields the form lacks), or None
        self.run_dir: Path | None = None  # the folder the current (or last) job trains
        self.form = ConfigForm()
        self.form.changed.connect(self._on_form_changed)
        self.form.presetChosen.connect(self.apply_preset)
        self.form.outputChosen.connect(self._on_output_chosen)
        self.start_button = self._button("Start", "startTrain", self.start, "Train a new run into the output folder")
        self.cancel_button = self._button("Cancel", "cancelTrain", self.cancel,
                                          "Stop after the current step; a checkpoint is kept and Resume continues")
        self.resume_button = self._button("Resume", "resumeTrain", self.resume,
                                          "Continue the run in the output folder from its last checkpoint, "
                                          "with its own config and the form's Steps (the form shows it)")
        self.open_button = self._button("Open in graph", "openTrained", self.open_run, "Open the trained run")
        self.load_button = self._button("Load its config", "loadRunConfig", self.load_run_config,
                                        "Fill the form with the config of the run in the output folder")
        self.progress = QProgressBar()
        self.progress.setObjectName("trainProgress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.eta = QLabel("")
        self.eta.setObjectName("trainEta")
        self.status = QLabel("Pick a preset, edit it, and press Start.")
        self.status.setObjectName("trainStatus")
        self.status.setWordWrap(True)
        self.status.setStyleSheet(f"color: {theme.MUTED};")
        self.curves = TrainCurves()
        self._layout()
        self._refresh()

    def _button(self, text: str, name: str, slot, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    def _layout(self) -> None:
        top = QWidget()
        box = QVBoxLayout(top)
        box.setContentsMargins(6, 6, 6, 6)
        box.addWidget(self.form)
        row = QHBoxLayout()
        for b in (self.start_button, self.cancel_button, self.resume_button, self.load_button, self.open_button):
            row.addWidget(b)
        box.addLayout(row)
        box.addWidget(self.progress)
        box.addWidget(self.eta)
        box.addWidget(self.status)
        box.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(top)
        self.split = split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(self.curves)
        split.setStretchFactor(1, 1)
        scroll.setMinimumWidth(380)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        """Form beside the curves in a wide dock, above them in a tall one."""
        wide = event.size().width() > 1.2 * event.size().height()
        self.split.setOrientation(Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical)
        super().resizeEvent(event)

    # -- config --------------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        """Import the engine and fill the form with the default preset (once)."""
        if self._api is not None:
            return
        from engine import api

        self._api = api
        self.form.set_presets(api.preset_names(), DEFAULT_PRESET)
        self.apply_preset(DEFAULT_PRESET)

    @Slot(str)
    def apply_preset(self, name: str) -> None:
        self._base = None
        values = config_values(self._api.preset(name))
        current = self.form.output.text().strip()
        if not current or current == self._auto_output:  # replace only an output we suggested
            values["output"] = self._auto_output = str(default_output(name))
        self.form.set_values(values)

    def config(self):
        """The validated RunConfig of the form (UserError with the engine's message)."""
        base = self._base if self._base is not None else self._api.preset(self.form.preset.currentText())
        return self._api.run_config_from_dict(config_patch(self.form.values()), base=base)

    def output_dir(self) -> Path | None:
        text = self.form.values()["output"]
        return Path(text).expanduser() if text else None

    @Slot()
    def _on_form_changed(self) -> None:
        if self._api is None:
            return
        try:
            self.config()
        except self._api.UserError as exc:
            self._config_ok = False
            self.form.set_message(f"{exc}", ok=False)
        else:
            self._config_ok = True
            self.form.set_message("", ok=True)
        self._check_folder()
        self._refresh()

    def _check_folder(self) -> None:
        """Say what the output folder holds (a run to resume? a model to open?)."""
        out = self.output_dir()
        self._folder = None
        if out is None or self._api is None:
            return
        try:
            self._folder = st = self._api.train_status(out)
        except self._api.UserError as exc:
            self.curves.reset()
            self._set_status(f"The output folder has a broken run: {exc}")
            return
        if self.jobs.running == TRAIN_JOB:
            return
        # The curves follow the output folder; the form never does (see the module docstring).
        if st.has_run and st.run_dir != self._shown_run:
            self._show_history(out, st.steps_done)
        elif not st.has_run:
            self.curves.reset()
        self._shown_run = st.run_dir if st.has_run else None
        if st.has_run:
            more = (f" To train it further, set Steps above {st.total_steps:,} and press Resume."
                    if st.complete else " Resume continues it from there (with its own config).")
            self._set_status(f"{out} holds a run at step {st.steps_done:,} of {st.total_steps:,}"
                             f"{' (finished)' if st.complete else ''}.{more} Load its config puts that "
                             f"run's settings into the form.{self._log_note}")
        else:
            self._set_status(f"Start trains a new run into {out}.")

    @Slot()
    def load_run_config(self) -> None:
        """Fill the form with the config of the run in the output folder (an explicit choice: the
        form is never filled from a folder by itself); the output path stays."""
        self.ensure_ready()
        out = self.output_dir()
        try:
            st = self._api.train_status(out) if out is not None else None
        except self._api.UserError as exc:
            self._report("Cannot load the run's config", str(exc))
            return
        if st is None or not st.has_run:
            self._report("No run in the output folder", f"{out or 'The output folder'} holds no run whose "
                         "config could be loaded. Type or choose (…) the folder of a run first.")
            return
        if st.config.preset in self._api.preset_names():
            self.form.set_presets(self._api.preset_names(), st.config.preset)
        self.form.set_values(config_values(st.config))
        self._base = st.config  # what the form does not show (n_ctx, batch size, ...) comes from the run
        self._set_status(f"The form shows the config of {out} (step {st.steps_done:,} of {st.total_steps:,}). "
                         "Edit it and choose another output folder to train a new run, or Resume this one.")

    @Slot()
    def _on_output_chosen(self) -> None:
        """An output folder chosen with the picker: a run there is an explicit choice of its config."""
        if self._folder is not None and self._folder.has_run:
            self.load_run_config()

    def _show_history(self, out: Path, steps_done: int) -> None:
        """Draw the curves a run has logged so far (up to its last checkpoint, where Resume restarts)."""
        self.curves.reset()
        self._log_note = ""
        try:
            records = self._api.read_log(out)
        except (OSError, ValueError, self._api.UserError) as exc:  # unreadable log: no curves, the status says why
            self._set_status(f"The run's training log cannot be read: {exc}")
            return
        bad = self._api.damaged_log_lines(out)
        if bad:  # skipped, and said (the file is left as it is)
            self._log_note = (f" {bad} damaged line{'s' if bad > 1 else ''} of its train_log.jsonl "
                              f"{'were' if bad > 1 else 'was'} skipped (the file is kept as it is).")
        for record in records:
            if isinstance(record, dict) and int(record.get("step", 0)) <= steps_done:
                self.curves.add_log_record(record)
        self.curves.redraw()

    def _set_status(self, text: str) -> None:
        self.status.setText(text)

    def _refresh(self) -> None:
        training = self.jobs.running == TRAIN_JOB
        idle = self.jobs.running is None
        has_run = self._folder is not None and self._folder.has_run
        self.form.setEnabled(not training)
        self.start_button.setEnabled(idle and self._config_ok and not has_run)
        self.resume_button.setEnabled(idle and has_run)
        self.cancel_button.setEnabled(training)
        self.open_button.setEnabled(not training and self._folder is not None and self._folder.has_model)
        self.load_button.setEnabled(not training and has_run)
        if not idle and not training:
            self.start_button.setToolTip(f"Wait for the running job ({self.jobs.running}) to end")
        else:
            self.start_button.setToolTip("Train a new run into the output folder")

    # -- commands ------------------------------------------------------------------------------
    @Slot()
    def start(self) -> None:
        self.ensure_ready()
        api = self._api
        try:
            cfg = self.config()
        except api.UserError as exc:
            self._report("Invalid training config",
                         f"{exc}\n\nFix the value in the Training panel and press Start again.")
            return
        out = self.output_dir()
        if out is None:
            self._report("No output folder", "Type or choose the run folder to create (Output run), then press Start.")
            return
        try:
            api.check_output_dir(out)
        except api.UserError as exc:
            self._report("Cannot train into this folder", str(exc))
            return
        tasks = api.DEFAULT_MONITOR_TASKS
        self.curves.reset()
        self._launch(out, lambda: api.train(out, cfg, task_eval=tasks),
                     f"training a {cfg.preset}-based model into {out}")

    @Slot()
    def resume(self) -> None:
        self.ensure_ready()
        api = self._api
        out = self.output_dir()
        if out is None:
            return
        wanted = int(self.form.values()["steps"])
        try:
            st = api.train_status(out)
            if not st.has_run:
                raise api.UserError(f"{out} holds no run to resume; Start trains a new one there")
            steps = wanted if wanted != st.total_steps else None
            if st.complete and steps is None:
                raise api.UserError(f"the run in {out} has finished its {st.total_steps:,} steps; set Steps "
                                    f"above that and press Resume to train it further")
            api.check_output_dir(out, resume=True, steps=steps)
        except api.UserError as exc:
            self._report("Cannot resume", str(exc))
            return
        values = {**config_values(st.config), "steps": wanted}  # show what is being trained
        if st.config.preset in api.preset_names():
            self.form.set_presets(api.preset_names(), st.config.preset)
        self.form.set_values(values)
        self._base = st.config
        self._show_history(out, st.steps_done)
        tasks = api.DEFAULT_MONITOR_TASKS
        self._launch(out, lambda: api.train(out, resume=True, steps=steps, task_eval=tasks),
                     f"resuming {out} from step {st.steps_done:,}"
                     + (f" to {steps:,} steps" if steps is not None else ""))

    def _launch(self, out: Path, factory, message: str) -> None:
        try:
            self.jobs.start(TRAIN_JOB, factory)
        except RuntimeError as exc:  # JobBusy
            self._report("A job is running", str(exc))
            return
        self.run_dir = out
        self.progress.setRange(0, 0)  # indeterminate until the first step
        self.progress.setFormat("preparing data…")
        self.eta.setText("")
        self._set_status(message)
        self._refresh()

    @Slot()
    def cancel(self) -> None:
        if self.jobs.running == TRAIN_JOB:
            self.jobs.cancel()
            self.cancel_button.setEnabled(False)
            self._set_status("cancelling after the current step…")

    @Slot()
    def open_run(self) -> None:
        out = self.output_dir()
        if out is not None:
            self.openRunRequested.emit(str(out))

    # -- job signals (GUI thread, relayed by the JobController) -----------------------------------
    @Slot(str)
    def on_job_started(self, _name: str) -> None:
        self._refresh()

    @Slot(str, object)
    def on_job_progress(self, name: str, event) -> None:
        if name != TRAIN_JOB:
            return
        if event.kind in ("step", "eval"):
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * event.fraction))
            eta = format_eta(event.eta_s)
            self.progress.setFormat(f"step {event.step:,} / {event.total_steps:,} · ETA {eta}")
            speed = f" · {event.tokens_per_s / 1000:.1f}k tokens/s" if event.tokens_per_s else ""
            self.eta.setText(f"ETA {eta}{speed}")
            self.curves.add_point(event.step, event.train_loss, event.val_loss, event.lr, dict(event.density),
                                  dict(event.task_losses))
        elif event.kind in ("setup", "checkpoint") and event.message:
            self._set_status(event.message)

    @Slot(object)
    def on_job_finished(self, outcome) -> None:
        if outcome.name != TRAIN_JOB or self.run_dir is None:
            self._refresh()
            return
        self._check_folder()  # the form and buttons follow the folder's new state
        try:
            st = self._api.train_status(self.run_dir)
        except self._api.UserError:
            st = None
        done = st.steps_done if st is not None else 0
        self.progress.setRange(0, 1000)
        self.eta.setText("")
        if outcome.status == "done":
            val = outcome.result.final_val_loss if outcome.result is not None else None
            self.progress.setValue(1000)
            self.progress.setFormat(f"finished · {done:,} steps")
            self._set_status(f"Finished {done:,} steps" + (f", validation loss {val:.3f}" if val is not None else "")
                             + ". Open in graph shows it; prune a task to get a circuit.")
        elif outcome.status == "cancelled":
            self.progress.setFormat(f"cancelled at step {done:,}")
            self._set_status(f"Cancelled. Checkpoint at step {done:,}; Resume continues it." if st and st.has_model
                             else "Cancelled before the first step; nothing was saved.")
        else:
            self.progress.setValue(0)
            self.progress.setFormat("failed")
            self._set_status(f"Training failed: {outcome.message}")
        if st is not None and st.has_model:
            self.runSaved.emit(str(self.run_dir))
        self._refresh()


def install(window: QMainWindow, jobs, report_error: Callable[[str, str], None], *,
            when_painted: Callable[[Callable[[], None]], None], open_run: Callable[[str], object],
            run_saved: Callable[[Path], None], view_menu: QMenu) -> tuple[TrainPanel, QDockWidget]:
    """Add the Training dock (hidden until asked for) to ``window``, list it in ``view_menu`` and wire
    it to the job controller ``jobs``. ``when_painted(call)``: call now or after the window's first
    paint; ``open_run(folder)``: Open in graph; ``run_saved(folder)``: a job left a model there.
    Returns the panel and its dock."""
    panel = TrainPanel(jobs, report_error)
    dock = add_dock(window, "Training", "trainDock", panel, Qt.DockWidgetArea.BottomDockWidgetArea)
    dock.hide()
    dock.visibilityChanged.connect(lambda visible: visible and when_painted(panel.ensure_ready))
    jobs.started.connect(panel.on_job_started)
    jobs.progress.connect(panel.on_job_progress)
    jobs.finished.connect(panel.on_job_finished)
    panel.openRunRequested.connect(open_run)
    panel.runSaved.connect(lambda run: run_saved(Path(run)))
    view_menu.addAction(dock.toggleViewAction())
    return panel, dock


def show(dock: QDockWidget, panel: TrainPanel, over: QWidget) -> None:
    """Show the Training dock; the first time as a floating window centred over the window ``over``
    (a form beside four plots needs more room than a side dock has; drag it to any dock area to dock
    it)."""
    if not dock.property("placed"):
        dock.setProperty("placed", True)
        if not dock.isVisible():
            dock.setFloating(True)
            size = (min(1100, max(700, over.width() - 200)), min(640, max(480, over.height() - 200)))
            dock.resize(*size)
            center = over.geometry().center()
            dock.move(center.x() - size[0] // 2, center.y() - size[1] // 2)
    dock.show()
    dock.raise_()
    panel.ensure_ready()
