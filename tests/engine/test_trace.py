"""engine.mechanism.trace and engine.scene.attribution (issue 18, positions and attribution): a pair
traced at every position equals the Ablator's forward, node-effect estimates are the exact first-order
change, and weight attributions equal the formula computed by hand on hand-built models."""

import json

import numpy as np
import pytest
import torch

from engine.ablation.ablator import Ablator
from engine.errors import UserError
from engine.mechanism.attention import head_attention
from engine.mechanism.trace import trace_pair
from engine.scene.attribution import edge_attribution, shown
from engine.scene.layout import ModelShape, build_graph
from engine.circuits.circuit import weight_edges
from engine.sites import intervene, site_name

from tests.engine.test_ablation import random_enc, random_means, sparse_model


@pytest.fixture(scope="module")
def setup():
    m = sparse_model(afrac=1.0)
    enc = random_enc(n_pairs=4)
    return m, enc, Ablator(m, enc, random_means(m))


def _plain_forward(model, tokens, sites):
    """Every site's activation on ``tokens`` (B, T) from a plain forward with recorders."""
    got = {}

    def rec(s):
        def hook(x):
            got[s] = x.detach().clone()
            return x
        return hook
    with torch.no_grad(), intervene({s: rec(s) for s in sites}):
        model(tokens)
    return got


@pytest.mark.parametrize("ablate", [(), ("blocks.0.mlp.neuron:3", "blocks.1.attn.k:5")])
def test_the_trace_is_the_forward_the_ablator_evaluates(setup, ablate) -> None:
    m, enc, ab = setup
    tr = trace_pair(ab, 2, ablate, (), "mean")
    res = ab.evaluate(ablate, (), "mean")
    np.testing.assert_allclose(tr.logit_diff, res.logit_diff[4:6], atol=1e-5)
    assert tr.lengths == (int(enc.lengths[4]), int(enc.lengths[5]))
    if not ablate:  # a plain forward of each prompt alone: every site at every position
        for side in range(2):
            n = tr.lengths[side]
            plain = _plain_forward(ab.model, torch.as_tensor(enc.tokens[4 + side:5 + side, :n]), tr.acts)
            for s, a in tr.acts.items():
                np.testing.assert_allclose(a[side, :n], plain[s][0].numpy(), atol=1e-5, err_msg=s)
                assert np.isnan(a[side, n:]).all()  # after the prompt's end
    else:  # the ablated nodes hold their mean at every position
        mean = random_means(m)
        for node in ablate:
            vals = tr.positions(node)
            site, idx = node.rsplit(":", 1)
            for side in range(2):
                np.testing.assert_allclose(vals[side, :tr.lengths[side]], float(mean[site][int(idx)]), atol=1e-6)
                assert abs(tr.effect(node)[side]) < 1e-6  # already ablated: nothing left to estimate


def test_effects_are_the_first_order_change_of_each_sides_logit_diff(setup) -> None:
    """Finite differences: scaling a node between its value and its mean by (1 - eps) moves the logit
    difference by eps times the estimate (to first order)."""
    m, enc, ab = setup
    tr = trace_pair(ab, 1, (), (), "mean")
    mean = random_means(m)
    eps = 1e-3
    rng = np.random.default_rng(0)
    for site in (site_name(0, "mlp.neuron"), site_name(1, "attn.v"), site_name(2, "mlp.write")):
        for i in rng.choice(np.flatnonzero(np.abs(tr.effects[site]).sum(0) > 1e-3), 2, replace=False):
            keep = torch.ones(tr.acts[site].shape[-1])
            keep[i] = 1 - eps
            hook = {site: lambda x, k=keep, v=mean[site]: x * k + v * (1 - k)}
            with intervene(hook):  # a full forward of the pair (the ablator's cached path would skip it)
                moved = trace_pair(ab, 1, (), (), "mean").logit_diff
            np.testing.assert_allclose((moved - tr.logit_diff) / eps, tr.effects[site][:, i], rtol=2e-2, atol=2e-3)


