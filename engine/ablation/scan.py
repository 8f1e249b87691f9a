"""Many single-node ablations in few forward passes: each node of a list ablated alone on top of a
baseline, giving what ``Ablator.evaluate([node])`` gives one node at a time (the naive reference; a
parity test keeps the two equal), for ranking node effects (:mod:`engine.mechanism.rank`;
``docs/architecture.md``, "Node effects").

Three savings, none of them an approximation:

1. **Packed positions** (:mod:`engine.ablation.packed`): every per-position step runs once per
   distinct prompt prefix (sides A and B of a pair share everything before the token where they
   differ).
2. **Grouped by restart point.** Nodes whose ablation first changes the same computation (half-block
   and site rank) restart together from the Ablator's cached clean run, several per forward: the
   packed batch is repeated, replica ``j`` with node ``j`` ablated.
3. **Skipped where nothing can change.** A node whose only consumer is a linear layer (attention and
   MLP reads, MLP neurons, attention values) and whose column there is all zero, or whose activation
   already equals its ablation value at every position, gets the baseline's result without a forward.

Resample ablation (a value per sequence) and the last layer's nodes that leave its keys and values alone
(the Ablator then runs the last positions only, cheaper still) go through ``Ablator.evaluate``.
:func:`scan` is a generator of :class:`ScanProgress` (closing it stops the scan between forwards).
Knows nothing about files or Qt.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Generator, Iterable

import torch

from engine.ablation.ablator import AblationResult, Ablator
from engine.ablation.core import SITE_RANK
from engine.ablation.packed import Packing, _packed, forward
from engine.jobs import run_to_end
from engine.sites import NodeId, parse_site, site_half_block, site_width

#: Replicas per forward: about this many packed positions in all (measured on the demo, 2 cores: more
#: replicas per forward are no faster once the batch outgrows the caches).
REPLICA_POSITIONS = 2400
#: Site kinds whose value only a linear layer reads: (half-block module, its Linear).
_CONSUMER = {"attn.read": ("attn", "c_attn"), "attn.v": ("attn", "c_proj"), "mlp.read": ("mlp", "c_fc"),
             "mlp.neuron": ("mlp", "c_proj")}


@dataclass(frozen=True)
class ScanProgress:
    """``done`` of ``total`` nodes evaluated."""

    done: int
    total: int


def _replicated(mask: torch.Tensor, value: torch.Tensor, first):
    """A hook for ``mask`` (kr, 1, width): replica ``j`` of the batch (rows laid replica after replica)
    gets ``x * mask[j] + value * (1 - mask[j])``, after the baseline's hook ``first`` (if any)."""
    def hook(x: torch.Tensor) -> torch.Tensor:
        if first is not None:
            x = first(x)
        y = x.reshape(mask.shape[0], -1, x.shape[-1])
        return (y * mask + value * (1 - mask)).view(x.shape)
    return hook


def _hooks(ablator: Ablator, nodes: list[NodeId], mode: str, baseline: str, complement: str | None) -> dict:
    base = ablator._baseline_hooks(baseline, complement)
    values = ablator.values(mode)
    masks: dict[str, torch.Tensor] = {}
    for j, n in enumerate(nodes):
        if n.site not in masks:
            masks[n.site] = torch.ones(len(nodes), 1, site_width(ablator.cfg, n.site), device=ablator.device)
        masks[n.site][j, 0, n.index] = 0.0
    return {**base, **{s: _replicated(m, values[s], base.get(s)) for s, m in masks.items()}}


def restart_point(ablator: Ablator, node: NodeId) -> tuple[int, int] | None:
    """(half-block, site rank) a packed forward restarts from for ``node``, or None when the Ablator's
    own path is the cheaper one (the last layer's query, writes and MLP; ``final_resid``)."""
    L = ablator.cfg.n_layer
    h, kind = site_half_block(node.site, L), parse_site(node.site)[1]
    if h < 2 * L - 2 or (h == 2 * L - 2 and kind in ("attn.read", "attn.k", "attn.v")):
        return h, SITE_RANK[kind]
    return None


def no_outgoing_weight(ablator: Ablator, node: NodeId) -> bool:
    """Whether the one linear layer that reads ``node`` has an all-zero column for it: then ablating it
    changes nothing anywhere."""
    layer, kind = parse_site(node.site)
    if kind not in _CONSUMER or layer >= ablator.cfg.n_layer:
        return False
    part, linear = _CONSUMER[kind]
    weight = getattr(getattr(ablator.model.blocks[layer], part), linear).weight
    return not bool(weight[:, node.index].any())


