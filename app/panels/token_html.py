"""Token windows as HTML with a per-token heatmap (monospace, whitespace kept and made visible).

Knows nothing about Qt widgets or the engine: it formats ``(tokens, values, center)`` triples.
"""

from __future__ import annotations

import html

import numpy as np

from app.widgets import theme

NEWLINE, TAB = "⏎", "→"


def _mix(t: float, positive: bool) -> str:
    """Background colour for strength t in [0, 1]: from the panel colour to coral (+) or blue (-)."""
    base = np.array([0x1b, 0x1c, 0x21], dtype=float)
    top = np.array(theme.POS if positive else theme.NEG, dtype=float)
    r, g, b = (base + (top - base) * float(np.clip(t, 0.0, 1.0)) * 0.85).astype(int)
    return f"#{r:02x}{g:02x}{b:02x}"


def token_span(tok: str, value: float, scale: float, center: bool) -> str:
    text = html.escape(tok.replace("\n", NEWLINE).replace("\t", TAB)) or "∅"
    style = f"background-color:{_mix(abs(value) / scale, value >= 0)};"
    if center:
        style += "font-weight:bold; text-decoration: underline;"
    return f'<span style="{style}" title="{value:+.3f}">{text}</span>'


def examples_html(title: str, examples, scale: float | None = None) -> str:
    """One line per example: its value, then its token window, each token shaded by the node's value."""
    if not examples:
        return f"<p><b>{html.escape(title)}</b><br><span style='color:{theme.MUTED}'>none</span></p>"
    if scale is None:
        scale = max(float(np.max(np.abs(ex.values))) for ex in examples) or 1.0
    rows = []
    for ex in examples:
        spans = "".join(token_span(t, float(v), scale, i == ex.center)
                        for i, (t, v) in enumerate(zip(ex.tokens, ex.values)))
        rows.append(f"<span style='color:{theme.MUTED}'>{ex.value:+7.3f} │ </span>{spans}")
    body = "<br>".join(rows)
    return (f"<p style='margin-bottom:2px'><b>{html.escape(title)}</b></p>"
            f"<pre style='margin-top:0; white-space: pre;'>{body}</pre>")
