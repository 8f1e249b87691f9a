"""Sparse vs dense: prune both models for the same tasks at the same target and compare circuit
sizes (the paper's Figure 2 in small, SPEC §8-§9).

Three models can take part: the sparse run, the dense run at the same training steps (its final
weights), and, when the dense run kept checkpoints, the dense checkpoint whose validation loss is
closest to the sparse model's (the paper compares at matched pretraining loss; a dense twin trained
as long reaches a lower loss, which makes the same-steps ratio conservative for sparse). The result
reports both ratios with both validation losses.

Circuit size is the number of weight edges; a circuit with no edges counts as one edge in ratios and
geometric means (so a ratio stays finite). A task that a model cannot prune to the target (its full
model is above it, or no k_coef passes) is reported with the engine's message and left out of the
geometric means of that comparison; only when no task can be compared is that an error.

``compare(...)`` is a generator of PruneEvents (with the job's ``fraction``) returning a plain dict;
the loss-vs-edges curves along each circuit's node ranking are in it and in a CSV.
Knows nothing about Qt.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator

from engine.circuits.circuit import circuit_dir, geometric_mean
from engine.errors import UserError
from engine.fileio import atomic_write_text
from engine.paths import derived_dir
from engine.pruning.prune import PruneConfig, PruneEvent, staged
from engine.runs import LoadedRun, checkpoint_val_losses, load_run, read_log, read_status, run_tokenizer

if TYPE_CHECKING:
    from engine.tasks.types import Task

CSV_FIELDS = ["model", "step", "task", "nodes", "edges", "loss"]


def final_val_loss(run_dir: Path) -> float | None:
    """The last validation loss in the run's training log (None without one)."""
    evals = [e["val_loss"] for e in read_log(run_dir) if e.get("kind") == "eval" and e.get("val_loss") is not None]
    return evals[-1] if evals else None


def check_same_tokenizer(sparse: LoadedRun, dense: LoadedRun) -> None:
    """Both runs must read text the same way, or their task prompts and targets differ."""
    if run_tokenizer(sparse) != run_tokenizer(dense):
        def desc(r: LoadedRun) -> str:
            return f"{r.tokenizer.kind}, {r.tokenizer.vocab_size} ids"

        raise UserError(f"the two runs use different tokenizers (sparse {sparse.path}: {desc(sparse)}; dense "
                        f"{dense.path}: {desc(dense)}); compare a sparse run with a dense twin trained with the "
                        f"same tokenizer and corpus (`circuit-engine train --dense` with the same options)")


def matched_checkpoint(dense_dir: Path, sparse_val: float | None) -> tuple[tuple[int, float] | None, str]:
    """The dense checkpoint whose validation loss is closest to ``sparse_val``: ((step, loss), note)
    or (None, why not)."""
    if sparse_val is None:
        return None, "the sparse run has no validation loss in its train_log.jsonl"
    cks = [(s, v) for s, v in checkpoint_val_losses(dense_dir) if v is not None]
    if not cks:
        return None, "the dense run kept no checkpoints with a validation loss; only the same-steps ratio is reported"
    step, val = min(cks, key=lambda c: (abs(c[1] - sparse_val), -c[0]))
    return (step, val), f"dense checkpoint at step {step}: validation loss {val:.4f} vs sparse {sparse_val:.4f}"


def _edges(n: int) -> int:
    return max(1, int(n))


def _ratio(rows: list[dict[str, Any]], dense_key: str) -> tuple[float, float, int]:
    """(sparse geomean, dense geomean, tasks) over the tasks where both were pruned."""
    ok = [r for r in rows if r.get("sparse_edges") is not None and r.get(f"{dense_key}_edges") is not None]
    if not ok:
        return float("nan"), float("nan"), 0
    gs = geometric_mean(_edges(r["sparse_edges"]) for r in ok)
    gd = geometric_mean(_edges(r[f"{dense_key}_edges"]) for r in ok)
    return gs, gd, len(ok)


def _tasks_both_solve(sparse: LoadedRun, dense: LoadedRun, cfg: PruneConfig) -> Generator[PruneEvent, None, list[Task]]:
    """The built-in tasks whose held-out loss is at most the target in both full models."""
    from engine.tasks.evaluate import eval_tasks
    from engine.tasks.lookup import get_task

    yield PruneEvent("setup", message="choosing the tasks both full models solve (held-out loss <= target)")
    s_eval = {r["task"]: r["loss"] for r in eval_tasks(sparse.path)}
    d_eval = {r["task"]: r["loss"] for r in eval_tasks(dense.path)}
    names = [t for t in s_eval if s_eval[t] <= cfg.target_loss and d_eval.get(t, 1e9) <= cfg.target_loss]
    if not names:
        raise UserError(f"no task has held-out loss <= {cfg.target_loss} in both models; pass --tasks "
                        f"or raise the target loss (--target-loss)")
    return [get_task(t) for t in names]


