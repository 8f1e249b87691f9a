"""AbsTopK: keep the k entries of largest magnitude in each row, zero the rest (docs/architecture.md,
"Sparse inference").

Every node site of the model passes AbsTopK, so on a CPU it is the largest single cost of a forward
pass once the matrix products are sparse (about 40% of a live-ablation click). ``torch.topk`` sorts
(value, index) pairs per row with ``std::nth_element``; :func:`abs_topk` instead finds each row's
threshold t (|x| >= t for exactly k entries) by a search on counts: count(|x| >= t) is monotone in t,
so starting from the previous row's threshold (rows of one site have similar scales) it brackets
the k-th place by widening steps, then interpolates between the bracketing counts (every third step
bisects); about five passes over a row, then one that keeps ``|x| >= t``. Each pass is a streaming comparison the
compiler vectorises, with no pairs and no scatter. Rows with at most k nonzeros are copied as they are.

Ties at the threshold (equal |x| on both sides of the k-th place; in practice the zeros of a row with
fewer than k nonzeros) keep the first tied entries in index order, where ``torch.topk`` keeps an
unspecified subset: the kept magnitudes, and so the output values whenever the tie is among zeros,
are the same. The reference, :func:`abs_topk_reference`, is ``torch.topk`` on an integer view of |x|
(for non-negative floats the bit pattern orders like the float, and integer top-k is ~1.6x faster);
it serves CUDA, half precision, machines without numba, ``CIRCUIT_INSPECTOR_KERNELS=torch`` and
``kernels.dense_reference()`` (the reference path of parity tests and benchmarks).
tests/engine/test_topk.py keeps the two equal.

A caller that knows roughly where each row's threshold lies can say so: inside
:func:`row_guesses`, ``abs_topk(x, k, key)`` starts each row's search from the guess given for
``key`` (the live-ablation restarts give each position its clean run's threshold, from
:func:`kept_floor`, and a row that changed a little usually needs one counting pass instead of five).
The guesses change only the speed, never which entries are kept.

The compiled kernel is numba's (:mod:`engine.compiled.topk_rows`, ``nogil``); rows are split over
torch's thread count for very large inputs. Autograd works on both: the gradient flows
to the kept entries (including kept zeros). Knows nothing about models, files or Qt.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Hashable, Iterator, Mapping

import torch

from engine.compiled import load
from engine.kernels import current_policy

#: Same-width integer dtypes: for non-negative floats the bit pattern read as a signed integer orders
#: exactly like the float.
_INT_VIEW = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}
#: Rows are split over threads from this many elements on. Below it one thread is faster: right after
#: a torch operation its OpenMP workers spin-wait on the other cores for a while, and a second thread
#: of ours competes with them (measured inside live-ablation clicks: 2527 x 512 took 4.2 ms on one
#: thread, 5.4 ms on two).
PARALLEL_ELEMENTS = 1 << 22

_NO_GUESSES = torch.empty(0, dtype=torch.float32)
_guesses: ContextVar[Mapping[tuple[Hashable, int], torch.Tensor] | None] = ContextVar("abs_topk_guesses", default=None)
_floors: ContextVar[dict | None] = ContextVar("abs_topk_floors", default=None)

_pool_lock = threading.Lock()
_pool: list[tuple[int, ThreadPoolExecutor]] = []  # [(workers, pool)]


def _abs_key(x: torch.Tensor) -> torch.Tensor:
    """|x| as a tensor whose order is |x|'s order (an integer view of the float bits where possible)."""
    a = x.detach().abs()
    view = _INT_VIEW.get(a.dtype)
    return a.view(view) if view is not None else a


