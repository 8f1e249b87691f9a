"""One held-out pair traced in full (issue 18, "Positions" and "Attribution"): every node's activation
at every position of both prompts, every head's attention pattern, each side's logit difference and
an attribution-patching estimate of every node's effect on it, under the baseline and the live
ablations, exactly as the Ablator's forward computes them.

* **Positions.** ``acts[site]`` is (2, T, width): what the forward used at each position (after
  AbsTopK, the baseline's ablation of everything outside a circuit and the user's ablations), side A
  in row 0 and B in row 1; positions after a prompt's end are NaN.
* **Attention.** ``patterns`` is (n_layer, 2, n_head, T, T), the softmax probabilities of
  :meth:`engine.model.Attention.pattern` (without the sink's column: a row sums to 1 - the sink's share).
* **Node effects on the pair** (``effects[site]``, (2, width)): attribution patching as in
  :mod:`engine.mechanism.rank`, per side. Every site gets a per-side keep mask ``m`` of ones that
  requires a gradient (the site becomes ``x * m + v * (1 - m)``, ``v`` the ablation mode's value); one
  backward of the logit differences gives ``d ld / d m = sum over positions of d ld / dy * (x - v)``, so
  ablating the node alone changes that side's logit difference (target minus foil) by about
  ``-d ld / d m``. An estimate, first order: :mod:`engine.mechanism.rank` checks such estimates exactly.
  Nodes already ablated (or outside the circuit under the circuit baseline) get 0.

Edge attributions (a weight times its source's signal) are computed from this trace by
:func:`engine.scene.attribution.edge_attribution` (numpy, no torch). Knows nothing about Qt or files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from engine.ablation.ablator import Ablator
from engine.ablation.core import mask_hooks
from engine.errors import UserError
from engine.sites import all_sites, intervene, recorders, site_name, site_width


@dataclass(frozen=True, eq=False)
class PairTrace:
    """See the module docstring. Plain numpy data: it may cross threads and be kept."""

    pair: int
    lengths: tuple[int, int]  # prompt lengths of sides A and B
    tokens: tuple[tuple[int, ...], tuple[int, ...]]  # token ids of each side's prompt
    acts: dict  # site -> (2, T, width) float32, NaN after a prompt's end
    patterns: np.ndarray  # (n_layer, 2, n_head, T, T) float32
    logit_diff: np.ndarray  # (2,) target minus foil logit per side, as traced
    effects: dict  # site -> (2, width) float32: estimated change of each side's logit diff when ablated
    mode: str = "mean"
    baseline: str = "full"
    nodes: tuple[str, ...] = ()
    edges: tuple[str, ...] = ()
    d_head: int = 1

    @property
    def last(self) -> np.ndarray:
        """(2,) each side's last prompt position."""
        return np.asarray(self.lengths, np.int64) - 1

    def positions(self, node: str) -> np.ndarray | None:
        """(2, T) the node's activation at every position of A and B (NaN after each end), or None
        when its site was not traced."""
        return _channel(self.acts, node)

    def effect(self, node: str) -> np.ndarray | None:
        """(2,) the node's estimated effect on each side's logit difference, or None."""
        return _channel(self.effects, node)

    def pattern(self, layer: int, head: int) -> np.ndarray:
        """(2, T, T) one head's attention probabilities on sides A and B."""
        return self.patterns[layer, :, head]


def _channel(per_site: dict, node: str) -> np.ndarray | None:
    """``per_site[site][..., index]`` of node ``site:index`` (its last axis is the channel), or None."""
    site, _, idx = str(node).rpartition(":")
    table = per_site.get(site)
    if table is None or not idx.isdigit() or int(idx) >= table.shape[-1]:
        return None
    return table[..., int(idx)]


def _rows(ablator: Ablator, pair: int) -> torch.Tensor:
    n_pairs = ablator.n // 2
    if not 0 <= pair < n_pairs:
        raise UserError(f"pair {pair} is out of range: this task has pairs 0-{n_pairs - 1}")
    return torch.tensor([2 * pair, 2 * pair + 1], device=ablator.device)


def trace_pair(ablator: Ablator, pair: int, nodes: Iterable = (), edges: Iterable = (), mode: str = "mean",
               baseline: str = "full", circuit_mode: str | None = None) -> PairTrace:
    """Trace held-out pair ``pair`` (rows 2*pair and 2*pair+1 of the ablator's task) under ``baseline``
    and the ablations ``nodes`` (``mode``) and ``edges``, as :meth:`Ablator.evaluate` would run them.
    Effects are estimated for ablating with ``mode`` (mean and zero; resample uses each prompt's own
    resample values)."""
    nodes, edges = tuple(str(n) for n in nodes), tuple(str(e) for e in edges)
    model, cfg = ablator.model, ablator.cfg
    rows = _rows(ablator, pair)
    lengths = ablator.lengths[rows]
    T = int(lengths.max())
    tokens = ablator.tokens[rows, :T]
    values = ablator.values(mode, rows)
    sites = [s for s in all_sites(cfg, final=True) if s in values]
    masks = {s: torch.ones(2, 1, site_width(cfg, s), device=ablator.device, requires_grad=True) for s in sites}
    hooks, captured = recorders(sites)
    with ablator.intervened(nodes, edges, mode, baseline, circuit_mode, rows), torch.enable_grad(), \
            intervene(mask_hooks(masks, values)), intervene(hooks):
        logits = model.run_from(0, model.embed(tokens), tokens)  # (2, T, V)
        at = logits[torch.arange(2), lengths - 1]  # (2, V)
        ld = at.gather(1, ablator.target[rows].view(-1, 1)) - at.gather(1, ablator.foil[rows].view(-1, 1))
        ld.sum().backward()
        # patterns while the captured q and k still are what the forward used
        with torch.no_grad():
            patterns = torch.stack([model.blocks[layer].attn.pattern(captured[site_name(layer, "attn.q")],
                                                                     captured[site_name(layer, "attn.k")])
                                    for layer in range(cfg.n_layer)]).float().cpu().numpy()
    after = np.arange(T)[None, :] >= lengths.cpu().numpy()[:, None]  # (2, T) past a prompt's end
    acts = {}
    for s in sites:
        a = captured[s].detach().float().cpu().numpy().copy()
        a[after] = np.nan
        acts[s] = a
    effects = {s: (-m.grad[:, 0]).detach().float().cpu().numpy() for s, m in masks.items()}
    lens = tuple(int(v) for v in lengths.cpu())
    toks = tuple(tuple(int(t) for t in tokens[i, :lens[i]].cpu()) for i in range(2))
    return PairTrace(pair=int(pair), lengths=lens, tokens=toks, acts=acts, patterns=patterns,
                     logit_diff=ld.detach().float().cpu().numpy().reshape(2), effects=effects, mode=mode,
                     baseline=baseline, nodes=nodes, edges=edges, d_head=cfg.d_head)
