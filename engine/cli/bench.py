"""Benchmarks that print numbers (never timed tests): ``circuit-engine bench NAME``.

``train``: a few optimizer steps of a preset, sparse (after annealing, at the target density) and
dense, in one process; reports tokens/s, the step-time ratio and the peak memory of the sparse
trainer (CUDA: allocated by torch; CPU: the process's peak RSS). Knows nothing about Qt.
"""

from __future__ import annotations

import contextlib
import copy

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


def bench_mask_steps(loaded, means: dict[str, torch.Tensor], task: str, steps: int = 5,
                     batch_pairs: int = 32) -> dict[str, Any]:
    """Seconds per pruning mask step (forward + backward over ``batch_pairs`` pairs) on an already
    loaded run, with the sparse kernels and the dense reference side by side on the same batches."""
    from engine.jobs import run_to_end
    from engine.kernels import dense_reference
    from engine.pruning.prune import PruneConfig, _learn_masks, prepare, sweep_draws
    from engine.tasks.evaluate import resolve_task_arg, task_data

    t = resolve_task_arg(task, None)
    cfg = PruneConfig(steps=steps, batch_pairs=batch_pairs, train_pairs=max(64, batch_pairs), val_pairs=16)
    prep = prepare(loaded.model, means, task_data(loaded, t, cfg.train_pairs, "train"),
                   task_data(loaded, t, cfg.val_pairs, "val"), cfg)
    draws = sweep_draws(cfg, cfg.train_pairs)[0]
    out: dict[str, Any] = {}
    for label in ("sparse", "dense"):
        with (dense_reference() if label == "dense" else contextlib.nullcontext()):
            run_to_end(_learn_masks(prep.model, prep.values, prep.train, replace(cfg, steps=1), 1e-4, draws))  # warm
            t0 = time.perf_counter()
            run_to_end(_learn_masks(prep.model, prep.values, prep.train, cfg, 1e-4, draws))
            out[f"{label}_s_per_mask_step"] = round((time.perf_counter() - t0) / steps, 3)
    out["mask_step_speedup"] = round(out["dense_s_per_mask_step"] / max(1e-9, out["sparse_s_per_mask_step"]), 2)
    from engine.topk import backend as topk_backend
    return {"mask_steps_timed": steps, "batch_pairs": batch_pairs, "abs_topk": topk_backend(),
            "dense_path": "dense products and torch.topk", **out}


def bench_prune(run: str = "demo", task: str = "single_double_quote", steps: int | None = None,
                whole: bool | None = None) -> dict[str, Any]:
    """Seconds per mask step (sparse and dense side by side) and, for the demo-sized runs or with
    ``whole``, seconds to prune one task with the default settings (means already cached)."""
    from engine.ablation.means import load_means
    from engine.pruning.job import prune_run
    from engine.pruning.prune import PruneConfig
    from engine.runs import load_run

    loaded = load_run(run)
    t0 = time.perf_counter()
    means = load_means(loaded, "mean")
    means_s = time.perf_counter() - t0
    result: dict[str, Any] = {"benchmark": "prune", "run": str(loaded.path), "task": task,
                              "threads": torch.get_num_threads(), "means_seconds": round(means_s, 2),
                              **bench_mask_steps(loaded, means, task)}
    if whole is None:
        whole = loaded.config.model.d_model < 512 or steps is not None
    if not whole:
        return result
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
    return {**result, "prune_seconds": round(total, 2), "k_coefs": list(cfg.k_coefs),
            "steps_per_k_coef": cfg.steps, "nodes": circuit.n_nodes, "edges": circuit.n_edges,
            "circuit_loss": round(circuit.metrics["circuit_loss"], 4)}


def _load_kernels() -> tuple[str, float]:
    """(AbsTopK's backend, seconds): numba's import and the compiled kernels' load (or first compile),
    once per process, so that no timed evaluation pays for it."""
    from engine.ablation.packed import warm_kernels
    from engine.topk import backend

    t0 = time.perf_counter()
    name = backend()
    warm_kernels()
    return name, round(time.perf_counter() - t0, 3)


