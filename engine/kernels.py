"""Products with fixed weight-sparse matrices (docs/architecture.md, "Sparse inference").

A weight-sparse model keeps ~1/500 of each matrix at the paper's density, so multiplying the dense
matrix wastes >99% of the work. :func:`linear` is ``F.linear`` for the model's Linear layers; when the
weights are fixed (they need no gradient, or autograd is off) and the matrix is sparse enough to pay,
it multiplies with a CSR copy instead: ``y = x @ W_csr^T`` (dense times the CSC view of the CSR on
CPU, rows in and out, so no transposes), and the backward pass, which pruning needs for its node
masks, is ``dx = dy @ W_csr``. Gradients
never reach the weights on this path (they are fixed by construction).

Representation, chosen by measurement (2 cores, torch 2.13 CPU with MKL, 2000 rows of input):
dense @ CSC/CSR beat CSR @ dense^T (1.1-2.3x slower, the transposes of x and y dominate), COO (8-15x
slower), an index_add gather (5-10x slower) and CSR activations (AbsTopK keeps 1/4: 4-20x slower);
against dense it wins from ~5% density on 1024x4096 matrices (3-8x at 1/500) and only below
~1.5% on the demo's 128x512 ones. :func:`prefers_sparse` encodes those crossovers.

The CSR copy is cached per weight tensor and rebuilt when the tensor changes in place (its autograd
version counter moves, e.g. an edge ablation zeroing one weight), so it can never be stale.
:func:`dense_reference` forces the dense path: the reference for parity tests and benchmarks
(:func:`kernel_policy` also forces the sparse one).
Knows nothing about models, files or Qt.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import warnings
import weakref
from typing import Iterator

import torch
import torch.nn.functional as F

#: Density at or below which a large matrix (>= LARGE elements) is multiplied sparse; smaller ones
#: need SMALL_DENSITY (dense kernels on small matrices are hard to beat).
LARGE = 1 << 18
LARGE_DENSITY = 0.05
SMALL_DENSITY = 1 / 64

_policy: contextvars.ContextVar[str] = contextvars.ContextVar("kernel_policy", default="auto")
_cache: dict[int, dict] = {}  # id(weight) -> {rows: (version, SparseWeight | None)}; dropped with the weight
_lock = threading.Lock()
POLICIES = ("auto", "dense", "sparse")


@contextlib.contextmanager
def kernel_policy(policy: str) -> Iterator[None]:
    """Within this block :func:`linear` multiplies fixed weights ``"dense"`` (the reference path),
    ``"sparse"`` (always CSR, whatever the density: for parity tests) or ``"auto"`` (by density)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown kernel policy {policy!r}")
    token = _policy.set(policy)
    try:
        yield
    finally:
        _policy.reset(token)


def current_policy() -> str:
    """The kernel policy in force here (``"auto"``, ``"dense"`` or ``"sparse"``)."""
    return _policy.get()


def dense_reference() -> contextlib.AbstractContextManager[None]:
    """Within this block every :func:`linear` multiplies dense and AbsTopK runs ``torch.topk``
    (:mod:`engine.topk`): the reference path."""
    return kernel_policy("dense")


def prefers_sparse(numel: int, nnz: int) -> bool:
    """Whether a matrix of ``numel`` entries with ``nnz`` nonzeros is faster multiplied as CSR."""
    if numel == 0:
        return False
    limit = LARGE_DENSITY if numel >= LARGE else SMALL_DENSITY
    return nnz <= limit * numel


def _to_csr(w: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state": we test what we use
        warnings.simplefilter("ignore", UserWarning)
        return w.to_sparse_csr()


class SparseWeight:
    """A fixed matrix W (out, in) as CSR. The forward product multiplies by its transpose, a free
    CSC view of the same arrays; the backward multiplies by the CSR itself."""

    def __init__(self, w: torch.Tensor):
        self.shape = tuple(w.shape)
        self.csr = _to_csr(w.detach().contiguous())
        self.csr_t = self.csr.t()  # (in, out), CSC layout, no copy


class _SparseMatmul(torch.autograd.Function):
    """x (n, in) -> x @ W^T (n, out) as dense @ sparse (row-major in and out: no transposes); the
    gradient goes to x only (dy @ W, dense @ CSR)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, sw: SparseWeight, bias: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        ctx.sw = sw
        # a fixed bias joins the product (addmm: one pass over the output instead of two, same values)
        return x @ sw.csr_t if bias is None else torch.addmm(bias, x, sw.csr_t)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return (grad.contiguous() @ ctx.sw.csr if ctx.needs_input_grad[0] else None), None, None


def sparse_weight(weight: torch.Tensor, rows: tuple[int, int] | None = None) -> SparseWeight | None:
    """The cached CSR form of ``weight`` (or of its rows ``rows[0]:rows[1]``), or None when dense is
    faster. Rebuilt whenever the tensor was changed in place since it was built."""
    key = rows or (0, weight.shape[0])
    version = weight._version
    forced = _policy.get() == "sparse"
    with _lock:
        entries = _cache.get(id(weight))
        if entries is None:
            entries = _cache[id(weight)] = {}
            weakref.finalize(weight, _cache.pop, id(weight), None)
        hit = entries.get(key)
    if hit is not None and hit[0] == version and (hit[1] is not None or not forced):
        return hit[1]
    w = weight.detach()[key[0]:key[1]]
    sw = SparseWeight(w) if forced or prefers_sparse(w.numel(), int(torch.count_nonzero(w))) else None
    with _lock:
        entries[key] = (version, sw)
    return sw


def sparse_applies(weight: torch.Tensor, x: torch.Tensor) -> bool:
    """The sparse path serves fixed float32 CPU weights (never a weight being trained)."""
    if _policy.get() == "dense" or weight.device.type != "cpu" or weight.dtype != torch.float32 or x.dtype != torch.float32:
        return False
    return not (weight.requires_grad and torch.is_grad_enabled())


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           rows: tuple[int, int] | None = None) -> torch.Tensor:
    """``F.linear(x, weight[rows], bias[rows])``, through CSR when the weight is fixed and sparse."""
    if sparse_applies(weight, x):
        sw = sparse_weight(weight, rows)
        if sw is not None:
            lead, b = x.shape[:-1], None if bias is None else (bias if rows is None else bias[rows[0]:rows[1]])
            joined = b is not None and not (b.requires_grad and torch.is_grad_enabled())  # a fixed bias
            y = _SparseMatmul.apply(x.reshape(-1, x.shape[-1]), sw, b if joined else None).view(*lead, sw.shape[0])
            return y + b if b is not None and not joined else y
    if rows is not None:
        weight = weight[rows[0]:rows[1]]
        bias = None if bias is None else bias[rows[0]:rows[1]]
    return F.linear(x, weight, bias)


def module_linear(mod: torch.nn.Linear, x: torch.Tensor, rows: tuple[int, int] | None = None) -> torch.Tensor:
    """:func:`linear` with an ``nn.Linear``'s weight and bias."""
    return linear(x, mod.weight, mod.bias, rows)
