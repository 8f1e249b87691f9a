"""Drawing a :class:`engine.scene.snapshot.ViewSnapshot` as SVG, and as PNG through Qt's SVG renderer.

Why not pyqtgraph's exporters: its SVG exporter raises on PySide6 6.11+ (docs/architecture.md, "Known library issues"), and a
scene painted onto ``QSvgGenerator`` comes out as anonymous paths and pixmap fragments (pyqtgraph
draws scatter symbols from a cached atlas). Writing the SVG from the layout data instead gives a
small, editable file whose elements mean something: one ``<circle class="node" data-id=...>`` per
node with a ``<title>`` tooltip, one path per edge-style bucket, real ``<text>``. The PNG is that
SVG rasterised by ``QSvgRenderer`` at the requested scale, so the PNG and the SVG are one picture,
and text and lines stay sharp at 2x and 4x instead of being upscaled.

The picture follows the view's own styling, taken from the code that draws the view: node colours
and sizes (``app.widgets.theme``, ``app.graph.items``), edge buckets by sign and |w| quantile with their
colours, opacity and widths (``app.graph.edges.bucket_pens``), residual links, the selected pair's
input tokens and target logits with their display-only edges, captions (placed by the view's rule,
``engine.scene.labels``: by priority, never overlapping), ablated nodes (hollow and
crossed) and weights (dashed, marked), the selection ring, the row names of the left axis and a
legend, under a title with the header line and the metrics. Only what lies inside the view range
is drawn (edges are clipped to it).
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np

from app.widgets import theme
from app.graph.edges import EdgeStyle, edge_levels, style_buckets, style_pens
from app.graph.captions import RING, RING_GAP
from app.graph.items import LEGEND_KINDS, caption, visible_token, zoom_node_size
from app.graph.node_style import heat_brush
from engine.scene.labels import HIDDEN, MAX_CAPTIONS, caption_order, node_blockers, place_captions
from engine.scene.focus import DIFF_SIDES, lit_edges
from engine.scene.layout import qk_arcs, row_gaps
from engine.scene.snapshot import ViewSnapshot

PAD = 10.0
TITLE_PX, SUB_PX, LEGEND_PX, AXIS_PX = 13.0, 11.0, 10.5, 10.5
CAPTION_PX, TOKEN_PX, TARGET_PX = 9.3, 12.0, 14.7  # the view's 7, 9 and 11 pt at 96 dpi
LEFT_AXIS = 160.0  # pixels for the row names
CHAR_W = 0.52  # average glyph width / font size, for layout without font metrics
MONO_W = 0.61  # a monospace glyph's width / font size (DejaVu Sans Mono: 0.602)
CAPTION_MARGIN = 1.0  # pixels around a caption's text (its background box), as in the view
CAPTION_CHAR_W = 0.64  # a caption's glyph width / font size: wide enough for DejaVu Sans digits, so
# captions placed by estimate never overlap once drawn
_BAD_XML = str.maketrans({c: "\ufffd" for c in [*range(0, 9), 11, 12, *range(14, 32)]})


def _text(s: str) -> str:
    return escape(s.translate(_BAD_XML), {'"': "&quot;"})


def _n(v: float) -> str:
    return f"{v:.2f}"


def _rgba(color) -> str:
    """``stroke``/``fill`` colour and opacity from a QColor, an (r, g, b, a) tuple or a ``#rrggbb`` string."""
    if isinstance(color, str):
        return color, 1.0
    if isinstance(color, tuple):
        r, g, b, a = color
        return f"#{r:02x}{g:02x}{b:02x}", a / 255.0
    return color.name(), color.alphaF()


