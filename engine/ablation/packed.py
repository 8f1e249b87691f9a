"""Packed positions for the Ablator's restarts (``docs/architecture.md``, "The click path"): the model is
causal, and mean and zero ablation give a node the same value at every position, so a position's
activations depend only on the prompt up to it. Every per-position step (norms, matrix products,
AbsTopK, the MLP) runs once per distinct prefix: the prompts form a trie, and sides A and B of a
pair share everything before the token where they differ (on the demo's tasks about half of the padded
positions are repeats). Attention runs over the trie itself where the compiled kernel serves
(:mod:`engine.compiled.trie_attention`: each position's keys are its ancestors); the reference
gathers the packed queries, keys and values into the Ablator's length-sorted chunks, runs
``Attention.mix`` and scatters its output back, each prefix from one chosen occurrence.

Used by :meth:`engine.ablation.ablator.Ablator.evaluate` (one replica: the click's ablation) and by
:mod:`engine.ablation.scan` (many replicas, one node ablated in each). Resample ablation (a value per
sequence) cannot be packed; both fall back to the padded chunks for it. Knows nothing about files or Qt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np
import torch

from engine.ablation.core import SITE_RANK, finish_logits, last_layer_attention
from engine.compiled import load
from engine.kernels import current_policy, module_linear
from engine.sites import intervene
from engine.topk import row_guesses

if TYPE_CHECKING:
    from engine.ablation.ablator import Ablator

QKV = ("attn.q", "attn.k", "attn.v")


class Packing:
    """The Ablator's prompts as a trie of prefixes: ``n`` packed positions; per length chunk, the packed
    index of each position (``maps``, (B, T); padding: 0, never read) and where that position is the
    occurrence its prefix is computed from (``own``, (B, T) bool); ``rep``: for each packed position,
    its occurrence's row in the chunks' positions laid end to end; ``parent`` and ``depth`` (numpy): the
    trie, for :mod:`engine.compiled.trie_attention`."""

    def __init__(self, ablator: "Ablator") -> None:
        ids: dict[tuple[int, int], int] = {}
        rep: list[int] = []
        parents: list[int] = []
        depths: list[int] = []
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
                        parents.append(parent)
                        depths.append(p)
                        own[b][p] = True
                    index[b][p] = parent = u
            self.maps.append(torch.tensor(index, dtype=torch.long, device=ablator.device))
            self.own.append(torch.tensor(own, dtype=torch.bool, device=ablator.device))
            offset += B * T
        self.rep = torch.tensor(rep, dtype=torch.long, device=ablator.device)
        self.n = len(rep)
        # The trie itself, for the compiled attention: each packed position's parent (-1: a first token)
        # and depth (its index in the prompt).
        self.parent = np.asarray(parents, dtype=np.int64)
        self.depth = np.asarray(depths, dtype=np.int64)
        # Each sequence's last position, in the Ablator's chunk order (the packed last layer's queries).
        self.last = np.concatenate([m.gather(1, c[2].view(-1, 1))[:, 0].cpu().numpy()
                                    for m, c in zip(self.maps, ablator._chunks)]).astype(np.int64)

    def pack(self, per_chunk: Iterable[torch.Tensor]) -> torch.Tensor:
        """Per-chunk (B, T, width) tensors -> (n, width), one row per packed position."""
        return torch.cat([t.reshape(-1, t.shape[-1]) for t in per_chunk])[self.rep]


def _trie_kernel(t: torch.Tensor):
    """The compiled trie attention for tensors like ``t``, or None where the reference must serve (no
    numba, not float32 on the CPU, the dense reference path)."""
    if current_policy() == "dense" or t.dtype != torch.float32 or t.device.type != "cpu":
        return None
    return load("trie_attention")


def compiled_attention_serves(t: torch.Tensor) -> bool:
    """Whether the compiled attention runs for tensors like ``t`` here."""
    return _trie_kernel(t) is not None


def warm_kernels() -> None:
    """Load (or compile, once per install) the compiled attention now; a no-op after the first call."""
    load("trie_attention")


def _compiled_attention(attn, q, k, v, pk: Packing, heads: torch.Tensor | None = None,
                        qpos: np.ndarray | None = None) -> torch.Tensor | None:
    """Attention of packed queries q (kr, M, inner) at packed positions ``qpos`` (default: every one)
    over the packed keys and values (kr, P, inner) by the compiled trie kernel; None where the
    reference must serve (:func:`_trie_kernel`)."""
    mod = _trie_kernel(q)
    if mod is None:
        return None
    slopes = attn.slopes if heads is None else attn.slopes[heads]
    sinks = None if attn.sink is None else (attn.sink if heads is None else attn.sink[heads])
    q, k, v = (t.detach().contiguous() for t in (q, k, v))
    out = torch.empty_like(q)
    mod.attend(q.numpy(), k.numpy(), v.numpy(), np.arange(k.shape[1], dtype=np.int64) if qpos is None else qpos,
               pk.parent, pk.depth,
               slopes.detach().float().contiguous().numpy(),
               (slopes if sinks is None else sinks).detach().float().contiguous().numpy(), sinks is not None, out.numpy())
    return out


def _attend(model, layer: int, q, k, v, pk: Packing, kr: int, heads: torch.Tensor | None = None) -> torch.Tensor:
    """The layer's attention mix of packed q, k, v (kr, P, inner) (``heads``: q, k and v hold only those
    heads): compiled over the trie, else ``Attention.mix`` run in the Ablator's chunks (the reference)."""
    out = _compiled_attention(model.blocks[layer].attn, q, k, v, pk, heads)
    if out is not None:
        return out
    out = q.new_empty(q.shape)
    for m, own in zip(pk.maps, pk.own):
        B, T = m.shape
        y = model.blocks[layer].attn.mix(*(t[:, m].reshape(kr * B, T, -1) for t in (q, k, v)), heads=heads)
        out[:, m[own]] = y.view(kr, B, T, -1)[:, own]
    return out


