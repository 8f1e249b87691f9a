"""The selected node on the selected pair, position by position (issue 18), above the inspector's tabs:

* **positions**: the node's activation at every position of prompt A and of prompt B, as two heat
  strips over their tokens (coral > 0, blue < 0, one scale for both; the strongest position marked);
* **attention**, for a q, k or v node: where its head attends from the last position of A and of B
  (shade = attention weight, 1 the strongest), the sink's share, and a link to the head's full
  pattern (every query position, :class:`app.panels.pattern.PatternDialog`).

Drawn like the Examples tab's lines (:func:`app.panels.token_html.strip_line`: one implementation; a
strip too long for the panel is cut around its marked token). Everything comes from the state's
trace of the pair under the current ablations (:attr:`AppState.trace`, :mod:`app.workers.trace`), so
it follows live ablations; nothing here waits for the engine.
"""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QFrame, QTextBrowser, QWidget

from app.panels.token_html import PREFIX_CHARS, raw_token, shown, strip_line
from app.widgets import theme
from app.workers.trace import head_of

TOOLTIP = ("Positions: the selected node's activation at every token of the pair's prompts (A above B), "
           "under the current ablations; shade = value (coral +, blue −), the marked token has the largest "
           "|value|. Attention (q, k, v nodes): where the node's head attends from the last token; the "
           "sink's share is the weight on no token.")
SCALE = 1.0  # an attention weight of 1 is the strongest shade: strips compare across heads and ablations
PATTERN_LINK = "pattern"


