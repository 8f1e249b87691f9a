"""Pruning and faithfulness on a hand-built model whose answer is known."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.circuits.circuit import load_circuit
from engine.config import ModelConfig
from engine.pruning.faithfulness import faithfulness
from engine.model import GPT
from engine.pruning.prune import PruneConfig, prune
from engine.sites import NodeId, all_sites, site_width
from engine.train.loop import run_to_end

A, B, P, Q = 1, 2, 6, 7  # prompt tokens a/b decide the answer P/Q
EXPECTED = {NodeId("blocks.0.mlp.read", 3), NodeId("blocks.0.mlp.neuron", 5), NodeId("blocks.0.mlp.write", 7)}


def hand_built_model() -> GPT:
    """One layer; attention does nothing. Token a puts +1 on residual channel 3, b puts -1; MLP neuron 5
    reads channel 3 and writes channel 7; the unembedding reads channel 7: +logit for P, - for Q."""
    cfg = ModelConfig(vocab_size=8, n_layer=1, d_model=16, d_mlp=16, n_ctx=16, afrac=1.0, bigram_table=False)
    m = GPT(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        for blk_norm in (m.blocks[0].ln1, m.blocks[0].ln2, m.ln_f):
            blk_norm.weight.fill_(1.0)
        m.wte.weight[A, 3] = 1.0
        m.wte.weight[B, 3] = -1.0
        for t in (3, 4, 5):  # filler tokens live on channels 0..2
            m.wte.weight[t, t - 3] = 1.0
        m.wte.weight[A, 0] = m.wte.weight[B, 0] = 0.5
        mlp = m.blocks[0].mlp
        mlp.c_fc.weight[5, 3] = 2.0
        mlp.c_fc.bias[5] = 3.0  # GELU is ~linear around 3
        mlp.c_proj.weight[7, 5] = 1.0
        mlp.c_proj.bias[7] = -3.0
        m.lm_head.weight[P, 7] = 6.0
        m.lm_head.weight[Q, 7] = -6.0
    return m.eval()


def make_enc(n_pairs: int, seed: int):
    rng = np.random.default_rng(seed)
    rows, lengths, target, foil = [], [], [], []
    for _ in range(n_pairs):
        n = int(rng.integers(3, 10))
        filler = rng.integers(3, 6, size=n).tolist()
        for last, tgt, other in ((A, P, Q), (B, Q, P)):
            seq = filler + [last]
            rows.append(seq + [0] * (12 - len(seq)))
            lengths.append(len(seq))
            target.append(tgt)
            foil.append(other)
    return SimpleNamespace(tokens=np.array(rows), lengths=np.array(lengths), target=np.array(target),
                           foil=np.array(foil))


def means_of(model: GPT) -> dict:
    from engine.ablation.means import site_means
    rng = np.random.default_rng(0)
    batches = [rng.integers(1, 6, size=(16, 13)) for _ in range(4)]
    return site_means(model, batches)


def run_prune(model, means, cfg):
    events = []
    gen = prune(model, means, make_enc(128, 1), make_enc(48, 2), cfg, task_name="toy", model_hash="h")
    return run_to_end(gen, events.append), events


def test_pruning_finds_exactly_the_planted_nodes(device):
    model = hand_built_model()
    means = means_of(model)  # on the CPU; pruning moves them to the model's device
    model.to(device)
    cfg = PruneConfig(steps=150, batch_pairs=32, k_coefs=(1e-3, 1e-2), lr=3e-2, train_pairs=128, val_pairs=48)
    result, events = run_prune(model, means, cfg)
    assert result.passed
    c = result.circuit
    assert set(c.nodes) == EXPECTED
    assert c.n_edges == 2  # read3 -> neuron5 and neuron5 -> write7
    assert c.metrics["circuit_loss"] <= 0.15
    assert c.metrics["full_loss"] < 0.05
    assert [e.kind for e in events].count("candidate") == 2 and events[-1].kind == "done"


def test_bisection_meets_the_target_and_is_minimal():
    model = hand_built_model()
    means = means_of(model)
    for target in (0.15, 0.05):
        cfg = PruneConfig(steps=60, k_coefs=(1e-3,), lr=3e-2, target_loss=target, train_pairs=64, val_pairs=32)
        result, _ = run_prune(model, means, cfg)
        curve = result.circuit.metrics["curve"]
        assert result.circuit.metrics["circuit_loss"] <= target
        # every smaller prefix on the loss curve fails the target
        assert all(p["loss"] > target for p in curve if p["nodes"] < result.circuit.n_nodes)


def test_full_model_failing_the_target_is_a_user_error():
    from engine.errors import UserError
    model = hand_built_model()
    with torch.no_grad():
        model.lm_head.weight.mul_(0.01)  # answers barely above chance
    with pytest.raises(UserError, match="above the target"):
        run_prune(model, means_of(model), PruneConfig(steps=5, k_coefs=(1e-3,), train_pairs=16, val_pairs=16))


def test_faithfulness_numbers_by_hand(device):
    model = hand_built_model()
    means = means_of(model)
    model.to(device)
    result, _ = run_prune(model, means, PruneConfig(steps=150, k_coefs=(1e-2,), lr=3e-2, train_pairs=128,
                                                    val_pairs=48))
    f = faithfulness(model, result.circuit, make_enc(48, 2), means, n_random=10)
    for mode in ("mean", "zero"):
        # with the planted path ablated the two logits are (nearly) equal: loss ~ log 2
        assert f[mode]["necessity_loss"] > 0.5
        # nothing outside the path matters: ablating random other nodes keeps the clean loss
        assert f[mode]["random_loss_mean"] == pytest.approx(f[mode]["full_loss"], abs=0.05)
    assert f["mean"]["sufficiency_loss"] <= 0.15
    # zero-ablating read channel 3 leaves write 7 at gelu(3) - 3, which is ~ -0.012: loss by hand
    x7 = torch.nn.functional.gelu(torch.tensor(3.0)) - 3.0
    assert f["zero"]["necessity_loss"] == pytest.approx(float(np.log(2)), abs=0.1)
    assert abs(float(x7)) < 0.05


def test_circuit_json_round_trip(tmp_path):
    model = hand_built_model()
    result, _ = run_prune(model, means_of(model), PruneConfig(steps=60, k_coefs=(1e-2,), lr=3e-2,
                                                              train_pairs=64, val_pairs=32))
    path = result.circuit.save(tmp_path / "c.json")
    back = load_circuit(path, model, "h")
    assert back.nodes == result.circuit.nodes
    assert back.edges.src == result.circuit.edges.src and np.allclose(back.edges.weight, result.circuit.edges.weight)
    assert back.metrics["circuit_loss"] == pytest.approx(result.circuit.metrics["circuit_loss"])
    import networkx as nx
    result.circuit.save_graphml(tmp_path / "c.graphml")
    g = nx.read_graphml(tmp_path / "c.graphml")
    assert set(g.nodes) == {str(n) for n in EXPECTED} and g.number_of_edges() == 2
    from engine.errors import UserError
    with pytest.raises(UserError, match="another model"):
        load_circuit(path, model, "other-hash")


def test_calibration_reports_losses_before_and_after(device):
    model = hand_built_model()
    with torch.no_grad():
        model.lm_head.weight.mul_(0.1)  # under-confident: a logit scale > 1 helps
    means = means_of(model)
    result, _ = run_prune(model.to(device), means, PruneConfig(steps=60, k_coefs=(1e-2,), lr=3e-2, train_pairs=64,
                                                              val_pairs=32, calibrate=True, target_loss=0.6))
    m = result.circuit.metrics
    assert m["calibrated_loss"] < m["circuit_loss"]
    assert m["calibration_scale"] > 1.0


def test_progress_events_cover_sweep_bisection_and_curve():
    """Every phase reports progress (so a job can be cancelled between any two evaluations) and the
    job's fraction only grows, ending at 1."""
    model = hand_built_model()
    cfg = PruneConfig(steps=20, k_coefs=(1e-3, 1e-2), lr=3e-2, train_pairs=64, val_pairs=32)
    result, events = run_prune(model, means_of(model), cfg)
    kinds = [e.kind for e in events]
    assert {"setup", "step", "bisect", "candidate", "curve", "done"} <= set(kinds)
    assert kinds.count("curve") == len(result.circuit.metrics["curve"])
    fractions = [e.fraction for e in events]
    assert all(f is not None and 0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # the second k_coef's mask steps start where the first k_coef's share ends
    first_of_second = next(e for e in events if e.kind == "step" and e.k_coef == 1e-2)
    assert first_of_second.fraction > 0.95 * 0.5


# -- what pruning says about its own result (issue 15) ----------------------------------------------


def test_a_node_that_does_nothing_is_dropped_and_the_logits_stay():
    """A neuron reading the answer channel but writing nowhere changes no logit: pruning's last pass
    drops it (a planted no-op next to the planted path), and keeps every node that matters."""
    from engine.ablation.core import group_nodes, keep_masks_from_nodes
    from engine.pruning.prune import Evaluator, TaskBatch, _without_no_ops

    model = hand_built_model()
    with torch.no_grad():
        model.blocks[0].mlp.c_fc.weight[9, 3] = 2.0  # reads channel 3 like neuron 5; c_proj column 9 stays 0
    means = means_of(model)
    ev = Evaluator(model, means, TaskBatch(make_enc(48, 2)))
    nodes = sorted(EXPECTED) + [NodeId("blocks.0.mlp.neuron", 9)]
    kept, dropped = run_to_end(_without_no_ops(model, ev, nodes))
    assert dropped == [NodeId("blocks.0.mlp.neuron", 9)] and set(kept) == EXPECTED
    before = ev.logits(keep_masks_from_nodes(model, kept=group_nodes(nodes)))
    after = ev.logits(keep_masks_from_nodes(model, kept=group_nodes(kept)))
    assert torch.equal(before, after)


def test_no_random_baseline_when_no_same_size_set_exists():
    from engine.circuits.circuit import all_nodes, make_circuit

    model = hand_built_model()
    nodes = all_nodes(model)[:-3]  # all but 3 nodes: no set of its size lies outside it
    f = faithfulness(model, make_circuit(model, "toy", nodes, "h"), make_enc(16, 2), means_of(model))
    for mode in ("mean", "zero"):
        assert f[mode]["random_loss_mean"] is None and f[mode]["n_random"] == 0
        assert "3 nodes lie outside" in f[mode]["random_unavailable"] and "0 distinct same-size sets" in \
            f[mode]["random_unavailable"]


def test_verdicts():
    from engine.pruning.verdict import verdict

    good = {"mean": {"sufficiency_loss": 0.12, "necessity_loss": 0.8, "random_loss_mean": 0.07,
                     "random_loss_std": 0.01, "n_random": 10}}
    assert verdict(22, 2816, good, 0.15)["verdict"] == "faithful"
    big = verdict(2558, 2816, good, 0.15)
    assert big["verdict"] == "not_a_circuit" and "keeps 2,558 of the model's 2,816 nodes (91%" in big["warnings"][0]
    stuck = verdict(22, 2816, good, 0.15, {"unmoved_share": 0.6, "steps": 30})
    assert stuck["verdict"] == "not_a_circuit" and "did not converge: 60%" in stuck["reasons"][0]
    no_random = {"mean": {**good["mean"], "random_loss_mean": None, "random_loss_std": None,
                          "random_unavailable": "only 258 nodes lie outside"}}
    assert verdict(22, 2816, no_random, 0.15)["verdict"] == "not_faithful"
    weak = {"mean": {**good["mean"], "necessity_loss": 0.09}}
    r = verdict(22, 2816, weak, 0.15)
    assert r["verdict"] == "not_faithful" and any("hurts no more than" in w for w in r["warnings"])
    insufficient = {"mean": {**good["mean"], "sufficiency_loss": 0.3}}
    assert "not sufficient" in verdict(22, 2816, insufficient, 0.15)["reasons"][0]
    assert verdict(22, 2816, None, 0.15)["verdict"] == "not_faithful"


def test_too_few_mask_steps_are_not_a_circuit_and_enough_are_faithful():
    from engine.pruning.job import with_verdict

    model = hand_built_model()
    means = means_of(model)
    for steps, lr, word in ((3, 3e-3, "not_a_circuit"), (150, 3e-2, "faithful")):  # 3 steps: masks barely move
        result, _ = run_prune(model, means, PruneConfig(steps=steps, k_coefs=(1e-2,), lr=lr, train_pairs=128,
                                                        val_pairs=48))
        c = result.circuit
        assert c.metrics["convergence"]["steps"] == steps
        f = faithfulness(model, c, make_enc(48, 2), means)
        from dataclasses import replace

        judged = with_verdict(model, replace(c, metrics={**c.metrics, "faithfulness": f}))
        assert judged.metrics["verdict"]["verdict"] == word, judged.metrics["verdict"]
