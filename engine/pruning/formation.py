"""Circuit formation over training: prune one task at every checkpoint of a run.

For each complete checkpoint (``RUN/checkpoints/step_N``), oldest first: load its weights, measure
the full model's held-out task loss, and, when that is at or below the target, prune the task in
that checkpoint (its own ablation means, computed once per checkpoint and cached under
``<derived>/checkpoint_means/``). Results go to ``<derived>/circuits/<task>/formation/``:

    step_NNNNNNN.json   the circuit of that checkpoint (``settings.checkpoint`` = N; its
                        ``model_hash`` is the checkpoint file's, so it only loads with those weights)
    formation.json      the summary, rewritten after every checkpoint (a cancelled job keeps
                        what it finished): one row per checkpoint with its validation loss, the
                        full model's task loss, the status and the circuit's size

A checkpoint whose full model is above the target gets status ``above target`` (the task has
not formed yet) and one whose pruning finds no passing circuit ``no circuit``; neither stops the
job. ``<derived>`` is the run folder itself, or the per-user folder for a bundled run.
Knows nothing about Qt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Generator

from engine.circuits.circuit import circuit_dir
from engine.errors import UserError
from engine.fileio import atomic_write_json, read_json
from engine.paths import derived_dir
from engine.pruning.prune import PruneConfig, PruneEvent, staged
from engine.runs import check_run_dir, checkpoint_val_losses, load_run

SUMMARY_FILE = "formation.json"
SCHEMA_VERSION = 1
STATUSES = ("circuit", "above target", "no circuit")


def formation_dir(run_dir: Path | str, task: str) -> Path:
    """``<derived>/circuits/<task>/formation`` of a run (folder or alias)."""
    return circuit_dir(derived_dir(check_run_dir(run_dir)), task) / "formation"


def step_file(step: int) -> str:
    return f"step_{step:07d}.json"


def formation_checkpoints(run_dir: Path | str, steps: list[int] | None = None) -> list[tuple[int, float | None]]:
    """(step, validation loss) of the checkpoints to prune; a clear UserError when the run has
    fewer than two (nothing forms over one point) or a requested step is missing."""
    run_dir = check_run_dir(run_dir)
    cks = checkpoint_val_losses(run_dir)
    if len(cks) < 2:
        raise UserError(
            f"{run_dir} has {len(cks)} checkpoint{'s' if len(cks) != 1 else ''}; circuit formation prunes the "
            f"task at every checkpoint and needs at least 2. Train a run that keeps them (the tiny and demo "
            f"presets save one every 50 / 250 steps: `circuit-engine train --preset tiny --out runs/tiny`; "
            f"the bundled demo ships only its final weights)")
    if steps:
        have = {s for s, _ in cks}
        missing = sorted(set(steps) - have)
        if missing:
            raise UserError(f"{run_dir} has no checkpoint at step {', '.join(map(str, missing))} "
                            f"(checkpoints: {', '.join(str(s) for s, _ in cks)})")
        cks = [c for c in cks if c[0] in set(steps)]
    return cks


def formation(run_dir: Path | str, task: str | None = None, task_file: str | Path | None = None,
              cfg: PruneConfig | None = None, steps: list[int] | None = None
              ) -> Generator[PruneEvent, None, dict[str, Any]]:
    """Generator: prune the task at each checkpoint (see the module docstring); returns the summary
    (also written to ``formation.json``) with absolute circuit paths."""
    from engine.tasks.evaluate import resolve_task_arg, task_data
    from engine.pruning.job import prune_loaded
    from engine.tasks.lookup import last_logits, task_metrics

    cfg = (cfg or PruneConfig()).validate()
    run_dir = check_run_dir(run_dir)
    cks = formation_checkpoints(run_dir, steps)
    t = resolve_task_arg(task, task_file)
    out_dir = formation_dir(run_dir, t.name)
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()}
    summary: dict[str, Any] = {
        "kind": "formation", "schema_version": SCHEMA_VERSION, "run": str(Path(run_dir).resolve()),
        "task": t.name, "task_file": str(Path(task_file).resolve()) if task_file else None,
        "target_loss": cfg.target_loss, "ablation": cfg.ablation, "settings": settings, "steps": [],
    }
    for i, (step, val_loss) in enumerate(cks):
        label = f"step {step} ({i + 1}/{len(cks)})"
        yield PruneEvent("setup", message=f"{label}: loading the checkpoint", fraction=i / len(cks))
        run = load_run(run_dir, checkpoint=step)
        val_enc = task_data(run, t, cfg.val_pairs, "val", cfg.seed)
        full = task_metrics(last_logits(run.model, val_enc), val_enc).loss
        row: dict[str, Any] = {"step": step, "val_loss": val_loss, "full_loss": full, "model_hash": run.model_hash,
                               "nodes": None, "edges": None, "circuit_loss": None, "circuit": None}
        if full > cfg.target_loss:
            row.update(status="above target", message=f"full model loss {full:.3f} > target {cfg.target_loss}")
        else:
            try:
                circuit, path = yield from staged(
                    prune_loaded(run, t, cfg, out_dir / step_file(step), with_faithfulness=False,
                                 task_file=task_file, name=f"{cfg.ablation} @ step {step}"), i, len(cks), label)
                row.update(status="circuit", nodes=circuit.n_nodes, edges=circuit.n_edges,
                           circuit_loss=circuit.metrics["circuit_loss"], circuit=path.name, message="")
            except UserError as exc:  # no k_coef reached the target at this checkpoint
                row.update(status="no circuit", message=str(exc))
        summary["steps"].append(row)
        atomic_write_json(out_dir / SUMMARY_FILE, summary)
        done = (f"{row['nodes']} nodes, {row['edges']} edges" if row["status"] == "circuit" else row["status"])
        yield PruneEvent("candidate", message=f"{label}: full model loss {full:.3f}; {done}",
                         fraction=(i + 1) / len(cks))
    return _absolute(summary, out_dir)


def load_formation(run_dir: Path | str, task: str) -> dict[str, Any] | None:
    """The saved formation summary of a task (circuit paths made absolute), or None if there is none."""
    out_dir = formation_dir(run_dir, task)
    path = out_dir / SUMMARY_FILE
    if not path.exists():
        return None
    data = read_json(path, what="formation summary")
    if not isinstance(data, dict) or data.get("kind") != "formation" or not isinstance(data.get("steps"), list):
        raise UserError(f"{path} is not a formation summary; run `circuit-engine formation` again")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise UserError(f"{path}: formation schema_version {data.get('schema_version')!r} is not supported "
                        f"(expected {SCHEMA_VERSION})")
    return _absolute(data, out_dir)


def formation_nodes(summary: dict[str, Any]) -> tuple[str, ...]:
    """Every node of a (loaded) summary's circuits, in order of first appearance: the frame the app
    draws each checkpoint's circuit in, so that a node keeps its place while scrubbing. A circuit file
    that cannot be read is left out here; opening that checkpoint reports it."""
    from engine.circuits.circuit import load_circuit

    seen: dict[str, None] = {}
    for row in summary["steps"]:
        if not row.get("circuit"):
            continue
        try:
            circuit = load_circuit(Path(row["circuit"]))
        except UserError:
            continue
        seen.update(dict.fromkeys(str(n) for n in circuit.nodes))
    return tuple(seen)


def _absolute(summary: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    rows = [{**r, "circuit": str(out_dir / r["circuit"]) if r.get("circuit") else None} for r in summary["steps"]]
    return {**summary, "steps": rows, "folder": str(out_dir)}