class PairStrips(QTextBrowser):
    """See the module docstring. Built from :class:`app.model.state.AppState`."""

    patternRequested = Signal(int, int)  # layer, head: show that head's full pattern

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setObjectName("pairStrips")
        self.setFont(theme.mono_font(9))
        self.setLineWrapMode(QTextBrowser.LineWrapMode.NoWrap)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setOpenLinks(False)
        self.anchorClicked.connect(self._on_link)
        self.document().setDocumentMargin(2)
        self._chars = 0  # the characters per strip it was drawn with
        for signal in (state.selectionChanged, state.pairChanged, state.traceChanged, state.bundleChanged):
            signal.connect(self.refresh)
        state.evaluationChanged.connect(self._on_evaluation)  # after the metrics: says "updating…"
        self.refresh()

    # -- what is shown -------------------------------------------------------------------------
    def target(self) -> tuple[int, int] | None:
        """``(layer, head)`` of the selected node, or None when it is no q, k or v node."""
        b = self.state.bundle
        return head_of(self.state.selected, b.shape.d_head) if b is not None else None

    def _tokens(self) -> list[tuple[str, ...]]:
        view, pair = self.state.bundle.task_view, self.state.pair
        return [tuple(raw_token(t) for t in view.tokens[row]) for row in (2 * pair, 2 * pair + 1)
                if row < len(view.tokens)]

    def positions(self) -> list[tuple[str, tuple[str, ...], np.ndarray]]:
        """The selected node's values on the selected pair as drawn: ``(side, tokens, values)``, A then B
        (empty until its trace has arrived)."""
        t = self.state.current_trace()
        if t is None or self.state.selected is None:
            return []
        vals = t.trace.positions(self.state.selected)
        if vals is None:
            return []
        return [(side, toks, np.nan_to_num(vals[i, :len(toks)])) for i, (side, toks) in
                enumerate(zip("AB", self._tokens()))]

    def rows(self) -> list[tuple[str, tuple[str, ...], np.ndarray, float]]:
        """The selected head's attention from each side's last position: ``(side, tokens, weights, sink)``."""
        t, target = self.state.current_trace(), self.target()
        if t is None or target is None:
            return []
        tr, out = t.trace, []
        for i, (side, toks) in enumerate(zip("AB", self._tokens())):
            w = tr.pattern(*target)[i, tr.last[i], :len(toks)]
            out.append((side, toks, w, float(np.clip(1.0 - w.sum(), 0.0, 1.0)) if self._has_sink() else 0.0))
        return out

    def _has_sink(self) -> bool:
        return bool(self.state.bundle.config.model.attn_sink)

    def chars(self) -> int:
        """How many characters of tokens fit on one strip."""
        char = max(1, QFontMetrics(self.document().defaultFont()).horizontalAdvance("M"))
        margin = 2 * int(self.document().documentMargin()) + 4
        return max(8, (self.viewport().width() - margin) // char - PREFIX_CHARS - 1)

    # -- drawing -------------------------------------------------------------------------------
    @Slot()
    def refresh(self, *_args) -> None:
        s = self.state
        self.setVisible(s.bundle is not None and s.selected is not None)
        if s.bundle is None or s.selected is None:
            return
        self._chars = chars = self.chars()
        muted = f"color:{theme.MUTED}"
        t = s.trace
        if t is not None and t.request.pair == s.pair and t.error:
            body = f"<span style='{muted}'>cannot trace this pair: {html.escape(t.error)}</span>"
        elif s.current_trace() is None:
            body = f"<span style='{muted}'>pair {s.pair} · tracing every position…</span>"
        else:
            updating = " · updating…" if self._behind() else ""
            body = self._positions_html(chars, muted, updating)
            target = self.target()
            if target is not None:
                body += "<br>" + self._head_html(target, chars, muted)
        self.setHtml(f"<pre style='margin:0; white-space: pre;'>{body}</pre>")
        self.setToolTip(TOOLTIP)
        self.setFixedHeight(int(self.document().size().height()) + 2)

    def _positions_html(self, chars: int, muted: str, updating: str) -> str:
        rows = self.positions()
        lines = [f"<b>every position</b> <span style='{muted}'>· pair {self.state.pair}{updating}</span>"]
        scale = max((float(np.abs(v).max()) for _s, _t, v in rows if len(v)), default=0.0) or 1.0
        for side, toks, vals in rows:
            top = len(vals) - 1 - int(np.argmax(np.abs(vals[::-1])))  # of equal values, the latest
            fits = sum(len(shown(t)) for t in toks) <= chars
            lines.append(strip_line(f"{side}{float(vals[top]):+7.2f} │ ", toks, vals, top, scale,
                                    None if fits else chars))
        return "<br>".join(lines)

    def _head_html(self, target: tuple[int, int], chars: int, muted: str) -> str:
        rows = self.rows()
        lines = [f"<b>L{target[0]} head {target[1]}</b> <span style='{muted}'>attends from the last token · "
                 f"</span><a href='{PATTERN_LINK}' style='color:{theme.ACCENT}'>full pattern…</a>"]
        for side, toks, w, _sink in rows:
            top = int(np.argmax(w))
            fits = sum(len(shown(t)) for t in toks) <= chars  # whole, from its start; else cut around the top
            lines.append(strip_line(f"{side}{100 * float(w[top]):5.0f}% │ ", toks, w, top, SCALE,
                                    None if fits else chars))
        if self._has_sink():
            note = "sink " + " · ".join(f"{side} {100 * sink:.1f}%" for side, _t, _w, sink in rows)
            lines.append(f"<span style='{muted}'>{html.escape(note)}</span>")
        return "<br>".join(lines)

    @Slot(object)
    def _on_evaluation(self, _evaluation) -> None:
        if self.state.selected is not None:
            self.refresh()

    def _behind(self) -> bool:
        """Whether the state's ablations have moved on since the trace on screen was made."""
        s, r = self.state, self.state.trace.request
        baseline = s.baseline if s.bundle.circuit is not None else "full"
        return (r.nodes, r.edges, r.mode, r.baseline) != (tuple(sorted(s.ablation.nodes)),
                                                          tuple(sorted(str(e) for e in s.ablation.edges)), s.mode,
                                                          baseline)

    @Slot(object)
    def _on_link(self, url) -> None:
        target = self.target()
        if url.toString() == PATTERN_LINK and target is not None:
            self.patternRequested.emit(*target)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        """Strips are cut to the panel's width: draw them again when it changes."""
        super().resizeEvent(event)
        if self.chars() != self._chars:
            self.refresh()
