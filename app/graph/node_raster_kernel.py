"""The compiled loop of :mod:`app.graph.node_raster` (numba; loaded through :func:`app.graph.compiled.load`)."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _under(out, row, col, src, cov):
    """Composite the premultiplied ARGB32 colour ``src`` at coverage ``cov`` UNDER out[row, col] (the
    front-to-back form of source over: out + src * cov * (1 - out's alpha)); an opaque pixel stays."""
    d = out[row, col]
    da = (d >> 24) & 255
    if da == 255:
        return
    if da == 0 and cov >= 1.0:
        out[row, col] = src
        return
    k = cov * (1.0 - da / 255.0)
    a = da + ((src >> 24) & 255) * k
    r = ((d >> 16) & 255) + ((src >> 16) & 255) * k
    g = ((d >> 8) & 255) + ((src >> 8) & 255) * k
    b = (d & 255) + (src & 255) * k
    out[row, col] = (np.uint32(min(a + 0.5, 255.0)) << 24) | (np.uint32(min(r + 0.5, 255.0)) << 16) \
        | (np.uint32(min(g + 0.5, 255.0)) << 8) | np.uint32(min(b + 0.5, 255.0))


@njit(cache=True, nogil=True, boundscheck=False)
def sprites(col0, row0, style, fill, ring, fill_cov, ring_cov, side, out):
    """Marker i: the square of ``side[style[i]]`` pixels whose top-left pixel is (row0[i], col0[i]),
    its fill ``fill[i]`` at coverage ``fill_cov[style[i]]`` with its outline ``ring[i]`` at
    ``ring_cov[style[i]]`` over it (colours: premultiplied ARGB32, uint32; coverages (S, M, M) in
    0..1), as if blended source-over into out (H, W) uint32 (transparent to begin with) in order, a
    later marker on top; the parts outside the image are left out. Drawn front to back (the last
    marker first, each composited under what is there), so that a pixel already opaque, as in the
    crowded rows of a whole-model view, costs one test per marker behind it."""
    H, W = out.shape
    outlined = np.zeros(side.shape[0], np.bool_)
    for s in range(side.shape[0]):
        outlined[s] = ring_cov[s].max() > 0.0
    for i in range(col0.shape[0] - 1, -1, -1):
        s = style[i]
        n = side[s]
        c0, r0 = col0[i], row0[i]
        if c0 + n <= 0 or c0 >= W or r0 + n <= 0 or r0 >= H:
            continue
        f, g = fill[i], ring[i]
        if not outlined[s] and c0 >= 0 and r0 >= 0 and c0 + n <= W and r0 + n <= H:
            for dr in range(n):  # the common case, inside the image and no outline: the short loop
                for dc in range(n):
                    cov = fill_cov[s, dr, dc]
                    if cov > 0.0:
                        _under(out, r0 + dr, c0 + dc, f, cov)
            continue
        for dr in range(max(0, -r0), min(n, H - r0)):
            for dc in range(max(0, -c0), min(n, W - c0)):
                cov = ring_cov[s, dr, dc]
                if cov > 0.0:
                    _under(out, r0 + dr, c0 + dc, g, cov)
                cov = fill_cov[s, dr, dc]
                if cov > 0.0:
                    _under(out, r0 + dr, c0 + dc, f, cov)


def warm() -> None:
    """Load (or compile, once per install) the machine code now."""
    one = np.ones(1, np.int64)
    c = np.full(1, 0xFF808080, np.uint32)
    cov = np.ones((1, 1, 1), np.float32)
    sprites(one, one, np.zeros(1, np.int64), c, c, cov, cov, one, np.zeros((2, 2), np.uint32))