def _attend_changed(model, layer: int, q, k, v, pk: Packing, kr: int, base: tuple) -> torch.Tensor:
    """:func:`_attend`, recomputing only the heads whose q, k or v differ from the baseline's in some
    replica; the others are the baseline's output. ``base``: the baseline's packed (q, k, v, y), each
    (P, inner). Heads are independent, so this equals the full mix (a parity test checks it)."""
    attn = model.blocks[layer].attn
    H, dh = attn.n_head, attn.d_head
    changed = torch.zeros(H, dtype=torch.bool, device=q.device)
    for t, b in zip((q, k, v), base):
        # The largest |difference| per channel (a subtraction and a max: 3x faster than != and any);
        # NaN (NaN or inf on either side) counts as changed.
        changed |= ~((t - b).abs_().view(-1, H * dh).amax(0).view(H, dh).amax(-1) <= 0)
    heads = changed.nonzero()[:, 0]
    if len(heads) == H:
        return _attend(model, layer, q, k, v, pk, kr)
    y = base[3].expand(kr, -1, -1)
    if len(heads) == 0:
        return y
    cols = (heads.view(-1, 1) * dh + torch.arange(dh, device=q.device)).view(-1)
    y = y.clone()
    y[..., cols] = _attend(model, layer, q[..., cols], k[..., cols], v[..., cols], pk, kr, heads=heads)
    return y


def _half(model, h: int, x, pk: Packing, kr: int, pre: dict | None = None, rank: int = -1,
          base: tuple | None = None) -> torch.Tensor:
    """Half-block ``h`` on the packed residual x (kr, P, d_resid); with ``pre``, restarting inside it at
    site rank ``rank`` from the clean run's activations there ((P, width), hooks applied), as
    :func:`engine.ablation.core.half_block_from` does on the padded chunks. ``base``: the baseline's
    attention here (:func:`_attend_changed`), for a restart inside an attention half-block."""
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
    y = _attend(model, layer, q, k, v, pk, kr) if base is None else _attend_changed(model, layer, q, k, v, pk, kr, base)
    write = model._site(layer, "attn.write", module_linear(blk.attn.c_proj, y))
    return model._write(x, write, 0)


