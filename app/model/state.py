"""The window's single source of truth: the loaded bundle, the view, the ablation set, undo/redo.

:class:`AppState` is a QObject in the GUI thread; views subscribe to its signals and never keep
their own copy of the truth. Nodes and edges are id strings (``blocks.0.mlp.neuron:12``,
``SRC->DST``), the same names the engine, circuits and stores use. Every change to the ablation set
is one undo step (a multi-node gesture such as a rubber band is one step too). Each view (circuit,
whole model) keeps its own |w| threshold. A run that is newly opened starts from the defaults (circuit
view, mean ablation on top of the circuit, no threshold; a session may restore others afterwards);
another task or checkpoint of the same run keeps the view, mode and baseline the user chose (a task
without a circuit shows the whole model on top of the full model, without changing that choice).
The ablation modes and baselines are the engine's (:mod:`engine.ablation.modes`, torch-free). Knows
nothing about widgets, threads or the engine's computations: the ablation service
(:mod:`app.workers.ablation`) subscribes to the ablation, mode and baseline signals and hands each result back through :meth:`AppState.set_evaluation`
(``docs/architecture.md``, "The click path").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from engine.ablation.modes import BASELINES, MODES
from engine.scene.focus import FocusSettings
from engine.scene.attribution import SIDES

VIEWS = ("circuit", "model")
EDGE_MODES = ("weight", "attribution")
DEFAULTS = {"view": "circuit", "mode": "mean", "baseline": "circuit"}  # what a newly opened run starts from


@dataclass(frozen=True)
class Ablation:
    """An immutable ablation set plus the action that produced it."""

    nodes: frozenset[str] = frozenset()
    edges: frozenset[str] = frozenset()
    action: str = "reset"
    t_action: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class HistoryEntry:
    """One shown ablation step: what was done and the metrics it produced."""

    action: str
    n_nodes: int
    n_edges: int
    mode: str
    loss: float
    accuracy: float


def _shows(bundle) -> tuple | None:
    """What a bundle shows, as far as the history is concerned: model, task, circuit, checkpoint."""
    if bundle is None:
        return None
    return (bundle.run_path, bundle.model_hash, bundle.task.name, bundle.circuit_path, bundle.spec.checkpoint)


class AppState(QObject):
    """See the module docstring. Signals carry the new value."""

    bundleChanged = Signal(object)  # Bundle | None
    viewChanged = Signal(str)  # "circuit" | "model"
    ablationChanged = Signal(object)  # Ablation
    modeChanged = Signal(str)
    baselineChanged = Signal(str)
    selectionChanged = Signal(object)  # node id | None
    pairChanged = Signal(int)
    thresholdChanged = Signal(float)
    evaluationChanged = Signal(object)  # Evaluation | None
    traceChanged = Signal(object)  # TraceResult | None: the selected pair traced (app.workers.trace)
    edgeModeChanged = Signal(str)  # "weight" | "attribution" (and the side shown: AppState.side)
    historyChanged = Signal(object)  # tuple[HistoryEntry, ...]
    labelsChanged = Signal(object)  # dict
    nodeHeatChanged = Signal(object)  # app.graph.node_style.NodeHeat | None: a colour overlay on the nodes
    overlayChanged = Signal(object)  # str | None: the overlay asked for ("effects": node effects, app/panels/effects.py)
    emphasisChanged = Signal(object)  # frozenset[str] | None: nodes shown bright (focus, filters); None: all
    focusChanged = Signal(object)  # engine.scene.focus.FocusSettings: focus on the selection, minimum degree
    diffChanged = Signal(object)  # engine.scene.focus.DiffView | None: the circuit compared with another

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bundle = None
        self.view = DEFAULTS["view"]
        self.ablation = Ablation()
        self.mode = DEFAULTS["mode"]
        self.baseline = DEFAULTS["baseline"]
        self.selected: str | None = None
        self.pair = 0
        self.thresholds = {v: 0.0 for v in VIEWS}  # each view's own |w| threshold
        self._chosen = {"view": self.view, "baseline": self.baseline}  # the user's, kept over forced ones
        self.evaluation = None
        self.trace = None  # the selected pair traced under the current ablations (app.workers.trace)
        self.edge_mode = "weight"  # what edges show: their weights, or their attribution on the pair
        self.side = "A"  # attribution: side A, B or A-B (engine.scene.attribution.SIDES)
        self.history: tuple[HistoryEntry, ...] = ()
        self.labels: dict[str, str] = {}
        self.node_heat = None  # a colour overlay on the nodes (node effects, attributions), or None
        self.overlay: str | None = None  # the overlay asked for (sessions keep it), kept over runs and tasks
        self.emphasis: frozenset[str] | None = None  # nodes shown bright; every other one dimmed (None: all)
        self.focus = FocusSettings()  # kept over runs and tasks, like the ablation mode
        self.diff = None  # the circuit view compares the circuit with another (a DiffView), or None
        self.serial = 0  # bumped by every set_bundle (views key their caches on it)
        self._undo: list[Ablation] = []
        self._redo: list[Ablation] = []

    # -- bundle --------------------------------------------------------------------------------
    def set_bundle(self, bundle) -> None:
        """A new run/task: reset ablations, selection and thresholds. Another task of the same run
        keeps view, mode and baseline where it can; another run starts from :data:`DEFAULTS`. The
        history is kept only when the same model, task and circuit come back (a reload after
        recording an activation store)."""
        old, self.bundle = self.bundle, bundle
        if old is None or bundle is None or old.run_path != bundle.run_path:
            self.mode = DEFAULTS["mode"]
            self._chosen = {"view": DEFAULTS["view"], "baseline": DEFAULTS["baseline"]}
        self.view, self.baseline = self._chosen["view"], self._chosen["baseline"]
        if _shows(old) is None or _shows(old) != _shows(bundle):
            self.history = ()
        self.serial += 1
        self._undo.clear()
        self._redo.clear()
        self.ablation = Ablation(action="loaded")
        self.evaluation = None
        self.trace = None
        self.selected = None
        self.pair = 0
        self.thresholds = {v: 0.0 for v in VIEWS}
        self.labels = dict(bundle.labels) if bundle is not None else {}
        had_diff, self.diff = self.diff is not None, None  # a diff belongs to its bundle's circuit
        if bundle is None or bundle.circuit is None:  # forced: the user's choice comes back with a circuit
            self.view, self.baseline = "model", "full"
        if self.mode == "resample" and (bundle is None or not bundle.resample):
            self.mode = "mean"
        self.bundleChanged.emit(bundle)
        if had_diff or self.diff is not None:  # (a listener may compare the same circuit again)
            self.diffChanged.emit(self.diff)
        self.viewChanged.emit(self.view)
        self.modeChanged.emit(self.mode)
        self.baselineChanged.emit(self.baseline)
        self.ablationChanged.emit(self.ablation)
        self.selectionChanged.emit(None)
        self.historyChanged.emit(self.history)
        self.labelsChanged.emit(self.labels)

    @property
    def threshold(self) -> float:
        """The |w| threshold of the view on screen."""
        return self.thresholds[self.view]

    @property
    def graph(self):
        """The graph on screen: the circuit's, or the whole model's."""
        if self.bundle is None:
            return None
        if self.view == "circuit" and self.diff is not None:
            return self.diff.graph
        if self.view == "circuit" and self.bundle.circuit_graph is not None:
            return self.bundle.circuit_graph
        return self.bundle.model_graph

    # -- view settings -------------------------------------------------------------------------
    def set_view(self, view: str) -> None:
        if view not in VIEWS:
            raise ValueError(view)
        if view == "circuit" and (self.bundle is None or self.bundle.circuit is None):
            view = "model"
        if view != self.view:
            self.view = self._chosen["view"] = view
            self.viewChanged.emit(view)

    def switch_view(self) -> None:
        """Circuit <-> whole model (stays on the whole model when there is no circuit)."""
        self.set_view("model" if self.view == "circuit" else "circuit")

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        if mode != self.mode:
            self.mode = mode
            self.modeChanged.emit(mode)

    def set_baseline(self, baseline: str) -> None:
        if baseline not in BASELINES:
            raise ValueError(baseline)
        if baseline == "circuit" and (self.bundle is None or self.bundle.circuit is None):
            baseline = "full"
        if baseline != self.baseline:
            self.baseline = self._chosen["baseline"] = baseline
            self.baselineChanged.emit(baseline)

    def set_threshold(self, value: float) -> None:
        """The |w| threshold of the view on screen (the other view keeps its own)."""
        if value != self.threshold:
            self.thresholds[self.view] = float(value)
            self.thresholdChanged.emit(self.threshold)

    def select(self, node: str | None) -> None:
        if node != self.selected:
            self.selected = node
            self.selectionChanged.emit(node)

    def set_pair(self, pair: int) -> None:
        if pair != self.pair:
            self.pair = int(pair)
            self.pairChanged.emit(self.pair)

    def set_label(self, node: str, label: str) -> None:
        label = label.strip()
        if self.labels.get(node, "") == label:
            return
        if label:
            self.labels[node] = label
        else:
            self.labels.pop(node, None)
        self.labelsChanged.emit(self.labels)

    # -- ablation ------------------------------------------------------------------------------
    def _apply(self, nodes: frozenset[str], edges: frozenset[str], action: str) -> None:
        if nodes == self.ablation.nodes and edges == self.ablation.edges:
            return
        self._undo.append(self.ablation)
        self._redo.clear()
        self.ablation = Ablation(nodes, edges, action, time.perf_counter())
        self.ablationChanged.emit(self.ablation)

    def toggle_nodes(self, nodes: list[str], action: str | None = None) -> None:
        """Toggle one node; for several, ablate them all unless all are ablated (then restore)."""
        if not nodes:
            return
        current = self.ablation.nodes
        wanted = set(nodes)
        if wanted <= current:
            new, verb = current - wanted, "restore"
        else:
            new, verb = current | wanted, "ablate"
        what = nodes[0] if len(nodes) == 1 else f"{len(wanted)} nodes"
        self._apply(frozenset(new), self.ablation.edges, action or f"{verb} {what}")

    def toggle_edge(self, edge: str) -> None:
        edges = self.ablation.edges
        verb = "restore" if edge in edges else "ablate"
        self._apply(self.ablation.nodes, edges ^ {edge}, f"{verb} weight {edge}")

    def set_ablation(self, nodes, edges, action: str = "set") -> None:
        self._apply(frozenset(nodes), frozenset(edges), action)

    def clear_ablation(self) -> None:
        """Back to the baseline (one undo step)."""
        self._apply(frozenset(), frozenset(), "reset to baseline")

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> None:
        if self._undo:
            self._redo.append(self.ablation)
            prev = self._undo.pop()
            self.ablation = Ablation(prev.nodes, prev.edges, f"undo {self._redo[-1].action}", time.perf_counter())
            self.ablationChanged.emit(self.ablation)

    def redo(self) -> None:
        if self._redo:
            self._undo.append(self.ablation)
            nxt = self._redo.pop()
            self.ablation = Ablation(nxt.nodes, nxt.edges, f"redo {nxt.action}", time.perf_counter())
            self.ablationChanged.emit(self.ablation)

    # -- results -------------------------------------------------------------------------------
    def set_evaluation(self, evaluation) -> None:
        """A fresh result for the current ablation set; appended to the history."""
        self.evaluation = evaluation
        r = evaluation.result
        entry = HistoryEntry(evaluation.request.action or self.ablation.action, len(evaluation.request.nodes), len(evaluation.request.edges),
                             evaluation.request.mode, float(r.loss), float(r.accuracy))
        if not self.history or self.history[-1] != entry:
            self.history = (self.history + (entry,))[-500:]
            self.historyChanged.emit(self.history)
        self.evaluationChanged.emit(evaluation)

    def set_overlay(self, overlay: str | None) -> None:
        """Ask for a colour overlay on the nodes ("effects") or none; its panel computes and sets the heat."""
        if overlay != self.overlay:
            self.overlay = overlay
            self.overlayChanged.emit(overlay)

    def set_node_heat(self, heat) -> None:
        """Colour the nodes by ``heat`` (a NodeHeat: values per node id), or back to kinds (None)."""
        if heat is not self.node_heat:
            self.node_heat = heat
            self.nodeHeatChanged.emit(heat)

    def set_focus(self, focus: FocusSettings) -> None:
        """Focus on the selection (and its hops) and the minimum degree (app/model/focus.py dims the rest)."""
        if focus != self.focus:
            self.focus = focus
            self.focusChanged.emit(focus)

    def set_diff(self, diff) -> None:
        """Compare the circuit with another (a DiffView of this bundle's circuit), or stop (None); the
        circuit view then shows their union (``graph``)."""
        if diff is not self.diff:
            self.diff = diff
            self.diffChanged.emit(diff)

    def set_emphasis(self, nodes) -> None:
        """Show only ``nodes`` bright (a focus, a filter), every other node dimmed; None: all bright."""
        nodes = None if nodes is None else frozenset(nodes)
        if nodes != self.emphasis:
            self.emphasis = nodes
            self.emphasisChanged.emit(nodes)

    def set_trace(self, trace) -> None:
        """The selected pair traced under the current ablations (a TraceResult)."""
        self.trace = trace
        self.traceChanged.emit(trace)

    def set_edge_mode(self, mode: str, side: str | None = None) -> None:
        """Edges show their ``weight`` or their ``attribution`` on the selected pair (``side`` A, B
        or A-B; None keeps the side)."""
        if mode not in EDGE_MODES or (side is not None and side not in SIDES):
            raise ValueError((mode, side))
        side = self.side if side is None else side
        if (mode, side) != (self.edge_mode, self.side):
            self.edge_mode, self.side = mode, side
            self.edgeModeChanged.emit(mode)

    def current_trace(self):
        """The trace on screen if it was made for the selected pair, else None."""
        t = self.trace
        return t if t is not None and t.trace is not None and t.request.pair == self.pair else None
