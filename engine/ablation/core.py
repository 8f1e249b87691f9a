"""Running a frozen model on task prompts with some nodes replaced: the shared core of pruning,
faithfulness checks and the interactive ablator.

A *keep mask* per site is a (width,) tensor in [0, 1] (1 = node kept, 0 = node replaced by its
ablation value: its pretraining mean, or zero). Only the last prompt position's logits are needed
for a task metric, so the residual is gathered there before the unembedding.
Knows nothing about optimisation, files or Qt.
"""

from __future__ import annotations

import math

from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from engine.kernels import module_linear
from engine.model import GPT
from engine.sites import HALF_BLOCK_KINDS, SITE_STAGE, NodeId, intervene, site_width
from engine.tasks.lookup import logit_diff

NORM_POINTS_SUFFIX = ".scale"


def norm_points(model: GPT) -> list[str]:
    pts = []
    for i in range(model.cfg.n_layer):
        pts += [f"blocks.{i}.ln1.scale", f"blocks.{i}.ln2.scale"]
    return pts + ["ln_f.scale"]


def mask_hooks(keep: Mapping[str, torch.Tensor], values: Mapping[str, torch.Tensor]) -> dict[str, Callable]:
    """Hooks replacing each site's activation x by keep*x + (1-keep)*value."""
    def make(m: torch.Tensor, v: torch.Tensor):
        return lambda x: x * m + v * (1 - m)
    return {site: make(m, values[site]) for site, m in keep.items()}


