"""The compiled loop of :mod:`app.graph.line_raster` (numba; imported only through its ``kernel()``)."""

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, boundscheck=False)
def segments(seg, pen, colors, widths, antialias, acc):
    """seg (K, 4) x0, y0, x1, y1 in pixels (x right, y down; pixel (i, j) covers [i, i+1) x
    [j, j+1)); pen (K,): each segment's row of ``colors`` (r, g, b, a in 0..1) and ``widths`` (px);
    acc (H, W, 4) float32: premultiplied r, g, b, a, blended into in place (source over)."""
    H, W = acc.shape[0], acc.shape[1]
    for i in range(seg.shape[0]):
        p = pen[i]
        r, g, b, a = colors[p, 0], colors[p, 1], colors[p, 2], colors[p, 3]
        ax, ay, bx, by = seg[i, 0], seg[i, 1], seg[i, 2], seg[i, 3]
        steep = abs(by - ay) > abs(bx - ax)
        if steep:  # walk along y: swap the roles of the axes
            ax, ay, bx, by = ay, ax, by, bx
        if ax > bx:
            ax, ay, bx, by = bx, by, ax, ay
        n_major, n_minor = (H, W) if steep else (W, H)
        slope = (by - ay) / (bx - ax) if bx > ax else 0.0
        half = 0.5 * widths[p] * math.sqrt(1.0 + slope * slope)  # half the line's span across the minor axis
        start = max(int(math.ceil(ax - 0.5)), 0)  # the pixel centres along the major axis it covers, in the image
        stop = min(int(math.floor(bx - 0.5)), n_major - 1)
        for m in range(start, stop + 1):
            mid = ay + slope * (m + 0.5 - ax)
            lo, hi = mid - half, mid + half
            for k in range(max(int(math.floor(lo)), 0), min(int(math.floor(hi)), n_minor - 1) + 1):
                if antialias:  # the pixel's overlap with the span
                    cov = min(min(hi, k + 1.0) - max(lo, float(k)), 1.0)
                else:  # whether the pixel's centre lies in it
                    cov = 1.0 if lo <= k + 0.5 < hi else 0.0
                if cov > 0.0:
                    sa = np.float32(a * cov)
                    keep = np.float32(1.0) - sa
                    px = acc[m, k] if steep else acc[k, m]
                    px[0] = r * sa + px[0] * keep
                    px[1] = g * sa + px[1] * keep
                    px[2] = b * sa + px[2] * keep
                    px[3] = sa + px[3] * keep


def warm() -> None:
    """Load (or compile, once per install) the machine code now."""
    for antialias in (False, True):
        segments(np.array([[0.0, 0.5, 2.0, 0.5]]), np.zeros(1, np.int64), np.ones((1, 4), np.float32),
                 np.ones(1, np.float64), antialias, np.zeros((2, 2, 4), np.float32))