def test_weight_attribution_is_weight_times_the_sources_signal(setup) -> None:
    """Each edge kind against the formula by hand: the last position for q and MLP weights; for keys,
    values and the attention write the source at every position, weighted by where the head attends
    (the head's pattern from the independent head_attention)."""
    m, enc, ab = setup
    cfg = m.cfg
    es = weight_edges(ab.model)
    shape = ModelShape.from_config(cfg)
    g = build_graph(shape, sorted(set(es.src) | set(es.dst)), es.src, es.dst, es.weight)
    tr = trace_pair(ab, 0, (), (), "mean")
    att = edge_attribution(g, tr)
    assert att.shape == (2, g.n_edges) and np.abs(att).max() > 0
    dh = cfg.d_head
    checked = set()
    for e in range(g.n_edges):
        src, dst = g.ids[g.src[e]], g.ids[g.dst[e]]
        dkind = dst.split(":")[0].split(".", 2)[2]
        if dkind in checked and len(checked) < 6:
            continue
        checked.add(dkind)
        layer = int(src.split(".")[1])
        for side in range(2):
            n = tr.lengths[side]
            a_src = tr.positions(src)[side, :n]
            if dkind in ("attn.q", "mlp.neuron", "mlp.write"):
                want = g.weight[e] * a_src[n - 1]
            else:
                head = (int(src.split(":")[1]) if dkind == "attn.write" else int(dst.split(":")[1])) // dh
                pattern = head_attention(ab, layer, head)[0][side, :n]
                want = g.weight[e] * float((pattern * a_src).sum())
            assert att[side, e] == pytest.approx(want, rel=1e-4, abs=1e-5), (src, dst)
    assert checked >= {"attn.q", "attn.k", "attn.v", "attn.write", "mlp.neuron", "mlp.write"}
    np.testing.assert_array_equal(shown(att, "A-B"), att[0] - att[1])
    with pytest.raises(ValueError):
        shown(att, "C")


def test_bad_pairs_are_refused(setup) -> None:
    _, _, ab = setup
    for pair in (-1, 4):
        with pytest.raises(UserError, match="out of range"):
            trace_pair(ab, pair)


def test_the_cli_traces_the_demos_quote_value_node(capsys) -> None:
    """The value node the issue names (v:99 reads 0 at the last position) carries the quote type at the
    opening quote: its largest |value| on each side is at a quote token."""
    from engine.cli.main import main

    assert main(["trace", "demo", "--task", "single_double_quote", "--pair", "3", "--circuit",
                 "single_double_quote", "--baseline", "circuit", "--node", "blocks.1.attn.v:99", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for side in "AB":
        vals = np.array([0.0 if v is None else v for v in r["nodes"]["blocks.1.attn.v:99"][side]])
        assert len(vals) == len(r["tokens"][side])
        assert r["tokens"][side][int(np.argmax(np.abs(vals)))] in ('"', "'")
    assert len(r["edges"]) == 24 and {"src", "dst", "weight", "A", "B"} <= set(r["edges"][0])
    assert r["effects_estimated"] and all(e["node"].startswith("blocks.") for e in r["effects_estimated"])
    assert main(["trace", "demo", "--task", "single_double_quote", "--pair", "99"]) == 2
    assert capsys.readouterr().err.startswith("error: --pair 99 is out of range")


def test_the_cli_gives_a_heads_full_pattern(capsys) -> None:
    """--pattern 1:6: every query position's row on A and B; the last row is what `attention` reports."""
    from engine.cli.main import main

    assert main(["trace", "demo", "--task", "single_double_quote", "--pair", "1", "--pairs", "3",
                 "--pattern", "1:6", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["attention", "demo", "--task", "single_double_quote", "--layer", "1", "--head", "6",
                 "--pairs", "3", "--json"]) == 0
    att = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for side in "AB":
        rows = r["patterns"]["L1.H6"][side]
        assert [len(row) for row in rows] == list(range(1, len(r["tokens"][side]) + 1))  # causal
        assert all(sum(row) <= 1 + 1e-5 for row in rows)
        last = next(p for p in att["prompts"] if p["pair"] == 1 and p["side"] == side)
        np.testing.assert_allclose(rows[-1], last["weights"], atol=1e-6)
    assert main(["trace", "demo", "--task", "single_double_quote", "--pattern", "1:99"]) == 2
    assert "heads 0-7" in capsys.readouterr().err


def test_node_effects_gathered_per_site_equal_the_per_node_lookup(setup) -> None:
    from engine.scene.attribution import node_effects

    m, enc, ab = setup
    es = weight_edges(ab.model)
    ids = sorted(set(es.src) | set(es.dst)) + ["final_resid:3"]
    g = build_graph(ModelShape.from_config(m.cfg), ids, es.src, es.dst, es.weight)
    tr = trace_pair(ab, 1, (), (), "zero")
    got = node_effects(g, tr)
    for i, node in enumerate(g.ids):
        np.testing.assert_array_equal(got[:, i], tr.effect(node))
