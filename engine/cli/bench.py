"""Benchmarks that print numbers (never timed tests): ``circuit-engine bench NAME``.

``train``: a few optimizer steps of a preset, sparse (after annealing, at the target density) and
dense, in one process; reports tokens/s, the step-time ratio and the peak memory of the sparse
trainer (CUDA: allocated by torch; CPU: the process's peak RSS). Knows nothing about Qt.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from engine.config import RunConfig, preset
from engine.train.distributed import resolve_device
from engine.train.loop import Trainer, uses_bf16


def _timed_step(trainer: Trainer, step: int, tokens: torch.Tensor) -> float:
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    trainer.step(step, tokens)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: the most memory torch has allocated on the device since the last reset. CPU: the
    process's peak resident set size (interpreter and torch included)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _time_trainers(cfgs: dict[str, RunConfig], steps: int, warmup: int, device: torch.device
                   ) -> dict[str, dict[str, float]]:
    """Median step time of each config. Each trainer is built and warmed up in turn (its peak memory
    is read then, before the next one exists); the timed steps alternate between the trainers, so a
    burst of load on the machine hits all of them alike."""
    any_cfg = next(iter(cfgs.values()))
    first = int(0.6 * any_cfg.train.steps)  # past the annealing: the sparse model is at its target density
    gen = torch.Generator().manual_seed(0)
    B, T = any_cfg.train.batch_size, any_cfg.model.n_ctx
    batches = [torch.randint(0, any_cfg.model.vocab_size, (B, T + 1), generator=gen) for _ in range(warmup + steps)]
    trainers: dict[str, Trainer] = {}
    peaks: dict[str, float] = {}
    for name, cfg in cfgs.items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        tr = trainers[name] = Trainer(cfg, device)
        tr.sparsifier.project(first / any_cfg.train.steps)
        for i in range(warmup):
            _timed_step(tr, first + i, batches[i].to(device))
        peaks[name] = peak_memory_mb(device)
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for i in range(warmup, warmup + steps):
        for name, tr in trainers.items():
            times[name].append(_timed_step(tr, first + i, batches[i].to(device)))
    mask_times: list[float] = []
    sparse = trainers.get("sparse")
    if sparse is not None:  # the projection alone (it is also inside every sparse step above)
        for i in range(5):
            t0 = time.perf_counter()
            sparse.sparsifier.project(1.0)
            if device.type == "cuda":
                torch.cuda.synchronize()
            mask_times.append(time.perf_counter() - t0)
    out = {}
    for name, ts in times.items():
        med = float(np.median(ts))
        out[name] = {"step_ms_p50": 1000 * med, "tokens_per_s": B * T / med, "peak_memory_mb": peaks[name],
                     "mask_ms_p50": 1000 * float(np.median(mask_times)) if mask_times else 0.0}
    return out


def default_bench_steps(cfg: RunConfig) -> tuple[int, int]:
    """(timed steps, warm-up steps): 30 + 5 for the CPU presets; 3 + 1 for a model as big as
    paper-1x, whose step takes seconds on a laptop CPU (the whole benchmark stays a few minutes)."""
    m = cfg.model
    work = cfg.train.batch_size * m.n_ctx * m.n_layer * m.d_model * m.d_mlp
    return (30, 5) if work <= 32 * 128 * 2 * 128 * 512 else (3, 1)


def bench_train(preset_name: str = "demo", steps: int | None = None, warmup: int | None = None,
                device: str = "cpu") -> dict[str, Any]:
    """Sparse vs dense step time and peak memory of a preset on random tokens (the cost does not
    depend on the text)."""
    cfg = preset(preset_name)
    if cfg.data.tokenizer == "bpe":
        cfg = replace(cfg, model=replace(cfg.model, vocab_size=cfg.data.bpe_vocab))
    dev = resolve_device(device)
    default_steps, default_warmup = default_bench_steps(cfg)
    steps, warmup = steps or default_steps, default_warmup if warmup is None else warmup
    base_rss = peak_memory_mb(torch.device("cpu"))
    res = _time_trainers({"sparse": cfg, "dense": replace(cfg, sparsity=replace(cfg.sparsity, enabled=False))},
                         steps, warmup, dev)
    sparse, dense = res["sparse"], res["dense"]
    return {
        "benchmark": "train", "preset": preset_name, "device": str(dev), "threads": torch.get_num_threads(),
        "precision": "bf16" if uses_bf16(cfg, dev) else "fp32",
        "batch_size": cfg.train.batch_size, "n_ctx": cfg.model.n_ctx, "timed_steps": steps, "warmup_steps": warmup,
        "tokens_per_s": round(sparse["tokens_per_s"], 1),
        "sparse_tokens_per_s": round(sparse["tokens_per_s"], 1),
        "dense_tokens_per_s": round(dense["tokens_per_s"], 1),
        "sparse_step_ms": round(sparse["step_ms_p50"], 2), "dense_step_ms": round(dense["step_ms_p50"], 2),
        "mask_ms": round(sparse["mask_ms_p50"], 2),
        "step_ratio": round(sparse["step_ms_p50"] / dense["step_ms_p50"], 3),
        "peak_memory_mb": round(sparse["peak_memory_mb"], 1),
        "peak_memory_kind": "cuda_max_allocated" if dev.type == "cuda" else "process_peak_rss",
        **({} if dev.type == "cuda" else {"rss_before_mb": round(base_rss, 1)}),
    }


def bench_prune(run: str = "demo", task: str = "single_double_quote", steps: int | None = None) -> dict[str, Any]:
    """Seconds to prune one task of a run with the default settings (means already cached)."""
    from engine.ablation.means import load_means
    from engine.pruning.job import prune_run
    from engine.pruning.prune import PruneConfig
    from engine.runs import load_run

    loaded = load_run(run)
    t0 = time.perf_counter()
    load_means(loaded, "mean")
    means_s = time.perf_counter() - t0
    cfg = PruneConfig(steps=steps) if steps else PruneConfig()
    gen = prune_run(run, task, None, cfg, name="bench", with_faithfulness=False)
    t0 = time.perf_counter()
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            circuit, path = stop.value
            break
    total = time.perf_counter() - t0
    path.unlink(missing_ok=True)
    return {"benchmark": "prune", "run": str(loaded.path), "task": task, "threads": torch.get_num_threads(),
            "prune_seconds": round(total, 2), "means_seconds": round(means_s, 2), "k_coefs": list(cfg.k_coefs),
            "steps_per_k_coef": cfg.steps, "nodes": circuit.n_nodes, "edges": circuit.n_edges,
            "circuit_loss": round(circuit.metrics["circuit_loss"], 4)}


def bench_ablate(run: str = "demo", task: str = "single_double_quote", n_pairs: int = 64, repeats: int = 40) -> dict[str, Any]:
    """Latency of one live-ablation evaluation: a node in the last layer, a node in the first layer,
    and the naive full forward, each over random nodes (fixed seed)."""
    from engine.ablation.setup import make_ablator
    from engine.sites import NodeId, all_sites, parse_site, site_width

    ab = make_ablator(run, task, n_pairs=n_pairs)
    cfg = ab.cfg
    rng = np.random.default_rng(0)

    def random_node(layer: int) -> NodeId:
        sites = [s for s in all_sites(cfg) if parse_site(s)[0] == layer]
        s = sites[rng.integers(len(sites))]
        return NodeId(s, int(rng.integers(site_width(cfg, s))))

    def timings(fn, layer: int) -> list[float]:
        fn([random_node(layer)])  # warm up
        return [fn([random_node(layer)]).elapsed_ms for _ in range(repeats)]

    last = timings(ab.evaluate, cfg.n_layer - 1)
    first = timings(ab.evaluate, 0)
    naive = timings(ab.evaluate_naive, 0)
    p = lambda xs, q: round(float(np.percentile(xs, q)), 3)  # noqa: E731
    return {"benchmark": "ablate", "run": run, "task": task, "pairs": n_pairs, "sequences": ab.n,
            "mean_prompt_tokens": round(float(ab.lengths.float().mean()), 1), "threads": torch.get_num_threads(),
            "p50_ms_last_layer": p(last, 50), "p95_ms_last_layer": p(last, 95),
            "p50_ms_first_layer": p(first, 50), "p95_ms_first_layer": p(first, 95),
            "naive_p50_ms": p(naive, 50), "speedup": round(p(naive, 50) / max(1e-9, p(first, 50)), 2)}
