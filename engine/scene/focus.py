"""Focus and compare, as graph algorithms on a :class:`engine.scene.layout.GraphData` (no Qt, no torch).

**Focus** (:func:`neighbourhood`): the nodes within ``hops`` steps of one node, walking the weights
shown at the |w| threshold in both directions, the q-k links (a query and the key it is multiplied
with) and the residual links (a write and the later read of the same residual channel: an identity
path, so that two hops from a read reach the writes it reads). ``hops`` 0 is the node alone.

**Degree filter** (:func:`degree_mask`): the nodes with at least ``min_degree`` weights (in + out)
among the weights shown at the |w| threshold, i.e. the degree the tooltip reports ("weights in
view"); q-k and residual links are not weights and do not count. Raising the threshold removes weights,
so fewer nodes pass.

:func:`emphasis` composes both into the one set of bright nodes that the view and the exports dim
everything else against (the intersection, with the focused node always kept); :func:`lit_edges`
says which weights (and q-k links) stay bright: those whose two ends are bright.

**Diff** (:func:`circuit_diff`, :func:`diff_view`): the nodes and weights only in circuit A, only in
B and in both, and the union as one graph laid out in the union's frame (``build_graph``'s
``layout_ids``), so that A or B drawn in the same frame keeps every node in place. Each node and edge
carries its side (:data:`DIFF_SIDES`). A weight in both keeps A's value (two formation steps differ in
value; B's is in ``DiffView.weight_b``). The circuits are anything with ``nodes`` (ids or NodeIds),
``edges`` (``src``, ``dst``, ``weight``) and ``name``: :mod:`engine.scene.diff` loads them from a run.

docs/architecture.md, "Layers" (``engine.scene``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from engine.scene.layout import GraphData, ModelShape, build_graph, split_id

DIFF_SIDES = ("both", "a", "b")  # a node's or edge's side in a diff: an index into this tuple
BOTH, A_ONLY, B_ONLY = 0, 1, 2
MAX_HOPS = 20  # beyond this a neighbourhood is the whole connected graph anyway
MAX_DEGREE = 100_000


@dataclass(frozen=True)
class FocusSettings:
    """What the view emphasises: the selected node's neighbourhood and a degree filter."""

    on: bool = False
    "dim every node outside the selected node's neighbourhood"
    hops: int = 1
    "the neighbourhood's radius in hops (0: the node alone)"
    min_degree: int = 0
    "dim nodes with fewer weights (in + out, at the |w| threshold); 0: off"

    def __post_init__(self) -> None:
        if isinstance(self.hops, bool) or not isinstance(self.hops, int) or not 0 <= self.hops <= MAX_HOPS:
            raise ValueError(f"hops must be a whole number from 0 to {MAX_HOPS}, got {self.hops!r}")
        if (isinstance(self.min_degree, bool) or not isinstance(self.min_degree, int)
                or not 0 <= self.min_degree <= MAX_DEGREE):
            raise ValueError(f"min_degree must be a whole number from 0 to {MAX_DEGREE}, got {self.min_degree!r}")

    @property
    def active(self) -> bool:
        return self.on or self.min_degree > 0


def shown_edges(graph: GraphData, threshold: float = 0.0) -> np.ndarray:
    """(E,) bool: the weights at or above the |w| threshold (as the view shows them)."""
    return np.abs(graph.weight) >= threshold


def _links(graph: GraphData, threshold: float, residual: bool) -> tuple[np.ndarray, np.ndarray]:
    keep = shown_edges(graph, threshold)
    parts = [(graph.src[keep], graph.dst[keep]), (graph.qk[:, 0], graph.qk[:, 1])]
    if residual:
        parts.append((graph.resid[:, 0], graph.resid[:, 1]))
    return (np.concatenate([p[0] for p in parts]).astype(np.int64),
            np.concatenate([p[1] for p in parts]).astype(np.int64))


