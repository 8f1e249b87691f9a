"""Many single-node ablations in few forward passes: each node of a list ablated alone on top of a
baseline, giving what ``Ablator.evaluate([node])`` gives one node at a time (the naive reference; a
parity test keeps the two equal), for ranking node effects (:mod:`engine.mechanism.rank`;
``docs/architecture.md``, "Node effects").

Three savings, none of them an approximation:

1. **Packed positions.** The model is causal, and mean and zero ablation give a node the same value
   at every position, so a position's activations depend only on the prompt up to it. Every
   per-position step (norms, matrix products, AbsTopK, the MLP) runs once per distinct prefix: the
   prompts form a trie, and sides A and B of a pair share everything before the token where they
   differ (on the demo's tasks about half of the padded positions are repeats). Attention gathers the
   packed queries, keys and values into the Ablator's length-sorted chunks and scatters its output
   back, each prefix from one chosen occurrence.
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
from engine.ablation.core import SITE_RANK, last_layer_attention
from engine.jobs import run_to_end
from engine.kernels import module_linear
from engine.sites import NodeId, intervene, parse_site, site_half_block, site_width

#: Replicas per forward: about this many packed positions in all (measured on the demo, 2 cores: more
#: replicas per forward are no faster once the batch outgrows the caches).
REPLICA_POSITIONS = 2400
QKV = ("attn.q", "attn.k", "attn.v")
#: Site kinds whose value only a linear layer reads: (half-block module, its Linear).
_CONSUMER = {"attn.read": ("attn", "c_attn"), "attn.v": ("attn", "c_proj"), "mlp.read": ("mlp", "c_fc"),
             "mlp.neuron": ("mlp", "c_proj")}


@dataclass(frozen=True)
class ScanProgress:
    """``done`` of ``total`` nodes evaluated."""

    done: int
    total: int


class Packing:
    """The Ablator's prompts as a trie of prefixes: ``n`` packed positions; per length chunk, the packed
    index of each position (``maps``, (B, T); padding: 0, never read) and where that position is the
    occurrence its prefix is computed from (``own``, (B, T) bool); ``rep``: for each packed position,
    its occurrence's row in the chunks' positions laid end to end."""

    def __init__(self, ablator: Ablator) -> None:
        ids: dict[tuple[int, int], int] = {}
        rep: list[int] = []
        self.maps, self.own = [], []
        offset = 0
        for rows, tokens, _, _ in ablator._chunks:
            B, T = tokens.shape
            index = [[0] * T for _ in range(B)]
            own = [[False] * T for _ in range(B)]
            for b, (row, n) in enumerate(zip(tokens.tolist(), ablator.lengths[rows].tolist())):
                parent = -1
                for p in range(n):
                    u = ids.setdefault((parent, row[p]), len(rep))
                    if u == len(rep):
                        rep.append(offset + b * T + p)
                        own[b][p] = True
                    index[b][p] = parent = u
            self.maps.append(torch.tensor(index, dtype=torch.long, device=ablator.device))
            self.own.append(torch.tensor(own, dtype=torch.bool, device=ablator.device))
            offset += B * T
        self.rep = torch.tensor(rep, dtype=torch.long, device=ablator.device)
        self.n = len(rep)

    def pack(self, per_chunk: Iterable[torch.Tensor]) -> torch.Tensor:
        """Per-chunk (B, T, width) tensors -> (n, width), one row per packed position."""
        return torch.cat([t.reshape(-1, t.shape[-1]) for t in per_chunk])[self.rep]


def _attend(model, layer: int, q, k, v, pk: Packing, kr: int) -> torch.Tensor:
    """The layer's attention mix of packed q, k, v (kr, P, inner), run in the Ablator's chunks."""
    out = q.new_empty(q.shape)
    for m, own in zip(pk.maps, pk.own):
        B, T = m.shape
        y = model.blocks[layer].attn.mix(*(t[:, m].reshape(kr * B, T, -1) for t in (q, k, v)))
        out[:, m[own]] = y.view(kr, B, T, -1)[:, own]
    return out


def _half(model, h: int, x, pk: Packing, kr: int, pre: dict | None = None, rank: int = -1) -> torch.Tensor:
    """Half-block ``h`` on the packed residual x (kr, P, d_resid); with ``pre``, restarting inside it at
    site rank ``rank`` from the clean run's activations there ((P, width), hooks applied), as
    :func:`engine.ablation.core.half_block_from` does on the padded chunks."""
    layer, blk = h // 2, model.blocks[h // 2]
    start = rank if pre is not None else -1
    hooked = lambda kind: model.site_hooks(layer, kind, pre[kind].expand(kr, -1, -1))  # noqa: E731
    if h % 2 == 1:
        if start < 0:
            return model.mlp_half(layer, x)
        if start <= 1:
            hid = hooked("mlp.neuron") if start == 1 else \
                model._site(layer, "mlp.neuron", model.act(module_linear(blk.mlp.c_fc, hooked("mlp.read"))))
            write = model._site(layer, "mlp.write", module_linear(blk.mlp.c_proj, hid))
        else:
            write = hooked("mlp.write")
        return model._write(x, write, 1)
    if start >= 2:
        return model._write(x, hooked("attn.write"), 0)
    if start == 1:
        q, k, v = (hooked(kind) for kind in QKV)
    else:
        read = hooked("attn.read") if start == 0 else model._site(layer, "attn.read", model.read(layer, 0, x))
        q, k, v = module_linear(blk.attn.c_attn, read).chunk(3, dim=-1)
        q, k, v = (model._site(layer, kind, t) for kind, t in zip(QKV, (q, k, v)))
    write = model._site(layer, "attn.write", module_linear(blk.attn.c_proj, _attend(model, layer, q, k, v, pk, kr)))
    return model._write(x, write, 0)


def _last_logits(ablator: Ablator, x, pk: Packing, kr: int) -> torch.Tensor:
    """From the packed residual before the last layer (kr, P, d_resid) to the logits (kr, N, V) in the
    ablator's sequence order: keys and values at every packed position, the rest at the last ones."""
    model = ablator.model
    layer = ablator.cfg.n_layer - 1
    attn = model.blocks[layer].attn
    inner = attn.n_head * attn.d_head
    read = model._site(layer, "attn.read", model.read(layer, 0, x))
    kv = module_linear(attn.c_attn, read, (inner, 3 * inner))
    k, v = model._site(layer, "attn.k", kv[..., :inner]), model._site(layer, "attn.v", kv[..., inner:])
    parts = []
    for m, (_, _, last, last_tok) in zip(pk.maps, ablator._chunks):
        B, T = m.shape
        kh, vh = (t[:, m].reshape(kr * B, T, -1) for t in (k, v))
        x_last = x[:, m.gather(1, last.view(-1, 1))[:, 0]].reshape(kr * B, 1, -1)
        y = last_layer_attention(model, x_last.expand(-1, T, -1), last.repeat(kr), (kh, vh))
        y = model.mlp_half(layer, y)
        parts.append(model.unembed(y, last_tok.repeat(kr, 1))[:, 0].view(kr, B, -1))
    return torch.cat(parts, 1)[:, ablator._inverse]


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


