"""The graph view's focus and diff styling: which weights and q-k links stay bright, and a diff's
colours, header and tooltips. The view calls these from a few lines (``CircuitView.restyle_nodes`` and
``_rebuild``); the emphasis set itself is kept by :mod:`app.model.focus`.

* **Focus / degree filter**: the state's emphasis set (nodes) is drawn bright, every other node dimmed
  (:mod:`app.graph.node_style`); weights and q-k links between two bright nodes stay bright, the
  others go to one faint bucket (:class:`app.graph.edges.EdgeStyle` ``lit``), so panning costs what it
  did (the raster is redrawn once per focus change, not per frame).
* **Diff** (the circuit view of ``AppState.diff``): nodes and weights coloured by side
  (``theme.DIFF_COLORS``: only in A orange, only in B cyan, in both grey) instead of kind and sign:
  membership is the question a diff asks, and one categorical colour per side reads at a glance where
  kind colours and a heat overlay would compete. The header names the sides with their colours (the
  view's legend strip keeps its fixed items; the exported picture has a diff legend). Clicks ablate as
  in the circuit view, on top of circuit A (the loaded circuit): a node only in B lies outside A, so on
  the circuit baseline it is already ablated; with the full model as baseline a click there counts.

Knows nothing about threads or the engine's computations.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from app.graph.edges import EdgeStyle
from app.widgets import theme
from engine.scene.focus import DIFF_SIDES, lit_edges, node_mask
from engine.scene.layout import qk_arcs

SIDE_WORDS = {"both": "in both circuits", "a": "only in circuit {a}", "b": "only in circuit {b}"}


def shown_diff(state, graph):
    """The state's diff when ``graph`` is its union (the circuit view), else None."""
    diff = state.diff
    return diff if diff is not None and graph is diff.graph else None


def categories(state, graph) -> tuple | None:
    """Node fills by side for a diff (``node_brushes(categories=...)``), else None (kind colours)."""
    diff = shown_diff(state, graph)
    return None if diff is None else (diff.node_side, theme.DIFF_COLORS)


def restyle_links(view) -> None:
    """Weights and q-k arcs of ``view``'s graph: diff colours, bright between bright nodes."""
    graph, state = view.graph, view.state
    lit = node_mask(graph, state.emphasis)
    lit_w, lit_qk = lit_edges(graph, lit)
    diff = shown_diff(state, graph)
    style = EdgeStyle(lit=lit_w) if diff is None else EdgeStyle(diff.edge_side, theme.DIFF_COLORS, lit_w)
    if not _same(view.edges.style, style):  # a heat overlay alone does not redraw the weights
        view.edges.set_style(style)
    qk = graph.qk
    for item, sel in ((view.qk, qk if lit_qk is None else qk[lit_qk]), (view.qk_dim, qk[:0] if lit_qk is None
                                                                        else qk[~lit_qk])):
        arcs = qk_arcs(graph.pos, sel).reshape(-1, 2)
        item.setData(arcs[:, 0], arcs[:, 1], connect="pairs")


def _same(a: EdgeStyle, b: EdgeStyle) -> bool:
    lit = a.lit is b.lit or (a.lit is not None and b.lit is not None and np.array_equal(a.lit, b.lit))
    return a.group is b.group and a.colors == b.colors and lit


def dim_qk_item() -> pg.PlotDataItem:
    """The item of the q-k arcs outside a focus (faint)."""
    r, g, b, _ = theme.QK_LINK
    return pg.PlotDataItem(pen=pg.mkPen((r, g, b, 45), width=1.0, style=Qt.PenStyle.DotLine), connect="pairs")


def _swatch(side: int, text: str) -> str:
    r, g, b = theme.DIFF_COLORS[side]
    return f"<span style='color:rgb({r},{g},{b})'>■ {text}</span>"


def diff_header(state, graph) -> str | None:
    """The header of a diff view (rich text), with the sides' colours as its legend; else None."""
    diff = shown_diff(state, graph)
    if diff is None:
        return None
    d, b = diff.diff, state.bundle
    n, w = d.counts()["nodes"], d.counts()["weights"]
    sides = ", ".join((_swatch(1, "{:,} only in {}".format(n["a"], d.a)),
                       _swatch(2, "{:,} only in {}".format(n["b"], d.b)), _swatch(0, "{:,} in both".format(n["both"]))))
    return (f"<b>{b.run_name}</b> · task <b>{b.task.name}</b> · circuit <b>{d.a}</b> vs <b>{d.b}</b>: "
            f"{sides} nodes (weights {w['a']:,} / {w['b']:,} / {w['both']:,}). "
            f"<span style='color:{theme.MUTED}'>Clicks ablate on top of circuit {d.a}; "
            "Circuits &gt; Stop comparing goes back</span>")


def tip_line(state, graph, i: int) -> str:
    """The tooltip's line saying which circuit(s) node ``i`` belongs to (a diff), else ''."""
    diff = shown_diff(state, graph)
    if diff is None:
        return ""
    side = DIFF_SIDES[int(diff.node_side[i])]
    where = SIDE_WORDS[side].format(a=diff.diff.a, b=diff.diff.b)
    note = " (outside A: on the circuit baseline it is already ablated)" if side == "b" else ""
    return f"\n{where}{note}"

