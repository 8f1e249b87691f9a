"""Pruning a task of a run as one job: encode the task, get the ablation means, prune, check
faithfulness, save the circuit. ``prune_run`` is what ``circuit-engine prune`` and the app's Pruning
panel run; ``prune_loaded`` prunes an already loaded run or checkpoint into a given file (compare,
formation). Both are generators of PruneEvents whose ``fraction`` covers the whole job, including
computing the means the first time (cancellable between batches). Knows nothing about Qt.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import UserError
from engine.runs import LoadedRun, load_run


def prune_run(run_dir: Path | str, task: str | None = None, task_file: str | Path | None = None,
              cfg=None, name: str | None = None, with_faithfulness: bool = True):
    """Generator: prune one task of a run; returns (Circuit, saved path). Events are PruneEvents.
    The circuit goes to ``<derived>/circuits/<task>/<name or ablation mode>.json``."""
    from engine.tasks.evaluate import resolve_task_arg
    from engine.circuits.circuit import circuit_dir
    from engine.paths import derived_dir
    from engine.pruning.prune import PruneConfig

    cfg = (cfg or PruneConfig()).validate()
    run = load_run(run_dir)
    t = resolve_task_arg(task, task_file)
    default_name = f"{cfg.ablation}{'-frozen-norm' if cfg.frozen_norm else ''}"
    out = circuit_dir(derived_dir(run.path), t.name) / f"{name or default_name}.json"
    return (yield from prune_loaded(run, t, cfg, out, with_faithfulness=with_faithfulness, task_file=task_file))


def prune_loaded(run: LoadedRun, task, cfg, out: Path, with_faithfulness: bool = True,
                 task_file: str | Path | None = None, name: str | None = None):
    """Generator: prune ``task`` (a Task) in an already loaded run (or checkpoint) and save the
    circuit to ``out`` (``name``: the circuit's display name instead of the ablation mode); returns
    (Circuit, out). Event fractions cover pruning and faithfulness."""
    from dataclasses import replace as dc_replace

    from engine.ablation.means import load_means

    from engine.tasks.evaluate import task_data
    from engine.pruning.prune import prune, rescaled

    cfg = cfg.validate()
    train_enc = task_data(run, task, cfg.train_pairs, "train", cfg.seed)
    val_enc = task_data(run, task, cfg.val_pairs, "val", cfg.seed)
    means = yield from _means_events(run)
    values = means if cfg.ablation == "mean" else load_means(run, "zero")
    split = 0.9 if with_faithfulness else 1.0
    result = yield from rescaled(prune(run.model, values, train_enc, val_enc, cfg, task_name=task.name,
                                       model_hash=run.model_hash, run=str(run.path)), 0.0, split)
    if result.circuit is None:
        raise UserError(no_circuit_message(task.name, cfg, result.candidates))
    circuit = result.circuit
    if name:
        circuit = dc_replace(circuit, name=name)
    return (yield from finish_circuit(run, circuit, val_enc, means, cfg, out, task_file=task_file,
                                      with_faithfulness=with_faithfulness, start=split))


def no_circuit_message(task: str, cfg, candidates) -> str:
    return (f"no circuit reached held-out loss {cfg.target_loss} on {task} for any k_coef "
            f"({', '.join(str(c.get('loss')) for c in candidates)}); try more mask steps (--steps) or a "
            f"higher target loss (--target-loss; Mask steps and Target loss in the app)")


def save_pruned(run: LoadedRun, circuit, val_enc, means, cfg, name: str | None = None,
                task_file: str | Path | None = None, with_faithfulness: bool = True):
    """Generator: add the faithfulness checks to a pruned circuit (prune-all) and save it in the run's
    derived folder as ``<name or circuit name>.json``; returns (Circuit, saved path)."""
    from engine.circuits.circuit import circuit_dir
    from engine.paths import derived_dir

    out = circuit_dir(derived_dir(run.path), circuit.task) / f"{name or circuit.name}.json"
    return (yield from finish_circuit(run, circuit, val_enc, means, cfg, out, task_file=task_file,
                                      with_faithfulness=with_faithfulness))


def finish_circuit(run: LoadedRun, circuit, val_enc, means, cfg, out: Path, *, task_file: str | Path | None = None,
                   with_faithfulness: bool = True, start: float = 0.0):
    """Generator: note the task file and checkpoint in the circuit's settings, add the faithfulness
    checks (their events take the fractions from ``start`` to 1) and save it to ``out``; returns
    (Circuit, out)."""
    from dataclasses import replace as dc_replace

    from engine.pruning.faithfulness import faithfulness_steps
    from engine.pruning.prune import PruneEvent, rescaled

    extra = {}
    if task_file:
        extra["task_file"] = str(Path(task_file).resolve())
    if getattr(run, "checkpoint", None) is not None:
        extra["checkpoint"] = run.checkpoint
    if extra:
        circuit = dc_replace(circuit, settings={**circuit.settings, **extra})
    if with_faithfulness:
        yield PruneEvent("setup", message="faithfulness checks (mean and zero ablation, 10 random baselines)",
                         fraction=start)
        faith = yield from rescaled(faithfulness_steps(run.model, circuit, val_enc, means,
                                                       frozen_norm=cfg.frozen_norm), start, 1.0)
        circuit = dc_replace(circuit, metrics={**circuit.metrics, "faithfulness": faith})
    circuit = with_verdict(run.model, circuit)
    circuit.save(out)
    return circuit, Path(out)


def with_verdict(model, circuit):
    """The circuit with its verdict (engine.pruning.verdict) in its metrics."""
    from dataclasses import replace as dc_replace

    from engine.circuits.circuit import all_nodes
    from engine.pruning.verdict import verdict

    sites = set(circuit.pruned_sites(model.cfg))
    total = sum(1 for n in all_nodes(model, final=True) if n.site in sites)
    v = verdict(circuit.n_nodes, total, circuit.metrics.get("faithfulness"), circuit.metrics.get("target_loss"),
                circuit.metrics.get("convergence"), circuit.settings.get("ablation", "mean"))
    return dc_replace(circuit, metrics={**circuit.metrics, "verdict": v})


def _means_events(run: LoadedRun):
    """Generator: the run's mean-ablation values (always needed: faithfulness uses them too); while
    they are computed (once per model), a "setup" event per throttled batch."""
    import time

    from engine.ablation.means import means_steps
    from engine.pruning.prune import EMIT_INTERVAL_S, PruneEvent

    gen = means_steps(run)
    last = 0.0
    while True:
        try:
            done, total = next(gen)
        except StopIteration as stop:
            return stop.value
        now = time.perf_counter()
        if done == 0 or now - last > EMIT_INTERVAL_S:
            last = now
            yield PruneEvent("setup", done, total, message="computing ablation means (once per model)" if done == 0
                             else "", fraction=0.0)