def bench_ablate(run: str = "demo", task: str = "single_double_quote", n_pairs: int | None = None,
                 repeats: int | None = None) -> dict[str, Any]:
    """Latency of one live-ablation evaluation per layer depth (random nodes, fixed seed), with the
    sparse kernels and the dense reference side by side in this process: the clean cache (first
    evaluate), p50/p95 per layer and the naive full forward. Paper-scale runs default to 24 pairs and
    fewer repeats (each dense click there takes seconds)."""
    from engine.ablation.setup import make_ablator
    from engine.kernels import dense_reference
    from engine.sites import NodeId, all_sites, parse_site, site_width

    from engine.config import load_run_config
    from engine.runs import CONFIG_FILE, check_run_dir

    big = load_run_config(check_run_dir(run) / CONFIG_FILE).model.d_model >= 512
    n_pairs = n_pairs or (24 if big else 64)
    ab = make_ablator(run, task, n_pairs=n_pairs)
    cfg = ab.cfg
    repeats = repeats or (8 if big else 40)
    layers = sorted({0, cfg.n_layer // 2, cfg.n_layer - 1}) if big else list(range(cfg.n_layer))
    p = lambda xs, q: round(float(np.percentile(xs, q)), 3)  # noqa: E731

    def random_node(rng, layer: int) -> NodeId:
        sites = [s for s in all_sites(cfg) if parse_site(s)[0] == layer]
        s = sites[rng.integers(len(sites))]
        return NodeId(s, int(rng.integers(site_width(cfg, s))))

    def one_path(label: str) -> dict[str, Any]:
        fresh = copy.copy(ab)
        fresh._caches = {}
        t0 = time.perf_counter()
        fresh.evaluate()
        out: dict[str, Any] = {f"{label}_clean_cache_s": round(time.perf_counter() - t0, 3)}
        rng = np.random.default_rng(0)  # the same nodes on both paths (and, on the demo, as before this bench had paths)
        for layer in reversed(layers):
            fresh.evaluate([random_node(rng, layer)])  # warm up
            ms = [fresh.evaluate([random_node(rng, layer)]).elapsed_ms for _ in range(repeats)]
            out[f"{label}_p50_ms_layer{layer}"] = p(ms, 50)
            out[f"{label}_p95_ms_layer{layer}"] = p(ms, 95)
        naive = [fresh.evaluate_naive([random_node(rng, 0)]).elapsed_ms for _ in range(max(2, repeats // 4))]
        out[f"{label}_naive_p50_ms"] = p(naive, 50)
        return out

    backend, kernel_s = _load_kernels()
    sparse = one_path("sparse")
    with dense_reference():
        dense = one_path("dense")
    first, last = layers[0], layers[-1]
    return {"benchmark": "ablate", "run": run, "task": task, "pairs": n_pairs, "sequences": ab.n,
            "abs_topk": backend, "kernels_load_s": kernel_s,
            "dense_path": "dense products, torch.topk and attention on padded chunks",
            "mean_prompt_tokens": round(float(ab.lengths.float().mean()), 1), "threads": torch.get_num_threads(),
            "shape": f"{cfg.n_layer} layers, d_model {cfg.d_model}, d_mlp {cfg.d_mlp}",
            "repeats": repeats, **sparse, **dense,
            "p50_ms_first_layer": sparse[f"sparse_p50_ms_layer{first}"],
            "p50_ms_last_layer": sparse[f"sparse_p50_ms_layer{last}"],
            "speedup_vs_dense_naive": round(dense["dense_naive_p50_ms"] / max(1e-9, sparse[f"sparse_p50_ms_layer{first}"]), 1),
            "speedup_first_layer_vs_dense": round(dense[f"dense_p50_ms_layer{first}"] / max(1e-9, sparse[f"sparse_p50_ms_layer{first}"]), 2)}


def bench_rank(run: str = "demo", task: str = "bracket_counting", pairs: tuple[int, ...] = (24, 64),
               repeats: int = 3) -> dict[str, Any]:
    """The exact node-effect scan of a task's circuit (``circuit-engine rank``), each circuit node ablated
    alone on top of the circuit: the one-by-one reference (one ``Ablator.evaluate`` per node) and the
    packed scan (engine.ablation.scan: shared prefixes once, nodes grouped by restart point and
    batched; also with one node per forward) side by side on one ablator, interleaved, the median of
    ``repeats`` each, per pair count (the app's 24 and the CLI's 64 by default); the largest difference
    of any logit difference between the two says they agree."""
    from engine.ablation.modes import circuit_mode_for
    from engine.ablation.scan import REPLICA_POSITIONS, Packing, evaluate_each
    from engine.ablation.setup import make_ablator

    out: dict[str, Any] = {"benchmark": "rank", "run": run, "task": task, "threads": torch.get_num_threads(),
                           "repeats": repeats, "mode": "mean"}
    outside = circuit_mode_for("mean")
    for n_pairs in pairs:
        ab = make_ablator(run, task, circuit=task, n_pairs=n_pairs)
        nodes = list(ab.circuit.nodes)
        ab.evaluate((), (), "mean", "circuit", outside)  # the clean-run cache, as in rank
        pk = Packing(ab)
        ways = {"one_by_one": lambda: [ab.evaluate([n], (), "mean", "circuit", outside) for n in nodes],
                "packed": lambda: evaluate_each(ab, nodes, "mean", "circuit", outside),
                "packed_1_replica": lambda: evaluate_each(ab, nodes, "mean", "circuit", outside, replicas=1)}
        times: dict[str, list[float]] = {k: [] for k in ways}
        results: dict[str, list] = {}
        for _ in range(repeats):
            for name, way in ways.items():
                t0 = time.perf_counter()
                results[name] = way()
                times[name].append(time.perf_counter() - t0)
        diff = max(float(np.abs(a.logit_diff - b.logit_diff).max())
                   for a, b in zip(results["one_by_one"], results["packed"]))
        med = {k: float(np.median(v)) for k, v in times.items()}
        p = f"pairs{n_pairs}_"
        out.update({p + "nodes": len(nodes), p + "positions_padded": sum(int(m.numel()) for m in pk.maps),
                    p + "positions_packed": pk.n, p + "replicas": max(1, REPLICA_POSITIONS // pk.n),
                    **{p + k + "_s": round(v, 3) for k, v in med.items()},
                    p + "speedup": round(med["one_by_one"] / med["packed"], 2), p + "max_abs_diff": diff})
    return out
