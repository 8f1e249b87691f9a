"""Live ablation: one long-lived worker thread owns the Ablator; the newest request wins.

The click path (``docs/architecture.md``, "The click path"): :class:`AblationService` subscribes to
the :class:`app.model.state.AppState` itself. An ablation, mode or baseline change of the state
stores the new request and starts a short single-shot timer (0-16 ms) that coalesces bursts -> an
immutable :class:`EvalRequest` with a fresh id goes to the worker's single pending ``eval`` slot
(:mod:`app.workers.latest`: newer requests overwrite older ones) -> the worker evaluates through the
engine -> back on the GUI thread, results whose id is not the latest one are dropped and the latest
one goes to :meth:`AppState.set_evaluation`, whose ``evaluationChanged`` the metrics panel and the
window's status bar follow. A failed evaluation is ``evalFailed`` (the window undoes the step).

In zero and resample mode everything outside the circuit is ablated that way too
(:func:`engine.ablation.modes.circuit_mode_for`): the request carries that ``circuit_mode``, and the
worker returns the circuit alone under it with each result (computed once per mode and setup, in the
worker thread), which the metrics panel shows as its circuit row.

Loading a run or switching task is a ``setup`` request in a slot of its own (also newest-wins,
processed before evaluations); it bumps a generation number so that evaluations for the old setup
are dropped too. The window shows a loaded bundle (``setupDone``) by calling ``AppState.set_bundle``,
whose signals ask for the first evaluation.

The selected pair's trace (:mod:`app.workers.trace`: positions, attention, attributions) is a third
slot of the same worker, drained after ``eval`` and asked for only once the metrics are in, so it
never delays them more than one computation already running when a click comes.

The worker imports the engine lazily (torch is imported in the worker thread, after the window's
first paint). Closing: :meth:`AblationService.shutdown` stops the worker and waits for its thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from engine.ablation.modes import circuit_mode_for
from engine.scene.bundle import Bundle, RunCache, SetupSpec, load_bundle
from app.workers.trace import TraceFollower, TraceRequest, compute_trace
from app.workers.latest import Done, Failed, LatestWorker, WorkerThread
from app.workers import priority

COALESCE_MS = 0
HOLD = "ablation"  # the priority hold (app/workers/priority.py) from a click until its result is shown


@dataclass(frozen=True)
class EvalRequest:
    """One evaluation: ablate ``nodes`` and ``edges`` (id strings) on top of ``baseline``."""

    id: int
    generation: int
    nodes: tuple[str, ...]
    edges: tuple[str, ...]
    mode: str
    baseline: str
    t_click: float  # perf_counter() of the user action that caused it
    action: str = ""  # what the user did, for the history
    circuit_mode: str | None = None  # how everything outside the circuit is ablated (None: the circuit's own mode)


@dataclass(frozen=True)
class Evaluation:
    """A result shown to the user: the request, the engine's AblationResult, latency."""

    request: EvalRequest
    result: Any  # engine AblationResult
    latency_ms: float  # user action -> result back in the GUI thread
    circuit_result: Any = None  # the circuit alone, the rest ablated as request.circuit_mode says (None: no circuit)


class AblationWorker(LatestWorker):
    """Lives in its own thread; owns the run cache and the Ablator."""

    SLOTS = ("setup", "eval", "trace")  # drained in this order: metrics before the pair's trace

    def __init__(self) -> None:
        super().__init__()
        self._cache = RunCache()
        self._ablator = None
        self._generation = -1
        self._alone: dict = {}  # circuit_mode -> the circuit alone, for the current setup

    def process(self, kind: str, request: Any) -> Any:
        if kind == "setup":
            bundle, ablator = load_bundle(request, self._cache)
            self._ablator, self._generation, self._alone = ablator, request.generation, {}
            return bundle
        if request.generation != self._generation or self._ablator is None:
            return None  # made for a setup that has been replaced: nobody wants it
        with priority.interactive():  # background drawing waits (app/workers/priority.py)
            if kind == "trace":
                return compute_trace(self._ablator, request)
            ab, cm = self._ablator, request.circuit_mode
            result = ab.evaluate(request.nodes, request.edges, request.mode, request.baseline, circuit_mode=cm)
            if ab.circuit is not None and cm not in self._alone:
                self._alone[cm] = ab.evaluate((), (), cm or ab.circuit_mode, "circuit", circuit_mode=cm)
            return result, self._alone.get(cm)


