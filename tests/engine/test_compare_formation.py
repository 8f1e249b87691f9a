"""Sparse vs dense comparison and circuit formation on two tiny runs that kept checkpoints.

Pruning settings are tiny (2 mask steps, one k_coef, 16 held-out pairs); the target is set from
the models' own full-model losses so that every pruning passes with a non-trivial circuit size.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from engine import api
from engine.circuits.circuit import load_circuit
from engine.cli.main import main
from engine.pruning.compare import compare
from engine.errors import UserError
from engine.pruning.formation import formation, formation_dir, load_formation
from engine.pruning.prune import PruneConfig
from engine.runs import load_run, read_log
from engine.tasks.lookup import get_task, last_logits, task_metrics
from engine.train.loop import run_to_end, train

TASK = "single_double_quote"
SMALL = dict(steps=2, k_coefs=(0.01,), train_pairs=32, val_pairs=16, batch_pairs=8)


@pytest.fixture(scope="module")
def twin_runs(tmp_path_factory, corpus_factory, tiny_config):
    """(sparse, dense): 30 tiny steps each with a checkpoint every 10 steps and an evaluation at each."""
    root = tmp_path_factory.mktemp("twins")
    cfg = tiny_config(corpus_factory(root / "corpus"), steps=30, checkpoint_interval=10, eval_interval=10)
    run_to_end(train(root / "sparse", cfg))
    run_to_end(train(root / "dense", replace(cfg, sparsity=replace(cfg.sparsity, enabled=False))))
    return root / "sparse", root / "dense"


def full_loss(run_dir: Path, checkpoint: int | None = None, n_pairs: int = SMALL["val_pairs"]) -> float:
    run = load_run(run_dir, checkpoint=checkpoint)
    enc = api.task_data(run, get_task(TASK), n_pairs, "val", 0)
    return task_metrics(last_logits(run.model, enc), enc).loss


def closest_dense_step(sparse: Path, dense: Path) -> int:
    """Independently of engine.pruning.compare: the dense checkpoint whose logged val loss is nearest the
    sparse run's last one."""
    s_val = [e["val_loss"] for e in read_log(sparse) if e.get("kind") == "eval"][-1]
    d_evals = {e["step"]: e["val_loss"] for e in read_log(dense) if e.get("kind") == "eval"}
    steps = sorted(int(p.stem.split("_")[1]) for p in (dense / "checkpoints").glob("step_*.json"))
    return min(steps, key=lambda s: abs(d_evals[s] - s_val))


