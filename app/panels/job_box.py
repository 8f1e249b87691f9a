"""Widgets shared by the pruning, comparison and formation panels: the pruning settings form and
the Start / Cancel / progress row of a background job, and how a pruning event reads as progress.

:class:`PanelJob` ties a panel to the window's :class:`app.workers.jobs.JobController` (one job at a time);
what a panel's controller may use of the window comes in a :class:`PanelContext`. Knows nothing about
the engine: settings leave as a plain dict and events are read by attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from app.widgets import theme
from engine.ablation.modes import PRUNE_MODES

if TYPE_CHECKING:
    from app.model.state import AppState
    from app.workers.jobs import JobController

DEFAULT_TARGET = 0.15
DEFAULT_MASK_STEPS = 200
#: PruneConfig fields the form does not show, fixed for every job started from a panel (defaults:
#: the engine's; tests shrink the pair counts and the k_coef sweep to keep jobs at tiny scale).
FIXED_SETTINGS: dict[str, Any] = {}


def event_text(event: Any) -> str:
    """One line for a pruning event: which phase, how far; the event's own message otherwise."""
    kind = getattr(event, "kind", "")
    step, total = getattr(event, "step", 0), getattr(event, "total", 0)
    if kind == "step":
        return f"k_coef {event.k_coef:g}: mask step {step}/{total}, task loss {event.loss:.3f}, {event.n_active} nodes"
    if kind == "bisect":
        return f"k_coef {event.k_coef:g}: bisection, {event.n_active} nodes -> loss {event.loss:.3f}"
    if kind == "curve":
        return f"loss-vs-size curve {step}/{total}"
    if kind == "faithfulness":
        return f"faithfulness checks {step}/{total}"
    if kind == "setup" and total and not getattr(event, "message", ""):
        return f"ablation means: batch {step}/{total}"
    return getattr(event, "message", "") or kind


class PruneSettings(QWidget):
    """Target loss, ablation (mean / zero), frozen norm and mask steps per k_coef."""

    def __init__(self, parent: QWidget | None = None, frozen_norm: bool = True) -> None:
        super().__init__(parent)
        self.target = QDoubleSpinBox()
        self.target.setObjectName("targetLoss")
        self.target.setDecimals(3)
        self.target.setRange(0.001, 10.0)
        self.target.setSingleStep(0.05)
        self.target.setValue(DEFAULT_TARGET)
        self.target.setToolTip("held-out task loss the circuit must reach (nats per sequence; chance is 0.693)")
        self.ablation = QComboBox()
        self.ablation.setObjectName("ablationCombo")
        self.ablation.addItems(list(PRUNE_MODES))
        self.ablation.setToolTip("what a pruned node is replaced with: its mean over pretraining text, or 0")
        self.frozen_norm = QCheckBox("frozen norm")
        self.frozen_norm.setToolTip("patch every norm's divisor from the unpruned model (larger, more honest circuits)")
        self.steps = QSpinBox()
        self.steps.setObjectName("maskSteps")
        self.steps.setRange(1, 100_000)
        self.steps.setValue(DEFAULT_MASK_STEPS)
        self.steps.setToolTip("mask optimisation steps per k_coef (3 k_coefs are swept)")
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Target loss", self.target)
        form.addRow("Ablation", self.ablation)
        form.addRow("Mask steps", self.steps)
        if frozen_norm:
            form.addRow("", self.frozen_norm)
        else:
            self.frozen_norm.hide()

    def values(self) -> dict[str, Any]:
        """Keyword arguments for ``engine.api.PruneConfig``."""
        return {"target_loss": float(self.target.value()), "ablation": self.ablation.currentText(),
                "frozen_norm": self.frozen_norm.isChecked(), "steps": int(self.steps.value()), **FIXED_SETTINGS}


