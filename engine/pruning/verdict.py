"""Whether a pruned result is a faithful circuit, said in one word with its reasons.

* ``not_a_circuit``: it keeps more than MAX_SHARE of the model's prunable nodes, or its node masks
  did not converge (more than MAX_UNMOVED of the mask logits never moved from where they started:
  the mask steps were too few to decide them). Its faithfulness numbers describe most of the model,
  not a mechanism.
* ``faithful``: the circuit alone reaches the target loss and does the task (its loss at most
  SUFFICIENCY_CEILING of chance, ln 2: sufficiency), and ablating it breaks the
  task far more than ablating random node sets of its size (necessity: its loss is at least
  NECESSITY_FLOOR of chance, ln 2, and above the random baseline by NECESSITY_MARGIN standard
  deviations), under mean ablation (the ablation it was pruned with when that was zero).
* ``not_faithful``: any of those fails, or they could not be checked (no faithfulness numbers, or no
  random baseline exists: fewer than MIN_RANDOM_SETS distinct same-size sets lie outside it).

Every reason says what was measured and what to try. Knows nothing about files or Qt.
"""

from __future__ import annotations

import math
from typing import Any

MAX_SHARE = 0.25
MAX_UNMOVED = 0.25
MIN_RANDOM_SETS = 10
NECESSITY_FLOOR = 0.5  # of chance (ln 2), the two-way loss of a coin flip
NECESSITY_MARGIN = 3.0
SUFFICIENCY_CEILING = 0.8  # of chance: a circuit alone above this does not perform the task
CHANCE = math.log(2.0)


def distinct_sets(outside: int, size: int) -> int:
    """How many distinct node sets of ``size`` lie outside a circuit (capped at a large number)."""
    if size > outside or size < 0:
        return 0
    return math.comb(outside, size) if outside < 10_000 else 10**9


def _size_reasons(n_nodes: int, total: int) -> list[str]:
    share = n_nodes / max(1, total)
    if share <= MAX_SHARE:
        return []
    return [f"keeps {n_nodes:,} of the model's {total:,} nodes ({share:.0%}; a circuit keeps at most "
            f"{MAX_SHARE:.0%}): raise the mask steps, drop --frozen-norm, or try another k_coef"]


def _convergence_reasons(convergence: dict[str, Any] | None) -> list[str]:
    if not convergence or convergence.get("unmoved_share") is None:
        return []
    unmoved = convergence["unmoved_share"]
    if unmoved <= MAX_UNMOVED:
        return []
    return [f"the node masks did not converge: {unmoved:.0%} of them never moved from their initial value in "
            f"{convergence.get('steps')} mask steps (at most {MAX_UNMOVED:.0%}); give pruning more mask steps"]


def _faith_reasons(faith: dict[str, Any] | None, mode: str, target: float | None) -> tuple[list[str], list[str]]:
    """(reasons it is not faithful, notes) from the faithfulness numbers of one ablation mode."""
    f = (faith or {}).get(mode)
    if not f:
        return ["faithfulness was not checked (prune again with faithfulness checks)"], []
    reasons, notes = [], []
    if target is not None and f["sufficiency_loss"] > target:
        reasons.append(f"not sufficient: the circuit alone has held-out loss {f['sufficiency_loss']:.3f} ({mode} "
                       f"ablation), above the target {target}")
    if f["sufficiency_loss"] > SUFFICIENCY_CEILING * CHANCE:
        reasons.append(f"the circuit alone is near chance: loss {f['sufficiency_loss']:.3f}, chance is ln 2 = "
                       f"{CHANCE:.3f} (at most {SUFFICIENCY_CEILING * CHANCE:.3f} counts as doing the task); prune "
                       "with a lower --target-loss, or train the model until it does the task")
    floor = NECESSITY_FLOOR * CHANCE
    if f["necessity_loss"] < floor:
        reasons.append(f"not necessary: with the circuit ablated the loss is {f['necessity_loss']:.3f}, below "
                       f"{floor:.3f} (half of chance, ln 2): the task still works without it")
    rand, std = f.get("random_loss_mean"), f.get("random_loss_std")
    if rand is None:
        reasons.append(f"no random baseline: {f.get('random_unavailable', 'no random node sets of its size')}")
    elif f["necessity_loss"] < rand + NECESSITY_MARGIN * (std or 0.0):
        reasons.append(f"ablating the circuit ({f['necessity_loss']:.3f}) hurts no more than ablating random sets "
                       f"of its size ({rand:.3f} ± {std:.3f}, {NECESSITY_MARGIN:g} std needed)")
    else:
        notes.append(f"necessity {f['necessity_loss']:.3f} vs random same-size sets {rand:.3f} ± {std:.3f} "
                     f"over {f.get('n_random')} sets")
    return reasons, notes


def verdict(n_nodes: int, total_nodes: int, faith: dict[str, Any] | None, target: float | None,
            convergence: dict[str, Any] | None = None, ablation: str = "mean") -> dict[str, Any]:
    """``{"verdict", "reasons", "warnings"}``: see the module docstring. ``warnings`` are the reasons
    of a ``not_a_circuit`` or ``not_faithful`` verdict as one-line messages (for ``--json`` and the app)."""
    structural = _size_reasons(n_nodes, total_nodes) + _convergence_reasons(convergence)
    mode = ablation if ablation in ("mean", "zero") else "mean"
    faith_reasons, notes = _faith_reasons(faith, mode, target)
    if structural:
        word, reasons = "not_a_circuit", structural + faith_reasons
    elif faith_reasons:
        word, reasons = "not_faithful", faith_reasons
    else:
        word, reasons = "faithful", [f"sufficient: loss {faith[mode]['sufficiency_loss']:.3f} <= target {target}"] + notes
    return {"verdict": word, "reasons": reasons, "warnings": [] if word == "faithful" else reasons,
            "nodes": n_nodes, "model_nodes": total_nodes, "ablation": mode,
            "criteria": {"max_share": MAX_SHARE, "max_unmoved": MAX_UNMOVED, "min_random_sets": MIN_RANDOM_SETS,
                         "necessity_floor": NECESSITY_FLOOR * CHANCE, "necessity_margin_std": NECESSITY_MARGIN,
                         "sufficiency_ceiling": SUFFICIENCY_CEILING * CHANCE}}