@dataclass(frozen=True)
class Frame:
    """Where the plot sits on the canvas and how layout units map to pixels."""

    width: float
    height: float
    left: float
    top: float
    right: float
    bottom: float
    x0: float
    x1: float
    y0: float
    y1: float

    def map(self, xy: np.ndarray) -> np.ndarray:
        """(n, 2) layout coordinates -> (n, 2) pixels (y grows downwards)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        px = self.left + (xy[:, 0] - self.x0) * (self.right - self.left) / (self.x1 - self.x0)
        py = self.top + (self.y1 - xy[:, 1]) * (self.bottom - self.top) / (self.y1 - self.y0)
        return np.stack([px, py], axis=1)

    def inside(self, p: np.ndarray) -> np.ndarray:
        return (p[:, 0] >= self.left) & (p[:, 0] <= self.right) & (p[:, 1] >= self.top) & (p[:, 1] <= self.bottom)


def clip_segments(segs: np.ndarray, f: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Clip pixel segments (n, 4) to the plot rectangle (Liang-Barsky); returns (clipped, kept mask)."""
    x0, y0, x1, y1 = (segs[:, i] for i in range(4))
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = np.zeros(len(segs)), np.ones(len(segs))
    keep = np.ones(len(segs), bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for p, q in ((-dx, x0 - f.left), (dx, f.right - x0), (-dy, y0 - f.top), (dy, f.bottom - y0)):
            keep &= ~((p == 0) & (q < 0))
            r = q / p
            t0 = np.where(p < 0, np.maximum(t0, r), t0)
            t1 = np.where(p > 0, np.minimum(t1, r), t1)
    keep &= t0 <= t1
    out = np.stack([x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy], axis=1)
    return out[keep], keep


def _path(segs: np.ndarray) -> str:
    return "".join(f"M{_n(a)} {_n(b)}L{_n(c)} {_n(d)}" for a, b, c, d in segs.tolist())


#: Segments per ``<path>``: Qt's SVG reader truncates a path of 2^15 commands or more ("Invalid path
#: data; path truncated": csp_yolo1's whole model lost most of its weights), so longer runs of
#: segments are written as several paths of one style.
PATH_SEGMENTS = 8192


def _line_path(segs: np.ndarray, color, width: float, dash: str = "", cls: str = "") -> str:
    if not len(segs):
        return ""
    stroke, alpha = _rgba(color)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return "".join(f'<path class="{cls}" d="{_path(segs[i:i + PATH_SEGMENTS])}" fill="none" stroke="{stroke}" '
                   f'stroke-opacity="{alpha:.3f}" stroke-width="{width:g}"{extra}/>'
                   for i in range(0, len(segs), PATH_SEGMENTS))


def _label(x: float, y: float, text: str, px: float, fill: str, anchor: str = "middle", mono: bool = False,
           weight: str = "normal") -> str:
    family = "monospace" if mono else "sans-serif"
    return (f'<text x="{_n(x)}" y="{_n(y)}" font-family="{family}" font-size="{px:g}" font-weight="{weight}" '
            f'fill="{fill}" text-anchor="{anchor}">{_text(text)}</text>')


def _fit_text(text: str, px: float, room: float) -> str:
    chars = int(room / (CHAR_W * px))
    return text if len(text) <= chars else text[: max(chars - 1, 1)] + "…"


def _wrap_text(text: str, px: float, room: float, max_lines: int = 3) -> list[str]:
    """``text`` broken at spaces into lines that fit ``room`` (the last one cut with "…" if it needs
    more than ``max_lines``)."""
    chars = max(int(room / (CHAR_W * px)), 1)
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        joined = f"{line} {word}" if line else word
        if len(joined) <= chars or not line:
            line = joined
        else:
            lines.append(line)
            line = word
    lines.append(line)
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [" ".join(lines[max_lines - 1:])]
    return [_fit_text(ln, px, room) for ln in lines]


def _legend_items(snap: ViewSnapshot | None = None) -> list[tuple[str, str, object]]:
    """The legend: weight signs and node kinds, or in a diff the sides' colours (nodes and weights)."""
    marks = [("ablated", "ablated", None), ("dash", "ablated weight", None), ("ring", "selected", None),
             ("dots", "q·k pair", theme.QK_LINK)]
    if snap is not None and snap.diff is not None:
        d = snap.diff.diff
        words = {"a": f"only in {d.a}", "b": f"only in {d.b}", "both": "in both"}
        return [("dot", words[DIFF_SIDES[k]], "#%02x%02x%02x" % theme.DIFF_COLORS[k]) for k in (1, 2, 0)] + marks
    word = "attribution" if snap is not None and snap.shows_attribution else "weight"
    items = [("line", f"+ {word}", theme.weight_color(True, 255)),
             ("line", f"− {word}", theme.weight_color(False, 255))]
    return items + marks + [("dot", name, theme.KIND_COLORS[k]) for k, name in LEGEND_KINDS]


def _legend(width: float, top: float, snap: ViewSnapshot | None = None) -> tuple[list[str], float]:
    """The legend rows from ``top``; returns (elements, bottom)."""
    out, x, y = ['<g class="legend">'], PAD, top + LEGEND_PX / 2
    for kind, text, color in _legend_items(snap):
        item_w = 26 + len(text) * CHAR_W * LEGEND_PX + 14
        if x + item_w > width - PAD and x > PAD:
            x, y = PAD, y + LEGEND_PX + 7
        cx = x + 10
        if kind in ("line", "dash", "dots"):
            stroke = _rgba(color)[0] if color is not None else theme.ABLATED
            dash = {"dash": ' stroke-dasharray="8,4"', "dots": ' stroke-dasharray="2,3"'}.get(kind, "")
            out.append(f'<path d="M{_n(x)} {_n(y)}L{_n(x + 20)} {_n(y)}" stroke="{stroke}" stroke-width="2"{dash}/>')
        elif kind == "ablated":
            out.append(_ablated_mark(cx, y, 12.0))
        elif kind == "ring":
            out.append(f'<circle cx="{_n(cx)}" cy="{_n(y)}" r="6.5" fill="none" stroke="{theme.SELECTED}" '
                       'stroke-width="2"/>')
        else:
            out.append(f'<circle cx="{_n(cx)}" cy="{_n(y)}" r="4.5" fill="{color}"/>')
        out.append(_label(x + 26, y + LEGEND_PX * 0.36, text, LEGEND_PX, theme.TEXT, "start"))
        x += item_w
    out.append("</g>")
    return out, y + LEGEND_PX / 2


def _ablated_mark(x: float, y: float, size: float) -> str:
    """The view's ablated symbol: a background-filled circle with an X (``graph_items.ablated_symbol``)."""
    r, c = size / 2, 0.42 * size
    return (f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}" fill="{theme.BG}" stroke="{theme.ABLATED}" '
            f'stroke-width="2.2"/><path d="M{_n(x - c)} {_n(y - c)}L{_n(x + c)} {_n(y + c)}M{_n(x - c)} '
            f'{_n(y + c)}L{_n(x + c)} {_n(y - c)}" stroke="{theme.ABLATED}" stroke-width="2.2"/>')


