"""What the graph view shows, as one immutable piece of plain data: the input of every export.

:func:`build_snapshot` takes a loaded :class:`engine.scene.bundle.Bundle` (run, task, circuit, layouts, the
selected pair's tokens) and a view state in the shape of a :class:`engine.scene.session.Session` (view,
mode, baseline, ablations, labels, selection, pair, |w| threshold, view range). The window builds
its snapshot from its live state and the range on screen; :mod:`engine.scene.headless` (behind
``circuit-engine export`` and ``circuit-inspector export``) from a run loaded the same way and a
session file or options. Both then go through the same writers (``engine.scene.export``) and, for
pictures, the app's renderer, which is why a headless export equals the window's export of the
same view.

:func:`view_document` turns a snapshot into the JSON-shaped document that the data formats write
(schema in ``engine/scene/export.py``). Knows nothing about Qt: positions are the layout's data
coordinates; the renderer maps them to pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.scene.focus import B_ONLY, DIFF_SIDES, FocusSettings, emphasis_mask, lit_edges
from engine.scene.attribution import edge_attribution, node_effects, shown as shown_side
from engine.scene.layout import GraphData, io_edges, logit_positions, token_positions

IO_EDGES_SHOWN = 48  # strongest display-only embedding/unembedding edges drawn (as in the view)
FIT_PADDING = 0.02  # fraction of the range added on each side when fitting (pyqtgraph's default)
VIEW_KIND = "circuit-inspector/view"
VIEW_SCHEMA_VERSION = 1


def counted(n: int, noun: str) -> str:
    """``1 weight``, ``2 weights``, ``1,024 nodes``: a count with its noun in the right number."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


