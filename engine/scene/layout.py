"""Where every node of a circuit (or of the whole model) sits in the graph view: pure numpy.

Rows, bottom to top: the input tokens (y = 0), then for each layer ``L`` six rows (y = 1 + 6L + r):
attention reads, q/k/v (grouped by head: head 0's q, k, v channels, a gap, head 1's ...), attention
writes, MLP reads, MLP neurons, MLP writes; the two target logits on top (y = 1 + 6 * n_layer).

Residual channels are aligned: every read and write node of residual channel ``c`` (attention and
MLP, every layer) has the same x, so a channel reads as one vertical column through the model and
the residual links (a write reaching later reads of the same channel) are vertical lines. Each row is
centred on x = 0 and spread over the width of the widest row (at most ``MAX_SPACING`` apart), so a
small circuit stays compact and the whole model fills a wide, even band.

Knows nothing about Qt, torch or files: the site kinds come from the torch-free
:mod:`engine.sites`, so the view can be built before torch is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np

from engine.sites import FINAL_RESID, MLP_KINDS, RESIDUAL_KINDS as _RESIDUAL_NAMES, SITE_KINDS, SITE_STAGE

VIEWS = ("circuit", "model")  # the two graphs a view shows: a circuit, or the whole model
KINDS = SITE_KINDS + (FINAL_RESID,)  # a node's kind is its index into this tuple
FINAL_KIND = len(SITE_KINDS)  # final_resid: one row after the last layer, below the target logits
ROWS_PER_LAYER = 6  # attention: read, q/k/v, write; MLP: read, neurons, write
KIND_ROW = np.array([SITE_STAGE[k] + 3 * (k in MLP_KINDS) for k in KINDS])  # row inside a layer, per kind
RESIDUAL_KINDS = np.array([KINDS.index(k) for k in (*_RESIDUAL_NAMES, FINAL_RESID)])  # residual reads and writes
ROW_NAMES = ("attn read", "q·k·v by head", "attn write", "MLP read", "MLP neurons", "MLP write")  # short: the
# row names are the left axis of the view and of exported pictures, whose width the graph loses
HEAD_GAP = 2.0  # extra x units between two heads' q/k/v groups (in node units)
MAX_SPACING = 2.0  # sparse rows spread out at most this far (in node units)
MAX_TOKENS = 24  # input tokens shown under the graph


@dataclass(frozen=True)
class ModelShape:
    """The widths the layout needs (from ``RunConfig.model``)."""

    n_layer: int
    n_head: int
    d_head: int
    d_resid: int
    d_model: int
    d_mlp: int

    @classmethod
    def from_config(cls, m) -> "ModelShape":
        return cls(m.n_layer, m.n_head, m.d_head, m.d_resid, m.d_model, m.d_mlp)

    def kind_width(self, kind: int) -> int:
        name = KINDS[kind]
        if name == FINAL_RESID:
            return self.d_model
        if name in ("attn.read", "mlp.read"):
            return self.d_resid
        if name in ("attn.q", "attn.k", "attn.v"):
            return self.n_head * self.d_head
        return self.d_mlp if name == "mlp.neuron" else self.d_model

    @property
    def n_nodes(self) -> int:
        return self.n_layer * sum(self.kind_width(k) for k in range(FINAL_KIND)) + self.kind_width(FINAL_KIND)


@dataclass(frozen=True, eq=False)
class GraphData:
    """Nodes with positions and weight edges as index arrays. Immutable; safe across threads."""

    shape: ModelShape
    ids: tuple[str, ...]  # (n,) "blocks.L.kind:i"
    layer: np.ndarray  # (n,) int32
    kind: np.ndarray  # (n,) int32 index into KINDS
    channel: np.ndarray  # (n,) int32
    pos: np.ndarray  # (n, 2) float64
    src: np.ndarray  # (E,) int32 node index
    dst: np.ndarray  # (E,) int32
    weight: np.ndarray  # (E,) float32
    resid: np.ndarray  # (R, 2) int32 residual links (display only, not weights)
    width: float  # nodes lie in [-width / 2, width / 2]
    index: dict[str, int] = field(default_factory=dict, repr=False)
    qk: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32), repr=False)
    "(Q, 2) int32 (q node, k node) of one head and dimension: a query and the key it is multiplied with (display only)"

    @property
    def n_nodes(self) -> int:
        return len(self.ids)

    @property
    def n_edges(self) -> int:
        return int(self.src.shape[0])

    @property
    def has_final(self) -> bool:
        """Whether the graph has final_resid nodes (then their row sits under the target logits)."""
        return bool(np.any(self.kind == FINAL_KIND))

    @property
    def top(self) -> float:
        """y of the target-logit row."""
        return 1.0 + ROWS_PER_LAYER * self.shape.n_layer + (1.0 if self.has_final else 0.0)

    def index_of(self, node_id: str) -> int | None:
        return self.index.get(node_id)

    def edge_id(self, e: int) -> str:
        return f"{self.ids[self.src[e]]}->{self.ids[self.dst[e]]}"

    def degrees(self) -> tuple[np.ndarray, np.ndarray]:
        """(in-degree (n,), out-degree (n,)) over the weight edges."""
        n = self.n_nodes
        return (np.bincount(self.dst, minlength=n), np.bincount(self.src, minlength=n))

    def row_labels(self) -> list[tuple[float, str]]:
        """(y, text) of every row, tokens and logits included."""
        out = [(0.0, "input tokens")]
        for layer in range(self.shape.n_layer):
            for r, name in enumerate(ROW_NAMES):
                out.append((1.0 + ROWS_PER_LAYER * layer + r, f"L{layer} {name}"))
        if self.has_final:
            out.append((self.top - 1.0, "final residual"))
        out.append((self.top, "target logits"))
        return out

    def with_edges(self, src: np.ndarray, dst: np.ndarray, weight: np.ndarray) -> "GraphData":
        """The same nodes with other edges (benchmarks use synthetic ones)."""
        return replace(self, src=np.asarray(src, np.int32), dst=np.asarray(dst, np.int32),
                       weight=np.asarray(weight, np.float32))


def split_id(node_id: str) -> tuple[int, int, int]:
    """``"blocks.1.attn.v:7"`` -> (layer 1, kind 3, channel 7); ``"final_resid:7"`` -> (-1, FINAL_KIND,
    7) (its layer is the model's n_layer, which build_graph fills in); ValueError for anything else."""
    site, _, idx = node_id.rpartition(":")
    if site == FINAL_RESID and idx.isdigit():
        return -1, FINAL_KIND, int(idx)
    parts = site.split(".", 2)
    if len(parts) != 3 or parts[0] != "blocks" or parts[2] not in SITE_KINDS or not idx.isdigit():
        raise ValueError(f"not a node id: {node_id!r}")
    return int(parts[1]), KINDS.index(parts[2]), int(idx)


def all_node_ids(shape: ModelShape) -> list[str]:
    blocks = [f"blocks.{layer}.{KINDS[k]}:{i}" for layer in range(shape.n_layer) for k in range(FINAL_KIND)
              for i in range(shape.kind_width(k))]
    return blocks + [f"{FINAL_RESID}:{i}" for i in range(shape.kind_width(FINAL_KIND))]


def _parse(ids: Sequence[str], n_layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parsed = np.array([split_id(i) for i in ids], dtype=np.int64).reshape(-1, 3)
    parsed[parsed[:, 1] == FINAL_KIND, 0] = n_layer
    return tuple(parsed[:, j].astype(np.int32) for j in range(3))  # type: ignore[return-value]


def build_graph(shape: ModelShape, node_ids: Iterable[str] | None, edge_src: Sequence[str],
                edge_dst: Sequence[str], weight: np.ndarray, layout_ids: Iterable[str] | None = None) -> GraphData:
    """Lay out ``node_ids`` (``None``: every node of the model, every row spread over the full width)
    with the given weight edges; edges with an endpoint outside the nodes are left out.
    ``layout_ids``: place the nodes where a circuit of these nodes (and ours) would have them, so that
    circuits drawn in the same frame (formation's checkpoints) keep every shared node in place."""
    ids = tuple(all_node_ids(shape) if node_ids is None else node_ids)
    layer, kind, channel = _parse(ids, shape.n_layer)
    index = {node: i for i, node in enumerate(ids)}
    s = np.fromiter((index.get(a, -1) for a in edge_src), np.int64, len(edge_src))
    d = np.fromiter((index.get(b, -1) for b in edge_dst), np.int64, len(edge_dst))
    ok = (s >= 0) & (d >= 0)
    if layout_ids is None or node_ids is None:
        pos, width = layout(shape, layer, kind, channel, compact=node_ids is not None)
    else:
        frame = tuple(dict.fromkeys([*layout_ids, *ids]))
        frame_pos, width = layout(shape, *_parse(frame, shape.n_layer))
        where = {node: i for i, node in enumerate(frame)}
        pos = frame_pos[[where[node] for node in ids]].reshape(-1, 2)
    return GraphData(shape=shape, ids=ids, layer=layer, kind=kind, channel=channel, pos=pos,
                     src=s[ok].astype(np.int32), dst=d[ok].astype(np.int32),
                     weight=np.asarray(weight, np.float32)[ok], resid=residual_links(layer, kind, channel),
                     width=width, index=index, qk=qk_links(layer, kind, channel) if node_ids is not None else
                     np.zeros((0, 2), np.int32))


def _spread(natural: np.ndarray, extent: float, width: float, compact: bool = True) -> np.ndarray:
    """Centre natural positions (0 .. extent-1) on 0, spaced width / extent apart (at most
    MAX_SPACING when ``compact``)."""
    spacing = width / max(extent, 1.0)
    if compact:
        spacing = min(spacing, MAX_SPACING)
    return (natural - (extent - 1.0) / 2.0) * spacing


def layout(shape: ModelShape, layer: np.ndarray, kind: np.ndarray, channel: np.ndarray,
           compact: bool = True) -> tuple[np.ndarray, float]:
    """Positions (n, 2) and the band width. See the module docstring. ``compact``: sparse rows stay
    close together (a circuit); otherwise every row spans the full width (the whole model)."""
    n = len(layer)
    pos = np.zeros((n, 2))
    pos[:, 1] = 1.0 + ROWS_PER_LAYER * layer + KIND_ROW[kind]
    natural = np.zeros(n)
    is_resid = np.isin(kind, RESIDUAL_KINDS)
    cols = np.unique(channel[is_resid])
    natural[is_resid] = np.searchsorted(cols, channel[is_resid])
    groups: list[tuple[np.ndarray, float]] = [(is_resid, float(len(cols)))]
    row_key = layer * ROWS_PER_LAYER + KIND_ROW[kind]
    for key in np.unique(row_key[~is_resid]):
        members = np.flatnonzero((row_key == key) & ~is_resid)
        ch, kd = channel[members], kind[members]
        if KINDS[int(kd[0])] == "mlp.neuron":
            order, gaps = np.argsort(ch, kind="stable"), np.zeros(len(members))
        else:  # q/k/v grouped by head: (head, part, dim)
            head = ch // shape.d_head
            order = np.lexsort((ch % shape.d_head, kd, head))
            gaps = np.searchsorted(np.unique(head), head) * HEAD_GAP
        rank = np.empty(len(members))
        rank[order] = np.arange(len(members))
        natural[members] = rank + gaps
        groups.append((members, float(natural[members].max() + 1.0)))
    width = max([extent for _, extent in groups] + [1.0])
    for members, extent in groups:
        pos[members, 0] = _spread(natural[members], extent, width, compact)
    return pos, width


def row_gaps(graph: GraphData) -> np.ndarray:
    """(n,) per node, the median x distance between neighbours in its row (inf for a node alone in
    its row): how crowded each row is, for sizing its nodes to the zoom (the median, so that one
    close pair does not shrink a whole sparse row)."""
    out = np.full(graph.n_nodes, np.inf)
    ys, row = np.unique(graph.pos[:, 1], return_inverse=True)
    for r in range(len(ys)):
        members = np.flatnonzero(row == r)
        gaps = np.diff(np.sort(graph.pos[members, 0]))
        gaps = gaps[gaps > 0]
        if len(gaps):
            out[members] = float(np.median(gaps))
    return out


def residual_links(layer: np.ndarray, kind: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """Pairs of consecutive nodes (bottom to top) in each residual channel's column."""
    is_resid = np.flatnonzero(np.isin(kind, RESIDUAL_KINDS))
    if len(is_resid) < 2:
        return np.zeros((0, 2), np.int32)
    y = layer[is_resid] * ROWS_PER_LAYER + KIND_ROW[kind[is_resid]]
    order = is_resid[np.lexsort((y, channel[is_resid]))]
    same = channel[order[1:]] == channel[order[:-1]]
    return np.stack([order[:-1][same], order[1:][same]], axis=1).astype(np.int32)


_Q, _K = KINDS.index("attn.q"), KINDS.index("attn.k")


def qk_links(layer: np.ndarray, kind: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """(q node, k node) pairs of the same layer and q/k channel (so the same head and dimension): the
    query and key whose product is one term of that head's attention score. Drawn in circuits so a
    key with no weight out reads as what it is, the other half of a query's score."""
    q = np.flatnonzero(kind == _Q)
    k = np.flatnonzero(kind == _K)
    if not len(q) or not len(k):
        return np.zeros((0, 2), np.int32)
    keys = {(int(layer[i]), int(channel[i])): i for i in k}
    pairs = [(i, keys[(int(layer[i]), int(channel[i]))]) for i in q if (int(layer[i]), int(channel[i])) in keys]
    return np.array(pairs, np.int32).reshape(-1, 2)


def qk_arcs(pos: np.ndarray, qk: np.ndarray, points: int = 10) -> np.ndarray:
    """Polyline segments (M, 4: x0, y0, x1, y1) of an arc above the row from each q node to its k node
    (the two share a row; a straight line would run over the nodes between them)."""
    if not len(qk):
        return np.zeros((0, 4))
    a, b = pos[qk[:, 0]], pos[qk[:, 1]]
    t = np.linspace(0.0, 1.0, points)
    x = a[:, :1] + (b[:, :1] - a[:, :1]) * t  # (Q, points)
    lift = np.minimum(0.45, 0.04 * np.abs(b[:, :1] - a[:, :1]) + 0.12)  # rows are 1 apart
    y = a[:, 1:] + (b[:, 1:] - a[:, 1:]) * t + lift * 4 * t * (1 - t)
    return np.stack([x[:, :-1], y[:, :-1], x[:, 1:], y[:, 1:]], axis=-1).reshape(-1, 4)


def token_positions(width: float, n_tokens: int) -> np.ndarray:
    """x of the last ``min(n_tokens, MAX_TOKENS)`` input tokens, centred under the graph."""
    n = min(n_tokens, MAX_TOKENS)
    return _spread(np.arange(n, dtype=float), float(n), max(width, 0.8 * n), compact=False) if n else np.zeros(0)


def logit_positions(width: float) -> np.ndarray:
    """x of the two target-logit nodes (side A's target, side B's target)."""
    half = max(width / 6.0, 1.0)
    return np.array([-half, half])


def column_ends(graph: GraphData) -> tuple[dict[int, int], dict[int, int]]:
    """Per residual channel present: (lowest node, highest node) of its column, as dicts."""
    resid = np.flatnonzero(np.isin(graph.kind, RESIDUAL_KINDS))
    low: dict[int, int] = {}
    high: dict[int, int] = {}
    for i in resid[np.argsort(graph.pos[resid, 1], kind="stable")]:
        c = int(graph.channel[i])
        low.setdefault(c, int(i))
        high[c] = int(i)
    return low, high


def io_edges(graph: GraphData, embed: np.ndarray, unembed_a: np.ndarray, unembed_b: np.ndarray,
             token_x: float) -> tuple[np.ndarray, np.ndarray]:
    """Display-only edges: the last input token's embedding into the lowest node of each residual
    column, and the highest node of each column into the two target logits (weights: the embedding
    and the unembedding rows times the final norm gain). Returns (segments (K, 4), weights (K,))."""
    low, high = column_ends(graph)
    lx = logit_positions(graph.width)
    segs: list[tuple[float, float, float, float]] = []
    weights: list[float] = []
    for c, i in low.items():
        if c < len(embed) and embed[c] != 0:
            segs.append((token_x, 0.0, *graph.pos[i]))
            weights.append(float(embed[c]))
    for c, i in high.items():
        for x, row in ((lx[0], unembed_a), (lx[1], unembed_b)):
            if c < len(row) and row[c] != 0:
                segs.append((*graph.pos[i], x, graph.top))
                weights.append(float(row[c]))
    return np.array(segs, dtype=np.float64).reshape(-1, 4), np.array(weights, dtype=np.float32)