def edge_style(snap: ViewSnapshot) -> EdgeStyle:
    """The view's edge style for the snapshot: a diff's sides, a focus's bright weights."""
    lit, _ = lit_edges(snap.graph, snap.emphasis)
    d = snap.diff
    return EdgeStyle(lit=lit) if d is None else EdgeStyle(d.edge_side, theme.DIFF_COLORS, lit)


def _edges(snap: ViewSnapshot, f: Frame) -> list[str]:
    """Weight edges in the view's buckets (colour group x |w| level, the faint ones outside a focus
    first), weakest first, as in EdgeLayer."""
    g = snap.graph
    values, drawn = snap.edge_values()  # weights, or (attribution mode) the attribution on the pair
    order = np.argsort(-np.abs(values), kind="stable")
    absw = np.abs(values)
    style = edge_style(snap)
    n = style.n_groups
    group = (values > 0).astype(np.int64) if style.group is None else np.asarray(style.group, np.int64)
    if snap.shows_attribution:  # as in the view, levels among the weights drawn
        level = np.zeros(len(absw), np.int64)
        level[drawn] = edge_levels(absw[drawn])
    else:
        level = edge_levels(absw)
    bucket = style_buckets(level, group, style.lit, n)[order]
    shown = drawn[order]
    pens = style_pens(len(g.weight), style)  # as the view: the threshold removes edges, never restyles them
    names = ("neg", "pos") if style.group is None else DIFF_SIDES
    segs = np.concatenate([f.map(g.pos[g.src[order]]), f.map(g.pos[g.dst[order]])], axis=1)
    clipped, kept = clip_segments(segs, f)
    out = ['<g class="edges">']
    for b, (color, width) in enumerate(pens):
        sel = (bucket == b) & shown
        what = f"{names[b % n]}-dim" if b < n else f"{names[(b - n) % n]}-{(b - n) // n}"
        out.append(_line_path(clipped[sel[kept]], color, width, cls=f"edges-{what}"))
    out.append("</g>")
    return out


