"""Node effects ranked (engine.mechanism.rank, ``circuit-engine rank``) on hand-built models whose effects
are known: exact rows equal the live Ablator's results, nodes with no outgoing weight are flagged, the
attribution-patching estimate is the derivative of the task loss along the ablation, and the CLI on the
bundled demo."""

import json

import numpy as np
import pytest
import torch

from engine.ablation import scan as scan_module
from engine.ablation.ablator import Ablator
from engine.ablation.core import last_logits_reference, mask_hooks
from engine.ablation.modes import circuit_mode_for
from engine.circuits.circuit import make_circuit
from engine.cli.main import main
from engine.errors import UserError
from engine.mechanism.rank import (NO_EFFECT_TOL, attribution_estimates, exact_effects, rank_circuit,
                                   rank_whole_model, spearman)
from engine.sites import NodeId, all_sites, site_width
from engine.tasks.lookup import two_way_loss
from tests.engine.test_ablation import OPTION_SETS, TOL, random_enc, random_means, random_nodes, sparse_model

DEAD = NodeId("blocks.0.mlp.neuron", 5)  # its outgoing weights are zeroed: ablating it changes nothing


def _model_with_dead_neuron(**kw):
    m = sparse_model(**kw)
    with torch.no_grad():
        m.blocks[0].mlp.c_proj.weight[:, DEAD.index] = 0.0
    return m


def _circuit(m, nodes):
    return make_circuit(m, "toy", nodes, "h", settings={"ablation": "mean"})


@pytest.mark.parametrize("mode", ["mean", "zero"])
def test_circuit_rows_are_the_ablators_exact_results(mode):
    m = _model_with_dead_neuron()
    nodes = random_nodes(m, np.random.default_rng(4), 25) + [DEAD]
    ab = Ablator(m, random_enc(), random_means(m), circuit=_circuit(m, nodes))
    r = rank_circuit(ab, mode)
    outside = circuit_mode_for(mode) or "mean"
    assert (r["mode"], r["baseline"], r["circuit_mode"]) == (mode, "toy/circuit", outside)
    assert (r["pairs"], r["n_sequences"]) == (8, 16)
    base = ab.evaluate(baseline="circuit", circuit_mode=outside)
    assert r["loss_baseline"] == base.loss and r["n_nodes"] == len(set(nodes))
    rows = {row["node"]: row for row in r["rows"]}
    assert set(rows) == {str(n) for n in nodes}
    for n in nodes:
        now = ab.evaluate([n], (), mode, "circuit", outside)
        d = np.abs(now.logit_diff.astype(np.float64) - base.logit_diff)
        row = rows[str(n)]
        assert row["delta_loss"] == pytest.approx(now.loss - base.loss, abs=1e-12)
        assert row["delta_accuracy"] == pytest.approx(100 * (now.accuracy - base.accuracy))
        assert row["mean_abs_dlogit_diff"] == pytest.approx(d.mean())
        assert row["max_abs_dlogit_diff"] == pytest.approx(d.max())
        assert row["no_effect"] == (d.max() < NO_EFFECT_TOL)
    assert rows[str(DEAD)]["no_effect"] and rows[str(DEAD)]["max_abs_dlogit_diff"] == 0.0
    assert rows[str(DEAD)]["delta_loss"] == 0.0
    assert r["n_no_effect"] == sum(row["no_effect"] for row in r["rows"]) >= 1
    effect = [abs(row["delta_loss"]) for row in r["rows"]]
    assert effect == sorted(effect, reverse=True)


