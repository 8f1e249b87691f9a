"""Faithfulness checks a circuit claim must survive (SPEC §7).

* sufficiency: held-out loss with every node outside the circuit ablated (should stay <= target);
* necessity: loss with only the circuit's nodes ablated (should be large: the task breaks);
* random baseline: mean loss over random same-size node sets outside the circuit, ablated
  (should be small: ablating that many arbitrary nodes hardly matters);
each under mean and zero ablation. Knows nothing about files or Qt.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engine.ablation_core import group_nodes, keep_masks_from_nodes
from engine.circuit import Circuit, all_nodes
from engine.model import GPT
from engine.prune import Evaluator, TaskBatch


def faithfulness(model: GPT, circuit: Circuit, val_enc, means: dict[str, torch.Tensor],
                 n_random: int = 10, seed: int = 0, frozen_norm: bool = False) -> dict[str, Any]:
    """``{"mean": {...}, "zero": {...}}`` with full, sufficiency, necessity and random-baseline losses."""
    device = next(model.parameters()).device
    batch = TaskBatch(val_enc, device)
    means = {s: v.to(device) for s, v in means.items()}
    in_circuit = circuit.node_set()
    outside = [n for n in all_nodes(model) if n not in in_circuit]
    rng = np.random.default_rng(seed)
    k = min(len(in_circuit), len(outside))
    random_sets = [[outside[i] for i in rng.choice(len(outside), size=k, replace=False)] for _ in range(n_random)]
    zeros = {s: torch.zeros_like(v) for s, v in means.items()}
    out: dict[str, Any] = {}
    for mode, values in (("mean", means), ("zero", zeros)):
        ev = Evaluator(model, values, batch, frozen_norm)
        full = ev.run({})
        suff = ev.run(keep_masks_from_nodes(model, kept=group_nodes(circuit.nodes)))
        nec = ev.run(keep_masks_from_nodes(model, ablated=group_nodes(circuit.nodes)))
        rand = [ev.run(keep_masks_from_nodes(model, ablated=group_nodes(r)))["loss"] for r in random_sets]
        out[mode] = {
            "full_loss": full["loss"], "full_accuracy": full["accuracy"],
            "sufficiency_loss": suff["loss"], "sufficiency_accuracy": suff["accuracy"],
            "necessity_loss": nec["loss"], "necessity_accuracy": nec["accuracy"],
            "random_loss_mean": float(np.mean(rand)), "random_loss_std": float(np.std(rand)),
            "n_random": n_random,
        }
    return out
