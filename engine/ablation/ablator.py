"""Live ablation: re-evaluate a task in milliseconds with some nodes or single weights removed.

An :class:`Ablator` is built once from a model, an encoded task, the ablation values and an
optional circuit. It owns a private eval-mode copy of the model's modules whose weights share the
caller's storage (no weight is copied: 1.9 GB and 3 s on csp_yolo2) and are never written: the
caller's model is never touched and two ablators are independent. It caches the clean run's
residual at every half-block boundary (for the full model and for the circuit baseline, one per
ablation of everything outside the circuit: ``circuit_mode``, by default the mode the circuit was
pruned with), and on :meth:`Ablator.evaluate`:

1. restarts at the earliest changed computation: in a layer before the last, inside its half-block
   from the cached activations of the touched site's rank (skipping the norm, matmuls and top-k
   before it); in the last layer from the boundary before the touched half-block,
2. runs the half-blocks before the last layer over all positions: with mean and zero ablation once
   per distinct prompt prefix (:mod:`engine.ablation.packed`: sides A and B of a pair share their
   prefix up to the token where they differ, about half the padded positions), with resample values
   (one per sequence) in length-sorted chunks, each padded only to its own longest prompt,
   and inside the touched attention half-block recomputes only the heads whose q, k or v changed,
3. in the last layer computes only what the task metric needs: keys and values at all positions, but
   the query, attention output, MLP and unembedding at each prompt's last position only (for every
   sequence in one batch when the keys and values are the cached ones).

:meth:`Ablator.evaluate_naive` is the reference: a full forward pass with hooks; a parity test keeps
the two equal. Edge ablation gives the private copy its own copy of each matrix it touches, with
those weights zeroed, for the duration of one evaluation (:func:`zeroed_weights`). Calls on one
ablator are serialised by a lock; hooks are per call (ContextVar). Knows nothing about files or Qt.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from engine.ablation.packed import (Packing, PaddedChains, compiled_attention_serves, forward, last_attention_at,
                                    warm_kernels)
from engine.ablation.core import (HALF_SITES, SITE_RANK, group_nodes, half_block_from, keep_masks_from_nodes,
                                  finish_logits, gather_last, last_logits_reference, last_residual, mask_hooks,
                                  metrics_from_logits)
from engine.circuits.circuit import Circuit
from engine.errors import UserError
from engine.model import GPT
from engine.sites import NodeId, all_sites, intervene, parse_site, site_half_block, site_name
from engine.topk import record_floors, row_guesses

MODES = ("mean", "zero", "resample")
CHUNK = 32  # sequences per length-sorted chunk of the fast path (fewer, larger chunks measured slower)
MAX_CACHES = 3  # clean runs kept: the full model's and two of the circuit's (ablated outside it two ways)


@dataclass(frozen=True)
class Edge:
    """One nonzero weight between two nodes (``src -> dst``)."""

    src: NodeId
    dst: NodeId

    def __str__(self) -> str:
        return f"{self.src}->{self.dst}"

    @classmethod
    def parse(cls, text: str) -> "Edge":
        a, sep, b = text.partition("->")
        if not sep:
            raise UserError(f"bad edge {text!r}; write edges as SRC->DST, e.g. "
                            f"blocks.0.mlp.read:3->blocks.0.mlp.neuron:5")
        return cls(NodeId.parse(a), NodeId.parse(b))


@dataclass(frozen=True)
class AblationResult:
    """Task metrics after an ablation; plain immutable data."""

    loss: float
    accuracy: float
    logit_diff: np.ndarray  # (N,) target - foil logit per sequence
    p_correct: np.ndarray  # (N,) two-way probability of the correct token
    elapsed_ms: float
    mode: str
    baseline: str
    n_nodes: int
    n_edges: int
    circuit_mode: str | None = None  # baseline "circuit": the ablation of everything outside the circuit


def _weight_entry(model: GPT, edge: Edge) -> tuple[torch.nn.Linear, int, int]:
    """(the linear layer whose weight it is, row, col) of an edge; UserError if it is not a nonzero weight."""
    cfg = model.cfg
    edge.src.validate(cfg)
    edge.dst.validate(cfg)
    ls, ks = parse_site(edge.src.site)
    ld, kd = parse_site(edge.dst.site)
    inner = cfg.n_head * cfg.d_head
    blk = model.blocks[ld] if ld < cfg.n_layer else None
    parts = {"attn.q": 0, "attn.k": 1, "attn.v": 2}
    if ls == ld and ks == "attn.read" and kd in parts:
        lin, row, col = blk.attn.c_attn, parts[kd] * inner + edge.dst.index, edge.src.index
    elif ls == ld and ks == "attn.v" and kd == "attn.write":
        lin, row, col = blk.attn.c_proj, edge.dst.index, edge.src.index
    elif ls == ld and ks == "mlp.read" and kd == "mlp.neuron":
        lin, row, col = blk.mlp.c_fc, edge.dst.index, edge.src.index
    elif ls == ld and ks == "mlp.neuron" and kd == "mlp.write":
        lin, row, col = blk.mlp.c_proj, edge.dst.index, edge.src.index
    else:
        raise UserError(f"{edge} is not a weight edge; weight edges run read->q/k/v, v->attn.write, "
                        f"mlp.read->mlp.neuron and mlp.neuron->mlp.write within one layer")
    if float(lin.weight.detach()[row, col]) == 0.0:
        raise UserError(f"{edge} is not a nonzero weight of this model (that weight is exactly 0)")
    return lin, row, col


def sharing_copy(model: GPT) -> GPT:
    """A copy of ``model``'s modules whose parameters are new fixed tensors (no gradient) on the same
    storage, and whose buffers are the same tensors: nothing is copied but the module objects. Whoever
    holds it must never write into its weights (:func:`zeroed_weights` does not)."""
    memo: dict[int, object] = {id(p): torch.nn.Parameter(p.detach(), requires_grad=False) for p in model.parameters()}
    memo.update({id(b): b for b in model.buffers()})
    return copy.deepcopy(model, memo)


@contextlib.contextmanager
def zeroed_weights(model: GPT, edges: Sequence[Edge]) -> Iterator[None]:
    """Within this block the weights of ``edges`` are 0 in ``model`` (UserError first if one is not a
    nonzero weight): each linear layer they belong to holds a copy of its matrix with them zeroed, and
    gets its own matrix back on the way out, whatever happened. The matrix itself is never written,
    so a model that shares its storage (:func:`sharing_copy`) never sees the edit."""
    cells: dict[int, tuple[torch.nn.Linear, list[tuple[int, int]]]] = {}
    for lin, r, c in (_weight_entry(model, e) for e in edges):
        cells.setdefault(id(lin), (lin, []))[1].append((r, c))
    own: list[tuple[torch.nn.Linear, torch.nn.Parameter]] = []
    try:
        for lin, where in cells.values():
            edited = torch.nn.Parameter(lin.weight.detach().clone(), requires_grad=lin.weight.requires_grad)
            with torch.no_grad():
                for r, c in where:
                    edited[r, c] = 0.0
            own.append((lin, lin.weight))
            lin.weight = edited
        yield
    finally:
        for lin, weight in reversed(own):
            lin.weight = weight


class Ablator:
    """Fast, repeated task evaluation under node and edge ablations. See the module docstring."""

    def __init__(self, model: GPT, enc, means: Mapping[str, torch.Tensor], circuit: Circuit | None = None,
                 resample_pool: Mapping[str, torch.Tensor] | None = None, seed: int = 0):
        self.model = sharing_copy(model).eval()
        # The shared weights and their version counters (shared with the caller's tensors). The tensors
        # themselves, not the modules' attributes: an edge ablation in another thread swaps in its copy.
        self._shared = [(p, p._version) for p in self.model.parameters()]
        self.cfg = self.model.cfg
        self.device = dev = next(self.model.parameters()).device  # everything below lives there
        self.lengths = torch.as_tensor(enc.lengths, dtype=torch.long).to(dev)
        self.tokens = torch.as_tensor(enc.tokens, dtype=torch.long)[:, : int(self.lengths.max())].to(dev)
        self.target = torch.as_tensor(enc.target, dtype=torch.long).to(dev)
        self.foil = torch.as_tensor(enc.foil, dtype=torch.long).to(dev)
        self.last = self.lengths - 1
        self.last_tok = self.tokens.gather(1, self.last.view(-1, 1))  # (N, 1)
        self.n = len(self.tokens)
        self.means = {s: v.float().to(dev) for s, v in means.items()}
        self.zeros = {s: torch.zeros_like(v) for s, v in self.means.items()}
        self.resample = self._resample_values(resample_pool, seed) if resample_pool else None
        self.circuit = circuit
        self._circuit_keep = None
        if circuit is not None:
            self._circuit_keep = keep_masks_from_nodes(self.model, kept=group_nodes(circuit.nodes),
                                                       sites=circuit.pruned_sites(self.cfg))
        self.circuit_mode = str(circuit.settings.get("ablation", "mean")) if circuit is not None else None
        self._lock = threading.Lock()
        # (baseline, ablation outside the circuit or None) -> per chunk caches; least recently used first
        self._caches: dict[tuple[str, str | None], list] = {}
        self._pres: dict[tuple[str, str | None], dict] = {}  # per cache: its packed copies (packed.forward)
        self._pack: Packing | None = None
        self._readout: dict[str, np.ndarray] | None = None  # clean_readout(), recorded with the full cache
        self.packed = True  # restarts on packed prefixes where they can (False: the padded chunks only)
        # Sequences sorted by length in chunks: each chunk is padded only to its own longest prompt.
        order = torch.argsort(self.lengths, stable=True)
        self._chunks = []
        for i in range(0, self.n, CHUNK):
            rows = order[i:i + CHUNK]
            T = int(self.lengths[rows].max())
            self._chunks.append((rows, self.tokens[rows, :T], self.last[rows], self.last_tok[rows]))
        self._order = order  # sequences in chunk order
        self._inverse = torch.argsort(order)
        self._last_sorted = self.last[order]
        self._last_tok_sorted = self.last_tok[order]  # (N, 1) in chunk order

    # ------------------------------------------------------------------ values and hooks

    def _resample_values(self, pool: Mapping[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
        """One recorded pretraining activation vector per sequence (fixed seed): (N, 1, width)."""
        g = torch.Generator().manual_seed(seed)
        out = {}
        for site, acts in pool.items():
            rows = torch.randint(0, acts.shape[0], (self.n,), generator=g)
            out[site] = acts[rows].float().unsqueeze(1).to(self.device)
        return out

    def values(self, mode: str, rows: torch.Tensor | None = None) -> Mapping[str, torch.Tensor]:
        """Replacement values per site; resample values are per sequence (``rows`` selects them)."""
        if mode == "mean":
            return self.means
        if mode == "zero":
            return self.zeros
        if mode == "resample":
            if self.resample is None:
                raise UserError("resample ablation needs recorded pretraining activations (an activation store)")
            return self.resample if rows is None else {s: v[rows] for s, v in self.resample.items()}
        raise UserError(f"unknown ablation mode {mode!r}; choose one of {', '.join(MODES)}")

    def _complement_mode(self, baseline: str, circuit_mode: str | None) -> str | None:
        """The ablation of everything outside the circuit (baseline "circuit"; None for "full"):
        ``circuit_mode``, or the circuit's own mode when it is None. Checks baseline and mode."""
        if baseline == "full":
            return None
        if baseline != "circuit":
            raise UserError(f"unknown baseline {baseline!r}; use 'full' or 'circuit'")
        if self._circuit_keep is None:
            raise UserError("no circuit given: the 'circuit' baseline needs one")
        mode = self.circuit_mode if circuit_mode is None else circuit_mode
        if mode not in MODES:
            raise UserError(f"unknown ablation mode {mode!r} for the rest of the model; choose one of "
                            f"{', '.join(MODES)}")
        self._check_values(mode, self._circuit_keep)  # resample without a store: the UserError that says so
        return mode

    def _check_values(self, mode: str, sites: Iterable[str]) -> Mapping[str, torch.Tensor]:
        """The values of ``mode``; a UserError names the sites that have none."""
        values = self.values(mode)
        missing = sorted(set(sites) - set(values))
        if missing:
            raise UserError(f"no {mode} values for {', '.join(missing)}: the activation store was recorded without "
                            "that site; record it again (circuit-engine record RUN) or use --mode mean")
        return values

    def _baseline_hooks(self, baseline: str, complement: str | None, rows: torch.Tensor | None = None) -> dict:
        """Hooks that ablate everything outside the circuit with ``complement`` (none for "full")."""
        if baseline == "full":
            return {}
        return mask_hooks(self._circuit_keep, self.values(complement, rows))

    def _hooks(self, nodes: Sequence[NodeId], mode: str, baseline: str, complement: str | None,
               rows: torch.Tensor | None = None) -> dict:
        base = self._baseline_hooks(baseline, complement, rows)
        keep = keep_masks_from_nodes(self.model, ablated=group_nodes(nodes))
        self._check_values(mode, keep)
        extra = mask_hooks(keep, self.values(mode, rows))
        hooks = dict(base)
        for site, fn in extra.items():  # ablation on top of the baseline: compose
            if site in hooks:
                first = hooks[site]
                hooks[site] = (lambda f1, f2: (lambda x: f2(f1(x))))(first, fn)
            else:
                hooks[site] = fn
        return hooks

    def _cache(self, baseline: str, complement: str | None) -> list:
        """Per chunk: the baseline's residual at every half-block boundary; every site of the layers
        before the last after AbsTopK and before hooks (for restarts inside a half-block); the last
        layer's keys and values (after their sites); and every AbsTopK site's kept floor per position
        (:func:`engine.topk.kept_floor`: where a restart's threshold search starts). Keyed by the baseline and the ablation outside the
        circuit; at most MAX_CACHES are kept (the least recently used goes first)."""
        key = (baseline, complement)
        if key in self._caches:
            self._caches[key] = self._caches.pop(key)  # most recently used last
        else:
            while len(self._caches) >= MAX_CACHES:
                self._pres.pop(gone := next(iter(self._caches)), None)
                self._caches.pop(gone)
            caches = []
            L = self.cfg.n_layer
            readout: dict[str, list] = {}
            for rows, tokens, last, _ in self._chunks:
                kv: dict[str, torch.Tensor] = {}
                pre: list[dict[str, torch.Tensor]] = [{} for _ in range(2 * L - 2)]
                store = lambda d, key: (lambda t: d.setdefault(key, t))  # noqa: E731
                record_pre = {site_name(h // 2, k): store(pre[h], k)
                              for h in range(2 * L - 2) for k in HALF_SITES[h % 2]}
                record_kv = {site_name(L - 1, k): store(kv, k) for k in ("attn.k", "attn.v")}
                floors: dict[tuple[int, str], torch.Tensor] = {}
                # The pre-hook recorders run first (outer), the key/value recorders after the baseline's hooks.
                # The full model's cache also records every site at the last positions (clean_readout).
                last_values = self._readout_hooks(readout, last) if baseline == "full" else {}
                with torch.no_grad(), record_floors(floors), intervene(last_values), intervene(record_pre), \
                        intervene(self._baseline_hooks(baseline, complement, rows)), intervene(record_kv):
                    bounds = self.model.forward_with_cache(tokens)[1]
                caches.append((bounds, pre, (kv["attn.k"], kv["attn.v"]), floors))
            if readout:
                self._readout = {s: torch.cat(v)[self._inverse].float().cpu().numpy() for s, v in readout.items()}
            self._caches[key] = caches
            self._pres[key] = {}
            if self.packed:
                warm_kernels()  # the compiled attention's machine code: loaded with the cache, not in the first click
        return self._caches[key]

    def _readout_hooks(self, readout: dict[str, list], last: torch.Tensor) -> dict:
        """Hooks that append every site's activation at this chunk's last positions ((B, width)) to
        ``readout[site]``."""
        def keep(site: str):
            def hook(x: torch.Tensor) -> torch.Tensor:
                readout.setdefault(site, []).append(gather_last(x, last)[:, 0])
                return x
            return hook
        return {s: keep(s) for s in all_sites(self.cfg, final=True)}

    def clean_readout(self) -> dict[str, np.ndarray]:
        """Every node's activation in the full model at each prompt's last position: site -> (N, width)
        float32, in the task's sequence order. Recorded while the full model's cache is built (so it
        costs no forward of its own); built now if it was not yet."""
        with self._lock:
            if self._readout is None:  # no full-model cache yet (every one records it)
                self._cache("full", None)
            return self._readout

    def _last_inputs(self, caches: list, key: tuple, h: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """For a restart at boundary ``h`` in the last layer, every sequence at once in chunk order: the
        cached residual there at the last positions (N, 1, d_resid) and the last layer's keys and
        values padded to the longest prompt (N, T, inner); memoised with the cache's packed copies."""
        memo = self._pres[key]
        if ("last", h) not in memo:
            memo[("last", h)] = torch.cat([gather_last(cc[0][h], c[2]) for cc, c in zip(caches, self._chunks)])
        if "kv" not in memo:
            T = max(int(c[1].shape[1]) for c in self._chunks)
            pad = lambda t: torch.nn.functional.pad(t, (0, 0, 0, T - t.shape[1]))  # noqa: E731
            memo["kv"] = tuple(torch.cat([pad(cc[2][i]) for cc in caches]) for i in (0, 1))
        return memo[("last", h)], memo["kv"]

    def _last_guesses(self, caches: list, memo: dict) -> dict:
        """AbsTopK's threshold guesses (:func:`engine.topk.row_guesses`) for the last layer's sites at
        every sequence's last position, in chunk order: the clean run's kept floors there; memoised in
        ``memo`` (the caches' own, ``_pres[key]``, or a scan's)."""
        if "last_guesses" not in memo:
            L = self.cfg.n_layer
            memo["last_guesses"] = {
                (site, self.n): torch.cat([gather_last(cc[3][site].unsqueeze(-1), c[2]) for cc, c in zip(caches, self._chunks)]).view(-1)
                for site in caches[0][3] if site[0] == L - 1}
        return memo["last_guesses"]

    def _last_layer(self, caches: list, key: tuple, h0: int, hooks: dict) -> torch.Tensor:
        """Logits (N, V) of a restart at boundary ``h0`` in the last layer that leaves its keys and values
        alone: every sequence at once, at its last position only (the compiled attention over the cached
        keys and values where it serves, else the explicit one)."""
        x_last, kv = self._last_inputs(caches, key, h0)
        N, T = kv[0].shape[:2]
        with intervene(hooks), row_guesses(self._last_guesses(caches, self._pres[key])):
            if h0 > 2 * self.cfg.n_layer - 2:  # past the attention: the cached residual at the last positions
                y = x_last
            elif compiled_attention_serves(x_last):
                memo = self._pres[key]
                if "chains" not in memo:
                    memo["chains"] = PaddedChains(N, T, self._last_sorted.cpu().numpy())
                chains = memo["chains"]
                y = last_attention_at(self.model, self.cfg.n_layer - 1, x_last,
                                      *(t.reshape(1, N * T, -1) for t in kv), chains, chains.last)
            else:
                y = last_residual(self.model, h0, x_last.expand(-1, T, -1), self._last_sorted, kv)
            return finish_logits(self.model, h0, y, self._last_tok_sorted)[self._inverse]

    def _packing(self) -> Packing:
        """The prompts as a trie of prefixes (built on first use)."""
        if self._pack is None:
            self._pack = Packing(self)
        return self._pack

    def _packable(self, h0: int, kv_clean: bool, mode: str, complement: str | None) -> bool:
        """Whether a restart at half-block ``h0`` runs on packed positions (:mod:`engine.ablation.packed`):
        mean and zero values only (resample is per sequence), and only where the padded chunks would
        run every position (a layer before the last, or the last layer's keys and values changed)."""
        last_attn = 2 * self.cfg.n_layer - 2
        return (self.packed and mode != "resample" and complement != "resample"
                and (h0 < last_attn or (h0 == last_attn and not kv_clean)))

    def _restart(self, nodes: Sequence[NodeId], edges: Sequence[Edge]) -> tuple[int, int]:
        """(half-block, site rank) of the earliest computation an ablation changes. A node changes its own
        site; a zeroed weight changes what is computed from its source site's output."""
        L = self.cfg.n_layer
        points = [(site_half_block(n.site, L), SITE_RANK[parse_site(n.site)[1]]) for n in nodes]
        points += [(site_half_block(e.dst.site), SITE_RANK[parse_site(e.src.site)[1]]) for e in edges]
        return min(points) if points else (2 * self.cfg.n_layer, 0)

    # ------------------------------------------------------------------ public

    @contextlib.contextmanager
    def intervened(self, nodes: Iterable = (), edges: Iterable = (), mode: str = "mean", baseline: str = "full",
                   circuit_mode: str | None = None, rows: torch.Tensor | None = None) -> Iterator[GPT]:
        """Within this block the private model runs ablated as :meth:`evaluate` would (the baseline,
        ``nodes`` replaced by ``mode`` values, ``edges`` zeroed), for forwards of the sequences ``rows``
        (all: None; resample values are per sequence). Holds the ablator's lock. Yields the model."""
        ns, es = self._parse(nodes, edges)
        complement = self._complement_mode(baseline, circuit_mode)
        with self._lock, intervene(self._hooks(ns, mode, baseline, complement, rows)):
            with zeroed_weights(self.model, es):
                yield self.model

    def _parse(self, nodes: Iterable, edges: Iterable) -> tuple[list[NodeId], list[Edge]]:
        if any(p._version != v for p, v in self._shared):
            raise UserError("the model's weights were changed in place after this Ablator was built (it shares "
                            "them, and its cached clean run is of the old weights); build a new Ablator")
        ns = [n if isinstance(n, NodeId) else NodeId.parse(str(n)) for n in nodes]
        for n in ns:
            n.validate(self.cfg)
        es = [e if isinstance(e, Edge) else Edge.parse(str(e)) for e in edges]
        return ns, es

    @torch.no_grad()
    def evaluate(self, ablated_nodes: Iterable = (), ablated_edges: Iterable = (), mode: str = "mean",
                 baseline: str = "full", circuit_mode: str | None = None) -> AblationResult:
        """Task metrics with ``ablated_nodes`` and ``ablated_edges`` ablated (``mode``) on top of the
        ``baseline``: the full model, or the circuit alone with everything outside it ablated with
        ``circuit_mode`` (None: the mode the circuit was pruned with)."""
        t0 = time.perf_counter()
        nodes, edges = self._parse(ablated_nodes, ablated_edges)
        complement = self._complement_mode(baseline, circuit_mode)
        with self._lock:
            caches = self._cache(baseline, complement)
            h0, rank = self._restart(nodes, edges)
            with zeroed_weights(self.model, edges):
                L = self.cfg.n_layer
                kv_sites = {site_name(L - 1, k) for k in ("attn.read", "attn.k", "attn.v")}
                kv_clean = not any(n.site in kv_sites for n in nodes) and not any(e.dst.site in kv_sites for e in edges)
                if self._packable(h0, kv_clean, mode, complement):
                    logits = forward(self, self._packing(), caches, self._pres[(baseline, complement)], (h0, rank), 1,
                                     self._hooks(nodes, mode, baseline, complement),
                                     self._baseline_hooks(baseline, complement))[0]
                    return self._result(logits, t0, mode, baseline, complement, nodes, edges)
                if h0 > 2 * L - 2 or (h0 == 2 * L - 2 and kv_clean):  # only the last positions change
                    logits = self._last_layer(caches, (baseline, complement), h0,
                                              self._hooks(nodes, mode, baseline, complement, self._order))
                    return self._result(logits, t0, mode, baseline, complement, nodes, edges)
                parts = []
                for (rows, _, last, last_tok), (bounds, pre, kv, _) in zip(self._chunks, caches):
                    with intervene(self._hooks(nodes, mode, baseline, complement, rows)):
                        if h0 < 2 * L - 2:  # a layer before the last: restart inside the half-block
                            x = half_block_from(self.model, h0, bounds[h0], rank, pre[h0])
                            parts.append(last_residual(self.model, h0 + 1, x, last))
                        else:
                            parts.append(last_residual(self.model, h0, bounds[h0], last, kv if kv_clean else None))
                # The last MLP and the unembedding run once over every chunk's last positions (resample
                # values are per sequence: those hooks need the rows in chunk order, as here).
                with intervene(self._hooks(nodes, mode, baseline, complement, self._order)):
                    logits = finish_logits(self.model, h0, torch.cat(parts), self._last_tok_sorted)[self._inverse]
        return self._result(logits, t0, mode, baseline, complement, nodes, edges)

    @torch.no_grad()
    def evaluate_naive(self, ablated_nodes: Iterable = (), ablated_edges: Iterable = (), mode: str = "mean",
                       baseline: str = "full", circuit_mode: str | None = None) -> AblationResult:
        """Reference path: a full forward pass at every position with hooks (no caches)."""
        t0 = time.perf_counter()
        nodes, edges = self._parse(ablated_nodes, ablated_edges)
        complement = self._complement_mode(baseline, circuit_mode)
        with self._lock:
            hooks = self._hooks(nodes, mode, baseline, complement)
            with zeroed_weights(self.model, edges):
                logits = last_logits_reference(self.model, self.tokens, self.lengths, hooks)
        return self._result(logits, t0, mode, baseline, complement, nodes, edges)

    def _result(self, logits, t0, mode, baseline, complement, nodes, edges) -> AblationResult:
        m = metrics_from_logits(logits, self.target, self.foil)
        return AblationResult(loss=m["loss"], accuracy=m["accuracy"], logit_diff=m["logit_diff"],
                              p_correct=m["p_correct"], elapsed_ms=1000 * (time.perf_counter() - t0),
                              mode=mode, baseline=baseline, n_nodes=len(nodes), n_edges=len(edges),
                              circuit_mode=complement)

