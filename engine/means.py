"""Mean activation of every node over pretraining text: the replacement value of mean ablation.

Computed once per model from about 200k pretraining tokens and cached as ``means.safetensors`` in
the run's derived folder (the run itself, or the per-user folder for a read-only run), keyed by the
model's hash so a retrained model never reuses stale means. Zero ablation uses zeros instead.
Knows nothing about pruning, files other than its cache, or Qt.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from engine.checkpoint import load_tensors
from engine.fileio import atomic_write
from engine.model import GPT
from engine.paths import derived_dir
from engine.runs import LoadedRun
from engine.sites import all_sites, intervene

log = logging.getLogger(__name__)

MEANS_FILE = "means.safetensors"


@torch.no_grad()
def site_means(model: GPT, batches: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """Mean over all positions of every site's activation; batches of token windows (B, T+1)."""
    sums: dict[str, torch.Tensor] = {}
    count = 0

    def recorder(name: str):
        def hook(x: torch.Tensor) -> torch.Tensor:
            s = x.detach().double().sum(dim=(0, 1))
            sums[name] = sums[name] + s if name in sums else s
            return x
        return hook

    model.eval()
    hooks = {s: recorder(s) for s in all_sites(model.cfg)}
    with intervene(hooks):
        for b in batches:
            t = torch.from_numpy(np.ascontiguousarray(b[:, :-1]))
            model(t)
            count += t.numel()
    return {name: (v / count).float() for name, v in sums.items()}


def zero_means(model: GPT) -> dict[str, torch.Tensor]:
    from engine.sites import site_width
    return {s: torch.zeros(site_width(model.cfg, s)) for s in all_sites(model.cfg)}


def means_path(run: LoadedRun) -> Path:
    """Where this model's means are cached. A checkpoint's go to
    ``<derived>/checkpoint_means/step_NNNNNNN.safetensors`` so they never replace the final model's."""
    if run.checkpoint is not None:
        return derived_dir(run.path) / "checkpoint_means" / f"step_{run.checkpoint:07d}.safetensors"
    own = run.path / MEANS_FILE
    return own if own.exists() else derived_dir(run.path) / MEANS_FILE


def load_or_compute_means(run: LoadedRun, n_tokens: int = 200_000, batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Cached means of this exact model, computing (and caching) them when missing or stale."""
    path = means_path(run)
    if path.exists():
        from safetensors import safe_open
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
        if meta.get("model_hash") == run.model_hash:
            return load_tensors(path)
        log.info("means at %s belong to another model; recomputing", path)
    from engine.train import prepare_data  # late import: reading the corpus is only needed here

    _, data, _ = prepare_data(run.config, run.tokenizer)
    T = run.config.model.n_ctx
    n_batches = max(1, round(n_tokens / (batch_size * T)))
    batches = [data.batch(10_000_000 + i, batch_size) for i in range(n_batches)]
    means = site_means(run.model, batches)
    out = means_path(run) if run.checkpoint is not None else derived_dir(run.path) / MEANS_FILE
    meta = {"model_hash": run.model_hash, "n_tokens": str(n_batches * batch_size * T)}
    atomic_write(out, lambda tmp: save_file({k: v.contiguous() for k, v in means.items()}, str(tmp), metadata=meta))
    return means