def node_sizes(snap: ViewSnapshot, f: Frame) -> np.ndarray:
    """(n,) node diameters in pixels, by the view's rule for this zoom (``items.zoom_node_size``)."""
    px_per_unit = (f.right - f.left) / (f.x1 - f.x0)
    return zoom_node_size(snap.view, row_gaps(snap.graph) * px_per_unit)


def _nodes(snap: ViewSnapshot, f: Frame, p: np.ndarray, inside: np.ndarray, size: np.ndarray) -> list[str]:
    g = snap.graph
    # the view's outlines: a thin one in a circuit, none in the whole model, where a crowded row's
    # outlines would hide its fills (app/graph/view.py)
    stroke = f'stroke="{theme.BG}" stroke-width="0.6"' if snap.view == "circuit" else 'stroke="none"'
    heat = snap.node_heat()  # attribution mode: each node's estimated effect on the chosen side
    scale = float(np.nanmax(np.abs(heat))) if heat is not None and np.isfinite(heat).any() else 1.0
    out = ['<g class="nodes">']
    for i in np.flatnonzero(inside).tolist():
        dim = (snap.in_circuit is not None and not snap.in_circuit[i] and snap.diff is None) or \
            (snap.emphasis is not None and not snap.emphasis[i])
        opacity = f' fill-opacity="{80 / 255:.3f}"' if dim else ""
        node = g.ids[i]
        tip = f"{node}: {snap.labels[node]}" if snap.labels.get(node) else node
        fill = theme.KIND_COLORS[int(g.kind[i])]
        if heat is not None:
            dim = dim or np.isnan(heat[i])
            if not np.isnan(heat[i]):
                fill = heat_brush(float(heat[i]), scale, True).color().name()
                tip = f"{tip} (estimated effect {heat[i]:+.3f})"
        if snap.diff is not None:
            side = int(snap.diff.node_side[i])
            fill, tip = "#%02x%02x%02x" % theme.DIFF_COLORS[side], f"{tip} ({DIFF_SIDES[side]})"
        out.append(f'<circle class="node" data-id="{_text(node)}" cx="{_n(p[i, 0])}" cy="{_n(p[i, 1])}" '
                   f'r="{_n(size[i] / 2)}" fill="{fill}"{opacity} {stroke}>'
                   f'<title>{_text(tip)}</title></circle>')
    out.append("</g>")
    return out


