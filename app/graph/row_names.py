"""The graph's row names (the left axis) and prompt B's token row, thinned where rows crowd.

A deep model's whole view puts ~50 rows in a few hundred pixels (csp_yolo1: 8 layers of 6 rows), where
every name cannot fit. The names come in levels (:func:`row_levels`): prompt A, each layer's q·k·v
row and the logits always; then each layer's neurons; then every other row. :class:`RowNames` names
level after level while the closest two names stay a line apart at the current zoom, so zooming in
names every row again; prompt B's tokens (0.6 rows under prompt A's) show only while they clear A's.
Knows nothing about the engine.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFontMetricsF

from app.graph.token_row import B_ROW_Y, TokenRow

LINE_GAP = 1.05  # names at least this many text lines apart


def row_levels(labels: list[tuple[float, str]]) -> list[list[tuple[float, str]]]:
    """(y, name) rows of a graph -> the levels in which they are named (the first always)."""
    levels: list[list[tuple[float, str]]] = [[], [], [(B_ROW_Y, "prompt B")]]
    for y, name in labels:
        if y == 0.0:
            levels[0].append((y, "prompt A"))
        else:
            levels[0 if name.endswith("q·k·v by head") or name == "target logits" else
                   1 if name.endswith("MLP neurons") else 2].append((y, name))
    return levels


class RowNames:
    """The row names of one view's left ``axis`` over ``viewbox``; ``tokens``: its prompts' token row."""

    def __init__(self, axis: pg.AxisItem, viewbox: pg.ViewBox, tokens: TokenRow) -> None:
        self.axis, self.vb, self.tokens = axis, viewbox, tokens
        self.levels: list[list[tuple[float, str]]] = []
        self.shown: list[tuple[float, str]] | None = None

    def set_rows(self, labels: list[tuple[float, str]]) -> None:
        self.levels, self.shown = row_levels(labels), None
        self.fit()

    def fit(self, *args) -> None:
        """Name as many levels as fit at this zoom; show prompt B's tokens where they fit."""
        if not self.levels:
            return
        y0, y1 = self.vb.viewRange()[1]
        px = float(self.vb.height()) / max(float(y1 - y0), 1e-9)  # pixels per row unit
        line = QFontMetricsF(self.axis.style.get("tickFont") or self.axis.font()).height() * LINE_GAP
        shown: list[tuple[float, str]] = []
        for level in self.levels:
            trial = sorted(shown + level)
            gaps = np.diff([y for y, _ in trial])
            if shown and len(gaps) and gaps.min() * px < line:
                break
            shown = trial
        if shown != self.shown:
            self.shown = shown
            self.axis.setTicks([shown])
        b_fits = bool(-B_ROW_Y * px >= line)
        for item in self.tokens.side_items(1) if len(self.tokens.spans) > 1 else ():
            item.setVisible(b_fits)
