"""Attribution mode of the graph (issue 18, "Attribution"): with ``AppState.edge_mode ==
"attribution"`` the edges are coloured and sized by their contribution on the selected pair (a
weight times its source's signal, :func:`engine.scene.attribution.edge_attribution`) instead of their
weight, and the nodes by their estimated effect on the pair's logit difference (the trace's
attribution-patching estimate: ablating the node alone, with the current mode), on side A, side B or
A - B (``AppState.side``).

:class:`AttributionMode` computes both from the state's trace (numpy, in the GUI thread: a few
milliseconds on the demo's whole model; cached per trace and graph) and owns the node overlay it
puts into the state (a :class:`app.graph.node_style.NodeHeat` with ``source="attribution"``; another
overlay, such as node effects, replaces it, and leaving attribution mode clears only its own).
Weights with no signal on the pair (attribution exactly 0) are not drawn in this mode. Knows nothing
about the engine's torch side.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Slot

from app.graph.node_style import NodeHeat
from engine.scene.attribution import edge_attribution, node_effects, shown

SOURCE = "attribution"


def side_name(side: str) -> str:
    return {"A": "prompt A", "B": "prompt B", "A-B": "A − B"}[side]


class AttributionMode(QObject):
    """See the module docstring. ``view`` is the CircuitView (asked to redraw its edges)."""

    def __init__(self, state, view) -> None:
        super().__init__(view)
        self.state, self.view = state, view
        self._cache: tuple | None = None  # (trace result, graph, (2, E) attributions)
        self._showing = False  # whether the edges on screen show attributions
        for signal in (state.traceChanged, state.edgeModeChanged, state.viewChanged, state.pairChanged):
            signal.connect(self._on_change)

    @property
    def on(self) -> bool:
        return self.state.edge_mode == "attribution"

    def per_side(self, graph) -> np.ndarray | None:
        """(2, E) the attributions of ``graph``'s weights on the trace's pair, or None (mode off, no
        trace for the selected pair yet)."""
        t = self.state.current_trace()
        if not self.on or t is None or graph is None:
            return None
        if self._cache is None or self._cache[0] is not t or self._cache[1] is not graph:
            self._cache = (t, graph, edge_attribution(graph, t.trace))
        return self._cache[2]

    def values(self, graph) -> np.ndarray | None:
        """(E,) what the edges show on the chosen side, or None when they show weights."""
        att = self.per_side(graph)
        return None if att is None else shown(att, self.state.side)

    def node_heat(self, graph) -> NodeHeat | None:
        t = self.state.current_trace()
        if not self.on or t is None or graph is None:
            return None
        tr, side = t.trace, self.state.side
        per_node = shown(node_effects(graph, tr), side).tolist()
        values = {node: v for node, v in zip(graph.ids, per_node) if v == v}  # NaN: not traced
        return NodeHeat(f"estimated effect of ablating ({tr.mode}) on the logit diff, {side_name(side)}",
                        values, signed=True, source=SOURCE)

    def caption(self) -> str:
        """The header's note while the mode is on."""
        t = self.state.current_trace()
        side = side_name(self.state.side)
        if t is None:
            return f"edges: attribution ({side}) · tracing pair {self.state.pair}…"
        return (f"edges: attribution on pair {self.state.pair} ({side}): weight × source signal; nodes: estimated "
                f"effect of ablating each on the logit diff ({t.trace.mode})")

    @Slot()
    def _on_change(self, *_args) -> None:
        s = self.state
        heat = self.node_heat(s.graph)
        if heat is not None:
            s.set_node_heat(heat)
        elif s.node_heat is not None and s.node_heat.source == SOURCE:
            s.set_node_heat(None)
        if self.on or self._showing:  # in weight mode a new trace leaves the edges alone (393k on big runs)
            self.view.show_edges()
        self._showing = self.on
