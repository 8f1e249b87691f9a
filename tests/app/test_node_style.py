"""Node fills (app/graph/node_style.py): kind colours, a heat overlay and an emphasis set compose, and
the graph view restyles its nodes when the state's overlay or emphasis changes."""

from __future__ import annotations

import numpy as np
import pytest

from app.graph.node_style import DIM_ALPHA, NodeHeat, node_brushes
from app.widgets import theme
from engine.scene.layout import ModelShape, build_graph


def tiny_graph():
    shape = ModelShape(n_layer=1, n_head=1, d_head=2, d_resid=4, d_model=4, d_mlp=4)
    ids = ["blocks.0.mlp.read:0", "blocks.0.mlp.neuron:1", "blocks.0.mlp.write:2", "blocks.0.attn.q:0"]
    return build_graph(shape, ids, ["blocks.0.mlp.read:0"], ["blocks.0.mlp.neuron:1"], np.array([0.5]))


def _alpha(brush) -> int:
    return brush.color().alpha()


def test_heat_emphasis_and_kinds(qapp) -> None:
    g = tiny_graph()
    plain = node_brushes(g)
    assert all(_alpha(b) == 255 for b in plain)
    heat = NodeHeat("effect", {g.ids[0]: 2.0, g.ids[1]: -1.0})
    hot = node_brushes(g, heat=heat)
    pos, neg = hot[0].color(), hot[1].color()
    assert (pos.red(), pos.green(), pos.blue()) == theme.POS  # the strongest value: full colour
    assert neg.blue() > neg.red()  # negative: the blue of negative weights, half strength
    assert all(_alpha(b) == DIM_ALPHA for b in hot[2:])  # no value: kind colour, dimmed
    focus = node_brushes(g, emphasis=frozenset({g.ids[2]}))
    assert _alpha(focus[2]) == 255 and _alpha(focus[0]) == DIM_ALPHA


def test_the_view_restyles_on_heat_and_emphasis(qtbot, open_window, tiny_run: Path) -> None:
    win = open_window(tiny_run)
    view, state = win.view, win.state
    g = view.graph
    first = g.ids[0]
    state.set_node_heat(NodeHeat("effect", {first: 1.0}, signed=False))
    brushes = view.nodes.data["brush"]
    assert brushes[0].color().alpha() == 255 and all(b.color().alpha() == DIM_ALPHA for b in brushes[1:])
    state.set_node_heat(None)
    state.set_emphasis({g.ids[1]})
    brushes = view.nodes.data["brush"]
    assert brushes[1].color().alpha() == 255 and brushes[0].color().alpha() == DIM_ALPHA
    state.set_emphasis(None)
    assert all(b.color().alpha() == 255 for b in view.nodes.data["brush"])
