"""Node fill colours: the kind colours, or a heat overlay, with nodes outside an emphasis set dimmed.

One place decides a node's brush, so overlays compose: :func:`node_brushes` takes the kinds, the
whole-model view's circuit mask, an optional heat overlay (:class:`NodeHeat`, e.g. node effects or
attributions: a signed or unsigned value per node id) and an optional emphasis set (focus on a
neighbourhood, a degree filter: every other node is dimmed). The graph view calls it whenever one of
them changes (``CircuitView.restyle_nodes``). Knows nothing about threads or the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PySide6.QtGui import QBrush, QColor

from app.widgets import theme
from engine.scene.layout import GraphData

DIM_ALPHA = 80  # nodes outside the emphasis set, and outside the circuit in the whole-model view
HEAT_STEPS = 64  # brushes per heat ramp (cached)


@dataclass(frozen=True)
class NodeHeat:
    """A colour overlay: ``values`` per node id; ``signed`` values use the weight colours (coral > 0,
    blue < 0) by |value| / scale, unsigned ones one warm ramp. Nodes without a value keep their kind
    colour, dimmed. ``title`` names what is shown (the legend and tooltips say it)."""

    title: str
    values: dict = field(default_factory=dict)  # node id -> float
    signed: bool = True
    source: str = ""  # who set it ("attribution", "effects"): each clears only its own

    def scale(self) -> float:
        v = np.abs(np.fromiter(self.values.values(), float, len(self.values)))
        v = v[np.isfinite(v)]
        return float(v.max()) if len(v) and v.max() > 0 else 1.0

    def array(self, graph: GraphData) -> np.ndarray:
        """(n,) the value of each node of ``graph`` (NaN where there is none)."""
        return np.array([self.values.get(i, np.nan) for i in graph.ids], dtype=np.float64).reshape(-1)


def _kind_brushes(alpha: int, colors=theme.KIND_COLORS) -> list[QBrush]:
    out = []
    for name in colors:
        c = QColor(name) if isinstance(name, str) else QColor(*name)
        c.setAlpha(alpha)
        out.append(QBrush(c))
    return out


_CACHE: dict = {}


def _cached(key, build):
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


def heat_brush(value: float, scale: float, signed: bool, alpha: int = 255) -> QBrush:
    """The overlay's brush for one value: grey at 0, full colour at |value| >= scale."""
    t = min(1.0, abs(value) / scale) if scale > 0 and np.isfinite(value) else 0.0
    step = int(round(t * (HEAT_STEPS - 1)))
    positive = value >= 0 or not signed

    def build() -> QBrush:
        lo = np.array([90, 94, 108], float)
        hi = np.array(theme.HEAT if not signed else (theme.POS if positive else theme.NEG), float)
        r, g, b = (lo + (hi - lo) * step / (HEAT_STEPS - 1)).round().astype(int)
        return QBrush(QColor(int(r), int(g), int(b), alpha))
    return _cached(("heat", step, positive, signed, alpha), build)


def node_brushes(graph: GraphData, in_circuit: np.ndarray | None = None, heat: NodeHeat | None = None,
                 emphasis: frozenset | None = None, categories: tuple | None = None) -> list[QBrush]:
    """One brush per node of ``graph``: see the module docstring. ``in_circuit`` (whole-model view)
    dims the nodes outside the circuit; ``emphasis`` (None: all) dims every node not in it;
    ``categories`` ((n,) index, colours) fills by category instead of kind (a diff's sides)."""
    colors = theme.KIND_COLORS if categories is None else tuple(categories[1])
    kinds = graph.kind if categories is None else np.asarray(categories[0])
    bright = _cached(("kind", 255, colors), lambda: _kind_brushes(255, colors))
    dim = _cached(("kind", DIM_ALPHA, colors), lambda: _kind_brushes(DIM_ALPHA, colors))
    lit = np.ones(graph.n_nodes, bool) if in_circuit is None else np.asarray(in_circuit, bool)
    if emphasis is not None:
        lit = lit & np.fromiter((i in emphasis for i in graph.ids), bool, graph.n_nodes)
    kinds = np.asarray(kinds, np.int64)
    by_kind = np.array(bright + dim, dtype=object)  # kind k bright, then kind k dimmed at k + len(colors)
    out = by_kind[np.where(lit, kinds, kinds + len(colors))]
    if heat is None:
        return out.tolist()
    # one vectorised pass: each node's (step, sign, lit) picks a cached brush (a whole model is 91k nodes)
    values, scale = heat.array(graph), heat.scale()
    has = ~np.isnan(values)
    t = np.clip(np.abs(np.where(has, values, 0.0)) / scale, 0.0, 1.0) if scale > 0 else np.zeros(len(values))
    step = np.rint(t * (HEAT_STEPS - 1)).astype(np.int64)
    sign = (values >= 0) | (not heat.signed)
    code = (step * 2 + sign) * 2 + lit
    palette = np.array([heat_brush((c // 4) / (HEAT_STEPS - 1) * (1 if (c // 2) % 2 else -1), 1.0, heat.signed,
                                   255 if c % 2 else DIM_ALPHA) for c in range(4 * HEAT_STEPS)], dtype=object)
    out[has] = palette[code[has]]
    out[~has] = by_kind[kinds[~has] + len(colors)]
    return out.tolist()
