"""The selected head's attention, following live ablations (issue 18; ``docs/architecture.md``,
"The click path").

When the selected node is a q, k or v node (site ``blocks.L.attn.q|k|v``, index ``i``: head
``i // d_head``), :class:`AttentionFollower` asks the ablation worker for that head's attention from
each prompt's last position (``engine.api.head_attention``) under the state's ablated nodes, mode and
baseline, and puts the answer into :meth:`AppState.set_attention`. Every held-out prompt is computed
at once, so choosing another pair only redraws.

It stays off the metrics path: an attention request is a slot of its own in the ablation worker
(drained after ``eval``, newest request wins), posted only once no evaluation is pending or in flight,
and after an ablation change only when the metrics have arrived and the user has paused for
:data:`QUIET_MS` (a burst of clicks costs one attention computation, after its last metrics). Results
for a request that is no longer the newest are dropped. Knows nothing about widgets; imports the
engine lazily, in the worker thread (:func:`compute_attention`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Slot

ATTENTION_KINDS = ("q", "k", "v")
QUIET_MS = 120  # after new metrics: how long the user must pause before the attention is recomputed


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
class AttentionRequest:
    """One head's attention under ablated ``nodes`` and ``edges`` (id strings) on top of ``baseline``."""

    id: int
    generation: int  # the ablation service's setup it was made for
    layer: int
    head: int
    nodes: tuple[str, ...]
    mode: str
    baseline: str
    edges: tuple[str, ...] = ()  # ablated single weights ("SRC->DST")

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def key(self) -> tuple:
        """What the answer depends on (two requests with one key get the same answer)."""
        return self.generation, self.layer, self.head, self.nodes, self.mode, self.baseline, self.edges


@dataclass(frozen=True, eq=False)
class HeadAttention:
    """The answer: ``weights`` (N, T) from each prompt's last position over its positions (0 after
    its end) and ``sink`` (N,) the sink's share; rows ``2i`` / ``2i+1`` are pair ``i`` sides A / B.
    ``error``: why there is no answer (weights and sink None)."""

    request: AttentionRequest
    weights: np.ndarray | None
    sink: np.ndarray | None
    error: str = ""


def compute_attention(ablator: Any, request: AttentionRequest) -> HeadAttention:
    """In the ablation worker's thread: the engine computes the head's attention on ``ablator``."""
    from engine import api  # torch: only ever imported in a worker thread

    weights, sink = api.head_attention(ablator, request.layer, request.head, nodes=request.nodes,
                                       mode=request.mode, baseline=request.baseline, edges=request.edges)
    return HeadAttention(request, weights, sink)


class AttentionFollower(QObject):
    """GUI-thread side: follows the state's selection, ablations and metrics, asks the ablation
    service for the selected head's attention and hands the newest answer to the state."""

    def __init__(self, state, service) -> None:
        super().__init__(service)
        self._state, self._service = state, service
        self._next_id = 0
        self._latest: AttentionRequest | None = None  # posted, not answered yet
        self._shown_key: tuple | None = None  # the key of the answer in the state
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._fire)
        state.bundleChanged.connect(self._on_bundle)
        state.selectionChanged.connect(self._on_selection)
        for signal in (state.ablationChanged, state.modeChanged, state.baselineChanged, state.evaluationChanged):
            signal.connect(self._on_change)

    # -- triggers ----------------------------------------------------------------------------
    @Slot(object)
    def _on_bundle(self, _bundle) -> None:
        self._timer.stop()
        self._latest, self._shown_key = None, None

    @Slot(object)
    def _on_selection(self, _node) -> None:
        self._schedule(0)

    @Slot(object)
    def _on_change(self, *_args) -> None:
        self._schedule(QUIET_MS)

    def _schedule(self, ms: int) -> None:
        self._timer.start(ms)  # restarts: a burst of changes waits for its end

    # -- requests ----------------------------------------------------------------------------
    def wanted(self) -> AttentionRequest | None:
        """The request the state calls for now (its id not yet assigned), or None."""
        s, service = self._state, self._service
        if s.bundle is None or not service.ready:
            return None
        target = head_of(s.selected, s.bundle.shape.d_head)
        if target is None:
            return None
        baseline = s.baseline if s.bundle.circuit is not None else "full"
        return AttentionRequest(-1, service.generation, target[0], target[1], tuple(sorted(s.ablation.nodes)),
                                s.mode, baseline, tuple(sorted(str(e) for e in s.ablation.edges)))

    @property
    def pending(self) -> bool:
        """Whether the attention on screen is not yet the one the state calls for."""
        want = self.wanted()
        return want is not None and want.key != self._shown_key

    @Slot()
    def _fire(self) -> None:
        want = self.wanted()
        if want is None:
            self._latest = None
            if self._state.attention is not None and self._state.bundle is not None:
                self._shown_key = None
                self._state.set_attention(None)
            return
        if self._service.eval_busy:
            return  # the metrics first: their arrival schedules this again
        if want.key == self._shown_key or (self._latest is not None and want.key == self._latest.key):
            return
        self._next_id += 1
        self._latest = replace(want, id=self._next_id)
        self._service.post_attention(self._latest)

    # -- answers (called by the service in the GUI thread) -------------------------------------
    def on_result(self, result: HeadAttention) -> None:
        if self._latest is None or result.request.id != self._latest.id:
            return  # a newer request is on its way
        self._latest = None
        self._shown_key = result.request.key
        self._state.set_attention(result)

    def on_failed(self, request: AttentionRequest, message: str) -> None:
        self.on_result(HeadAttention(request, None, None, message))