def _packed(memo: dict, key, make) -> torch.Tensor:
    if key not in memo:
        memo[key] = make()
    return memo[key]


def _forward(ablator: Ablator, pk: Packing, caches: list, pre: dict, point: tuple[int, int],
             nodes: list[NodeId], hooks: dict) -> torch.Tensor:
    """Logits (kr, N, V) with node ``j`` of ``nodes`` ablated in replica ``j``, from ``point``."""
    h0, rank = point
    kr, last_attn = len(nodes), 2 * ablator.cfg.n_layer - 2
    x = _packed(pre, h0, lambda: pk.pack(c[0][h0] for c in caches)).expand(kr, -1, -1)
    with intervene(hooks):
        if h0 < last_attn:
            kinds = [k for k in ("attn.read", *QKV, "attn.write", "mlp.read", "mlp.neuron", "mlp.write")
                     if SITE_RANK[k] == rank and (h0 % 2 == 0) == k.startswith("attn")]
            here = {k: _packed(pre, (h0, k), lambda k=k: pk.pack(c[1][h0][k] for c in caches)) for k in kinds}
            x = _half(ablator.model, h0, x, pk, kr, here, rank)
            for h in range(h0 + 1, last_attn):
                x = _half(ablator.model, h, x, pk, kr)
        return _last_logits(ablator, x, pk, kr)


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
                logits = _forward(ablator, pk, caches, pre, point, chosen,
                                  _hooks(ablator, chosen, mode, baseline, complement))
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
