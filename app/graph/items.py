"""Small pieces of the graph view: symbols, brushes, the legend, tooltips and node captions.

Knows nothing about threads or the engine; reads the bundle's plain data only.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainterPath

from app.widgets import theme
from engine.scene.layout import KINDS, GraphData

NODE_SIZE = {"circuit": 13, "model": 5}
MIN_NODE_SIZE = {"circuit": 7, "model": 5}  # nodes shrink to this where a row is crowded at the zoom
LABEL_CHARS = 24  # a user label longer than this is cut in its caption (hover and the tooltip show it whole)


def zoom_node_size(view: str, gap_px: np.ndarray) -> np.ndarray:
    """Node diameters for a view where each node's row has its closest two nodes ``gap_px`` apart:
    2 px of air between them, within [MIN_NODE_SIZE, NODE_SIZE["circuit"]] (a crowded row of a
    circuit shrinks at the default fit; a zoomed-in whole model grows to the circuit's size)."""
    size = np.clip(np.asarray(gap_px, np.float64) - 2.0, MIN_NODE_SIZE[view], NODE_SIZE["circuit"])
    return np.round(size * 2.0) / 2.0  # half pixels: a slow zoom does not restyle at every step


def ablated_symbol() -> QPainterPath:
    """A circle with an X through it; drawn with a background fill it reads as hollow + crossed."""
    path = QPainterPath()
    path.addEllipse(QRectF(-0.5, -0.5, 1.0, 1.0))
    for a, b in (((-0.42, -0.42), (0.42, 0.42)), ((-0.42, 0.42), (0.42, -0.42))):
        path.moveTo(QPointF(*a))
        path.lineTo(QPointF(*b))
    return path


def caption(graph: GraphData, i: int, labels: dict[str, str], full: bool = False) -> str:
    """Short text by a node: its label (cut at ``LABEL_CHARS`` unless ``full``), else q/k/v head.dim or
    the channel number."""
    label = labels.get(graph.ids[i])
    if label:
        return label if full or len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"
    kind, ch = KINDS[int(graph.kind[i])], int(graph.channel[i])
    if kind in ("attn.q", "attn.k", "attn.v"):
        d_head = graph.shape.d_head
        return f"{kind[-1]}{ch // d_head}.{ch % d_head}"
    return str(ch)


def visible_token(tok: str) -> str:
    """A token with whitespace made visible (for the input-token row)."""
    return tok.replace(" ", "·").replace("\n", "⏎").replace("\t", "⇥") or "∅"


def node_tooltip(graph: GraphData, i: int, bundle, pair: int, labels: dict[str, str],
                 ablated: bool, degrees: tuple[np.ndarray, np.ndarray]) -> str:
    """id, label, mean, value on the selected pair, degree."""
    node = graph.ids[i]
    site, _, idx = node.rpartition(":")
    kind = KINDS[int(graph.kind[i])]
    where = "" if kind == "final_resid" else f", layer {int(graph.layer[i])}"
    lines = [f"{node}", f"{theme.KIND_NAMES[int(graph.kind[i])]}{where}"]
    if labels.get(node):
        lines.append(f"label: {labels[node]}")
    if bundle is not None:
        mean = bundle.means.get(site)
        if mean is not None:
            lines.append(f"mean activation: {float(mean[int(idx)]):+.4f}")
        values = bundle.task_view.node_values.get(site)
        if values is not None and 2 * pair + 1 < len(values):
            a, b = float(values[2 * pair, int(idx)]), float(values[2 * pair + 1, int(idx)])
            lines.append(f"pair {pair}: A {a:+.4f}   B {b:+.4f}   (A-B {a - b:+.4f})")
    lines.append(f"weights in view: {int(degrees[0][i])} in, {int(degrees[1][i])} out")
    if kind in ("attn.q", "attn.k", "attn.v"):
        lines.append(f"head {int(graph.channel[i]) // graph.shape.d_head}")
    lines.append("ABLATED (click to restore)" if ablated else "click: ablate  ·  ctrl+click: inspect only")
    return "\n".join(lines)


#: The node kinds the legend shows (index into engine.scene.layout.KINDS, name), in the view and in exports.
LEGEND_KINDS = ((0, "resid. read"), (4, "resid. write"), (1, "q"), (2, "k"), (3, "v"), (6, "neuron"),
                (8, "final resid."))


def build_legend(plot: pg.PlotItem) -> pg.LegendItem:
    """Edge sign colours, the ablated marker, the selection ring and the node kinds, in a strip above
    the plot (the PlotItem's title row, kept as high as the legend by :func:`fit_legend`), so it
    never covers the graph."""
    legend = pg.LegendItem(offset=None, labelTextSize="8pt", colCount=6, labelTextColor=theme.TEXT,
                           verSpacing=-6, horSpacing=12)
    legend.setParentItem(plot)
    legend.anchor(itemPos=(0.5, 0.0), parentPos=(0.5, 0.0), offset=(0, 2))
    pos = pg.PlotDataItem([0, 1], [0, 0], pen=pg.mkPen(theme.weight_color(True, 255), width=2))
    neg = pg.PlotDataItem([0, 1], [0, 0], pen=pg.mkPen(theme.weight_color(False, 255), width=2))
    legend.addItem(pos, "+ weight")
    legend.addItem(neg, "− weight")
    legend.addItem(pg.ScatterPlotItem(symbol=ablated_symbol(), size=12, brush=pg.mkBrush(theme.BG),
                                      pen=pg.mkPen(theme.ABLATED, width=2)), "ablated")
    legend.addItem(pg.PlotDataItem([0, 1], [0, 0], pen=pg.mkPen(theme.ABLATED, width=2,
                                                                  style=pg.QtCore.Qt.PenStyle.DashLine)),
                   "ablated weight")
    legend.addItem(pg.ScatterPlotItem(symbol="o", size=13, brush=None, pen=pg.mkPen(theme.SELECTED, width=2)),
                   "selected")
    for k, name in LEGEND_KINDS:
        legend.addItem(pg.ScatterPlotItem(symbol="o", size=9, brush=pg.mkBrush(theme.KIND_COLORS[k]),
                                          pen=None), name)
    return legend


def set_sign_labels(legend: pg.LegendItem, what: str) -> None:
    """Name the legend's two sign colours after what the edges show ("weight" or "attribution")."""
    for (_sample, label), sign in zip(legend.items[:2], "+−"):
        text = f"{sign} {what}"
        if label.text != text:
            label.setText(text)


LEGEND_COLUMNS = (12, 6, 4, 3, 2, 1)


def fit_legend(plot: pg.PlotItem, legend: pg.LegendItem) -> None:
    """As many legend columns as the plot's width allows, and the plot's top row as high as the
    legend (zero when it is hidden): the view box starts below it."""
    if legend.isVisible():
        for n in LEGEND_COLUMNS:
            legend.setColumnCount(n)
            legend.updateSize()
            if legend.width() <= plot.width() - 16 or n == 1:
                break
    height = legend.height() + 4 if legend.isVisible() else 0.0
    plot.titleLabel.setMaximumHeight(height)
    plot.layout.setRowFixedHeight(0, height)
