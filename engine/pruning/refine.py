"""What pruning checks about its own result: whether the masks converged, and which kept nodes do
nothing. A node whose ablation (on top of the rest of the circuit) leaves every held-out logit
unchanged is dropped from the circuit: it only inflated the node count (a key whose head never
looks at it, a neuron whose output no kept node reads). Knows nothing about files or Qt.
"""

from __future__ import annotations

from typing import Any, Generator

import numpy as np
import torch

#: A mask logit starts at 0.1 (N(0.1, 0.01)); one still within this distance of it was never decided.
TAU_INIT, UNMOVED_TAU = 0.1, 0.05
#: The last steps whose mean task loss is compared with the steps before them.
TREND_WINDOW = 0.2
#: A node whose ablation moves no held-out logit by more than this does nothing.
NO_OP_TOL = 1e-6
#: Checking every node costs one held-out evaluation each: circuits above this size are not checked.
MAX_NO_OP_CHECK = 600


def mask_convergence(taus: dict[str, torch.Tensor], trace: list[float]) -> dict[str, Any]:
    """How settled the learned masks are: the share of nodes whose mask logit is still within
    UNMOVED_TAU of where it started, and how much the task loss still fell over the last
    TREND_WINDOW of the steps (relative to the steps just before them; positive = still falling)."""
    flat = torch.cat([t.detach().reshape(-1).float().cpu() for t in taus.values()])
    unmoved = float(((flat - TAU_INIT).abs() < UNMOVED_TAU).float().mean()) if flat.numel() else 0.0
    n = len(trace)
    w = max(1, int(round(TREND_WINDOW * n)))
    if n >= 2 * w:
        before, last = float(np.mean(trace[-2 * w:-w])), float(np.mean(trace[-w:]))
        still_falling = (before - last) / max(abs(before), 1e-12)
    else:
        still_falling = None
    return {"steps": n, "unmoved_share": unmoved, "active_share": float((flat >= 0).float().mean()),
            "loss_still_falling": still_falling}


def drop_no_ops(nodes: list, keep_masks, logits_fn) -> Generator[int, None, tuple[list, list]]:
    """Remove, one at a time, the nodes whose ablation leaves every logit of the circuit unchanged.

    ``keep_masks(nodes)`` builds the keep masks of a node list; ``logits_fn(keep)`` evaluates them.
    Re-checks a node only when the circuit changed since its last check, until every kept node
    was checked against the final circuit. Yields the number of checks so far; returns
    (kept nodes, dropped nodes). Each removal is checked against the current circuit, so the result's
    logits equal the original's within NO_OP_TOL times the number of removals."""
    current = list(nodes)
    reference = logits_fn(keep_masks(current))
    dropped: list = []
    version, seen = 0, {}  # version: bumped by every drop; seen[node]: the version it was last checked against
    checked = 0
    while True:  # dropping one node can make another a no-op (a query whose key went): until none is left
        stale = [n for n in current if seen.get(n) != version]
        if not stale:
            return current, dropped
        for node in stale:
            trial = [n for n in current if n != node]
            checked += 1
            seen[node] = version
            if trial:  # never empty a circuit: its verdict says what its last node is worth
                logits = logits_fn(keep_masks(trial))
                if float((logits - reference).abs().max()) <= NO_OP_TOL:
                    current, reference = trial, logits
                    dropped.append(node)
                    version += 1
            yield checked
