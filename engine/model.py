"""The weight-sparse GPT of SPEC §1 and §3, with named node sites.

Decoder-only, pre-norm, RMSNorm, d_head 16, optional attention sinks, optional bigram table, no
positional embedding by default (optional learned positions as extra read-only residual channels, or
an ALiBi recency bias on some heads' attention logits),
untied embedding/unembedding, AbsTopK activation sparsity at the 8 node sites of every block.
Options of other weight-sparse GPTs (OpenAI's released models, imported by :mod:`engine.interop`)
are config fields whose defaults keep the model above: LayerNorm, a norm epsilon, norm and Linear
biases, ReLU MLPs, a ReLU on the residual, AbsTopK on a chosen set of sites (also the residual after
each sublayer) with a floor k, additive learned positions, position channels with their own norms,
n_head * d_head != d_model, and tied embeddings.

Every node site passes :meth:`GPT._site`, which applies AbsTopK and then any intervention installed
with :func:`engine.sites.intervene`. The forward pass is split at *half-block boundaries*:
boundary ``h`` is the residual entering half-block ``h`` (``2*layer`` = attention, ``2*layer+1`` =
MLP) and boundary ``2*n_layer`` is the residual entering the final norm. :meth:`GPT.run_from` restarts
the pass from any boundary with a given residual; the live-ablation engine relies on it.

This module knows nothing about sparsity schedules, data, files or Qt.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.config import ModelConfig
from engine.errors import UserError
from engine.kernels import module_linear
from engine.topk import abs_topk
from engine.sites import FINAL_RESID, active_hooks, site_name


def alibi_slopes(n_head: int, n_alibi: int) -> torch.Tensor:
    """Per-head ALiBi slopes: 2^(-8(h+1)/n_alibi) for the first ``n_alibi`` heads (1/4 ... 1/256 for
    4), 0 for the others, which stay position-free (NoPE)."""
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / n_alibi) if h < n_alibi else 0.0 for h in range(n_head)])


def _apply_hooks(name: str, x: torch.Tensor) -> torch.Tensor:
    hooks = active_hooks()
    if hooks is not None:
        for fn in hooks.get(name, ()):
            x = fn(x)
    return x


class Norm(nn.Module):
    """RMSNorm (x / rms(x) * gain) or LayerNorm ((x - mean) / std * gain [+ bias]). The divisor
    passes the hook point ``<name>.scale`` (frozen-norm patching)."""

    def __init__(self, width: int, name: str, eps: float = 1e-5, kind: str = "rms", bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width)) if bias else None
        self.eps = eps
        self.layer = kind == "layer"
        self.point = f"{name}.scale"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer:
            x = x - x.mean(-1, keepdim=True)
        scale = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)  # (B, T, 1)
        scale = _apply_hooks(self.point, scale)
        out = x * scale * self.weight
        return out if self.bias is None else out + self.bias


def _norm(cfg: ModelConfig, width: int, name: str) -> Norm:
    return Norm(width, name, cfg.norm_eps, cfg.norm, cfg.norm_bias)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int = 0):
        super().__init__()
        self.n_head, self.d_head = cfg.n_head, cfg.d_head
        inner = cfg.n_head * cfg.d_head
        self.c_attn = nn.Linear(cfg.d_resid, 3 * inner, bias=cfg.linear_bias)  # fused q, k, v
        self.c_proj = nn.Linear(inner, cfg.d_model, bias=cfg.linear_bias)
        self.sink = nn.Parameter(torch.zeros(cfg.n_head)) if cfg.attn_sink else None
        self._n_alibi = cfg.alibi_heads if layer >= cfg.alibi_from_layer else 0
        self.alibi = self._n_alibi > 0
        self._shape = (cfg.n_ctx, cfg.attn_sink)
        self.init_buffers()

    def init_buffers(self) -> None:
        """(Re)compute the constant buffers: the causal mask, the ALiBi slopes m_h (zero without ALiBi)
        and the full additive mask of :meth:`mix`'s fused call (a model built on the meta device and
        moved with ``to_empty`` has them uninitialised)."""
        n_ctx, sink = self._shape
        device = self.c_attn.weight.device
        if device.type == "meta":  # shapes only (GPT.empty computes them again after to_empty), and
            # tril or normal_ on the meta device would import torch._dynamo (1-1.5 s)
            n = n_ctx + 1 if sink else n_ctx
            empty = lambda *shape, dtype=torch.float32: torch.empty(*shape, dtype=dtype, device=device)  # noqa: E731
            self.register_buffer("causal", empty(n_ctx, n_ctx, dtype=torch.bool), persistent=False)
            self.register_buffer("slopes", empty(self.n_head), persistent=False)
            self.register_buffer("_fused_bias", empty(self.n_head, n, n) if self.alibi else None, persistent=False)
            return
        with torch.device(device):
            self.register_buffer("causal", torch.ones(n_ctx, n_ctx, dtype=torch.bool).tril(), persistent=False)
            self.register_buffer("slopes", alibi_slopes(self.n_head, self._n_alibi), persistent=False)
            self.register_buffer("_fused_bias", self._fused_mask(n_ctx, sink) if self.alibi else None,
                                 persistent=False)

    def _fused_mask(self, T: int, sink: bool) -> torch.Tensor:
        """Additive mask (H, T', T') for the fused kernel: ALiBi distances, -inf above the diagonal.

        With a sink, T' = T + 1: row 0 is the dummy query, column 0 the sink key, which gets no
        distance penalty (it is not a position)."""
        n = T + 1 if sink else T
        bias = self.distance_bias(n)  # with the sink, row/column r stand for position r - 1: same distances
        if sink:
            bias[:, :, 0] = 0.0
        above = torch.ones(n, n, dtype=torch.bool).triu(1)
        return bias.masked_fill(above, float("-inf"))

    def distance_bias(self, T: int) -> torch.Tensor:
        """ALiBi logits (H, T, T): -m_h * (i - j) for key j <= query i (zero without ALiBi)."""
        d = (torch.arange(T, device=self.slopes.device).view(T, 1)
             - torch.arange(T, device=self.slopes.device).view(1, T)).clamp(min=0)
        return -self.slopes.view(-1, 1, 1) * d

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, _ = t.shape
        return t.view(B, T, self.n_head, self.d_head).transpose(1, 2)  # (B, H, T, dh)

    def mix(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: torch.Tensor | None = None) -> torch.Tensor:
        """Causal softmax attention with optional sink; q, k, v (B, T, inner) -> (B, T, inner).

        Uses the fused scaled_dot_product_attention kernel. The sink is folded in exactly: one extra
        feature channel (1 on every query, b_h*sqrt(d_head) on a sink key with zero value) gives the
        sink slot the logit b_h; the sink key sits at position 0 and a dummy query row is prepended so
        the kernel's square causal mask lets query t see the sink and keys 0..t. :meth:`mix_reference`
        is the plain formula; a parity test keeps the two equal (values and gradients).
        ``heads`` (indices): q, k and v hold only those heads' channels, in that order (heads are
        independent, so a live ablation recomputes only the heads it changed).
        """
        B, T, inner = q.shape
        dh = self.d_head
        H = inner // dh
        q, k, v = (t.view(B, T, H, dh).transpose(1, 2) for t in (q, k, v))  # (B, H, T, dh)
        scale = 1.0 / math.sqrt(dh)
        if self.alibi:
            n = T + 1 if self.sink is not None else T
            full = self._fused_bias if heads is None else self._fused_bias[heads]
            bias = full[:, :n, :n].to(q.dtype).unsqueeze(0)  # (1, H, n, n)
        if self.sink is None:
            if self.alibi:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
            else:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
        else:
            sink = self.sink if heads is None else self.sink[heads]
            sink_logit = (sink.to(q.dtype) * math.sqrt(dh)).view(1, H, 1, 1).expand(B, H, 1, 1)
            q_ext = torch.cat([q.new_zeros(B, H, 1, dh + 1), torch.cat([q, q.new_ones(B, H, T, 1)], -1)], 2)
            k_ext = torch.cat([torch.cat([k.new_zeros(B, H, 1, dh), sink_logit], -1),
                               torch.cat([k, k.new_zeros(B, H, T, 1)], -1)], 2)  # (B, H, T+1, dh+1)
            # v gets the same width as q and k (the fused CPU kernel needs it); the extra column is 0.
            v_ext = F.pad(v, (0, 1, 1, 0))  # (B, H, T+1, dh+1)
            if self.alibi:
                y = F.scaled_dot_product_attention(q_ext, k_ext, v_ext, attn_mask=bias, scale=scale)
            else:
                y = F.scaled_dot_product_attention(q_ext, k_ext, v_ext, is_causal=True, scale=scale)
            y = y[:, :, 1:, :dh]
        return y.transpose(1, 2).reshape(B, T, inner)

    def pattern(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Attention probabilities (B, H, T, T) from q, k (B, T, inner); rows sum to < 1 with a sink."""
        B, T, _ = q.shape
        H = self.n_head
        att = (self._heads(q) @ self._heads(k).transpose(-2, -1)) * (1.0 / math.sqrt(self.d_head))
        if self.alibi:
            att = att + self.distance_bias(T).to(att.dtype)
        att = att.masked_fill(~self.causal[:T, :T], float("-inf"))
        if self.sink is None:
            return att.softmax(dim=-1)
        sink = self.sink.view(1, H, 1, 1).to(att.dtype).expand(B, H, T, 1)
        return torch.cat([att, sink], dim=-1).softmax(dim=-1)[..., :T]

    def mix_reference(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The plain formula behind :meth:`mix` (materialised attention matrix)."""
        B, T, inner = q.shape
        y = self.pattern(q, k) @ self._heads(v)  # (B, H, T, dh)
        return y.transpose(1, 2).reshape(B, T, inner)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.d_resid, cfg.d_mlp, bias=cfg.linear_bias)
        self.c_proj = nn.Linear(cfg.d_mlp, cfg.d_model, bias=cfg.linear_bias)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        separate = cfg.pos_norm == "separate"
        width = cfg.d_model if separate else cfg.d_resid
        self.ln1 = _norm(cfg, width, f"blocks.{layer}.ln1")
        self.ln1_pos = _norm(cfg, cfg.pos_channels, f"blocks.{layer}.ln1_pos") if separate else None
        self.attn = Attention(cfg, layer)
        self.ln2 = _norm(cfg, width, f"blocks.{layer}.ln2")
        self.ln2_pos = _norm(cfg, cfg.pos_channels, f"blocks.{layer}.ln2_pos") if separate else None
        self.mlp = MLP(cfg)


def topk_sizes(cfg: ModelConfig) -> dict[str, int | None]:
    """AbsTopK's k per site kind (None: no AbsTopK there): max(1, round(afrac * width)), or with
    ``afrac_floor`` int(afrac * width) (possibly 0, which zeroes the vector)."""
    inner = cfg.n_head * cfg.d_head
    widths = {"attn.read": cfg.d_resid, "attn.q": inner, "attn.k": inner, "attn.v": inner,
              "attn.write": cfg.d_model, "mlp.read": cfg.d_resid, "mlp.neuron": cfg.d_mlp,
              "mlp.write": cfg.d_model, "resid_post_attn": cfg.d_model, "resid_post_mlp": cfg.d_model}
    active = set(cfg.afrac_sites) if cfg.afrac_sites else set(widths) - {"resid_post_attn", "resid_post_mlp"}
    out: dict[str, int | None] = {}
    for kind, w in widths.items():
        k = int(cfg.afrac * w) if cfg.afrac_floor else max(1, round(cfg.afrac * w))
        out[kind] = k if kind in active and k < w else None
    return out


def _materialize(module: nn.Module, device: torch.device) -> None:
    """Give every parameter and buffer on the meta device uninitialised storage on ``device`` (what
    ``Module.to_empty`` does, without its per-tensor ``empty_like`` through torch's Python reference
    implementations: 0.4 s for a csp_yolo1-shaped model against 2 ms)."""
    for mod in module.modules():
        for name, p in list(mod._parameters.items()):
            if p is not None and p.device.type == "meta":
                mod._parameters[name] = nn.Parameter(torch.empty(p.shape, dtype=p.dtype, device=device),
                                                     requires_grad=p.requires_grad)
        for name, b in list(mod._buffers.items()):
            if b is not None and b.device.type == "meta":
                mod._buffers[name] = torch.empty(b.shape, dtype=b.dtype, device=device)


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        # On the meta device (GPT.empty, model_bytes) no random init runs: a normal_ there imports
        # torch._dynamo (1-1.5 s), and there are no values to set.
        meta = torch.empty(0).device.type == "meta"
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model,
                                _weight=torch.empty(cfg.vocab_size, cfg.d_model) if meta else None)
        self.wpe = nn.Parameter(torch.zeros(cfg.n_ctx, cfg.pos_channels)) if cfg.pos_channels else None
        self.wpe_add = nn.Parameter(torch.zeros(cfg.n_ctx, cfg.d_model)) if cfg.pos_additive else None
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.ln_f = _norm(cfg, cfg.d_unembed, "ln_f")
        self.lm_head = nn.Linear(cfg.d_unembed, cfg.vocab_size)
        if cfg.tied_embed:
            self.lm_head.weight = self.wte.weight  # one tensor: ablating or editing one edits both
        self.bigram = nn.Parameter(torch.zeros(cfg.vocab_size, cfg.vocab_size)) if cfg.bigram_table else None
        self.act = F.relu if cfg.mlp_act == "relu" else F.gelu
        self._topk = topk_sizes(cfg)
        if not meta:  # on the meta device there is nothing to initialise
            self.reset_parameters()

    # ------------------------------------------------------------------ init

    @classmethod
    def empty(cls, cfg: ModelConfig, device: str | torch.device = "cpu") -> "GPT":
        """A model with uninitialised parameters (to be loaded), built without the cost of random
        init: on the meta device, then given real storage; the constant buffers are computed."""
        with torch.device("meta"):
            model = cls(cfg)
        _materialize(model, torch.device(device))
        if cfg.tied_embed:  # _materialize gives each module its own storage: tie them again
            model.lm_head.weight = model.wte.weight
        model.init_buffers()
        return model

    def init_buffers(self) -> None:
        for blk in self.blocks:
            blk.attn.init_buffers()

    @torch.no_grad()
    def reset_parameters(self, seed: int | None = None) -> None:
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        std = self.cfg.init_std
        proj_std = std / math.sqrt(2 * self.cfg.n_layer)
        for name, p in self.named_parameters():
            if name.endswith(("attn.c_proj.weight", "mlp.c_proj.weight")):
                p.copy_(torch.randn(p.shape, generator=gen) * proj_std)
            elif p.dim() >= 2 and name != "bigram":
                p.copy_(torch.randn(p.shape, generator=gen) * std)
            elif name.endswith(("ln1.weight", "ln2.weight", "ln1_pos.weight", "ln2_pos.weight")) or name == "ln_f.weight":
                p.fill_(1.0)
            else:  # biases, sinks, bigram table
                p.zero_()

    # ------------------------------------------------------------------ sites

    def _site(self, layer: int, kind: str, x: torch.Tensor) -> torch.Tensor:
        k = self._topk[kind]
        return self.site_hooks(layer, kind, x if k is None else abs_topk(x, k, (layer, kind)))

    def site_hooks(self, layer: int, kind: str, x: torch.Tensor) -> torch.Tensor:
        """The active hooks of one site applied to its (already AbsTopK-ed) activation x."""
        hooks = active_hooks()
        if hooks is not None:
            for fn in hooks.get(site_name(layer, kind), ()):
                x = fn(x)
        return x

    # ------------------------------------------------------------------ forward pieces

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T) -> residual at boundary 0 (B, T, d_resid)."""
        x = self.wte(idx)  # (B, T, d_model)
        if self.wpe_add is not None:
            x = x + self.wpe_add[: idx.shape[1]].to(x.dtype)
        if self.wpe is not None:
            T = idx.shape[1]
            pos = self.wpe[:T].unsqueeze(0).expand(idx.shape[0], T, -1)  # (B, T, pos_channels)
            x = torch.cat([x, pos.to(x.dtype)], dim=-1)
        return x

    def _write(self, x: torch.Tensor, delta: torch.Tensor, half: int = 0) -> torch.Tensor:
        """Add a half-block's output (B, T, d_model) to the residual (position channels are read-only),
        then the residual options on the content channels: ReLU, AbsTopK (``resid_post_attn`` after
        attention, ``half`` 0; ``resid_post_mlp`` after the MLP, ``half`` 1)."""
        k = self._topk["resid_post_mlp" if half else "resid_post_attn"]
        if self.cfg.resid_act == "identity" and k is None:
            if self.wpe is not None:
                delta = F.pad(delta, (0, self.cfg.pos_channels))
            return x + delta
        D = self.cfg.d_model
        content = x[..., :D] + delta
        if self.cfg.resid_act == "relu":
            content = F.relu(content)
        if k is not None:
            content = abs_topk(content, k)
        return torch.cat([content, x[..., D:]], -1) if self.wpe is not None else content

    def read(self, layer: int, half: int, x: torch.Tensor) -> torch.Tensor:
        """What half-block ``half`` (0 attention, 1 MLP) of ``layer`` reads: the normalised residual
        (B, T, d_resid), before AbsTopK. With separate position norms the content and the position
        channels are normalised by their own norms and concatenated."""
        blk = self.blocks[layer]
        norm, pos_norm = (blk.ln1, blk.ln1_pos) if half == 0 else (blk.ln2, blk.ln2_pos)
        if pos_norm is None:
            return norm(x)
        D = self.cfg.d_model
        return torch.cat([norm(x[..., :D]), pos_norm(x[..., D:])], -1)

    def attn_half(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        blk = self.blocks[layer]
        read = self._site(layer, "attn.read", self.read(layer, 0, x))  # (B, T, d_resid)
        q, k, v = module_linear(blk.attn.c_attn, read).chunk(3, dim=-1)  # each (B, T, inner)
        q = self._site(layer, "attn.q", q)
        k = self._site(layer, "attn.k", k)
        v = self._site(layer, "attn.v", v)
        y = blk.attn.mix(q, k, v)  # (B, T, inner)
        write = self._site(layer, "attn.write", module_linear(blk.attn.c_proj, y))  # (B, T, d_model)
        return self._write(x, write, 0)

    def mlp_half(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        blk = self.blocks[layer]
        read = self._site(layer, "mlp.read", self.read(layer, 1, x))  # (B, T, d_resid)
        h = self._site(layer, "mlp.neuron", self.act(module_linear(blk.mlp.c_fc, read)))  # (B, T, d_mlp)
        write = self._site(layer, "mlp.write", module_linear(blk.mlp.c_proj, h))  # (B, T, d_model)
        return self._write(x, write, 1)

    def half_block(self, h: int, x: torch.Tensor) -> torch.Tensor:
        """Run half-block h (2*layer: attention, 2*layer+1: MLP) on the residual x."""
        return self.attn_half(h // 2, x) if h % 2 == 0 else self.mlp_half(h // 2, x)

    def unembed(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Residual at the last boundary (B, T, d_resid) -> logits (B, T, vocab)."""
        x = self.final_resid(x)
        if self.cfg.d_unembed != x.shape[-1]:
            x = x[..., : self.cfg.d_unembed]  # separate position norms: the unembedding reads content only
        logits = module_linear(self.lm_head, self.ln_f(x))
        if self.bigram is not None:
            # F.embedding, not bigram[idx]: on the CPU the indexing backward accumulates with atomic adds
            # in whatever order the threads run, so training (and exact resume) would not be repeatable.
            logits = logits + F.embedding(idx, self.bigram).to(logits.dtype)
        return logits

    def final_resid(self, x: torch.Tensor) -> torch.Tensor:
        """The site ``final_resid``: the hooks on the residual's content channels before the final norm."""
        hooks = active_hooks()
        if hooks is None or FINAL_RESID not in hooks:
            return x
        D = self.cfg.d_model
        content = x[..., :D]
        for fn in hooks[FINAL_RESID]:
            content = fn(content)
        return torch.cat([content, x[..., D:]], -1) if x.shape[-1] > D else content

    @property
    def n_boundaries(self) -> int:
        return 2 * self.cfg.n_layer + 1

    def run_from(self, start: int, x: torch.Tensor, idx: torch.Tensor, stop: int | None = None) -> torch.Tensor:
        """Restart the forward pass at boundary ``start`` with residual x.

        Returns the residual at boundary ``stop`` when given, else the logits (B, T, vocab).
        ``idx`` (B, T) is needed for the bigram table.
        """
        end = 2 * self.cfg.n_layer if stop is None else stop
        for h in range(start, end):
            x = self.half_block(h, x)
        return x if stop is not None else self.unembed(x, idx)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) -> logits (B, T, vocab), or (logits, mean cross-entropy) with targets."""
        logits = self.run_from(0, self.embed(idx), idx)
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss

    def forward_with_cache(self, idx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the residual at every boundary 0..2*n_layer (each (B, T, d_resid))."""
        x = self.embed(idx)
        cache = [x]
        for h in range(2 * self.cfg.n_layer):
            x = self.half_block(h, x)
            cache.append(x)
        return self.unembed(x, idx), cache


# ---------------------------------------------------------------------------------------------
# Will it fit? Sizes checked before anything is allocated.


def model_bytes(cfg: ModelConfig) -> tuple[int, int]:
    """(parameters, bytes of parameters and buffers in float32) of a model, counted on the meta device
    (nothing is allocated, so an absurd config costs nothing)."""
    with torch.device("meta"):
        model = GPT(cfg)
    n = sum(p.numel() for p in model.parameters())
    return n, n * 4 + sum(b.numel() * b.element_size() for b in model.buffers())


def memory_limit(device: torch.device | str = "cpu") -> tuple[int | None, str]:
    """(bytes, a description) of the memory ``device`` has: the GPU's, else the machine's RAM or the
    container's limit when lower; (None, ...) when it cannot be told."""
    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return props.total_memory, f"the GPU ({props.name}) has {props.total_memory / 2**30:.1f} GiB"
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None, "unknown"
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        total = min(total, int(limit)) if limit.isdigit() else total
    except (OSError, ValueError):
        pass
    return total, f"this machine has {total / 2**30:.1f} GiB of memory"


def check_fits(need: int, device: torch.device | str, what: str, advice: str) -> None:
    """UserError when ``need`` bytes exceed the memory of ``device`` (what the machine can hold)."""
    have, desc = memory_limit(device)
    if have is not None and need > have:
        raise UserError(f"{what} needs about {need / 2**30:,.1f} GiB of memory but {desc}; {advice}")


def check_model_fits(cfg: ModelConfig, device: torch.device | str = "cpu", what: str = "this model") -> int:
    """UserError unless the model (and a copy of its weights while they load) fits; returns its
    parameter count."""
    n, size = model_bytes(cfg)
    check_fits(2 * size, device, f"{what} ({n:,} parameters)",
               "choose smaller model sizes (model.d_model, model.d_mlp, model.n_layer, model.n_ctx, vocab)")
    return n
