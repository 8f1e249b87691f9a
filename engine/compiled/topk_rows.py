"""The compiled AbsTopK row kernel behind :func:`engine.topk.abs_topk` (see there for the method).
Loaded through :func:`engine.compiled.load`."""

import numpy as np
from numba import njit

# The bodies below run compiled; tests/engine/test_topk.py checks them against torch.topk.


@njit(cache=True, nogil=True, boundscheck=False)
def count_at_least(x, r, w, g):
    c = 0
    for j in range(w):
        c += np.int32(abs(x[r, j]) >= g)
    return c


@njit(cache=True, nogil=True, boundscheck=False)
def row_max(x, r, w):
    m = np.float32(0.0)
    for j in range(w):
        m = max(m, abs(x[r, j]))
    return m


@njit(cache=True, nogil=True, boundscheck=False)
def probe(x, r, w, k, g, lo, clo, hi, chi):
    """Count row r's entries with |x| >= g: (True, ...) when exactly k, else the bracket (lo, clo, hi,
    chi) narrowed to g on the side the count falls."""
    c = count_at_least(x, r, w, g)
    if c > k:
        lo, clo = g, c
    elif c < k:
        hi, chi = g, c
    return c == k, lo, clo, hi, chi


@njit(cache=True, nogil=True, boundscheck=False)
def threshold(x, r, w, k, guess, f):
    """(t, tied, n_above, nz) for row r: t > 0 with exactly k entries |x| >= t; else t = -1 and
    ``tied`` is the magnitude tied at the k-th place with ``n_above`` entries above it; nz <= k: copy;
    ``tied`` NaN: the row holds NaN or inf. ``f``: the first widening factor of the bracket around
    ``guess`` (small when the guess is this row's own clean threshold, which is usually off by a hair).
    (The passes are plain counts, which the compiler vectorises; a running maximum would not be.)"""
    c = 0
    nz = 0
    bad = 0
    for j in range(w):
        a = abs(x[r, j])
        c += np.int32(a >= guess)
        nz += np.int32(a > 0)
        bad += np.int32(not a < np.inf)  # NaN or inf: the reference decides (torch.topk ranks NaN first)
    if bad:
        return np.float32(-1.0), np.float32(np.nan), 0, nz
    if nz <= k:
        return np.float32(0.0), np.float32(0.0), 0, nz
    if c == k:
        return guess, np.float32(0.0), 0, nz
    lo, clo = np.float32(0.0), nz  # clo: entries >= lo (above 0: the nonzeros)
    hi, chi = np.float32(np.inf), 0  # chi: entries >= hi
    if c > k:
        lo, clo = guess, c
    else:
        hi, chi = guess, c
    # bracket the k-th place from the guess, widening geometrically from f
    while hi == np.inf or lo == 0:
        g = lo * f if hi == np.inf else hi / f
        if not (g > lo and g < hi):
            break
        found, lo, clo, hi, chi = probe(x, r, w, k, g, lo, clo, hi, chi)
        if found:
            return g, np.float32(0.0), 0, nz
        f = f * f
    if hi == np.inf:  # no finite bracket above: magnitudes near the top of the float range
        hi = row_max(x, r, w)
        chi = count_at_least(x, r, w, hi)
        if chi >= k:  # the maximum is tied k times or more
            return np.float32(-1.0), hi, 0, nz
    step = 0
    while True:  # interpolate on the counts; every third step bisects
        g = lo + (hi - lo) * np.float32(clo - k + 0.5) / np.float32(clo - chi)
        if step % 3 == 2 or not (g > lo and g < hi):
            g = np.float32(0.5) * (lo + hi)
            if not (g > lo and g < hi):
                return np.float32(-1.0), lo, chi, nz  # lo, hi neighbouring floats: |x| == lo tied
        step += 1
        found, lo, clo, hi, chi = probe(x, r, w, k, g, lo, clo, hi, chi)
        if found:
            return g, np.float32(0.0), 0, nz


@njit(cache=True, nogil=True, boundscheck=False)
def row_floor(out, r, w):
    """The smallest nonzero magnitude of output row r (inf when it has none): its kept floor."""
    m = np.float32(np.inf)
    for j in range(w):
        a = abs(out[r, j])
        m = min(m, a if a > 0 else np.float32(np.inf))
    return m


@njit(cache=True, nogil=True, boundscheck=False)
def rows_kernel(x, k, out, kept, want_kept, guesses, floors):
    """Fills out (and kept); False as soon as a row holds NaN or inf (then the caller uses the reference).
    ``guesses``: (n,) a threshold guess per row (a positive finite one is tried first), or empty. The
    guesses change only how fast the threshold is found, never which entries are kept. ``floors``:
    (n,) to receive each row's kept floor (:func:`row_floor`, while the row is in cache), or empty."""
    n, w = x.shape
    own = guesses.shape[0] == n
    want_floors = floors.shape[0] == n
    guess = np.float32(0.0)  # else the previous row's threshold: rows of one site have similar scales
    for r in range(n):
        f = np.float32(1.25)
        if own and guesses[r] > 0 and guesses[r] < np.inf:
            guess = guesses[r]
            f = np.float32(1.002)
        elif not (guess > 0 and guess < np.inf):
            s = np.float32(0.0)
            for j in range(w):
                s += x[r, j] * x[r, j]
            guess = np.sqrt(s / w) if s > 0 and s < np.inf else np.float32(1.0)
        t, tied, above, nz = threshold(x, r, w, k, guess, f)
        if tied != tied:
            return False
        if nz <= k:  # every nonzero is kept; the first zeros fill the k places
            room = k - nz
            for j in range(w):
                v = x[r, j]
                out[r, j] = v
                if want_kept:
                    kept[r, j] = v != 0 or room > 0
                    room -= np.int32(v == 0 and room > 0)
            if want_floors:
                floors[r] = row_floor(out, r, w)
            continue
        if t > 0:  # exactly k entries have |x| >= t
            guess = t
            for j in range(w):
                v = x[r, j]
                keep = abs(v) >= t
                out[r, j] = v if keep else np.float32(0.0)
                if want_kept:
                    kept[r, j] = keep
            if want_floors:
                floors[r] = row_floor(out, r, w)
            continue
        guess = tied  # a tie: everything above the tied magnitude, then the first tied entries
        room = k - above
        for j in range(w):
            v = x[r, j]
            a = abs(v)
            keep = a > tied or (a == tied and room > 0)
            room -= np.int32(a == tied and room > 0)
            out[r, j] = v if keep else np.float32(0.0)
            if want_kept:
                kept[r, j] = keep
        if want_floors:
            floors[r] = row_floor(out, r, w)
    return True


def warm() -> None:
    """Load (or compile, once per install) the machine code now, not inside a click."""
    x = np.ones((1, 2), np.float32)
    for want in (False, True):
        for guesses in (np.empty(0, np.float32), np.ones(1, np.float32)):
            for floors in (np.empty(0, np.float32), np.empty(1, np.float32)):
                rows_kernel(x, 1, np.empty_like(x), np.empty((1, 2), np.bool_), want, guesses, floors)