def keep_masks_from_nodes(model: GPT, ablated: Mapping[str, list[int]] | None = None,
                          kept: Mapping[str, list[int]] | None = None,
                          sites: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Hard keep masks (on the model's device): everything except ``ablated`` nodes, or only ``kept``
    nodes of ``sites`` (default: the block sites; a circuit pruned over final_resid too names it)."""
    from engine.sites import all_sites
    device = next(model.parameters()).device
    out = {}
    if sites is None:
        sites = all_sites(model.cfg) if kept is not None else all_sites(model.cfg, final=True)
    if kept is None:  # only the sites with ablated nodes get a mask (and a hook)
        sites = [site for site in sites if (ablated or {}).get(site)]
    for site in sites:
        w = site_width(model.cfg, site)
        if kept is not None:
            m = torch.zeros(w)
            idx = kept.get(site, [])
            if len(idx):
                m[torch.as_tensor(list(idx), dtype=torch.long)] = 1.0
        else:
            idx = (ablated or {}).get(site, [])
            if not len(idx):
                continue  # untouched site: no hook needed
            m = torch.ones(w)
            m[torch.as_tensor(list(idx), dtype=torch.long)] = 0.0
        out[site] = m.to(device)
    return out


def group_nodes(nodes) -> dict[str, list[int]]:
    by: dict[str, list[int]] = {}
    for n in nodes:
        n = n if isinstance(n, NodeId) else NodeId.parse(str(n))
        by.setdefault(n.site, []).append(n.index)
    return by


def gather_last(x: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """x (N, T, d) -> (N, 1, d) at each row's last position ``last`` (N,)."""
    return x.gather(1, last.view(-1, 1, 1).expand(-1, 1, x.shape[-1]))


def last_layer_attention(model: GPT, x: torch.Tensor, last: torch.Tensor,
                         kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The last layer's attention half-block computed only where the task metric needs it: keys and
    values at every position, query, attention output and residual update at the last position.
    x (N, T, d_resid) -> residual at the last positions (N, 1, d_resid). ``kv``: the keys and values
    (after their sites) when the caller knows they are unchanged (then only the last positions run)."""
    layer = model.cfg.n_layer - 1
    blk = model.blocks[layer]
    attn = blk.attn
    H, dh = attn.n_head, attn.d_head
    inner = H * dh
    N, T, _ = x.shape
    if kv is None:
        read = model._site(layer, "attn.read", model.read(layer, 0, x))  # (N, T, d_resid)
        kv_all = module_linear(attn.c_attn, read, (inner, 3 * inner))  # (N, T, 2*inner)
        k = model._site(layer, "attn.k", kv_all[..., :inner])
        v = model._site(layer, "attn.v", kv_all[..., inner:])
        read_last = gather_last(read, last)
    else:
        k, v = kv
        read_last = model._site(layer, "attn.read", model.read(layer, 0, gather_last(x, last)))  # (N, 1, d_resid)
    q = model._site(layer, "attn.q", module_linear(attn.c_attn, read_last, (0, inner)))  # (N, 1, inner)
    qh = q.view(N, 1, H, dh).transpose(1, 2)  # (N, H, 1, dh)
    kh = k.view(N, T, H, dh).transpose(1, 2)  # (N, H, T, dh)
    vh = v.view(N, T, H, dh).transpose(1, 2)
    att = (qh @ kh.transpose(-2, -1)) / math.sqrt(dh)  # (N, H, 1, T)
    pos = torch.arange(T, device=x.device).view(1, 1, 1, T)
    if attn.alibi:
        dist = (last.view(-1, 1, 1, 1) - pos).clamp(min=0)  # (N, 1, 1, T)
        att = att - attn.slopes.view(1, H, 1, 1).to(att.dtype) * dist
    visible = pos <= last.view(-1, 1, 1, 1)
    att = att.masked_fill(~visible, float("-inf"))
    if attn.sink is not None:
        sink = attn.sink.view(1, H, 1, 1).to(att.dtype).expand(N, H, 1, 1)
        att = torch.cat([att, sink], -1).softmax(-1)[..., :T]
    else:
        att = att.softmax(-1)
    y = (att @ vh).transpose(1, 2).reshape(N, 1, inner)
    write = model._site(layer, "attn.write", module_linear(attn.c_proj, y))  # (N, 1, d_model)
    return model._write(gather_last(x, last), write, 0)


#: Rank of each site within its half-block. Sites of one rank are computed from the same input, so a
#: restart at rank r needs only the cached activations of rank r (and recomputes ranks > r).
SITE_RANK = SITE_STAGE
HALF_SITES = HALF_BLOCK_KINDS


def half_block_from(model: GPT, h: int, x: torch.Tensor, rank: int, pre: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Half-block h on the residual x (B, T, d_resid), restarting inside it at site rank ``rank``.

    ``pre`` holds the clean run's activations of this half-block's sites *after* AbsTopK and *before*
    hooks ({kind: (B, T, width)}); the sites of rank ``rank`` take them and apply the active hooks, the
    later sites are recomputed. Equal to ``model.half_block(h, x)`` when nothing before those sites
    changed, while skipping the norm, the matmuls and the AbsTopK top-k of the earlier ranks."""
    layer = h // 2
    blk = model.blocks[layer]
    hooked = lambda kind: model.site_hooks(layer, kind, pre[kind])  # noqa: E731
    if h % 2 == 0:
        if rank <= 1:
            if rank == 0:
                q, k, v = module_linear(blk.attn.c_attn, hooked("attn.read")).chunk(3, dim=-1)
                q, k, v = (model._site(layer, kind, t) for kind, t in zip(("attn.q", "attn.k", "attn.v"), (q, k, v)))
            else:
                q, k, v = hooked("attn.q"), hooked("attn.k"), hooked("attn.v")
            write = model._site(layer, "attn.write", module_linear(blk.attn.c_proj, blk.attn.mix(q, k, v)))
        else:
            write = hooked("attn.write")
    else:
        if rank <= 1:
            hid = model._site(layer, "mlp.neuron", model.act(module_linear(blk.mlp.c_fc, hooked("mlp.read")))) if rank == 0 \
                else hooked("mlp.neuron")
            write = model._site(layer, "mlp.write", module_linear(blk.mlp.c_proj, hid))
        else:
            write = hooked("mlp.write")
    return model._write(x, write, h % 2)


def last_residual(model: GPT, h0: int, x: torch.Tensor, last: torch.Tensor,
                  kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """From boundary h0 with residual x (N, T, d) to the residual entering the last MLP half-block at
    the last positions (N, 1, d), or at boundary h0 when the restart is past the last attention.

    Half-blocks before the last layer run at every position; the last layer only where needed.
    ``kv``: unchanged last-layer keys/values, usable only when h0 is the last attention half-block."""
    last_attn = 2 * model.cfg.n_layer - 2
    for h in range(h0, last_attn):
        x = model.half_block(h, x)
    if h0 <= last_attn:
        return last_layer_attention(model, x, last, kv if h0 == last_attn else None)
    return gather_last(x, last)  # (N, 1, d_resid)


def finish_logits(model: GPT, h0: int, x: torch.Tensor, last_tok: torch.Tensor) -> torch.Tensor:
    """:func:`last_residual`'s output (N, 1, d) -> logits (N, V): the last MLP (unless the restart is past
    it) and the unembedding. Position-wise, so one call serves the rows of many length chunks."""
    if h0 < 2 * model.cfg.n_layer:
        x = model.mlp_half(model.cfg.n_layer - 1, x)
    return model.unembed(x, last_tok)[:, 0]


def logits_from(model: GPT, h0: int, x: torch.Tensor, last: torch.Tensor, last_tok: torch.Tensor,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """From boundary h0 with residual x (N, T, d) to the logits at the last positions (N, V)
    (:func:`last_residual`, then :func:`finish_logits`)."""
    return finish_logits(model, h0, last_residual(model, h0, x, last, kv), last_tok)


def last_logits(model: GPT, tokens: torch.Tensor, lengths: torch.Tensor,
                hooks: Mapping[str, Callable] | None = None) -> torch.Tensor:
    """Logits (N, V) at each row's last prompt position; tokens (N, T) right-padded. Fast path."""
    T = int(lengths.max())
    idx = tokens[:, :T]
    last = lengths - 1
    with intervene(hooks or {}):
        return logits_from(model, 0, model.embed(idx), last, idx.gather(1, last.view(-1, 1)))


def last_logits_reference(model: GPT, tokens: torch.Tensor, lengths: torch.Tensor,
                          hooks: Mapping[str, Callable] | None = None) -> torch.Tensor:
    """Naive reference for :func:`last_logits`: the full forward at every position, then gather."""
    T = int(lengths.max())
    idx = tokens[:, :T]
    with intervene(hooks or {}):
        logits = model(idx)  # (N, T, V)
    return logits.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, logits.shape[-1]))[:, 0]


def record_norm_scales(model: GPT, tokens: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
    """The clean run's norm divisors, for the frozen-norm variant."""
    scales: dict[str, torch.Tensor] = {}

    def rec(name):
        def hook(s):
            scales[name] = s.detach()
            return s
        return hook

    with torch.no_grad():
        last_logits(model, tokens, lengths, {p: rec(p) for p in norm_points(model)})
    return scales


def frozen_norm_hooks(scales: Mapping[str, torch.Tensor]) -> dict[str, Callable]:
    """Hooks that replace every norm divisor with the clean run's (recorded on the same batch)."""
    def patch(v: torch.Tensor) -> Callable:
        def hook(s: torch.Tensor) -> torch.Tensor:
            assert s.shape == v.shape, "frozen-norm scales were recorded on another batch"
            return v
        return hook
    return {name: patch(v) for name, v in scales.items()}


def metrics_from_logits(logits: torch.Tensor, target: torch.Tensor, foil: torch.Tensor) -> dict[str, object]:
    diff = logit_diff(logits.float(), target, foil)
    losses = F.softplus(-diff)
    return {"loss": float(losses.mean()), "accuracy": float((diff > 0).float().mean()),
            "logit_diff": diff.detach().cpu().numpy().astype(np.float32),
            "p_correct": torch.sigmoid(diff).detach().cpu().numpy().astype(np.float32)}