def abs_topk_reference(x: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k entries of largest |x| along the last dim with ``torch.topk`` (the reference)."""
    if k >= x.shape[-1]:
        return x
    idx = _abs_key(x).topk(k, dim=-1, sorted=False).indices
    return torch.zeros_like(x).scatter(-1, idx, x.gather(-1, idx))


def kept_floor(y: torch.Tensor) -> torch.Tensor:
    """Per row of an AbsTopK output y (..., width): the smallest kept magnitude, a guess of that row's
    threshold when it is computed again from a slightly changed input (inf where nothing is kept);
    float32, shape ``y.shape[:-1]``."""
    a = y.detach().abs().float()
    return torch.where(a > 0, a, torch.full((), torch.inf)).amin(-1)


@contextmanager
def row_guesses(guesses: Mapping[tuple[Hashable, int], torch.Tensor]) -> Iterator[None]:
    """Within this block ``abs_topk(x, k, key)`` on an input of R rows starts from the threshold
    guesses ``guesses[(key, R)]`` ((R,) float32, one per row, from :func:`kept_floor`), where given."""
    token = _guesses.set(guesses)
    try:
        yield
    finally:
        _guesses.reset(token)


@contextmanager
def record_floors(floors: dict) -> Iterator[None]:
    """Within this block every ``abs_topk(x, k, key)`` stores the kept floor of its output's rows
    (:func:`kept_floor`, shape ``x.shape[:-1]``) as ``floors[key]`` (the first call per key wins): the
    compiled kernel takes each row's while the row is in cache, the reference computes it after."""
    token = _floors.set(floors)
    try:
        yield
    finally:
        _floors.reset(token)


def _row_guesses(key: Hashable | None, x: torch.Tensor) -> torch.Tensor:
    table = _guesses.get() if key is not None else None
    if table is None:
        return _NO_GUESSES
    g = table.get((key, x.numel() // x.shape[-1]))
    return _NO_GUESSES if g is None else g.detach().float().contiguous()


def kernel() -> Callable | None:
    """The compiled row kernel (loaded, or compiled, on first use by :func:`engine.compiled.load`), or
    None where the reference serves."""
    mod = load("topk_rows")
    return None if mod is None else mod.rows_kernel


def backend() -> str:
    """``"compiled"`` when :func:`abs_topk` runs the numba kernel on CPU float32, else ``"torch"``."""
    return "compiled" if kernel() is not None else "torch"


def _threads(n: int) -> ThreadPoolExecutor:
    """A pool of at least ``n`` workers (kept for the process; replaced by a larger one when asked)."""
    with _pool_lock:
        if not _pool or _pool[0][0] < n:
            _pool[:] = [(n, ThreadPoolExecutor(max_workers=n, thread_name_prefix="abs-topk"))]
        return _pool[0][1]


def _run(fn: Callable, x2, k: int, out2, kept2, want: bool, g, fl) -> bool:
    """The kernel over rows (``g``: per-row threshold guesses, or empty; ``fl``: per-row kept floors
    to fill, or empty), split into one slice per thread for large inputs; False when a row held NaN
    or inf."""
    n, w = x2.shape
    threads = min(torch.get_num_threads(), n)
    if threads <= 1 or n * w < PARALLEL_ELEMENTS:
        return bool(fn(x2, k, out2, kept2, want, g, fl))
    cuts = [n * i // threads for i in range(threads + 1)]
    slices = [slice(a, b) for a, b in zip(cuts, cuts[1:])]
    rows = lambda a, s: a[s] if len(a) else a  # noqa: E731
    part = lambda s: (x2[s], k, out2[s], kept2[s] if want else kept2, want, rows(g, s), rows(fl, s))  # noqa: E731
    pool = _threads(threads)
    futures = [pool.submit(fn, *part(s)) for s in slices[1:]]
    ok = bool(fn(*part(slices[0])))
    return all([bool(f.result()) for f in futures]) and ok


def _rows(x: torch.Tensor) -> torch.Tensor:
    """x as a contiguous 2-D (rows, width) array: the kernel vectorises only over contiguous rows (a
    column slice such as q, k or v is copied first, which costs less than reading it strided)."""
    return x.contiguous().view(-1, x.shape[-1])


def _compiled(fn: Callable, x: torch.Tensor, k: int, want_kept: bool, guesses: torch.Tensor = _NO_GUESSES,
              floors: torch.Tensor = _NO_GUESSES) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(out, kept mask or an empty placeholder), or None when x holds NaN or inf. ``floors``: a
    float32 tensor of x's row count to receive the rows' kept floors, or empty."""
    x2 = _rows(x.detach())
    out = torch.empty(x.shape, dtype=x.dtype)
    kept = torch.empty(x.shape if want_kept else (1, 1), dtype=torch.bool)
    ok = _run(fn, x2.numpy(), k, out.view(-1, x.shape[-1]).numpy(), kept.view(-1, kept.shape[-1]).numpy(), want_kept,
              guesses.numpy(), floors.numpy())
    return (out, kept) if ok else None


class _AbsTopK(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, k: int, fn: Callable, guesses: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        done = _compiled(fn, x, k, True, guesses)
        if done is None:  # NaN or inf somewhere: torch.topk's ranking
            idx = _abs_key(x).topk(k, dim=-1, sorted=False).indices
            kept = torch.zeros(x.shape, dtype=torch.bool).scatter(-1, idx, True)
            done = (torch.where(kept, x, torch.zeros((), dtype=x.dtype)), kept)
        ctx.save_for_backward(done[1])
        return done[0]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (kept,) = ctx.saved_tensors
        return grad * kept, None, None, None


def abs_topk(x: torch.Tensor, k: int, key: Hashable | None = None) -> torch.Tensor:
    """Keep the k entries of largest |x| along the last dim, zero the rest (the gradient flows to the
    kept entries). The compiled kernel on CPU float32, else :func:`abs_topk_reference`. ``key``: where
    the rows' threshold guesses are looked up inside :func:`row_guesses`, and under which their kept
    floors are stored inside :func:`record_floors`."""
    table = _floors.get() if key is not None else None
    record = table is not None and key not in table
    y = _abs_topk(x, k, key, table if record else None)
    if record and key not in table:
        table[key] = kept_floor(y)
    return y


def _abs_topk(x: torch.Tensor, k: int, key: Hashable | None, table: dict | None) -> torch.Tensor:
    """:func:`abs_topk`; where the compiled kernel runs without autograd and ``table`` is given, it
    also stores the rows' kept floors there under ``key``."""
    if k >= x.shape[-1]:
        return x
    if x.dtype != torch.float32 or x.device.type != "cpu" or x.numel() == 0 or current_policy() == "dense":
        return abs_topk_reference(x, k)
    fn = kernel()
    if fn is None:
        return abs_topk_reference(x, k)
    guesses = _row_guesses(key, x)
    if x.requires_grad and torch.is_grad_enabled():
        return _AbsTopK.apply(x, k, fn, guesses)
    floors = torch.empty(x.shape[:-1], dtype=torch.float32) if table is not None else _NO_GUESSES
    done = _compiled(fn, x, k, False, guesses, floors.view(-1))
    if done is None:
        return abs_topk_reference(x, k)
    if table is not None:
        table[key] = floors
    return done[0]
