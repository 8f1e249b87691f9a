"""The small facade that the app, the CLI and notebooks use.

Everything here takes and returns plain data (paths, frozen dataclasses, dicts of numbers), so it
can cross threads and the engine/app boundary. Knows nothing about Qt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Generator

from engine.checkpoint import list_checkpoints
from engine.config import RunConfig, apply_overrides, preset, run_config_from_dict
from engine.errors import UserError
from engine.fileio import read_json
from engine.paths import run_name
from engine.runs import LoadedRun, count_parameters, load_run, read_log, read_status
from engine.sparsity import EMBED_KINDS, density_report
from engine.train.loop import TrainEvent, TrainResult, train
from engine.train.monitor import DEFAULT_MONITOR_TASKS
from engine.train.setup import TrainStatus, check_output_dir, train_status

from engine.ablation.ablator import AblationResult, Ablator, Edge  # noqa: E402  (re-exported for the app)
from engine.circuits.circuit import Circuit, EdgeSet, list_circuits, load_circuit, make_circuit, weight_edges  # noqa: E402
from engine.paths import derived_dir, resolve_run  # noqa: E402
from engine.circuits.prune import PruneConfig, PruneEvent  # noqa: E402
from engine.sites import SITE_KINDS, SITE_LABELS, NodeId, all_sites, parse_site, site_width  # noqa: E402
from engine.store.activations import ActivationStore, default_store_path, partial_path  # noqa: E402
from engine.tasks.lookup import Task, TaskPair, get_task, list_tasks, load_task_file  # noqa: E402

__all__ = [
    "RunConfig", "UserError", "TrainEvent", "TrainResult", "LoadedRun", "make_config", "train", "load_run",
    "run_info", "read_log", "AblationResult", "Ablator", "Edge", "Circuit", "EdgeSet", "list_circuits",
    "load_circuit", "make_circuit", "weight_edges", "derived_dir", "resolve_run", "run_name", "PruneConfig", "PruneEvent",
    "SITE_KINDS", "SITE_LABELS", "NodeId", "all_sites", "parse_site", "site_width", "ActivationStore",
    "default_store_path", "partial_path", "Task", "TaskPair", "get_task", "list_tasks", "load_task_file",
    "eval_tasks", "load_means", "find_circuit", "circuit_roots", "prune_run", "faithfulness_report",
    "make_ablator", "record_store",
    # training from the app: presets, a config from form values (validated), the output folder
    "preset", "preset_names", "run_config_from_dict", "TrainStatus", "train_status", "check_output_dir",
    "DEFAULT_MONITOR_TASKS",
]


def preset_names() -> list[str]:
    """Names of the config presets, smallest first (``tiny``, ``demo``, ``paper-1x``)."""
    from engine.config import PRESETS

    return list(PRESETS)


def record_store(*args, **kwargs):
    """Generator recording an activation store (see engine.store.record.record_store)."""
    from engine.store.record import record_store as _record

    return _record(*args, **kwargs)


def make_config(preset_name: str = "tiny", *, dense: bool = False, steps: int | None = None,
                corpus: list[str] | None = None, tokenizer: str | None = None, device: str | None = None,
                config_file: Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """A validated RunConfig: preset, then a JSON config file, then ``section.key=value`` overrides,
    then the explicit arguments."""
    cfg = preset(preset_name)
    if config_file is not None:
        cfg = run_config_from_dict(read_json(Path(config_file), what="config file"), base=cfg)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    flat: list[str] = []
    if dense:
        flat.append("sparsity.enabled=false")
    if steps is not None:
        flat.append(f"train.steps={int(steps)}")
    if tokenizer is not None:
        flat.append(f"data.tokenizer={tokenizer}")
    if device is not None:
        flat.append(f"train.device={device}")
    cfg = apply_overrides(cfg, flat) if flat else cfg
    if corpus:
        cfg = run_config_from_dict({"data": {"folders": [str(Path(c).expanduser()) for c in corpus]}}, base=cfg)
    return cfg.validate()


def run_info(run_dir: Path) -> dict[str, Any]:
    """Config, parameter counts, nonzeros and density per matrix class, training status."""
    run = load_run(run_dir)
    cfg = run.config
    rep = density_report(run.model)
    density = {}
    for kind, (nz, n) in rep.items():
        target = cfg.sparsity.embed_target if kind in EMBED_KINDS else cfg.sparsity.density
        density[kind] = {"nonzero": nz, "total": n, "density": nz / n,
                         "target": target if cfg.sparsity.enabled else 1.0}
    mats = [v for k, v in rep.items() if k not in EMBED_KINDS]
    status = read_status(run.path)
    evals = [e for e in read_log(run.path) if e.get("kind") == "eval" and e.get("val_loss") is not None]
    n_params = count_parameters(run.model)
    n_nonzero = sum(int((p != 0).sum()) for p in run.model.parameters())
    return {
        "run": str(run.path),
        "preset": cfg.preset,
        "sparse": cfg.sparsity.enabled,
        "config": cfg.to_dict(),
        "tokenizer": run.tokenizer.kind,
        "vocab_size": cfg.model.vocab_size,
        "parameters": n_params,
        "nonzero_parameters": n_nonzero,
        "density": density,
        "matrix_density": sum(nz for nz, _ in mats) / max(1, sum(n for _, n in mats)),
        "target_density": cfg.sparsity.density if cfg.sparsity.enabled else 1.0,
        "steps_done": status.get("steps_done"),
        "total_steps": cfg.train.steps,
        "complete": bool(status.get("complete")),
        "val_loss": evals[-1]["val_loss"] if evals else status.get("val_loss"),
        "checkpoints": [c.step for c in list_checkpoints(run.path)],
        "corpus": status.get("corpus"),
        "model_hash": run.model_hash,
    }


# ---------------------------------------------------------------------------------------------
# Tasks, pruning, faithfulness


def resolve_task_arg(task: str | None, task_file: str | Path | None):
    from engine.tasks.lookup import resolve_task

    return resolve_task(task, Path(task_file) if task_file else None)


def task_data(run: LoadedRun, task, n_pairs: int, split: str = "val", seed: int = 0):
    """Encoded pairs of a task for this run's tokenizer and context."""
    from engine.tasks.lookup import encode_task

    return encode_task(run.tokenizer, task.pairs(split, n_pairs, seed), run.config.model.n_ctx)