class AblationService(QObject):
    """GUI-side face of the worker: follows the state, coalesces, numbers requests, drops stale
    results and puts the latest one into the state."""

    setupDone = Signal(object)  # Bundle
    setupFailed = Signal(object)  # Failed
    evalFailed = Signal(object)  # Failed

    def __init__(self, state, parent: QObject | None = None, coalesce_ms: int = COALESCE_MS) -> None:
        super().__init__(parent)
        self._state = state
        self._worker = AblationWorker()
        self._worker.done.connect(self._on_done)
        self._worker.failed.connect(self._on_failed)
        self._owner = WorkerThread(self._worker, "ablation-worker", self)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(max(0, min(16, coalesce_ms)))
        self._timer.timeout.connect(self._flush)
        self._generation = 0  # the newest setup asked for
        self._active = -1  # the setup the worker's Ablator belongs to (-1: none yet)
        self._next_id = 0
        self._latest_id = -1
        self._answered = -1  # the newest evaluation that came back (done or failed)
        self._pending: tuple | None = None
        self.dropped = 0  # stale results dropped (for tests and the benchmark)
        self._closed = False
        self.busy_setup = False
        state.ablationChanged.connect(self._on_ablation)
        state.modeChanged.connect(self._on_mode)
        state.baselineChanged.connect(self._on_baseline)
        self.trace = TraceFollower(state, self)  # after the connections above: metrics first

    # -- setup ------------------------------------------------------------------------------
    def load(self, spec: SetupSpec) -> int:
        """Ask the worker to load ``spec``; returns its generation number."""
        self._generation += 1
        self._pending = None
        self.busy_setup = True
        self._worker.post("setup", replace(spec, generation=self._generation))
        return self._generation

    @property
    def ready(self) -> bool:
        """Whether a setup has arrived (evaluations are possible)."""
        return self._active >= 0

    @property
    def generation(self) -> int:
        """The setup the worker's Ablator belongs to (-1: none yet)."""
        return self._active

    @property
    def eval_busy(self) -> bool:
        """Whether an evaluation is waiting to be posted or has not come back yet."""
        return self._pending is not None or self._latest_id != self._answered

    def post_trace(self, request: TraceRequest) -> None:
        """Ask the worker for the pair's trace (:mod:`app.workers.trace`; newest wins)."""
        self._worker.post("trace", request)

    # -- the state's changes become requests ----------------------------------------------------
    @Slot(object)
    def _on_ablation(self, ablation) -> None:
        self.request_current(ablation.action, ablation.t_action)

    @Slot(str)
    def _on_mode(self, mode: str) -> None:
        self.request_current(f"ablate with {mode}")

    @Slot(str)
    def _on_baseline(self, baseline: str) -> None:
        self.request_current(f"on top of the {'circuit' if baseline == 'circuit' else 'full model'}")

    def request_current(self, action: str = "baseline", t_action: float | None = None) -> None:
        """Evaluate the state's current ablation set (nothing while no run is shown)."""
        s = self._state
        if s.bundle is None:
            return
        baseline = s.baseline if s.bundle.circuit is not None else "full"
        self.request(s.ablation.nodes, s.ablation.edges, s.mode, baseline, t_action, action)

    # -- evaluations -------------------------------------------------------------------------
    def request(self, nodes, edges, mode: str, baseline: str, t_click: float | None = None,
                action: str = "") -> None:
        """Evaluate this ablation set soon (bursts within the coalescing interval become one)."""
        self._pending = (tuple(sorted(nodes)), tuple(sorted(edges)), mode, baseline,
                         time.perf_counter() if not t_click else t_click, action)
        priority.hold(HOLD)  # until the result is shown: background drawing waits
        if not self._timer.isActive():
            self._timer.start()

    @Slot()
    def _flush(self) -> None:
        if self._pending is None or not self.ready:
            return
        nodes, edges, mode, baseline, t_click, action = self._pending
        self._pending = None
        self._next_id += 1
        self._latest_id = self._next_id
        self._worker.post("eval", EvalRequest(self._next_id, self._active, nodes, edges, mode,
                                              baseline, t_click, action, circuit_mode_for(mode)))

    # -- results (GUI thread) ---------------------------------------------------------------------
    @Slot(object)
    def _on_done(self, done: Done) -> None:
        if self._closed:
            return
        if done.kind == "setup":
            if done.request.generation != self._generation:
                return  # an older setup finished after a newer one was asked for
            self._active = self._generation
            self._latest_id = self._answered = -1
            self.busy_setup = False
            self.setupDone.emit(done.result)
            if self._pending is not None:
                self._flush()
            return
        if done.kind == "trace":
            if done.request.generation == self._active:
                self.trace.on_result(done.result)
            return
        request: EvalRequest = done.request
        if request.id == self._latest_id:
            self._answered = request.id
        if request.id != self._latest_id or request.generation != self._active:
            self.dropped += 1
            self._release_hold()
            return
        latency = 1000.0 * (time.perf_counter() - request.t_click)
        result, alone = done.result
        self._state.set_evaluation(Evaluation(request, result, latency, alone))
        self._release_hold()

    def _release_hold(self) -> None:
        if not self.eval_busy:
            priority.release(HOLD)

    @Slot(object)
    def _on_failed(self, failed: Failed) -> None:
        if self._closed:
            return
        if failed.kind == "setup":
            if failed.request.generation == self._generation:  # the worker keeps the old setup
                self.busy_setup = False
                priority.release(HOLD)  # a request waiting for this setup will not run now
                self.setupFailed.emit(failed)
        elif failed.kind == "trace":
            self.trace.on_failed(failed.request, failed.message)
        elif failed.request.id == self._latest_id:
            self._answered = failed.request.id
            self.evalFailed.emit(failed)
            self._release_hold()

    def shutdown(self) -> None:
        """Stop the worker and wait for its thread (called when the window closes); results that
        arrive later are ignored."""
        self._closed = True
        self._timer.stop()
        self._owner.stop()
        priority.release(HOLD)


__all__ = ["AblationService", "AblationWorker", "Bundle", "EvalRequest", "Evaluation", "SetupSpec"]
