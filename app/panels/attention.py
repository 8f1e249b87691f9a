"""The selected head's attention in the node inspector (issue 18): when the selected node is a q, k or
v node, where its head attends from the last position of the selected pair's prompts, as two heat
strips over their tokens (side A above side B), drawn like the Examples tab's lines
(:func:`app.panels.token_html.strip_line`: one implementation; the most attended token marked and
the strip cut to the panel's width around it), with the sink's share and the head's name ("L1 head
6"). It follows the state: the selection, the pair and :attr:`AppState.attention`, which the
ablation worker recomputes under every ablation (:mod:`app.workers.attention`); nothing here waits
for the engine. Any other node gets a one-line hint.
"""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QFrame, QTextBrowser, QWidget

from app.panels.token_html import PREFIX_CHARS, raw_token, shown, strip_line
from app.widgets import theme
from app.workers.attention import HeadAttention, head_of

HINT = "select a q, k or v node to see its head's attention"
TOOLTIP = ("Where this head attends from the last token of the selected pair's prompts (A above B), under "
           "the current ablations; shade = attention weight, the marked token gets the most (its weight "
           "before the bar); the sink's share is the weight on no token.")
SCALE = 1.0  # an attention weight of 1 is the strongest shade: strips compare across heads and ablations


class AttentionStrip(QTextBrowser):
    """See the module docstring. Built from :class:`app.model.state.AppState`."""

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setObjectName("attentionStrip")
        self.setFont(theme.mono_font(9))
        self.setLineWrapMode(QTextBrowser.LineWrapMode.NoWrap)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.document().setDocumentMargin(2)
        self._chars = 0  # the characters per strip it was drawn with
        state.selectionChanged.connect(self.refresh)
        state.pairChanged.connect(self.refresh)
        state.attentionChanged.connect(self.refresh)
        state.bundleChanged.connect(self.refresh)
        state.evaluationChanged.connect(self._on_evaluation)  # after the metrics: says "updating…"
        self.refresh()

    # -- what is shown -------------------------------------------------------------------------
    def target(self) -> tuple[int, int] | None:
        """``(layer, head)`` of the selected node, or None when it is no q, k or v node."""
        b = self.state.bundle
        return head_of(self.state.selected, b.shape.d_head) if b is not None else None

    def shown(self) -> HeadAttention | None:
        """The state's attention when it is the selected head's (else None: not computed yet)."""
        a, target = self.state.attention, self.target()
        if a is None or target is None or (a.request.layer, a.request.head) != target:
            return None
        return a

    def rows(self) -> list[tuple[str, tuple[str, ...], np.ndarray, float]]:
        """The selected pair's sides as drawn: ``(side, tokens, weights, sink)``, A then B."""
        a = self.shown()
        if a is None or a.weights is None:
            return []
        view, pair = self.state.bundle.task_view, self.state.pair
        out = []
        for side, row in (("A", 2 * pair), ("B", 2 * pair + 1)):
            if row < a.weights.shape[0]:
                toks = tuple(raw_token(t) for t in view.tokens[row])  # drawn like the Examples tab's
                out.append((side, toks, a.weights[row, :len(toks)], float(a.sink[row])))
        return out

    def chars(self) -> int:
        """How many characters of tokens fit on one strip."""
        char = max(1, QFontMetrics(self.document().defaultFont()).horizontalAdvance("M"))
        margin = 2 * int(self.document().documentMargin()) + 4
        return max(8, (self.viewport().width() - margin) // char - PREFIX_CHARS - 1)

    # -- drawing -------------------------------------------------------------------------------
    @Slot()
    def refresh(self, *_args) -> None:
        target = self.target()
        self.setVisible(self.state.bundle is not None and self.state.selected is not None)
        self._chars = chars = self.chars()
        muted = f"color:{theme.MUTED}"
        if target is None:
            body = f"<span style='{muted}'>{HINT}</span>"
        else:
            body = self._head_html(f"L{target[0]} head {target[1]}", chars, muted)
        self.setHtml(f"<pre style='margin:0; white-space: pre;'>{body}</pre>")
        self.setToolTip(TOOLTIP if target is not None else "")
        self.setFixedHeight(int(self.document().size().height()) + 2)

    def _head_html(self, name: str, chars: int, muted: str) -> str:
        a, rows = self.shown(), self.rows()
        title = f"<b>{name}</b> <span style='{muted}'>"
        if a is None or (a.weights is not None and not rows):
            return title + "· computing its attention…</span>"
        if a.error:
            return title + f"· cannot compute its attention: {html.escape(a.error)}</span>"
        updating = " · updating…" if self._service_behind(a) else ""
        lines = [title + f"attends from the last token · pair {self.state.pair}{updating}</span>"]
        for side, toks, w, _sink in rows:
            top = int(np.argmax(w))
            fits = sum(len(shown(t)) for t in toks) <= chars  # whole, from its start; else cut around the top
            lines.append(strip_line(f"{side}{100 * float(w[top]):5.0f}% │ ", toks, w, top, SCALE,
                                    None if fits else chars))
        note = "sink " + " · ".join(f"{side} {100 * sink:.1f}%" for side, _t, _w, sink in rows)
        lines.append(f"<span style='{muted}'>{html.escape(note)}</span>")
        return "<br>".join(lines)

    @Slot(object)
    def _on_evaluation(self, _evaluation) -> None:
        if self.target() is not None:
            self.refresh()

    def _service_behind(self, a: HeadAttention) -> bool:
        """Whether the state's ablations have moved on since ``a`` was computed."""
        s = self.state
        baseline = s.baseline if s.bundle.circuit is not None else "full"
        return (a.request.nodes, a.request.mode, a.request.baseline) != (tuple(sorted(s.ablation.nodes)), s.mode,
                                                                         baseline)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        """Strips are cut to the panel's width: draw them again when it changes."""
        super().resizeEvent(event)
        if self.chars() != self._chars:
            self.refresh()
