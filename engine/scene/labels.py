"""Which node captions a picture shows, and where: by priority, never two overlapping.

The graph view (``app/graph/captions.py``) and the exported pictures (``app/export/render.py``) both
place captions with :func:`place_captions`, in pixels (y grows downwards), so a picture and the view
it came from follow one rule:

* captions are placed one by one in priority order (:func:`caption_order`): the selected node, then
  nodes with a user label, ablated nodes, then by weight strength (the node's summed |w| in and out);
* each caption tries the spot under its node, then the spot above it (slid sideways into the visible
  area at its edges); a spot is taken when it would
  overlap a caption placed before, any node other than its own (or another blocker: the selection
  ring, the input tokens, the target logits) or leave the visible area;
* a caption with both spots taken is not shown. Zooming in spreads the nodes apart in pixels and
  gives the dropped captions room again; the view also shows any node's caption on hover.

Knows nothing about Qt, fonts or torch: callers pass each caption's size in pixels.
"""

from __future__ import annotations

from typing import Collection, Mapping

import numpy as np

from engine.scene.layout import GraphData

HIDDEN, BELOW, ABOVE = -1, 0, 1
SLOTS = (BELOW, ABOVE)
PAD = 1.0  # pixels kept free around a caption (captions never touch)
MAX_CAPTIONS = 400  # more candidate nodes in view than this: no captions (zoom in to see them)


def node_strength(graph: GraphData) -> np.ndarray:
    """(n,) each node's summed |w| over its weights in and out."""
    n, absw = graph.n_nodes, np.abs(graph.weight).astype(np.float64)
    return np.bincount(graph.src, absw, minlength=n) + np.bincount(graph.dst, absw, minlength=n)


def caption_order(graph: GraphData, labels: Mapping[str, str], ablated: Collection[str], selected: str | None,
                  candidates: np.ndarray | None = None, strength: np.ndarray | None = None) -> np.ndarray:
    """The node indices in ``candidates`` (default: all), highest priority first: the selected node,
    user-labelled nodes, ablated nodes, then by summed |w| in and out (``strength``, computed when not
    given; ties: lower index first)."""
    n = graph.n_nodes
    idx = np.arange(n) if candidates is None else np.asarray(candidates, np.int64)
    strength = node_strength(graph) if strength is None else strength
    tier = np.zeros(n)
    for node in ablated:
        i = graph.index.get(node)
        if i is not None:
            tier[i] = 1.0
    for node, text in labels.items():
        i = graph.index.get(node)
        if i is not None and text:
            tier[i] = 2.0
    if selected is not None and graph.index.get(selected) is not None:
        tier[graph.index[selected]] = 3.0
    order = np.lexsort((idx, -strength[idx], -tier[idx]))
    return idx[order]


def slot_rect(center: np.ndarray, size: np.ndarray, offset: float, slot: int) -> np.ndarray:
    """(x0, y0, x1, y1) of a caption of ``size`` (w, h) under (``BELOW``) or above its node's centre,
    ``offset`` pixels away from it."""
    x0 = center[0] - size[0] / 2
    y0 = center[1] + offset if slot == BELOW else center[1] - offset - size[1]
    return np.array([x0, y0, x0 + size[0], y0 + size[1]])


def _hits(rects: np.ndarray, r: np.ndarray, pad: float) -> np.ndarray:
    """(m,) whether each of ``rects`` (m, 4) comes closer than ``pad`` to ``r``."""
    return ((rects[:, 0] < r[2] + pad) & (rects[:, 2] > r[0] - pad)
            & (rects[:, 1] < r[3] + pad) & (rects[:, 3] > r[1] - pad))


def node_blockers(centers: np.ndarray, radius: np.ndarray | float) -> np.ndarray:
    """(n, 4) the square around each node disk, as blockers for :func:`place_captions`."""
    r = np.broadcast_to(np.asarray(radius, np.float64), (len(centers),))
    return np.stack([centers[:, 0] - r, centers[:, 1] - r, centers[:, 0] + r, centers[:, 1] + r], axis=1)


def place_captions(centers: np.ndarray, sizes: np.ndarray, offsets: np.ndarray, order: np.ndarray,
                   blockers: np.ndarray, owners: np.ndarray, bounds: tuple[float, float, float, float] | None = None,
                   pad: float = PAD) -> tuple[np.ndarray, np.ndarray]:
    """Place the captions of the nodes in ``order`` (highest priority first); see the module docstring.

    centers (n, 2), sizes (n, 2) and offsets (n,) are per node, in pixels (offset: from the node's
    centre to its caption's near edge); blockers (m, 4) are rectangles no caption may overlap, except
    the one whose owner (m,) is the caption's own node (-1: nobody's); bounds (x0, y0, x1, y1) is the
    visible area. Returns (slot (n,) int8: HIDDEN, BELOW or ABOVE; rects (n, 4) where placed)."""
    n = len(centers)
    slots = np.full(n, HIDDEN, np.int8)
    rects = np.zeros((n, 4))
    placed = np.zeros((len(order), 4))
    count = 0
    blockers = np.asarray(blockers, np.float64).reshape(-1, 4)
    owners = np.asarray(owners, np.int64)
    for i in np.asarray(order, np.int64).tolist():
        for slot in SLOTS:
            r = slot_rect(centers[i], sizes[i], float(offsets[i]), slot)
            if bounds is not None:
                r[[0, 2]] += max(bounds[0] - r[0], 0.0) + min(bounds[2] - r[2], 0.0)  # slide in from an edge
                if r[0] < bounds[0] or r[1] < bounds[1] or r[2] > bounds[2] or r[3] > bounds[3]:
                    continue
            if count and _hits(placed[:count], r, pad).any():
                continue
            if len(blockers) and (_hits(blockers, r, 0.0) & (owners != i)).any():
                continue
            slots[i], rects[i] = slot, r
            placed[count] = r
            count += 1
            break
    return slots, rects


def overlapping_pairs(rects: np.ndarray) -> list[tuple[int, int]]:
    """Index pairs of rectangles (k, 4) that overlap (touching edges do not count): for tests and checks."""
    out = []
    for a in range(len(rects)):
        r = rects[a]
        hit = ((rects[a + 1:, 0] < r[2]) & (rects[a + 1:, 2] > r[0]) & (rects[a + 1:, 1] < r[3])
               & (rects[a + 1:, 3] > r[1]))
        out += [(a, a + 1 + int(b)) for b in np.flatnonzero(hit)]
    return out