def _compare_task(task: Task, models: list[tuple[str, LoadedRun, int | None]], cfg: PruneConfig, stage: int,
                  n_stages: int, curves: list[dict[str, Any]]) -> Generator[PruneEvent, None, dict[str, Any]]:
    """Prune ``task`` in every model (stages ``stage`` onwards of ``n_stages``), appending the circuits'
    loss-vs-edges curves to ``curves`` -> the task's row of the comparison."""
    from engine.pruning.job import prune_loaded

    per: dict[str, Any] = {"task": task.name}
    for label, run, step in models:
        name = f"compare-{cfg.ablation}" + (f"-step_{step:07d}" if label == "dense_matched" else "")
        out = circuit_dir(derived_dir(run.path), task.name) / f"{name}.json"
        try:
            circuit, path = yield from staged(prune_loaded(run, task, cfg, out, with_faithfulness=False),
                                              stage, n_stages, f"{task.name} ({label.replace('_', ' ')})")
        except UserError as exc:
            per.update({f"{label}_edges": None, f"{label}_error": str(exc)})
            yield PruneEvent("candidate", message=f"{task.name} ({label}): {exc}")
        else:
            per.update({f"{label}_nodes": circuit.n_nodes, f"{label}_edges": circuit.n_edges,
                        f"{label}_loss": circuit.metrics["circuit_loss"], f"{label}_circuit": str(path)})
            curves += [{"model": label, "step": step if step is not None else "", "task": task.name, **pt}
                       for pt in circuit.metrics.get("curve", [])]
        stage += 1
    for key in ("dense", "dense_matched"):
        if per.get("sparse_edges") is not None and per.get(f"{key}_edges") is not None:
            per[f"{key}_ratio"] = _edges(per[f"{key}_edges"]) / _edges(per["sparse_edges"])
    per["ratio"] = per.get("dense_ratio")
    summary = (f"sparse {per['sparse_edges']} edges, dense {per['dense_edges']} edges, ratio {per['ratio']:.2f}"
               if per["ratio"] is not None else "not compared")
    yield PruneEvent("candidate", message=f"{task.name}: {summary}", fraction=stage / n_stages)
    return per


def _matched_block(rows: list[dict[str, Any]], match: tuple[int, float] | None, same_as_final: bool,
                   s_val: float | None) -> dict[str, Any] | None:
    """The comparison at matched validation loss (None when there is no matched checkpoint)."""
    if match is None:
        return None
    key = "dense" if same_as_final else "dense_matched"
    ms, md, n_m = _ratio(rows, key)
    return {"step": match[0], "val_loss": match[1], "sparse_val_loss": s_val, "same_as_final": same_as_final,
            "tasks": n_m, "dense_edges_geomean": md if n_m else None,
            "sparse_edges_geomean": ms if n_m else None, "ratio": md / ms if n_m else None}


def _write_curves(out_csv: Path, curves: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    w.writerows(curves)
    atomic_write_text(out_csv, buf.getvalue())


def compare(sparse_run: str | Path, dense_run: str | Path, tasks: list[str] | None, cfg: PruneConfig,
            csv_path: Path | None = None, matched: bool = True) -> Generator[PruneEvent, None, dict[str, Any]]:
    """Prune every task in each model (see the module docstring); returns the comparison."""
    from engine.tasks.lookup import get_task

    cfg = cfg.validate()
    sparse, dense = load_run(sparse_run), load_run(dense_run)
    check_same_tokenizer(sparse, dense)
    task_objs = [get_task(t) for t in tasks or []]  # unknown names fail before any work
    s_val, d_val = final_val_loss(sparse.path), final_val_loss(dense.path)
    match, match_note = matched_checkpoint(dense.path, s_val) if matched else (None, "not requested")
    last_dense = max((s for s, _ in checkpoint_val_losses(dense.path)), default=None)
    if not task_objs:
        task_objs = yield from _tasks_both_solve(sparse, dense, cfg)
    models: list[tuple[str, LoadedRun, int | None]] = [("sparse", sparse, None), ("dense", dense, last_dense)]
    same_as_final = match is not None and match[0] == last_dense  # the latest checkpoint is the final model
    if match is not None and not same_as_final:
        yield PruneEvent("setup", message=match_note)
        models.append(("dense_matched", load_run(dense.path, checkpoint=match[0]), match[0]))
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    n_stages = len(task_objs) * len(models)
    for i, task in enumerate(task_objs):
        rows.append((yield from _compare_task(task, models, cfg, i * len(models), n_stages, curves)))
    gs, gd, n_same = _ratio(rows, "dense")
    if n_same == 0:
        errors = "; ".join(f"{r['task']}: {r.get('sparse_error') or r.get('dense_error')}" for r in rows)
        raise UserError(f"no task could be pruned to {cfg.target_loss} in both models ({errors})")
    matched_block = _matched_block(rows, match, same_as_final, s_val)
    out_csv = Path(csv_path) if csv_path else derived_dir(sparse.path) / "compare_curves.csv"
    _write_curves(out_csv, curves)
    return {"sparse_run": str(sparse.path), "dense_run": str(dense.path), "target_loss": cfg.target_loss,
            "ablation": cfg.ablation, "tasks": rows, "sparse_edges_geomean": gs, "dense_edges_geomean": gd,
            "ratio": gd / gs, "tasks_compared": n_same, "sparse_val_loss": s_val, "dense_val_loss": d_val,
            "sparse_steps": read_status(sparse.path).get("steps_done"),
            "dense_steps": read_status(dense.path).get("steps_done"),
            "matched": matched_block, "matched_note": match_note, "csv": str(out_csv), "curves": curves}
