"""Many line segments drawn into an image by a compiled loop (numba): the edge raster of large graphs.

QPainter drew the 100,000 strongest edges of a csp_yolo1-shaped whole-model view in 3-5 s, holding
the GIL while it drew (so every zoom waited that long for its edges, and a click's evaluation
queued behind it). The compiled loop (:mod:`app.graph.line_raster_kernel`, loaded by
:mod:`app.graph.compiled`, machine code cached beside it after a first compile) walks each segment
along its major axis one pixel at a time and, at each step, blends the pixels its width covers
across the minor axis (source over, premultiplied colour), in bucket order, strongest first within
a bucket, as the QPainter loop did. Coverage is the pixel's overlap with the line's span across the
minor axis (antialiased) or whether the pixel's centre lies inside it. The loop runs without the
GIL, on a copy of nothing: the segments are clipped to the image by the loop bounds.

The QPainter loop in :func:`app.graph.edges.render_edges` stays the fallback where numba cannot
load or compile here (:func:`kernel` is None), and the reference of tests/app/test_line_raster.py.
Knows nothing about graphs or Qt.
"""

from __future__ import annotations

import numpy as np

from app.graph import compiled


def kernel():
    """The compiled segment loop, or None where numba is missing or cannot compile or cache it here
    (or compiled kernels are turned off: :data:`app.graph.compiled.ENV`)."""
    mod = compiled.load("line_raster_kernel")
    return None if mod is None else mod.segments


def to_argb32(acc: np.ndarray) -> np.ndarray:
    """(H, W, 4) premultiplied r, g, b, a in 0..1 -> (H, W) uint32 ARGB32 premultiplied."""
    q = np.clip(np.rint(acc * 255.0), 0, 255).astype(np.uint32)
    return (q[..., 3] << 24) | (q[..., 0] << 16) | (q[..., 1] << 8) | q[..., 2]
