"""Faithfulness checks a circuit claim must survive (SPEC §7).

* sufficiency: held-out loss with every node outside the circuit ablated (should stay <= target);
* necessity: loss with only the circuit's nodes ablated (should be large: the task breaks);
* random baseline: mean loss over random same-size node sets outside the circuit, ablated
  (should be small: ablating that many arbitrary nodes hardly matters); unavailable (None, with the
  reason) when fewer than 10 distinct sets of the circuit's size lie outside it;
each under mean and zero ablation. Knows nothing about files or Qt.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Generator

import numpy as np
import torch

from engine.ablation.core import group_nodes, keep_masks_from_nodes
from engine.ablation.means import load_means
from engine.circuits.circuit import Circuit, all_nodes, load_circuit
from engine.circuits.library import find_circuit, task_of_circuit
from engine.jobs import run_to_end
from engine.model import GPT
from engine.pruning.prune import Evaluator, PruneEvent, TaskBatch
from engine.pruning.verdict import MIN_RANDOM_SETS, distinct_sets
from engine.runs import load_run
from engine.tasks.evaluate import task_data


def faithfulness(model: GPT, circuit: Circuit, val_enc, means: dict[str, torch.Tensor],
                 n_random: int = 10, seed: int = 0, frozen_norm: bool = False) -> dict[str, Any]:
    """``{"mean": {...}, "zero": {...}}`` with full, sufficiency, necessity and random-baseline losses."""
    return run_to_end(faithfulness_steps(model, circuit, val_enc, means, n_random, seed, frozen_norm))


def faithfulness_steps(model: GPT, circuit: Circuit, val_enc, means: dict[str, torch.Tensor],
                       n_random: int = 10, seed: int = 0, frozen_norm: bool = False
                       ) -> Generator[PruneEvent, None, dict[str, Any]]:
    """:func:`faithfulness` as a generator: one "faithfulness" event per held-out evaluation, so a
    job that runs it (pruning from the app) can be cancelled between two evaluations."""
    device = next(model.parameters()).device
    batch = TaskBatch(val_enc, device)
    means = {s: v.to(device) for s, v in means.items()}
    in_circuit = circuit.node_set()
    sites = set(circuit.pruned_sites(model.cfg))
    outside = [n for n in all_nodes(model, final=True) if n.site in sites and n not in in_circuit]
    rng = np.random.default_rng(seed)
    k = len(in_circuit)
    n_sets = distinct_sets(len(outside), k)
    unavailable = None
    if n_sets < MIN_RANDOM_SETS:  # no honest random baseline of the circuit's size exists
        unavailable = (f"only {len(outside):,} nodes lie outside the circuit's {k:,}: {n_sets} distinct same-size "
                       f"sets, at least {MIN_RANDOM_SETS} needed")
        n_random = 0
    random_sets = [[outside[i] for i in rng.choice(len(outside), size=k, replace=False)] for _ in range(n_random)]
    zeros = {s: torch.zeros_like(v) for s, v in means.items()}
    total = 2 * (3 + n_random)
    done = 0
    out: dict[str, Any] = {}
    for mode, values in (("mean", means), ("zero", zeros)):
        ev = Evaluator(model, values, batch, frozen_norm)
        runs = [{}, keep_masks_from_nodes(model, kept=group_nodes(circuit.nodes), sites=circuit.pruned_sites(model.cfg)),
                keep_masks_from_nodes(model, ablated=group_nodes(circuit.nodes))]
        runs += [keep_masks_from_nodes(model, ablated=group_nodes(r)) for r in random_sets]
        results = []
        for keep in runs:
            results.append(ev.run(keep))
            done += 1
            yield PruneEvent("faithfulness", done, total, fraction=done / total)
        full, suff, nec = results[:3]
        rand = [r["loss"] for r in results[3:]]
        out[mode] = {
            "full_loss": full["loss"], "full_accuracy": full["accuracy"],
            "sufficiency_loss": suff["loss"], "sufficiency_accuracy": suff["accuracy"],
            "necessity_loss": nec["loss"], "necessity_accuracy": nec["accuracy"],
            "random_loss_mean": float(np.mean(rand)) if rand else None,
            "random_loss_std": float(np.std(rand)) if rand else None,
            "n_random": n_random, "n_pairs": int(len(val_enc.target)) // 2,
            **({"random_unavailable": unavailable} if unavailable else {}),
        }
    return out


def faithfulness_report(run_dir: Path | str, circuit_spec: str, n_pairs: int = 200) -> dict[str, Any]:
    """``circuit-engine faithfulness``: a saved circuit's faithfulness on ``n_pairs`` held-out pairs
    of its task (the seed and frozen-norm setting it was pruned with), with its size."""
    run = load_run(run_dir)
    path = find_circuit(run, circuit_spec)
    circuit = load_circuit(path, run.model, run.model_hash)
    task = task_of_circuit(circuit)
    enc = task_data(run, task, n_pairs, "val", int(circuit.settings.get("seed", 0)))
    faith = faithfulness(run.model, circuit, enc, load_means(run, "mean"),
                         frozen_norm=bool(circuit.settings.get("frozen_norm", False)))
    from engine.pruning.job import with_verdict

    judged = with_verdict(run.model, replace(circuit, metrics={**circuit.metrics, "faithfulness": faith}))
    return {"circuit": str(path), "task": circuit.task, "nodes": circuit.n_nodes, "edges": circuit.n_edges,
            "target_loss": circuit.metrics.get("target_loss"), **faith, "verdict": judged.metrics["verdict"]}
