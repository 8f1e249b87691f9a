"""Where one attention head looks: for each held-out prompt of a task (both sides of each pair), the
last position's attention weights over every position and the sink's share, under the full model,
a circuit (everything outside it ablated) and any extra node ablations.

Computed with the model's own :meth:`engine.model.Attention.pattern` on the query and key
activations after their sites (AbsTopK and the active interventions), so it is exactly what the
forward pass mixed with. Knows nothing about files other than the run, printing or Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import torch

from engine.ablation.ablator import Ablator
from engine.ablation.modes import circuit_mode_for
from engine.errors import UserError
from engine.sites import intervene, recorders, site_name


@dataclass(frozen=True)
class PromptAttention:
    """One prompt: its tokens (as text pieces), the last position's weights over them, the sink's."""

    pair: int
    side: str  # "A" or "B"
    tokens: list[str]
    weights: list[float]  # same length as tokens
    sink: float  # 0.0 for a model without sinks

    def top(self, k: int = 3) -> list[tuple[int, str, float]]:
        """The k positions with the largest weights: (position, token, weight)."""
        order = np.argsort(-np.asarray(self.weights), kind="stable")[:k]
        return [(int(i), self.tokens[i], self.weights[i]) for i in order]

    def to_dict(self) -> dict[str, Any]:
        return {"pair": self.pair, "side": self.side, "tokens": self.tokens, "weights": self.weights,
                "sink": self.sink}


def check_head(cfg, layer: int, head: int) -> None:
    """UserError unless ``layer`` and ``head`` exist in a model of config ``cfg``."""
    if not 0 <= layer < cfg.n_layer:
        raise UserError(f"--layer {layer} is out of range: this model has layers 0-{cfg.n_layer - 1}")
    if not 0 <= head < cfg.n_head:
        raise UserError(f"--head {head} is out of range: this model has heads 0-{cfg.n_head - 1} per layer")


@torch.no_grad()
def head_attention(ablator: Ablator, layer: int, head: int, nodes: Iterable = (), mode: str = "mean",
                   baseline: str = "full", edges: Iterable = ()) -> tuple[np.ndarray, np.ndarray]:
    """(weights (N, T), sink (N,)) of head ``head`` in ``layer`` from each prompt's last position, under
    ``baseline`` and the extra ablations ``nodes`` (replaced by ``mode`` values; with the circuit
    baseline, zero and resample also apply outside the circuit, as in the app) and ``edges`` (single
    weights zeroed, as a click on a weight does). Positions after a prompt's end have weight 0."""
    model, cfg = ablator.model, ablator.cfg
    check_head(cfg, layer, head)
    q_site, k_site = site_name(layer, "attn.q"), site_name(layer, "attn.k")
    hooks, captured = recorders((q_site, k_site))
    # zero and resample clicks ablate the rest of the model that way too, as in the app
    with ablator.intervened(nodes, edges, mode, baseline, circuit_mode_for(mode)), intervene(hooks):
        model.run_from(0, model.embed(ablator.tokens), ablator.tokens, stop=2 * layer + 1)
    att = model.blocks[layer].attn
    pattern = att.pattern(captured[q_site], captured[k_site])[:, head]  # (N, T, T)
    rows = torch.arange(ablator.n, device=pattern.device)
    weights = pattern[rows, ablator.last].float().cpu().numpy()  # (N, T)
    sink = 1.0 - weights.sum(-1) if att.sink is not None else np.zeros(ablator.n, np.float32)
    return weights, np.clip(sink, 0.0, 1.0)


def prompt_attention(ablator: Ablator, enc, tokenizer, layer: int, head: int, **kw) -> list[PromptAttention]:
    """:func:`head_attention` per prompt, with each prompt's tokens as text (``tokenizer`` None: ids)."""
    from engine.data.tokenizer import _piece

    weights, sink = head_attention(ablator, layer, head, **kw)
    out = []
    for i in range(ablator.n):
        n = int(enc.lengths[i])
        ids = [int(t) for t in enc.tokens[i, :n]]
        toks = [(_piece(tokenizer, t) if tokenizer is not None else str(t)) for t in ids]
        out.append(PromptAttention(int(enc.pair_index[i]), "AB"[int(enc.side[i])], toks,
                                   [float(w) for w in weights[i, :n]], float(sink[i])))
    return out


def run_attention(run_dir, task: str | None = None, layer: int = 0, head: int = 0, n_pairs: int = 8,
                  circuit: str | None = None, baseline: str = "full", nodes: Iterable = (), mode: str = "mean",
                  task_file=None) -> dict[str, Any]:
    """The ``circuit-engine attention`` result for a run folder: one record per prompt."""
    from engine.ablation.setup import run_ablator
    from engine.circuits.circuit import load_circuit
    from engine.circuits.library import find_circuit
    from engine.runs import load_run
    from engine.tasks.evaluate import resolve_task_arg

    run = load_run(run_dir)
    check_head(run.config.model, layer, head)
    if baseline == "circuit" and not circuit:
        raise UserError("--baseline circuit needs --circuit (a circuit name or file)")
    t = resolve_task_arg(task, task_file)
    circ = load_circuit(find_circuit(run, circuit), run.model, run.model_hash) if circuit else None
    ablator, enc = run_ablator(run, t, circ, n_pairs)
    prompts = prompt_attention(ablator, enc, run.tokenizer, layer, head, nodes=nodes, mode=mode, baseline=baseline)
    return {"run": str(run.path), "task": t.name, "layer": layer, "head": head, "pairs": n_pairs,
            "prompts_count": len(prompts), "baseline": baseline,
            "circuit": f"{circ.task}/{circ.name}" if circ else None,
            "ablated": [str(n) for n in nodes], "mode": mode, "prompts": [p.to_dict() for p in prompts]}