class JobRow(QWidget):
    """Start / Cancel buttons, a progress bar with the phase, and a status line."""

    startClicked = Signal()
    cancelClicked = Signal()

    def __init__(self, start_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.start_button = QPushButton(start_text)
        self.start_button.setObjectName("startButton")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setEnabled(False)
        self.start_button.clicked.connect(self.startClicked)
        self.cancel_button.clicked.connect(self.cancelClicked)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self._allowed, self._busy = True, False  # Start: usable for the open run; some job runs
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet(f"color: {theme.MUTED};")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 1)
        buttons.addWidget(self.cancel_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(buttons)
        box.addWidget(self.progress)
        box.addWidget(self.status)

    def show_event(self, event: Any) -> None:
        frac = getattr(event, "fraction", None)
        if frac is not None:
            self.progress.setValue(int(1000 * max(0.0, min(1.0, frac))))
        text = event_text(event)
        self.progress.setFormat(f"%p%  {text}" if len(text) < 60 else "%p%")
        self.status.setText(text)

    def finish(self, text: str, done: bool) -> None:
        self.progress.setValue(1000 if done else 0)
        self.progress.setFormat("done" if done else "idle")
        self.status.setText(text)

    def set_allowed(self, allowed: bool, reason: str = "") -> None:
        """Whether Start can be used at all (``reason``: its tooltip when not, else ``reason`` is
        the tooltip too); a running job keeps it off either way."""
        self._allowed = allowed
        self.start_button.setToolTip(reason)
        self.start_button.setEnabled(allowed and not self._busy)

    def set_busy(self, ours: bool, any_job: bool) -> None:
        """``ours``: this panel's job runs (Cancel on); ``any_job``: some job runs (Start off)."""
        self._busy = any_job
        self.start_button.setEnabled(not any_job and self._allowed)
        self.cancel_button.setEnabled(ours)
        if ours:
            self.progress.setValue(0)
            self.progress.setFormat("starting… %p%")


@dataclass(frozen=True)
class PanelContext:
    """What the circuit tools' controllers use of the main window."""

    state: AppState
    jobs: JobController  # the window's one job controller: one background job at a time
    log: Callable[[str], None]  # a line in the Log dock
    report_error: Callable[[str, str], None]  # (title, text): a dialog
    load_task: Callable[..., Any]  # MainWindow.load_task: show a task / circuit / checkpoint of the run
    last_open_dir: Callable[[], str]  # where file dialogs start
    recent_runs: Callable[[], list[str]]  # run folders opened lately, newest first
    center_on: Callable[[str], None] | None = None  # centre the graph on a node (CircuitView.center_on)


class PanelJob(QObject):
    """Runs one panel's background job (``name``) through the window's JobController and keeps the
    panel's :class:`JobRow` in step with every job of the window (Start is off while any job runs).
    Subclasses implement :meth:`on_outcome`. The row's last message belongs to the run it was about:
    opening another run clears it (unless this panel's job still runs)."""

    def __init__(self, ctx: PanelContext, name: str, row: JobRow, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx, self.name, self.row = ctx, name, row
        self._run_path = None  # the run the row's message is about
        ctx.jobs.started.connect(self._on_started)
        ctx.jobs.progress.connect(self._on_progress)
        ctx.jobs.finished.connect(self._on_finished)
        ctx.state.bundleChanged.connect(self._on_run)
        row.cancelClicked.connect(self.cancel)

    @Slot(object)
    def _on_run(self, bundle) -> None:
        run = bundle.run_path if bundle is not None else None
        if run != self._run_path:
            self._run_path = run
            if self.ctx.jobs.running != self.name:
                self.row.finish("", False)

    def run_job(self, factory) -> bool:
        """Start ``factory()`` (an engine generator) as this panel's job; a dialog if one runs."""
        try:
            self.ctx.jobs.start(self.name, factory)
        except RuntimeError as exc:  # JobBusy
            self.ctx.report_error("A job is running", str(exc))
            return False
        return True

    def loaded_bundle(self, hint: str):
        """The window's loaded run, or None after a "No run loaded" dialog saying ``hint``."""
        b = self.ctx.state.bundle
        if b is None:
            self.ctx.report_error("No run loaded", hint)
        return b

    def prune_config(self, settings, title: str):
        """The panel's pruning settings as a validated PruneConfig, or None after a dialog titled
        ``title`` with the engine's message."""
        from engine import api

        try:
            return api.PruneConfig(**settings.values()).validate()
        except api.UserError as exc:
            self.ctx.report_error(title, str(exc))
            return None

    @Slot()
    def cancel(self) -> None:
        if self.ctx.jobs.running == self.name:
            self.ctx.jobs.cancel()
            self.row.status.setText("cancelling…")

    @Slot(str)
    def _on_started(self, name: str) -> None:
        self.row.set_busy(name == self.name, True)

    @Slot(str, object)
    def _on_progress(self, name: str, event) -> None:
        if name == self.name:
            self.row.show_event(event)

    @Slot(object)
    def _on_finished(self, outcome) -> None:
        self.row.set_busy(False, False)
        if outcome.name != self.name:
            return
        if outcome.status == "cancelled":
            self.row.finish("cancelled; nothing was saved for the unfinished part", False)
        elif outcome.status == "failed":
            self.row.finish(f"failed: {outcome.message}", False)  # the window shows the dialog
        self.on_outcome(outcome)

    def on_outcome(self, outcome) -> None:
        raise NotImplementedError