def test_the_only_node_with_an_effect_ranks_first_and_the_rest_have_none():
    """Twenty MLP neurons of which only one has outgoing weights (the layer's writes are in the circuit
    whole, so they pass): only that neuron's ablation moves anything."""
    m = sparse_model()
    live = 7
    with torch.no_grad():
        w = m.blocks[1].mlp.c_proj.weight
        keep = w[:, live].clone()
        w.zero_()
        w[:, live] = keep
    assert keep.abs().sum() > 0
    neurons = [NodeId("blocks.1.mlp.neuron", i) for i in range(20)]
    writes = [NodeId("blocks.1.mlp.write", i) for i in range(m.cfg.d_model)]
    ab = Ablator(m, random_enc(), random_means(m), circuit=_circuit(m, neurons + writes))
    r = rank_circuit(ab, "mean")
    rows = [row for row in r["rows"] if row["node"].startswith("blocks.1.mlp.neuron:")]
    assert rows[0]["node"] == f"blocks.1.mlp.neuron:{live}" and not rows[0]["no_effect"]
    assert rows[0]["delta_loss"] != 0.0
    assert all(row["no_effect"] and row["delta_loss"] == 0.0 for row in rows[1:]) and len(rows) == 20


def _loss_with_keep(ab, site, index, keep):
    """Held-out task loss with one node's keep mask at ``keep`` (1: clean, 0: ablated), full forward."""
    mask = torch.ones(site_width(ab.cfg, site))
    mask[index] = keep
    with torch.no_grad():
        logits = last_logits_reference(ab.model, ab.tokens, ab.lengths, mask_hooks({site: mask}, ab.values("mean")))
    return float(two_way_loss(logits, ab.target, ab.foil).double().mean())


def test_estimate_is_the_derivative_of_the_loss_along_the_ablation():
    """Attribution patching estimates the change of loss when a node goes from kept (1) to ablated (0) by
    -dL/dkeep: a central finite difference of the loss along the keep mask (no AbsTopK: smooth) agrees,
    for one node of every site, sign included."""
    m = sparse_model(afrac=1.0)
    ab = Ablator(m, random_enc(n_pairs=12), random_means(m))
    est = attribution_estimates(ab, "mean")
    assert set(est) == set(all_sites(m.cfg, final=True))
    rng = np.random.default_rng(0)
    h = 1e-2
    for site in est:
        assert est[site].shape == (site_width(m.cfg, site),)
        i = int(np.argmax(np.abs(est[site]))) if rng.random() < 0.5 else int(rng.integers(site_width(m.cfg, site)))
        fd = (_loss_with_keep(ab, site, i, 1 - h) - _loss_with_keep(ab, site, i, 1 + h)) / (2 * h)
        assert est[site][i] == pytest.approx(fd, rel=2e-2, abs=2e-5), site


def test_whole_model_estimate_checked_exactly():
    m = _model_with_dead_neuron()
    ab = Ablator(m, random_enc(n_pairs=12), random_means(m))
    r = rank_whole_model(ab, "mean")
    widths = sum(site_width(m.cfg, s) for s in all_sites(m.cfg, final=True))
    assert (r["baseline"], r["n_nodes"], r["n_checked"], r["pairs"]) == ("full", widths, 50, 12)
    est = [abs(row["estimate"]) for row in r["rows"]]
    assert est == sorted(est, reverse=True)
    dead = next(row for row in r["rows"] if row["node"] == str(DEAD))
    assert dead["estimate"] == 0.0  # no outgoing weight: no gradient
    checked = r["rows"][:50]
    base, effects = exact_effects(ab, [row["node"] for row in checked], "mean", "full")
    assert r["loss_baseline"] == base.loss
    for row, e in zip(checked, effects):
        assert row["delta_loss"] == e.delta_loss and row["no_effect"] == e.no_effect
    assert all("delta_loss" not in row for row in r["rows"][50:])
    rho = spearman([row["estimate"] for row in checked], [row["delta_loss"] for row in checked])
    assert r["spearman_top50"] == rho and rho > 0.4  # the estimate ranks the largest effects sensibly
    assert r["timing_s"]["estimate"] > 0


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 400]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    ra, rb = np.array([1, 2.5, 2.5, 4]), np.array([1, 3, 2, 4])  # ties share their average rank
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    assert spearman([1, 1, 1], [1, 2, 3]) is None and spearman([1], [2]) is None


