"""Scaling up: the paper-1x preset end to end on CPU, mixed precision, and the training benchmark."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.ablation.ablator import Ablator
from engine.cli.bench import bench_train, default_bench_steps
from engine.config import preset, run_config_from_dict
from engine.ablation.means import site_means
from engine.pruning.prune import PruneConfig, prune
from engine.runs import load_run
from engine.sites import NodeId, all_sites
from engine.train.loop import Trainer, run_to_end, train


def test_bench_train_reports_tokens_per_second_and_peak_memory(capsys):
    from engine.cli.main import main

    r = bench_train("tiny", steps=2, warmup=1)
    assert r["tokens_per_s"] == r["sparse_tokens_per_s"] > 0 and r["dense_tokens_per_s"] > 0
    assert r["peak_memory_kind"] == "process_peak_rss" and r["peak_memory_mb"] >= r["rss_before_mb"] > 10
    assert r["timed_steps"] == 2 and r["precision"] == "fp32"
    assert default_bench_steps(preset("paper-1x")) == (3, 1)
    assert default_bench_steps(preset("demo")) == (30, 5)
    if not torch.cuda.is_available():
        assert main(["bench", "train", "--preset", "tiny", "--device", "cuda", "--json"]) == 2
        assert capsys.readouterr().err.startswith("error: --device cuda requested but CUDA is not available")


def test_bf16_autocast_trains_on_cpu_too(tmp_path, corpus_dir, tiny_config):
    cfg = tiny_config(corpus_dir, steps=8, eval_interval=4, checkpoint_interval=8)
    cfg = replace(cfg, train=replace(cfg.train, precision="bf16"))
    assert Trainer(cfg).bf16 and not Trainer(tiny_config(corpus_dir)).bf16  # 'auto' is fp32 on CPU
    events = []
    result = run_to_end(train(tmp_path / "r", cfg), events.append)
    evals = [e.val_loss for e in events if e.kind == "eval"]
    assert all(math.isfinite(v) for v in evals) and evals[-1] < evals[0]
    assert result.steps_done == 8


@pytest.mark.gpu
def test_cuda_training_uses_bf16_and_restores_tf32(tmp_path, corpus_dir, tiny_config):
    cfg = tiny_config(corpus_dir, steps=10, eval_interval=5, checkpoint_interval=10)
    before = torch.backends.cuda.matmul.allow_tf32
    tr = Trainer(cfg, "cuda")
    assert tr.bf16 and next(tr.model.parameters()).dtype == torch.float32  # autocast, fp32 master weights
    events = []
    res = run_to_end(train(tmp_path / "r", cfg, device="cuda"), events.append)
    assert torch.backends.cuda.matmul.allow_tf32 == before
    assert res.steps_done == 10 and res.final_val_loss < [e.val_loss for e in events if e.kind == "eval"][0]
    run = load_run(tmp_path / "r")  # the checkpoint loads back on the CPU
    assert next(run.model.parameters()).device.type == "cpu"


@pytest.mark.slow
def test_paper_1x_trains_prunes_and_ablates_on_cpu(tmp_path, corpus_dir):
    """The paper's 1x shapes (8 layers, d_model 256, d_mlp 1024, BPE) with a tiny batch and few steps."""
    cfg = run_config_from_dict({"data": {"folders": [str(corpus_dir)]},
                                "train": {"steps": 3, "batch_size": 2, "eval_interval": 3, "eval_batches": 1,
                                          "checkpoint_interval": 3}}, base=preset("paper-1x"))
    result = run_to_end(train(tmp_path / "run", cfg))
    assert result.steps_done == 3 and math.isfinite(result.final_val_loss)
    run = load_run(tmp_path / "run")
    m = run.config.model
    assert (m.n_layer, m.d_model, m.d_mlp, m.n_ctx, run.tokenizer.kind) == (8, 256, 1024, 256, "bpe")
    assert len(all_sites(m)) == 8 * 8

    rng = np.random.default_rng(0)
    means = site_means(run.model, [rng.integers(0, m.vocab_size, size=(2, 33))])  # a few tokens suffice here

    def enc(n_pairs: int, seed: int):  # token-level pairs: shapes are what this test is about
        r = np.random.default_rng(seed)
        lengths = r.integers(6, 30, size=2 * n_pairs)
        tokens = np.zeros((2 * n_pairs, 30), dtype=np.int64)
        for i, n in enumerate(lengths):
            tokens[i, :n] = r.integers(1, m.vocab_size, size=n)
        target = r.integers(0, m.vocab_size, size=2 * n_pairs)
        return SimpleNamespace(tokens=tokens, lengths=lengths, target=target, foil=(target + 1) % m.vocab_size)

    pcfg = PruneConfig(steps=2, k_coefs=(1e-3,), target_loss=50.0, train_pairs=8, val_pairs=8, batch_pairs=4)
    res = run_to_end(prune(run.model, means, enc(8, 1), enc(8, 2), pcfg, task_name="toy",
                           model_hash=run.model_hash))
    assert res.passed and res.circuit.n_nodes >= 1
    ab = Ablator(run.model, enc(8, 2), means, circuit=res.circuit)
    nodes = [NodeId("blocks.7.mlp.neuron", 5), NodeId("blocks.0.attn.v", 3)]
    fast, naive = ab.evaluate(nodes), ab.evaluate_naive(nodes)
    assert (np.abs(fast.logit_diff - naive.logit_diff) <= 1e-4).mean() >= 0.9
    assert math.isfinite(ab.evaluate(baseline="circuit").loss)
    json.dumps(res.circuit.metrics)  # the metrics stay plain JSON
