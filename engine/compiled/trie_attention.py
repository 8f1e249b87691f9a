"""Causal attention over packed prompt prefixes (:mod:`engine.ablation.packed`), compiled.

The packed positions form a trie: position ``p`` sits at depth ``depth[p]`` (its index in the prompt)
under ``parent[p]`` (-1 at the root), and its keys are exactly its ancestors and itself. Each packed
position's query attends along that chain, once, with no padding and no gathers into length chunks:
logits ``q.k / sqrt(d_head) - slope_h * (i - j)`` (ALiBi; slope 0 for the other heads), an optional
sink logit ``b_h`` with no value, softmax, then the weighted values. torch's fused attention spends
most of its time on per-block overhead at these sizes (16-channel heads over ~10-60 positions); the
reference is ``Attention.mix`` on the padded chunks, and tests/engine/test_ablation.py keeps the two
equal. Loaded through :func:`engine.compiled.load`.
"""

import math

import numpy as np
from numba import njit


#: Reassociation lets the compiler vectorise the 16-channel dot products and sums (1.5x here); no
#: "no NaN / no inf" assumptions, since a logit of -inf (the running maximum's start) must stay one.
FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, nogil=True, boundscheck=False, fastmath=FAST)
def attend(q, k, v, qpos, parent, depth, slopes, sinks, has_sink, out):
    """q, out: (R, M, H * d_head) float32, C-contiguous: R replicas of M queries, query i at packed
    position ``qpos[i]``; k, v: (R, P, H * d_head), every packed position; parent, depth: (P,) int64;
    slopes, sinks: (H,) float32 for the heads present."""
    R, M, C = q.shape
    P = k.shape[1]
    H = slopes.shape[0]
    dh = C // H
    scale = np.float32(1.0 / math.sqrt(dh))
    top = 0
    for p in range(P):
        top = max(top, depth[p] + 1)
    chain = np.empty(top, np.int64)
    dist = np.empty(top, np.float32)
    w = np.empty(top, np.float32)
    acc = np.empty(dh, np.float32)
    for i in range(M):
        p = qpos[i]
        n = 0
        j = p
        while j >= 0:  # p, its parent, ..., the first token
            chain[n] = j
            dist[n] = np.float32(depth[p] - depth[j])
            n += 1
            j = parent[j]
        for r in range(R):
            for h in range(H):
                c0 = h * dh
                m = np.float32(-np.inf)
                for t in range(n):
                    kj = chain[t]
                    s = np.float32(0.0)
                    for c in range(dh):
                        s += q[r, i, c0 + c] * k[r, kj, c0 + c]
                    s = s * scale - slopes[h] * dist[t]
                    w[t] = s
                    m = max(m, s)
                if has_sink:
                    m = max(m, sinks[h])
                den = np.float32(math.exp(sinks[h] - m)) if has_sink else np.float32(0.0)
                for t in range(n):
                    e = np.float32(math.exp(w[t] - m))
                    w[t] = e
                    den += e
                for c in range(dh):
                    acc[c] = 0.0
                for t in range(n):
                    kj = chain[t]
                    e = w[t]
                    for c in range(dh):
                        acc[c] += e * v[r, kj, c0 + c]
                for c in range(dh):
                    out[r, i, c0 + c] = acc[c] / den


def warm() -> None:
    """Load (or compile, once per install) the machine code now, not inside a click."""
    x = np.ones((1, 2, 2), np.float32)
    idx = np.array([-1, 0], np.int64)
    attend(x, x, x, np.arange(2, dtype=np.int64), idx, np.arange(2, dtype=np.int64), np.zeros(1, np.float32),
           np.zeros(1, np.float32), True, np.empty_like(x))
