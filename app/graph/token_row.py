"""The graph's input-token rows (issue 18, "Positions"): prompt A's tokens under the graph and prompt
B's below them (muted), right-aligned so that the last positions stand one above the other.

When the pair's trace is on screen (:attr:`AppState.trace`) and a node is selected, each token's
background shows the node's activation at that position (coral > 0, blue < 0, one scale for both
prompts), and for a q, k or v node a gold frame shows where its head attends from the last position
(the frame's opacity is the attention weight). Knows nothing about the engine.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPen

from app.widgets import theme
from engine.scene.layout import token_positions

B_ROW_Y = -0.6  # prompt B's tokens, under prompt A's (y 0), or lower: at least a text line under them
NO_BRUSH = pg.mkBrush(None)
NO_PEN = pg.mkPen(None)
LAST_PEN = pg.mkPen(theme.TEXT, width=1.5)  # prompt A's last token: the position the metrics read


def heat_color(value: float, scale: float) -> QColor:
    """A token's background for an activation ``value``: transparent at 0, full colour at |value| = scale."""
    t = float(np.clip(abs(value) / scale, 0.0, 1.0)) if scale > 0 and np.isfinite(value) else 0.0
    r, g, b = theme.POS if value >= 0 else theme.NEG
    return QColor(r, g, b, int(round(200 * t)))


class TokenRow:
    """The token items of one pair (A and B) in a ViewBox; ``items`` are A's then B's."""

    def __init__(self, viewbox: pg.ViewBox, add_text) -> None:
        self.vb, self._add_text = viewbox, add_text
        self.items: list[pg.TextItem] = []
        self.spans: list[tuple[int, int]] = []  # per side: (first item, first shown position)
        self.x_last = 0.0
        self.b_y = B_ROW_Y

    def clear(self) -> None:
        for t in self.items:
            self.vb.removeItem(t)
        self.items, self.spans = [], []

    def show(self, width: float, tokens_a, tokens_b, visible) -> None:
        """Draw both prompts' tokens (each cut to the last ``MAX_TOKENS``); ``visible`` is the display
        form of a token (whitespace made visible)."""
        self.clear()
        n = max(len(tokens_a), len(tokens_b))
        xs = token_positions(width, n)
        for side, (toks, y, color) in enumerate(((tokens_a, 0.0, theme.TEXT), (tokens_b, self.b_y, theme.MUTED))):
            k = min(len(toks), len(xs))
            first = len(self.items)
            self.spans.append((first, len(toks) - k))
            for x, tok in zip(xs[len(xs) - k:], toks[len(toks) - k:]):
                self.items.append(self._add_text(visible(tok), (x, y), (0.5, 0.5), color, 9.0 if side == 0 else 8.0))
        self.x_last = float(xs[-1]) if len(xs) else 0.0
        self.paint(None, None)

    def place_b(self, y: float) -> None:
        """Move prompt B's row to height ``y`` (the row names keep it a text line under prompt A's)."""
        if y == self.b_y:
            return
        self.b_y = y
        for item in self.side_items(1) if len(self.spans) > 1 else ():
            item.setPos(item.pos().x(), y)

    def _frame(self, side: int, j: int) -> QPen:
        """A token's frame when no attention shows: prompt A's last token is boxed (the metrics read
        there; a box around the text, whatever its width)."""
        return LAST_PEN if side == 0 and j == len(self.side_items(0)) - 1 else NO_PEN

    def side_items(self, side: int) -> list[pg.TextItem]:
        first = self.spans[side][0]
        stop = self.spans[1][0] if side == 0 else len(self.items)
        return self.items[first:stop]

    def paint(self, values: np.ndarray | None, attention: np.ndarray | None) -> None:
        """Token backgrounds from ``values`` (2, T) and gold frames from ``attention`` (2, T); None
        clears them."""
        scale = float(np.nanmax(np.abs(values))) if values is not None and np.isfinite(values).any() else 0.0
        for side in range(len(self.spans)):
            start = self.spans[side][1]
            for j, item in enumerate(self.side_items(side)):
                pos = start + j
                fill, border = NO_BRUSH, self._frame(side, j)
                if values is not None and scale > 0 and pos < values.shape[1]:
                    fill = pg.mkBrush(heat_color(float(values[side, pos]), scale))
                if attention is not None and pos < attention.shape[1]:
                    w = float(np.clip(attention[side, pos], 0.0, 1.0))
                    if w >= 0.02:
                        c = QColor(*theme.QK_LINK[:3], int(round(70 + 185 * w)))
                        border = pg.mkPen(c, width=1.0 + 2.0 * w)
                item.fill, item.border = fill, border
                item.update()

    def shown_fill(self, side: int) -> list[int]:
        """The background alpha of each drawn token of ``side`` (tests)."""
        return [it.fill.color().alpha() if it.fill.style() != Qt.BrushStyle.NoBrush else 0 for it in self.side_items(side)]

    def shown_frame(self, side: int) -> list[int]:
        """The attention frame's alpha on each drawn token of ``side``, 0 where none (prompt A's last
        token's box is no attention frame) (tests)."""
        return [it.border.color().alpha() if it.border.style() != Qt.PenStyle.NoPen and it.border is not self._frame(side, j)
                else 0 for j, it in enumerate(self.side_items(side))]

    def boxed(self) -> list[bool]:
        """Which of prompt A's drawn tokens wear the box of the position the metrics read (tests)."""
        return [it.border is LAST_PEN for it in self.side_items(0)]
