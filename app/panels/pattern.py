"""A head's full attention pattern on the selected pair (issue 18, "the full pattern on demand"): two
heatmaps, prompt A and prompt B, query positions down, key positions across, each labelled with its
tokens; shade = attention weight (0 to 1, one scale for both). Opened from the inspector's attention
strip (``full pattern…``); it follows the state's trace, so it changes with live ablations and the
pair, and says when it is out of date. Knows nothing about the engine.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Slot
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.panels.token_html import raw_token, shown
from app.widgets import theme

MAX_TICKS = 80  # tokens labelled per axis (longer prompts label every n-th)


def _heat_lut() -> np.ndarray:
    """(256, 4) uint8: the panel's background to the + colour."""
    base = np.array([0x1b, 0x1c, 0x21], float)
    top = np.array(theme.POS, float)
    t = np.linspace(0.0, 1.0, 256)[:, None]
    rgb = (base + (top - base) * t).round().astype(np.uint8)
    return np.concatenate([rgb, np.full((256, 1), 255, np.uint8)], 1)


class PatternDialog(QDialog):
    """See the module docstring."""

    def __init__(self, state, layer: int, head: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.layer, self.head = state, layer, head
        self.setWindowTitle(f"L{layer} head {head}: attention pattern")
        self.resize(900, 480)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet(f"color: {theme.MUTED};")
        self.plots, self.images = [], []
        row = QHBoxLayout()
        for side in "AB":
            p = pg.PlotWidget(background=theme.BG)
            p.setMenuEnabled(False)
            p.hideButtons()
            p.setAspectLocked(True)
            p.invertY(True)
            p.setTitle(f"prompt {side}", color=theme.TEXT)
            img = pg.ImageItem(axisOrder="row-major")
            img.setLookupTable(_heat_lut())
            p.addItem(img)
            for axis in ("left", "bottom"):
                p.getAxis(axis).setTextPen(pg.mkPen(theme.MUTED))
                p.getAxis(axis).setStyle(tickFont=theme.mono_font(7))
            p.getPlotItem().setLabel("left", "query position", color=theme.MUTED)
            p.getPlotItem().setLabel("bottom", "key position", color=theme.MUTED)
            self.plots.append(p)
            self.images.append(img)
            row.addWidget(p)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addLayout(row, 1)
        state.traceChanged.connect(self.refresh)
        state.pairChanged.connect(self.refresh)
        state.bundleChanged.connect(self._on_bundle)
        self.refresh()

    def matrices(self) -> list[np.ndarray]:
        """The pattern as drawn: (T_A, T_A) and (T_B, T_B), [] until the pair's trace has arrived."""
        t = self.state.current_trace()
        if t is None or self.state.bundle is None:
            return []
        tr = t.trace
        return [tr.pattern(self.layer, self.head)[i, :n, :n] for i, n in enumerate(tr.lengths)]

    @Slot()
    def refresh(self, *_args) -> None:
        mats = self.matrices()
        s = self.state
        if not mats:
            self.note.setText(f"pair {s.pair}: tracing…")
            return
        view = s.bundle.task_view
        ablated = len(s.trace.request.nodes) + len(s.trace.request.edges)
        where = "the circuit (the rest ablated)" if s.trace.request.baseline == "circuit" else "the full model"
        self.note.setText(f"pair {s.pair}, {where}, {ablated} ablated node(s)/weight(s) ({s.trace.request.mode}); "
                          "row = the query position, column = the key it attends to; shade = weight (0-1). "
                          "Each row sums to 1 minus the sink's share.")
        for i, (plot, img, m) in enumerate(zip(self.plots, self.images, mats)):
            img.setImage(m, levels=(0.0, 1.0), autoLevels=False)
            toks = [shown(raw_token(t)) for t in view.tokens[2 * s.pair + i]]
            step = max(1, int(np.ceil(len(toks) / MAX_TICKS)))
            ticks = [(k + 0.5, toks[k]) for k in range(0, len(toks), step)]
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setTicks([ticks, []])
            plot.setRange(xRange=(0, len(toks)), yRange=(0, len(toks)), padding=0.02)

    @Slot(object)
    def _on_bundle(self, _bundle) -> None:
        self.close()