def neighbourhood(graph: GraphData, node: str, hops: int, threshold: float = 0.0,
                  residual: bool = True) -> np.ndarray:
    """(n,) bool: the nodes within ``hops`` of ``node`` (see the module docstring); all False when
    ``node`` is not in the graph."""
    seen = np.zeros(graph.n_nodes, bool)
    i = graph.index.get(node)
    if i is None:
        return seen
    seen[i] = True
    a, b = _links(graph, threshold, residual)
    frontier = seen.copy()
    for _ in range(max(0, int(hops))):
        nxt = np.zeros_like(seen)
        nxt[b[frontier[a]]] = True
        nxt[a[frontier[b]]] = True
        nxt &= ~seen
        if not nxt.any():
            break
        seen |= nxt
        frontier = nxt
    return seen


def degrees(graph: GraphData, threshold: float = 0.0) -> np.ndarray:
    """(n,) in + out degree of each node over the weights shown at the threshold."""
    keep = shown_edges(graph, threshold)
    n = graph.n_nodes
    return np.bincount(graph.src[keep], minlength=n) + np.bincount(graph.dst[keep], minlength=n)


def degree_mask(graph: GraphData, min_degree: int, threshold: float = 0.0) -> np.ndarray:
    """(n,) bool: nodes with at least ``min_degree`` shown weights (everything for 0)."""
    if min_degree <= 0:
        return np.ones(graph.n_nodes, bool)
    return degrees(graph, threshold) >= min_degree


def emphasis_mask(graph: GraphData, selected: str | None, settings: FocusSettings,
                  threshold: float = 0.0) -> np.ndarray | None:
    """(n,) bool of the bright nodes, or None when nothing is dimmed (focus off or no node selected
    in this graph, and no degree filter). Focus and degree filter intersect; the focused node stays."""
    lit = None
    centre = graph.index.get(selected) if selected is not None else None
    if settings.on and centre is not None:
        lit = neighbourhood(graph, selected, settings.hops, threshold)
    if settings.min_degree > 0:
        deg = degree_mask(graph, settings.min_degree, threshold)
        lit = deg if lit is None else lit & deg
        if settings.on and centre is not None:
            lit[centre] = True
    return lit


def emphasis(graph: GraphData, selected: str | None, settings: FocusSettings,
             threshold: float = 0.0) -> frozenset[str] | None:
    """The ids of the bright nodes (:func:`emphasis_mask`), or None: every node bright."""
    lit = emphasis_mask(graph, selected, settings, threshold)
    return None if lit is None else frozenset(graph.ids[i] for i in np.flatnonzero(lit).tolist())


def node_mask(graph: GraphData, nodes: frozenset[str] | set[str] | None) -> np.ndarray | None:
    """(n,) bool of ``nodes`` in ``graph``; None stays None (everything)."""
    if nodes is None:
        return None
    return np.fromiter((i in nodes for i in graph.ids), bool, graph.n_nodes)


def lit_edges(graph: GraphData, lit: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """((E,) weights, (Q,) q-k links) whose two ends are bright; (None, None) when all are."""
    if lit is None:
        return None, None
    return lit[graph.src] & lit[graph.dst], lit[graph.qk[:, 0]] & lit[graph.qk[:, 1]]


# ---------------------------------------------------------------------------------------------
# Diff of two circuits


def _node_key(node: str) -> tuple[int, int, int]:
    layer, kind, channel = split_id(node)
    return (1 << 20 if layer < 0 else layer), kind, channel


def _sorted(nodes: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(nodes, key=_node_key))


def _edge_ids(circuit: Any) -> dict[str, float]:
    e = circuit.edges
    return {f"{s}->{d}": float(w) for s, d, w in zip(e.src, e.dst, np.asarray(e.weight).tolist())}


@dataclass(frozen=True)
class CircuitDiff:
    """Node and weight ids only in A, only in B and in both (nodes in layout order, weights by id)."""

    a: str  # A's name
    b: str
    nodes_a: tuple[str, ...]  # only in A
    nodes_b: tuple[str, ...]
    nodes_both: tuple[str, ...]
    edges_a: tuple[str, ...]  # "SRC->DST", only in A
    edges_b: tuple[str, ...]
    edges_both: tuple[str, ...]

    def counts(self) -> dict[str, dict[str, int]]:
        return {"nodes": {"a": len(self.nodes_a), "b": len(self.nodes_b), "both": len(self.nodes_both)},
                "weights": {"a": len(self.edges_a), "b": len(self.edges_b), "both": len(self.edges_both)}}

    def summary(self) -> str:
        """``circuit A vs B: x only in A, y only in B, z in both`` (nodes; then the weights)."""
        c = self.counts()

        def part(what: str) -> str:
            n = c[what]
            noun = what[:-1] + "s" * (n["a"] != 1)
            return f"{n['a']:,} {noun} only in {self.a}, {n['b']:,} only in {self.b}, {n['both']:,} in both"
        return f"circuit {self.a} vs {self.b}: {part('nodes')}; {part('weights')}"

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "counts": self.counts(),
                "nodes": {"a": list(self.nodes_a), "b": list(self.nodes_b), "both": list(self.nodes_both)},
                "weights": {"a": list(self.edges_a), "b": list(self.edges_b), "both": list(self.edges_both)}}