def test_compare_ratio_matched_checkpoint_and_csv(twin_runs, tmp_path):
    sparse, dense = twin_runs
    step = closest_dense_step(sparse, dense)
    target = max(full_loss(sparse), full_loss(dense), full_loss(dense, step)) + 0.005
    events = []
    out_csv = tmp_path / "curves.csv"
    result = run_to_end(compare(sparse, dense, [TASK], PruneConfig(target_loss=target, **SMALL), csv_path=out_csv),
                        events.append)
    row = result["tasks"][0]
    s_edges = load_circuit(Path(row["sparse_circuit"])).n_edges
    d_edges = load_circuit(Path(row["dense_circuit"])).n_edges
    assert (row["sparse_edges"], row["dense_edges"]) == (s_edges, d_edges)
    assert row["ratio"] == pytest.approx(max(1, d_edges) / max(1, s_edges))
    assert result["ratio"] == pytest.approx(result["dense_edges_geomean"] / result["sparse_edges_geomean"])
    assert result["sparse_val_loss"] == [e["val_loss"] for e in read_log(sparse) if e.get("kind") == "eval"][-1]
    # matched pretraining loss: the closest dense checkpoint, pruned on that checkpoint's weights
    m = result["matched"]
    assert m["step"] == step and m["sparse_val_loss"] == result["sparse_val_loss"]
    if step != 30:
        matched_circ = load_circuit(Path(row["dense_matched_circuit"]))
        assert matched_circ.settings["checkpoint"] == step
        assert matched_circ.model_hash == load_run(dense, checkpoint=step).model_hash
        assert m["ratio"] == pytest.approx(max(1, matched_circ.n_edges) / max(1, s_edges))
    else:  # the latest checkpoint is the final model: the same-steps circuits answer both
        assert m["same_as_final"] and m["ratio"] == pytest.approx(result["ratio"])
    # the CSV holds every circuit's loss-vs-size curve, labelled by model
    with open(out_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for label in ("sparse", "dense") + (("dense_matched",) if step != 30 else ()):
        curve = load_circuit(Path(row[f"{label}_circuit"])).metrics["curve"]
        mine = [r for r in rows if r["model"] == label]
        assert [(int(r["nodes"]), int(r["edges"])) for r in mine] == [(p["nodes"], p["edges"]) for p in curve]
        assert [float(r["loss"]) for r in mine] == pytest.approx([p["loss"] for p in curve])
    assert len(rows) == len(result["curves"])
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


def test_compare_refuses_a_dense_run_with_another_tokenizer(twin_runs, tmp_path):
    from engine.data.tokenizer import BPETokenizer, save_tokenizer

    sparse, dense = twin_runs
    other = Path(shutil.copytree(dense, tmp_path / "bpe_dense"))
    save_tokenizer(BPETokenizer.train(["def f(x):\n    return x\n" * 50], vocab_size=300), other / "tokenizer.json")
    with pytest.raises(UserError, match="different tokenizers"):
        run_to_end(compare(sparse, other, [TASK], PruneConfig(**SMALL)))


def test_compare_cli_json(twin_runs, tmp_path, capsys):
    sparse, dense = twin_runs
    target = max(full_loss(sparse), full_loss(dense)) + 0.005
    out_csv = tmp_path / "c.csv"
    args = ["compare", str(sparse), str(dense), "--tasks", TASK, "--steps", "2", "--k-coefs", "0.01", "--val-pairs",
            str(SMALL["val_pairs"]), "--target-loss", str(target), "--same-steps-only", "--csv", str(out_csv), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["tasks"][0]["task"] == TASK and out["matched"] is None and "curves" not in out
    assert out["ratio"] == pytest.approx(max(1, out["tasks"][0]["dense_edges"]) / max(1, out["tasks"][0]["sparse_edges"]))
    assert {r["model"] for r in csv.DictReader(open(out_csv, newline=""))} == {"sparse", "dense"}
    assert main(["compare", str(sparse), str(dense), "--tasks", "no_such_task"]) == 2
    assert "unknown task" in capsys.readouterr().err


def test_formation_one_circuit_per_formed_checkpoint(twin_runs):
    sparse, _ = twin_runs
    losses = {s: full_loss(sparse, s) for s in (10, 20, 30)}
    ordered = sorted(losses.values())
    target = (ordered[1] + ordered[2]) / 2  # two checkpoints pass, the worst one is above the target
    summary = run_to_end(formation(sparse, TASK, cfg=PruneConfig(target_loss=target, **SMALL)))
    rows = {r["step"]: r for r in summary["steps"]}
    assert sorted(rows) == [10, 20, 30]
    for step, row in rows.items():
        assert row["full_loss"] == pytest.approx(losses[step], abs=1e-6)
        if losses[step] > target:
            assert row["status"] == "above target" and row["circuit"] is None
            continue
        assert row["status"] == "circuit"
        path = Path(row["circuit"])
        assert path == formation_dir(sparse, TASK) / f"step_{step:07d}.json"
        ckpt = load_run(sparse, checkpoint=step)
        circ = load_circuit(path, ckpt.model, ckpt.model_hash)  # made with that checkpoint's weights
        assert circ.settings["checkpoint"] == step and (circ.n_nodes, circ.n_edges) == (row["nodes"], row["edges"])
        assert circ.name == f"mean @ step {step}"
        assert circ.metrics["circuit_loss"] <= target
        with pytest.raises(UserError, match="another model"):
            load_circuit(path, None, load_run(sparse).model_hash)
    assert [r["status"] for r in rows.values()].count("circuit") == 2
    assert load_formation(sparse, TASK) == summary
    assert not (sparse / "circuits" / TASK / "mean.json").exists()  # formation keeps out of the circuit list


def test_formation_cancel_keeps_finished_checkpoints_and_cli(twin_runs, tmp_path, capsys):
    sparse, _ = twin_runs
    run = Path(shutil.copytree(sparse, tmp_path / "run", ignore=shutil.ignore_patterns("formation")))
    gen = formation(run, TASK, cfg=PruneConfig(target_loss=5.0, **SMALL))
    for ev in gen:
        if ev.kind == "candidate" and ev.message.startswith("step 10 ") and "full model loss" in ev.message:
            break  # the first checkpoint is finished
    gen.close()  # cancel
    assert [r["step"] for r in load_formation(run, TASK)["steps"]] == [10]
    assert main(["formation", str(run), "--task", TASK, "--checkpoints", "20", "30", "--steps", "2",
                 "--k-coefs", "0.01", "--val-pairs", "16", "--target-loss", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["step"] for r in out["steps"]] == [20, 30] and all(Path(r["circuit"]).exists() for r in out["steps"])
    assert out["settings"]["val_pairs"] == 16
    assert main(["formation", str(run), "--task", TASK, "--checkpoints", "25"]) == 2
    assert "no checkpoint at step 25" in capsys.readouterr().err


def test_formation_needs_checkpoints(twin_runs, tmp_path, capsys):
    sparse, _ = twin_runs
    bare = Path(shutil.copytree(sparse, tmp_path / "bare", ignore=shutil.ignore_patterns("checkpoints")))
    with pytest.raises(UserError, match="needs at least 2"):
        run_to_end(formation(bare, TASK))
    assert main(["formation", str(bare), "--task", TASK]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "0 checkpoints" in err and "Traceback" not in err
    assert main(["formation", "demo", "--task", TASK]) == 2
    assert "bundled demo ships only its final weights" in capsys.readouterr().err


def test_means_can_be_cancelled_between_batches(twin_runs, tmp_path):
    from engine.ablation.means import means_path, means_steps

    sparse, _ = twin_runs
    run = load_run(Path(shutil.copytree(sparse, tmp_path / "run",
                                        ignore=shutil.ignore_patterns("means.safetensors", "checkpoint_means"))))
    gen = means_steps(run)
    first, second = next(gen), next(gen)
    assert first == (0, second[1]) and second[0] == 1 and second[1] > 2  # (batches done, batches)
    gen.close()
    assert not means_path(run).exists()  # a cancelled computation caches nothing
    seen = []
    means = run_to_end(means_steps(run), seen.append)
    assert seen[0][0] == 0 and [d for d, _ in seen] == list(range(seen[-1][1] + 1))
    assert means_path(run).exists() and set(means) == set(api.load_means(run))
