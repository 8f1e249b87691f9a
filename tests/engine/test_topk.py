"""The compiled AbsTopK kernel against its reference, torch.topk (engine/topk.py)."""

from __future__ import annotations

import pytest
import torch

from engine import topk
from engine.kernels import dense_reference
from engine.topk import abs_topk, abs_topk_reference

pytestmark = pytest.mark.skipif(topk.kernel() is None,
                                reason="numba is not installed (or CIRCUIT_INSPECTOR_KERNELS=torch): "
                                       "AbsTopK runs torch.topk only, nothing to compare")


def _same_selection(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, k: int) -> None:
    """a and b keep k entries of largest |x| per row: each entry kept as it is or zeroed, at most k
    nonzeros, and the same multiset of kept magnitudes (ties may keep different entries)."""
    for y in (a, b):
        assert ((y == 0) | (y == x)).all()
        assert ((y != 0).sum(-1) <= k).all()
    assert torch.equal(a.abs().sort(-1).values, b.abs().sort(-1).values)


@pytest.mark.parametrize("width,k", [(2, 1), (7, 3), (128, 32), (512, 128), (1024, 256), (4096, 1024), (300, 299)])
def test_equal_to_torch_topk_without_ties(width, k):
    g = torch.Generator().manual_seed(width)
    for scale in (1e-30, 1e-3, 1.0, 1e30):
        x = torch.randn(57, width, generator=g) * scale * torch.rand(57, 1, generator=g)  # rows of many scales
        assert torch.equal(abs_topk(x, k), abs_topk_reference(x, k))


def test_rows_with_few_nonzeros_are_kept_whole():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 128, generator=g) * (torch.rand(200, 128, generator=g) < 0.1)  # ~13 nonzeros per row
    x[0] = 0.0
    assert torch.equal(abs_topk(x, 32), x)
    assert torch.equal(abs_topk(x, 32), abs_topk_reference(x, 32))


def test_ties_keep_k_of_the_largest_magnitudes():
    g = torch.Generator().manual_seed(2)
    for trial in range(150):
        width = int(torch.randint(2, 300, (), generator=g))
        k = int(torch.randint(1, width, (), generator=g))
        scale = 2.0 ** int(torch.randint(-140, 100, (), generator=g))  # subnormals to huge
        x = torch.randint(-4, 5, (40, width), generator=g).float() * scale
        a = abs_topk(x, k)
        _same_selection(a, abs_topk_reference(x, k), x, k)
        nonzero = (x != 0).sum(-1)
        assert torch.equal((a != 0).sum(-1), nonzero.clamp(max=k))


def test_maximum_tied_more_than_k_times_and_huge_values():
    x = torch.tensor([[3.0, -3.0, 3.0, 1.0, 3.0], [3e38, -3e38, 1e38, 2.0, 1.0], [1e-45, 2e-45, 0.0, 3e-45, 0.0]])
    for k in (1, 2, 3, 4):
        _same_selection(abs_topk(x, k), abs_topk_reference(x, k), x, k)


def test_nan_and_inf_follow_the_reference():
    x = torch.randn(6, 64)
    x[1, 5] = float("nan")
    x[3, 7] = float("inf")
    x[4, 9] = -float("inf")
    a, b = abs_topk(x, 16), abs_topk_reference(x, 16)
    assert torch.equal(a.isnan(), b.isnan())
    assert torch.equal(torch.nan_to_num(a), torch.nan_to_num(b))


def test_strided_views_and_leading_dims():
    """q, k and v are column slices of one product: the kernel reads them in place."""
    g = torch.Generator().manual_seed(3)
    qkv = torch.randn(3, 41, 3 * 64, generator=g)
    for t in qkv.chunk(3, dim=-1):
        assert not t.is_contiguous()
        assert torch.equal(abs_topk(t, 16), abs_topk_reference(t, 16))
    e = torch.randn(1, 50, 64, generator=g).expand(4, -1, -1)  # stride 0: copied first
    assert torch.equal(abs_topk(e, 16), abs_topk_reference(e, 16))


def test_rows_split_over_threads_match(monkeypatch):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3001, 128, generator=g)
    monkeypatch.setattr(topk, "PARALLEL_ELEMENTS", 1)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(max(2, torch_threads))
    try:
        assert torch.equal(abs_topk(x, 32), abs_topk_reference(x, 32))
    finally:
        torch.set_num_threads(torch_threads)


def test_gradient_flows_to_the_kept_entries():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(9, 33, 96, generator=g)
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    w = torch.randn(9, 33, 96, generator=g)
    (abs_topk(a, 24) * w).sum().backward()
    (abs_topk_reference(b, 24) * w).sum().backward()
    assert torch.equal(a.grad, b.grad)
    sparse = torch.zeros(2, 10).requires_grad_(True)  # all zero: k of the zeros are "kept"
    abs_topk(sparse, 3).sum().backward()
    assert torch.equal(sparse.grad.sum(-1), torch.full((2,), 3.0))


def test_reference_path_and_other_dtypes_use_torch(monkeypatch):
    calls = []
    monkeypatch.setattr(topk, "_compiled", lambda *a: calls.append(a) or None)
    x = torch.randn(5, 40)
    with dense_reference():
        abs_topk(x, 8)
    abs_topk(x.double(), 8)
    abs_topk(x.half(), 8)
    assert calls == []
    abs_topk(x, 8)
    assert len(calls) == 1
    assert topk.backend() == "compiled"


