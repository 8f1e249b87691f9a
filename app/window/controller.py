"""What the window does when the state, the ablation service or a background job reports.

:class:`WindowController` is a QObject in the GUI thread; its ``@Slot`` methods subscribe to

* the state's ``evaluationChanged``: the status bar says the shown loss and accuracy and the Log dock
  gets one line per user action (the evaluation itself comes from :mod:`app.workers.ablation`, which
  puts it into the state; ``docs/architecture.md``, "The click path");
* the service's ``evalFailed``: a Log line, the ablation step undone, a dialog;
* the state's ``labelsChanged``: the labels are saved with the run's derived files;
* the job controller's ``progress`` and ``finished``: the Log dock's progress bar and lines, the
  inspector's record button, a dialog for a failed job; a recorded activation store reloads the run.

It also holds the activation store the inspector reads and the Record activation store command. It
gets the parts it works with, not the window. Imports the engine only inside functions, after the
worker has loaded it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, Slot

from engine.scene.bundle import save_labels
from engine.scene.snapshot import counted
from engine.sites import store_bytes

RECORD_TOKENS = 50_000  # pretraining tokens the "Record activation store" button records
#: ... at most this many bytes of activations (float16, every node at every token): csp_yolo1's 90k nodes
#: would fill 9 GB with 50,000 tokens, csp_yolo2's 20 GB, so a paper-scale model records fewer whole
#: windows (``circuit-engine record --tokens`` records any number).
RECORD_BYTES = 2 << 30


def record_tokens(n_nodes: int, n_ctx: int) -> int:
    """Tokens the record button records for a model of ``n_nodes`` nodes: :data:`RECORD_TOKENS`, or the
    whole context windows that fit :data:`RECORD_BYTES` (at least one)."""
    if store_bytes(RECORD_TOKENS, n_nodes) <= RECORD_BYTES:
        return RECORD_TOKENS
    return max(1, RECORD_BYTES // store_bytes(n_ctx, n_nodes)) * n_ctx


class WindowController(QObject):
    """See the module docstring. ``show_status(text)``: the status bar; ``report_error(title, text)``:
    a dialog; ``reload_run()``: load the shown run again, keeping what is on screen; ``deterministic``:
    leave timings out of what is shown (screenshots)."""

    def __init__(self, *, state, service, jobs, inspector, log_panel, show_status: Callable[[str], None],
                 report_error: Callable[[str, str], None], reload_run: Callable[[], None],
                 deterministic: bool = False, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._jobs = jobs
        self._inspector = inspector
        self._log_panel = log_panel
        self._status = show_status
        self._report = report_error
        self._reload_run = reload_run
        self._deterministic = deterministic
        self._last_result = None  # the previous evaluation shown (a step with no effect is said so)
        self.store = None  # the run's open ActivationStore (the inspector reads it), or None
        state.evaluationChanged.connect(self.on_evaluation)
        state.bundleChanged.connect(self._forget_result)
        state.labelsChanged.connect(self.save_labels)
        service.evalFailed.connect(self.on_eval_failed)
        inspector.recordRequested.connect(self.record_store)
        log_panel.cancelRequested.connect(jobs.cancel)
        jobs.progress.connect(self.on_job_progress)
        jobs.finished.connect(self.on_job_finished)

    # -- evaluations ---------------------------------------------------------------------------
    @Slot(object)
    def on_evaluation(self, evaluation) -> None:
        r, request = evaluation.result, evaluation.request
        previous, self._last_result = self._last_result, r
        timing = "" if self._deterministic else f" · {evaluation.latency_ms:.0f} ms click-to-metric"
        same = (request.action and previous is not None and len(previous.logit_diff) == len(r.logit_diff)
                and float(np.max(np.abs(np.asarray(previous.logit_diff) - np.asarray(r.logit_diff)), initial=0.0)) < 1e-7)
        effect = f" · no effect: no logit of the {len(r.logit_diff)} prompts moved" if same else ""
        self._status(f"loss {r.loss:.4f}, accuracy {r.accuracy:.1%} ({counted(len(request.nodes), 'node')}, "
                     f"{counted(len(request.edges), 'weight')} ablated, {request.mode}){effect}{timing}")
        if request.action:
            self._log_panel.log(f"{request.action}: loss {r.loss:.6f}, accuracy {r.accuracy:.4f}"
                                + (" (no effect: no logit moved)" if same else ""))

    @Slot(object)
    def _forget_result(self, _bundle) -> None:
        self._last_result = None

    @Slot(object)
    def on_eval_failed(self, failed) -> None:
        self._log_panel.log(f"error: {failed.message}")
        undone = self._state.can_undo()
        if undone:
            self._state.undo()
        self._report("Cannot evaluate this ablation",
                     failed.message + ("\n\nThe last ablation step was undone." if undone else ""))

    # -- the run's files -----------------------------------------------------------------------
    def open_store(self, bundle) -> str:
        """Open the run's activation store for the inspector (or explain why there is none). Returns
        why a store that exists cannot be used ("" when there is none or it opened)."""
        self.close_store()
        message = ""
        if bundle.store_path is not None:
            from engine import api

            try:
                self.store = api.ActivationStore.open(bundle.store_path, expected_model_hash=bundle.model_hash)
            except api.UserError as exc:
                message = (f"{exc}. The file is kept; the inspector shows no examples and resample ablation "
                           f"is off until you record a new store (Record activation store).")
        self._inspector.set_store(self.store, message)
        return message

    def close_store(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    @Slot(object)
    def save_labels(self, labels) -> None:
        b = self._state.bundle
        if b is None or dict(b.labels) == labels:
            return
        try:
            save_labels(b.derived, labels)  # atomic; a damaged labels.json is kept beside it
        except OSError as exc:
            self._log_panel.log(f"cannot save labels to {b.derived}: {exc}")

    # -- jobs ----------------------------------------------------------------------------------
    @Slot()
    def record_store(self) -> None:
        """Record an activation store for the shown run and task in the background."""
        b = self._state.bundle
        if b is None:
            self._report("No run loaded", "Open a run first (File > Open run folder…, Ctrl+Shift+O).")
            return
        from engine import api

        run, task = str(b.run_path), b.spec.task_file or b.task.name
        n_tokens = record_tokens(b.model_graph.n_nodes, b.config.model.n_ctx)

        def job():
            return api.record_store(run, n_tokens=n_tokens, tasks=[task])

        try:
            self._jobs.start("record store", job)
        except RuntimeError as exc:
            self._report("A job is running", str(exc))
            return
        self._inspector.set_recording(True)
        size = store_bytes(n_tokens, b.model_graph.n_nodes) / 1e9
        self._log_panel.log(f"recording an activation store for {b.run_name} (task {b.task.name}; {n_tokens:,} "
                            f"pretraining tokens, about {size:.2g} GB) into {b.derived}"
                            + ("" if n_tokens == RECORD_TOKENS else
                               f"; more tokens: circuit-engine record {run} --tokens N"))

    @Slot(str, object)
    def on_job_progress(self, name: str, event) -> None:
        total = getattr(event, "total_tokens", 0) or 0
        done = getattr(event, "done_tokens", 0) / total if total else getattr(event, "fraction", None)
        self._log_panel.set_progress(f"{name}: {getattr(event, 'kind', '')} %p%", done, True)
        if getattr(event, "message", ""):
            self._log_panel.log(f"{name}: {event.message}")

    @Slot(object)
    def on_job_finished(self, outcome) -> None:
        log = self._log_panel.log
        self._log_panel.set_progress("idle", 0.0, False)
        self._inspector.set_recording(False)
        log(f"{outcome.name}: {outcome.status}" + (f" ({outcome.message})" if outcome.message else ""))
        if outcome.status == "failed":
            self._report(f"{outcome.name} failed", outcome.message)
        if outcome.status == "done" and outcome.name == "record store" and self._state.bundle is not None:
            # Reload in the background so that the Ablator gets the recorded activations (resample
            # ablation); what is on screen (ablations, selection, view) comes back as a session.
            log("reloading the run with its new activation store")
            self._reload_run()
