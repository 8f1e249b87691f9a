"""The selected pair traced under the live ablations (issue 18; ``docs/architecture.md``, "The click
path"): every node at every position of prompts A and B, every head's attention pattern, node effects
and, from those, weight attributions (:func:`engine.api.trace_pair`).

:class:`TraceFollower` asks the ablation worker for a trace of the state's pair under its ablated
nodes, weights, mode and baseline whenever something needs one: a node is selected (the inspector's
position and attention strips, the graph's token rows) or the edges show attributions. The answer goes
to :meth:`AppState.set_trace`. One trace is two prompts, one forward and one backward: ~15 ms on
the demo.

It stays off the metrics path: a trace request is a slot of its own in the ablation worker (drained
after ``eval``, newest request wins), posted only once no evaluation is pending or in flight, and
after an ablation change only when the metrics have arrived and the user has paused for
:data:`QUIET_MS` (a burst of clicks costs one trace, after its last metrics). Results for a request
that is no longer the newest are dropped. Knows nothing about widgets; imports the engine lazily, in
the worker thread (:func:`compute_trace`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import QObject, QTimer, Slot

ATTENTION_KINDS = ("q", "k", "v")
QUIET_MS = 120  # after new metrics: how long the user must pause before the trace is recomputed


def head_of(node: str | None, d_head: int) -> tuple[int, int] | None:
    """``(layer, head)`` of a q, k or v node id (``blocks.1.attn.k:97`` -> ``(1, 6)`` with d_head 16);
    None for any other node."""
    if not node or d_head <= 0:
        return None
    site, _, idx = node.rpartition(":")
    parts = site.split(".")
    if len(parts) != 4 or parts[0] != "blocks" or parts[2] != "attn" or parts[3] not in ATTENTION_KINDS:
        return None
    if not (parts[1].isdigit() and idx.isdigit()):
        return None
    return int(parts[1]), int(idx) // d_head


@dataclass(frozen=True)
class TraceRequest:
    """Pair ``pair`` traced with ``nodes`` and ``edges`` (id strings) ablated on top of ``baseline``."""

    id: int
    generation: int  # the ablation service's setup it was made for
    pair: int
    nodes: tuple[str, ...]
    mode: str
    baseline: str
    edges: tuple[str, ...] = ()  # ablated single weights ("SRC->DST")

    @property
    def key(self) -> tuple:
        """What the answer depends on (two requests with one key get the same answer)."""
        return self.generation, self.pair, self.nodes, self.mode, self.baseline, self.edges


@dataclass(frozen=True, eq=False)
class TraceResult:
    """The answer: ``trace`` (an engine ``PairTrace``), or ``error`` saying why there is none."""

    request: TraceRequest
    trace: Any
    error: str = ""


def compute_trace(ablator: Any, request: TraceRequest) -> TraceResult:
    """In the ablation worker's thread: the engine traces the pair on ``ablator``."""
    from engine import api  # torch: only ever imported in a worker thread
    from engine.ablation.modes import circuit_mode_for

    # as the click's evaluation: zero and resample ablate the rest of the model that way too
    trace = api.trace_pair(ablator, request.pair, request.nodes, request.edges, request.mode, request.baseline,
                           circuit_mode_for(request.mode))
    return TraceResult(request, trace)


class TraceFollower(QObject):
    """GUI-thread side: follows the state's pair, selection, edge mode, ablations and metrics, asks the
    ablation service for a trace when one is needed and hands the newest answer to the state."""

    def __init__(self, state, service) -> None:
        super().__init__(service)
        self._state, self._service = state, service
        self._next_id = 0
        self._latest: TraceRequest | None = None  # posted, not answered yet
        self._shown_key: tuple | None = None  # the key of the answer in the state
        self._forced = False  # asked for once, whether or not anything shows it (an export)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._fire)
        state.bundleChanged.connect(self._on_bundle)
        for signal in (state.selectionChanged, state.pairChanged, state.edgeModeChanged):
            signal.connect(self._on_view)
        for signal in (state.ablationChanged, state.modeChanged, state.baselineChanged, state.evaluationChanged):
            signal.connect(self._on_change)

    # -- triggers ----------------------------------------------------------------------------
    @Slot(object)
    def _on_bundle(self, _bundle) -> None:
        self._timer.stop()
        self._latest, self._shown_key = None, None

    @Slot(object)
    def _on_view(self, *_args) -> None:
        self._timer.start(0)

    @Slot(object)
    def _on_change(self, *_args) -> None:
        self._timer.start(QUIET_MS)  # restarts: a burst of changes waits for its end

    # -- requests ----------------------------------------------------------------------------
    def needed(self) -> bool:
        """Whether anything on screen shows the trace: a selected node, or attribution edges."""
        s = self._state
        return self._forced or s.selected is not None or s.edge_mode == "attribution"

    def wanted(self) -> TraceRequest | None:
        """The request the state calls for now (its id not yet assigned), or None."""
        return self._request() if self.needed() else None

    def _request(self) -> TraceRequest | None:
        """The request for the state's pair and ablations (None before a run is ready)."""
        s, service = self._state, self._service
        if s.bundle is None or not service.ready:
            return None
        baseline = s.baseline if s.bundle.circuit is not None else "full"
        return TraceRequest(-1, service.generation, s.pair, tuple(sorted(s.ablation.nodes)), s.mode, baseline,
                            tuple(sorted(str(e) for e in s.ablation.edges)))

    def current(self):
        """The state's trace if it is the one the state calls for now (pair, ablations), else None."""
        want, t = self._request(), self._state.trace
        if want is None or t is None or t.trace is None or self._shown_key != want.key:
            return None
        return t

    def force(self) -> None:
        """Ask for the trace even when nothing shows it (an export wants the pair's attributions)."""
        if not self._forced:
            self._forced = True
            self._timer.start(0)

    @property
    def pending(self) -> bool:
        """Whether the trace on screen is not yet the one the state calls for."""
        want = self.wanted()
        return want is not None and want.key != self._shown_key

    @Slot()
    def _fire(self) -> None:
        want = self.wanted()
        if want is None:
            self._latest = None
            return  # the last trace stays in the state: it is still true for what it says
        if self._service.eval_busy:
            return  # the metrics first: their arrival schedules this again
        if want.key == self._shown_key or (self._latest is not None and want.key == self._latest.key):
            return
        self._next_id += 1
        self._latest = replace(want, id=self._next_id)
        self._service.post_trace(self._latest)

    # -- answers (called by the service in the GUI thread) -------------------------------------
    def on_result(self, result: TraceResult) -> None:
        if self._latest is None or result.request.id != self._latest.id:
            return  # a newer request is on its way
        self._latest = None
        self._forced = False
        self._shown_key = result.request.key
        self._state.set_trace(result)

    def on_failed(self, request: TraceRequest, message: str) -> None:
        self.on_result(TraceResult(request, None, message))
