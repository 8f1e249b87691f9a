"""Sparse products with fixed weights (engine.kernels) against the dense reference: the kernel alone,
whole forward passes, the live ablator and pruning's mask gradients; and synthetic runs."""

import json

import numpy as np
import pytest
import torch

from engine.ablation.ablator import Ablator
from engine.ablation.core import keep_masks_from_nodes, last_logits, mask_hooks
from engine.config import ModelConfig, SparsityConfig
from engine.errors import UserError
from engine.kernels import dense_reference, kernel_policy, linear, prefers_sparse, sparse_applies, sparse_weight
from engine.model import GPT, model_bytes
from engine.sites import all_sites, site_width
from engine.sparsity import WeightSparsifier, densities

from tests.engine.test_ablation import _parity_cases, random_enc, random_means


def _sparse_matrix(rows, cols, density, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(rows, cols, generator=g) < density).float() * torch.randn(rows, cols, generator=g)


@pytest.mark.parametrize("rows", [None, (0, 40), (40, 120)])
def test_sparse_linear_matches_dense_in_values_and_input_gradients(rows):
    w, b = _sparse_matrix(120, 50, 0.05), torch.randn(120)
    x = torch.randn(3, 7, 50, requires_grad=True)
    with kernel_policy("sparse"):
        y = linear(x, w, b, rows)
        assert sparse_weight(w, rows) is not None  # the CSR path was taken
    g = torch.randn_like(y)
    (y * g).sum().backward()
    gx, x.grad = x.grad.clone(), None
    with dense_reference():
        y_ref = linear(x, w, b, rows)
    (y_ref * g).sum().backward()
    assert y.shape == y_ref.shape == (3, 7, 40 if rows == (0, 40) else 80 if rows else 120)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(gx, x.grad, atol=1e-5, rtol=0)


def test_a_fixed_bias_joins_the_product_and_a_trained_one_still_gets_its_gradient():
    """A fixed bias is added inside the sparse product (addmm), bit for bit the product plus the bias;
    a bias that needs a gradient (fixed weights, trained bias) is added outside, so it gets one."""
    w, x = _sparse_matrix(120, 50, 0.05), torch.randn(3, 7, 50)
    b = torch.randn(120)
    with kernel_policy("sparse"), torch.no_grad():
        assert torch.equal(linear(x, w, b), linear(x, w) + b)
    b.requires_grad_(True)
    with kernel_policy("sparse"):
        linear(x, w, b).square().sum().backward()
    grad, b.grad = b.grad.clone(), None
    with dense_reference():
        linear(x, w, b).square().sum().backward()
    torch.testing.assert_close(grad, b.grad, atol=1e-4, rtol=1e-5)