def test_a_kernel_that_cannot_load_leaves_the_torch_reference_in_place(monkeypatch):
    """No numba, or numba unable to compile or cache here: the kernel is reported unavailable (with the
    reason) and callers take the torch reference; nothing raises."""
    import sys
    import types

    from engine import compiled

    broken = types.ModuleType("engine.compiled.broken_for_test")

    def warm():
        raise RuntimeError("cannot cache function: no locator available")

    broken.warm = warm
    monkeypatch.setitem(sys.modules, "engine.compiled.broken_for_test", broken)
    monkeypatch.setattr(compiled, "_loaded", {})
    monkeypatch.setattr(compiled, "failures", {})
    assert compiled.load("broken_for_test") is None
    assert "no locator" in compiled.failures["broken_for_test"]
    assert compiled.load("missing_for_test") is None
    assert "ModuleNotFoundError" in compiled.failures["missing_for_test"]


def test_row_guesses_change_nothing_but_the_search():
    """Inside row_guesses, each row's search starts from its guess: exact ones (the kept floor of the
    same rows), nearby ones, useless ones (0, negative, inf, NaN, a thousand times off) and a table of
    the wrong length all give the same output as no guesses, for plain calls, gradients and rows split
    over threads."""
    g = torch.Generator().manual_seed(11)
    x = torch.randn(300, 128, generator=g) * torch.rand(300, 1, generator=g)
    x[7] = 0.0
    x[9, :5] = 3.0  # a row tied at the threshold
    k = 32
    want = abs_topk_reference(x, k)
    floor = topk.kept_floor(want)
    assert floor.shape == (300,) and floor[7] == float("inf")
    assert torch.equal(floor[:5], want[:5].abs().where(want[:5] != 0, torch.tensor(float("inf"))).amin(-1))
    nearby = x + 1e-4 * torch.randn(300, 128, generator=g)
    useless = floor.clone()
    useless[::5], useless[1::5], useless[2::5], useless[3::5] = 0.0, -1.0, float("nan"), float("inf")
    useless[4::5] *= 1000.0
    tables = [floor, topk.kept_floor(abs_topk_reference(nearby, k)), useless, floor[:10]]
    xg = x.clone().requires_grad_()
    abs_topk(xg, k).sum().backward()
    plain_grad = xg.grad
    assert torch.equal(plain_grad.sum(-1), torch.full((300,), float(k)))
    for guesses in tables:
        with topk.row_guesses({("site", 300): guesses}):
            assert torch.equal(abs_topk(x, k, "site"), abs_topk(x, k))
            assert torch.equal(abs_topk(x.view(3, 100, 128), k, "site"), abs_topk(x, k).view(3, 100, 128))
            xg = x.clone().requires_grad_()
            abs_topk(xg, k, "site").sum().backward()
            assert torch.equal(xg.grad, plain_grad)
    with topk.row_guesses({("site", 300): floor}):
        assert torch.equal(abs_topk(x, k, "other"), abs_topk(x, k))


def test_row_guesses_with_rows_split_over_threads(monkeypatch):
    monkeypatch.setattr(topk, "PARALLEL_ELEMENTS", 1)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    g = torch.Generator().manual_seed(12)
    x = torch.randn(101, 64, generator=g)
    floor = topk.kept_floor(abs_topk_reference(x, 8))
    with topk.row_guesses({("s", 101): floor * torch.linspace(0.5, 2.0, 101)}):
        assert torch.equal(abs_topk(x, 8, "s"), abs_topk_reference(x, 8))


@pytest.mark.parametrize("threads", [1, 3])
def test_record_floors_stores_each_sites_kept_floor(monkeypatch, threads):
    """Inside record_floors, abs_topk stores the kept floor of its output rows under its key, the first
    call per key: the compiled kernel's (taken row by row, also with rows split over threads) equals
    kept_floor of the output; the reference path, a NaN input and a gradient call store kept_floor too;
    calls without a key store nothing."""
    if threads > 1:
        monkeypatch.setattr(topk, "PARALLEL_ELEMENTS", 1)
        monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    g = torch.Generator().manual_seed(13)
    x = torch.randn(4, 50, 96, generator=g)
    x[0, 3] = 0.0  # nothing kept but zeros: inf
    x[1, 4, :10] = 0.0
    x[1, 4, 10:] = 0.0
    x[1, 4, 20:22] = 2.5  # fewer nonzeros than k: every one kept
    x[2, 5, :40] = 1.5  # tied at the threshold
    floors: dict = {}
    with topk.record_floors(floors):
        y = abs_topk(x, 24, ("a", 0))
        abs_topk(x * 2, 24, ("a", 0))  # a second call under the same key changes nothing
        abs_topk(x, 24)  # no key: not recorded
        with dense_reference():
            y_ref = abs_topk(x, 24, ("ref", 0))
        bad = x.clone()
        bad[3, 7, 0] = float("nan")
        abs_topk(bad, 24, ("nan", 0))
        xg = x.clone().requires_grad_()
        abs_topk(xg, 24, ("grad", 0))
    assert set(floors) == {("a", 0), ("ref", 0), ("nan", 0), ("grad", 0)}
    assert floors[("a", 0)].shape == (4, 50)
    assert torch.equal(floors[("a", 0)], topk.kept_floor(y))
    assert floors[("a", 0)][0, 3] == float("inf") and floors[("a", 0)][1, 4] == 2.5 and floors[("a", 0)][2, 5] == 1.5
    assert torch.equal(floors[("ref", 0)], topk.kept_floor(y_ref))  # (ties may keep other entries there)
    assert torch.equal(floors[("grad", 0)], floors[("a", 0)])
    assert floors[("nan", 0)].shape == (4, 50)
    with topk.record_floors({}):
        pass
    assert topk._floors.get() is None