def _kept(ablator: Ablator, node: NodeId, baseline: str) -> bool:
    """Whether the baseline keeps ``node`` (then its value is its clean activation)."""
    keep = ablator._circuit_keep if baseline == "circuit" else None
    return keep is None or node.site not in keep or bool(keep[node.site][node.index] == 1)


def _plan(ablator: Ablator, nodes: list[NodeId], mode: str, baseline: str, pk: Packing | None,
          caches: list, pre: dict) -> tuple[dict, list[int], list[int]]:
    """Packed groups {(h, rank): [node positions]} (none without ``pk``: resample), the positions the
    Ablator evaluates alone and those that change nothing; packed clean activations read on the way go
    into ``pre`` ({(h, kind): (P, width)})."""
    groups: dict[tuple[int, int], list[int]] = {}
    alone, unchanged = [], []
    for i, n in enumerate(nodes):
        point = restart_point(ablator, n) if pk is not None else None
        if no_outgoing_weight(ablator, n):
            unchanged.append(i)
            continue
        if point is None:
            alone.append(i)
            continue
        h, kind = point[0], parse_site(n.site)[1]
        if h < 2 * ablator.cfg.n_layer - 2 and _kept(ablator, n, baseline):
            clean = _packed(pre, (h, kind), lambda: pk.pack(c[1][h][kind] for c in caches))
            if bool((clean[:, n.index] == ablator.values(mode)[n.site][n.index]).all()):
                unchanged.append(i)  # already at its ablation value everywhere
                continue
        groups.setdefault(point, []).append(i)
    return groups, alone, unchanged


def scan(ablator: Ablator, nodes: Iterable, mode: str = "mean", baseline: str = "full",
         circuit_mode: str | None = None, replicas: int | None = None
         ) -> Generator[ScanProgress, None, list[AblationResult]]:
    """Each of ``nodes`` ablated alone (``mode``) on top of ``baseline`` (and ``circuit_mode``, as in
    :meth:`Ablator.evaluate`): a generator of progress returning one AblationResult per node, in order.
    ``replicas``: nodes per packed forward (default: about :data:`REPLICA_POSITIONS` positions)."""
    ns = ablator._parse(nodes, ())[0]
    complement = ablator._complement_mode(baseline, circuit_mode)
    ablator._check_values(mode, {n.site for n in ns})
    base = ablator.evaluate((), (), mode, baseline, circuit_mode)
    pk = Packing(ablator) if "resample" not in (mode, complement) else None
    pre: dict = {}  # packed clean activations: {h: residual, (h, kind): a site's}
    with torch.no_grad(), ablator._lock:
        caches = ablator._cache(baseline, complement)
        groups, alone, unchanged = _plan(ablator, ns, mode, baseline, pk, caches, pre)
    out: list[AblationResult | None] = [None] * len(ns)
    for i in unchanged:
        out[i] = dataclasses.replace(base, n_nodes=1, elapsed_ms=0.0, logit_diff=base.logit_diff.copy(),
                                     p_correct=base.p_correct.copy())
    done = len(unchanged)
    kr = max(1, replicas or REPLICA_POSITIONS // max(1, pk.n if pk is not None else 1))
    for point, members in sorted(groups.items()):
        for s in range(0, len(members), kr):
            part = members[s:s + kr]
            t0 = time.perf_counter()
            with torch.no_grad(), ablator._lock:
                chosen = [ns[i] for i in part]
                logits = forward(ablator, pk, caches, pre, point, len(chosen),
                                 _hooks(ablator, chosen, mode, baseline, complement),
                                 ablator._baseline_hooks(baseline, complement))
                for j, i in enumerate(part):
                    r = ablator._result(logits[j], t0, mode, baseline, complement, [ns[i]], [])
                    out[i] = dataclasses.replace(r, elapsed_ms=r.elapsed_ms / len(part))
            done += len(part)
            yield ScanProgress(done, len(ns))
    for i in alone:
        out[i] = ablator.evaluate([ns[i]], (), mode, baseline, circuit_mode)
        done += 1
        yield ScanProgress(done, len(ns))
    return out


def evaluate_each(ablator: Ablator, nodes: Iterable, mode: str = "mean", baseline: str = "full",
                  circuit_mode: str | None = None, replicas: int | None = None) -> list[AblationResult]:
    """:func:`scan` to the end: one AblationResult per node, in order."""
    return run_to_end(scan(ablator, nodes, mode, baseline, circuit_mode, replicas))