@dataclass(frozen=True, eq=False)
class ViewSnapshot:
    """One view, ready to render or to write. Immutable; arrays are not modified after building."""

    run: str
    run_name: str
    task: str
    circuit: str | None  # the circuit file shown, None when the task has none
    circuit_name: str | None
    view: str  # what is drawn: "circuit" or "model"
    mode: str
    baseline: str
    graph: GraphData
    in_circuit: np.ndarray | None  # (n,) bool, whole-model view of a run with a circuit
    ablated_nodes: tuple[str, ...]
    ablated_edges: tuple[str, ...]
    selected: str | None
    labels: dict[str, str]
    threshold: float
    pair: int
    view_range: tuple[float, float, float, float]  # x0, x1, y0, y1 in layout units
    size: tuple[int, int]  # the view in pixels (an image at scale 1)
    tokens: tuple[str, ...]  # the input tokens shown (the end of side A's prompt)
    token_x: np.ndarray  # (len(tokens),)
    targets: tuple[str, str]  # side A's and side B's target token
    logit_x: np.ndarray  # (2,)
    io_segs: np.ndarray  # (K, 4) display-only embedding/unembedding edges
    io_weight: np.ndarray  # (K,)
    metrics: dict[str, Any]  # {"full", "circuit", "now"}: {"loss", "accuracy"} or None; "circuit" adds "ablation"
    emphasis: np.ndarray | None = None  # (n,) bool: the bright nodes (focus, degree filter); None: all
    focus: dict[str, Any] | None = None  # {"on", "hops", "min_degree"} when one of them dims nodes
    diff: Any = None  # engine.scene.focus.DiffView: the circuit compared with another (graph is their union)
    attribution: np.ndarray | None = None  # (2, E) each weight's attribution on the pair's A and B (a trace)
    effects: np.ndarray | None = None  # (2, n) each node's estimated effect on A's and B's logit diff (NaN: none)
    trace_mode: str | None = None  # the ablation the effects estimate (the trace's mode)
    edge_mode: str = "weight"  # what edges and node colours show: "weight" or "attribution"
    side: str = "A"  # attribution: A, B or A-B

    @property
    def shows_attribution(self) -> bool:
        """Whether edges and node fills follow the pair's attribution (attribution mode, with a trace)."""
        return self.edge_mode == "attribution" and self.attribution is not None

    def edge_values(self) -> tuple[np.ndarray, np.ndarray]:
        """((E,) what each edge's colour and width follow, (E,) bool which are drawn): the weights at or
        above the |w| threshold, or in attribution mode their attribution on the chosen side, among
        those, where it is not 0."""
        if self.shows_attribution:
            values = shown_side(self.attribution, self.side)
            return values, self.shown & (values != 0)
        return self.graph.weight, self.shown

    def node_heat(self) -> np.ndarray | None:
        """(n,) the nodes' estimated effects on the chosen side in attribution mode (NaN: none), else None."""
        return shown_side(self.effects, self.side) if self.shows_attribution else None

    @property
    def shown(self) -> np.ndarray:
        """(E,) bool: the weights at or above the |w| threshold."""
        return np.abs(self.graph.weight) >= self.threshold

    def header(self) -> str:
        """The view's header line, as plain text."""
        g = self.graph
        if self.diff is not None:
            what = self.diff.header()
        elif self.circuit is None:
            what = f"whole model ({g.n_nodes:,} nodes, {g.n_edges:,} weights), no circuit for this task"
        elif self.view == "circuit":
            what = f"circuit {self.circuit_name}: {counted(g.n_nodes, 'node')}, {counted(g.n_edges, 'weight')}"
        else:
            what = f"whole model: {g.n_nodes:,} nodes, {g.n_edges:,} weights; circuit nodes bright"
        return f"{self.run_name} · task {self.task} · {what}"

    def metrics_line(self) -> str:
        """Ablation and task loss in one line (``now`` is missing while an evaluation is pending)."""
        base = "the circuit" if self.baseline == "circuit" else "the full model"
        n, e = len(self.ablated_nodes), len(self.ablated_edges)
        parts = [f"{self.mode} ablation on top of {base}: {n} node{'s' * (n != 1)} and "
                 f"{e} weight{'s' * (e != 1)} ablated"]
        m = self.metrics
        if m.get("now"):
            parts.append(f"task loss {m['now']['loss']:.4f}, accuracy {m['now']['accuracy']:.1%}")
        alone = f"circuit alone ({m['circuit']['ablation']})" if (m.get("circuit") or {}).get("ablation") \
            else "circuit alone"
        refs = [f"{name} {m[key]['loss']:.4f}" for key, name in (("circuit", alone), ("full", "full model"))
                if m.get(key)]
        if refs:
            parts.append("(" + ", ".join(refs) + ")")
        if self.threshold > 0:
            parts.append(f"|w| ≥ {self.threshold:.3g}")
        return " · ".join(parts)


def fit_range(graph: GraphData) -> tuple[float, float, float, float]:
    """The range that shows the whole graph, input tokens and target logits included."""
    half = graph.width / 2 + 1.0
    lo, hi = -0.6, graph.top + 1.1
    px, py = 2 * half * FIT_PADDING, (hi - lo) * FIT_PADDING
    return -half - px, half + px, lo - py, hi + py


def result_metrics(result) -> dict[str, float] | None:
    """``{"loss", "accuracy"}`` of an engine AblationResult (None stays None)."""
    if result is None:
        return None
    return {"loss": float(result.loss), "accuracy": float(result.accuracy)}


def circuit_metrics(result) -> dict[str, Any] | None:
    """The circuit-alone row: loss, accuracy and ``ablation``, how everything outside the circuit was
    ablated (the circuit's own mode, or the view's zero or resample mode)."""
    if result is None:
        return None
    return {**result_metrics(result), "ablation": getattr(result, "circuit_mode", None)}


def _trace_fields(graph: GraphData, state, trace) -> dict[str, Any]:
    """The snapshot's attribution fields from a traced pair (None: no trace, none)."""
    out: dict[str, Any] = {"edge_mode": getattr(state, "edges", "weight"), "side": getattr(state, "side", "A")}
    if trace is None:
        return out
    return {**out, "attribution": edge_attribution(graph, trace), "effects": node_effects(graph, trace),
            "trace_mode": trace.mode}


