"""The live-ablation fast path against the naive full forward, on random models and ablations."""

import contextlib
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.ablation.ablator import Ablator, Edge
from engine.circuits.circuit import make_circuit, weight_edges
from engine.config import ModelConfig, SparsityConfig
from engine.errors import UserError
from engine.model import GPT
from engine.sites import NodeId, all_sites, site_width
from engine.sparsity import WeightSparsifier


def sparse_model(seed=0, n_layer=3, afrac=0.25, alibi_heads=0, alibi_from_layer=0, **options) -> GPT:
    cfg = ModelConfig(vocab_size=30, n_layer=n_layer, d_model=32, d_mlp=64, n_ctx=24, afrac=afrac,
                      alibi_heads=alibi_heads, alibi_from_layer=alibi_from_layer, **options)
    m = GPT(cfg)
    m.reset_parameters(seed=seed)
    with torch.no_grad():
        for p in m.parameters():  # larger weights than the init, so ablations matter
            p.mul_(8.0) if p.dim() >= 2 else None
        for blk in m.blocks:
            blk.attn.sink.uniform_(-1, 1)
        m.bigram.normal_(0, 0.1)
    WeightSparsifier(m, SparsityConfig(density=0.25)).project(1.0)
    return m.eval()


def random_enc(n_pairs=8, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 20, size=2 * n_pairs)
    tokens = np.zeros((2 * n_pairs, 20), dtype=np.int64)
    for i, L in enumerate(lengths):
        tokens[i, :L] = rng.integers(1, 30, size=L)
    target = rng.integers(0, 30, size=2 * n_pairs)
    foil = (target + 1 + rng.integers(0, 28, size=2 * n_pairs)) % 30
    return SimpleNamespace(tokens=tokens, lengths=lengths, target=target, foil=foil)


