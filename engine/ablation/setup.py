"""An Ablator for a run: the task's held-out pairs, the run's means, its circuit, and the resample
pool from its activation store when it has one; plus what the last prompt position reads and
writes (the app's tooltips and the graph's input/output edges). Knows nothing about Qt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.ablation.ablator import Ablator
from engine.ablation.means import load_means
from engine.circuits.circuit import Circuit, load_circuit
from engine.circuits.library import find_circuit
from engine.errors import UserError
from engine.runs import LoadedRun, load_run
from engine.sites import all_sites, intervene
from engine.store.activations import ActivationStore, default_store_path
from engine.tasks.evaluate import resolve_task_arg, task_data
from engine.tasks.types import EncodedTask, Task


def resample_pool(run: LoadedRun, n: int = 512):
    """Recorded pretraining activations per site (n random positions), or None without a usable store."""
    path = default_store_path(run.path)
    if not path.exists():
        return None
    try:
        with ActivationStore.open(path, expected_model_hash=run.model_hash) as store:
            return store.sample_activations(n)
    except UserError:
        return None


def run_ablator(run: LoadedRun, task: Task, circuit: Circuit | None = None, n_pairs: int = 64,
                seed: int = 0) -> tuple[Ablator, EncodedTask]:
    """An Ablator for an already-loaded run and task, and the encoded pairs it evaluates."""
    enc = task_data(run, task, n_pairs, "val", seed)
    ablator = Ablator(run.model, enc, load_means(run, "mean"), circuit=circuit,
                      resample_pool=resample_pool(run), seed=seed)
    return ablator, enc


def make_ablator(run_dir: Path | str, task: str | None = None, task_file: str | Path | None = None,
                 circuit: str | Path | None = None, n_pairs: int = 64, seed: int = 0) -> Ablator:
    """An Ablator for a run folder and task (+ optional circuit); resample values come from the
    run's activation store when one exists."""
    run = load_run(run_dir)
    t = resolve_task_arg(task, task_file)
    circ = load_circuit(find_circuit(run, circuit), run.model, run.model_hash) if circuit else None
    return run_ablator(run, t, circ, n_pairs, seed)[0]


def last_position_readout(run: LoadedRun, enc: EncodedTask) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Per prompt, at its last position: every node's activation (site -> (N, width) float32), the
    embedding of the last token (N, d_resid) and the unembedding row of its target times the final
    norm's gain (N, d_resid). One padded forward of its own: the reference of
    ``Ablator.clean_readout``, which records the same values while building its cache."""
    model, cfg = run.model, run.config.model
    last = torch.as_tensor(enc.lengths - 1)
    rows = torch.arange(enc.n)
    values: dict[str, np.ndarray] = {}

    def keep(site: str):
        def hook(x):  # (N, T, width) -> the last prompt position of each row
            values[site] = x[rows, last].float().numpy().copy()
            return x
        return hook

    with torch.no_grad(), intervene({s: keep(s) for s in all_sites(cfg, final=True)}):
        model(torch.as_tensor(enc.tokens[:, : int(enc.lengths.max())]))
    return (values, *last_position_io(run, enc))


def last_position_io(run: LoadedRun, enc: EncodedTask) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt: the embedding of its last token (N, d_resid) and the unembedding row of its target
    times the final norm's gain (N, d_resid)."""
    model, cfg = run.model, run.config.model
    rows = torch.arange(enc.n)
    with torch.no_grad():
        last_tok = torch.as_tensor(enc.tokens)[rows, torch.as_tensor(enc.lengths - 1)]
        embed = model.embed(last_tok.view(-1, 1))[:, 0].float().numpy()
        unembed = model.lm_head.weight[torch.as_tensor(enc.target)] * model.ln_f.weight  # (N, d_unembed)
        unembed = torch.nn.functional.pad(unembed, (0, cfg.d_resid - cfg.d_unembed)).float().numpy()
    return embed, unembed