def build_snapshot(bundle, state, size: tuple[int, int], now=None, circuit=None, diff=None,
                   trace=None) -> ViewSnapshot:
    """The view of ``bundle`` in ``state`` (a Session-like object) at ``size`` pixels; ``now`` is
    the engine's result for the state's ablation (None if it is not known yet); ``circuit`` the
    circuit alone as the view's mode ablates the rest of the model (None: ``bundle.circuit_result``,
    the circuit's own mode); ``diff`` the circuit compared with another (a DiffView, drawn in the
    circuit view); ``trace`` the selected pair traced under the state's ablations (an engine
    ``PairTrace``: the weights' attributions and the nodes' effects). The state's focus settings dim
    what they dim in the window."""
    has_circuit = bundle.circuit is not None
    view = "circuit" if state.view == "circuit" and has_circuit else "model"
    diff = diff if view == "circuit" else None
    graph = diff.graph if diff is not None else bundle.circuit_graph if view == "circuit" else bundle.model_graph
    in_circuit = None if diff is None else diff.node_side != B_ONLY
    focus = FocusSettings(bool(getattr(state, "focus", False)), int(getattr(state, "focus_hops", 1)),
                          int(getattr(state, "min_degree", 0)))
    if view == "model" and has_circuit:
        kept = {str(n) for n in bundle.circuit.nodes}
        in_circuit = np.fromiter((i in kept for i in graph.ids), bool, graph.n_nodes)
    tv = bundle.task_view
    pair = max(0, min(int(state.pair), len(tv.pairs) - 1))
    a, b = 2 * pair, 2 * pair + 1
    toks = tv.tokens[a]
    token_x = token_positions(graph.width, len(toks))
    tokens = tuple(toks[len(toks) - len(token_x):])
    anchor = float(token_x[-1]) if len(token_x) else 0.0
    segs, w = io_edges(graph, tv.embed[a], tv.unembed[a], tv.unembed[b], anchor)
    keep = np.argsort(-np.abs(w), kind="stable")[:IO_EDGES_SHOWN]
    metrics = {"full": result_metrics(bundle.full),
               "circuit": circuit_metrics(circuit if circuit is not None else bundle.circuit_result),
               "now": result_metrics(now)}
    return ViewSnapshot(
        run=str(bundle.run_path), run_name=bundle.run_name, task=bundle.task.name,
        circuit=str(bundle.circuit_path) if has_circuit and bundle.circuit_path else None,
        circuit_name=bundle.circuit.name if has_circuit else None, view=view,
        mode=state.mode, baseline=state.baseline if has_circuit else "full", graph=graph, in_circuit=in_circuit,
        ablated_nodes=tuple(sorted(state.ablated_nodes)), ablated_edges=tuple(sorted(state.ablated_edges)),
        selected=state.selected, labels=dict(state.labels), threshold=float(state.threshold), pair=pair,
        view_range=tuple(state.view_range) if state.view_range else fit_range(graph),
        size=(int(size[0]), int(size[1])), tokens=tokens, token_x=token_x,
        targets=(tv.target_str[a], tv.target_str[b]), logit_x=logit_positions(graph.width),
        io_segs=segs[keep], io_weight=w[keep], metrics=metrics,
        emphasis=emphasis_mask(graph, state.selected, focus, float(state.threshold)),
        focus={"on": focus.on, "hops": focus.hops, "min_degree": focus.min_degree} if focus.active else None,
        diff=diff, **_trace_fields(graph, state, trace if trace is not None and trace.pair == pair else None))