def test_bad_mode_or_no_circuit_is_a_user_error():
    m = sparse_model()
    ab = Ablator(m, random_enc(), random_means(m))
    with pytest.raises(UserError, match="needs an ablator with a circuit"):
        rank_circuit(ab, "mean")
    with pytest.raises(UserError, match="unknown ablation mode"):
        rank_whole_model(ab, "resample")


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cli_rank_demo_circuit_and_whole_model(capsys):
    assert main(["rank", "demo", "--task", "single_double_quote", "--pairs", "8", "--json"]) == 0
    r = _json(capsys)
    assert (r["task"], r["mode"], r["pairs"], r["baseline"], r["kind"]) == (
        "single_double_quote", "mean", 8, "single_double_quote/mean", "exact")
    assert r["n_nodes"] == len(r["rows"]) > 10 and isinstance(r["loss_baseline"], float)
    assert {"node", "delta_loss", "delta_accuracy", "mean_abs_dlogit_diff", "no_effect"} <= set(r["rows"][0])
    assert r["rows"][0]["node"].startswith("blocks.1.attn.v:")  # the quote type's value carries the answer
    assert main(["rank", "demo", "--task", "single_double_quote", "--pairs", "8", "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert "8 held-out pairs" in out and "with no effect" in out and len(out.strip().splitlines()) == 2 + 5 + 1
    assert main(["rank", "demo", "--task", "single_double_quote", "--pairs", "8", "--whole-model", "--mode", "zero",
                 "--json"]) == 0
    r = _json(capsys)
    assert (r["kind"], r["baseline"], r["mode"], r["n_checked"]) == ("estimate", "full", "zero", 50)
    assert r["spearman_top50"] is not None and "delta_loss" in r["rows"][0] and "estimate" in r["rows"][-1]


@pytest.mark.parametrize("args,match", [
    (["--task", "no_such_task"], "unknown task"),
    (["--task", "single_double_quote", "--circuit", "nope.json"], "circuit file not found"),
    (["--task", "single_double_quote", "--circuit", "no_such_task"], "no circuit for task"),
    (["--task", "single_double_quote", "--mode", "resample"], "invalid choice"),
    (["--task", "single_double_quote", "--circuit", "single_double_quote", "--whole-model"], "not both"),
    (["--task", "single_double_quote", "--pairs", "0"], "--pairs must be at least 1"),
    (["--task", "single_double_quote", "--top", "0"], "--top must be at least 1"),
])
def test_cli_rank_errors(args, match, capsys):
    assert main(["rank", "demo", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err and "Traceback" not in err


# -- the packed, batched scan (engine.ablation.scan) against one Ablator.evaluate per node


def prefix_enc(n_pairs=10, seed=0):
    """Pairs whose sides share a prefix (B is A with one token changed, as task pairs are), one pair
    twice over (identical prompts) and one side that is a prefix of another: the trie packs them."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_pairs):
        a = rng.integers(1, 30, size=int(rng.integers(6, 20)))
        b = a.copy()
        b[int(rng.integers(1, len(a)))] = int(rng.integers(1, 30))
        rows += [a, b]
    rows += [rows[0].copy(), rows[1].copy(), rows[2][:4].copy(), rows[3].copy()]
    tokens = np.zeros((len(rows), 20), dtype=np.int64)
    for i, r in enumerate(rows):
        tokens[i, :len(r)] = r
    target = rng.integers(0, 30, size=len(rows))
    from types import SimpleNamespace
    return SimpleNamespace(tokens=tokens, lengths=np.array([len(r) for r in rows]), target=target,
                           foil=(target + 1 + rng.integers(0, 28, size=len(rows))) % 30)


def _one_per_site(m, rng, extra=12):
    nodes = [NodeId(s, int(rng.integers(site_width(m.cfg, s)))) for s in all_sites(m.cfg, final=True)]
    return nodes + random_nodes(m, rng, extra)


def _assert_same(scanned, ab, nodes, tol, **kw):
    assert len(scanned) == len(nodes)
    for n, got in zip(nodes, scanned):
        ref = ab.evaluate([n], (), **kw)
        np.testing.assert_allclose(got.logit_diff, ref.logit_diff, atol=tol, rtol=0, err_msg=str(n))
        assert got.loss == pytest.approx(ref.loss, abs=tol) and got.accuracy == ref.accuracy
        assert (got.n_nodes, got.mode, got.baseline, got.circuit_mode) == (1, ref.mode, ref.baseline, ref.circuit_mode)


@pytest.mark.parametrize("mode,baseline,replicas", [("mean", "full", None), ("zero", "full", 3),
                                                    ("mean", "circuit", 1), ("zero", "circuit", None)])
def test_packed_scan_equals_one_evaluation_per_node(mode, baseline, replicas, device):
    """One node of every site of every layer (final_resid too) and random ones, on the full model and
    on top of a circuit: the packed, batched scan gives each node's exact result (1e-5, fp32; AbsTopK
    off, so no near-ties at the top-k boundary)."""
    m = sparse_model(afrac=1.0, alibi_heads=1).to(device)
    rng = np.random.default_rng(5)
    circuit = _circuit(m, random_nodes(m, rng, 60)) if baseline == "circuit" else None
    ab = Ablator(m, prefix_enc(), random_means(m), circuit=circuit)
    nodes = _one_per_site(m, rng) + (list(circuit.nodes[:20]) if circuit else [])
    pk = scan_module.Packing(ab)
    assert pk.n < int(ab.lengths.sum())  # shared prefixes are computed once
    scanned = scan_module.evaluate_each(ab, nodes, mode, baseline, replicas=replicas)
    _assert_same(scanned, ab, nodes, TOL[device], mode=mode, baseline=baseline)


@pytest.mark.parametrize("options", [dict(n_layer=1), dict(afrac=0.25), *OPTION_SETS.values()],
                         ids=["one-layer", "abstopk", *OPTION_SETS])
def test_packed_scan_with_model_options(options):
    """Every model option takes the same route in the packed half-blocks as in the Ablator; with
    AbsTopK (0.25) the batch shapes differ, so nearly every sequence must agree to 1e-5."""
    options = {"afrac": 1.0, **options}
    m = sparse_model(**options)
    ab = Ablator(m, prefix_enc(seed=1), random_means(m))
    nodes = _one_per_site(m, np.random.default_rng(6))
    scanned = scan_module.evaluate_each(ab, nodes, "mean", "full", replicas=4)
    for n, got in zip(nodes, scanned):
        diff = np.abs(got.logit_diff - ab.evaluate([n]).logit_diff)
        assert (diff <= 1e-5).mean() >= (0.95 if options["afrac"] < 1 else 1.0), (n, diff.max())


def test_packed_positions_hold_every_occurrence_of_their_prefix():
    m = sparse_model(afrac=1.0)
    ab = Ablator(m, prefix_enc(), random_means(m))
    pk = scan_module.Packing(ab)
    caches = ab._cache("full", None)
    for h in (1, 2 * m.cfg.n_layer - 2):  # residuals that depend on the whole prefix
        packed = pk.pack(c[0][h] for c in caches)
        for (bounds, _, _, _), idx, (rows, _, _, _) in zip(caches, pk.maps, ab._chunks):
            for b, n in enumerate(ab.lengths[rows].tolist()):
                np.testing.assert_allclose(packed[idx[b, :n]].numpy(), bounds[h][b, :n].numpy(), atol=1e-5)
    assert sum(int(o.sum()) for o in pk.own) == pk.n  # each prefix computed in exactly one place


def test_nodes_that_change_nothing_are_skipped(monkeypatch):
    """A neuron without outgoing weights, and (zero ablation) one whose incoming weights are zero so it
    is 0 everywhere already, get the baseline's result without a forward; the others still run."""
    m = _model_with_dead_neuron(afrac=1.0)
    silent = NodeId("blocks.1.mlp.neuron", 3)
    with torch.no_grad():
        m.blocks[1].mlp.c_fc.weight[silent.index] = 0.0
        if m.blocks[1].mlp.c_fc.bias is not None:
            m.blocks[1].mlp.c_fc.bias[silent.index] = 0.0
    ab = Ablator(m, prefix_enc(), random_means(m))
    forwards = []
    real = scan_module._hooks  # made for each packed forward, with the nodes it ablates
    monkeypatch.setattr(scan_module, "_hooks", lambda *a: forwards.append(a[1]) or real(*a))
    base = ab.evaluate(mode="zero")
    got = scan_module.evaluate_each(ab, [DEAD, silent], "zero")
    assert forwards == [] and all(np.array_equal(r.logit_diff, base.logit_diff) for r in got)
    _assert_same(got, ab, [DEAD, silent], 1e-5, mode="zero")  # the Ablator's own restart rounds differently
    live = NodeId("blocks.0.mlp.neuron", 6)
    got = scan_module.evaluate_each(ab, [DEAD, live, silent], "mean")  # mean: the silent one is not at its value
    assert [str(n) for f in forwards for n in f] == [str(live), str(silent)]
    _assert_same(got, ab, [DEAD, live, silent], 1e-5, mode="mean")


def test_resample_scan_falls_back_to_the_ablator():
    m = sparse_model(afrac=1.0)
    pool = {s: torch.randn(50, site_width(m.cfg, s)) for s in all_sites(m.cfg, final=True)}
    ab = Ablator(m, prefix_enc(), random_means(m), resample_pool=pool)
    nodes = random_nodes(m, np.random.default_rng(2), 6)
    _assert_same(scan_module.evaluate_each(ab, nodes, "resample"), ab, nodes, 0.0, mode="resample")


def test_closing_the_scan_stops_it_and_frees_the_ablator():
    m = sparse_model(afrac=1.0)
    ab = Ablator(m, prefix_enc(), random_means(m))
    nodes = random_nodes(m, np.random.default_rng(3), 20)
    gen = scan_module.scan(ab, nodes, "mean", replicas=2)
    first = next(gen)
    assert 0 < first.done < first.total == 20
    gen.close()
    assert ab._lock.acquire(blocking=False)  # not held after a close between forwards
    ab._lock.release()


@pytest.mark.parametrize("mode", ["mean", "zero"])
def test_rank_circuit_packed_equals_the_one_by_one_reference(mode):
    m = _model_with_dead_neuron(afrac=1.0)
    nodes = random_nodes(m, np.random.default_rng(4), 30) + [DEAD]
    ab = Ablator(m, prefix_enc(), random_means(m), circuit=_circuit(m, nodes))
    fast, ref = rank_circuit(ab, mode), rank_circuit(ab, mode, reference=True)
    assert (fast["scan"], ref["scan"]) == ("packed", "one by one")
    refs = {r["node"]: r for r in ref["rows"]}
    assert len(refs) == len(fast["rows"]) == len(set(nodes))  # the order may differ among near-equal effects
    for a in fast["rows"]:
        b = refs[a["node"]]
        assert a["delta_loss"] == pytest.approx(b["delta_loss"], abs=1e-5)
        # the flag agrees, but where the reference's restart moves logits by float rounding only
        assert a["no_effect"] == b["no_effect"] or b["max_abs_dlogit_diff"] < 1e-5


def test_bench_rank_prints_both_scans_side_by_side(capsys):
    assert main(["bench", "rank", "--task", "single_double_quote", "--pairs", "4", "--json"]) == 0
    r = _json(capsys)
    assert (r["benchmark"], r["task"], r["pairs4_nodes"]) == ("rank", "single_double_quote", 21)
    assert r["pairs4_positions_packed"] < r["pairs4_positions_padded"] and r["pairs4_max_abs_diff"] < 1e-5
    assert r["pairs4_one_by_one_s"] > 0 and r["pairs4_packed_s"] > 0 and r["pairs4_packed_1_replica_s"] > 0