def eval_tasks(run_dir: Path | str, task_names: list[str] | None = None, task_files: list[Path] | None = None,
               n_pairs: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """Held-out task loss and accuracy of the full model, per task."""
    from engine.tasks.lookup import last_logits, list_tasks, load_task_file, get_task, task_metrics

    run = load_run(run_dir)
    tasks = [get_task(n) for n in task_names] if task_names else ([] if task_files else list_tasks())
    tasks += [load_task_file(Path(f)) for f in task_files or []]
    out = []
    for task in tasks:
        enc = task_data(run, task, n_pairs, "val", seed)
        m = task_metrics(last_logits(run.model, enc), enc)
        out.append({"task": task.name, "loss": m.loss, "accuracy": m.accuracy, "n_sequences": m.n})
    return out


def load_means(run: LoadedRun, ablation: str = "mean") -> dict:
    from engine.ablation.means import load_or_compute_means, zero_means

    return zero_means(run.model) if ablation == "zero" else load_or_compute_means(run)


def circuit_roots(run: LoadedRun) -> list[Path]:
    """The folders a run's circuits live in: the run itself and, if elsewhere, its derived folder."""
    from engine.paths import derived_dir

    roots = [run.path]
    d = derived_dir(run.path)
    return roots + ([d] if d != Path(run.path).resolve() else [])


def find_circuit(run: LoadedRun, spec: str | Path) -> Path:
    """A circuit file path, or a task name -> that task's circuit (``mean.json`` preferred)."""
    from engine.circuits.circuit import list_circuits

    p = Path(spec).expanduser()
    if p.suffix == ".json" or p.exists():
        if not p.is_absolute():  # relative to the run (as sessions store them) first, then to the current folder
            inside = [root / p for root in circuit_roots(run) if (root / p).exists()]
            if inside:
                return inside[0]
        if p.exists():
            return p
        raise UserError(f"circuit file not found: {p}")
    found = [c for c in list_circuits(*circuit_roots(run)) if c.parent.name == str(spec)]
    if not found:
        raise UserError(f"no circuit for task {spec!r} in {run.path}; make one with "
                        f"`circuit-engine prune {run.path} --task {spec}`")
    preferred = [c for c in found if c.stem == "mean"]
    return (preferred or found)[-1]


from engine.circuits.job import no_circuit_message, prune_loaded, prune_run, save_pruned  # noqa: E402,F401  (re-exported)


def faithfulness_report(run_dir: Path | str, circuit_spec: str, n_pairs: int = 200, save: bool = False) -> dict[str, Any]:
    from engine.circuits.circuit import load_circuit
    from engine.circuits.faithfulness import faithfulness

    run = load_run(run_dir)
    path = find_circuit(run, circuit_spec)
    circuit = load_circuit(path, run.model, run.model_hash)
    task = _task_of_circuit(circuit)
    enc = task_data(run, task, n_pairs, "val", int(circuit.settings.get("seed", 0)))
    faith = faithfulness(run.model, circuit, enc, load_means(run, "mean"),
                         frozen_norm=bool(circuit.settings.get("frozen_norm", False)))
    return {"circuit": str(path), "task": circuit.task, "nodes": circuit.n_nodes, "edges": circuit.n_edges,
            "target_loss": circuit.metrics.get("target_loss"), **faith}


def _task_of_circuit(circuit):
    from engine.tasks.lookup import get_task, load_task_file

    src = circuit.settings.get("task_file")
    return load_task_file(Path(src)) if src else get_task(circuit.task)


# ---------------------------------------------------------------------------------------------
# Live ablation


def make_ablator(run_dir: Path | str, task: str | None = None, task_file: str | Path | None = None,
                 circuit: str | Path | None = None, n_pairs: int = 64, seed: int = 0):
    """An Ablator for a run and task (+ optional circuit); resample values come from the run's
    activation store when one exists."""
    from engine.ablation.ablator import Ablator
    from engine.circuits.circuit import load_circuit

    run = load_run(run_dir)
    t = resolve_task_arg(task, task_file)
    enc = task_data(run, t, n_pairs, "val", seed)
    circ = load_circuit(find_circuit(run, circuit), run.model, run.model_hash) if circuit else None
    return Ablator(run.model, enc, load_means(run, "mean"), circuit=circ, resample_pool=_resample_pool(run),
                   seed=seed)


# ---------------------------------------------------------------------------------------------
# App support: what the desktop app needs beyond the functions above. Everything returned is plain
# data (numpy arrays, frozen dataclasses) or an Ablator the app hands to one worker thread.

from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

__all__ += ["TaskView", "app_task_setup", "node_means", "circuit_for_task"]


@dataclass(frozen=True, eq=False)
class TaskView:
    """A task's held-out pairs as the app shows them. Row ``2i`` is pair ``i`` side A, ``2i+1`` side B."""

    task: str
    pairs: tuple  # (TaskPair, ...) as evaluated
    tokens: tuple  # (N,) tuples of display strings of each sequence's prompt tokens
    target: np.ndarray  # (N,) int64 correct next-token id
    foil: np.ndarray  # (N,) int64 the other side's target id
    target_str: tuple  # (N,) display strings of the targets
    node_values: dict  # site -> (N, width) float32: each node's activation at each prompt's last token
    embed: np.ndarray  # (N, d_resid) float32: the embedding of each prompt's last token
    unembed: np.ndarray  # (N, d_resid) float32: lm_head row of each target times the final norm gain


def app_task_setup(run: LoadedRun, task, circuit: Circuit | None = None, n_pairs: int = 32,
                   seed: int = 0) -> tuple[Ablator, TaskView]:
    """An Ablator for an already-loaded run (no second load, resample values from the run's store
    when it has one) and the matching :class:`TaskView` (the same encoded pairs)."""
    import torch

    from engine.sites import intervene

    enc = task_data(run, task, n_pairs, "val", seed)
    ablator = Ablator(run.model, enc, load_means(run, "mean"), circuit=circuit,
                      resample_pool=_resample_pool(run), seed=seed)
    model, cfg = run.model, run.config.model
    last = torch.as_tensor(enc.lengths - 1)
    rows = torch.arange(enc.n)
    values: dict[str, np.ndarray] = {}

    def keep(site: str):
        def hook(x):  # (N, T, width) -> the last prompt position of each row
            values[site] = x[rows, last].float().numpy().copy()
            return x
        return hook

    with torch.no_grad(), intervene({s: keep(s) for s in all_sites(cfg)}):
        model(torch.as_tensor(enc.tokens[:, : int(enc.lengths.max())]))
        last_tok = torch.as_tensor(enc.tokens)[rows, last]
        embed = model.embed(last_tok.view(-1, 1))[:, 0].float().numpy()
        unembed = (model.lm_head.weight[torch.as_tensor(enc.target)] * model.ln_f.weight).float().numpy()
    tok = run.tokenizer
    view = TaskView(task=task.name, pairs=enc.pairs,
                    tokens=tuple(tuple(tok.token_str(int(i)) for i in row[:n]) for row, n in zip(enc.tokens, enc.lengths)),
                    target=enc.target.copy(), foil=enc.foil.copy(),
                    target_str=tuple(tok.token_str(int(i)) for i in enc.target),
                    node_values=values, embed=embed, unembed=unembed)
    return ablator, view


def _resample_pool(run: LoadedRun, n: int = 512):
    """Recorded pretraining activations per site (n random positions), or None without a usable store."""
    path = default_store_path(run.path)
    if not path.exists():
        return None
    try:
        with ActivationStore.open(path, expected_model_hash=run.model_hash) as store:
            return store.sample_activations(n)
    except UserError:
        return None


def node_means(run: LoadedRun) -> dict[str, np.ndarray]:
    """Mean activation of every node (site -> (width,) float32), computed once per model and cached."""
    return {s: v.float().numpy().copy() for s, v in load_means(run, "mean").items()}


def circuit_for_task(run: LoadedRun, task: str) -> Path | None:
    """The task's circuit file (``mean.json`` preferred), or None when the task has none yet."""
    try:
        return find_circuit(run, task)
    except UserError:
        return None


# ---------------------------------------------------------------------------------------------
# Export: the view document's formats and atomic image output (see engine.scene.export)

from engine.scene.export import (  # noqa: E402
    DEFAULT_SIZE as EXPORT_DEFAULT_SIZE, FORMATS as EXPORT_FORMATS, GUI_EXTRA_MESSAGE as EXPORT_GUI_MESSAGE,
    IMAGE_FORMATS as EXPORT_IMAGE_FORMATS, add_export_arguments, check_image_size, check_output, output_paths,
    parse_ablate, write_image, write_view,
)

__all__ += ["EXPORT_DEFAULT_SIZE", "EXPORT_FORMATS", "EXPORT_GUI_MESSAGE", "EXPORT_IMAGE_FORMATS",
            "add_export_arguments", "check_image_size", "check_output", "output_paths", "parse_ablate",
            "write_image", "write_view"]


# ---------------------------------------------------------------------------------------------
# Pruning from the app: the circuit list, sparse-vs-dense comparison and circuit formation.

from types import SimpleNamespace  # noqa: E402

from engine.circuits.circuit import CircuitEntry, index_circuits  # noqa: E402
from engine.circuits.compare import compare  # noqa: E402  (generators the app runs as jobs)
from engine.circuits.formation import formation, formation_checkpoints, formation_nodes, load_formation  # noqa: E402

__all__ += ["CircuitEntry", "circuit_index", "compare", "formation", "load_formation", "formation_checkpoints", "formation_nodes",
            "run_checkpoints", "prune_loaded", "check_task_file"]


def check_task_file(run_dir: Path | str, task_file: Path | str) -> Task:
    """Load a task file and encode all its pairs with the run's tokenizer (no model load): the
    UserError a pruning job would meet (a malformed file, a target that is not one token), at once."""
    from engine.config import load_run_config
    from engine.runs import CONFIG_FILE, TOKENIZER_FILE, check_run_dir
    from engine.tasks.lookup import encode_task
    from engine.data.tokenizer import load_tokenizer

    run_dir = check_run_dir(run_dir)
    task = load_task_file(Path(task_file))
    tok = load_tokenizer(run_dir / TOKENIZER_FILE)
    n_ctx = load_run_config(run_dir / CONFIG_FILE).model.n_ctx
    for split in ("train", "val"):
        encode_task(tok, task.pairs(split, 1_000_000), n_ctx, task.name)
    return task


def circuit_index(run_dir: Path | str) -> list[CircuitEntry]:
    """Every circuit saved for a run (bundled and derived folders); unreadable files are skipped."""
    return index_circuits(*circuit_roots(SimpleNamespace(path=resolve_run(run_dir))))


def run_checkpoints(run_dir) -> list[tuple[int, float | None]]:
    """(step, validation loss) of every complete checkpoint of a run."""
    from engine.runs import check_run_dir, checkpoint_val_losses

    return checkpoint_val_losses(check_run_dir(run_dir))