def test_the_policy_picks_sparse_only_where_it_pays_and_never_for_trained_weights():
    assert prefers_sparse(1024 * 4096, 1024 * 4096 // 500)  # the paper's density on a big matrix
    assert not prefers_sparse(1024 * 4096, 1024 * 4096 // 4)
    assert not prefers_sparse(512 * 128, 512 * 128 // 16)  # the demo: dense is faster at 1/16
    assert prefers_sparse(512 * 128, 512 * 128 // 100) and not prefers_sparse(0, 0)
    w = torch.nn.Parameter(_sparse_matrix(64, 64, 0.01))
    x = torch.randn(2, 64)
    assert not sparse_applies(w, x)  # a weight being trained: dense, so its gradient exists
    with torch.no_grad():
        assert sparse_applies(w, x)
    w.requires_grad_(False)
    assert sparse_applies(w, x) and not sparse_applies(w, x.double())
    with dense_reference():
        assert not sparse_applies(w, x)


def test_an_in_place_edit_of_the_weight_is_seen_at_once():
    """Edge ablation zeroes one weight in place; the cached CSR copy must not be stale."""
    w = _sparse_matrix(30, 20, 0.2)
    x = torch.randn(4, 20)
    with kernel_policy("sparse"):
        before = linear(x, w)
        r, c = (w != 0).nonzero()[0].tolist()
        saved = float(w[r, c])
        w[r, c] = 0.0
        edited = linear(x, w)
        w[r, c] = saved
        after = linear(x, w)
    expected = before.clone()
    expected[:, r] -= x[:, c] * saved
    torch.testing.assert_close(edited, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(after, before, atol=0, rtol=0)


def _very_sparse_model(afrac=1.0, seed=0) -> GPT:
    torch.manual_seed(seed)  # the sinks and the sparsity pattern draw from the global RNG: no test-order dependence
    cfg = ModelConfig(vocab_size=30, n_layer=3, d_model=32, d_mlp=64, n_ctx=24, afrac=afrac)
    m = GPT(cfg)
    m.reset_parameters(seed=seed)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(8.0) if p.dim() >= 2 else None
        for blk in m.blocks:
            blk.attn.sink.uniform_(-1, 1)
    WeightSparsifier(m, SparsityConfig(density=0.05, min_per_line=1)).project(1.0)
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def test_full_forward_through_csr_matches_the_dense_forward():
    m = _very_sparse_model(afrac=0.25)
    idx = torch.randint(0, 30, (6, 20), generator=torch.Generator().manual_seed(1))
    with kernel_policy("sparse"):
        logits = m(idx)
        assert sparse_weight(m.blocks[0].mlp.c_fc.weight) is not None
    with dense_reference():
        ref = m(idx)
    # AbsTopK near-ties could flip on last-bit differences; on this model none does (checked exactly).
    torch.testing.assert_close(logits, ref, atol=1e-5, rtol=0)


def test_live_ablation_through_csr_matches_the_dense_naive_forward():
    """The fast path with CSR products against the naive forward with dense ones, every site and
    weight-edge kind (exact with AbsTopK off; see test_ablation for the near-tie rule with it on)."""
    m = _very_sparse_model()
    ab = Ablator(m, random_enc(n_pairs=20), random_means(m))
    for nodes, edges in _parity_cases(m, np.random.default_rng(4)):
        with kernel_policy("sparse"):
            fast = ab.evaluate(nodes, edges)
        with dense_reference():
            naive = ab.evaluate_naive(nodes, edges)
        np.testing.assert_allclose(fast.logit_diff, naive.logit_diff, atol=1e-5, rtol=0)


def test_pruning_mask_gradients_through_csr_match_dense():
    """Pruning learns node masks through fixed weights: the gradients reach the masks the same way."""
    m = _very_sparse_model(afrac=0.25)
    enc = random_enc(n_pairs=6)
    tokens, lengths = torch.as_tensor(enc.tokens), torch.as_tensor(enc.lengths)
    means = random_means(m)
    grads = []
    for policy in ("sparse", "dense"):
        masks = {s: torch.full((site_width(m.cfg, s),), 0.7, requires_grad=True) for s in all_sites(m.cfg)}
        with kernel_policy(policy):
            logits = last_logits(m, tokens, lengths, mask_hooks(masks, means))
            logits.logsumexp(-1).sum().backward()
        grads.append({s: t.grad.clone() for s, t in masks.items()})
    for s in grads[0]:
        torch.testing.assert_close(grads[0][s], grads[1][s], atol=1e-4, rtol=1e-4)
    assert any(float(g.abs().sum()) > 0 for g in grads[0].values())
    assert keep_masks_from_nodes(m, ablated={}) == {}


# ---------------------------------------------------------------------------------------------
# synth


def test_synth_shapes_have_the_paper_models_sizes():
    from engine.train.synth import synth_config

    n1, _ = model_bytes(synth_config("csp_yolo1").model)
    n2, _ = model_bytes(synth_config("csp_yolo2").model)
    assert 100e6 < n1 < 120e6 and 440e6 < n2 < 500e6
    with pytest.raises(UserError, match="unknown shape"):
        synth_config("csp_yolo3")
    with pytest.raises(UserError, match="density"):
        synth_config("demo", 0.0)


def test_synth_writes_a_loadable_run_with_the_density_and_line_minimum_of_training(tmp_path):
    from engine.runs import load_run
    from engine.sparsity import sparse_matrices
    from engine.train.synth import synth_run

    out = tmp_path / "s"
    r = synth_run("demo", out, density=1 / 32, seed=3)
    assert r["density"] == pytest.approx(1 / 32) and r["nonzero_weights"] > 0
    status = json.loads((out / "run.json").read_text())
    assert status["synthetic"] is True and "never trained" in status["note"]
    run = load_run(out)
    dens = densities(run.model)
    assert dens["matrices"] == pytest.approx(1 / 32, rel=0.02)
    params = dict(run.model.named_parameters())
    for spec in sparse_matrices(run.model):
        if spec.min_axis is not None:
            per_line = (params[spec.name] != 0).sum(dim=spec.min_axis)
            assert int(per_line.min()) >= 4, spec.name  # the per-line minimum of training
    # activations of a realistic size: the residual after the blocks neither vanishes nor explodes
    idx = torch.randint(0, run.config.model.vocab_size, (2, 30))
    with torch.no_grad():
        _, cache = run.model.forward_with_cache(idx)
    rms = [float(x.pow(2).mean().sqrt()) for x in cache]
    assert all(0.3 < v < 10 for v in rms), rms
    with pytest.raises(UserError, match="already exists"):
        synth_run("demo", out)
    assert synth_run("demo", tmp_path / "t", density=1 / 32, seed=3)["nonzero_weights"] == r["nonzero_weights"]


def test_synth_cli_errors_are_one_line(tmp_path, capsys):
    from engine.cli.main import main

    assert main(["synth", "--shape", "nope", "--out", str(tmp_path / "x")]) == 2
    assert main(["synth", "--shape", "demo", "--density", "2", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error:") for line in err)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("options", [dict(), dict(tied_embed=True, alibi_heads=2, attn_sink=True)])
def test_an_empty_model_for_loading_has_the_real_buffers_and_ties(options):
    """GPT.empty skips random init (loading big runs); its constant buffers and tied weights are real."""
    cfg = ModelConfig(vocab_size=30, n_layer=2, d_model=32, d_mlp=64, n_ctx=24, **options)
    ref, empty = GPT(cfg), GPT.empty(cfg)
    for (name, a), (_, b) in zip(ref.named_buffers(), empty.named_buffers()):
        assert a.device.type == b.device.type == "cpu" and torch.equal(a, b), name
    assert (empty.lm_head.weight is empty.wte.weight) == bool(options.get("tied_embed"))
    empty.load_state_dict(ref.state_dict())
    idx = torch.randint(0, 30, (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(empty(idx), ref(idx), atol=0, rtol=0)


def test_bench_load_of_a_bad_run_is_one_error_line(tmp_path, capsys):
    from engine.cli.main import main
    from engine.train.synth import synth_run

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_bytes(b"\xff\xfe")
    assert main(["bench", "load", "--run", str(bad)]) == 2
    run = tmp_path / "s"
    synth_run("demo", run)
    (run / "model.safetensors").write_bytes(b"xx")  # damaged weights: the child process fails
    assert main(["bench", "load", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error:") for line in err) and "Traceback" not in "".join(err)
    assert "safetensors" in err[1]