def view_document(snap: ViewSnapshot) -> dict[str, Any]:
    """The snapshot as the JSON-shaped view document of ``engine.scene.export`` (every node and weight of
    the graph drawn, not only those inside the view range)."""
    g = snap.graph
    ablated, cut = set(snap.ablated_nodes), set(snap.ablated_edges)
    shown = snap.shown
    nodes = []
    for i, node in enumerate(g.ids):
        site, _, idx = node.rpartition(":")
        nodes.append({"id": node, "label": snap.labels.get(node, ""), "site": site, "layer": int(g.layer[i]),
                      "index": int(idx), "x": float(g.pos[i, 0]), "y": float(g.pos[i, 1]),
                      "ablated": node in ablated,
                      "in_circuit": bool(snap.in_circuit[i]) if snap.in_circuit is not None else snap.circuit is not None,
                      "selected": node == snap.selected})
    edges = [{"source": g.ids[s], "target": g.ids[d], "weight": float(w),
              "ablated": f"{g.ids[s]}->{g.ids[d]}" in cut, "shown": bool(sh)}
             for s, d, w, sh in zip(g.src.tolist(), g.dst.tolist(), g.weight.tolist(), shown.tolist())]
    _add_focus_and_sides(snap, nodes, edges)
    _add_attribution(snap, nodes, edges)
    return {"kind": VIEW_KIND, "schema_version": VIEW_SCHEMA_VERSION, "run": snap.run, "run_name": snap.run_name,
            "task": snap.task, "circuit": snap.circuit, "circuit_name": snap.circuit_name, "view": snap.view,
            "mode": snap.mode, "baseline": snap.baseline, "threshold": snap.threshold, "pair": snap.pair,
            "selected": snap.selected, "view_range": list(snap.view_range), "size": list(snap.size),
            "metrics": snap.metrics, "ablated_nodes": list(snap.ablated_nodes),
            "ablated_edges": list(snap.ablated_edges), "focus": snap.focus, "diff": _diff_header(snap),
            "attribution": _attribution_header(snap),
            "nodes": nodes, "edges": edges}


def _diff_header(snap: ViewSnapshot) -> dict[str, Any] | None:
    d = snap.diff
    if d is None:
        return None
    return {"a": d.diff.a, "b": d.diff.b, "a_circuit": snap.circuit, "b_circuit": d.partner, "counts": d.diff.counts()}


def _add_focus_and_sides(snap: ViewSnapshot, nodes: list[dict], edges: list[dict]) -> None:
    """``emphasised`` (focus, degree filter) and, in a diff, ``side`` (a, b, both) on every node and
    edge, plus each weight's value in B (``weight_b``, None where B lacks it)."""
    if snap.emphasis is not None:
        lit, _ = lit_edges(snap.graph, snap.emphasis)
        for row, on in zip(nodes, snap.emphasis.tolist()):
            row["emphasised"] = bool(on)
        for row, on in zip(edges, lit.tolist()):
            row["emphasised"] = bool(on)
    if snap.diff is not None:
        for row, side in zip(nodes, snap.diff.node_side.tolist()):
            row["side"] = DIFF_SIDES[side]
        for row, side, wb in zip(edges, snap.diff.edge_side.tolist(), snap.diff.weight_b.tolist()):
            row["side"] = DIFF_SIDES[side]
            row["weight_b"] = None if np.isnan(wb) else float(wb)


def _attribution_header(snap: ViewSnapshot) -> dict[str, Any] | None:
    if snap.attribution is None:
        return None
    return {"pair": snap.pair, "edges_show": snap.edge_mode, "side": snap.side, "effects_mode": snap.trace_mode,
            "edge": "weight x its source's signal on the pair's prompt (A, B): the source at the last position, "
                    "or into a key or value and from a value, at every position weighted by the head's "
                    "attention from the last position",
            "node": "estimated change of the prompt's logit diff (target - foil) when the node alone is "
                    "ablated (attribution patching, first order)"}


def _add_attribution(snap: ViewSnapshot, nodes: list[dict], edges: list[dict]) -> None:
    """With a traced pair: ``attribution_a`` / ``attribution_b`` on every weight, ``effect_a`` /
    ``effect_b`` on every node (None where the node's site was not traced)."""
    if snap.attribution is None:
        return
    for row, a, b in zip(edges, snap.attribution[0].tolist(), snap.attribution[1].tolist()):
        row["attribution_a"], row["attribution_b"] = float(a), float(b)
    for row, a, b in zip(nodes, snap.effects[0].tolist(), snap.effects[1].tolist()):
        row["effect_a"] = None if np.isnan(a) else float(a)
        row["effect_b"] = None if np.isnan(b) else float(b)