def _ablation(snap: ViewSnapshot, f: Frame, p: np.ndarray, inside: np.ndarray,
              size: np.ndarray) -> tuple[list[str], list[str]]:
    """(dashed ablated weights with their marks, ablated node overlays)."""
    g = snap.graph
    pairs = [(g.index[a], g.index[b]) for a, _, b in (e.partition("->") for e in snap.ablated_edges)
             if a in g.index and b in g.index]
    segs = np.array([(*p[a], *p[b]) for a, b in pairs], dtype=np.float64).reshape(-1, 4)
    segs, _ = clip_segments(segs, f)
    cuts = [_line_path(segs, theme.ABLATED, 2, dash="8,4", cls="ablated-edges")]
    for x, y in ((segs[:, :2] + segs[:, 2:]) / 2).tolist():
        cuts.append(f'<path class="ablated-edge-mark" d="M{_n(x - 4)} {_n(y - 4)}L{_n(x + 4)} {_n(y + 4)}'
                    f'M{_n(x - 4)} {_n(y + 4)}L{_n(x + 4)} {_n(y - 4)}" stroke="{theme.ABLATED}" stroke-width="2.5"/>')
    marks = ['<g class="ablated">']
    for node in snap.ablated_nodes:
        i = g.index.get(node)
        if i is not None and inside[i]:
            marks.append(_ablated_mark(p[i, 0], p[i, 1], size[i] + 3))
    marks.append("</g>")
    return cuts, marks


def _io(snap: ViewSnapshot, f: Frame) -> tuple[list[str], list[str]]:
    """(display-only embedding/unembedding edges, token square and logit circles + their texts)."""
    g = snap.graph
    segs = np.concatenate([f.map(snap.io_segs[:, :2]), f.map(snap.io_segs[:, 2:])], axis=1)
    segs, kept = clip_segments(segs, f)
    w = snap.io_weight[kept]
    edges = [_line_path(segs[(w > 0) == pos], theme.weight_color(pos, 90), 1, dash="1,2", cls="io-edges")
             for pos in (True, False)]
    nodes, texts = [], []
    tok = f.map(np.stack([snap.token_x, np.zeros(len(snap.token_x))], axis=1))
    for (x, y), t, ok in zip(tok.tolist(), snap.tokens, f.inside(tok)):
        if ok:
            texts.append(_label(x, y + 0.35 * TOKEN_PX, visible_token(t), TOKEN_PX, theme.TEXT, mono=True))
    if len(tok) and f.inside(tok[-1:])[0]:
        x, y = tok[-1]  # the last token's box, as wide as its text (a BPE token is often several characters)
        half = max(11.0, (len(visible_token(snap.tokens[-1])) * MONO_W * TOKEN_PX + 8) / 2)
        nodes.append(f'<rect class="io" x="{_n(x - half)}" y="{_n(y - 11)}" width="{_n(2 * half)}" height="22" '
                     f'fill="none" stroke="{theme.TEXT}" stroke-width="1.5"/>')
    logits = f.map(np.stack([snap.logit_x, np.full(2, g.top)], axis=1))
    for (x, y), side, target, ok in zip(logits.tolist(), "AB", snap.targets, f.inside(logits)):
        if ok:
            nodes.append(f'<circle class="io" cx="{_n(x)}" cy="{_n(y)}" r="7" fill="{theme.PANEL}" '
                         f'stroke="{theme.TEXT}" stroke-width="1.5"/>')
            if y - 11 - TARGET_PX >= f.top:  # (the view clips it too)
                texts.append(_label(x, y - 11, f"{side}: {visible_token(target)}", TARGET_PX, theme.TEXT, mono=True))
    return edges, nodes + texts


