"""Prune many tasks of one run in one command, with the work split over torchrun processes.

The expensive part of pruning a task is its k_coef sweep: for every k_coef, learn node masks and
bisect the ranking (engine.pruning.prune.sweep_one). Those (task, k_coef) jobs are independent, and each one
replays exactly the random draws the sequential sweep would make, so a job gives the same answer on
any process. Rank r runs jobs r, r + world, r + 2*world, ...; the candidates and mask logits go to
rank 0 (JSON and raw float32, no pickles), which, per task in k_coef order, picks the circuit exactly
as the sequential sweep does (engine.pruning.prune.finish), runs the faithfulness checks and writes the file.
Without torchrun the same code runs every job in turn: the result is the same circuit, and the same
as ``circuit-engine prune RUN --task T`` with the same options.

Rank 0 opens the run (and computes the ablation means once); the other ranks get its config,
tokenizer, weights and means as bytes into a temporary folder, so no shared disk is needed.
Knows nothing about Qt or printing.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Generator

import numpy as np
import torch

from engine.ablation.means import load_means
from engine.checkpoint import MODEL_FILE
from engine.train.distributed import SINGLE, DistContext, from_main, gather_to_main, resolve_device, split_jobs
from engine.errors import UserError
from engine.pruning.prune import PruneConfig, PruneEvent, Prepared, check_full, finish, prepare, sweep_one
from engine.runs import CONFIG_FILE, TOKENIZER_FILE, LoadedRun, load_run
from engine.sites import all_sites, site_width

MEANS_FILE = "means.safetensors"


def _open_run(run_dir: str | Path, tasks: list[str] | None) -> tuple[LoadedRun, list[str]]:
    """Rank 0: load the run, check the task names, make sure the ablation means are cached."""
    from engine.ablation.means import means_path
    from engine.tasks.lookup import get_task, list_tasks

    run = load_run(run_dir)
    names = list(dict.fromkeys(tasks)) if tasks else [t.name for t in list_tasks()]
    for n in names:
        get_task(n)  # UserError naming the valid tasks
    load_means(run, "mean")
    if not means_path(run).exists():
        raise UserError(f"the ablation means of {run.path} could not be cached")
    return run, names


def _mirror(tmp: Path):
    """Encode (rank 0) and decode (other ranks) the run files a pruning process needs."""
    def encode(value: tuple[LoadedRun, list[str]]) -> tuple[dict, dict[str, bytes]]:
        from engine.ablation.means import means_path

        run, names = value
        blobs = {f: (run.path / f).read_bytes() for f in (CONFIG_FILE, TOKENIZER_FILE, MODEL_FILE)}
        blobs[MEANS_FILE] = means_path(run).read_bytes()
        return {"tasks": names}, blobs

    def decode(header: dict, blobs: dict[str, bytes]) -> tuple[LoadedRun, list[str]]:
        for name, data in blobs.items():
            (tmp / name).write_bytes(data)
        return load_run(tmp), header["tasks"]

    return encode, decode


def _task_setup(run: LoadedRun, task: str, cfg: PruneConfig, values) -> tuple[Prepared, Any]:
    from engine.tasks.evaluate import task_data
    from engine.tasks.lookup import get_task

    t = get_task(task)
    train_enc = task_data(run, t, cfg.train_pairs, "train", cfg.seed)
    val_enc = task_data(run, t, cfg.val_pairs, "val", cfg.seed)
    return prepare(run.model, values, train_enc, val_enc, cfg), val_enc


def _flat_taus(taus: dict[str, torch.Tensor], run: LoadedRun) -> bytes:
    return torch.cat([taus[s].detach().float().cpu() for s in all_sites(run.model.cfg)]).numpy().tobytes()


def _unflat_taus(data: bytes, run: LoadedRun) -> dict[str, torch.Tensor]:
    flat = torch.from_numpy(np.frombuffer(data, dtype=np.float32).copy())
    out, pos = {}, 0
    for s in all_sites(run.model.cfg):
        w = site_width(run.model.cfg, s)
        out[s] = flat[pos:pos + w]
        pos += w
    return out


def prune_all(run_dir: str | Path, tasks: list[str] | None, cfg: PruneConfig, dist: DistContext = SINGLE,
              device: str = "cpu", name: str | None = None) -> Generator[PruneEvent, None, dict[str, Any] | None]:
    """Prune every task (default: all built-in tasks) and save the circuits; returns a summary on
    rank 0 (None on the other ranks). A task the full model cannot do is skipped and reported."""
    cfg = cfg.validate()
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="prune-all-")) if dist.active and not dist.is_main else None
    try:
        run, names = from_main(dist, lambda: _open_run(run_dir, tasks), *_mirror(tmp or Path()))
        run.model.to(resolve_device(device, dist))
        result = yield from _run_jobs(run, names, cfg, dist, t0, name)
        return result
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _run_jobs(run: LoadedRun, names: list[str], cfg: PruneConfig, dist: DistContext, t0: float,
              name: str | None) -> Generator[PruneEvent, None, dict[str, Any] | None]:
    from engine.pruning.job import no_circuit_message, save_pruned

    means = load_means(run, "mean")
    values = means if cfg.ablation == "mean" else load_means(run, "zero")
    jobs = [(task, i) for task in names for i in range(len(cfg.k_coefs))]
    mine = split_jobs(jobs, dist)
    yield PruneEvent("setup", message=f"{len(jobs)} jobs ({len(names)} tasks x {len(cfg.k_coefs)} k_coefs) on "
                                      f"{dist.world_size} process(es); this one runs {len(mine)}")
    prepared: dict[str, tuple[Prepared, Any]] = {}
    done: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    for task, index in mine:
        if task not in prepared:
            prepared[task] = _task_setup(run, task, cfg, values)
        prep = prepared[task][0]
        if prep.full["loss"] > cfg.target_loss:
            continue  # rank 0 reports the task as skipped
        yield PruneEvent("setup", message=f"{task}: k_coef {cfg.k_coefs[index]:g}")
        cand, taus = yield from sweep_one(prep, cfg, index)
        blobs[f"{task}/{index}"] = _flat_taus(taus, run)
        done.append({"task": task, "index": index, "candidate": cand})
    gathered = gather_to_main(dist, {"jobs": done}, blobs)
    if not dist.is_main:
        return None
    results: dict[tuple[str, int], tuple[dict, dict[str, torch.Tensor]]] = {}
    for header, job_blobs in gathered:
        for job in header["jobs"]:
            key = f"{job['task']}/{job['index']}"
            results[(job["task"], job["index"])] = (job["candidate"], _unflat_taus(job_blobs[key], run))

    summary = []
    for task in names:
        if task not in prepared:
            prepared[task] = _task_setup(run, task, cfg, values)
        prep, val_enc = prepared[task]
        row: dict[str, Any] = {"task": task, "full_loss": prep.full["loss"]}
        try:
            check_full(prep, cfg, task)
        except UserError as exc:
            yield PruneEvent("setup", message=f"{task}: skipped: {exc}")
            summary.append({**row, "status": "skipped", "message": str(exc)})
            continue
        res = yield from finish(prep, cfg, [results[(task, i)] for i in range(len(cfg.k_coefs))], task_name=task,
                                model_hash=run.model_hash, run=str(run.path), t0=t0)
        if res.circuit is None:
            msg = no_circuit_message(task, cfg, res.candidates)
            yield PruneEvent("setup", message=f"{task}: {msg}")
            summary.append({**row, "status": "no circuit", "message": msg, "candidates": list(res.candidates)})
            continue
        circuit, path = yield from save_pruned(run, res.circuit, val_enc, means, cfg, name)
        m = circuit.metrics
        summary.append({**row, "status": "ok", "circuit": str(path), "nodes": circuit.n_nodes,
                        "edges": circuit.n_edges, "circuit_loss": m["circuit_loss"], "k_coef": m["k_coef"],
                        "sufficiency_loss": m["faithfulness"]["mean"]["sufficiency_loss"],
                        "necessity_loss": m["faithfulness"]["mean"]["necessity_loss"]})
    return {"run": str(run.path), "world_size": dist.world_size, "target_loss": cfg.target_loss,
            "ablation": cfg.ablation, "k_coefs": list(cfg.k_coefs), "tasks": summary,
            "seconds": round(time.perf_counter() - t0, 2)}
