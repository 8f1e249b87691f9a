"""Node effects ranked (engine.mechanism.rank, ``circuit-engine rank``) on hand-built models whose effects
are known: exact rows equal the live Ablator's results, nodes with no outgoing weight are flagged, the
attribution-patching estimate is the derivative of the task loss along the ablation, and the CLI on the
bundled demo."""

import json

import numpy as np
import pytest
import torch

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
from tests.engine.test_ablation import random_enc, random_means, random_nodes, sparse_model

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
