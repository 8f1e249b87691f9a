"""Weight sparsity by projection (SPEC §2): top-k masks, the annealing schedule, density reports.

After every optimizer step each sparsified matrix keeps exactly its budget of largest-|w| entries,
with at least ``min_per_line`` entries forced to survive in every neuron line first. Gradients and
Adam moments stay dense, so a zeroed weight can come back. This module knows nothing about data,
files or Qt; it sees a model only through :func:`sparse_matrices`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from engine.config import SparsityConfig

MATRIX_KINDS = ("embed", "pos", "attn.qkv", "attn.out", "mlp.in", "mlp.out", "unembed")
EMBED_KINDS = ("embed", "pos", "unembed")


@dataclass(frozen=True)
class MatrixSpec:
    """A sparsified weight matrix: its parameter name, class, and which lines get the minimum.

    ``min_axis`` is the axis *along* which the per-line minimum is taken: 1 means every row keeps at
    least j entries (e.g. each MLP neuron's input weights), 0 means every column does (each neuron's
    output weights), None means no per-line minimum.
    """

    name: str
    kind: str
    min_axis: int | None


def sparse_matrices(model: nn.Module) -> list[MatrixSpec]:
    """The sparsified matrices of an :class:`engine.model.GPT`, in a fixed order."""
    specs = [MatrixSpec("wte.weight", "embed", None)]
    if getattr(model, "wpe", None) is not None:
        specs.append(MatrixSpec("wpe", "pos", None))
    if getattr(model, "wpe_add", None) is not None:
        specs.append(MatrixSpec("wpe_add", "pos", None))
    for i in range(model.cfg.n_layer):
        specs += [
            MatrixSpec(f"blocks.{i}.attn.c_attn.weight", "attn.qkv", 1),  # each q/k/v channel's inputs
            MatrixSpec(f"blocks.{i}.attn.c_proj.weight", "attn.out", 0),  # each head channel's outputs
            MatrixSpec(f"blocks.{i}.mlp.c_fc.weight", "mlp.in", 1),  # each neuron's inputs
            MatrixSpec(f"blocks.{i}.mlp.c_proj.weight", "mlp.out", 0),  # each neuron's outputs
        ]
    if not model.cfg.tied_embed:  # tied: lm_head.weight is wte.weight, masked once as the embedding
        specs.append(MatrixSpec("lm_head.weight", "unembed", None))
    return specs


def keep_count(numel: int, frac: float) -> int:
    """Number of entries a matrix of ``numel`` entries keeps at kept fraction ``frac``."""
    return max(1, min(numel, round(frac * numel)))


def topk_mask(w: torch.Tensor, k: int, min_per_line: int = 0, min_axis: int | None = None) -> torch.Tensor:
    """Boolean mask of the k largest-|w| entries of a 2-D w, honouring a per-line minimum.

    First the ``min_per_line`` largest entries of every line along ``min_axis`` are forced in, then
    the rest of the budget goes to the largest remaining entries of the whole matrix. The mask has
    exactly ``max(k, forced)`` True entries (forced exceeds k only when the budget is too small to
    give every line its minimum).
    """
    score = w.detach().abs().float()
    if min_axis is not None and min_per_line > 0:
        j = min(min_per_line, w.shape[min_axis])
        forced_idx = score.topk(j, dim=min_axis, sorted=False).indices
        forced = torch.zeros_like(score, dtype=torch.bool).scatter_(min_axis, forced_idx, True)
        score = score.masked_fill(forced, float("inf"))
        k = max(k, int(forced.sum()))
    if k >= score.numel():
        return torch.ones_like(score, dtype=torch.bool)
    flat = score.view(-1)
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[flat.topk(k, sorted=False).indices] = True
    return mask.view_as(score)


def topk_mask_reference(w: torch.Tensor, k: int, min_per_line: int = 0, min_axis: int | None = None) -> torch.Tensor:
    """Naive reference for :func:`topk_mask` (sorting, Python loops); used by the parity test."""
    a = w.detach().abs().float()
    chosen: set[tuple[int, int]] = set()
    if min_axis is not None and min_per_line > 0:
        n_lines = a.shape[1 - min_axis]
        for line in range(n_lines):
            vals = a[line, :] if min_axis == 1 else a[:, line]
            order = torch.argsort(vals, descending=True, stable=True)[:min_per_line]
            for pos in order.tolist():
                chosen.add((line, pos) if min_axis == 1 else (pos, line))
    rest = sorted(((a[r, c].item(), r, c) for r in range(a.shape[0]) for c in range(a.shape[1])
                   if (r, c) not in chosen), reverse=True)
    for _, r, c in rest[: max(0, k - len(chosen))]:
        chosen.add((r, c))
    mask = torch.zeros_like(a, dtype=torch.bool)
    for r, c in chosen:
        mask[r, c] = True
    return mask


def anneal_fraction(progress: float, target: float, start: float, end: float) -> float:
    """Kept fraction at training progress in [0, 1]: 1 until ``start``, linear to ``target`` at
    ``end``, then held."""
    if progress <= start:
        return 1.0
    if progress >= end or end <= start:
        return target
    t = (progress - start) / (end - start)
    return 1.0 + t * (target - 1.0)


class WeightSparsifier:
    """Applies the annealed top-k projection to a model's matrices and reports L0.

    ``cfg.enabled = False`` (the dense twin) makes :meth:`project` a no-op and the sharkfin factor 1.
    """

    def __init__(self, model: nn.Module, cfg: SparsityConfig):
        self.cfg = cfg
        params = dict(model.named_parameters())
        self.specs = sparse_matrices(model)
        self.params = [params[s.name] for s in self.specs]

    def _target(self, spec: MatrixSpec) -> float:
        return self.cfg.embed_target if spec.kind in EMBED_KINDS else self.cfg.density

    def fraction(self, spec: MatrixSpec, progress: float) -> float:
        if not self.cfg.enabled:
            return 1.0
        return anneal_fraction(progress, self._target(spec), self.cfg.anneal_start, self.cfg.anneal_end)

    def l0_budget(self, progress: float) -> int:
        """Total entries the sparsified matrices may keep at this point of training."""
        return sum(keep_count(p.numel(), self.fraction(s, progress)) for s, p in zip(self.specs, self.params))

    def sharkfin(self, progress: float) -> float:
        """sqrt(L0_target / L0_current): rises during annealing and reaches 1 when it ends."""
        if not self.cfg.enabled:
            return 1.0
        return math.sqrt(self.l0_budget(1.0) / self.l0_budget(progress))

    @torch.no_grad()
    def project(self, progress: float) -> None:
        """Zero all but the top-k entries of every sparsified matrix (in place)."""
        if not self.cfg.enabled:
            return
        for spec, p in zip(self.specs, self.params):
            frac = self.fraction(spec, progress)
            if frac >= 1.0:
                continue
            k = keep_count(p.numel(), frac)
            p.mul_(topk_mask(p, k, self.cfg.min_per_line, spec.min_axis).to(p.dtype))


@torch.no_grad()
def density_report(model: nn.Module) -> dict[str, tuple[int, int]]:
    """``{matrix kind: (nonzeros, entries)}`` over the model's sparsified matrices."""
    params = dict(model.named_parameters())
    out: dict[str, list[int]] = {}
    for spec in sparse_matrices(model):
        p = params[spec.name]
        acc = out.setdefault(spec.kind, [0, 0])
        acc[0] += int(torch.count_nonzero(p))
        acc[1] += p.numel()
    return {k: (v[0], v[1]) for k, v in out.items()}


def densities(model: nn.Module) -> dict[str, float]:
    """``{matrix kind: nonzero fraction}`` plus ``'matrices'`` (all non-embedding matrices together)."""
    rep = density_report(model)
    dens = {k: nz / n for k, (nz, n) in rep.items()}
    mats = [rep[k] for k in rep if k not in EMBED_KINDS]
    if mats:
        dens["matrices"] = sum(nz for nz, _ in mats) / sum(n for _, n in mats)
    return dens