def _caption_boxes(snap: ViewSnapshot, f: Frame, p: np.ndarray, inside: np.ndarray, size: np.ndarray,
                   texts: dict[int, str]) -> tuple[np.ndarray, np.ndarray]:
    """(slots, rects) of the captions, by the view's rule (``engine.scene.labels``), with text sizes
    estimated from ``CHAR_W``."""
    g = snap.graph
    cand = np.flatnonzero(inside)
    cand = cand if len(cand) <= MAX_CAPTIONS else cand[:0]
    order = caption_order(g, snap.labels, snap.ablated_nodes, snap.selected, cand)
    sizes, offsets = np.zeros((g.n_nodes, 2)), size / 2 + 1.0
    for i in order.tolist():
        texts[i] = caption(g, i, snap.labels)
        sizes[i] = (len(texts[i]) * CAPTION_CHAR_W * CAPTION_PX + 2 * CAPTION_MARGIN, 1.25 * CAPTION_PX + 2 * CAPTION_MARGIN)
    for node in snap.ablated_nodes:
        if node in g.index:
            offsets[g.index[node]] += 1.5
    blockers, owners = [node_blockers(p[cand], size[cand] / 2)], [cand]
    sel = g.index.get(snap.selected) if snap.selected else None
    if sel is not None:
        offsets[sel] = size[sel] / 2 + RING / 2 + RING_GAP
        blockers.append(node_blockers(p[[sel]], size[sel] / 2 + RING / 2 + 1.5))
        owners.append(np.array([sel]))
    io = f.map(np.concatenate([np.stack([snap.token_x, np.zeros(len(snap.token_x))], axis=1),
                               np.stack([snap.logit_x, np.full(2, g.top)], axis=1)]))
    blockers.append(node_blockers(io, 11.0))  # the tokens, the token square and the logits
    blockers.append(np.array([[x - 60.0, y - 11 - 1.2 * TARGET_PX, x + 60.0, y] for x, y in io[-2:].tolist()]))
    owners += [np.full(len(io), -1), np.full(2, -1)]
    return place_captions(p, sizes, offsets, order, np.concatenate(blockers), np.concatenate(owners),
                          (f.left, f.top, f.right, f.bottom))


def _captions(snap: ViewSnapshot, f: Frame, p: np.ndarray, inside: np.ndarray, size: np.ndarray) -> list[str]:
    """Node captions where the view would show them: by priority, never overlapping, on a box of the
    background colour so they read over edges."""
    texts: dict[int, str] = {}
    slots, rects = _caption_boxes(snap, f, p, inside, size, texts)
    out = ['<g class="captions">']
    for i in np.flatnonzero(slots != HIDDEN).tolist():
        x0, y0, x1, y1 = rects[i]
        node = snap.graph.ids[i]
        color = theme.SELECTED if node == snap.selected else theme.TEXT if snap.labels.get(node) else theme.MUTED
        out.append(f'<rect x="{_n(x0)}" y="{_n(y0)}" width="{_n(x1 - x0)}" height="{_n(y1 - y0)}" fill="{theme.BG}" '
                   f'fill-opacity="0.78"/>')
        out.append(_label((x0 + x1) / 2, y1 - CAPTION_MARGIN - 0.3 * CAPTION_PX, texts[i], CAPTION_PX, color))
    out.append("</g>")
    return out


def _axis(snap: ViewSnapshot, f: Frame) -> list[str]:
    out = [f'<g class="axis"><path d="M{_n(f.left)} {_n(f.top)}L{_n(f.left)} {_n(f.bottom)}" '
           f'stroke="{theme.GRID}" stroke-width="1"/>']
    for y, name in snap.graph.row_labels():
        py = f.map(np.array([[f.x0, y]]))[0, 1]
        if f.top <= py <= f.bottom:
            out.append(_label(f.left - 8, py + 0.35 * AXIS_PX, _fit_text(name, AXIS_PX, f.left - PAD - 8),
                              AXIS_PX, theme.MUTED, "end"))
    out.append("</g>")
    return out


def _arcs(g, f: Frame, sel: np.ndarray) -> np.ndarray:
    """The q-k arcs ``sel`` (a mask of ``g.qk``) in pixels, clipped to the plot."""
    arcs = qk_arcs(g.pos, g.qk[sel])
    return clip_segments(np.concatenate([f.map(arcs[:, :2]), f.map(arcs[:, 2:])], axis=1), f)[0]