def random_means(m: GPT, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {s: torch.randn(site_width(m.cfg, s), generator=g) * 0.3 for s in all_sites(m.cfg, final=True)}


def random_nodes(m: GPT, rng, k):
    sites = all_sites(m.cfg)
    out = set()
    while len(out) < k:
        s = sites[rng.integers(len(sites))]
        out.add(NodeId(s, int(rng.integers(site_width(m.cfg, s)))))
    return sorted(out)


def random_edges(m: GPT, rng, k):
    es = weight_edges(m)
    idx = rng.choice(len(es), size=k, replace=False)
    return [Edge(NodeId.parse(es.src[i]), NodeId.parse(es.dst[i])) for i in idx]


def _parity_cases(m, rng):
    cases = [([], [])]
    for site in all_sites(m.cfg, final=True):  # one node in every site of every layer, and in final_resid
        cases.append(([NodeId(site, int(rng.integers(site_width(m.cfg, site))))], []))
    es = weight_edges(m)
    kinds: dict[tuple[str, str], int] = {}  # one weight edge alone of every (source site, target site)
    for i in rng.permutation(len(es)):
        kinds.setdefault((es.src[i].split(":")[0], es.dst[i].split(":")[0]), int(i))
    assert len(kinds) == 6 * m.cfg.n_layer  # read->q/k/v, v->write, mlp read->neuron, neuron->write
    for i in kinds.values():
        cases.append(([], [Edge(NodeId.parse(es.src[i]), NodeId.parse(es.dst[i]))]))
    for _ in range(10):
        cases.append((random_nodes(m, rng, int(rng.integers(1, 30))), random_edges(m, rng, int(rng.integers(0, 5)))))
    return cases


# fp32 on both devices (TF32 is off by default). On CUDA the two paths run different kernels
# (fused attention vs. the explicit last-layer attention), which round differently: 1e-4 there.
TOL = {"cpu": 1e-5, "cuda": 1e-4}


@pytest.mark.parametrize("mode,alibi_heads,alibi_from_layer",
                         [("mean", 0, 0), ("zero", 0, 0), ("resample", 0, 0), ("mean", 1, 0), ("mean", 2, 2)])
def test_fast_path_matches_naive_forward(mode, alibi_heads, alibi_from_layer, device):
    """Exact parity (1e-5, fp32) with AbsTopK switched off, so the comparison is not at the mercy of
    near-ties at the top-k boundary (see the next test). With ALiBi too: the last layer's attention at
    the last position adds each sequence's own distance bias."""
    m = sparse_model(afrac=1.0, alibi_heads=alibi_heads, alibi_from_layer=alibi_from_layer).to(device)
    pool = {s: torch.randn(50, site_width(m.cfg, s)) for s in all_sites(m.cfg, final=True)}
    ab = Ablator(m, random_enc(n_pairs=40), random_means(m), resample_pool=pool)
    assert len(ab._chunks) == 3  # 80 sequences: 3 length chunks
    assert ab.device.type == device
    for nodes, edges in _parity_cases(m, np.random.default_rng(1)):
        fast = ab.evaluate(nodes, edges, mode=mode)
        naive = ab.evaluate_naive(nodes, edges, mode=mode)
        np.testing.assert_allclose(fast.logit_diff, naive.logit_diff, atol=TOL[device], rtol=0)
        assert fast.loss == pytest.approx(naive.loss, abs=TOL[device])


@pytest.mark.parametrize("mode", ["mean", "resample"])
def test_fast_path_matches_naive_forward_with_abstopk(mode, device):
    """With AbsTopK the fast path computes some matrix products in other shapes (length chunks, the
    last layer at the last position), so float sums differ in the last bits and a near-tie at the
    top-k boundary can rarely flip which channel is kept (the compiled attention sums in another order
    than torch's fused kernel, too). Nearly every sequence must still agree to 1e-5; a flip may move a
    handful. The model's sparsity pattern, sinks and the resample pool come from the global RNG, so it
    is seeded here: the case must not depend on which tests ran before."""
    torch.manual_seed(0)
    m = sparse_model().to(device)
    pool = {s: torch.randn(50, site_width(m.cfg, s)) for s in all_sites(m.cfg, final=True)}
    ab = Ablator(m, random_enc(n_pairs=40), random_means(m), resample_pool=pool)
    for nodes, edges in _parity_cases(m, np.random.default_rng(1)):
        fast = ab.evaluate(nodes, edges, mode=mode).logit_diff
        naive = ab.evaluate_naive(nodes, edges, mode=mode).logit_diff
        diff = np.abs(fast - naive)
        assert (diff <= TOL[device]).mean() >= 0.95, (nodes, edges, diff.max())
        assert diff.max() < 0.5


#: Model options of other weight-sparse GPTs (OpenAI's), each set switching on several at once.
OPTION_SETS = {
    "layernorm-relu-tied": dict(norm="layer", norm_bias=True, norm_eps=1e-6, linear_bias=False, mlp_act="relu",
                                resid_act="relu", heads=3, pos_additive=True, tied_embed=True),
    "separate-position-norms": dict(pos_channels=8, pos_norm="separate", norm_eps=1.1920929e-07),
}


@pytest.mark.parametrize("options", list(OPTION_SETS), ids=list(OPTION_SETS))
def test_fast_path_matches_naive_forward_with_model_options(options, device):
    """The fast path restarts inside half-blocks and runs the last layer at the last position only:
    every model option must take the same route there as in the full forward."""
    m = sparse_model(afrac=1.0, **OPTION_SETS[options]).to(device)
    ab = Ablator(m, random_enc(n_pairs=20), random_means(m))
    for nodes, edges in _parity_cases(m, np.random.default_rng(2)):
        fast = ab.evaluate(nodes, edges, mode="mean")
        naive = ab.evaluate_naive(nodes, edges, mode="mean")
        np.testing.assert_allclose(fast.logit_diff, naive.logit_diff, atol=TOL[device], rtol=0)


def test_fast_path_matches_naive_forward_with_abstopk_on_chosen_sites_and_the_residual(device):
    """AbsTopK with a floor k on a subset of sites, the residual after each sublayer included."""
    m = sparse_model(afrac=0.5, afrac_floor=True, resid_act="relu",
                     afrac_sites=("attn.read", "attn.k", "mlp.neuron", "resid_post_attn", "resid_post_mlp")).to(device)
    assert m._topk["attn.q"] is None and m._topk["mlp.neuron"] == 32 and m._topk["resid_post_mlp"] == 16
    ab = Ablator(m, random_enc(n_pairs=20), random_means(m))
    for nodes, edges in _parity_cases(m, np.random.default_rng(3)):
        diff = np.abs(ab.evaluate(nodes, edges).logit_diff - ab.evaluate_naive(nodes, edges).logit_diff)
        assert (diff <= TOL[device]).mean() >= 0.95, (nodes, edges, diff.max())


def test_ablations_change_the_metric_and_edges_alone_work():
    m = sparse_model(afrac=1.0)  # exact comparison: no top-k near-ties
    ab = Ablator(m, random_enc(), random_means(m))
    clean = ab.evaluate()
    rng = np.random.default_rng(2)
    hit = ab.evaluate(random_nodes(m, rng, 40))
    assert not np.allclose(hit.logit_diff, clean.logit_diff)
    es = random_edges(m, rng, 20)
    e_only = ab.evaluate([], es)
    assert not np.allclose(e_only.logit_diff, clean.logit_diff)
    np.testing.assert_allclose(e_only.logit_diff, ab.evaluate_naive([], es).logit_diff, atol=1e-5)


def test_the_ablator_shares_the_callers_weights_and_never_writes_them():
    """No weight is copied (the Ablator's parameters are fixed tensors on the caller's storage; the
    caller's own flags are untouched), and an edge ablation edits a private copy of its matrix: the
    caller's weights keep their values during and after it, and the result equals an Ablator built
    on a model with that weight zeroed by hand."""
    import copy

    from engine.ablation.ablator import _weight_entry, zeroed_weights

    m = sparse_model(afrac=1.0)
    m.blocks[0].mlp.c_fc.weight.requires_grad_(True)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    ab = Ablator(m, random_enc(), random_means(m))
    for (name, mine), theirs in zip(ab.model.named_parameters(), m.parameters()):
        assert mine.data_ptr() == theirs.data_ptr() and not mine.requires_grad, name
    assert m.blocks[0].mlp.c_fc.weight.requires_grad
    es = random_edges(m, np.random.default_rng(5), 6)
    with zeroed_weights(ab.model, es):
        for e in es:
            lin, r, c = _weight_entry(m, e)  # the caller's weight: still nonzero
            assert float(lin.weight.detach()[r, c]) != 0.0
        with pytest.raises(UserError, match="exactly 0"):
            _weight_entry(ab.model, es[0])  # the Ablator's: zero
    cut = ab.evaluate([], es)
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k
    by_hand = copy.deepcopy(m)
    with torch.no_grad():
        for e in es:
            lin, r, c = _weight_entry(by_hand, e)
            lin.weight[r, c] = 0.0
    want = Ablator(by_hand, random_enc(), random_means(m)).evaluate()
    np.testing.assert_allclose(cut.logit_diff, want.logit_diff, atol=1e-6)
    assert not np.allclose(cut.logit_diff, ab.evaluate().logit_diff)  # the weights are back
    with zeroed_weights(ab.model, es):  # another thread's edge ablation is no change of the weights
        assert ab._parse([], es)[1] == es
    with torch.no_grad():  # the caller edits its own weights: the Ablator's cached clean run is stale
        m.blocks[1].mlp.c_fc.weight.mul_(2.0)
    with pytest.raises(UserError, match="changed in place after this Ablator was built"):
        ab.evaluate()
    with pytest.raises(UserError, match="build a new Ablator"):
        ab.evaluate_naive([], es)


def test_circuit_baseline_and_extra_ablations(device):
    m = sparse_model(afrac=1.0).to(device)  # exact comparison: no top-k near-ties
    means = random_means(m)
    rng = np.random.default_rng(3)
    circuit = make_circuit(m, "toy", random_nodes(m, rng, 60), "h", settings={"ablation": "mean"})
    ab = Ablator(m, random_enc(), means, circuit=circuit)
    base = ab.evaluate(baseline="circuit")
    np.testing.assert_allclose(base.logit_diff, ab.evaluate_naive(baseline="circuit").logit_diff, atol=TOL[device])
    by_site = {}
    for n in circuit.nodes:  # one extra circuit node per site (restarts inside every half-block), then five
        by_site.setdefault(n.site, n)
    for extra in [[n] for n in by_site.values()] + [list(circuit.nodes[:5])]:
        fast = ab.evaluate(extra, baseline="circuit", mode="zero")
        np.testing.assert_allclose(fast.logit_diff, ab.evaluate_naive(extra, baseline="circuit", mode="zero").logit_diff,
                                   atol=TOL[device])


@pytest.mark.parametrize("circuit_mode", ["resample", "zero"])
def test_circuit_baseline_with_another_ablation_outside_the_circuit(circuit_mode, device):
    """``circuit_mode`` ablates everything outside the circuit another way than the circuit was pruned
    with (the app's resample mode): the fast path still equals the naive forward, with and without
    extra ablations on top, and the result says which ablation the rest of the model had."""
    m = sparse_model(afrac=1.0).to(device)  # exact comparison: no top-k near-ties
    pool = {s: torch.randn(50, site_width(m.cfg, s)) for s in all_sites(m.cfg, final=True)}
    circuit = make_circuit(m, "toy", random_nodes(m, np.random.default_rng(3), 60), "h", settings={"ablation": "mean"})
    ab = Ablator(m, random_enc(), random_means(m), circuit=circuit, resample_pool=pool)
    assert ab.circuit_mode == "mean"
    base = ab.evaluate(baseline="circuit", circuit_mode=circuit_mode)
    assert (base.circuit_mode, base.baseline) == (circuit_mode, "circuit")
    np.testing.assert_allclose(base.logit_diff, ab.evaluate_naive(baseline="circuit", circuit_mode=circuit_mode)
                               .logit_diff, atol=TOL[device])
    by_site = {}
    for n in circuit.nodes:
        by_site.setdefault(n.site, n)
    for extra in [[n] for n in by_site.values()] + [list(circuit.nodes[:5])]:
        for mode in ("mean", circuit_mode):
            fast = ab.evaluate(extra, baseline="circuit", mode=mode, circuit_mode=circuit_mode)
            naive = ab.evaluate_naive(extra, baseline="circuit", mode=mode, circuit_mode=circuit_mode)
            np.testing.assert_allclose(fast.logit_diff, naive.logit_diff, atol=TOL[device])
    assert ab.evaluate(baseline="full", circuit_mode=circuit_mode).circuit_mode is None  # no circuit baseline


def test_a_cache_for_one_ablation_outside_the_circuit_never_serves_another():
    m = sparse_model(afrac=1.0)
    pool = {s: torch.randn(50, site_width(m.cfg, s)) for s in all_sites(m.cfg, final=True)}
    circuit = make_circuit(m, "toy", random_nodes(m, np.random.default_rng(3), 60), "h", settings={"ablation": "mean"})
    fresh = lambda: Ablator(m, random_enc(), random_means(m), circuit=circuit, resample_pool=pool)  # noqa: E731
    ab = fresh()
    own = ab.evaluate(baseline="circuit")  # builds the cache of the circuit's own mode (mean) first
    assert own.circuit_mode == "mean"
    np.testing.assert_allclose(own.logit_diff, ab.evaluate(baseline="circuit", circuit_mode="mean").logit_diff)
    for mode in ("resample", "zero"):
        got = ab.evaluate(baseline="circuit", circuit_mode=mode)
        assert not np.allclose(got.logit_diff, own.logit_diff)  # not the mean cache
        np.testing.assert_allclose(got.logit_diff, fresh().evaluate(baseline="circuit", circuit_mode=mode).logit_diff,
                                   atol=1e-6)
        node = [circuit.nodes[0]]  # an ablation on top restarts from the right cache too
        np.testing.assert_allclose(ab.evaluate(node, baseline="circuit", circuit_mode=mode).logit_diff,
                                   ab.evaluate_naive(node, baseline="circuit", circuit_mode=mode).logit_diff, atol=1e-5)
    # Back to the circuit's own mode after the least recently used caches were dropped: the same numbers.
    np.testing.assert_allclose(ab.evaluate(baseline="circuit").logit_diff, own.logit_diff, atol=1e-6)
    assert len(ab._caches) <= 3


def test_the_ablation_outside_the_circuit_is_checked():
    m = sparse_model(n_layer=2)
    circuit = make_circuit(m, "toy", random_nodes(m, np.random.default_rng(3), 20), "h")
    ab = Ablator(m, random_enc(), random_means(m), circuit=circuit)
    with pytest.raises(UserError, match="mean, zero, resample"):
        ab.evaluate(baseline="circuit", circuit_mode="shuffle")
    with pytest.raises(UserError, match="mean, zero, resample"):
        ab.evaluate_naive(baseline="circuit", circuit_mode="shuffle")
    with pytest.raises(UserError, match="resample ablation needs recorded pretraining activations"):
        ab.evaluate(baseline="circuit", circuit_mode="resample")
    with pytest.raises(UserError, match="resample ablation needs recorded pretraining activations"):
        ab.evaluate_naive(baseline="circuit", circuit_mode="resample")
    partial = Ablator(m, random_enc(), random_means(m), circuit=circuit,
                      resample_pool={"blocks.0.mlp.neuron": torch.randn(10, site_width(m.cfg, "blocks.0.mlp.neuron"))})
    with pytest.raises(UserError, match="no resample values for"):
        partial.evaluate(baseline="circuit", circuit_mode="resample")


def test_a_circuit_pruned_over_final_resid_too(device, tmp_path):
    """OpenAI's circuits also prune the residual the unembedding reads (final_resid); ours keep it
    whole. A circuit says which sites it covers, and only those lose their nodes outside it."""
    from engine.circuits.circuit import load_circuit
    from engine.sites import FINAL_RESID

    m = sparse_model(afrac=1.0).to(device)
    means = random_means(m)
    rng = np.random.default_rng(4)
    nodes = random_nodes(m, rng, 60)
    final = [NodeId(FINAL_RESID, i) for i in (1, 5, 9)]
    wide = make_circuit(m, "toy", nodes + final, "h", sites=tuple(all_sites(m.cfg, final=True)))
    again = load_circuit(wide.save(tmp_path / "c.json"), m)
    assert again.sites == wide.sites and set(final) <= set(again.nodes)
    ab = Ablator(m, random_enc(), means, circuit=again)
    for extra in ([], [final[0]], [nodes[0], final[1]]):
        np.testing.assert_allclose(ab.evaluate(extra, baseline="circuit").logit_diff,
                                   ab.evaluate_naive(extra, baseline="circuit").logit_diff, atol=TOL[device])
    narrow = Ablator(m, random_enc(), means, circuit=make_circuit(m, "toy", nodes, "h"))  # final_resid kept whole
    whole = make_circuit(m, "toy", nodes + [NodeId(FINAL_RESID, i) for i in range(m.cfg.d_model)], "h",
                         sites=tuple(all_sites(m.cfg, final=True)))
    np.testing.assert_allclose(narrow.evaluate(baseline="circuit").logit_diff,
                               Ablator(m, random_enc(), means, circuit=whole).evaluate(baseline="circuit").logit_diff,
                               atol=TOL[device])
    assert not np.allclose(ab.evaluate(baseline="circuit").logit_diff, narrow.evaluate(baseline="circuit").logit_diff)


def test_the_callers_model_is_never_mutated_and_threads_agree():
    m = sparse_model()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    means = random_means(m)
    rng = np.random.default_rng(4)
    jobs = [(random_nodes(m, rng, 10), random_edges(m, rng, 3)) for _ in range(6)]
    alone = [Ablator(m, random_enc(), means).evaluate(n, e).logit_diff for n, e in jobs]
    a1, a2 = Ablator(m, random_enc(), means), Ablator(m, random_enc(), means)
    results: dict = {}

    def work(ab, key):
        results[key] = [ab.evaluate(n, e).logit_diff for n, e in jobs for _ in range(3)][::3]

    threads = [threading.Thread(target=work, args=(a1, 1)), threading.Thread(target=work, args=(a2, 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for key in (1, 2):
        for got, want in zip(results[key], alone):
            np.testing.assert_allclose(got, want, atol=1e-6)
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_bad_input_names_the_valid_range():
    m = sparse_model(n_layer=2)
    ab = Ablator(m, random_enc(), random_means(m))
    with pytest.raises(UserError, match="unknown site"):
        ab.evaluate(["blocks.0.mlp.neurons:1"])
    with pytest.raises(UserError, match="0..63"):
        ab.evaluate(["blocks.0.mlp.neuron:64"])
    with pytest.raises(UserError, match="layer 2 out of range"):
        ab.evaluate(["blocks.2.mlp.neuron:1"])
    w = m.blocks[0].mlp.c_fc.weight
    r, c = (w == 0).nonzero()[0].tolist()
    with pytest.raises(UserError, match="not a nonzero weight"):
        ab.evaluate([], [f"blocks.0.mlp.read:{c}->blocks.0.mlp.neuron:{r}"])
    with pytest.raises(UserError, match="not a weight edge"):
        ab.evaluate([], ["blocks.0.mlp.read:1->blocks.1.mlp.neuron:2"])
    with pytest.raises(UserError, match="resample"):
        ab.evaluate(["blocks.0.mlp.neuron:1"], mode="resample")
    with pytest.raises(UserError, match="no circuit"):
        ab.evaluate(baseline="circuit")


def test_fast_last_logits_matches_the_full_forward_with_gradients():
    from engine.ablation.core import last_logits, last_logits_reference, mask_hooks
    m = sparse_model(afrac=1.0)  # exact comparison: no top-k near-ties
    enc = random_enc()
    tokens, lengths = torch.as_tensor(enc.tokens), torch.as_tensor(enc.lengths)
    means = random_means(m)
    taus = {s: torch.randn(site_width(m.cfg, s), requires_grad=True) for s in all_sites(m.cfg)}
    outs = []
    for fn in (last_logits, last_logits_reference):
        gates = {s: torch.sigmoid(t) for s, t in taus.items()}
        logits = fn(m, tokens, lengths, mask_hooks(gates, means))
        grads = torch.autograd.grad(logits.square().sum(), list(taus.values()))
        outs.append((logits.detach(), grads))
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-5)
    for a, b in zip(outs[0][1], outs[1][1]):
        assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("mode,baseline", [("mean", "full"), ("zero", "full"), ("mean", "circuit"), ("zero", "circuit")])
def test_packed_prefixes_match_the_padded_chunks(mode, baseline, monkeypatch):
    """The packed restart (engine.ablation.packed: each prompt prefix computed once) against the padded
    length chunks, exactly (AbsTopK off): every site, every weight kind, mixed sets, both baselines;
    and it is the path evaluate takes for mean and zero, while resample keeps the chunks."""
    from engine.ablation import ablator as ablator_module
    from tests.engine.test_rank import prefix_enc

    m = sparse_model(afrac=1.0, alibi_heads=1)
    rng = np.random.default_rng(5)
    circuit = make_circuit(m, "toy", random_nodes(m, rng, 40), "h", settings={"ablation": "mean"})
    pool = {s: torch.randn(50, site_width(m.cfg, s)) for s in all_sites(m.cfg, final=True)}
    ab = Ablator(m, prefix_enc(), random_means(m), circuit=circuit, resample_pool=pool)
    assert ab._packing().n < int(ab.lengths.sum())  # shared prefixes are computed once
    calls = []
    real = ablator_module.forward
    monkeypatch.setattr(ablator_module, "forward", lambda *a: calls.append(a[4]) or real(*a))
    for nodes, edges in _parity_cases(m, rng):
        ab.packed = True
        packed = ab.evaluate(nodes, edges, mode=mode, baseline=baseline).logit_diff
        ab.packed = False
        chunks = ab.evaluate(nodes, edges, mode=mode, baseline=baseline).logit_diff
        np.testing.assert_allclose(packed, chunks, atol=1e-5, rtol=0)
    assert len(calls) > len(all_sites(m.cfg))  # most restarts went through the packed path
    ab.packed, n = True, len(calls)
    ab.evaluate([NodeId("blocks.0.mlp.neuron", 1)], mode="resample")
    assert len(calls) == n  # resample: one value per sequence, the padded chunks


@pytest.mark.parametrize("kind", ["attn.q", "attn.k", "attn.v"])
def test_attention_restarts_recompute_only_the_changed_head(kind, monkeypatch):
    """A q, k or v node changes one head: the packed restart recomputes that head's attention alone
    and splices it into the baseline's, and the result equals the full forward (ALiBi and sinks on)."""
    from engine.ablation import packed as packed_module
    from tests.engine.test_rank import prefix_enc

    m = sparse_model(afrac=1.0, alibi_heads=1)
    ab = Ablator(m, prefix_enc(), random_means(m))
    ab.evaluate()
    heads = []
    real = packed_module._attend
    monkeypatch.setattr(packed_module, "_attend", lambda *a, **kw: heads.append(kw.get("heads")) or real(*a, **kw))
    dh = m.cfg.d_head
    for head in range(m.cfg.n_head):
        node = NodeId(f"blocks.0.{kind}", head * dh + 3)
        heads.clear()
        fast = ab.evaluate([node]).logit_diff
        assert [h.tolist() for h in heads if h is not None] == [[head]]
        np.testing.assert_allclose(fast, ab.evaluate_naive([node]).logit_diff, atol=1e-5, rtol=0)
    heads.clear()
    nodes = [NodeId(f"blocks.0.{kind}", 3), NodeId(f"blocks.0.{kind}", dh + 4)]  # both heads: the full mix
    np.testing.assert_allclose(ab.evaluate(nodes).logit_diff, ab.evaluate_naive(nodes).logit_diff, atol=1e-5, rtol=0)
    assert m.cfg.n_head == 2 and heads and all(h is None for h in heads)


@pytest.mark.parametrize("sink,alibi_heads", [(True, 1), (False, 0), (True, 0)])
def test_compiled_trie_attention_matches_the_chunked_mix(sink, alibi_heads):
    """engine.compiled.trie_attention (each packed position attends along its prefix chain) against
    Attention.mix on the padded length chunks (the reference): all heads, a head subset, replicas."""
    from engine.ablation import packed as packed_module
    from engine.compiled import load
    from engine.kernels import dense_reference
    from tests.engine.test_rank import prefix_enc

    if load("trie_attention") is None:
        pytest.skip("numba is not installed (or CIRCUIT_INSPECTOR_KERNELS=torch): no compiled attention to compare")
    m = sparse_model(afrac=1.0, alibi_heads=alibi_heads)
    if not sink:
        for blk in m.blocks:
            blk.attn.sink = None
    ab = Ablator(m, prefix_enc(), random_means(m))
    pk = ab._packing()
    g = torch.Generator().manual_seed(7)
    inner = m.cfg.n_head * m.cfg.d_head
    q, k, v = (torch.randn(3, pk.n, inner, generator=g) * 2 for _ in range(3))
    for heads in (None, torch.tensor([1])):
        cols = slice(None) if heads is None else slice(m.cfg.d_head, 2 * m.cfg.d_head)
        args = (m, 0, q[..., cols], k[..., cols], v[..., cols], pk, 3)
        fast = packed_module._attend(*args, heads=heads)
        with dense_reference():
            ref = packed_module._attend(*args, heads=heads)
        assert torch.allclose(fast, ref, atol=1e-5, rtol=1e-5)


def test_restarts_start_abs_topk_from_the_clean_thresholds(monkeypatch):
    """A packed restart gives AbsTopK each row's clean kept floor as the start of its threshold search,
    at every site it recomputes (packed positions, and the last layer's last positions), and the
    result is exactly the same as without them."""
    from engine import topk
    from engine.ablation import packed as packed_module
    from tests.engine.test_rank import prefix_enc

    m = sparse_model(alibi_heads=1)  # AbsTopK on (afrac 0.25)
    ab = Ablator(m, prefix_enc(), random_means(m))
    pk = ab._packing()
    ab.evaluate()  # the clean cache (its AbsTopK has no guesses: it records them)
    rng = np.random.default_rng(3)
    looked = []
    real = topk._row_guesses
    monkeypatch.setattr(topk, "_row_guesses", lambda key, x: looked.append((key, len(g := real(key, x)))) or g)
    for site in all_sites(m.cfg):
        node = [NodeId(site, int(rng.integers(site_width(m.cfg, site))))]
        looked.clear()
        with_guesses = ab.evaluate(node).logit_diff
        assert looked and all(n > 0 for _, n in looked), site  # every recomputed AbsTopK had its guesses
        with monkeypatch.context() as mp:
            mp.setattr(packed_module, "row_guesses", lambda table: contextlib.nullcontext())
            assert np.array_equal(with_guesses, ab.evaluate(node).logit_diff)
    n_last = len(pk.last)
    sizes = {n for _, n in looked}
    assert sizes <= {pk.n, n_last} and n_last in sizes


@pytest.mark.parametrize("evaluate_first", [True, False])
def test_the_clean_readout_is_recorded_with_the_full_models_cache(evaluate_first, monkeypatch):
    """Ablator.clean_readout: every site at each prompt's last position in the full model, in the
    task's sequence order, equal to the reference's own padded forward (last_position_readout); taken
    while the full model's cache is built, so no forward of its own when that cache exists."""
    from engine.ablation.setup import last_position_readout

    m = sparse_model()
    enc = random_enc(n_pairs=40)  # 80 sequences: three length-sorted chunks
    ab = Ablator(m, enc, random_means(m))
    forwards = []
    real = ab.model.forward_with_cache
    monkeypatch.setattr(ab.model, "forward_with_cache", lambda idx: forwards.append(idx.shape) or real(idx))
    if evaluate_first:
        ab.evaluate(random_nodes(m, np.random.default_rng(3), 4))
        built = len(forwards)
        values = ab.clean_readout()
        assert len(forwards) == built  # recorded with the cache the evaluation built
    else:
        values = ab.clean_readout()
        assert len(forwards) == len(ab._chunks)
        ab.evaluate()
        assert len(forwards) == len(ab._chunks)  # and the cache it built serves the evaluation
    run = SimpleNamespace(model=m, config=SimpleNamespace(model=m.cfg))
    enc.n = len(enc.lengths)
    want = last_position_readout(run, enc)[0]
    assert set(values) == set(want) == set(all_sites(m.cfg, final=True))
    for site, v in want.items():
        assert values[site].shape == v.shape == (80, site_width(m.cfg, site))
        np.testing.assert_allclose(values[site], v, atol=1e-5, err_msg=site)