def _last_logits(ablator: "Ablator", x, pk: Packing, kr: int) -> torch.Tensor:
    """From the packed residual before the last layer (kr, P, d_resid) to the logits (kr, N, V) in the
    ablator's sequence order: keys and values at every packed position, the rest at the last ones."""
    model = ablator.model
    layer = ablator.cfg.n_layer - 1
    attn = model.blocks[layer].attn
    inner = attn.n_head * attn.d_head
    read = model._site(layer, "attn.read", model.read(layer, 0, x))
    kv = module_linear(attn.c_attn, read, (inner, 3 * inner))
    k, v = model._site(layer, "attn.k", kv[..., :inner]), model._site(layer, "attn.v", kv[..., inner:])
    y = _last_attention(model, layer, x, k, v, pk, kr)
    if y is not None:
        logits = finish_logits(model, 2 * layer, y.view(-1, 1, x.shape[-1]), ablator._last_tok_sorted.repeat(kr, 1))
        return logits.view(kr, ablator.n, -1)[:, ablator._inverse]
    parts = []
    for m, (_, _, last, _) in zip(pk.maps, ablator._chunks):
        B, T = m.shape
        kh, vh = (t[:, m].reshape(kr * B, T, -1) for t in (k, v))
        x_last = x[:, m.gather(1, last.view(-1, 1))[:, 0]].reshape(kr * B, 1, -1)
        parts.append(last_layer_attention(model, x_last.expand(-1, T, -1), last.repeat(kr), (kh, vh)).view(kr, B, -1))
    y = torch.cat(parts, 1).view(-1, 1, x.shape[-1])  # every chunk's last positions: one MLP, one unembedding
    logits = finish_logits(model, 2 * layer, y, ablator._last_tok_sorted.repeat(kr, 1))
    return logits.view(kr, ablator.n, -1)[:, ablator._inverse]


def _last_attention(model, layer: int, x, k, v, pk: Packing, kr: int) -> torch.Tensor | None:
    """The last layer's attention half-block at every sequence's last position, (kr, N, d_resid) in the
    Ablator's chunk order, from the packed residual x and the packed keys and values. None where the
    compiled kernel cannot serve (then :func:`_last_logits` runs
    :func:`engine.ablation.core.last_layer_attention` per length chunk)."""
    if _trie_kernel(x) is None:
        return None
    return last_attention_at(model, layer, x[:, torch.from_numpy(pk.last).to(x.device)], k, v, pk, pk.last)


def last_attention_at(model, layer: int, x_last, k, v, chains, qpos: np.ndarray) -> torch.Tensor:
    """The last layer's attention half-block at the last positions x_last (kr x M rows, replica after
    replica, in any shape: (kr, M, d_resid), or (M, 1, d_resid) where hooks hold a value per sequence):
    the read and query there, the compiled attention over the keys and values (kr, P, inner) along
    ``chains`` (an object with ``parent`` and ``depth`` arrays: a :class:`Packing` or
    :class:`PaddedChains`) from positions ``qpos`` (M,), and the write. The caller checked that the
    compiled kernel serves."""
    attn = model.blocks[layer].attn
    inner = attn.n_head * attn.d_head
    read = model._site(layer, "attn.read", model.read(layer, 0, x_last))
    q = model._site(layer, "attn.q", module_linear(attn.c_attn, read, (0, inner)))
    y = _compiled_attention(attn, q.reshape(k.shape[0], len(qpos), inner), k, v, chains, qpos=qpos).view(q.shape)
    write = model._site(layer, "attn.write", module_linear(attn.c_proj, y))
    return model._write(x_last, write, 0)


class PaddedChains:
    """Rows of length T laid end to end as chains for the compiled attention: position n*T + t follows
    n*T + t - 1 (``parent``) at depth t; ``last``: each row's last prompt position there (from ``last``
    (N,), the index within its row)."""

    def __init__(self, n: int, T: int, last: np.ndarray) -> None:
        t = np.tile(np.arange(T, dtype=np.int64), n)
        self.depth = t
        self.parent = np.where(t > 0, np.arange(n * T, dtype=np.int64) - 1, -1)
        self.last = np.arange(n, dtype=np.int64) * T + np.asarray(last, dtype=np.int64)