def render_svg(snap: ViewSnapshot) -> str:
    """The snapshot as an SVG document (``snap.size`` pixels; see the module docstring)."""
    width, height = snap.size
    head = [f'<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}">',
            f"<title>{_text(snap.header())}</title>",
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="{theme.BG}"/>']
    title = [_label(PAD, PAD + TITLE_PX, _fit_text(snap.header(), TITLE_PX, width - 2 * PAD), TITLE_PX, theme.TEXT,
                    "start", weight="bold")]
    metrics = _wrap_text(snap.metrics_line(), SUB_PX, width - 2 * PAD)  # a narrow picture wraps, not cuts
    for k, line in enumerate(metrics):
        title.append(_label(PAD, PAD + TITLE_PX + 6 + SUB_PX + k * (SUB_PX + 3), line, SUB_PX, theme.MUTED, "start"))
    legend, legend_bottom = _legend(width, PAD + TITLE_PX + SUB_PX + 16 + (len(metrics) - 1) * (SUB_PX + 3), snap)
    x0, x1, y0, y1 = snap.view_range
    f = Frame(width, height, min(LEFT_AXIS, 0.3 * width), legend_bottom + 10, width - PAD, height - PAD,
              x0, x1, y0, y1)
    g = snap.graph
    p = f.map(g.pos)
    inside = f.inside(p)
    links = g.resid.reshape(-1)
    resid = np.concatenate([p[links[0::2]], p[links[1::2]]], axis=1) if len(links) else np.zeros((0, 4))
    resid, _ = clip_segments(resid, f)
    _, lit_qk = lit_edges(g, snap.emphasis)
    bright = np.ones(len(g.qk), bool) if lit_qk is None else lit_qk
    arcs, dim_arcs = _arcs(g, f, bright), _arcs(g, f, ~bright)
    io_edges, io_items = _io(snap, f)
    size = node_sizes(snap, f)
    cuts, marks = _ablation(snap, f, p, inside, size)
    ring = []
    i = g.index.get(snap.selected) if snap.selected else None
    if i is not None and inside[i]:
        ring.append(f'<circle class="selected" cx="{_n(p[i, 0])}" cy="{_n(p[i, 1])}" '
                    f'r="{_n((size[i] + RING) / 2)}" fill="none" stroke="{theme.SELECTED}" stroke-width="2.5"/>')
    body = [*_edges(snap, f), _line_path(resid, theme.RESIDUAL_LINK, 1, cls="residual-links"),
            _line_path(dim_arcs, theme.QK_LINK[:3] + (45,), 1.0, dash="2,3", cls="qk-links-dim"),
            _line_path(arcs, theme.QK_LINK, 1.3, dash="2,3", cls="qk-links"), *io_edges, *cuts,
            *_nodes(snap, f, p, inside, size), *marks, *ring, *io_items, *_captions(snap, f, p, inside, size),
            *_axis(snap, f)]
    return "\n".join([*head, *[b for b in body if b], *legend, *title, "</svg>"]) + "\n"


def rasterise(svg: str, size: tuple[int, int], scale: float = 1.0):
    """Render SVG text into a QImage of ``size * scale`` pixels (needs a QGuiApplication)."""
    from PySide6.QtCore import QByteArray, QRectF
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    w, h = round(size[0] * scale), round(size[1] * scale)
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    if not renderer.isValid():
        raise ValueError("the rendered SVG is not valid")
    image = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)  # the fast format to paint on
    image.fill(QColor(theme.BG))
    painter = QPainter(image)
    try:
        for hint in (QPainter.RenderHint.Antialiasing, QPainter.RenderHint.TextAntialiasing,
                     QPainter.RenderHint.SmoothPixmapTransform):
            painter.setRenderHint(hint, True)
        renderer.render(painter, QRectF(0, 0, w, h))
    finally:
        painter.end()
    return image


def png_bytes(image) -> bytes:
    """A QImage encoded as PNG."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buf, "PNG"):
        raise ValueError("could not encode the image as PNG")
    buf.close()
    return bytes(data.data())


__all__ = ["Frame", "clip_segments", "png_bytes", "rasterise", "render_svg"]
