"""The graph's row names (the left axis) and prompt B's token row, thinned where rows crowd.

A deep model's whole view puts ~50 rows in a few hundred pixels (csp_yolo1: 8 layers of 6 rows), where
every name cannot fit. The names come in levels (:func:`row_levels`): prompt A, each layer's q·k·v
row and the logits always; then each layer's neurons; then every other row. :class:`RowNames` names
level after level while the closest two names stay a line apart at the current zoom, so zooming in
names every row again. Prompt B's tokens sit 0.6 rows under prompt A's, or lower where rows crowd: at
least a text line under them, so both prompts always show.
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
    levels: list[list[tuple[float, str]]] = [[(B_ROW_Y, "prompt B")], [], []]
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
        """Name as many levels as fit at this zoom; keep prompt B's tokens a text line under A's."""
        if not self.levels:
            return
        y0, y1 = self.vb.viewRange()[1]
        px = float(self.vb.height()) / max(float(y1 - y0), 1e-9)  # pixels per row unit
        line = self.line_height()
        b_y = min(B_ROW_Y, -line / px) if px > 0 else B_ROW_Y
        self.tokens.place_b(b_y)
        shown: list[tuple[float, str]] = []
        for level in self.levels:
            level = [(b_y if name == "prompt B" else y, name) for y, name in level]
            trial = sorted(shown + level)
            gaps = np.diff([y for y, _ in trial])
            if shown and len(gaps) and gaps.min() * px < line:
                break
            shown = trial
        if shown != self.shown:
            self.shown = shown
            self.axis.setTicks([shown])

    def line_height(self) -> float:
        """The names' line spacing in pixels."""
        return QFontMetricsF(self.axis.style.get("tickFont") or self.axis.font()).height() * LINE_GAP

    def fit_margins(self, top: float, label_px: float, token_px: float) -> tuple[float, float]:
        """Row units to show under prompt A's row (at 0) and over the target logits (at ``top``) when
        the view fits the graph: 1.15 and 1.1 rows, or what the text needs in pixels where rows crowd
        (csp_yolo1's ~50 rows put rows ~10 pixels apart). ``label_px``: the logits' names' height,
        ``token_px``: the tokens' (0: not drawn yet, a line's guessed)."""
        line = self.line_height()
        label_px, token_px = label_px or 2 * line, token_px or line
        # pixels: prompt B's tokens, a line under A's (fit); a logit's name over its node (its anchor
        # puts the text's bottom a quarter of its height over the node's centre)
        need = (line + token_px / 2 + 2, 1.25 * label_px + 2)
        h = float(self.vb.height())
        below, above = -B_ROW_Y + 0.55, 1.1
        if h < 2 * sum(need):  # not laid out yet, or too small for pixel margins
            return below, above
        for _ in range(4):  # the margins change the scale they are measured at; this settles in a few steps
            px = h / ((top + below + above) * 1.04)  # the view's range padding: 2% each side
            below, above = max(-B_ROW_Y + 0.55, need[0] / px), max(1.1, need[1] / px)
        return below, above