def _packed(memo: dict, key, make) -> torch.Tensor:
    if key not in memo:
        memo[key] = make()
    return memo[key]


def _baseline_attention(ablator: "Ablator", pk: Packing, caches: list, pre: dict, h: int, base_hooks: dict) -> tuple:
    """The baseline's packed q, k, v (after their sites and the baseline's hooks) and attention mix of
    attention half-block ``h``, each (P, inner); memoised in ``pre``."""
    def make() -> tuple:
        layer, model = h // 2, ablator.model
        packed = {kind: _packed(pre, (h, kind), lambda kind=kind: pk.pack(c[1][h][kind] for c in caches)) for kind in QKV}
        with intervene(base_hooks):
            q, k, v = (model.site_hooks(layer, kind, packed[kind].unsqueeze(0)) for kind in QKV)
            y = _attend(model, layer, q, k, v, pk, 1)
        return tuple(t[0] for t in (q, k, v, y))
    return _packed(pre, (h, "attention"), make)


def _guesses(ablator: "Ablator", pk: Packing, caches: list, pre: dict, h0: int, kr: int) -> dict:
    """AbsTopK's per-row threshold guesses (:func:`engine.topk.row_guesses`) for a restart at half-block
    ``h0``: the clean run's kept floor of every site from its layer on, at every packed position (and
    the last layer's at each sequence's last position too, ``Ablator._last_guesses``), repeated for
    ``kr`` replicas; memoised."""
    def make() -> dict:
        out = {}
        for key in caches[0][3]:
            if key[0] >= h0 // 2:
                at = _packed(pre, ("floor", key), lambda key=key: pk.pack(c[3][key].unsqueeze(-1) for c in caches)[:, 0])
                out[(key, kr * pk.n)] = at.repeat(kr)
        for (key, n), at in ablator._last_guesses(caches, pre).items():
            out[(key, kr * n)] = at.repeat(kr)
        return out
    return _packed(pre, ("guesses", h0, kr), make)


def forward(ablator: "Ablator", pk: Packing, caches: list, pre: dict, point: tuple[int, int], kr: int,
            hooks: dict, base_hooks: dict | None = None) -> torch.Tensor:
    """Logits (kr, N, V) in the ablator's sequence order of ``kr`` replicas of the packed batch under
    ``hooks`` (a hook may treat each replica differently: the scan ablates node ``j`` in replica ``j``),
    restarting at ``point`` (half-block, site rank) from the clean run ``caches`` (the Ablator's, for
    one baseline; ``pre`` memoises their packed copies and must belong to the same caches).
    ``base_hooks``: the baseline's own hooks (no ablation); given, a restart inside an attention
    half-block recomputes only the heads the ablation changed."""
    h0, rank = point
    last_attn = 2 * ablator.cfg.n_layer - 2
    x = _packed(pre, h0, lambda: pk.pack(c[0][h0] for c in caches)).expand(kr, -1, -1)
    base = None
    if base_hooks is not None and h0 < last_attn and h0 % 2 == 0 and rank <= 1:
        base = _baseline_attention(ablator, pk, caches, pre, h0, base_hooks)
    with intervene(hooks), row_guesses(_guesses(ablator, pk, caches, pre, h0, kr)):
        if h0 < last_attn:
            kinds = [k for k in ("attn.read", *QKV, "attn.write", "mlp.read", "mlp.neuron", "mlp.write")
                     if SITE_RANK[k] == rank and (h0 % 2 == 0) == k.startswith("attn")]
            here = {k: _packed(pre, (h0, k), lambda k=k: pk.pack(c[1][h0][k] for c in caches)) for k in kinds}
            x = _half(ablator.model, h0, x, pk, kr, here, rank, base)
            for h in range(h0 + 1, last_attn):
                x = _half(ablator.model, h, x, pk, kr)
        return _last_logits(ablator, x, pk, kr)