def circuit_diff(a: Any, b: Any, a_name: str | None = None, b_name: str | None = None) -> CircuitDiff:
    """What is only in circuit ``a``, only in ``b`` and in both (see the module docstring)."""
    na, nb = {str(n) for n in a.nodes}, {str(n) for n in b.nodes}
    ea, eb = set(_edge_ids(a)), set(_edge_ids(b))
    return CircuitDiff(a_name or str(getattr(a, "name", "A")), b_name or str(getattr(b, "name", "B")),
                       _sorted(na - nb), _sorted(nb - na), _sorted(na & nb),
                       tuple(sorted(ea - eb)), tuple(sorted(eb - ea)), tuple(sorted(ea & eb)))


@dataclass(frozen=True, eq=False)
class DiffView:
    """Two circuits in one graph: the union, each node and weight with its side (:data:`DIFF_SIDES`)."""

    diff: CircuitDiff
    graph: GraphData  # the union, in the union's frame
    node_side: np.ndarray  # (n,) int8 index into DIFF_SIDES
    edge_side: np.ndarray  # (E,) int8
    weight_b: np.ndarray  # (E,) float32: B's value of each weight (NaN where B lacks it)
    partner: str | None = None  # B's file, when it came from one

    def header(self) -> str:
        return self.diff.summary()


def diff_view(shape: ModelShape, a: Any, b: Any, a_name: str | None = None, b_name: str | None = None,
              partner: str | None = None) -> DiffView:
    """The diff of ``a`` and ``b`` with their union laid out (A's nodes first, then B's own)."""
    diff = circuit_diff(a, b, a_name, b_name)
    union = _sorted({*diff.nodes_both, *diff.nodes_a, *diff.nodes_b})
    wa, wb = _edge_ids(a), _edge_ids(b)
    edges = sorted(set(wa) | set(wb))
    weight = np.array([wa.get(e, wb.get(e, 0.0)) for e in edges], np.float32)
    src, dst = [e.split("->", 1)[0] for e in edges], [e.split("->", 1)[1] for e in edges]
    graph = build_graph(shape, union, src, dst, weight, layout_ids=union)
    in_a, in_b = {str(n) for n in a.nodes}, {str(n) for n in b.nodes}
    node_side = np.array([BOTH if i in in_a and i in in_b else A_ONLY if i in in_a else B_ONLY for i in graph.ids],
                         np.int8).reshape(-1)
    ids = [graph.edge_id(e) for e in range(graph.n_edges)]
    edge_side = np.array([BOTH if e in wa and e in wb else A_ONLY if e in wa else B_ONLY for e in ids],
                         np.int8).reshape(-1)
    weight_b = np.array([wb.get(e, np.nan) for e in ids], np.float32).reshape(-1)
    return DiffView(diff, graph, node_side, edge_side, weight_b, partner)
