"""Mean activation of every node over pretraining text: the replacement value of mean ablation.

Computed once per model from about 200k pretraining tokens, in windows of at most 256 tokens
(fewer tokens for models whose forward pass costs more than the paper-1x model's, down to 32k:
see :func:`means_budget`; ``means_steps`` does it as a generator that a background job can cancel
between batches) and cached as ``means.safetensors`` in
the run's derived folder (the run itself, or the per-user folder for a read-only run), keyed by the
model's hash so a retrained model never reuses stale means. Zero ablation uses zeros instead.
Knows nothing about pruning, files other than its cache, or Qt.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Generator

import numpy as np
import torch
from safetensors.torch import save_file

from engine.checkpoint import load_tensors
from engine.errors import UserError
from engine.fileio import atomic_write
from engine.jobs import run_to_end
from engine.model import GPT
from engine.paths import derived_dir
from engine.runs import LoadedRun, run_tokenizer
from engine.sites import all_sites, intervene, site_width

log = logging.getLogger(__name__)

MEANS_FILE = "means.safetensors"
OTHER_MODEL = "they belong to another model"


def site_means(model: GPT, batches: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """Mean over all positions of every site's activation; batches of token windows (B, T+1)."""
    return run_to_end(site_means_steps(model, batches))


def site_means_steps(model: GPT, batches: list[np.ndarray]) -> Generator[int, None, dict[str, torch.Tensor]]:
    """:func:`site_means` as a generator that yields the number of batches done after each one, so
    a job computing means can be cancelled between two batches."""
    sums: dict[str, torch.Tensor] = {}
    count = 0

    def recorder(name: str):
        def hook(x: torch.Tensor) -> torch.Tensor:
            s = x.detach().double().sum(dim=(0, 1))
            sums[name] = sums[name] + s if name in sums else s
            return x
        return hook

    model.eval()
    hooks = {s: recorder(s) for s in all_sites(model.cfg, final=True)}
    for i, b in enumerate(batches):
        t = torch.from_numpy(np.ascontiguousarray(b[:, :-1]))
        with torch.no_grad(), intervene(hooks):
            model(t)
        count += t.numel()
        yield i + 1
    return {name: (v / count).float() for name, v in sums.items()}


def zero_means(model: GPT) -> dict[str, torch.Tensor]:
    from engine.sites import site_width
    return {s: torch.zeros(site_width(model.cfg, s)) for s in all_sites(model.cfg, final=True)}


def means_path(run: LoadedRun) -> Path:
    """Where this model's means are cached. A checkpoint's go to
    ``<derived>/checkpoint_means/step_NNNNNNN.safetensors`` so they never replace the final model's."""
    if run.checkpoint is not None:
        return derived_dir(run.path) / "checkpoint_means" / f"step_{run.checkpoint:07d}.safetensors"
    own = run.path / MEANS_FILE
    return own if own.exists() else derived_dir(run.path) / MEANS_FILE


def read_cached_means(path: Path, run: LoadedRun) -> tuple[dict[str, torch.Tensor] | None, str]:
    """(the means cached at ``path``, "") when they belong to this exact model and hold a finite
    float vector of the right width for every site, else (None, why not): a damaged, foreign or
    stale cache is recomputed, never used and never a crash."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        return None, f"not a readable safetensors file: {exc}"
    if meta.get("model_hash") != run.model_hash:
        return None, OTHER_MODEL
    try:
        cached = load_tensors(path)
    except UserError as exc:
        return None, str(exc)
    for site in all_sites(run.config.model, final=True):
        v = cached.get(site)
        width = site_width(run.config.model, site)
        if v is None:
            return None, f"no means for {site} (written before it was a site?)"
        if not v.is_floating_point() or tuple(v.shape) != (width,):
            return None, f"{site} has {str(v.dtype).replace('torch.', '')} values of shape {tuple(v.shape)}, not ({width},)"
        if not bool(torch.isfinite(v).all()):
            return None, f"{site} holds NaN or infinite values"
    return {k: v.float() for k, v in cached.items()}, ""


#: Means windows: attention costs grow with the square of the window, the means barely change.
MEANS_WINDOW = 256
#: Per-token work (layers x MLP width) up to which the means use all 200k tokens (the paper-1x model).
FULL_MEANS_WORK = 8 * 1024
MIN_MEANS_TOKENS = 32_768


def means_budget(cfg, n_tokens: int = 200_000) -> tuple[int, int]:
    """(tokens, window) for a model's means: ``n_tokens`` in windows of min(n_ctx, 256) tokens, scaled
    down in proportion to the per-token work above the paper-1x model's (a csp_yolo1-shaped model:
    50k tokens), never below 32k."""
    work = cfg.n_layer * cfg.d_mlp
    scaled = n_tokens if work <= FULL_MEANS_WORK else max(MIN_MEANS_TOKENS, n_tokens * FULL_MEANS_WORK // work)
    return min(n_tokens, scaled), min(cfg.n_ctx, MEANS_WINDOW)


def load_or_compute_means(run: LoadedRun, n_tokens: int = 200_000, batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Cached means of this exact model, computing (and caching) them when missing or stale."""
    return run_to_end(means_steps(run, n_tokens, batch_size))


def means_steps(run: LoadedRun, n_tokens: int = 200_000, batch_size: int = 32
                ) -> Generator[tuple[int, int], None, dict[str, torch.Tensor]]:
    """:func:`load_or_compute_means` as a generator: while computing, yields (batches done, batches)
    after every batch (nothing when the cache is fresh). Closing it stops without caching."""
    path = means_path(run)
    if os.path.lexists(path):
        cached, why = read_cached_means(path, run)
        if cached is not None:
            return cached
        stale = why == OTHER_MODEL  # a retrained model: expected, not damage
        log.log(logging.INFO if stale else logging.WARNING, "ablation means at %s are not usable (%s); "
                "recomputing them", path, why)
    from engine.train.data import prepare_data  # late import: reading the corpus is only needed here

    _, data, _ = prepare_data(run.config, run_tokenizer(run))
    n_tokens, T = means_budget(run.config.model, n_tokens)
    n_batches = max(1, round(n_tokens / (batch_size * T)))
    batches = [data.batch(10_000_000 + i, batch_size)[:, : T + 1] for i in range(n_batches)]
    yield 0, n_batches
    gen = site_means_steps(run.model, batches)
    while True:
        try:
            done = next(gen)
        except StopIteration as stop:
            means = stop.value
            break
        yield done, n_batches
    out = means_path(run) if run.checkpoint is not None else derived_dir(run.path) / MEANS_FILE
    meta = {"model_hash": run.model_hash, "n_tokens": str(n_batches * batch_size * T)}
    try:
        atomic_write(out, lambda tmp: save_file({k: v.contiguous() for k, v in means.items()}, str(tmp), metadata=meta))
    except OSError as exc:  # e.g. a folder in the cache's place: use the means, say why they are not kept
        log.warning("cannot cache the ablation means at %s (%s); they are computed again next time", out,
                    exc.strerror or exc)
    return means


def load_means(run: LoadedRun, ablation: str = "mean") -> dict[str, torch.Tensor]:
    """The values ablated nodes take: zeros for ``zero`` ablation, else this model's cached means."""
    return zero_means(run.model) if ablation == "zero" else load_or_compute_means(run)


def node_means(run: LoadedRun) -> dict[str, np.ndarray]:
    """Mean activation of every node (site -> (width,) float32), computed once per model and cached."""
    return {s: v.float().numpy().copy() for s, v in load_means(run, "mean").items()}
