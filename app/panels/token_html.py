"""Token windows as HTML with a per-token heatmap (monospace, whitespace kept and made visible).

Given a line width in characters, each window is cut to fit it with its peak token (the example's
``center``) at the middle column, like a concordance: the peaks of all examples stand one above the
other, marked (bold, underlined, white), and nothing runs off the panel's edge. Knows nothing about
Qt widgets or the engine: it formats ``(tokens, values, center)`` triples.
"""

from __future__ import annotations

import html
import re

import numpy as np

from app.widgets import theme

NEWLINE, TAB = "⏎", "→"


def _mix(t: float, positive: bool) -> str:
    """Background colour for strength t in [0, 1]: from the panel colour to coral (+) or blue (-)."""
    base = np.array([0x1b, 0x1c, 0x21], dtype=float)
    top = np.array(theme.POS if positive else theme.NEG, dtype=float)
    r, g, b = (base + (top - base) * float(np.clip(t, 0.0, 1.0)) * 0.85).astype(int)
    return f"#{r:02x}{g:02x}{b:02x}"


PREFIX_CHARS = len("+99.999 │ ")  # the value column before each window


def shown(tok: str) -> str:
    """A token as displayed: newline and tab made visible, an empty token as ∅."""
    return tok.replace("\n", NEWLINE).replace("\t", TAB) or "∅"


_ESCAPE = re.compile(r"\\(\\|n|t|r|x[0-9a-f]{2})")
_UNESCAPED = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


def raw_token(display: str) -> str:
    """A token's text from its display string (``engine`` tokenizers' ``token_str``, which escapes
    backslash, newline, tab and control characters), so that :func:`shown` draws it like the store's."""
    return _ESCAPE.sub(lambda m: _UNESCAPED.get(m[1]) or chr(int(m[1][1:], 16)), display)


def fit_window(tokens, center: int, width: int) -> tuple[int, int, int]:
    """``(first, stop, pad)``: the tokens ``tokens[first:stop]`` around ``center`` that fit in ``width``
    characters when the centre token starts at column ``(width - len(centre)) // 2``, and the spaces
    (``pad``) before the first one that put it there."""
    col = max(0, (width - len(shown(tokens[center]))) // 2)
    first, used = center, 0
    while first > 0 and used + len(shown(tokens[first - 1])) <= col:
        first -= 1
        used += len(shown(tokens[first]))
    stop, end = center + 1, col + len(shown(tokens[center]))
    while stop < len(tokens) and end + len(shown(tokens[stop])) <= width:
        end += len(shown(tokens[stop]))
        stop += 1
    return first, stop, col - used


def token_span(tok: str, value: float, scale: float, center: bool) -> str:
    text = html.escape(shown(tok))
    style = f"background-color:{_mix(abs(value) / scale, value >= 0)};"
    if center:  # the peak: bold, underlined and bright, whatever its shade
        style += f"font-weight:bold; text-decoration: underline; color:{theme.SELECTED};"
    return f'<span style="{style}" title="{value:+.3f}">{text}</span>'


def strip_line(prefix: str, tokens, values, center: int, scale: float, width: int | None = None) -> str:
    """A muted ``prefix`` (:data:`PREFIX_CHARS` long), then the tokens shaded by ``values`` (cut to
    ``width`` characters around ``center``, which is marked): an example's line, an attention strip."""
    first, stop, pad = fit_window(tokens, center, width) if width else (0, len(tokens), 0)
    spans = "".join(token_span(tokens[i], float(values[i]), scale, i == center) for i in range(first, stop))
    return f"<span style='color:{theme.MUTED}'>{html.escape(prefix)}</span>{' ' * pad}{spans}"


def example_line(ex, scale: float, width: int | None = None) -> str:
    """One example: its value, then its token window (cut to ``width`` characters around the peak)."""
    return strip_line(f"{ex.value:+7.3f} │ ", ex.tokens, ex.values, ex.center, scale, width)


def examples_html(title: str, examples, scale: float | None = None, width: int | None = None) -> str:
    """One line per example: its value, then its token window, each token shaded by the node's value.
    ``width``: characters a window may take (None: whole windows, unaligned)."""
    if not examples:
        return f"<p><b>{html.escape(title)}</b><br><span style='color:{theme.MUTED}'>none</span></p>"
    if scale is None:
        scale = max(float(np.max(np.abs(ex.values))) for ex in examples) or 1.0
    rows = [example_line(ex, scale, width) for ex in examples]
    body = "<br>".join(rows)
    return (f"<p style='margin-bottom:2px'><b>{html.escape(title)}</b></p>"
            f"<pre style='margin-top:0; white-space: pre;'>{body}</pre>")
